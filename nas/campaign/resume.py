"""What a resumed campaign keeps: the plan's `kept` fields and the `nas run` words come from its
state file, so a `--resume` that forgets `--budget cpu train.lr=0.2` does not mix two experiments
in one study or grid. A flag left at its default takes the stored value; one that contradicts it is
refused. Where it runs (`data.root=`, `device=`, workers) and how far (`--trials`, `--seeds`) may
change. Values are compared typed, as the command line parsed them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, TypeVar

from nas.campaign.settings import CampaignSettings, flags
from nas.errors import NasError
from nas.words import RunOverrides

MOVABLE_KEYS = ("data.root", "device")  # where the data lies and which device trains: not the experiment
P = TypeVar("P")


def resumed_settings(given: CampaignSettings[P], stored: CampaignSettings[P] | None, *,
                     name: str) -> CampaignSettings[P]:
    """`given` (from the command line) with each kept plan field taken from `stored` where the
    command line left it at its default, and the stored words."""
    if stored is None:
        return given
    what, adopted = given.plan.KIND.campaign, {}
    for key, fl in flags(type(given.plan)).items():
        if not fl.kept:
            continue
        value, was = getattr(given.plan, key), getattr(stored.plan, key)
        if value != fl.default and value != was:
            raise NasError(f"{what} {name!r} started with {fl.shown(was, given.unit)}; --resume keeps it"
                           f" (drop {fl.shown(value, given.unit)} or start a new --name)")
        adopted[key] = was
    run = _resumed_run(given.run, stored.run, what, name)
    return replace(given.with_plan(**adopted), run=run)


def started_settings(state: dict[str, Any] | None, plan_cls: type[P]) -> CampaignSettings[P] | None:
    """The settings a campaign's state says it started with (None: a fresh one, none stored)."""
    return CampaignSettings.from_stored(state["settings"], plan_cls) if state and "settings" in state else None


def _resumed_run(given: RunOverrides, stored: RunOverrides, what: str, name: str) -> RunOverrides:
    """The stored words, with `data.root=` / `device=` taken from the command line; any other
    word that adds to or changes them is refused."""
    changed = [k for k, v in given.values.items()
               if k not in MOVABLE_KEYS and stored.values.get(k, _MISSING) != v]
    if changed:
        kept = RunOverrides({k: v for k, v in stored.values.items() if k not in MOVABLE_KEYS})
        raise NasError(f"{what} {name!r} started with the words {' '.join(kept.words()) or 'none'};"
                       f" --resume cannot change {', '.join(changed)} (only {', '.join(MOVABLE_KEYS)})"
                       " - start a new --name")
    moved = {k: v for k, v in given.values.items() if k in MOVABLE_KEYS}
    return RunOverrides({**{k: v for k, v in stored.values.items() if k not in moved}, **moved})


_MISSING: Any = object()
