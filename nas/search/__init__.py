"""`nas search`: Optuna samples a space's choices (`optuna_choices.OptunaChooser`), `searcher` bridges
the study to Ray Tune, `trial` runs one `nas.job.Job` per trial in a worker, `recorder` writes
MLflow from the driver, `results` makes trials.csv / the front / pareto.png, `retrain` trains
front members again at the full budget, `driver` runs it all. Importing this package stays
light: Optuna and Ray are imported where they are used.
"""
