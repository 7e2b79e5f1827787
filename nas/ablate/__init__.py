"""`nas ablate`: paper ablations as experiment files (a base net, one or two factors, seeds, a
budget, the paper's numbers), run as a grid of Ray tasks and reported as mean ± std beside the
paper. Modules: experiment (file format), grid (cells x seeds, configs and checks per cell), plan
(the command line's settings), running (an ablation being run), cells (Ray tasks), recorder
(MLflow, driver only), report (tables), driver (the run); the sub-command is in nas/cli_campaign.py."""

from __future__ import annotations

from typing import Any

__all__ = ["Experiment", "experiment_files", "load_experiment"]


def __getattr__(name: str) -> Any:
    """Lazy (PEP 562): `nas --help` reads `nas.ablate.plan`'s flags without the YAML file format."""
    if name in __all__:
        from nas.ablate import experiment

        return getattr(experiment, name)
    raise AttributeError(f"module 'nas.ablate' has no attribute {name!r}")
