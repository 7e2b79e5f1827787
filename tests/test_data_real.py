"""The real CIFAR-10 copy from ../shared/data/cifar10 (skipped when absent; see conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from epochs import batches
from nas.data import DataConfig, load_data

pytestmark = pytest.mark.realdata

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def test_cifar10_real(cifar10_root: Path) -> None:
    cfg = DataConfig(name="cifar10", root=str(cifar10_root), download=False)
    b = load_data(cfg)
    assert (len(b.train), len(b.val), len(b.test)) == (45000, 5000, 10000)
    assert b.class_names == CLASSES and (b.num_classes, b.channels, b.resolution) == (10, 3, 32)
    for s in (b.train, b.val, b.test):
        assert s.images.dtype == torch.uint8 and s.images.shape[1:] == (3, 32, 32)
    assert torch.bincount(b.val.labels).tolist() == [500] * 10
    assert torch.bincount(b.train.labels).tolist() == [4500] * 10
    assert torch.bincount(b.test.labels).tolist() == [1000] * 10
    mean = b.train.images.sum(dim=(0, 2, 3), dtype=torch.int64).double() / (45000 * 32 * 32 * 255)
    assert torch.allclose(mean, torch.tensor([0.4913, 0.4821, 0.4465], dtype=torch.float64), atol=0.01)
    g = torch.Generator().manual_seed(0)
    x, y = next(batches(b.train, 256, mean=b.mean, std=b.std, train=True, cfg=cfg, generator=g))
    assert x.shape == (256, 3, 32, 32) and abs(x.mean().item()) < 0.3 and 0.7 < x.std().item() < 1.3
