"""What one unit (cell x seed) runs inside a Ray worker: build, train, test once, return.

The worker writes nothing: it returns metrics and the per-epoch history, and the driver, the
only MLflow writer, records them. Any exception (a NaN loss included) comes back as a FAILED
result with its one-line message, so one bad cell never stops the others.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from typing import Any

import torch

from nas.config import RunConfig
from nas.data import DataBundle, Split, resize_bundle, split_indices, to_device

TEST_SUBSET_SEED = 0x7E57  # fixed: every cell and seed is tested on the same images


def with_test_subset(data: DataBundle, n: int | None) -> DataBundle:
    """The bundle with a fixed, class-balanced subset of its test split (None or >= its size:
    all of it); chosen once by the driver, so workers neither receive nor resize the rest."""
    if n is None or n >= len(data.test):
        return data
    _, idx = split_indices(data.test.labels.cpu(), n, None, TEST_SUBSET_SEED, data.num_classes)
    idx = idx.to(data.test.images.device)
    test = Split(data.test.images.index_select(0, idx), data.test.labels.index_select(0, idx))
    return dataclasses.replace(data, test=test)


def one_line(err: BaseException) -> str:
    return " ".join(f"{type(err).__name__}: {err}".split())[:1000]


def run_unit(cfg: RunConfig, spec: Any, data: DataBundle, *, device: str, threads: int,
             fail: str | None = None) -> dict[str, Any]:
    """Train `spec` on `data` as `cfg` says, test once on `data.test` (already the ablation's
    test subset); `fail` is an injected fault (tests)."""
    from nas.builder import build_model
    from nas.device import configure_threads, precision_for, select_device
    from nas.train import evaluate, train

    started = time.perf_counter()
    history: list[dict[str, Any]] = []
    dev = "?"
    try:
        dev_t = select_device(device)
        dev = str(dev_t)
        if dev_t.type == "cpu":
            configure_threads(threads)
        if fail:
            raise RuntimeError(fail)
        bundle = to_device(data, dev_t)
        if cfg.data.resize:
            bundle = resize_bundle(bundle, cfg.data.resize)
        precision = precision_for(dev_t, cfg.train.amp, cfg.train.channels_last)
        torch.manual_seed(cfg.train.seed)
        model = build_model(spec).to(dev_t)
        result = train(model, bundle, cfg.train, history.append, data_cfg=cfg.data,
                       precision=precision, progress=False)
        test_acc = evaluate(result.model, bundle.test, bundle, cfg.train.eval_batch_size, precision)
        return {"status": "COMPLETED", "val_acc": result.val_acc, "test_acc": test_acc,
                "test_images": len(bundle.test), "epochs": len(result.history), "history": result.history,
                "wall_s": time.perf_counter() - started, "device": dev, "error": ""}
    except Exception as err:  # recorded FAILED by the driver; the other cells go on
        return {"status": "FAILED", "error": one_line(err), "traceback": traceback.format_exc()[-4000:],
                "epochs": len(history), "history": history, "wall_s": time.perf_counter() - started,
                "device": dev}
