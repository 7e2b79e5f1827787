"""The one place Ray is started: searches and ablations share it, so both spread trials over
the same workers (a local Ray by default, a running cluster with `--address`)."""

from __future__ import annotations

import os


def init_ray(address: str | None = None) -> dict[str, float]:
    """Start (or join, with `address`) Ray once per process; returns the cluster's resources.

    Without an address Ray is started fresh (`address="local"`): plain `ray.init()` would
    silently join whatever cluster `ray start` left on this machine.
    """
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # local, loopback-only by default
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # our own progress line, not Ray's tables
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:  # sized for a small machine: the object store holds only the data set once
            ray.init(address="local", include_dashboard=False, log_to_driver=False,
                     object_store_memory=512 * 1024**2)
    return ray.cluster_resources()
