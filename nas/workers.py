"""The one place Ray is started and trials are sized: how many run at once, on which kind of
accelerator ("GPU": NVIDIA; "NPU": Huawei Ascend, detected by Ray or declared with
`ray start --resources='{"NPU": N}'`), with what share of one (below 1 packs several trials on a
device; above 1 it must be whole). Searches and ablations share it."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from nas.errors import NasError

ACCELERATORS = ("auto", "cuda", "npu", "cpu")
# Default accelerator share per trial: small CIFAR nets leave a device mostly idle (measured on an
# H100: 4 trials sharing it train 2.2x the images/s of one). NPUs get the same until measured.
SHARE = {"cuda": 0.25, "npu": 0.25}
RAY_NAME = {"cuda": "GPU", "npu": "NPU"}  # the Ray resource each kind is scheduled by
VISIBLE_ENV = {"cuda": "CUDA_VISIBLE_DEVICES", "npu": "ASCEND_RT_VISIBLE_DEVICES"}  # set by Ray per task


def init_ray(address: str | None = None) -> dict[str, float]:
    """Start (or join, with `address`) Ray once per process; returns the cluster's resources. Without
    an address Ray starts fresh: plain `ray.init()` would join whatever cluster `ray start` left."""
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


def _n(x: float) -> str:
    return f"{x:g}"


def _plural(x: float, unit: str) -> str:
    return f"{_n(x)} {unit}" + ("" if x == 1 else "s")


@dataclass(frozen=True)
class Workers:
    """How many trials (or ablation cells) run at once, on which device kind, with what share of one;
    `cpus` and `accelerators` are the cluster's totals the plan was made from."""

    concurrency: int
    kind: str  # "cuda" | "npu" | "cpu"
    share: float  # devices per trial (0 on cpu)
    cpus_each: float
    cpus: float
    accelerators: float  # devices of `kind` in the cluster (0 on cpu)

    def resources(self) -> dict[str, float]:
        """The Ray request per trial (Tune: `tune.with_resources(fn, workers.resources())`)."""
        return {"CPU": self.cpus_each, **({} if self.kind == "cpu" else {RAY_NAME[self.kind]: self.share})}

    def task_options(self) -> dict:
        """The same request as `ray.remote(...).options(**workers.task_options())` takes it
        (Ray refuses "CPU" / "GPU" inside `resources=`)."""
        options: dict = {"num_cpus": self.cpus_each}
        if self.kind == "cuda":
            options["num_gpus"] = self.share
        elif self.kind == "npu":
            options["resources"] = {"NPU": self.share}
        return options

    def describe(self) -> str:
        """E.g. "2 at a time on 16 CPUs / 2 NPUs (npu, 0.25 each)"."""
        if self.kind == "cpu":
            return (f"{self.concurrency} at a time on {_plural(self.cpus, 'CPU')} "
                    f"(cpu, {_plural(self.cpus_each, 'CPU')} each)")
        return (f"{self.concurrency} at a time on {_plural(self.cpus, 'CPU')} / "
                f"{_plural(self.accelerators, RAY_NAME[self.kind])} ({self.kind}, {_n(self.share)} each)")


def _have(resources: dict[str, float]) -> str:
    named = [_plural(resources.get(k, 0), k) for k in ("CPU", "GPU", "NPU") if resources.get(k)]
    return ", ".join(named) or "nothing"


