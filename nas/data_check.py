"""Data files checked as they are read: shapes, types and lengths as the format promises, every label
a class. A wrong file fails in one line naming it, not a numpy traceback or out-of-range labels
silently dropped from training and scored wrong on the test set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nas.errors import DataError

CIFAR_SHAPE = (3, 32, 32)


def _field(batch: Any, key: str, path: Path) -> Any:
    """A CIFAR batch's entry (Python 2 pickles have bytes keys, newer ones str keys)."""
    if not isinstance(batch, dict):
        raise DataError(f"{path}: not a CIFAR batch (a pickled dict), got {type(batch).__name__}")
    for k in (key, key.encode()):
        if k in batch:
            return batch[k]
    raise DataError(f"{path}: not a CIFAR batch: it has no {key!r} entry")


def _array(values: Any, path: Path | str, what: str) -> np.ndarray:
    try:
        return np.asarray(values)
    except (ValueError, TypeError) as err:
        raise DataError(f"{path}: {what} are not an array ({err})") from None


def as_images(values: Any, path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """`values` as N x C x H x W uint8: flat rows of C*H*W bytes (the CIFAR layout) or already NCHW."""
    arr = _array(values, path, "images")
    size = int(np.prod(shape))
    if arr.ndim == 2 and arr.shape[1] == size:
        arr = arr.reshape(-1, *shape)
    if arr.ndim != 4 or tuple(arr.shape[1:]) != shape:
        raise DataError(f"{path}: images have shape {arr.shape}, expected N x {size} (N x"
                        f" {' x '.join(map(str, shape))})")
    if arr.dtype != np.uint8:
        if arr.dtype.kind not in "iu" or (arr.size and (arr.min() < 0 or arr.max() > 255)):
            raise DataError(f"{path}: images must be bytes 0..255, got {arr.dtype}")
        arr = arr.astype(np.uint8)
    return arr


def as_labels(values: Any, path: Path | str, count: int, num_classes: int) -> np.ndarray:
    """`values` as N int64 class indices in [0, num_classes), one per image."""
    arr = _array(values, path, "labels")
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise DataError(f"{path}: labels must be a list of integers, got {arr.dtype} of shape {arr.shape}")
    if len(arr) != count:
        raise DataError(f"{path}: {len(arr)} labels for {count} images")
    bad = (arr < 0) | (arr >= num_classes)
    if bad.any():
        raise DataError(f"{path}: {int(bad.sum())} label(s) outside 0..{num_classes - 1}"
                        f" (e.g. {int(arr[bad][0])} at index {int(np.flatnonzero(bad)[0])})")
    return arr.astype(np.int64)


def cifar_batch(path: Path, batch: Any, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels of one CIFAR python batch file, checked."""
    x = as_images(_field(batch, "data", path), path, CIFAR_SHAPE)
    return x, as_labels(_field(batch, label_key, path), path, len(x), num_classes)


def check_split(x: np.ndarray, y: np.ndarray, num_classes: int, where: str) -> None:
    """What every loader returns (the last guard, for sources without files of their own)."""
    if not isinstance(x, np.ndarray) or x.ndim != 4 or x.dtype != np.uint8 or 0 in x.shape:
        raise DataError(f"{where}: images must be a non-empty N x C x H x W uint8 array,"
                        f" got {getattr(x, 'shape', type(x).__name__)}")
    as_labels(y, where, len(x), num_classes)
