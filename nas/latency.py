"""Inference latency of an architecture on a deployment runtime, measured, never modelled: MACs miss
what grouped convs, channel shuffles and fragmented blocks cost (ShuffleNet V2's point). No trained
weights needed (a dense conv's time does not depend on its values), so a search measures each plan
once before training (`LatencyCache`). Runtimes (`RUNTIMES`) time the file `nas.export` writes, or
the torch module; timing stops when the median's 95% interval is within `target` of it."""

from __future__ import annotations

import hashlib
import math
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np

from nas import export
from nas.errors import NasError
from nas.plan import plan

ROUND = 10  # calls timed between two looks at the interval


class LatencyError(NasError):
    """An unknown runtime, a missing one, or settings that cannot be timed (one line)."""


@dataclass(frozen=True)
class LatencySettings:
    runtime: str = "onnxruntime"
    threads: int = 1
    batch: int = 1
    device: str = "cpu"  # the torch runtime's device (cuda, npu); the others run on the CPU
    warmup: int = 10
    min_runs: int = 20
    max_runs: int = 2000
    max_s: float = 3.0
    target: float = 0.02  # the median's 95% interval half-width, as a share of the median

    def key(self) -> str:
        return f"{self.runtime}/{self.device if self.runtime == 'torch' else 'cpu'}/t{self.threads}/b{self.batch}"


@dataclass(frozen=True)
class Latency:
    median_ms: float
    q1_ms: float
    q3_ms: float
    ci_low_ms: float  # distribution-free 95% interval of the median
    ci_high_ms: float
    runs: int
    stopped: str  # why the timing stopped: interval, time or runs
    runtime: str
    threads: int
    batch: int

    def describe(self) -> str:
        return (f"median {self.median_ms:.3f} ms, IQR {self.q1_ms:.3f}-{self.q3_ms:.3f} ms, 95% CI of"
                f" the median {self.ci_low_ms:.3f}-{self.ci_high_ms:.3f} ms ({self.runs} runs,"
                f" stopped on {self.stopped}; {self.runtime}, {self.threads} thread(s), batch {self.batch})")


Timed = Callable[[], None]  # one call of the prepared network
Prepare = Callable[[Any, Any, LatencySettings, Path], Timed]  # (spec, model, settings, scratch)


@dataclass(frozen=True)
class Runtime:
    name: str
    extra: str | None  # the nas extra that installs it (None: torch, always there)
    prepare: Prepare


def _prepare_file(format_name: str) -> Prepare:
    def prepare(spec: Any, model: Any, settings: LatencySettings, scratch: Path) -> Timed:
        fmt = export.get_format(format_name)
        path = scratch / f"net{fmt.suffix}"
        export.write(model, spec, fmt, path, settings.batch)
        session = fmt.open(path, settings.threads)
        x = export.example_input(spec, settings.batch).numpy()
        return lambda: session(x)

    return prepare


def _prepare_torch(spec: Any, model: Any, settings: LatencySettings, scratch: Path) -> Timed:
    import torch

    from nas.device import select_device, synchronize  # torch-bearing (~3 s to import): loaded on use

    device = select_device(settings.device)
    model = model.to(device).eval()
    x = export.example_input(spec, settings.batch).to(device)

    def call() -> None:
        with torch.inference_mode():
            model(x)
        synchronize(device)

    return call


RUNTIMES: dict[str, Runtime] = {
    "onnxruntime": Runtime("onnxruntime", "onnx", _prepare_file("onnx")),
    "executorch": Runtime("executorch", "executorch", _prepare_file("executorch")),
    "torch": Runtime("torch", None, _prepare_torch),
}


def check_settings(settings: LatencySettings) -> Runtime:
    """The settings' runtime, its packages checked: one line for an unknown or missing one, or bad sizes."""
    if settings.threads < 1 or settings.batch < 1:
        raise LatencyError(f"threads ({settings.threads}) and batch ({settings.batch}) must be >= 1")
    runtime = RUNTIMES.get(settings.runtime)
    if runtime is None:
        raise LatencyError(f"unknown runtime {settings.runtime!r}: use one of {', '.join(RUNTIMES)}")
    try:
        if runtime.extra is not None:
            export.require(export.FORMATS[runtime.extra])
    except export.ExportError as err:
        raise LatencyError(f"runtime {runtime.name}: {err}") from None
    return runtime


