"""Test data on disk: a small CIFAR-10 in the standard `cifar-10-batches-py/` layout."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def fake_cifar10(root: Path, per_class: int = 12, test_images: int = 20) -> None:
    """`root/cifar-10-batches-py/`: `per_class` random training images per class over the five
    batches, `test_images` test images (classes in turn), and batches.meta."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels = [c for c in range(10) for _ in range(per_class)]
    for i in range(1, 6):
        part = labels[i - 1::5]
        data = rng.integers(0, 256, (len(part), 3072), dtype=np.uint8)
        pickle.dump({"data": data, "labels": part}, open(folder / f"data_batch_{i}", "wb"))
    test_labels = [i % 10 for i in range(test_images)]
    pickle.dump({"data": rng.integers(0, 256, (test_images, 3072), dtype=np.uint8), "labels": test_labels},
                open(folder / "test_batch", "wb"))
    pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, open(folder / "batches.meta", "wb"))
