"""Data layer: splits, determinism, batched augmentation, and the on-disk formats (tiny fakes)."""

from __future__ import annotations

import gzip
import os
import pickle
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

import nas.data.sources as data_sources
from epochs import batches
from nas.data import (
    DataBundle, DataConfig, DataError, Loader, crop_flip, cutout_, default_root,
    load_data, load_synthetic, num_batches, split_indices,
)
from nas.errors import NasError

SYN = DataConfig(name="synthetic", val_size=100, synthetic_train=512, synthetic_test=256)


@pytest.fixture(autouse=True)
def _data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep default_root() (and the imagefolder cache) inside the test's tmp dir."""
    home = tmp_path / "nas-data"
    monkeypatch.setenv("NAS_DATA", str(home))
    return home


@pytest.fixture(scope="module")
def syn() -> DataBundle:
    return load_data(SYN)


def epoch(b: DataBundle, cfg: DataConfig, seed: int | torch.Generator, bs: int = 64, **kw):
    g = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
    return list(batches(b.train, bs, mean=b.mean, std=b.std, train=True, cfg=cfg, generator=g, **kw))


def denorm(x: torch.Tensor, b: DataBundle) -> torch.Tensor:
    m = torch.tensor(b.mean).view(1, -1, 1, 1)
    s = torch.tensor(b.std).view(1, -1, 1, 1)
    return ((x * s + m) * 255).round().to(torch.uint8)


# --- synthetic, splits ----------------------------------------------------------------------


def test_synthetic_shapes_dtypes_device(syn: DataBundle) -> None:
    assert (len(syn.train), len(syn.val), len(syn.test)) == (412, 100, 256)
    for s in (syn.train, syn.val, syn.test):
        assert s.images.dtype == torch.uint8 and s.labels.dtype == torch.int64
        assert s.images.shape[1:] == (3, 32, 32) and s.images.device.type == "cpu"
    assert (syn.num_classes, syn.channels, syn.resolution) == (10, 3, 32)
    assert len(syn.mean) == len(syn.std) == 3 and all(0 < v < 1 for v in syn.mean + syn.std)
    assert syn.describe()["train"] == 412 and len(syn.class_names) == 10
    gray = load_data(DataConfig(name="synthetic", val_size=0, synthetic_shape=(1, 12, 12)))
    assert gray.train.images.shape == (512, 1, 12, 12) and gray.channels == 1


def test_synthetic_is_learnable(syn: DataBundle) -> None:
    """Nearest class mean (fit on train) must beat chance by far on the test set."""
    x, y = syn.train.images.float().flatten(1), syn.train.labels
    means = torch.stack([x[y == c].mean(0) for c in range(10)])
    pred = torch.cdist(syn.test.images.float().flatten(1), means).argmin(1)
    assert (pred == syn.test.labels).float().mean() > 0.8


def test_default_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert default_root() == tmp_path / "nas-data"
    monkeypatch.delenv("NAS_DATA")
    assert default_root() == Path.home() / ".cache" / "nas" / "data"


def test_split_sizes_balance_and_disjoint(syn: DataBundle) -> None:
    raw = load_synthetic(SYN)
    labels = torch.from_numpy(raw.train_y)
    train, val = split_indices(labels, 100, None, 0, 10)
    assert torch.bincount(labels[val], minlength=10).tolist() == [10] * 10
    assert len(train) + len(val) == 512 and not set(train.tolist()) & set(val.tolist())
    assert torch.equal(syn.val.images, torch.from_numpy(raw.train_x[val.numpy()]))
    assert torch.equal(syn.train.labels, labels[train])
    sub, val2 = split_indices(labels, 100, 200, 0, 10)
    assert torch.equal(val, val2) and torch.bincount(labels[sub]).tolist() == [20] * 10
    small, _ = split_indices(labels, 100, 50, 0, 10)
    assert set(small.tolist()) <= set(sub.tolist())  # subsets nest for one seed
    other, val3 = split_indices(labels, 100, None, 1, 10)
    assert not torch.equal(val, val3)
    b = load_data(DataConfig(name="synthetic", val_size=100, train_subset=200))
    assert (len(b.train), len(b.val)) == (200, 100) and b.mean == syn.mean  # stats ignore subset


def test_val_size_zero_and_errors() -> None:
    b = load_data(DataConfig(name="synthetic", val_size=0))
    assert (len(b.train), len(b.val)) == (512, 0)
    assert list(batches(b.val, 8, mean=b.mean, std=b.std, train=False)) == []
    with pytest.raises(DataError, match="val_size"):
        load_data(DataConfig(name="synthetic", val_size=600))
    with pytest.raises(DataError, match="train_subset"):
        load_data(DataConfig(name="synthetic", val_size=100, train_subset=5))
    with pytest.raises(DataError, match="cifar10"):
        DataConfig(name="cifar11")
    with pytest.raises(DataError, match="crop_pad"):
        DataConfig(crop_pad=-1)
    assert issubclass(DataError, NasError)


