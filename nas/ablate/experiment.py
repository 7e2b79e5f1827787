"""Experiment files (`experiments/*.yaml`): a base network, one or two factors, seeds, a budget and
the paper's numbers, read strictly (an unknown key, a wrong type, a duplicate value or a paper cell
not in the grid fails in one line naming the field). A factor level is a set of `nas run` keys, so
an ablation can vary anything `nas run` can, through the same config code."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.campaign.budget import ABLATION_BUDGETS as BUDGETS
from nas.errors import NasError, SpecError
from nas.schema import from_dict
from nas.shipped import shipped_files
from nas.yaml_io import read_yaml

VALUE = "{value}"  # placeholder in `set` templates


@dataclass(frozen=True)
class FactorFile:
    name: str
    values: Any  # [v1, v2, ...] with `set`, or {label: {nas run key: value}}
    set: Any = None  # a nas run key, or {nas run key: template}; "{value}" is the level's value
    doc: str = ""


@dataclass(frozen=True)
class PaperFile:
    source: str  # paper and table, e.g. "Howard et al. 2017 (MobileNets), Table 6"
    table: str  # short name shown in the column header, e.g. "Table 6"
    metric: str = ""  # what the numbers are, e.g. "ImageNet top-1 accuracy"
    effect: str = ""  # the reported effect in words (figures with curves have no numbers)
    cells: dict[str, Any] = field(default_factory=dict)  # cell label -> the paper's numbers


@dataclass(frozen=True)
class ExperimentFile:
    name: str
    base: dict[str, Any]  # nas run config: preset= or spec=, model:, data:, train:, width: ...
    factors: tuple[FactorFile, ...]
    description: str = ""
    seeds: tuple[int, ...] = (0, 1)
    budget: str = "cpu"  # default budget; --budget overrides
    data_fallbacks: tuple[dict[str, Any], ...] = ()  # data.* settings tried in order when absent
    paper: PaperFile | None = None


@dataclass(frozen=True)
class Level:
    value: Any  # what the results table shows in the factor's column
    settings: dict[str, Any]  # nas run key -> value


@dataclass(frozen=True)
class Factor:
    name: str
    levels: tuple[Level, ...]


@dataclass(frozen=True)
class Cell:
    label: str  # "groups=3 shuffle=false": no commas, so NAS_FAIL_CELLS can list labels
    values: dict[str, Any]  # factor name -> level value
    settings: dict[str, Any]  # nas run key -> value, all factors merged


@dataclass(frozen=True)
class Experiment:
    name: str
    path: Path
    description: str
    base: dict[str, Any]
    factors: tuple[Factor, ...]
    seeds: tuple[int, ...]
    budget: str
    data_fallbacks: tuple[dict[str, Any], ...]
    paper: PaperFile | None

    def cells(self) -> list[Cell]:
        """The full grid, first factor slowest, in the order the file lists the values."""
        grid = []
        for levels in itertools.product(*(f.levels for f in self.factors)):
            values = {f.name: lv.value for f, lv in zip(self.factors, levels)}
            settings = {k: v for lv in levels for k, v in lv.settings.items()}
            grid.append(Cell(" ".join(f"{name}={show(v)}" for name, v in values.items()), values, settings))
        return grid

    def paper_for(self, label: str) -> str:
        value = self.paper.cells.get(label) if self.paper else None
        return "" if value is None else str(value)


def show(value: Any) -> str:
    """A factor value as YAML writes it (true, 0.75, relu6), for labels and tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def _level_settings(factor: FactorFile, value: Any) -> dict[str, Any]:
    if isinstance(factor.set, str):
        return {factor.set: value}

    def filled(template: Any) -> Any:
        if template == VALUE:
            return value
        return template.replace(VALUE, show(value)) if isinstance(template, str) else template

    return {str(key): filled(template) for key, template in factor.set.items()}


