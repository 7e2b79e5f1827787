"""A search space: a base spec plus named choices, sampled by any searcher.

A point is a flat dict `{label: value}` of the choices whose `when` holds; `to_spec` writes it
into the base (choices in file order, each `set` path then its `values`), so `to_spec({})` is the
base network. Keys starting with `_` (adapter bookkeeping) and `None` values are ignored. A
caller's override (the data's resolution) that would overwrite a chosen field is refused, so no
choice is silently dead. A point is drawn through a `Chooser` (`RandomChooser`, or Optuna's trial
through `OptunaChooser`); the YAML format is `nas.space.file`.
"""

from __future__ import annotations

import json
import math
import numbers
import random
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Protocol, Sequence

from nas.errors import SpecError
from nas.loading import checked
from nas.schema import suggest
from nas.spec import OVERRIDE_ALIASES, NetSpec, apply_overrides, spec_from_dict

SCALARS = (bool, int, float, str)


class Chooser(Protocol):
    """What a searcher provides: one value per call, named by the choice's label."""

    def categorical(self, label: str, options: Sequence[Any]) -> Any: ...

    def integer(self, label: str, low: int, high: int, step: int) -> int: ...

    def real(self, label: str, low: float, high: float, log: bool) -> float: ...


class RandomChooser:
    """Uniform random sampling, reproducible from `seed` (log-uniform for `log` ranges)."""

    def __init__(self, seed: int | None = 0):
        self.rng = random.Random(seed)

    def categorical(self, label: str, options: Sequence[Any]) -> Any:
        return options[self.rng.randrange(len(options))]

    def integer(self, label: str, low: int, high: int, step: int) -> int:
        return self.rng.randrange(low, high + 1, step)

    def real(self, label: str, low: float, high: float, log: bool) -> float:
        if log:
            return math.exp(self.rng.uniform(math.log(low), math.log(high)))
        return self.rng.uniform(low, high)


class OptunaChooser:
    """`space.sample(OptunaChooser(trial))`, define-by-run (a conditional choice is never suggested
    when its condition fails). Optuna stores only None/bool/int/float/str: other options (lists,
    mappings) are suggested by their JSON text and decoded back."""

    def __init__(self, trial: Any):
        self.trial = trial  # an optuna Trial (duck-typed: this module does not import optuna)

    def categorical(self, label: str, options: Sequence[Any]) -> Any:
        keys = [option_key(o) for o in options]
        picked = self.trial.suggest_categorical(label, keys)
        return next(o for o, k in zip(options, keys) if same(k, picked))

    def integer(self, label: str, low: int, high: int, step: int) -> int:
        return self.trial.suggest_int(label, low, high, step=step)

    def real(self, label: str, low: float, high: float, log: bool) -> float:
        return self.trial.suggest_float(label, low, high, log=log)


def _is_bool(x: Any) -> bool:
    return isinstance(x, bool) or (type(x).__module__ == "numpy" and "bool" in type(x).__name__)


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not _is_bool(x)  # numpy ints and floats included


def same(a: Any, b: Any) -> bool:
    """Equality that keeps `True` apart from `1` but lets `6.0` match `6` (pandas turns int
    columns with gaps into floats), numpy scalars match Python ones, and a tuple a list."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if _is_bool(a) or _is_bool(b):
        return _is_bool(a) and _is_bool(b) and bool(a) == bool(b)
    if _is_number(a) and _is_number(b) or isinstance(a, str) and isinstance(b, str):
        return a == b
    return type(a) is type(b) and a == b


def option_key(option: Any) -> Any:
    """A flat scalar standing for an option (itself when it is a bool/int/float/str, else its
    JSON text), for stores that only keep scalars: Optuna's params, CSV columns, MLflow."""
    return option if isinstance(option, SCALARS) else json.dumps(option, sort_keys=True)


def show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (bool, list, dict)) or value is None else str(value)


def normal_path(path: str) -> str:
    """`stages[2].groups` and `stages.2.groups` name one field; aliases resolve."""
    return re.sub(r"\[(\d+|\*)\]", r".\1", OVERRIDE_ALIASES.get(path, path))


def _paths_overlap(a: str, b: str) -> bool:
    """`stages.*.groups` vs `stages.2.groups` (or a prefix of one another): the same field."""
    return all(x == y or "*" in (x, y) for x, y in zip(a.split("."), b.split(".")))


