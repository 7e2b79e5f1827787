"""A test-only stand-in for Huawei's torch_npu: an "npu" device whose tensors live on the CPU.

Only on the PYTHONPATH of the tests that ask for it (tests/test_workers.py puts tests/stubs there
for one Ray task), never installed. What it provides is what `import torch_npu` provides and nas
relies on, so nas runs its real NPU code path (nas.device.select_device("npu:0") parses and checks
availability and the index, precision_for picks bf16 + channels_last, synchronize calls
torch.npu.synchronize, torch.autocast("npu") is entered):

- the PrivateUse1 backend renamed "npu" (torch.utils.rename_privateuse1_backend), so
  torch.device("npu:0") parses, as after the real import;
- a `torch.npu` module (torch._register_device_module): is_available / device_count from
  ASCEND_RT_VISIBLE_DEVICES (as Ray sets it per task; CANN numbers the visible devices from 0),
  current_device, set_device, synchronize, and the AMP hooks torch.autocast("npu") asks for;
- "npu" mapped to the CPU: a TorchFunctionMode pushed at import turns every npu device argument of
  a torch call (tensor.to, Module.to via its tensors, factory `device=`) into "cpu".

Limits (why this is not an NPU): no kernels, no memory, no speed; tensors report `.device` cpu, so
code that compares a tensor's device with torch.device("npu") would differ from a real NPU; the
autocast region is entered for "npu" but the CPU tensors inside it compute in fp32; ops that take a
device through something other than a torch call (torch.Generator(device=...), torch.cuda-style
streams, torch.npu memory stats) are absent. It checks the plumbing (Ray's NPU scheduling and ids,
nas's device selection), not numerics or performance on Ascend hardware.
"""

from __future__ import annotations

import os
import types

import torch
from torch.overrides import TorchFunctionMode

torch.utils.rename_privateuse1_backend("npu")


def _visible() -> list[str]:
    return [v for v in os.environ.get("ASCEND_RT_VISIBLE_DEVICES", "").split(",") if v]


npu = types.ModuleType("torch_npu.npu")
npu.is_available = lambda: bool(_visible())
npu.device_count = lambda: len(_visible())
npu.current_device = lambda: 0
npu.set_device = lambda device: None
npu.synchronize = lambda device=None: None
npu.get_amp_supported_dtype = lambda: [torch.float16, torch.bfloat16]
npu.is_autocast_enabled = lambda: torch.is_autocast_enabled("npu")
npu._is_in_bad_fork = lambda: False
npu.manual_seed_all = lambda seed: None
torch._register_device_module("npu", npu)

STAND_IN = True  # so a test can tell it from the real module


def _on_cpu(x):
    if isinstance(x, torch.device) and x.type == "npu":
        return torch.device("cpu")
    if isinstance(x, str) and x.split(":")[0] == "npu":
        return "cpu"
    if isinstance(x, (list, tuple)):
        return type(x)(_on_cpu(v) for v in x)
    return x


class _NpuOnCpu(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.device:  # torch.device("npu:0") stays an npu device, as for real
            return func(*args, **kwargs)
        return func(*_on_cpu(args), **{k: _on_cpu(v) for k, v in kwargs.items()})


_NpuOnCpu().__enter__()  # for the rest of the process, like the real backend's registration
