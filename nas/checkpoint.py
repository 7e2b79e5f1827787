"""Atomic checkpoints: written to a temporary file, fsynced, then renamed over the old one, so a
kill at any moment leaves either the previous checkpoint or the new one, never half of one."""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

from nas.errors import NasError


def save_atomic(state: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: str | Path) -> dict[str, Any]:
    """Load with `weights_only=True`: a checkpoint cannot run code. One that holds anything but
    tensors and plain data (a pickled object), or is truncated, is refused with one line."""
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
