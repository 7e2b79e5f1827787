"""`key=value` words: the one parser of every sub-command, and its inverse for the commands nas
prints. Light on purpose (no torch, yaml imported when a word is read), so argument errors answer at once."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from nas.errors import NasError


def parse_word(item: str) -> tuple[str, Any]:
    """`key=value` -> (key, value); values are YAML scalars (0.5, true, relu6, 1e9, [1, 2])."""
    import yaml

    from nas.yaml_io import safe_load

    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise NasError(f"{item!r} is not key=value (e.g. train.epochs=10 or width=0.5)")
    try:
        return key, safe_load(raw) if raw else ""
    except (yaml.YAMLError, NasError):
        return key, raw


def parse_words(items: list[str] | None) -> dict[str, Any]:
    """Words in order (a later word wins) -> {key: value}."""
    return dict(parse_word(item) for item in items or [])


def word(key: str, value: Any) -> str:
    """(key, value) -> the `key=value` word that parses back to it (`parse_word`'s inverse)."""
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, width=10**9).strip()
    return f"{key}={text.removesuffix('...').strip()}"


@dataclass(frozen=True)
class RunOverrides:
    """A campaign's words as typed values, parsed once on the command line, in the form the state
    file keeps (so a stored one compares equal); the layers below never read a word again."""

    values: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", json.loads(json.dumps(dict(self.values), default=str)))

    def words(self) -> list[str]:
        """As the user would type them (for the commands printed and MLflow)."""
        return [word(key, value) for key, value in self.values.items()]
