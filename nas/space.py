"""Search spaces: a base spec plus named choices, declared in YAML and sampled by any searcher.

A space file (`search_spaces/*.yaml`) names a base network (a preset or an inline spec) and the
choices a search makes, each under a flat label (NNI-style: `width`, `s1.depth`, `s2.exp`):

    name: shufflenet                    # optional; defaults to the file name
    description: ShuffleNet v1 around the paper's g=3 network
    base: shufflenet_v1_g3              # a preset name, or a spec mapping
    choices:
      groups:
        options: [1, 2, 3, 4, 8]        # categorical
        set: stages.*.groups            # field path(s) the value is written to
        values:                         # extra fields per option (here the paper's channel table)
          3: {stages.0.channels: 240, stages.1.channels: 480, stages.2.channels: 960}
      s1.depth:
        range: {low: 4, high: 8}        # int (optional step); float when low/high are floats (log)
        set: stages.1.repeats
      s1.exp:
        options: [3, 4, 6]
        set: stages.1.expansion
        when: {s1.block: ir}            # only when an earlier choice has this value (or one of a list)

A sampled architecture is a flat dict `{label: value}` holding the choices whose `when` holds;
`SearchSpace.to_spec(params, resolution=32, num_classes=10)` writes it into the base (choices in
file order, each `set` path then its `values`) and builds the checked `NetSpec`. A label left
out keeps the base's value, so `to_spec({})` is the base network, and a paper preset is one point
of its space. Keys starting with `_` (adapter bookkeeping) and `None` values are ignored.
The caller's overrides (the data set's resolution and classes) come last; one that would
overwrite a field a chosen value wrote is refused, so no choice is silently dead.

Loading checks the file like a spec: unknown keys (with the closest valid name), labels in `when`
that are not earlier choices, paths or values that do not fit the spec schema (for every option),
and that the first option of every choice (with its conditions met) builds. Other options may give
networks that do not build (a ShuffleNet group count that does not divide a width): a search
samples such points and records them as infeasible.

A point is drawn through the `Chooser` protocol (one value per choice, asked in order):
`RandomChooser` here (seeded; the time estimate draws typical points with it), Optuna's
define-by-run trials in `nas.search.optuna_choices`.
"""

from __future__ import annotations

import copy
import json
import math
import numbers
import random
import re
from dataclasses import dataclass, replace, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Protocol, Sequence

from nas.errors import SpecError
from nas.schema import from_dict, suggest
from nas.shipped import shipped_files
from nas.loading import checked
from nas.spec import OVERRIDE_ALIASES, NetSpec, apply_overrides, spec_from_dict
from nas.yaml_io import read_yaml


SPACE_KEYS = ("name", "description", "base", "choices", "references")
CHOICE_KEYS = ("options", "range", "set", "values", "when")
RANGE_KEYS = ("low", "high", "step", "log")
LABEL = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]*")
SCALARS = (bool, int, float, str)


# ----------------------------------------------------------------------------- samplers


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


# ----------------------------------------------------------------------------- values


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


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (bool, list, dict)) or value is None else str(value)


def _normal_path(path: str) -> str:
    """`stages[2].groups` and `stages.2.groups` name one field; aliases resolve."""
    path = OVERRIDE_ALIASES.get(path, path)
    return re.sub(r"\[(\d+|\*)\]", r".\1", path)


def _paths_overlap(a: str, b: str) -> bool:
    """`stages.*.groups` vs `stages.2.groups` (or a prefix of one another): the same field."""
    pa, pb = a.split("."), b.split(".")
    return all(x == y or "*" in (x, y) for x, y in zip(pa, pb))


