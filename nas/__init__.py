"""nas: declarative efficient-CNN specs (MobileNetV1/V2, ShuffleNet v1), exact counting,
training, search and ablations."""

from nas.builder import build_model
from nas.counting import Count, count
from nas.errors import NasError, SpecError
from nas.presets import load_preset, preset_names
from nas.loading import load_spec
from nas.spec import NetSpec, StageSpec

__all__ = [
    "Count", "NasError", "NetSpec", "SpecError", "StageSpec", "build_model", "count",
    "load_preset", "load_spec", "preset_names",
]
__version__ = "0.1.0"
