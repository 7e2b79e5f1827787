"""Where a campaign's points train, as asked on the command line: `--accelerator` and its
`--per-trial` / `--per-cell` share, with the older `--gpus-per-trial` / `--gpus-per-cell`
still read (a GPU share; 0 meant train on the CPUs). `nas.workers.plan_workers` turns it into
a plan against the cluster's resources."""

from __future__ import annotations


def requested_placement(accelerator: str, share: float | None,
                        gpu_share: float | None) -> tuple[str, float | None]:
    """(accelerator, share) for `nas.workers.plan_workers`."""
    if gpu_share is not None and share is None:
        return ("cuda" if gpu_share > 0 else "cpu"), gpu_share
    return accelerator, share
