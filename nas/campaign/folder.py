"""Where a campaign lives: `<output_dir>/<name>/`, `name` one plain folder name (`--name ../../etc`
cannot write outside `--output-dir`), and its clean-up when a fresh campaign is refused."""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from nas.campaign.lock import LOCK_FILE, held_folders, release
from nas.errors import NasError


def campaign_folder(output_dir: str | Path, name: str) -> Path:
    """`output_dir / name`, refusing a name that is not a single plain folder name."""
    if (not name or name in (".", "..") or any(c in name for c in "/\\\0")
            or name != name.strip() or name.startswith("~")):
        raise NasError(f"--name {name!r} must be a plain folder name inside --output-dir (no '/',"
                       " '..', '~' or surrounding spaces)")
    return Path(output_dir) / name


@contextmanager
def setup_guard() -> Iterator[None]:
    """Around a campaign's set-up: when it fails, its locks are given back and a fresh folder (only
    the lock in it) removed, so a refused command leaves no files behind."""
    before = held_folders()
    try:
        yield
    except BaseException:
        for folder in held_folders() - before:
            release(folder)
            try:
                if folder.is_dir() and {p.name for p in folder.iterdir()} <= {LOCK_FILE}:
                    shutil.rmtree(folder)
            except OSError:
                pass
        raise
