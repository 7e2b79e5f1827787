"""`nas search`: Optuna proposes, Ray Tune trains, the driver records (README: Layout). Importing
this package stays light: Optuna and Ray are imported where they are used."""
