"""A data set in memory: its splits as device-resident uint8 tensors, and the one rule that carves a
class-balanced validation split (and train subset) from a training set."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nas.errors import DataError  # noqa: F401 - also nas.data.DataError, as before

if TYPE_CHECKING:  # torch loads on first use: `nas run train.lrr=1` answers at once
    import torch


@dataclass
class Split:
    images: torch.Tensor  # uint8, N x C x H x W, on the device
    labels: torch.Tensor  # int64, N, on the device

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class DataBundle:
    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    channels: int
    resolution: int
    mean: tuple[float, ...]  # per channel, in [0, 1] units
    std: tuple[float, ...]
    class_names: list[str] = field(default_factory=list)

    def describe(self) -> dict:
        """Sizes and constants, flat enough to log as run parameters."""
        return {
            "name": self.name, "train": len(self.train), "val": len(self.val), "test": len(self.test),
            "num_classes": self.num_classes, "channels": self.channels,
            "resolution": self.resolution, "mean": [round(m, 4) for m in self.mean],
            "std": [round(s, 4) for s in self.std], "device": str(self.train.images.device),
        }


DEFAULT_VAL_SIZE = 5000  # validation images carved from a training set of 50,000 or more


def default_val_size(n_train: int) -> int:
    """data.val_size's default: 5,000 images (CIFAR-10's usual split), or a tenth of a smaller set."""
    return min(DEFAULT_VAL_SIZE, n_train // 10)


def split_indices(labels: torch.Tensor, val_size: int, train_subset: int | None, seed: int,
                  num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class-balanced (train, val) indices into `labels`, both sorted. One seeded permutation per class:
    val takes its first entries, the train subset the next (or all the rest), so a larger subset
    contains a smaller one with the same seed."""
    import torch

    n_val = val_size // num_classes
    if val_size and n_val == 0:
        raise DataError(f"data.val_size={val_size} gives 0 images per class for {num_classes} "
                        f"classes; use 0 or >= {num_classes}")
    n_sub = None if train_subset is None else train_subset // num_classes
    if n_sub == 0:
        raise DataError(f"data.train_subset={train_subset} is below 1 image per class ({num_classes})")
    g = torch.Generator().manual_seed(seed)
    train, val = [], []
    for c in range(num_classes):
        idx = torch.nonzero(labels == c).flatten()
        need = n_val + (n_sub or 1)
        if len(idx) < need:
            what = f"val ({n_val}) + train_subset ({n_sub})" if n_sub else f"val ({n_val}) + 1 train"
            fix = ("lower data.val_size" if len(idx) <= n_val else
                   "lower data.train_subset" if n_sub else "lower data.val_size")
            raise DataError(f"class {c} has {len(idx)} train images, fewer than {what} per class; {fix}")
        idx = idx[torch.randperm(len(idx), generator=g)]
        val.append(idx[:n_val])
        train.append(idx[n_val:n_val + n_sub] if n_sub else idx[n_val:])
    return torch.cat(train).sort().values, torch.cat(val).sort().values
