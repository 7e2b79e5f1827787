"""A campaign's durable state, `<output_dir>/<name>/state.json` (written atomically after every
event), one schema for both: format, kind, settings (`CampaignSettings.stored()`), parent_run_id,
points {cell@seed: {status, run_id, result, row}}, closed {trial: {status, error}} (a search's),
experiment {name, path} and data (an ablation's). A folder written before issue 29 (`search.json`;
`units` and flat `_cell` settings) is read in that layout and saved in this one on --resume."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nas.campaign.settings import FLAGS
from nas.checkpoint import read_json, write_json_atomic
from nas.errors import NasError
from nas.words import RunOverrides, parse_words

STATE_FILE = "state.json"
LEGACY_FILES = ("search.json",)  # a search's state file before issue 29
FORMAT = 2
COMMANDS = {"search": "nas search", "ablation": "nas ablate"}
LEGACY_NAMES = {f"{old}_{unit}": new for unit in ("trial", "cell")  # settings fields before issue 29
                for old, new in (("cpus_per", "cpus_per_point"), ("gpus_per", "gpus_per_point"),
                                 ("per", "per_point"))}


@dataclass
class State:
    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def points(self) -> dict[str, dict[str, Any]]:
        """One entry per started point (an ablation's cell@seed -> status, run id, result)."""
        return self.data.setdefault("points", {})

    @property
    def closed(self) -> dict[str, dict[str, str]]:
        """A search's trials the driver closed (after a kill, a lost worker, Ctrl-C)."""
        return self.data.setdefault("closed", {})

    def save(self) -> None:
        write_json_atomic(self.data, self.path)


def _found(folder: Path) -> Path | None:
    return next((folder / n for n in (STATE_FILE, *LEGACY_FILES) if (folder / n).exists()), None)


def _upgrade_settings(old: dict[str, Any]) -> dict[str, Any]:
    """Pre-issue-29 settings (one flat dict, `_trial` / `_cell` names, words as strings) as today's."""
    flat = {LEGACY_NAMES.get(k, k): v for k, v in old.items()}
    common = {k: flat.pop(k) for k in list(flat) if k in FLAGS}
    run = RunOverrides(parse_words(flat.pop("overrides", None) or []))
    return {**common, "run": asdict(run), "plan": flat}


def _upgrade(old: dict[str, Any], kind: str) -> dict[str, Any]:
    """A state written before issue 29 in today's schema."""
    data = {k: v for k, v in old.items() if k not in ("units", "settings")} | {"format": FORMAT, "kind": kind}
    if "units" in old:
        data["points"] = old["units"]
    settings = dict(old.get("settings") or {})
    if "experiment_name" in settings:
        data["experiment"] = {"name": settings.pop("experiment_name"),
                              "path": settings.pop("experiment_path", None)}
    if settings:
        data["settings"] = _upgrade_settings(settings)
    return data


def _read(path: Path, what: str) -> dict[str, Any]:
    data = read_json(path)
    if "format" not in data:
        data = _upgrade(data, "search" if path.name in LEGACY_FILES else "ablation")
    elif not isinstance(data["format"], int) or data["format"] > FORMAT:
        raise NasError(f"{path} has state format {data['format']!r}; this nas reads format {FORMAT} and"
                       " older: resume it with the nas that wrote it")
    if data.get("kind") != what:
        by = COMMANDS.get(data.get("kind"), "another command")
        raise NasError(f"{path} was written by {by}, not {COMMANDS[what]}; resume it with {by}")
    return data


def open_state(folder: Path, *, what: str, resume: bool) -> State:
    """The state of the campaign in `folder` (`what`: "search" or "ablation")."""
    found, path = _found(folder), folder / STATE_FILE
    if found is not None and not resume:
        raise NasError(f"{what} {folder.name!r} exists in {folder}; add --resume to continue it"
                       " or pick another --name")
    if resume:
        if found is None:
            raise NasError(f"nothing to resume: {path} does not exist")
        state = State(path, _read(found, what))
        if found != path:  # a legacy file: the folder moves to today's layout once, under its lock
            state.save()
            found.unlink()
        return state
    folder.mkdir(parents=True, exist_ok=True)
    return State(path, {"format": FORMAT, "kind": what})


def stored_state(folder: Path, *, what: str, resume: bool) -> dict[str, Any] | None:
    """A resumed campaign's state (None: a fresh one), read before the folder is opened so its
    settings can shape the checks that come first."""
    found = _found(folder) if resume else None
    return _read(found, what) if found is not None else None
