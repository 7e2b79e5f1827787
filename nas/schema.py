"""Strict conversion between plain dicts (YAML) and frozen dataclasses: every error names the
field path (`stages[2].groups`), unknown keys get the closest valid name, and types are checked,
never coerced (`"3"` and `True` are not ints; `2.0` is one)."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import types
import typing
from typing import Any, Callable, TypeVar

from nas.errors import SpecError, UnknownNameError

T = TypeVar("T")


def suggest(name: str, options: typing.Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest option, or an empty string."""
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


MAX_INT = 2**62  # YAML ints are unbounded; nothing in a spec or config comes near this
SHOW_CHARS = 60


def clip(text: str) -> str:
    """`text` cut to a readable length: an error line stays one short line even for a 400-digit
    number, a megabyte string or such a key."""
    return text if len(text) <= SHOW_CHARS else f"{text[:SHOW_CHARS - 20]}... ({len(text):,} chars)"


def show(value: Any) -> str:
    return clip(repr(value))


def _convert(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _convert_union(value, typing.get_args(tp), path)
    if value is None:
        raise SpecError(f"{path} must not be empty")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise SpecError(f"{path} must be a list, got {show(value)}")
        return tuple(_convert(v, typing.get_args(tp)[0], f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise SpecError(f"{path} must be a mapping, got {show(value)}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    if tp in _SCALARS:
        return _SCALARS[tp](value, path)
    if tp is Any:
        return value
    raise TypeError(f"unsupported field type {getattr(tp, '__name__', tp)} at {path}")


def _convert_union(value: Any, args: tuple[Any, ...], path: str) -> Any:
    """`X | None` and other unions: None where allowed, else the first member that converts."""
    if value is None:
        if type(None) in args:
            return None
        raise SpecError(f"{path} must not be empty")
    errors = []
    for arg in (a for a in args if a is not type(None)):
        try:
            return _convert(value, arg, path)
        except SpecError as err:
            errors.append(str(err))
    raise SpecError(errors[0] if len(errors) == 1 else f"{path}={show(value)} has the wrong type")


def _to_bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise SpecError(f"{path} must be true or false, got {show(value)}")
    return value


def _to_int(value: Any, path: str) -> int:
    integral = isinstance(value, int) or isinstance(value, float) and math.isfinite(value) and value.is_integer()
    if isinstance(value, bool) or not integral:
        raise SpecError(f"{path} must be an integer, got {show(value)}")
    if abs(value) > MAX_INT:
        raise SpecError(f"{path}={show(value)} is out of range (at most {MAX_INT:.1e})")
    return int(value)


def _to_float(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{path} must be a number, got {show(value)}")
    if isinstance(value, int) and abs(value) > MAX_INT:  # float() of 10**400 overflows
        raise SpecError(f"{path}={show(value)} is out of range (at most {MAX_INT:.1e})")
    if not math.isfinite(value):
        raise SpecError(f"{path} must be a finite number, got {show(value)}")
    return float(value)


def _to_str(value: Any, path: str) -> str:
    if isinstance(value, bool):  # YAML 1.1 read `off` / `on` (train.amp=off) as booleans
        return "on" if value else "off"
    if not isinstance(value, str):
        raise SpecError(f"{path} must be a string, got {show(value)}")
    return value


_SCALARS = {bool: _to_bool, int: _to_int, float: _to_float, str: _to_str}  # field type -> its check


# Resolved annotations, cached: `get_type_hints` re-evaluates the strings on every call.
_hints: Callable[[type], dict[str, Any]] = functools.lru_cache(maxsize=None)(typing.get_type_hints)


def from_dict(cls: type[T], data: Any, path: str = "", root: str = "spec") -> T:
    """Build dataclass ``cls`` from ``data``, refusing unknown keys and wrong types."""
    return cls(**field_values(cls, data, path, root))


def field_values(cls: type, data: Any, path: str = "", root: str = "spec") -> dict[str, Any]:
    """The typed keyword arguments of ``cls`` in ``data`` (the schema check alone: ``cls``'s own
    checks, such as NetSpec's, do not run)."""
    where = path or root
    if not isinstance(data, dict):
        raise SpecError(f"{where} must be a mapping of fields, got {type(data).__name__}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        key_str = str(key)
        field_path = f"{path}.{clip(key_str)}" if path else clip(key_str)
        if key_str not in fields:
            raise UnknownNameError(
                f"{field_path} is not a field of {where}{suggest(key_str, fields)}"
                f" (fields: {', '.join(fields)})"
            )
        kwargs[key_str] = _convert(value, hints[key_str], field_path)
    for name, field in fields.items():
        if field.default is field.default_factory is dataclasses.MISSING and name not in kwargs:
            raise SpecError(f"{path + '.' if path else ''}{name} is required")
    return kwargs


def to_dict(obj: Any) -> Any:
    """Plain-data form of a dataclass tree (tuples become lists), suitable for YAML."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
