"""The one place that picks the device, the thread count and the mixed-precision settings."""

from __future__ import annotations

import contextlib
import importlib
import os
from dataclasses import dataclass

import torch

from nas.errors import NasError


def _has_npu() -> bool:
    try:
        importlib.import_module("torch_npu")
    except ImportError:
        return False
    return bool(getattr(torch, "npu", None)) and torch.npu.is_available()  # type: ignore[attr-defined]


def _has_mps() -> bool:
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


# `device=auto` tries these in order.
AUTO_ORDER = (("cuda", torch.cuda.is_available), ("npu", _has_npu), ("mps", _has_mps))


def select_device(name: str = "auto") -> torch.device:
    """`auto`: cuda, then Ascend npu (when torch_npu imports), then mps, then cpu."""
    if name == "auto":
        for kind, available in AUTO_ORDER:
            if available():
                return torch.device(kind)
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise NasError(f"device={name!r} is not a device (use auto, cpu, cuda, cuda:1, npu, mps)") from None
    checks = dict(AUTO_ORDER)
    if device.type in checks and not checks[device.type]():
        raise NasError(f"device={name!r} is not available on this machine; use device=auto")
    return device


@dataclass(frozen=True)
class Precision:
    """How the hot loop runs on a device: autocast dtype (None: fp32) and memory format."""

    amp_dtype: torch.dtype | None
    channels_last: bool

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.amp_dtype)


def precision_for(device: torch.device, amp: str = "auto", channels_last: str = "auto") -> Precision:
    """GPU/NPU: bf16 autocast and channels_last by default; CPU/MPS: fp32, contiguous."""
    accelerated = device.type in ("cuda", "npu")
    if amp not in ("auto", "bf16", "fp16", "off"):
        raise NasError(f"train.amp={amp!r} must be auto, bf16, fp16 or off")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}.get(
        amp, torch.bfloat16 if accelerated else None)
    if channels_last not in ("auto", "on", "off"):
        raise NasError(f"train.channels_last={channels_last!r} must be auto, on or off")
    cl = accelerated if channels_last == "auto" else channels_last == "on"
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
