"""A campaign's folder, `<output_dir>/<name>/` (`name` one plain folder name: `--name ../../etc`
cannot write outside `--output-dir`), and its one owner: an advisory `fcntl.flock` on
`<folder>/.lock`, so a second process (a `--resume` typed while the first runs) is refused in one
line naming the owner instead of closing its running points. The kernel drops a flock however its holder exits (`kill -9` too), so
a lock file left behind is free by construction; taking it again in the same process reuses it."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from nas.errors import NasError

LOCK_FILE = ".lock"

_HELD: dict[Path, int] = {}  # folder -> the open file descriptor that holds its lock


def _describe(path: Path) -> str:
    try:
        owner = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        owner = {}
    if not isinstance(owner, dict) or "pid" not in owner:
        return "another process"
    return f"process {owner['pid']} on {owner.get('host', '?')} (since {owner.get('since', '?')})"


def acquire(folder: Path, what: str) -> None:
    """Hold `folder`'s lock until this process exits or `release(folder)`; refuse in one line
    when another process holds it (`what`: "search" or "ablation")."""
    import fcntl

    folder = Path(folder).resolve()
    if folder in _HELD:
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise NasError(f"{what} {folder.name!r} is being run by {_describe(path)}; wait for it to"
                       f" end or stop it, then --resume (folder {folder})") from None
    os.ftruncate(fd, 0)  # who holds it, for the refusal message
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
             "command": " ".join(["nas", *sys.argv[1:]])[:300]}
    os.write(fd, json.dumps(owner).encode())
    os.fsync(fd)
    _HELD[folder] = fd


def release(folder: Path) -> None:
    """Give the lock up (the file stays: an unheld lock file is free for the next owner)."""
    fd = _HELD.pop(Path(folder).resolve(), None)
    if fd is not None:
        os.close(fd)  # closing the descriptor drops the flock


def held_folders() -> set[Path]:
    return set(_HELD)


@atexit.register
def _release_all() -> None:
    for folder in list(_HELD):
        release(folder)


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