# --- batches ----------------------------------------------------------------------------------


def test_determinism_and_resume(syn: DataBundle) -> None:
    cfg = DataConfig(name="synthetic", val_size=100, cutout=8)
    a, b = epoch(syn, cfg, 7), epoch(syn, cfg, 7)
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    c = epoch(syn, cfg, 8)
    assert not torch.equal(a[0][1], c[0][1]) and not torch.equal(a[0][0], c[0][0])
    g = torch.Generator().manual_seed(7)
    epoch(syn, cfg, g)
    state = g.get_state()  # resume: epoch 2 depends only on the state at its start
    second = epoch(syn, cfg, g)
    again = epoch(syn, cfg, torch.Generator().set_state(state))
    assert all(torch.equal(x1, x2) for (x1, _), (x2, _) in zip(second, again))
    assert not torch.equal(second[0][1], a[0][1])  # a fresh permutation each epoch


def test_eval_in_order_covers_once_and_normalizes(syn: DataBundle) -> None:
    out = list(batches(syn.test, 100, mean=syn.mean, std=syn.std, train=False, drop_last=True))
    assert [len(y) for _, y in out] == [100, 100, 56]  # eval never drops
    x, y = torch.cat([x for x, _ in out]), torch.cat([y for _, y in out])
    assert x.dtype == torch.float32 and torch.equal(y, syn.test.labels)
    assert torch.equal(denorm(x, syn), syn.test.images)
    assert abs(x.mean().item()) < 0.1  # train-derived mean/std roughly centre the test set too


def test_num_batches_and_len(syn: DataBundle) -> None:
    assert (num_batches(10, 3, True), num_batches(10, 3, False), num_batches(9, 3, False)) == (3, 4, 3)
    kw = dict(mean=syn.mean, std=syn.std, cfg=SYN, generator=torch.Generator())
    assert len(Loader(syn.train, 100, train=True, drop_last=True, **kw)) == 4
    assert len(Loader(syn.train, 100, train=True, drop_last=False, **kw)) == 5
    ys = torch.cat([y for _, y in epoch(syn, SYN, 0, bs=100)])
    assert torch.equal(ys.sort().values, syn.train.labels.sort().values)  # each sample once
    with pytest.raises(ValueError, match="Generator"):
        list(batches(syn.train, 8, mean=syn.mean, std=syn.std, train=True, cfg=SYN))


def test_channels_last_and_dtype(syn: DataBundle) -> None:
    (x, _), *_ = epoch(syn, SYN, 0, channels_last=True, dtype=torch.bfloat16)
    assert x.dtype == torch.bfloat16 and x.is_contiguous(memory_format=torch.channels_last)


def _reference_crop_flip(x, pad, offsets, flip, mode="constant"):
    """Per-sample loop, the obvious way: the vectorised version must match it exactly."""
    xp = torch.nn.functional.pad(x, (pad,) * 4, mode=mode)
    h, w = x.shape[-2:]
    out = []
    for i in range(len(x)):
        r, c = offsets[i].tolist()
        crop = xp[i, :, r:r + h, c:c + w]
        out.append(crop.flip(-1) if flip[i] else crop)
    return torch.stack(out)


def test_crop_flip_exact() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8, generator=g)
    zero = torch.zeros(6, 2, dtype=torch.long)
    out = crop_flip(x, 4, zero, None)  # offset 0: content moves down-right by the padding
    assert torch.equal(out[:, :, 4:, 4:], x[:, :, :4, :4])
    assert not out[:, :, :4].any() and not out[:, :, :, :4].any()
    assert torch.equal(crop_flip(x, 4, zero + 4, None), x)  # offset == pad: identity
    offsets = torch.randint(0, 9, (6, 2), generator=g)
    flip = torch.tensor([True, False, True, True, False, False])
    assert torch.equal(crop_flip(x, 4, offsets, flip), _reference_crop_flip(x, 4, offsets, flip))
    assert torch.equal(crop_flip(x, 4, offsets, flip, "reflect"),
                       _reference_crop_flip(x, 4, offsets, flip, "reflect"))
    assert torch.equal(crop_flip(x, 0, None, flip)[0], x[0].flip(-1))


def _replay_order(g: torch.Generator, n: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().set_state(g.get_state()))


