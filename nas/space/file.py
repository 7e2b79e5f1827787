"""The search-space file format (`search_spaces/*.yaml` are annotated examples): YAML read,
checked and turned into a `SearchSpace`. Keys: `name`, `description`, `base` (a preset name or a
spec mapping), `references` (named points), `choices` (label -> `options: [...]` or `range: {low,
high, step | log}`; `set:` field path(s); `values:` extra writes per option; `when: {label: value}`
on earlier choices). Loading refuses unknown keys, paths or values the schema rejects (for every
option) and a first option (conditions met) that does not build; other options may not build
(a group count that does not divide a width): a search records those points as infeasible.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from nas.errors import SpecError
from nas.loading import checked
from nas.presets import get_preset
from nas.schema import field_values, suggest
from nas.shipped import shipped_files
from nas.space.model import Choice, SearchSpace, normal_path, option_key, same, show
from nas.spec import NetSpec, apply_overrides, spec_from_dict
from nas.yaml_io import read_yaml

SPACE_KEYS = ("name", "description", "base", "choices", "references")
CHOICE_KEYS = ("options", "range", "set", "values", "when")
RANGE_KEYS = ("low", "high", "step", "log")
LABEL = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]*")


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
    raise SpecError(f"unknown search space {text!r}{suggest(text, shipped)}"
                    f" (spaces: {', '.join(shipped) or 'none'}; or give a YAML file path)")


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
        raise SpecError(f"{where} must be a number, got {show(value)}")
    return value


def _base(data: Any) -> dict[str, Any]:
    if isinstance(data, str):
        try:
            return copy.deepcopy(get_preset(data).spec_data)
        except SpecError as err:
            raise SpecError(f"base: {err}") from None
    if isinstance(data, dict):
        return copy.deepcopy(data)
    raise SpecError(f"base must be a preset name or a spec mapping, got {show(data)}")


def _options(where: str, options: Any) -> dict[str, Any]:
    if not isinstance(options, list) or not options:
        raise SpecError(f"{where}options must be a non-empty list, got {show(options)}")
    for i, option in enumerate(options):
        if option is None:
            raise SpecError(f"{where}options[{i}] is empty (null); a missing value means"
                            " 'not chosen', so name the option")
        if any(same(option, other) for other in options[:i]):
            raise SpecError(f"{where}options[{i}]={show(option)} is listed twice")
    return {"kind": "categorical", "options": tuple(options)}


def _domain(where: str, body: dict) -> dict[str, Any]:
    if ("options" in body) == ("range" in body):
        raise SpecError(f"{where} needs exactly one of options: [...] or range: {{low, high}}")
    if "options" in body:
        return _options(where, body["options"])
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
        raise SpecError(f"{where}range.log must be true or false, got {show(log)}")
    if isinstance(low, int) and isinstance(high, int):
        if log:
            raise SpecError(f"{where}range.log applies to float ranges; write low: {low}.0 for a"
                            " log-uniform number, or list integer values as options")
        step = rng.get("step", 1)
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise SpecError(f"{where}range.step must be a positive integer, got {show(step)}")
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
        raise SpecError(f"{where}set must be a field path or a list of them, got {show(raw)}")
    return tuple(normal_path(p) for p in paths)


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
            shown = ", ".join(show(o) for o in options)
            raise SpecError(f"{where}values.{show(key)} is not an option (options: {shown})")
        writes = {} if writes is None else writes
        if not isinstance(writes, dict) or not all(isinstance(p, str) for p in writes):
            raise SpecError(f"{where}values.{show(key)} must be a mapping of field paths to values")
        table[option_key(match[0])] = {normal_path(p): v for p, v in writes.items()}
    missing = [option for option in options if option_key(option) not in table]
    if missing and not targets:
        raise SpecError(f"{where}values has no entry for option {show(missing[0])}; give"
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
        try:
            when[label] = tuple(map(earlier[label].coerce, allowed if isinstance(allowed, list) else [allowed]))
        except SpecError as err:
            raise SpecError(f"{where}when: {err}") from None
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
    domain, targets = _domain(where, body), _targets(where, body)
    return Choice(label=label, targets=targets, values=_values(where, body, domain, targets),
                  when=_when(where, body, earlier), **domain)


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
    try:
        checked(spec_from_dict(space.base))
    except SpecError as err:
        raise SpecError(f"base: {err}") from None

    def fail(c: Choice, point: dict[str, Any], err: SpecError) -> SpecError:
        shown = ", ".join(f"{k}={show(v)}" for k, v in point.items())
        return SpecError(f"choices.{c.label}: {str(err).removeprefix(f'{space.name}: ')} (at {shown})")

    def write(data: dict[str, Any], c: Choice, option: Any) -> dict[str, Any]:
        for path, value in c.overrides(option):
            data = apply_overrides(data, {path: value})
        return data

    by_label = {c.label: c for c in space.choices}
    for c in space.choices:
        witness = _witness(c, by_label)
        try:
            space.to_spec(witness)
        except SpecError as err:
            raise fail(c, witness, err) from None
    # The schema check writes the k-th other option of every choice at once (conditions ignored:
    # the schema does not read them), a few conversions; only when that fails is each option
    # checked alone, to name the culprit.
    others = [(c, _others(c)) for c in space.choices]
    for k in range(max(len(options) for _, options in others)):
        data = space.base
        for c, options in others:
            data = write(data, c, options[min(k, len(options) - 1)]) if options else data
        try:
            field_values(NetSpec, data)
        except SpecError:
            for c, options in others:
                for option in options:
                    try:
                        field_values(NetSpec, write(space.base, c, option))
                    except SpecError as err:
                        raise fail(c, {c.label: option}, err) from None


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
        raise SpecError(f"name must be a non-empty string, got {show(name)}")
    if not isinstance(description, str):
        raise SpecError(f"description must be text, got {show(description)}")
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