def median_interval(n: int) -> tuple[int, int]:
    """0-based order statistics bounding the median with ~95% confidence (n/2 -+ 1.96 sqrt(n)/2)."""
    half = 1.96 * math.sqrt(n) / 2
    return max(0, math.floor(n / 2 - half)), min(n - 1, math.ceil(n / 2 + half))


def summarize(times_ms: list[float], stopped: str, settings: LatencySettings) -> Latency:
    ordered = np.sort(np.asarray(times_ms))
    lo, hi = median_interval(len(ordered))
    q1, median, q3 = np.percentile(ordered, [25, 50, 75])
    return Latency(float(median), float(q1), float(q3), float(ordered[lo]), float(ordered[hi]),
                   len(ordered), stopped, settings.runtime, settings.threads, settings.batch)


def _stop_reason(times: list[float], settings: LatencySettings, elapsed: float) -> str | None:
    if len(times) >= settings.min_runs:
        got = summarize(times, "", settings)
        if (got.ci_high_ms - got.ci_low_ms) / 2 <= settings.target * got.median_ms:
            return f"interval (within {settings.target:.0%})"
    if len(times) >= settings.max_runs:
        return f"runs (cap {settings.max_runs})"
    if elapsed >= settings.max_s and len(times) >= min(settings.min_runs, 3):
        return f"time (cap {settings.max_s:g} s)"
    return None


def time_calls(call: Timed, settings: LatencySettings) -> Latency:
    """Warm-up, then rounds of timed calls until `_stop_reason` says enough."""
    for _ in range(settings.warmup):
        call()
    times: list[float] = []
    started = time.perf_counter()
    while True:
        for _ in range(ROUND):
            begun = time.perf_counter()
            call()
            times.append((time.perf_counter() - begun) * 1e3)
        stopped = _stop_reason(times, settings, time.perf_counter() - started)
        if stopped:
            return summarize(times, stopped, settings)


def measure(spec: Any, settings: LatencySettings = LatencySettings(), model: Any = None) -> Latency:
    """Latency of `spec` (fresh weights unless `model` is given) on the settings' runtime."""
    import torch

    from nas.builder import build_model  # torch-bearing (~3 s): a bad runtime answers before it
    from nas.device import configure_threads

    runtime = check_settings(settings)
    model = (model if model is not None else build_model(spec)).eval()
    before = torch.get_num_threads()
    configure_threads(settings.threads)  # torch's pool: the torch runtime, and the exporter
    try:
        with tempfile.TemporaryDirectory(prefix="nas-latency-") as scratch:
            return time_calls(runtime.prepare(spec, model, settings, Path(scratch)), settings)
    finally:
        torch.set_num_threads(before)


def plan_signature(spec: Any) -> str:
    """What a runtime sees of a spec: its resolved plan (not its name), hashed."""
    net = plan(spec)
    return hashlib.sha1(repr((net.stem, net.stages, net.head, spec.input)).encode()).hexdigest()[:16]


class LatencyCache:
    """Latency per (plan signature, runtime settings), kept in a JSON file when given one (a
    search's `latency.json`: a resumed search measures no shape twice)."""

    def __init__(self, settings: LatencySettings, path: Path | None = None):
        self.settings, self.path = settings, path
        self.entries: dict[str, dict[str, Any]] = {}
        if path is not None and path.is_file():
            from nas.checkpoint import read_json  # torch-bearing (~3 s to import): loaded on use

            self.entries = read_json(path)

    def _key(self, spec: Any) -> str:
        return f"{plan_signature(spec)}@{self.settings.key()}"

    def get(self, spec: Any) -> Latency:
        key = self._key(spec)
        if key not in self.entries:
            self.entries[key] = asdict(measure(spec, self.settings))
            if self.path is not None:
                from nas.checkpoint import write_json_atomic  # torch-bearing (~3 s to import): loaded on use

                write_json_atomic(self.entries, self.path)
        names = {f.name for f in fields(Latency)}
        return Latency(**{k: v for k, v in self.entries[key].items() if k in names})


def search_cache(runtime: str, threads: int, folder: Path) -> LatencyCache:
    """A search's cache (`folder/latency.json`), its runtime checked before anything starts."""
    settings = LatencySettings(runtime=runtime, threads=threads)
    check_settings(settings)
    return LatencyCache(settings, folder / "latency.json")