def test_flip_in_batches_is_exact(syn: DataBundle) -> None:
    cfg = DataConfig(name="synthetic", val_size=100, crop_pad=0, flip=True)
    g = torch.Generator().manual_seed(3)
    order = _replay_order(g, len(syn.train))  # the epoch order depends only on the generator
    x = torch.cat([x for x, _ in epoch(syn, cfg, g, bs=512)])
    orig = syn.train.images[order]
    got = denorm(x, syn)
    flipped = (got == orig.flip(-1)).flatten(1).all(1)
    same = (got == orig).flatten(1).all(1)
    assert bool((flipped | same).all()) and 100 < int(flipped.sum()) < 312


def test_crop_in_batches_is_a_shift(syn: DataBundle) -> None:
    cfg = DataConfig(name="synthetic", val_size=100, crop_pad=4, flip=False)
    g = torch.Generator().manual_seed(4)
    order = _replay_order(g, len(syn.train))
    (x, _), *_ = epoch(syn, cfg, g, bs=16)
    got, orig = denorm(x, syn), syn.train.images[order[:16]]
    grid = torch.cartesian_prod(torch.arange(9), torch.arange(9))
    shifts = []
    for i in range(16):  # exactly one of the 81 windows of the padded original
        crops = crop_flip(orig[i:i + 1].expand(81, -1, -1, -1), 4, grid, None)
        hits = (crops == got[i]).flatten(1).all(1).nonzero().flatten()
        assert len(hits) >= 1
        shifts.append(int(hits[0]))
    assert len(set(shifts)) > 4  # offsets differ per sample


def test_cutout_zeroes_a_square(syn: DataBundle) -> None:
    x = torch.ones(2, 3, 16, 16)
    cutout_(x, 6, torch.tensor([[8, 8], [0, 15]]))
    assert not x[0, :, 5:11, 5:11].any() and x[0].sum() == 3 * (256 - 36)
    assert not x[1, :, :3, 12:].any() and x[1].sum() == 3 * (256 - 12)  # clipped at the corner
    cfg = DataConfig(name="synthetic", val_size=100, crop_pad=0, flip=False, cutout=8)
    (x, _), *_ = epoch(syn, cfg, 5, bs=32)
    for img in x:
        zero = (img == 0).all(0)
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        area = len(rows) * len(cols)
        assert 16 <= area <= 64 and int(zero.sum()) == area  # a filled (clipped) square
        assert rows.max() - rows.min() + 1 == len(rows) and cols.max() - cols.min() + 1 == len(cols)


# --- file formats ---------------------------------------------------------------------------


def _fake_cifar(root: Path, n_per_batch: int = 20, str_keys: bool = False) -> np.ndarray:
    """A tiny cifar-10-batches-py in the real format: 5 train batches + test, 10 classes."""
    k = (lambda s: s) if str_keys else (lambda s: s.encode())
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    everything = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        labels = [i % 10 for i in range(n_per_batch)]
        everything.append(x)
        with open(folder / name, "wb") as f:
            pickle.dump({k("data"): x, k("labels"): labels, k("batch_label"): k(name),
                         k("filenames"): [k(f"{name}_{i}.png") for i in range(n_per_batch)]}, f)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({k("label_names"): [k(n) for n in names], k("num_vis"): 3072}, f)
    return np.concatenate(everything)


@pytest.mark.parametrize("str_keys", [False, True])
def test_cifar10_fake(tmp_path: Path, str_keys: bool) -> None:
    rows = _fake_cifar(tmp_path, str_keys=str_keys)
    b = load_data(DataConfig(name="cifar10", root=str(tmp_path), val_size=50, download=False))
    assert (len(b.train), len(b.val), len(b.test)) == (50, 50, 20)
    assert b.class_names[:2] == ["airplane", "automobile"] and b.mean == (0.4914, 0.4822, 0.4465)
    assert torch.bincount(b.val.labels).tolist() == [5] * 10
    test0 = b.test.images[0]  # R, G, B planes of the row, each 32 x 32 row-major
    assert torch.equal(test0, torch.from_numpy(rows[100].reshape(3, 32, 32)))
    g = load_data(DataConfig(name="cifar10", root=str(tmp_path), val_size=50, grayscale=True))
    assert g.channels == 1 and g.test.images.shape == (20, 1, 32, 32)
    r, gr, bl = (float(v) for v in rows[100].reshape(3, 32, 32)[:, 0, 0])
    assert int(g.test.images[0, 0, 0, 0]) == round(0.299 * r + 0.587 * gr + 0.114 * bl)


def test_cifar100_fake(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name, n in [("train", 400), ("test", 100)]:
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         b"fine_labels": [i % 100 for i in range(n)],
                         b"coarse_labels": [i % 20 for i in range(n)]}, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [f"c{i}".encode() for i in range(100)]}, f)
    b = load_data(DataConfig(name="cifar100", root=str(tmp_path), val_size=100, download=False))
    assert (len(b.train), len(b.val), len(b.test), b.num_classes) == (300, 100, 100, 100)


