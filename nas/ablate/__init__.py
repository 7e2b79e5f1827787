"""`nas ablate`: paper ablations as experiment files (a base net, one or two factors, seeds, a
budget, the paper's numbers), run as a grid of Ray tasks and reported as mean ± std beside the
paper. Modules: experiment (file format, grid), budget, units (configs and checks per cell),
worker (one cell x seed in a Ray worker), recorder (MLflow, driver only), report (tables),
driver (the run); the sub-command is `nas ablate` in nas/cli.py."""

from nas.ablate.experiment import Experiment, experiment_files, load_experiment

__all__ = ["Experiment", "experiment_files", "load_experiment"]
