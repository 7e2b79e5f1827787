"""Batches on the device: a permutation and per-sample augmentation parameters drawn once per
epoch from an explicit generator, crop and flip in one gather, cutout, and normalisation fused
into the uint8 -> float conversion."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from nas.data.sources import DataConfig
from nas.data.splits import Split

if TYPE_CHECKING:  # torch loads on first use: `nas run train.lrr=1` answers at once
    import torch


def num_batches(n: int, batch_size: int, drop_last: bool) -> int:
    return n // batch_size if drop_last else -(-n // batch_size)


def crop_flip(x: torch.Tensor, pad: int, offsets: torch.Tensor | None, flip: torch.Tensor | None,
              pad_mode: str = "zeros") -> torch.Tensor:
    """Per-sample crop (top-left `offsets` (B,2) in the padded image) and flip in one `torch.gather`
    (several times faster on CPU than 4-way indexing); a flip reads the window's columns backwards."""
    import torch
    import torch.nn.functional as F

    b, c, h, w = x.shape
    if pad:
        x = F.pad(x, (pad, pad, pad, pad), mode="constant" if pad_mode == "zeros" else "reflect")
    if offsets is None:
        offsets = torch.full((b, 2), pad, dtype=torch.long, device=x.device)
    rows = offsets[:, :1] + torch.arange(h, device=x.device)  # B x H
    cols = offsets[:, 1:] + torch.arange(w, device=x.device)  # B x W
    if flip is not None:
        cols = torch.where(flip[:, None], cols.flip(1), cols)
    flat = (rows[:, :, None] * x.shape[-1] + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
    return x.reshape(b, c, -1).gather(2, flat).view(b, c, h, w)


def cutout_(x: torch.Tensor, size: int, centers: torch.Tensor) -> torch.Tensor:
    """Zero a size x size square at each sample's (row, col) center, clipped, in place; after
    normalisation (DeVries & Taylor), so the square is the data mean."""
    import torch

    h, w = x.shape[-2:]
    top = centers[:, :1] - size // 2
    left = centers[:, 1:] - size // 2
    r = torch.arange(h, device=x.device)
    q = torch.arange(w, device=x.device)
    in_r = (r >= top) & (r < top + size)  # B x H
    in_c = (q >= left) & (q < left + size)  # B x W
    return x.masked_fill_((in_r[:, :, None] & in_c[:, None, :])[:, None], 0)


class Loader:
    """Batches of (x float normalised, y int64) from a device-resident Split. train=True: each epoch's
    permutation, then its augmentation parameters, drawn from `generator`, so an epoch depends only on
    the generator's state at its start. train=False: in order, no augmentation, nothing dropped."""

    def __init__(self, split: Split, batch_size: int, *, mean: tuple[float, ...],
                 std: tuple[float, ...], train: bool, cfg: DataConfig | None = None,
                 generator: torch.Generator | None = None, drop_last: bool = False,
                 channels_last: bool = False, dtype: torch.dtype | None = None) -> None:
        import torch

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if train and generator is None:
            raise ValueError("train=True needs an explicit torch.Generator, for reproducible batches")
        channels = split.images.shape[1]
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"mean/std have {len(mean)}/{len(std)} entries for {channels} channels")
        self.split, self.batch_size, self.train = split, batch_size, train
        self.cfg = cfg if cfg is not None else DataConfig(crop_pad=0, flip=False)
        self.generator, self.drop_last = generator, drop_last and train
        self.channels_last, self.dtype = channels_last, dtype or torch.float32
        dev = split.images.device
        m = torch.tensor(mean, dtype=torch.float32, device=dev).view(1, -1, 1, 1)
        s = torch.tensor(std, dtype=torch.float32, device=dev).view(1, -1, 1, 1)
        self.scale, self.shift = 1 / (255 * s), -m / s  # (x/255 - mean)/std as one multiply-add

    def __len__(self) -> int:
        return num_batches(len(self.split), self.batch_size, self.drop_last)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        import torch

        n, bs, cfg, dev = len(self.split), self.batch_size, self.cfg, self.split.images.device
        if self.train:
            g = self.generator
            order = torch.randperm(n, generator=g)
            _, _, h, w = self.split.images.shape
            offsets = torch.randint(0, 2 * cfg.crop_pad + 1, (n, 2), generator=g)
            flips = torch.rand(n, generator=g) < 0.5
            centers = torch.stack([torch.randint(0, h, (n,), generator=g),
                                   torch.randint(0, w, (n,), generator=g)], 1)
            order, offsets, flips, centers = (t.to(dev) for t in (order, offsets, flips, centers))
        for i in range(len(self)):
            sl = slice(i * bs, min(n, (i + 1) * bs))
            if self.train:
                idx = order[sl]
                x, y = self.split.images.index_select(0, idx), self.split.labels[idx]
                if cfg.crop_pad or cfg.flip:
                    x = crop_flip(x, cfg.crop_pad, offsets[sl] if cfg.crop_pad else None,
                                  flips[sl] if cfg.flip else None, cfg.pad_mode)
            else:
                x, y = self.split.images[sl], self.split.labels[sl]
            x = torch.addcmul(self.shift, x.float(), self.scale)
            if self.train and cfg.cutout:
                cutout_(x, cfg.cutout, centers[sl])
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x.to(self.dtype), y
