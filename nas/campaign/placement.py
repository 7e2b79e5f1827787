"""Where a campaign's points train, as asked on the command line: `--accelerator` and its
`--per-trial` / `--per-cell` share, with the older `--gpus-per-trial` / `--gpus-per-cell`
still read (a GPU share; 0 meant train on the CPUs). `nas.workers.plan_workers` turns it into
a plan against the cluster's resources."""

from __future__ import annotations


def requested_placement(accelerator: str, share: float | None,
                        gpu_share: float | None, unit: str = "trial") -> tuple[str, float | None]:
    """(accelerator, share) for `nas.workers.plan_workers`; flags that contradict each other, or
    need one that was not given, are refused in one line (`unit`: trial or cell, for the flags)."""
    from nas.errors import NasError

    if gpu_share is not None and share is not None:
        raise NasError(f"give --per-{unit} or --gpus-per-{unit}, not both (--gpus-per-{unit} S is"
                       f" --accelerator cuda --per-{unit} S)")
    if gpu_share and accelerator not in ("auto", "cuda"):
        raise NasError(f"--gpus-per-{unit} trains on GPUs; it contradicts --accelerator {accelerator}")
    if share is not None and accelerator == "cpu":
        raise NasError(f"--per-{unit} is an accelerator share; it needs --accelerator auto, cuda or npu,"
                       " not cpu")
    if gpu_share is not None and share is None:
        return ("cuda" if gpu_share > 0 else "cpu"), gpu_share
    return accelerator, share
