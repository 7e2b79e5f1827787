"""Hostile input files for the fuzz tests (tests/test_fuzz.py): YAML specs, spaces, experiments
and configs, and corrupted data folders, each drawn from a seed. Every file drawn here is
invalid by construction, so `nas` must refuse each in one line with a non-zero exit."""

from __future__ import annotations

import gzip
import math
import pickle
import random
import struct
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from fake_data import fake_cifar10

REPO = Path(__file__).resolve().parents[1]
KINDS = ("spec", "space", "experiment", "config")
BASES = {"spec": sorted((REPO / "nas" / "presets").glob("*.yaml")),
         "space": sorted((REPO / "search_spaces").glob("*.yaml")),
         "experiment": sorted((REPO / "experiments").glob("*.yaml")),
         "config": []}
CONFIG = {"train": {"epochs": 1, "lr": 0.1, "batch_size": 32}, "data": {"name": "synthetic", "val_size": 64},
          "mlflow": {"enabled": False}}
HUGE = [10**400, -10**400, 10**30, float("inf"), float("-inf"), float("nan"), 1e308, -1e308]
JUNK_KEYS = ["zq_unknown", "chanels", "widht", "Name", "x" * 300, "ü", "1", "true", "null"]


def base_data(kind: str, rng: random.Random) -> Any:
    if kind == "config":
        return yaml.safe_load(yaml.safe_dump(CONFIG))
    data = yaml.safe_load(rng.choice(BASES[kind]).read_text())
    return data["spec"] if kind == "spec" else data  # a preset file's spec: what a spec file holds


