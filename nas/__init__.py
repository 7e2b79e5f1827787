"""nas: declarative efficient-CNN specs (MobileNetV1/V2, ShuffleNet v1), exact counting, training,
search and ablations. The public names load on first use (PEP 562 `__getattr__`), so `import nas`
costs milliseconds and `nas --help` answers before torch is imported."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nas.errors import NasError, SpecError

# public name -> the module that defines it
_LAZY = {
    "build_model": "nas.builder",
    "Count": "nas.counting",
    "count": "nas.counting",
    "load_preset": "nas.presets",
    "preset_names": "nas.presets",
    "NetSpec": "nas.spec",
    "StageSpec": "nas.spec",
    "load_spec": "nas.loading",
}

__all__ = sorted(["NasError", "SpecError", *_LAZY])
__version__ = "0.1.0"

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily
    from nas.builder import build_model
    from nas.counting import Count, count
    from nas.presets import load_preset, preset_names
    from nas.loading import load_spec
    from nas.spec import NetSpec, StageSpec


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nas' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
