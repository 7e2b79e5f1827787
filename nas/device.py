"""The one place that picks the device, the thread count and the mixed-precision settings."""

from __future__ import annotations

import contextlib
import importlib
import os
from dataclasses import dataclass

import torch

from nas.errors import NasError


def torch_npu_missing() -> str | None:
    """None when torch_npu imports (which registers the `npu` device and `torch.npu`), else why
    not, as one line naming torch_npu and the install command."""
    try:
        importlib.import_module("torch_npu")
    except Exception as err:  # ImportError, or a torch_npu built for another torch / CANN
        return (f"Ascend NPUs need torch_npu, which does not import here ({type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else 'no message'}); install it with "
                f"pip install 'nas[npu]' (a torch_npu release matching torch {torch.__version__}) "
                f"and CANN")
    return None


def _has_npu() -> bool:
    return torch_npu_missing() is None and torch.npu.is_available()  # type: ignore[attr-defined]


def _has_mps() -> bool:
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


# `device=auto` tries these in order.
AUTO_ORDER = (("cuda", torch.cuda.is_available), ("npu", _has_npu), ("mps", _has_mps))


def select_device(name: str = "auto") -> torch.device:
    """`auto`: cuda, then Ascend npu (when torch_npu imports), then mps, then cpu.

    `npu` / `npu:N` import torch_npu first (that registers the device; without it the name does
    not parse), and fail with one line naming torch_npu when it is missing. An index counts the
    devices this process sees: under Ray, ASCEND_RT_VISIBLE_DEVICES / CUDA_VISIBLE_DEVICES hold
    only the task's own, so its first is `npu:0` / `cuda:0` (nas.workers.worker_device).
    """
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
        """'bf16', 'fp16' or 'fp32', with '+channels_last': what a run's numbers were made with."""
        name = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.amp_dtype, "fp32")
        return name + ("+channels_last" if self.channels_last else "")

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.amp_dtype)


def native_cpu_bf16() -> bool:
    """Does this CPU run bf16 convolutions natively (AVX512-BF16 or AMX)? Elsewhere oneDNN
    emulates them, slower than fp32."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def _auto_amp(device: torch.device) -> torch.dtype | None:
    """CUDA: bf16. Ascend: bf16 where the chip has it (910B and later), else fp16. CPU: bf16
    where it is native (benchmarks/cpu_formats.py: faster training steps and evaluation there),
    else fp32; a CPU run with amp and channels_last both auto measures instead (nas.formats).
    MPS: fp32."""
    if device.type == "cuda":
        return torch.bfloat16
    if device.type == "cpu":
        return torch.bfloat16 if native_cpu_bf16() else None
    if device.type == "npu":
        supported = getattr(getattr(torch, "npu", None), "is_bf16_supported", lambda: True)
        return torch.bfloat16 if supported() else torch.float16
    return None


# channels_last by default only where it was measured to help: CUDA convs. On Ascend NPUs it is
# unmeasured here (no NPU was available); on CPU it depends on the net (benchmarks/cpu_formats.py:
# 0.59x fp32's step time for MobileNetV1 0.25x, 0.97x for ShuffleNet 0.25x, and slower than
# plain bf16 for ShuffleNet with bf16), so it stays off by default there: a CPU run with
# train.amp and train.channels_last both auto measures its net instead (nas.formats).
CHANNELS_LAST_DEFAULT = ("cuda",)


def precision_for(device: torch.device, amp: str = "auto", channels_last: str = "auto") -> Precision:
    """The autocast dtype (`_auto_amp` for auto) and memory format of a device's hot loop, by
    rule; `nas.formats.choose` replaces the rule by a measurement on a CPU."""
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
