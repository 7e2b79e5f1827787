"""From an experiment to its grid of points: one (cell, seed) each, with its checked config and spec.
Config layers, lowest first: `nas run` defaults < the experiment's `base` < the budget < a data
fallback < the cell's factor settings and seed < the command line's words (which may not set a
factor's key or `train.seed`: that would flatten the ablation). A cell that cannot build is found
here, before training."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from nas.ablate.experiment import Cell, Experiment
from nas.campaign.budget import Budget
from nas.config import RunConfig, load_run_config, merge, nest, resolve_spec
from nas.counting import count
from nas.data import DataBundle, DataConfig, DataError, load_data
from nas.errors import NasError, SpecError, UnknownNameError
from nas.words import RunOverrides


@dataclass(frozen=True)
class CellRun:
    """One point of an ablation: a cell of the grid trained with one seed."""
    key: str  # "label@seed": its name in the state file and NAS_FAIL_CELLS
    cell: Cell
    seed: int
    cfg: RunConfig | None
    spec: Any = None  # NetSpec, None when invalid
    macs: int | None = None
    params: int | None = None
    error: str | None = None  # why the cell cannot run (reported before any training)

    @property
    def valid(self) -> bool:
        return self.error is None


def check_overrides(exp: Experiment, overrides: RunOverrides) -> None:
    owned = {k for f in exp.factors for lv in f.levels for k in lv.settings} | {"train.seed"}
    if "preset" in owned or "spec" in owned:
        owned |= {"preset", "spec"}
    for key in overrides.values:
        if key in owned:
            what = "use --seeds" if key == "train.seed" else "it is a factor of this ablation"
            raise NasError(f"{key}= cannot be overridden in ablation {exp.name!r}: {what}")


def run_config(exp: Experiment, budget: Budget, overrides: RunOverrides, *, data: dict[str, Any] | None = None,
               cell: Cell | None = None, seed: int | None = None) -> RunConfig:
    layers = [exp.base, budget.run_layer(), {"data": data or {}}]
    if cell is not None:
        layers.append(nest(cell.settings))
    if seed is not None:
        layers.append({"train": {"seed": seed}})
    return load_run_config(base=merge(*layers), overrides=overrides)


@dataclass
class ResolvedData:
    extra: dict[str, Any]  # the data fallback chosen ({} = the experiment's own data)
    note: str  # which data was used, for the table and MLflow
    bundles: dict[DataConfig, DataBundle]  # loaded once per distinct config (resize applied later)


def load_key(cfg: RunConfig) -> DataConfig:
    """Cells that differ only in data.resize share one loaded data set."""
    return dataclasses.replace(cfg.data, resize=None)


def describe_data(cfg: DataConfig) -> str:
    return cfg.name + (" (grayscale)" if cfg.grayscale else "")


def resolve_data(exp: Experiment, budget: Budget, overrides: RunOverrides) -> ResolvedData:
    """The experiment's data, or the first of its `data_fallbacks` present (only when the command
    line leaves `data.name` alone); the note says which was used and which were missing."""
    user_named = "data.name" in overrides.values
    candidates = [{}] + ([] if user_named else [dict(f) for f in exp.data_fallbacks])
    missing: list[str] = []
    first_error: DataError | None = None
    for extra in candidates:
        cfg = run_config(exp, budget, overrides, data=extra)
        try:
            bundle = load_data(load_key(cfg), "cpu")
        except DataError as err:
            first_error = first_error or err
            missing.append(describe_data(cfg.data))
            continue
        note = describe_data(cfg.data)
        if missing:
            note += f" (fallback: {', '.join(missing)} not found)"
        return ResolvedData(extra, note, {load_key(cfg): bundle})
    assert first_error is not None
    tail = f" (fallbacks {', '.join(missing[1:])} not found either)" if len(missing) > 1 else ""
    raise DataError(f"{first_error}{tail}")


def build_grid(exp: Experiment, budget: Budget, overrides: RunOverrides, seeds: tuple[int, ...],
               data: ResolvedData) -> list[CellRun]:
    """Every cell x seed with its config, spec and counts; a bad cell gets its one-line error."""
    units = []
    for cell in exp.cells():
        try:
            cfgs = [run_config(exp, budget, overrides, data=data.extra, cell=cell, seed=s) for s in seeds]
            key = load_key(cfgs[0])
            if key not in data.bundles:
                data.bundles[key] = load_data(key, "cpu")
            bundle, resize = data.bundles[key], cfgs[0].data.resize  # sizes only: the worker resizes
            spec = resolve_spec(cfgs[0], dataclasses.replace(bundle, resolution=resize) if resize else bundle)
            counted = count(spec)
        except UnknownNameError as err:  # a typo, not a level that does not fit: refuse the file
            raise NasError(f"{exp.path}: cell {cell.label} does not build: {err}") from None
        except (NasError, SpecError) as err:
            error = " ".join(str(err).split())
            units += [CellRun(f"{cell.label}@{s}", cell, s, None, error=error) for s in seeds]
            continue
        units += [CellRun(f"{cell.label}@{s}", cell, s, c, spec, counted.macs, counted.params)
                  for s, c in zip(seeds, cfgs)]
    return units
