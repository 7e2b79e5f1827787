"""`key=value` words: the one parser of every sub-command (`nas run`, `search`, `ablate`,
`summary`). Light on purpose (no torch), so argument errors answer at once."""

from __future__ import annotations

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


def split_words(items: list[str], own: tuple[str, ...]) -> tuple[list[str], dict[str, Any]]:
    """A sub-command's own keys (`max_macs=`) apart from the `nas run` keys."""
    rest = [item for item in items if item.partition("=")[0] not in own]
    return rest, {k: v for k, v in parse_words(items).items() if k in own}


def word_keys(items: list[str]) -> list[str]:
    return [item.partition("=")[0] for item in items]
