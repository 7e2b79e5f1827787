"""A data set loaded for training: read by its source, split, its channel statistics computed,
optionally made gray or resized once, and moved to the training device."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING

from nas.data_check import check_split
from nas.data.sources import LOADERS, DataConfig, RawData, default_root
from nas.data.splits import DataBundle, Split, default_val_size, split_indices

if TYPE_CHECKING:  # numpy and torch load on first use: `nas run train.lrr=1` answers at once
    import numpy as np
    import torch

LUMA_601 = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights for RGB -> gray


def channel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean/std in [0,1] units, via a 256-bin histogram (no float copy)."""
    import numpy as np

    v = np.arange(256, dtype=np.float64)
    mean, std = [], []
    for c in range(x.shape[1]):
        h = np.bincount(x[:, c].ravel(), minlength=256).astype(np.float64)
        m = (h * v).sum() / h.sum()
        mean.append(float(m / 255))
        std.append(math.sqrt(max(float((h * v * v).sum() / h.sum() - m * m), 0.0)) / 255)
    return tuple(mean), tuple(std)


def to_gray(x: np.ndarray) -> np.ndarray:
    """RGB uint8 NCHW -> 1-channel luma, rounded (BT.601)."""
    import numpy as np

    w = np.array(LUMA_601, dtype=np.float32).reshape(1, 3, 1, 1)
    return np.rint((x * w).sum(1, keepdims=True)).clip(0, 255).astype(np.uint8)


def load_data(cfg: DataConfig, device: torch.device | str = "cpu") -> DataBundle:
    """Load, split and move a data set to `device` as uint8 tensors."""
    import numpy as np
    import torch

    root = Path(cfg.root).expanduser() if cfg.root else default_root()
    raw = LOADERS[cfg.name](cfg, root)
    for x, y, split_name in ((raw.train_x, raw.train_y, "train"), (raw.test_x, raw.test_y, "test")):
        check_split(x, y, len(raw.class_names), f"data.name={cfg.name} {split_name} split ({root})")
    if cfg.grayscale and raw.train_x.shape[1] == 3:
        raw = RawData(to_gray(raw.train_x), raw.train_y, to_gray(raw.test_x), raw.test_y, raw.class_names)
    k = len(raw.class_names)
    labels = torch.from_numpy(raw.train_y)
    val_size = default_val_size(len(labels)) if cfg.val_size is None else cfg.val_size
    train_idx, val_idx = split_indices(labels, val_size, cfg.train_subset, cfg.split_seed, k)
    mean, std = raw.mean, raw.std
    if mean is None or std is None:  # from every non-validation image, so subsets share constants
        keep = np.ones(len(raw.train_y), dtype=bool)
        keep[val_idx.numpy()] = False
        mean, std = channel_stats(raw.train_x[keep])

    def split(x: np.ndarray, y: np.ndarray, idx: torch.Tensor | None = None) -> Split:
        if idx is not None:
            x, y = x[idx.numpy()], y[idx.numpy()]
        return Split(torch.from_numpy(np.ascontiguousarray(x)).to(device),
                     torch.from_numpy(np.asarray(y, dtype=np.int64)).to(device))

    _, c, h, _ = raw.train_x.shape
    bundle = DataBundle(cfg.name, split(raw.train_x, raw.train_y, train_idx),
                        split(raw.train_x, raw.train_y, val_idx), split(raw.test_x, raw.test_y),
                        k, c, h, tuple(mean), tuple(std), list(raw.class_names))
    return resize_bundle(bundle, cfg.resize) if cfg.resize else bundle


def resize_images(images: torch.Tensor, size: int, chunk: int = 2048) -> torch.Tensor:
    """uint8 N x C x H x W -> N x C x size x size (bilinear, antialiased when shrinking), rounded, once
    per split in chunks (bounding the float copy): a lower resolution costs nothing per batch."""
    import torch
    import torch.nn.functional as F

    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = torch.empty((*images.shape[:2], size, size), dtype=torch.uint8, device=images.device)
    for i in range(0, images.shape[0], chunk):
        x = images[i:i + chunk].float()
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=size < images.shape[-1])
        out[i:i + chunk] = x.round_().clamp_(0, 255).to(torch.uint8)
    return out


def to_device(data: DataBundle, device: torch.device) -> DataBundle:
    """Every split moved to `device` once, before training: batches are then indexed there."""
    move = lambda s: Split(s.images.to(device), s.labels.to(device))
    return dataclasses.replace(data, train=move(data.train), val=move(data.val), test=move(data.test))


def resize_bundle(data: DataBundle, size: int) -> DataBundle:
    """Every split resized to size x size; mean/std stay those of the original images."""
    if data.resolution == size:
        return data
    resize = lambda s: Split(resize_images(s.images, size), s.labels)
    return dataclasses.replace(data, train=resize(data.train), val=resize(data.val),
                               test=resize(data.test), resolution=size)