# ----------------------------------------------------------------------------- choices


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
        return all(
            params.get(label) is not None and any(same(params[label], v) for v in allowed)
            for label, allowed in self.when.items()
        )

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
                if same(value, option) or (not isinstance(option, SCALARS)
                                            and same(value, option_key(option))):
                    return option
            shown = ", ".join(_show(o) for o in self.options)
            raise SpecError(f"{self.label}={_show(value)} is not one of {shown}")
        number_ok = _is_number(value)
        if self.kind == "int":
            if not number_ok or not float(value).is_integer():
                raise SpecError(f"{self.label}={_show(value)} must be an integer")
            value = int(value)
            step = int(self.step or 1)
            if not self.low <= value <= self.high or (value - self.low) % step:
                grid = f" in steps of {step}" if step != 1 else ""
                raise SpecError(f"{self.label}={value} must be between {int(self.low)} and"
                                f" {int(self.high)}{grid}")
            return value
        if not number_ok or not self.low <= value <= self.high:
            raise SpecError(f"{self.label}={_show(value)} must be a number between {self.low}"
                            f" and {self.high}")
        return float(value)

    def overrides(self, value: Any) -> list[tuple[str, Any]]:
        """The (field path, value) writes for canonical `value`, in order."""
        writes = [(path, value) for path in self.targets]
        extra = self.values.get(option_key(value), {}) if self.kind == "categorical" else {}
        return writes + list(extra.items())