def _write_idx(path: Path, arr: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 8, arr.ndim]) + np.array(arr.shape, dtype=">i4").tobytes()
    blob = header + arr.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as f:
            f.write(blob)
    else:
        path.write_bytes(blob)


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_fake(tmp_path: Path, name: str, folder: str) -> None:
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(2)
    imgs = rng.integers(0, 256, (60, 28, 28), dtype=np.uint8)
    _write_idx(raw / "train-images-idx3-ubyte", imgs, gz=True)
    _write_idx(raw / "train-labels-idx1-ubyte", np.arange(60) % 10, gz=False)
    _write_idx(raw / "t10k-images-idx3-ubyte", imgs[:20], gz=False)
    _write_idx(raw / "t10k-labels-idx1-ubyte", np.arange(20) % 10, gz=True)
    cfg = DataConfig(name=name, root=str(tmp_path), val_size=10, flip=False, download=False)
    b = load_data(cfg)
    assert (len(b.train), len(b.val), len(b.test), b.channels, b.resolution) == (50, 10, 20, 1, 28)
    assert torch.equal(b.test.images[:, 0], torch.from_numpy(imgs[:20]))
    assert len(b.mean) == 1 and len(b.class_names) == 10


def _one_line_error(cfg: DataConfig) -> str:
    with pytest.raises(DataError) as info:
        load_data(cfg)
    msg = str(info.value)
    assert "\n" not in msg and info.value.__cause__ is None
    return msg


def test_missing_data_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets

    where = tmp_path / "empty"
    msg = _one_line_error(DataConfig(name="cifar10", root=str(where), download=False))
    assert str(where.resolve() / "cifar-10-batches-py") in msg
    assert "$NAS_DATA" in msg and "data.root=" in msg and "download=False" in msg

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution\nmore")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    msg = _one_line_error(DataConfig(name="cifar10", root=str(where), download=True))
    assert "download failed: URLError" in msg and str(where.resolve()) in msg
    msg = _one_line_error(DataConfig(name="mnist", root=str(where), download=True))
    assert str(where.resolve() / "MNIST" / "raw" / "{train-images-idx3-ubyte") in msg


def test_download_is_used_when_it_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets

    calls = []

    def fake_download(root: str, train: bool, download: bool) -> None:
        calls.append(root)
        _fake_cifar(Path(root))

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", fake_download)
    b = load_data(DataConfig(name="cifar10", root=str(tmp_path), val_size=50))
    assert calls == [str(tmp_path)] and len(b.test) == 20


def _write_pngs(folder: Path, classes: dict[str, int], size: int = 8) -> None:
    from PIL import Image

    for ci, (cls, n) in enumerate(classes.items()):
        (folder / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            colour = (40 * ci, 10 * i, 200)
            Image.new("RGB", (size, size), colour).save(folder / cls / f"{i}.png")


def test_imagefolder_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               _data_home: Path) -> None:
    root = tmp_path / "pics"
    _write_pngs(root, {"cat": 6, "dog": 6, "eel": 7})
    from PIL import Image

    Image.new("RGB", (12, 12), (1, 2, 3)).save(root / "eel" / "big.png")  # resized to 8 x 8
    cfg = DataConfig(name="imagefolder", root=str(root), val_size=3)
    b = load_data(cfg)
    assert b.class_names == ["cat", "dog", "eel"] and (b.channels, b.resolution) == (3, 8)
    assert (len(b.train), len(b.val), len(b.test)) == (14, 3, 3)  # test carved: 1 per class
    assert torch.bincount(b.test.labels).tolist() == [1, 1, 1]
    caches = list((_data_home / "imagefolder-cache").glob("*.npz"))
    assert len(caches) == 1

    def no_decode(paths):
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(data_sources, "_decode_images", no_decode)
    again = load_data(cfg)  # a cache hit: same arrays, no decoding
    assert torch.equal(again.train.images, b.train.images) and torch.equal(again.test.labels, b.test.labels)
    os.utime(root / "cat" / "0.png", ns=(1, 1))  # a changed file invalidates the cache
    with pytest.raises(AssertionError, match="decoded again"):
        load_data(cfg)


def test_imagefolder_train_test_layout(tmp_path: Path) -> None:
    _write_pngs(tmp_path / "train", {"a": 4, "b": 4})
    _write_pngs(tmp_path / "test", {"a": 2, "b": 1})
    b = load_data(DataConfig(name="imagefolder", root=str(tmp_path), val_size=2))
    assert (len(b.train), len(b.val), len(b.test)) == (6, 2, 3)
    assert b.test.labels.tolist() == [0, 0, 1]
    msg = _one_line_error(DataConfig(name="imagefolder", root=str(tmp_path / "nope")))
    assert "data.root" in msg
