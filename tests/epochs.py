"""One epoch of batches as a generator, for tests that read a few batches (the product iterates
`nas.data.Loader` directly)."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from nas.data import DataConfig, Loader, Split


def batches(split: Split, batch_size: int, *, mean: tuple[float, ...], std: tuple[float, ...],
            train: bool, cfg: DataConfig | None = None, generator: torch.Generator | None = None,
            drop_last: bool = False, channels_last: bool = False,
            dtype: torch.dtype | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of (x, y) batches; see `Loader`."""
    yield from Loader(split, batch_size, mean=mean, std=std, train=train, cfg=cfg,
                      generator=generator, drop_last=drop_last, channels_last=channels_last,
                      dtype=dtype)
