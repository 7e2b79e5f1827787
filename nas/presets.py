"""Paper presets: YAML files in `nas/presets/`, each a spec plus its provenance and the counts
it must reproduce (`expected`), which the tests and `nas presets` check."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from nas.counting import Count
from nas.errors import SpecError, UnknownNameError
from nas.loading import checked, load_spec
from nas.schema import suggest
from nas.spec import NetSpec, apply_overrides, spec_from_dict
from nas.yaml_io import read_yaml

PRESET_DIR = Path(__file__).parent / "presets"


def parse_published(value: int | float | str) -> tuple[float, int | None]:
    """`4231976` -> exact; `"568.7M"` -> (568.7e6, 1 decimal in millions)."""
    if isinstance(value, str):
        number = value.rstrip("M")
        return float(number) * 1e6, len(number.partition(".")[2])
    return float(value), None


@dataclass(frozen=True)
class Expected:
    """One published number set: overrides applied to the preset, and what the count must be."""

    overrides: dict[str, Any]
    params: int | str | None
    macs: int | str | None
    tolerance: float | None
    source: str

    def mismatches(self, got: Count) -> list[str]:
        problems = []
        for what, published in (("params", self.params), ("macs", self.macs)):
            if published is None:
                continue
            actual = getattr(got, what)
            target, decimals = parse_published(published)
            if self.tolerance is not None:
                ok = abs(actual - target) <= self.tolerance * target
            elif decimals is None:
                ok = actual == target
            else:
                ok = round(actual / 1e6, decimals) == round(target / 1e6, decimals)
            if not ok:
                problems.append(f"{what}: got {actual:,}, published {published} ({self.source})")
        return problems


@dataclass(frozen=True)
class Preset:
    name: str
    cite: str
    paper: str
    table: str
    expected: tuple[Expected, ...]
    spec_data: dict[str, Any]

    def spec(self, **overrides: Any) -> NetSpec:
        try:
            return checked(spec_from_dict(apply_overrides(self.spec_data, overrides)))
        except SpecError as err:
            raise type(err)(f"preset {self.name}: {err}") from None  # keeps UnknownNameError


@lru_cache(maxsize=None)
def _all_presets() -> dict[str, Preset]:
    presets = {}
    for path in sorted(PRESET_DIR.glob("*.yaml")):
        data = read_yaml(path)
        prov = data.get("provenance", {})
        expected = tuple(Expected(row.get("overrides", {}), row.get("params"), row.get("macs"),
                                  row.get("tolerance"), row.get("source", "")) for row in data.get("expected", []))
        presets[data["name"]] = Preset(data["name"], prov.get("cite", ""), prov.get("paper", ""),
                                       prov.get("table", ""), expected, data["spec"])
    return presets


def preset_names() -> list[str]:
    return list(_all_presets())


def get_preset(name: str) -> Preset:
    presets = _all_presets()
    if name not in presets:
        raise UnknownNameError(f"unknown preset {name!r}{suggest(name, presets)} (presets: {', '.join(presets)})")
    return presets[name]


def load_preset(name: str, **overrides: Any) -> NetSpec:
    """The preset's spec with overrides: `width=0.5`, `resolution=32`, `num_classes=10`,
    `in_channels=1`, or any field path (`**{"head.dropout": 0.1, "stages.2.groups": 4}`)."""
    return get_preset(name).spec(**overrides)


def spec_from_assignments(values: dict[str, Any]) -> NetSpec:
    """`preset=NAME` or `spec=PATH` plus overrides -> NetSpec (`nas summary`, `nas export`, a run)."""
    values = dict(values)
    preset, spec_path = values.pop("preset", None), values.pop("spec", None)
    if (preset is None) == (spec_path is None):
        raise SpecError("give exactly one of preset=NAME or spec=PATH (see `nas presets`)")
    if preset is not None:
        return load_preset(str(preset), **values)
    return load_spec(str(spec_path), **values)