def _paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into a nested dict/list."""
    out = []
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else []
    for key, value in items:
        out.append(prefix + (key,))
        out += _paths(value, prefix + (key,))
    return out


def _set(data: Any, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


def _hostile_value(rng: random.Random) -> Any:
    """A value no field takes: an unknown-keyed mapping, deep nesting, or a huge/odd number in one."""
    choice = rng.randrange(3)
    if choice == 0:
        return {rng.choice(JUNK_KEYS): rng.choice(HUGE + ["x", None, [1, 2]])}
    if choice == 1:
        value: Any = rng.choice(HUGE)
        for _ in range(rng.randint(51, 200)):
            value = [value] if rng.random() < 0.5 else {"a": value}
        return value
    return {"zq_unknown": [rng.choice(HUGE), {"b": rng.choice(HUGE)}]}


def _dump(data: Any) -> str:
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10**6)
    return text.replace(".nan", ".nan").replace(".inf", ".inf")


def mutated(kind: str, rng: random.Random) -> str:
    """A valid file of `kind` with one value replaced by a hostile one (a wrong type, huge
    numbers, unknown keys, nesting deeper than any file needs)."""
    data = base_data(kind, rng)
    paths = _paths(data)
    _set(data, rng.choice(paths), _hostile_value(rng))
    return _dump(data)


def wrong_top(kind: str, rng: random.Random) -> str:
    """A document that is not a mapping, or a mapping of unknown keys (an empty config file,
    `null`, is a valid empty config; an empty spec, space or experiment is not)."""
    return rng.choice(["- 1\n- 2\n", "42\n", "'just text'\n", "[[[]]]\n", "{}: 1\n", "? [a]\n: 1\n",
                       f"{rng.choice(JUNK_KEYS)}: {rng.random()}\n", "true\n",
                       "name: 3\nzq_unknown: {a: [1, {b: .inf}]}\n"] + (["null\n"] if kind != "config" else []))


def alias_bomb(kind: str, rng: random.Random) -> str:
    """Billion laughs, its last alias placed under a key the file takes."""
    depth = rng.randint(3, 12)
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, depth)]
    data = base_data(kind, rng)
    key = rng.choice(list(data)) if isinstance(data, dict) and data else "name"
    body = _dump({k: v for k, v in (data or {}).items() if k != key}) if isinstance(data, dict) else ""
    first = rng.random() < 0.5
    bomb = "\n".join(lines) + "\n"
    return (f"{key}: *a{depth - 1}\n" + body + bomb) if not first else (bomb + body + f"{key}: *a{depth - 1}\n")


def small_alias(kind: str, rng: random.Random) -> str:
    """One harmless-looking anchor and alias in an otherwise valid file: refused all the same."""
    data = base_data(kind, rng)
    text = _dump(data)
    lines = text.splitlines()
    i = rng.randrange(len(lines))
    return "\n".join(lines[:i] + ["zz_anchor: &x 1", "zz_alias: *x"] + lines[i:]) + "\n"


def deep(kind: str, rng: random.Random) -> str:
    n = rng.choice([60, 500, 5000, 100000])
    if rng.random() < 0.5:
        return "name: x\nstages: " + "[" * n + "]" * n + "\n"
    return "name: x\nstages:\n" + "".join("  " * i + "- \n" for i in range(min(n, 3000))) + "\n"


def garbage(kind: str, rng: random.Random) -> str | bytes:
    options: list[Callable[[], str | bytes]] = [
        lambda: b"",
        lambda: bytes(rng.randrange(256) for _ in range(rng.randint(1, 4000))),
        lambda: b"\xff\xfe\x00name: x\n",
        lambda: "name: 'unclosed\n",
        lambda: "name: x\n\tstages: []\n",
        lambda: "---\n---\n",
        lambda: "name: x\nname: y\n",
        lambda: "name: " + "9" * 100000 + "\n",
        lambda: "key: !!python/object/apply:os.system ['echo pwned']\n",
        lambda: "name: !!binary aGVsbG8=\nstages: !!set {a, b}\n",
        lambda: "%YAML 9.9\n---\nname: x\n",
        lambda: "a: b: c\n",
        lambda: "".join(rng.choice("[]{}:,-?&*!|>'\"%@` \n\tab1") for _ in range(rng.randint(1, 300))) + "\nzq_unknown: 1\n",
    ]
    return rng.choice(options)()


def random_yaml(kind: str, rng: random.Random) -> str:
    """A random mapping of real and junk keys holding random scalars and containers."""
    keys = list(base_data(kind, rng) or {}) + JUNK_KEYS

    def value(depth: int) -> Any:
        r = rng.random()
        if depth > 3 or r < 0.4:
            return rng.choice(HUGE + [None, True, "x", "", -1, 0, 0.5, "1e400", "~", [], {}])
        if r < 0.7:
            return [value(depth + 1) for _ in range(rng.randint(0, 4))]
        return {rng.choice(keys): value(depth + 1) for _ in range(rng.randint(1, 4))}

    data = {rng.choice(keys): value(0) for _ in range(rng.randint(1, 6))}
    data["zq_unknown"] = value(1)  # always one key no file takes
    return _dump(data)


GENERATORS = {"mutated": mutated, "wrong_top": wrong_top, "alias_bomb": alias_bomb,
              "small_alias": small_alias, "deep": deep, "garbage": garbage, "random_yaml": random_yaml}


def hostile_file(seed: int, folder: Path) -> tuple[str, str, Path]:
    """(kind, how, path) of the hostile file number `seed`, written into `folder`."""
    rng = random.Random(seed)
    kind = KINDS[seed % len(KINDS)]
    how = rng.choice(sorted(GENERATORS))
    content = GENERATORS[how](kind, rng)
    path = folder / f"{kind}-{seed}.yaml"
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return kind, how, path


# ----------------------------------------------------------------------------- data folders


def _pickle(path: Path, obj: Any) -> None:
    path.write_bytes(pickle.dumps(obj))


def _batch(path: Path) -> dict:
    return pickle.loads(path.read_bytes())


class _Evil:
    def __reduce__(self):
        import os
        return (os.system, ("echo pwned",))


def _cifar_corruption(folder: Path, rng: random.Random) -> str:
    name = rng.choice([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"])
    path = folder / name
    batch = _batch(path)
    n = len(batch["labels"])
    how = rng.choice(["label_high", "label_negative", "label_huge", "label_float", "label_str",
                      "labels_short", "labels_long", "labels_2d", "no_labels", "no_data", "data_cols",
                      "data_3d", "data_float", "data_str", "data_negative", "truncated", "garbage",
                      "evil_pickle", "not_dict", "empty", "folder", "missing", "meta_short", "meta_missing"])
    if how.startswith("label_"):
        value = {"label_high": 10, "label_negative": -1, "label_huge": 10**30, "label_float": 1.5,
                 "label_str": "cat"}[how]
        batch["labels"][rng.randrange(n)] = value
    elif how == "labels_short":
        batch["labels"] = batch["labels"][:-1]
    elif how == "labels_long":
        batch["labels"] = batch["labels"] + [0]
    elif how == "labels_2d":
        batch["labels"] = [[v] for v in batch["labels"]]
    elif how == "no_labels":
        del batch["labels"]
    elif how == "no_data":
        del batch["data"]
    elif how == "data_cols":
        batch["data"] = batch["data"][:, : rng.choice([1, 1000, 3071])]
    elif how == "data_3d":
        batch["data"] = batch["data"].reshape(n, 3, 1024)
    elif how == "data_float":
        batch["data"] = batch["data"].astype(np.float32) * 1.5
    elif how == "data_str":
        batch["data"] = ["pixels"] * n
    elif how == "data_negative":
        batch["data"] = batch["data"].astype(np.int16) - 300
    if how in ("truncated", "garbage", "evil_pickle", "not_dict", "empty", "folder", "missing"):
        raw = path.read_bytes()
        path.unlink()
        if how == "truncated":
            path.write_bytes(raw[: rng.randrange(1, len(raw) - 1)])
        elif how == "garbage":
            path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randint(1, 2000))))
        elif how == "evil_pickle":
            _pickle(path, {"data": _Evil(), "labels": []})
        elif how == "not_dict":
            _pickle(path, [1, 2, 3])
        elif how == "empty":
            path.write_bytes(b"")
        elif how == "folder":
            path.mkdir()
    elif how == "meta_short":
        _pickle(folder / "batches.meta", {"label_names": ["a", "b", "c"]})
    elif how == "meta_missing":
        (folder / "batches.meta").unlink()
    else:
        _pickle(path, batch)
    return f"cifar10 {name} {how}"


def _idx(path: Path, arr: np.ndarray) -> None:
    header = b"\x00\x00\x08" + bytes([arr.ndim]) + b"".join(struct.pack(">i", d) for d in arr.shape)
    path.write_bytes(header + arr.astype(np.uint8).tobytes())


def _mnist_corruption(root: Path, rng: random.Random) -> str:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    n, t = 200, 40
    data = np.random.default_rng(0)
    files = {"train-images-idx3-ubyte": data.integers(0, 256, (n, 28, 28)),
             "train-labels-idx1-ubyte": np.arange(n) % 10,
             "t10k-images-idx3-ubyte": data.integers(0, 256, (t, 28, 28)),
             "t10k-labels-idx1-ubyte": np.arange(t) % 10}
    name = rng.choice(sorted(files))
    how = rng.choice(["truncated", "magic", "labels_high", "shape", "count", "gzip_garbage"])
    for f, arr in files.items():
        _idx(raw / f, arr)
    path = raw / name
    if how == "truncated":
        path.write_bytes(path.read_bytes()[: rng.randrange(5, 60)])
    elif how == "magic":
        path.write_bytes(b"\x01\x02\x03\x04" + path.read_bytes()[4:])
    elif how == "labels_high":
        _idx(raw / "train-labels-idx1-ubyte", (np.arange(n) % 10) + 200 * (np.arange(n) == 3))
        name = "train-labels-idx1-ubyte"
    elif how == "shape":
        _idx(raw / "train-images-idx3-ubyte", data.integers(0, 256, (n, 14, 56)))
        name = "train-images-idx3-ubyte"
    elif how == "count":
        _idx(raw / "t10k-labels-idx1-ubyte", np.arange(t + 3) % 10)
        name = "t10k-labels-idx1-ubyte"
    else:
        path.unlink()
        (raw / (name + ".gz")).write_bytes(gzip.compress(b"not idx") if rng.random() < 0.5 else b"\x1f\x8bjunk")
    return f"mnist {name} {how}"


def _imagefolder_corruption(root: Path, rng: random.Random) -> str:
    from PIL import Image

    for split in ("train", "test"):
        for c in ("a", "b"):
            (root / split / c).mkdir(parents=True)
            for i in range(6):
                Image.new("RGB", (8, 8), (i * 20, 0, 0)).save(root / split / c / f"{i}.png")
    how = rng.choice(["garbage", "empty", "truncated", "text"])
    bad = root / rng.choice(["train", "test"]) / rng.choice("ab") / f"{rng.randrange(6)}.png"
    raw = bad.read_bytes()
    bad.write_bytes({"garbage": bytes(rng.randrange(256) for _ in range(300)), "empty": b"",
                     "truncated": raw[: len(raw) // 3], "text": b"not an image"}[how])
    return f"imagefolder {bad.relative_to(root)} {how}"


def corrupted_data(seed: int, root: Path) -> tuple[str, list[str]]:
    """A corrupted data folder at `root`: (what was broken, the `nas run` words that read it)."""
    rng = random.Random(seed)
    source = ["cifar10"] * 6 + ["mnist"] * 2 + ["imagefolder"]
    name = source[seed % len(source)]
    if name == "cifar10":
        fake_cifar10(root, per_class=6, test_images=20)
        what = _cifar_corruption(root / "cifar-10-batches-py", rng)
    elif name == "mnist":
        what = _mnist_corruption(root, rng)
    else:
        what = _imagefolder_corruption(root, rng)
    return what, [f"data.name={name}", f"data.root={root}", "data.val_size=20", "data.download=false"]