# ----------------------------------------------------------------------------- spaces


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

    def choice(self, label: str) -> Choice:
        for c in self.choices:
            if c.label == label:
                return c
        labels = self.labels()
        raise SpecError(f"{self.name}: unknown choice {label!r}{suggest(label, labels)}"
                        f" (choices: {', '.join(labels)})")

    def chosen_paths(self) -> dict[str, str]:
        """Every spec field path a choice may set -> the choice's label (what a search's
        `key=value` words must leave alone)."""
        out: dict[str, str] = {}
        for c in self.choices:
            paths = list(c.targets) + [p for values in c.values.values() for p in values]
            out.update({_normal_path(p): c.label for p in paths})
        return out

    def refuse_words(self, words: list[str]) -> None:
        """A search's `key=value` word that sets what this space chooses would be overwritten
        by every sample (or overwrite it): refused with one line naming the word and the choice."""
        chosen = self.chosen_paths()
        for word in words:
            key = word.partition("=")[0]
            path = _normal_path(key[len("model."):] if key.startswith("model.") else key)
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

        try:
            yield from grow(0, {})
        except SpecError as err:
            raise SpecError(f"{self.name}: {err}") from None

    def normalize(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Canonical values in choice order; drops `None` and `_bookkeeping` keys; SpecError for
        unknown labels, values outside a choice's domain and choices whose `when` fails."""
        try:
            return self._normalize(params)
        except SpecError as err:
            raise SpecError(f"{self.name}: {err}") from None

    def spec_data(self, params: Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
        """The raw spec dict for `params` (see `to_spec`), before the schema and the checks."""
        try:
            return self._spec_data(params, overrides)
        except SpecError as err:
            raise SpecError(f"{self.name}: {err}") from None

    def to_spec(self, params: Mapping[str, Any], **overrides: Any) -> NetSpec:
        """The checked NetSpec for a sampled point; `overrides` (`resolution=32`, `num_classes=10`,
        `in_channels=1` or field paths) are applied after the choices. SpecError (one line,
        prefixed with the space's name) when the point does not give a network that builds."""
        try:
            return checked(spec_from_dict(self._spec_data(params, overrides)))
        except SpecError as err:
            raise SpecError(f"{self.name}: {err}") from None

    def _normalize(self, params: Mapping[str, Any]) -> dict[str, Any]:
        labels = self.labels()
        for key in params:
            if not str(key).startswith("_") and key not in labels:
                raise SpecError(f"unknown choice {key!r}{suggest(str(key), labels)}"
                                f" (choices: {', '.join(labels)})")
        out: dict[str, Any] = {}
        for c in self.choices:
            value = params.get(c.label)
            if value is None:
                continue
            if not c.active(out):
                need = ", ".join(f"{k}={'|'.join(_show(v) for v in vs)}" for k, vs in c.when.items())
                got = ", ".join(f"{k}={_show(out.get(k))}" for k in c.when)
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
                    written[_normal_path(path)] = c.label
        for key, value in overrides.items():
            if _normal_path(key) in written:
                raise SpecError(f"override {key}={_show(value)} would overwrite choice"
                                f" {written[_normal_path(key)]!r}; drop the override or the choice")
        return apply_overrides(data, dict(overrides))


# ----------------------------------------------------------------------------- loading


def space_names() -> list[str]:
    """The shipped spaces (`search_spaces/*.yaml` in a checkout, `nas/search_spaces/` installed)."""
    return list(shipped_files("nas.search_spaces"))


def load_space(name_or_path: str | Path) -> SearchSpace:
    """A shipped space by name (`shufflenet`), else a YAML file path."""
    text = str(name_or_path)
    shipped = shipped_files("nas.search_spaces")
    if "/" not in text and not text.endswith((".yaml", ".yml")) and text in shipped:
        return read_space(shipped[text])
    path = Path(text).expanduser()
    if path.is_file():
        return read_space(path)
    names = space_names()
    raise SpecError(f"unknown search space {text!r}{suggest(text, names)}"
                    f" (spaces: {', '.join(names) or 'none'}; or give a YAML file path)")


def read_space(path: str | Path) -> SearchSpace:
    data = read_yaml(path)
    if data is None:
        raise SpecError(f"{path}: the file is empty; write a search space (see search_spaces/)")
    try:
        return parse_space(data, default_name=Path(path).stem, path=str(Path(path).resolve()))
    except SpecError as err:
        raise SpecError(f"{path}: {err}") from None


def _refuse_unknown(where: str, data: dict, allowed: Sequence[str]) -> None:
    for key in data:
        if key not in allowed:
            raise SpecError(f"{where}{key} is not a key here{suggest(str(key), allowed)}"
                            f" (keys: {', '.join(allowed)})")


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecError(f"{where} must be a number, got {_show(value)}")
    return value


def _base(data: Any) -> dict[str, Any]:
    if isinstance(data, str):
        from nas.presets import get_preset

        try:
            return copy.deepcopy(get_preset(data).spec_data)
        except SpecError as err:
            raise SpecError(f"base: {err}") from None
    if isinstance(data, dict):
        return copy.deepcopy(data)
    raise SpecError(f"base must be a preset name or a spec mapping, got {_show(data)}")


def _domain(where: str, body: dict) -> dict[str, Any]:
    if ("options" in body) == ("range" in body):
        raise SpecError(f"{where} needs exactly one of options: [...] or range: {{low, high}}")
    if "options" in body:
        options = body["options"]
        if not isinstance(options, list) or not options:
            raise SpecError(f"{where}options must be a non-empty list, got {_show(options)}")
        for i, option in enumerate(options):
            if option is None:
                raise SpecError(f"{where}options[{i}] is empty (null); a missing value means"
                                " 'not chosen', so name the option")
            if any(same(option, other) for other in options[:i]):
                raise SpecError(f"{where}options[{i}]={_show(option)} is listed twice")
        return {"kind": "categorical", "options": tuple(options)}
    rng = body["range"]
    if not isinstance(rng, dict):
        raise SpecError(f"{where}range must be a mapping {{low, high, step}} or {{low, high, log}}")
    _refuse_unknown(f"{where}range.", rng, RANGE_KEYS)
    for key in ("low", "high"):
        if key not in rng:
            raise SpecError(f"{where}range.{key} is required")
    low, high = _number(f"{where}range.low", rng["low"]), _number(f"{where}range.high", rng["high"])
    if low > high:
        raise SpecError(f"{where}range.low={low} must not exceed range.high={high}")
    log = rng.get("log", False)
    if not isinstance(log, bool):
        raise SpecError(f"{where}range.log must be true or false, got {_show(log)}")
    if isinstance(low, int) and isinstance(high, int):
        if log:
            raise SpecError(f"{where}range.log applies to float ranges; write low: {low}.0 for a"
                            " log-uniform number, or list integer values as options")
        step = rng.get("step", 1)
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise SpecError(f"{where}range.step must be a positive integer, got {_show(step)}")
        if (high - low) % step:
            raise SpecError(f"{where}range.high={high} is not low={low} plus a multiple of"
                            f" step={step}; use {low + (high - low) // step * step}")
        return {"kind": "int", "low": low, "high": high, "step": step}
    if "step" in rng:
        raise SpecError(f"{where}range.step applies to integer ranges; list the values as options")
    if log and low <= 0:
        raise SpecError(f"{where}range.low={low} must be > 0 for a log range")
    return {"kind": "float", "low": float(low), "high": float(high), "log": log}


def _targets(where: str, body: dict) -> tuple[str, ...]:
    raw = body.get("set", [])
    paths = [raw] if isinstance(raw, str) else raw
    if not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
        raise SpecError(f"{where}set must be a field path or a list of them, got {_show(raw)}")
    return tuple(_normal_path(p) for p in paths)


def _values(where: str, body: dict, domain: dict, targets: tuple[str, ...]) -> dict[Any, dict]:
    if "values" not in body:
        if not targets:
            raise SpecError(f"{where[:-1]} sets nothing: add set: <field path> or values:"
                            " {option: {path: value}}")
        return {}
    if domain["kind"] != "categorical":
        raise SpecError(f"{where}values applies to options, not to a range")
    raw = body["values"]
    if not isinstance(raw, dict):
        raise SpecError(f"{where}values must map each option to {{field path: value}}")
    options = domain["options"]
    table: dict[Any, dict[str, Any]] = {}
    for key, writes in raw.items():
        match = [o for o in options if same(key, o) or same(key, option_key(o))]
        if not match:
            shown = ", ".join(_show(o) for o in options)
            raise SpecError(f"{where}values.{_show(key)} is not an option (options: {shown})")
        if writes is None:
            writes = {}
        if not isinstance(writes, dict) or not all(isinstance(p, str) for p in writes):
            raise SpecError(f"{where}values.{_show(key)} must be a mapping of field paths to values")
        table[option_key(match[0])] = {_normal_path(p): v for p, v in writes.items()}
    if not targets:
        for option in options:
            if option_key(option) not in table:
                raise SpecError(f"{where}values has no entry for option {_show(option)}; give"
                                " one (an empty {} keeps the base)")
    return table


def _when(where: str, body: dict, earlier: dict[str, Choice]) -> dict[str, tuple[Any, ...]]:
    raw = body.get("when", {})
    if not isinstance(raw, dict) or not raw and "when" in body:
        raise SpecError(f"{where}when must map earlier choices to a value, e.g."
                        " when: {s1.block: ir}")
    when: dict[str, tuple[Any, ...]] = {}
    for label, allowed in raw.items():
        label = str(label)
        if label not in earlier:
            raise SpecError(f"{where}when.{label} is not an earlier choice"
                            f"{suggest(label, earlier)} (choices so far: {', '.join(earlier) or 'none'})")
        parent = earlier[label]
        values = tuple(allowed) if isinstance(allowed, list) else (allowed,)
        canon = []
        for v in values:
            try:
                canon.append(parent.coerce(v))
            except SpecError as err:
                raise SpecError(f"{where}when: {err}") from None
        when[label] = tuple(canon)
    return when


def _parse_choice(label: Any, body: Any, earlier: dict[str, Choice]) -> Choice:
    label = str(label)
    where = f"choices.{label}."
    if not LABEL.fullmatch(label):
        raise SpecError(f"choices: label {label!r} must start with a letter and use letters,"
                        " digits, '_', '.', '-' (e.g. s1.depth)")
    if not isinstance(body, dict):
        raise SpecError(f"choices.{label} must be a mapping (options or range, set or values)")
    _refuse_unknown(where, body, CHOICE_KEYS)
    domain = _domain(where, body)
    targets = _targets(where, body)
    values = _values(where, body, domain, targets)
    when = _when(where, body, earlier)
    return Choice(label=label, targets=targets, values=values, when=when, **domain)


def _witness(choice: Choice, by_label: dict[str, Choice]) -> dict[str, Any]:
    """The smallest point where `choice` exists: its conditions (recursively) met with their
    first allowed value, and `choice` at its first option."""
    point: dict[str, Any] = {}

    def need(c: Choice, value: Any) -> None:
        for label, allowed in c.when.items():
            if label not in point:
                need(by_label[label], allowed[0])
        point[c.label] = value

    need(choice, choice.first())
    return {c: point[c] for c in by_label if c in point}  # choice order


def _others(c: Choice) -> list[Any]:
    return list(c.options[1:]) if c.kind == "categorical" else [c.coerce(c.high)]


def _check_choices(space: SearchSpace) -> None:
    """The first option of every choice, with its conditions met, must build; every other
    option must fit the schema (its field paths exist, its values have the field's type)."""
    by_label = {c.label: c for c in space.choices}
    try:
        checked(spec_from_dict(space.base))
    except SpecError as err:
        raise SpecError(f"base: {err}") from None

    def fail(c: Choice, point: dict[str, Any], err: SpecError) -> SpecError:
        message = str(err).removeprefix(f"{space.name}: ")
        shown = ", ".join(f"{k}={_show(v)}" for k, v in point.items())
        return SpecError(f"choices.{c.label}: {message} (at {shown})")

    for c in space.choices:
        witness = _witness(c, by_label)
        try:
            space.to_spec(witness)
        except SpecError as err:
            raise fail(c, witness, err) from None
    # The schema check of the other options writes the k-th option of every choice at once
    # (conditions ignored: the schema does not look at them), so it costs a few conversions;
    # only when one fails are the choices checked one by one to name the culprit.
    rounds = max(len(_others(c)) for c in space.choices)
    for k in range(rounds):
        data = space.base
        for c in space.choices:
            others = _others(c)
            if others:
                for path, value in c.overrides(others[min(k, len(others) - 1)]):
                    data = apply_overrides(data, {path: value})
        try:
            from_dict(NetSpec, data)
            continue
        except SpecError:
            pass
        for c in space.choices:
            for option in _others(c):
                point = {c.label: option}
                try:
                    data = space.base
                    for path, value in c.overrides(option):
                        data = apply_overrides(data, {path: value})
                    from_dict(NetSpec, data)
                except SpecError as err:
                    raise fail(c, point, err) from None


def parse_space(data: Any, default_name: str = "space", path: str | None = None) -> SearchSpace:
    """Build and check a SearchSpace from the YAML's plain data."""
    if not isinstance(data, dict):
        raise SpecError(f"a search space must be a mapping with base: and choices:, got"
                        f" {type(data).__name__}")
    _refuse_unknown("", data, SPACE_KEYS)
    for key in ("base", "choices"):
        if key not in data:
            raise SpecError(f"{key} is required (a search space is base: + choices:)")
    name = data.get("name", default_name)
    description = data.get("description", "")
    if not isinstance(name, str) or not name:
        raise SpecError(f"name must be a non-empty string, got {_show(name)}")
    if not isinstance(description, str):
        raise SpecError(f"description must be text, got {_show(description)}")
    base = _base(data["base"])
    raw = data["choices"]
    if not isinstance(raw, dict) or not raw:
        raise SpecError("choices must be a non-empty mapping of label: {options or range, set}")
    earlier: dict[str, Choice] = {}
    for label, body in raw.items():
        earlier[str(label)] = _parse_choice(label, body, earlier)
    space = SearchSpace(name, base, tuple(earlier.values()), description.strip(), path)
    _check_choices(space)
    refs = data.get("references") or {}
    if not isinstance(refs, dict):
        raise SpecError("references must be a mapping of name: {label: value, ...}")
    points = []
    for ref_name, point in refs.items():
        if not isinstance(point, dict):
            raise SpecError(f"references.{ref_name} must be a mapping of label: value")
        try:
            points.append((str(ref_name), space.normalize(point)))
        except SpecError as err:
            raise SpecError(f"references.{ref_name}: {err}") from None
    return replace(space, references=tuple(points))