def _factor(factor: FactorFile, where: str) -> Factor:
    values = factor.values
    if isinstance(values, dict):
        if factor.set is not None:
            raise SpecError(f"{where}.set: give either values as a list with `set`, or values as "
                            f"{{label: {{key: value}}}} without it")
        levels = []
        for label, settings in values.items():
            if not isinstance(settings, dict) or not settings:
                raise SpecError(f"{where}.values.{label} must be a mapping of nas run keys to values,"
                                f" e.g. {{preset: dsc_cnn}}")
            levels.append(Level(label, {str(k): v for k, v in settings.items()}))
    elif isinstance(values, list):
        if factor.set is None:
            raise SpecError(f"{where}.set is required with a list of values: the nas run key the "
                            f"value goes to (e.g. set: width) or {{key: template}}")
        if not isinstance(factor.set, (str, dict)) or not factor.set:
            raise SpecError(f"{where}.set must be a nas run key or a mapping of keys to templates")
        levels = [Level(v, _level_settings(factor, v)) for v in values]
    else:
        raise SpecError(f"{where}.values must be a list of values or a mapping of labels to settings")
    if not levels:
        raise SpecError(f"{where}.values is empty; give at least two levels to compare")
    shown = [show(lv.value) for lv in levels]
    if dupes := sorted({s for s in shown if shown.count(s) > 1}):
        raise SpecError(f"{where}.values lists {', '.join(dupes)} more than once")
    if bad := [s for s in shown if "," in s or " " in s]:
        raise SpecError(f"{where}.values: {bad[0]!r} has a comma or space; labels name cells "
                        f"in NAS_FAIL_CELLS and the tables")
    return Factor(factor.name, tuple(levels))


def load_experiment(path: str | Path) -> Experiment:
    """Read and check an experiment file; a bare name looks in `experiments/NAME.yaml`."""
    path = resolve_path(path)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise SpecError(f"{path}: an experiment file is a mapping (name, base, factors, seeds, "
                        f"budget, paper); see experiments/")
    try:
        return _resolve(from_dict(ExperimentFile, data, root="experiment"), path)
    except SpecError as err:
        raise SpecError(f"{path}: {err}") from None


def _resolve(raw: ExperimentFile, path: Path) -> Experiment:
    if not 1 <= len(raw.factors) <= 2:
        raise SpecError(f"factors: give one or two factors (got {len(raw.factors)})")
    names = [f.name for f in raw.factors]
    if len(set(names)) != len(names) or any(not n or " " in n or "=" in n for n in names):
        raise SpecError(f"factors: names must be distinct words without spaces or '=' (got {names})")
    factors = tuple(_factor(f, f"factors[{i}]") for i, f in enumerate(raw.factors))
    if len(factors) == 2:
        shared = {k for lv in factors[0].levels for k in lv.settings} & {
            k for lv in factors[1].levels for k in lv.settings}
        if shared:
            raise SpecError(f"factors: both factors set {sorted(shared)}; a key belongs to one factor")
    if not raw.seeds or len(set(raw.seeds)) != len(raw.seeds):
        raise SpecError(f"seeds: give distinct integers, e.g. [0, 1] (got {list(raw.seeds)})")
    if raw.budget not in BUDGETS:
        raise SpecError(f"budget={raw.budget!r} must be one of {', '.join(BUDGETS)}")
    if ("preset" in raw.base) == ("spec" in raw.base) and not any(
            k in lv.settings for f in factors for lv in f.levels for k in ("preset", "spec")):
        raise SpecError("base: give exactly one of preset: NAME or spec: PATH (or make it a factor)")
    base = dict(raw.base)
    if isinstance(base.get("spec"), str) and not Path(base["spec"]).is_absolute():
        base["spec"] = str((path.parent / base["spec"]).resolve())  # relative to the file
    exp = Experiment(raw.name, path, raw.description, base, factors, tuple(raw.seeds), raw.budget,
                     raw.data_fallbacks, raw.paper)
    if raw.paper is not None:
        labels = {c.label for c in exp.cells()}
        for label, value in raw.paper.cells.items():
            if label not in labels:
                raise SpecError(f"paper.cells.{label!r} is not a cell of the grid; cells: "
                                f"{', '.join(sorted(labels))}")
            if isinstance(value, (dict, list)):
                raise SpecError(f"paper.cells.{label!r} must be the paper's number or text, got a"
                                f" {type(value).__name__}")
    return exp


def resolve_path(path: str | Path) -> Path:
    p = Path(path)
    if p.is_file() or p.suffix in (".yaml", ".yml") or "/" in str(path):
        return p
    shipped = shipped_files("nas.experiments")
    if str(p) in shipped:
        return shipped[str(p)]
    names = ", ".join(shipped)
    raise NasError(f"experiment {str(path)!r} not found: give a YAML path or one of {names}")


def experiment_files() -> list[Path]:
    """The shipped experiments (`experiments/*.yaml` in a checkout, `nas/experiments/` installed)."""
    return list(shipped_files("nas.experiments").values())
