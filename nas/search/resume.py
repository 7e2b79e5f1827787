"""What a resumed search keeps: the settings that define its experiment (budget, objectives,
seed, early stopping, limits, `nas run` keys) come from its `search.json`, so a `--resume` that
forgets `--budget cpu data.root=...` goes on with the same fidelity instead of mixing two in one
study. A word left at its default takes the stored value; one that contradicts it is refused.
Where it runs (workers, concurrency, `data.root=`, `device=`), how many trials and the sampler
may change."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from nas.errors import NasError
from nas.words import parse_words, word_keys

KEPT = {"objectives": "--objectives", "seed": "--seed", "budget": "--budget", "max_macs": "max_macs=",
        "max_params": "max_params=", "asha": "--no-asha", "scheduler": "--scheduler",
        "references": "--no-references"}
MOVABLE_KEYS = ("data.root", "device")  # where the data lies and which device trains: not the experiment

def resumed_settings(given: Any, stored: dict[str, Any] | None, name: str) -> Any:
    """`given` (the command line's SearchSettings) with the stored experiment filled in where it was left at its
    default; a contradicting word is a one-line error naming what the search started with."""
    if not stored:
        return given
    default = type(given)(space=given.space)
    _same_space(given.space, stored.get("space", given.space), name)
    kept = {}
    for key, flag in KEPT.items():
        if key not in stored:
            continue
        value, was = getattr(given, key), stored[key]
        if value != getattr(default, key) and value != was:
            raise NasError(f"search {name!r} started with {_shown(flag, key, was)}; --resume keeps it"
                           f" (drop {_shown(flag, key, value)} or start a new --name)")
        kept[key] = was
    return replace(given, **kept, overrides=_resumed_words(given.overrides, stored.get("overrides", []), name))


def _same_space(given: str, stored: str, name: str) -> None:
    if Path(given).stem != Path(stored).stem:
        raise NasError(f"search {name!r} searches space {stored!r}, not {given!r}; resume it with"
                       f" --space {stored}")


def _resumed_words(given: list[str], stored: list[str], name: str) -> list[str]:
    """The stored `key=value` words, with `data.root=` / `device=` taken from the command line;
    any other word that adds to or changes them is refused."""
    stored_values, given_values = parse_words(stored), parse_words(given)
    changed = [k for k, v in given_values.items()
               if k not in MOVABLE_KEYS and stored_values.get(k, _MISSING) != v]
    if changed:
        was = " ".join(w for w in stored if w.partition("=")[0] not in MOVABLE_KEYS) or "none"
        raise NasError(f"search {name!r} started with the words {was}; --resume cannot change"
                       f" {', '.join(changed)} (only {', '.join(MOVABLE_KEYS)}) - start a new --name")
    moved = [w for w in given if w.partition("=")[0] in MOVABLE_KEYS]
    return [w for w in stored if w.partition("=")[0] not in word_keys(moved)] + moved


def _shown(flag: str, key: str, value: Any) -> str:
    """How the user would have typed `value` for `key`."""
    if key == "asha":
        return "early stopping" if value else "--no-asha"
    if key == "references":
        return "the reference nets" if value else "--no-references"
    if flag.endswith("="):
        return f"{flag}{value:g}" if isinstance(value, float) else f"{flag}{value}"
    return f"{flag} {value}"


_MISSING = object()
