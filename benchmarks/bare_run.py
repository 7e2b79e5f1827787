"""The floor `nas run` is held to: the same work on the same nas-built model, and nothing else.

Read the CIFAR-10 pickles, carve a class-balanced train subset and validation split, train with
SGD (nesterov, label smoothing, a one-cycle LR) on per-sample random crop + flip done on whole
batches, then evaluate the validation and test splits under `torch.inference_mode` with one host
sync per split. No config, checkpoint, MLflow or progress bar. Prints one JSON line of phase
seconds (imports, data, model, train, eval) for `train_throughput.py --part process`.

    python benchmarks/bare_run.py --root /tmp/cifar --train 256 --val 5000
"""

import time

T0 = time.perf_counter()

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from nas.builder import build_model  # noqa: E402
from nas.presets import load_preset  # noqa: E402
from process_args import parse, parser  # noqa: E402 - the sibling module

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def load(root: Path, name: str, n_synthetic: tuple[int, int]):
    if name == "synthetic":  # plumbing checks: nas's own generator, the same images nas trains on
        from nas.data import DataConfig, load_synthetic

        raw = load_synthetic(DataConfig(name="synthetic", synthetic_train=n_synthetic[0],
                                        synthetic_test=n_synthetic[1]))
        return raw.train_x, raw.train_y, raw.test_x, raw.test_y
    folder = root / "cifar-10-batches-py"

    from nas.data import unpickle_arrays  # the arrays-only unpickler: the same bytes, read safely

    def batch(f):
        d = unpickle_arrays(folder / f)
        data, labels = (d[k] if k in d else d[k.decode()] for k in (b"data", b"labels"))
        return np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)

    parts = [batch(f"data_batch_{i}") for i in range(1, 6)]
    tx, ty = batch("test_batch")
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), tx, ty


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random 32x32 crop of the 4-padded image and a random flip, per sample, in one gather."""
    b, c, h, w = x.shape
    xp = F.pad(x, (4, 4, 4, 4))
    off = torch.randint(0, 9, (b, 2), generator=g)
    rows = off[:, :1] + torch.arange(h)
    cols = off[:, 1:] + torch.arange(w)
    cols = torch.where((torch.rand(b, generator=g) < 0.5)[:, None], cols.flip(1), cols)
    flat = (rows[:, :, None] * (w + 8) + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
    return xp.reshape(b, c, -1).gather(2, flat).view(b, c, h, w)


def main() -> None:
    p = parser(train=256)
    p.add_argument("--val", type=int, default=5000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--eval-batch", type=int, default=128)
    args = parse(p)
    t = {"imports": time.perf_counter() - T0}

    start = time.perf_counter()
    x, y, tx, ty = load(Path(args.root), args.data, args.synthetic)
    g = torch.Generator().manual_seed(0)
    k = int(y.max()) + 1
    train_idx, val_idx = [], []
    for c in range(k):
        idx = np.flatnonzero(y == c)[torch.randperm(int((y == c).sum()), generator=g).numpy()]
        val_idx.append(idx[:args.val // k])
        train_idx.append(idx[args.val // k:args.val // k + args.train // k])
    tr, va = np.concatenate(train_idx), np.concatenate(val_idx)
    xtr, ytr = torch.from_numpy(x[tr]), torch.from_numpy(y[tr])
    xva, yva = torch.from_numpy(x[va]), torch.from_numpy(y[va])
    xte, yte = torch.from_numpy(tx), torch.from_numpy(ty)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    t["data"] = time.perf_counter() - start

    start = time.perf_counter()
    torch.manual_seed(0)
    model = build_model(load_preset(args.preset, width=args.width, resolution=32, num_classes=k))
    steps = len(xtr) // args.batch
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.1, total_steps=max(1, args.epochs * steps))
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    t["model"] = time.perf_counter() - start

    start = time.perf_counter()
    model.train()
    for _ in range(args.epochs):
        order = torch.randperm(len(xtr), generator=g)
        for i in range(steps):
            idx = order[i * args.batch:(i + 1) * args.batch]
            xb = (augment(xtr[idx], g).float() / 255 - mean) / std
            loss = loss_fn(model(xb), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    final_loss = loss.item() if steps else float("nan")
    t["train"] = time.perf_counter() - start

    start = time.perf_counter()
    model.eval()
    acc = {}
    with torch.inference_mode():
        for name, xs, ys in (("val", xva, yva), ("test", xte, yte)):
            correct = torch.zeros((), dtype=torch.long)
            for i in range(0, len(xs), args.eval_batch):
                xb = (xs[i:i + args.eval_batch].float() / 255 - mean) / std
                correct += (model(xb).argmax(1) == ys[i:i + args.eval_batch]).sum()
            acc[name] = correct.item() / max(1, len(xs))
    t["eval"] = time.perf_counter() - start
    print(json.dumps({"seconds": t, "loss": final_loss, "acc": acc, "images": len(xtr)}))


if __name__ == "__main__":
    main()
