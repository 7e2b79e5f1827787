"""Datasets for fast training trials: whole splits as uint8 tensors on the device.

A NAS run trains hundreds of small models on the same data, so the data layer is built for that:
each split is decoded once into a uint8 `N x C x H x W` tensor that lives on the training device,
augmentation (random crop, flip, cutout) runs batched on the device with per-sample parameters,
and normalisation is fused into the uint8 -> float conversion. Every random choice (validation
split, train subset, epoch order, augmentation) comes from an explicit seed or `torch.Generator`,
so equal seeds give bitwise equal batches on CPU.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import math
import os
import pickle
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nas.errors import DataError  # noqa: F401 - also nas.data.DataError, as before

if TYPE_CHECKING:  # numpy and torch load on first use: `nas run train.lrr=1` answers at once
    import numpy as np
    import torch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
LUMA_601 = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights for RGB -> gray
TEST_SEED = 0x7E57  # fixed: a carved test split must not move with split_seed
CACHE_VERSION = 1  # bump when the imagefolder cache layout changes


DEFAULT_VAL_SIZE = 5000  # validation images carved from a training set of 50,000 or more


@dataclass(frozen=True)
class DataConfig:
    name: str = "cifar10"  # cifar10 | cifar100 | mnist | fashion_mnist | imagefolder | synthetic
    root: str | None = None  # None -> $NAS_DATA, else ~/.cache/nas/data
    val_size: int | None = None  # carved from the train set, val_size // num_classes per class;
    # None: DEFAULT_VAL_SIZE, or a tenth of a smaller training set (`default_val_size`)
    train_subset: int | None = None  # train on N images (balanced, drawn from what val left)
    split_seed: int = 0
    download: bool = True  # try a torchvision download when the files are missing
    grayscale: bool = False  # RGB -> 1 channel (BT.601 luma), for 1-channel nets on CIFAR
    resize: int | None = None  # resize every image to resize x resize once, on load (input-resolution ablations)
    crop_pad: int = 4  # random crop with this much padding (0 = off)
    pad_mode: str = "zeros"  # zeros (torchvision's RandomCrop) | reflect
    flip: bool = True  # random horizontal flip (turn off for digits)
    cutout: int = 0  # side of the cutout square in pixels (0 = off)
    synthetic_shape: tuple[int, int, int] = (3, 32, 32)
    synthetic_classes: int = 10
    synthetic_train: int = 512  # train images before the val split
    synthetic_test: int = 256

    def __post_init__(self) -> None:
        object.__setattr__(self, "synthetic_shape", tuple(int(v) for v in self.synthetic_shape))
        if self.name not in LOADERS:
            raise DataError(f"data.name={self.name!r} is unknown; choose one of {sorted(LOADERS)}")
        checks = {
            "val_size": self.val_size is None or self.val_size >= 0,
            "train_subset": self.train_subset is None or self.train_subset > 0,
            "crop_pad": self.crop_pad >= 0,
            "pad_mode": self.pad_mode in ("zeros", "reflect"),
            "cutout": self.cutout >= 0,
            "resize": self.resize is None or 1 <= self.resize <= 2048,
            "synthetic_shape": len(self.synthetic_shape) == 3 and min(self.synthetic_shape) > 0,
            "synthetic_classes": self.synthetic_classes >= 2,
        }
        for name, ok in checks.items():
            if not ok:
                raise DataError(f"data.{name}={getattr(self, name)!r} is invalid")


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


@dataclass
class RawData:
    """What a loader returns: numpy uint8 NCHW arrays; mean/std None means 'compute from train'."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    class_names: list[str]
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None