def plan_workers(resources: dict[str, float], *, accelerator: str = "auto", share: float | None = None,
                 cpus_each: float = 1.0, concurrency: int | None = None) -> Workers:
    """Size the trials for a cluster with `resources` (`ray.cluster_resources()`). `accelerator` auto:
    GPU, else NPU, else CPU; `share` default SHARE[kind]; `concurrency` default as many as the CPUs
    and devices fit, at least 1. Bad values are one-line NasErrors naming the flag."""
    if accelerator not in ACCELERATORS:
        raise NasError(f"--accelerator={accelerator!r} must be one of {', '.join(ACCELERATORS)}")
    if not (isinstance(cpus_each, (int, float)) and math.isfinite(cpus_each) and cpus_each > 0):
        raise NasError(f"--cpus-per-trial={cpus_each!r} must be a positive number of CPUs")
    if concurrency is not None and (isinstance(concurrency, bool) or not isinstance(concurrency, int)
                                    or concurrency < 1):
        raise NasError(f"--concurrency={concurrency!r} must be a whole number >= 1")
    cpus = float(resources.get("CPU", 0))
    by_cpu = int(cpus // cpus_each)
    kind = accelerator if accelerator != "auto" else next(
        (k for k in ("cuda", "npu") if resources.get(RAY_NAME[k], 0) > 0), "cpu")
    if kind == "cpu":
        if share:
            raise NasError(f"--per-trial={share!r} is a share of an accelerator, but trials run on "
                           f"CPUs (the cluster has {_have(resources)}); drop it, or pick "
                           f"--accelerator cuda or npu")
        return Workers(concurrency or max(1, by_cpu), "cpu", 0.0, float(cpus_each), cpus, 0.0)
    devices = float(resources.get(RAY_NAME[kind], 0))
    if devices <= 0:
        raise NasError(f"--accelerator {kind}: the Ray cluster has no {RAY_NAME[kind]} (it has "
                       f"{_have(resources)}); use --accelerator auto or cpu, or start nodes with "
                       + ("--num-gpus N" if kind == "cuda" else "--resources='{\"NPU\": N}'"))
    share = SHARE[kind] if share is None else share
    if not (isinstance(share, (int, float)) and not isinstance(share, bool) and math.isfinite(share)
            and share > 0):
        raise NasError(f"--per-trial={share!r} must be a share of one {RAY_NAME[kind]} in (0, 1], "
                       f"or a whole number of them (for CPU-only trials use --accelerator cpu)")
    if share > 1 and share != int(share):
        raise NasError(f"--per-trial={share!r}: above 1 a share must be a whole number of "
                       f"{RAY_NAME[kind]}s (Ray's rule), e.g. {math.floor(share)} or {math.ceil(share)}")
    if share > devices:
        raise NasError(f"--per-trial={share!r} asks for more {RAY_NAME[kind]}s than the cluster "
                       f"has ({_n(devices)}); no trial could ever start")
    by_device = int(math.floor(devices / share + 1e-9))
    return Workers(concurrency or max(1, min(by_cpu, by_device)), kind, float(share),
                   float(cpus_each), cpus, devices)


def check_accelerator(kind: str) -> None:
    """Fail with one line when this process cannot use `kind` (cuda / npu / cpu): torch_npu missing
    for npu (importing it registers the device), no CUDA torch or GPU for cuda."""
    import torch

    from nas.device import torch_npu_missing  # torch-bearing (~3 s to import): loaded on use

    if kind not in ("cuda", "npu", "cpu"):
        raise NasError(f"accelerator kind {kind!r} must be one of cuda, npu, cpu")
    if kind == "npu" and (missing := torch_npu_missing()):
        raise NasError(missing)
    if kind == "npu" and not torch.npu.is_available():  # type: ignore[attr-defined]
        raise NasError(f"torch_npu imports but sees no NPU (ASCEND_RT_VISIBLE_DEVICES="
                       f"{os.environ.get('ASCEND_RT_VISIBLE_DEVICES')!r}); check the node's "
                       f"CANN driver (npu-smi info)")
    if kind == "cuda" and not torch.cuda.is_available():
        build = "a CPU-only torch build" if torch.version.cuda is None else "no visible GPU"
        raise NasError(f"cuda: torch.cuda is not available on this node ({build}; "
                       f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}); "
                       f"install a CUDA torch or use --accelerator cpu")


def worker_device(kind: str) -> str:
    """The torch device string for this Ray task or trial, from what Ray granted it. Ray sets
    ASCEND_RT_VISIBLE_DEVICES / CUDA_VISIBLE_DEVICES to the task's physical ids and torch numbers the
    visible devices from 0, so an NPU's index is its id's position there (every NPU is visible, and
    the id is the index, under RAY_EXPERIMENTAL_NOSET_ASCEND_RT_VISIBLE_DEVICES)."""
    check_accelerator(kind)
    if kind != "npu":
        return kind
    import ray

    if not ray.is_initialized():
        return "npu"
    ids = ray.get_runtime_context().get_accelerator_ids().get("NPU", [])
    if not ids:
        raise NasError("this Ray task holds no NPU: request one with Workers.resources() / "
                       "task_options() ({'NPU': share})")
    visible = [v for v in os.environ.get(VISIBLE_ENV["npu"], "").split(",") if v]
    index = visible.index(ids[0]) if ids[0] in visible else int(ids[0])
    return f"npu:{index}"
