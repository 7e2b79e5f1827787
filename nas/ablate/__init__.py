"""`nas ablate`: paper ablations as experiment files (a base net, one or two factors, seeds, a
budget, the paper's numbers), run as a grid of Ray tasks and reported as mean ± std beside the
paper. Modules: experiment (file format), grid (cells x seeds, configs and checks per cell), plan
(the command line's settings), running (an ablation being run), cells (Ray tasks), recorder
(MLflow, driver only), report (tables), driver (the run); the sub-command is in nas/cli_campaign.py.
Importing this package stays light (`nas --help` reads `plan`'s flags)."""
