"""What a resumed campaign keeps: the settings that define its experiment (the budget, the
`nas run` words and, for a search, its objectives, seed, early stopping and limits) come from
its state file, so a `--resume` that forgets `--budget cpu train.lr=0.2` goes on with the same
experiment instead of mixing two in one study or grid. A flag left at its default takes the
stored value; one that contradicts it is refused in one line. Where it runs (workers,
concurrency, `data.root=`, `device=`) and how far it goes (`--trials`, `--seeds`) may change."""

from __future__ import annotations

from dataclasses import MISSING, fields, replace
from typing import Any, Mapping

from nas.errors import NasError
from nas.words import parse_words, word_keys

MOVABLE_KEYS = ("data.root", "device")  # where the data lies and which device trains: not the experiment


def resumed_settings(given: Any, stored: Mapping[str, Any] | None, kept: Mapping[str, str], *,
                     what: str, name: str) -> Any:
    """`given` (a settings dataclass from the command line) with each `kept` field (-> its flag)
    taken from `stored` where the command line left it at its default, and the stored words."""
    if not stored:
        return given
    adopted = {}
    for key, flag in kept.items():
        if key not in stored:
            continue
        value, was = getattr(given, key), stored[key]
        if value != _default(given, key) and value != was:
            raise NasError(f"{what} {name!r} started with {_shown(flag, was)}; --resume keeps it"
                           f" (drop {_shown(flag, value)} or start a new --name)")
        adopted[key] = was
    words = _resumed_words(given.overrides, stored.get("overrides", []), what, name)
    return replace(given, **adopted, overrides=words)


def _default(settings: Any, key: str) -> Any:
    field = next(f for f in fields(settings) if f.name == key)
    return field.default_factory() if field.default is MISSING else field.default


def _resumed_words(given: list[str], stored: list[str], what: str, name: str) -> list[str]:
    """The stored `key=value` words, with `data.root=` / `device=` taken from the command line;
    any other word that adds to or changes them is refused."""
    stored_values = parse_words(stored)
    changed = [k for k, v in parse_words(given).items()
               if k not in MOVABLE_KEYS and stored_values.get(k, _MISSING) != v]
    if changed:
        was = " ".join(w for w in stored if w.partition("=")[0] not in MOVABLE_KEYS) or "none"
        raise NasError(f"{what} {name!r} started with the words {was}; --resume cannot change"
                       f" {', '.join(changed)} (only {', '.join(MOVABLE_KEYS)}) - start a new --name")
    moved = [w for w in given if w.partition("=")[0] in MOVABLE_KEYS]
    return [w for w in stored if w.partition("=")[0] not in word_keys(moved)] + moved


def _shown(flag: str, value: Any) -> str:
    """How the user would have typed `value` for `flag` ("--no-asha" names a boolean's False)."""
    if flag.startswith("--no-"):
        return f"the default ({flag[5:]} on)" if value else flag
    if flag.endswith("="):
        return f"{flag}{value:g}" if isinstance(value, float) else f"{flag}{value}"
    return f"{flag} {value}"


_MISSING = object()
