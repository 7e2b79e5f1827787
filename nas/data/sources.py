"""Where the images come from: the data configuration, and one reader per data set (`LOADERS`), each
returning uint8 NCHW arrays (`RawData`)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nas.data.splits import DataError, split_indices
from nas.data_check import as_images, as_labels, cifar_batch

if TYPE_CHECKING:  # numpy and torch load on first use: `nas run train.lrr=1` answers at once
    import numpy as np
    import torch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
TEST_SEED = 0x7E57  # fixed: a carved test split must not move with split_seed
CACHE_VERSION = 1  # bump when the imagefolder cache layout changes


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


def _ensure(root: Path, folder: str, files: list[str], *, tv_class: str, title: str, cfg: DataConfig,
            shown: str = "") -> Path:
    """root/folder when all files are there; else try torchvision's download, else DataError."""
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
    """Only numpy's array reconstruction may be imported, so a planted CIFAR batch cannot run code."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")} | {
        (module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"it would import {module}.{name}; data batches hold"
                                         " arrays only")
        return super().find_class(module, name)


def unpickle_arrays(path: Path) -> dict:
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

    batches = [cifar_batch(folder / name, unpickle_arrays(folder / name), label_key, num_classes) for name in files]
    return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])


def load_cifar10(cfg: DataConfig, root: Path) -> RawData:
    train = [f"data_batch_{i}" for i in range(1, 6)]
    folder = _ensure(root, "cifar-10-batches-py", train + ["test_batch", "batches.meta"],
                     tv_class="CIFAR10", title="CIFAR-10", cfg=cfg,
                     shown="{data_batch_1..5,test_batch,batches.meta}")
    x, y = _cifar_batches(folder, train, "labels", 10)
    tx, ty = _cifar_batches(folder, ["test_batch"], "labels", 10)
    names = _names(_key(unpickle_arrays(folder / "batches.meta"), "label_names"))
    return RawData(x, y, tx, ty, names, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))


def load_cifar100(cfg: DataConfig, root: Path) -> RawData:
    folder = _ensure(root, "cifar-100-python", ["train", "test", "meta"], tv_class="CIFAR100",
                     title="CIFAR-100", cfg=cfg)
    x, y = _cifar_batches(folder, ["train"], "fine_labels", 100)
    tx, ty = _cifar_batches(folder, ["test"], "fine_labels", 100)
    names = _names(_key(unpickle_arrays(folder / "meta"), "fine_label_names"))
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
    """An MNIST-format (IDX files) dataset as torchvision lays it out."""

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
        x, y, tx, ty = (_read_idx(where / f) for f in files)
        for images, labels, name in ((x, y, files[0]), (tx, ty, files[2])):
            as_images(images[:, None] if images.ndim == 3 else images, where / name, (1, 28, 28))
            as_labels(labels, where / name.replace("images-idx3", "labels-idx1"), len(images), len(self.names))
        return RawData(x[:, None], y.astype(np.int64), tx[:, None], ty.astype(np.int64),
                       list(self.names), (self.mean,), (self.std,))


def load_synthetic(cfg: DataConfig) -> RawData:
    """Learnable noise: each class a smooth random colour pattern (one fixed seed), each image adds pixel
    noise (train and test from two other seeds: new images of the same classes)."""
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
