"""A campaign's folder and its durable state: `<output_dir>/<name>/<state file>` (JSON, written
atomically after every event) beside the campaign's results. A fresh campaign refuses a folder
that holds one already; `--resume` refuses one that does not."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.checkpoint import read_json, write_json_atomic
from nas.errors import NasError


@dataclass
class State:
    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def points(self) -> dict[str, dict[str, Any]]:
        """One entry per started point (an ablation's `units`: cell@seed -> status, run id)."""
        return self.data.setdefault("units", {})

    def save(self) -> None:
        write_json_atomic(self.data, self.path)


def open_state(folder: Path, file_name: str, *, what: str, resume: bool) -> State:
    """The state of the campaign in `folder` (`what`: "search" or "ablation", for messages)."""
    path = folder / file_name
    if path.exists() and not resume:
        raise NasError(f"{what} {folder.name!r} exists in {folder}; add --resume to continue it"
                       " or pick another --name")
    if resume:
        if not path.exists():
            raise NasError(f"nothing to resume: {path} does not exist")
        return State(path, read_json(path))
    folder.mkdir(parents=True, exist_ok=True)
    return State(path)


def stored_settings(folder: Path, file_name: str, *, resume: bool) -> dict[str, Any] | None:
    """The settings a campaign being resumed started with (None: a fresh one, or none stored);
    read before the folder is opened, so they can shape the checks that come first."""
    path = folder / file_name
    return read_json(path).get("settings") if resume and path.exists() else None
