"""Atomic checkpoints: written to a temporary file, fsynced, then renamed over the old one, so a
kill at any moment leaves either the previous checkpoint or the new one, never half of one."""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

import torch

from nas.errors import NasError


def _write_atomic(path: str | Path, write: Callable[[BinaryIO], Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_atomic(state: dict[str, Any], path: str | Path) -> None:
    _write_atomic(path, lambda f: torch.save(state, f))


def write_json_atomic(data: dict[str, Any], path: str | Path) -> None:
    """A search's or ablation's state file: a kill leaves the old one or the new one, whole."""
    _write_atomic(path, lambda f: f.write(json.dumps(data, indent=1, default=str).encode()))


def read_json(path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise NasError(f"cannot read {path}: {err}") from None
    if not isinstance(data, dict):
        raise NasError(f"cannot read {path}: not a state file (a {type(data).__name__})")
    return data


def load(path: str | Path) -> dict[str, Any]:
    """Load with `weights_only=True`, so a checkpoint cannot run code; one holding a pickled object,
    or truncated, is refused with one line."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise NasError(f"checkpoint {path} holds pickled Python objects, which could run code;"
                       " refused (weights_only). Delete it to start the run over") from None
    except (RuntimeError, EOFError, ValueError, TypeError, AttributeError, ImportError) as err:
        raise NasError(f"checkpoint {path} is truncated or not a nas checkpoint"
                       f" ({type(err).__name__}); delete it to start the run over") from None
    if not isinstance(state, dict):
        raise NasError(f"checkpoint {path} holds a {type(state).__name__}, not a checkpoint;"
                       " delete it to start the run over")
    return state