def default_root() -> Path:
    """$NAS_DATA when set, else ~/.cache/nas/data."""
    env = os.environ.get("NAS_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "nas" / "data"


# ---------------------------------------------------------------------------------------------
# Loaders: (cfg, root) -> RawData


def _ensure(root: Path, folder: str, files: list[str], *, tv_class: str, title: str, cfg: DataConfig,
            shown: str = "") -> Path:
    """Return root/folder when all files are there; else try torchvision's download, else DataError."""
    where = root / folder
    if all(_exists(where / f) for f in files):
        return where
    why = "download=False"
    if cfg.download:
        try:
            import torchvision.datasets as tvd

            getattr(tvd, tv_class)(str(root), train=True, download=True)
        except Exception as exc:  # noqa: BLE001 - any failure means "no data"; say where to put it
            msg = str(exc).strip().splitlines()
            why = f"download failed: {type(exc).__name__}: {msg[0] if msg else ''}".rstrip(": ")
        if all(_exists(where / f) for f in files):
            return where
    names = shown or "{" + ",".join(files) + "}"
    raise DataError(
        f"{title} not found: expected {where.resolve()}/{names} ({why}); put the files there, "
        f"or point $NAS_DATA or data.root= at the folder that holds {folder}/"
    )


def _exists(path: Path) -> bool:
    return path.exists() or path.with_name(path.name + ".gz").exists()


def _key(d: dict, key: str):
    """Pickles from Python 2 have bytes keys, newer ones str keys; accept both."""
    return d[key] if key in d else d[key.encode()]


class _ArraysOnly(pickle.Unpickler):
    """The CIFAR python batches are pickles of dicts, lists, bytes and numpy arrays: only numpy's
    array reconstruction may be imported, so a planted batch file cannot run code."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")} | {
        (module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"it would import {module}.{name}; data batches hold"
                                         " arrays only")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return _ArraysOnly(f, encoding="bytes").load()
    except Exception as exc:
        raise DataError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None


def _names(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _cifar_batches(folder: Path, files: list[str], label_key: str,
                   num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    from nas.data_check import cifar_batch

    xs, ys = [], []
    for name in files:
        x, y = cifar_batch(folder / name, _unpickle(folder / name), label_key, num_classes)
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def load_cifar10(cfg: DataConfig, root: Path) -> RawData:
    train = [f"data_batch_{i}" for i in range(1, 6)]
    folder = _ensure(root, "cifar-10-batches-py", train + ["test_batch", "batches.meta"],
                     tv_class="CIFAR10", title="CIFAR-10", cfg=cfg,
                     shown="{data_batch_1..5,test_batch,batches.meta}")
    x, y = _cifar_batches(folder, train, "labels", 10)
    tx, ty = _cifar_batches(folder, ["test_batch"], "labels", 10)
    names = _names(_key(_unpickle(folder / "batches.meta"), "label_names"))
    return RawData(x, y, tx, ty, names, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))


def load_cifar100(cfg: DataConfig, root: Path) -> RawData:
    folder = _ensure(root, "cifar-100-python", ["train", "test", "meta"], tv_class="CIFAR100",
                     title="CIFAR-100", cfg=cfg)
    x, y = _cifar_batches(folder, ["train"], "fine_labels", 100)
    tx, ty = _cifar_batches(folder, ["test"], "fine_labels", 100)
    names = _names(_key(_unpickle(folder / "meta"), "fine_label_names"))
    return RawData(x, y, tx, ty, names, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))


def _read_idx(path: Path) -> np.ndarray:
    """An idx file (the MNIST format): magic 0x0000 08 <ndim>, big-endian dims, then uint8 data."""
    import numpy as np

    if not path.exists():
        path = path.with_name(path.name + ".gz")
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:  # a broken .gz, a folder in the file's place
        raise DataError(f"{path}: cannot read ({type(err).__name__}: {err})") from None
    if raw[:3] != b"\x00\x00\x08":
        raise DataError(f"{path} is not a uint8 idx file")
    ndim = raw[3]
    try:
        dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4)
        return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims).copy()
    except ValueError:
        raise DataError(f"{path}: its size does not match the shape in its header (truncated?)") from None


@dataclass(frozen=True)
class IdxDataset:
    """An MNIST-format (IDX files) dataset as torchvision lays it out: where, what, its stats."""

    folder: str  # under the data root: FOLDER/raw/*-ubyte
    tv_class: str  # the torchvision dataset class that downloads it
    title: str
    names: tuple[str, ...]
    mean: float
    std: float

    def __call__(self, cfg: DataConfig, root: Path) -> RawData:
        import numpy as np

        files = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
        where = _ensure(root, f"{self.folder}/raw", files, tv_class=self.tv_class, title=self.title, cfg=cfg)
        from nas.data_check import as_images, as_labels

        x, y, tx, ty = (_read_idx(where / f) for f in files)
        for images, labels, name in ((x, y, files[0]), (tx, ty, files[2])):
            as_images(images[:, None] if images.ndim == 3 else images, where / name, (1, 28, 28))
            as_labels(labels, where / name.replace("images-idx3", "labels-idx1"), len(images), len(self.names))
        return RawData(x[:, None], y.astype(np.int64), tx[:, None], ty.astype(np.int64),
                       list(self.names), (self.mean,), (self.std,))


def load_synthetic(cfg: DataConfig) -> RawData:
    """Learnable noise: each class is a smooth random colour pattern; images add pixel noise.

    The class patterns come from one fixed seed (shared by train and test); the train and test
    noise from two others, so the test set is new images of the same classes.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F

    c, h, w = cfg.synthetic_shape
    k = cfg.synthetic_classes
    protos = torch.rand(k, c, 4, 4, generator=torch.Generator().manual_seed(1234)) * 160 + 48
    protos = F.interpolate(protos, size=(h, w), mode="bilinear", align_corners=False)

    def make(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        g = torch.Generator().manual_seed(seed)
        y = torch.arange(n) % k
        y = y[torch.randperm(n, generator=g)]
        x = protos[y] + 40 * torch.randn(n, c, h, w, generator=g)
        return x.round().clamp(0, 255).to(torch.uint8).numpy(), y.numpy().astype(np.int64)

    x, y = make(cfg.synthetic_train, 1)
    tx, ty = make(cfg.synthetic_test, 2)
    return RawData(x, y, tx, ty, [f"class{i}" for i in range(k)])


def _scan(folder: Path) -> list[tuple[Path, str]]:
    """(image path, class name) for every image in folder/<class>/, sorted for a stable order."""
    return [(p, d.name) for d in sorted(folder.iterdir()) if d.is_dir()
            for p in sorted(d.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]


def _decode_images(paths: list[Path]) -> np.ndarray:
    """Decode to RGB uint8 N x 3 x S x S; S is the most common longer side, others resized to it."""
    import numpy as np

    from PIL import Image

    try:
        sizes = []
        for p in paths:
            with Image.open(p) as im:
                sizes.append(im.size)
        side = Counter(max(s) for s in sizes).most_common(1)[0][0]
        out = np.empty((len(paths), 3, side, side), dtype=np.uint8)
        for i, p in enumerate(paths):
            with Image.open(p) as im:
                im = im.convert("RGB")
                if im.size != (side, side):
                    im = im.resize((side, side), Image.Resampling.BILINEAR)
                out[i] = np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)
    except (OSError, ValueError, Image.DecompressionBombError) as err:  # a broken or hostile file
        raise DataError(f"{p}: cannot decode the image ({type(err).__name__}: {err})") from None
    return out


def load_imagefolder(cfg: DataConfig, root: Path) -> RawData:
    """root/<class>/* or root/{train,test}/<class>/*, decoded once and cached as .npz."""
    import numpy as np
    import torch

    if cfg.root is None or not root.is_dir():
        raise DataError(f"data.name=imagefolder needs data.root= set to a folder of class subfolders "
                        f"(got {root})")
    train_dir = root / "train" if (root / "train").is_dir() else root
    test_dir = root / "test" if train_dir != root and (root / "test").is_dir() else None
    items = [(p, c, 0) for p, c in _scan(train_dir)]
    items += [(p, c, 1) for p, c in _scan(test_dir)] if test_dir else []
    if not items:
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in class subfolders of {train_dir}")
    classes = sorted({c for _, c, s in items if s == 0})
    if unknown := sorted({c for _, c, s in items if s == 1} - set(classes)):
        raise DataError(f"{test_dir} has classes missing from {train_dir}: {unknown}")

    stamp = [str(root.resolve()), CACHE_VERSION]
    stamp += [(str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p, _, _ in items]
    key = hashlib.sha256(json.dumps(stamp).encode()).hexdigest()[:16]
    cache = default_root() / "imagefolder-cache" / f"{root.resolve().name}-{key}.npz"
    if cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            images, labels, split = z["images"], z["labels"], z["split"]
    else:
        images = _decode_images([p for p, _, _ in items])
        labels = np.array([classes.index(c) for _, c, _ in items], dtype=np.int64)
        split = np.array([s for _, _, s in items], dtype=np.int8)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "wb") as f:
            np.savez(f, images=images, labels=labels, split=split, class_names=np.array(classes))
        os.replace(tmp, cache)  # atomic: a concurrent trial never reads half a file

    train, test = np.flatnonzero(split == 0), np.flatnonzero(split == 1)
    if test_dir is None:  # carve a fixed, balanced 20% test split
        per_class = np.bincount(labels[train], minlength=len(classes)).min() // 5
        if per_class < 1:
            raise DataError(f"{root}: each class needs >= 5 images to carve a test split (or add test/)")
        train_rel, test_rel = split_indices(torch.from_numpy(labels[train]), per_class * len(classes),
                                            None, TEST_SEED, len(classes))
        train, test = train[train_rel.numpy()], train[test_rel.numpy()]
    return RawData(images[train], labels[train], images[test], labels[test], classes)


LOADERS: dict[str, Callable[[DataConfig, Path], RawData]] = {
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
    "mnist": IdxDataset("MNIST", "MNIST", "MNIST", tuple(str(i) for i in range(10)), mean=0.1307,
                        std=0.3081),
    "fashion_mnist": IdxDataset(
        "FashionMNIST", "FashionMNIST", "Fashion-MNIST",
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
         "Ankle boot"), mean=0.2860, std=0.3530),
    "imagefolder": load_imagefolder,
    "synthetic": lambda cfg, root: load_synthetic(cfg),
}


# ---------------------------------------------------------------------------------------------
# Splitting and statistics


def default_val_size(n_train: int) -> int:
    """The validation split when data.val_size is not given: 5,000 images (CIFAR-10's usual
    split), or a tenth of a training set under 50,000 images (the synthetic set, small folders)."""
    return min(DEFAULT_VAL_SIZE, n_train // 10)


def split_indices(labels: torch.Tensor, val_size: int, train_subset: int | None, seed: int,
                  num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class-balanced (train, val) indices into `labels`, both sorted.

    One seeded permutation per class: val takes its first val_size // num_classes entries, the
    train subset the next train_subset // num_classes (or all the rest), so a larger subset
    contains a smaller one with the same seed.
    """
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
    from nas.data_check import check_split

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
    """uint8 N x C x H x W -> N x C x size x size (bilinear, antialiased when shrinking), rounded.

    Done once per split, in chunks to bound the float copy, so the training loop still only
    indexes uint8 tensors: a lower input resolution costs nothing per batch.
    """
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


# ---------------------------------------------------------------------------------------------
# Batches and augmentation on the device


def num_batches(n: int, batch_size: int, drop_last: bool) -> int:
    return n // batch_size if drop_last else -(-n // batch_size)


def crop_flip(x: torch.Tensor, pad: int, offsets: torch.Tensor | None, flip: torch.Tensor | None,
              pad_mode: str = "zeros") -> torch.Tensor:
    """Per-sample crop (top-left `offsets` (B,2) in the padded image) and flip, in one gather.

    Pads the batch once, then reads every sample's window through flat per-sample pixel indices
    (`torch.gather`, several times faster on CPU than 4-way advanced indexing); a flipped sample
    reads its window's columns backwards, so the flip costs nothing extra.
    """
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
    """Zero a size x size square at each sample's (row, col) center, clipped at the border, in place.

    Applied after normalisation (DeVries & Taylor), so the square is the data mean, 0.
    """
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
    """Batches of (x float normalised N x C x H x W, y int64) from a device-resident Split.

    train=True: a new permutation each epoch, then per-sample augmentation parameters for the
    whole epoch, all drawn from `generator` (CPU) in that order, so an epoch depends only on the
    generator state at its start (save `generator.get_state()` there to resume).
    train=False: in order, no augmentation, nothing dropped.
    """

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


def batches(split: Split, batch_size: int, *, mean: tuple[float, ...], std: tuple[float, ...],
            train: bool, cfg: DataConfig | None = None, generator: torch.Generator | None = None,
            drop_last: bool = False, channels_last: bool = False,
            dtype: torch.dtype | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of (x, y) batches; see `Loader`."""
    yield from Loader(split, batch_size, mean=mean, std=std, train=train, cfg=cfg,
                      generator=generator, drop_last=drop_last, channels_last=channels_last,
                      dtype=dtype)
