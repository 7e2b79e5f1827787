"""The one place that picks the device, the thread count and the mixed-precision settings."""

from __future__ import annotations

import contextlib
import importlib
import os
from dataclasses import dataclass

import torch

from nas.errors import NasError


def torch_npu_missing() -> str | None:
    """None when torch_npu imports (registering the `npu` device), else why not, as one line."""
    try:
        importlib.import_module("torch_npu")
    except Exception as err:  # ImportError, or a torch_npu built for another torch / CANN
        return (f"Ascend NPUs need torch_npu, which does not import here ({type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else 'no message'}); install it with "
                f"pip install 'nas[npu]' (a torch_npu release matching torch {torch.__version__}) "
                f"and CANN")
    return None


# `device=auto` tries these in order.
AUTO_ORDER = (
    ("cuda", torch.cuda.is_available),
    ("npu", lambda: torch_npu_missing() is None and torch.npu.is_available()),  # type: ignore[attr-defined]
    ("mps", lambda: bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()),
)


def select_device(name: str = "auto") -> torch.device:
    """`auto`: cuda, then Ascend npu (when torch_npu imports), then mps, then cpu. `npu` imports
    torch_npu first (without it the name does not parse). An index counts the devices this process
    sees (under Ray only the task's own: nas.workers.worker_device)."""
    if name == "auto":
        for kind, available in AUTO_ORDER:
            if available():
                return torch.device(kind)
        return torch.device("cpu")
    if str(name).split(":")[0] == "npu" and (missing := torch_npu_missing()):
        raise NasError(f"device={name!r}: {missing}")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise NasError(f"device={name!r} is not a device (use auto, cpu, cuda, cuda:1, npu, mps)") from None
    checks = dict(AUTO_ORDER)
    if device.type in checks and not checks[device.type]():
        raise NasError(f"device={name!r} is not available on this machine; use device=auto")
    counts = {"cuda": torch.cuda.device_count, "npu": lambda: torch.npu.device_count()}  # type: ignore[attr-defined]
    if device.index is not None and device.type in counts and device.index >= (n := counts[device.type]()):
        raise NasError(f"device={name!r}: this process sees {n} {device.type} device(s), numbered from 0"
                       f" (CUDA_VISIBLE_DEVICES / ASCEND_RT_VISIBLE_DEVICES renumber them)")
    return device


@dataclass(frozen=True)
class Precision:
    """How the hot loop runs on a device: autocast dtype (None: fp32) and memory format."""

    amp_dtype: torch.dtype | None
    channels_last: bool

    def describe(self) -> str:
        """'bf16', 'fp16' or 'fp32', with '+channels_last'."""
        name = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.amp_dtype, "fp32")
        return name + ("+channels_last" if self.channels_last else "")

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.amp_dtype)


def native_cpu_bf16() -> bool:
    """Does this CPU run bf16 natively (AVX512-BF16 or AMX)? Elsewhere oneDNN emulates it, slower than fp32."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def _auto_amp(device: torch.device) -> torch.dtype | None:
    """CUDA: bf16. Ascend: bf16 where the chip has it (910B and later), else fp16. CPU: bf16 where
    native (benchmarks/cpu_formats.py: faster there), else fp32. MPS: fp32."""
    if device.type == "cuda":
        return torch.bfloat16
    if device.type == "cpu":
        return torch.bfloat16 if native_cpu_bf16() else None
    if device.type == "npu":
        supported = getattr(getattr(torch, "npu", None), "is_bf16_supported", lambda: True)
        return torch.bfloat16 if supported() else torch.float16
    return None


# channels_last by default only where it was measured to help: CUDA convs. Unmeasured on Ascend; on
# CPU it depends on the net (0.59x fp32's step time for MobileNetV1 0.25x, 0.97x for ShuffleNet
# 0.25x), so nas.formats measures each net there.
CHANNELS_LAST_DEFAULT = ("cuda",)


def precision_for(device: torch.device, amp: str = "auto", channels_last: str = "auto") -> Precision:
    """The autocast dtype and memory format of a device's hot loop, by rule (`nas.formats` measures on a CPU)."""
    if amp not in ("auto", "bf16", "fp16", "off"):
        raise NasError(f"train.amp={amp!r} must be auto, bf16, fp16 or off")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}.get(amp, _auto_amp(device))
    if channels_last not in ("auto", "on", "off"):
        raise NasError(f"train.channels_last={channels_last!r} must be auto, on or off")
    cl = device.type in CHANNELS_LAST_DEFAULT if channels_last == "auto" else channels_last == "on"
    return Precision(dtype, cl)


def configure_threads(threads: int = 0) -> int:
    """Use `threads` CPU threads (0: every core this process may run on)."""
    if threads <= 0:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    torch.set_num_threads(threads)
    return threads


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels, so wall-clock timings are real."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "npu":
        torch.npu.synchronize()  # type: ignore[attr-defined]
    elif device.type == "mps":
        torch.mps.synchronize()
