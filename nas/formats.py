"""Each net in its fastest CPU number format, measured once per shape and cached (`choose`).

The fastest format depends on the net, not only the chip (ShuffleNet g8 0.5x k5, 2 cores, batch 128:
fp32 509 ms a step, bf16 542, bf16+channels_last 501, fp32+channels_last 318). torch.compile is no
candidate: on that net 268 ms a step after 35-52 s of compiling pays back only after ~1000 steps,
and a search's trials are different nets, often stopped early."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F

from nas.builder import build_model
from nas.checkpoint import read_json, write_json_atomic
from nas.config import TrainConfig
from nas.device import Precision, native_cpu_bf16, precision_for
from nas.errors import NasError
from nas.latency import plan_signature
from nas.spec import NetSpec

PROBE_WARMUP = 1  # untimed steps per format: oneDNN builds its kernels on the first
PROBE_STEPS = 2  # timed steps per format (the fastest counts)
PAYBACK = 10  # probe only runs planned to last this many times the probe's own steps

StepTimer = Callable[[], float]  # one training step; returns its seconds
TimerFactory = Callable[[NetSpec, int, Precision], StepTimer]


@dataclass(frozen=True)
class FormatChoice:
    precision: Precision
    source: str  # probe | cache | config | device default | run too short to probe
    probe_s: float = 0.0  # seconds the probe took (source probe)

    def describe(self) -> str:
        """'fp32+channels_last (probe, 4.1 s)': the format and why."""
        how = f"probe, {self.probe_s:.1f} s" if self.source == "probe" else self.source
        return f"{self.precision.describe()} ({how})"


def candidates() -> dict[str, Precision]:
    """The CPU formats a probe tries, by name: fp32 and native bf16, each contiguous and channels_last."""
    dtypes = (None, torch.bfloat16) if native_cpu_bf16() else (None,)
    formats = (Precision(dtype, cl) for dtype in dtypes for cl in (False, True))
    return {p.describe(): p for p in formats}


def step_timer(spec: NetSpec, batch: int, precision: Precision) -> StepTimer:
    """A timed SGD training step of a fresh copy of `spec`'s net on random CPU images in `precision`."""
    torch.manual_seed(0)
    fmt = torch.channels_last if precision.channels_last else torch.contiguous_format
    model = build_model(spec).to(memory_format=fmt).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    size = spec.input.resolution
    images = torch.randn(batch, spec.input.channels, size, size).contiguous(memory_format=fmt)
    labels = torch.randint(0, spec.num_classes, (batch,))
    cpu = torch.device("cpu")

    def step() -> float:
        started = time.perf_counter()
        with precision.autocast(cpu):
            loss = F.cross_entropy(model(images), labels, label_smoothing=0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return time.perf_counter() - started

    return step


def time_formats(timers: Mapping[str, StepTimer], warmup: int, steps: int) -> dict[str, list[float]]:
    """`steps` timings (seconds) of each timer after `warmup` untimed rounds; rounds interleave the
    formats in a rotating order, so a change in the machine's load reaches every format alike."""
    names = list(timers)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(warmup + steps):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            seconds = timers[name]()
            if r >= warmup:
                samples[name].append(seconds)
    return samples


def probe(spec: NetSpec, batch: int, timer: TimerFactory = step_timer) -> dict[str, float]:
    """Seconds per step of `spec` in every candidate format: the fastest of `PROBE_STEPS` (other work
    only ever adds time). The global RNG is left as it was: the run does not depend on the probe."""
    with torch.random.fork_rng(devices=[]):
        timers = {name: timer(spec, batch, p) for name, p in candidates().items()}
        return {name: min(times) for name, times in time_formats(timers, PROBE_WARMUP, PROBE_STEPS).items()}


def probe_steps() -> int:
    """Training steps one probe runs, all formats together."""
    return len(candidates()) * (PROBE_WARMUP + PROBE_STEPS)


def cache_path() -> Path:
    """$NAS_CACHE/formats.json, else ~/.cache/nas/formats.json, shared by a search's concurrent trials."""
    root = os.environ.get("NAS_CACHE")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "nas") / "formats.json"


def probe_key(spec: NetSpec, batch: int, threads: int) -> str:
    """What a pick holds for: the net's plan, CPU threads, batch, torch, the CPU's instructions."""
    machine = f"{torch.backends.cpu.get_cpu_capability()}{'+bf16' if native_cpu_bf16() else ''}"
    return f"{plan_signature(spec)}@cpu/t{threads}/b{batch}/torch{torch.__version__}/{machine}"


class FormatCache:
    """Picks by `probe_key` in one JSON file shared by concurrent runs: re-read before each atomic
    write (another run's new entry is kept); a file that does not parse counts as empty."""

    def __init__(self, path: Path):
        self.path = path

    def entries(self) -> dict[str, Any]:
        try:
            return read_json(self.path) if self.path.is_file() else {}
        except NasError:  # truncated by hand, or not ours: re-measure, then overwrite
            return {}

    def get(self, key: str) -> dict[str, Any] | None:
        entry = self.entries().get(key)
        return entry if isinstance(entry, dict) else None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        try:
            write_json_atomic({**self.entries(), key: entry}, self.path)
        except OSError:  # a read-only home: the pick still holds for this run
            pass


def choose(spec: NetSpec, device: torch.device, cfg: TrainConfig, planned_steps: int, *,
           cache: FormatCache | None = None, timer: TimerFactory = step_timer) -> FormatChoice:
    """The format a run of `spec` trains in: an explicit `train.amp=` / `train.channels_last=`, a
    non-CPU device's default (`precision_for`), the cached pick, the default for a run too short to
    earn the probe back (`PAYBACK`), else measured. Call after `configure_threads`."""
    if (cfg.amp, cfg.channels_last) != ("auto", "auto"):
        return FormatChoice(precision_for(device, cfg.amp, cfg.channels_last), "config")
    if device.type != "cpu":
        return FormatChoice(precision_for(device), "device default")
    cache = cache or FormatCache(cache_path())
    key = probe_key(spec, cfg.batch_size, torch.get_num_threads())
    known = candidates()
    entry = cache.get(key)
    if entry is not None and entry.get("format") in known:
        return FormatChoice(known[entry["format"]], "cache")
    if planned_steps < PAYBACK * probe_steps():
        return FormatChoice(precision_for(device), "run too short to probe")
    started = time.perf_counter()
    step_s = probe(spec, cfg.batch_size, timer)
    probe_s = time.perf_counter() - started
    best = min(step_s, key=step_s.__getitem__)
    cache.put(key, {"format": best, "step_ms": {k: round(v * 1e3, 2) for k, v in step_s.items()},
                    "probe_s": round(probe_s, 2)})
    return FormatChoice(known[best], "probe", probe_s)