@dataclass(frozen=True)
class Choice:
    """One decision of the search: its label, its domain, what it sets, when it exists."""

    label: str
    kind: str  # categorical | int | float
    options: tuple[Any, ...] = ()  # categorical
    low: float | None = None  # int / float ranges (inclusive)
    high: float | None = None
    step: int | None = None  # int: grid step (default 1)
    log: bool = False  # float: log-uniform
    targets: tuple[str, ...] = ()  # field paths that receive the value (`stages.2.groups` form)
    values: dict[Any, dict[str, Any]] = field(default_factory=dict)  # option key -> {path: value}
    when: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # label -> allowed values

    def sample(self, sampler: Chooser) -> Any:
        if self.kind == "categorical":
            return sampler.categorical(self.label, self.options)
        if self.kind == "int":
            return sampler.integer(self.label, int(self.low), int(self.high), int(self.step or 1))
        return sampler.real(self.label, float(self.low), float(self.high), self.log)

    def active(self, params: Mapping[str, Any]) -> bool:
        """Whether every `when` condition holds for the (already sampled) `params`."""
        return all(params.get(label) is not None and any(same(params[label], v) for v in allowed)
                   for label, allowed in self.when.items())

    def first(self) -> Any:
        return self.options[0] if self.kind == "categorical" else self.coerce(self.low)

    def domain(self) -> list[Any]:
        """Every value of a finite choice; SpecError for a float range (it has no list)."""
        if self.kind == "categorical":
            return list(self.options)
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        raise SpecError(f"{self.label} is a float range: its values cannot be listed")

    def coerce(self, value: Any) -> Any:
        """The canonical value for `value` (an option, its `option_key`, or a number in range);
        SpecError naming the label when it is none of these."""
        if self.kind == "categorical":
            for option in self.options:
                if same(value, option) or not isinstance(option, SCALARS) and same(value, option_key(option)):
                    return option
            shown = ", ".join(show(o) for o in self.options)
            raise SpecError(f"{self.label}={show(value)} is not one of {shown}")
        number_ok = _is_number(value)
        if self.kind == "int":
            if not number_ok or not float(value).is_integer():
                raise SpecError(f"{self.label}={show(value)} must be an integer")
            value = int(value)
            step = int(self.step or 1)
            if not self.low <= value <= self.high or (value - self.low) % step:
                grid = f" in steps of {step}" if step != 1 else ""
                raise SpecError(f"{self.label}={value} must be between {int(self.low)} and {int(self.high)}{grid}")
            return value
        if not number_ok or not self.low <= value <= self.high:
            raise SpecError(f"{self.label}={show(value)} must be a number between {self.low} and {self.high}")
        return float(value)

    def overrides(self, value: Any) -> list[tuple[str, Any]]:
        """The (field path, value) writes for canonical `value`, in order."""
        extra = self.values.get(option_key(value), {}) if self.kind == "categorical" else {}
        return [(path, value) for path in self.targets] + list(extra.items())


@dataclass(frozen=True)
class SearchSpace:
    name: str
    base: dict[str, Any]  # the raw spec dict the choices are written into
    choices: tuple[Choice, ...]
    description: str = ""
    path: str | None = None  # the YAML file it came from
    # Named points of the space (the paper's own nets) that a search evaluates first, on the
    # same budget, so its plot can mark them: {"ShuffleNet 0.5x g=3": {groups: 3, ...}}.
    references: tuple[tuple[str, dict[str, Any]], ...] = ()

    def labels(self) -> list[str]:
        return [c.label for c in self.choices]

    def refuse_keys(self, keys: Iterable[str]) -> None:
        """A search's `key=value` word that sets what this space chooses would be overwritten
        by every sample (or overwrite it): refused with one line naming the word and the choice."""
        chosen = {normal_path(p): c.label for c in self.choices
                  for p in (*c.targets, *(p for values in c.values.values() for p in values))}
        for key in keys:
            path = normal_path(key.removeprefix("model."))
            for target, label in chosen.items():
                if _paths_overlap(path, target):
                    raise SpecError(f"{key}= cannot be set in a search over {self.name!r}: the"
                                    f" space's choice {label!r} sets {target}; drop the word, or"
                                    " fix the choice in a copy of the space file")

    def sample(self, sampler: Chooser) -> dict[str, Any]:
        """One architecture: choices in order, skipping those whose `when` fails."""
        params: dict[str, Any] = {}
        for c in self.choices:
            if c.active(params):
                params[c.label] = c.sample(sampler)
        return params

    def points(self) -> Iterator[dict[str, Any]]:
        """Every point of a finite space, as `sample` would draw them (a choice whose `when`
        fails is left out): what an oracle front or the space's MAC range is computed over."""
        def grow(index: int, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
            if index == len(self.choices):
                yield dict(params)
                return
            choice = self.choices[index]
            if not choice.active(params):
                yield from grow(index + 1, params)
                return
            for value in choice.domain():
                yield from grow(index + 1, {**params, choice.label: value})

        with self._named():
            yield from grow(0, {})

    @contextmanager
    def _named(self) -> Iterator[None]:
        """SpecErrors prefixed with the space's name."""
        try:
            yield
        except SpecError as err:
            raise SpecError(f"{self.name}: {err}") from None

    def normalize(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Canonical values in choice order; drops `None` and `_bookkeeping` keys; SpecError for
        unknown labels, values outside a choice's domain and choices whose `when` fails."""
        with self._named():
            return self._normalize(params)

    def to_spec(self, params: Mapping[str, Any], **overrides: Any) -> NetSpec:
        """The checked NetSpec for a point; `overrides` (`resolution=32`, field paths) come last."""
        with self._named():
            return checked(spec_from_dict(self._spec_data(params, overrides)))

    def _normalize(self, params: Mapping[str, Any]) -> dict[str, Any]:
        labels = self.labels()
        for key in params:
            if not str(key).startswith("_") and key not in labels:
                raise SpecError(f"unknown choice {key!r}{suggest(str(key), labels)} (choices: {', '.join(labels)})")
        out: dict[str, Any] = {}
        for c in self.choices:
            value = params.get(c.label)
            if value is None:
                continue
            if not c.active(out):
                need = ", ".join(f"{k}={'|'.join(show(v) for v in vs)}" for k, vs in c.when.items())
                got = ", ".join(f"{k}={show(out.get(k))}" for k in c.when)
                raise SpecError(f"{c.label} is only chosen when {need} (got {got}); drop it")
            out[c.label] = c.coerce(value)
        return out

    def _spec_data(self, params: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
        point = self._normalize(params)
        data = self.base
        written: dict[str, str] = {}
        for c in self.choices:
            if c.label in point:
                for path, value in c.overrides(point[c.label]):
                    data = apply_overrides(data, {path: value})
                    written[normal_path(path)] = c.label
        for key, value in overrides.items():
            if normal_path(key) in written:
                raise SpecError(f"override {key}={show(value)} would overwrite choice"
                                f" {written[normal_path(key)]!r}; drop the override or the choice")
        return apply_overrides(data, dict(overrides))
