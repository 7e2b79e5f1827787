"""Training throughput of `nas.train.train` against a bare loop and against the seeds' pipeline.

Three training loops over the same images, same model (copies of one initialisation), batch size,
optimizer (SGD, momentum, nesterov, no weight decay on BN/biases), label-smoothed loss and thread
count, measured interleaved in one run (the order rotates every repeat; medians are reported):

  nas     the real `nas.train.train` loop on `nas.data.load_data` data (device-side batched
          crop/flip/normalise in `nas.data.Loader`); its own per-epoch `epoch_s` (validation off)
  bare    forward / loss / backward / step only, over batches made beforehand (float, normalised,
          in a list: the same batches the nas Loader yields)
  seeds   the blog-post pipeline users start from (../shared/seeds/004): torchvision CIFAR10 +
          PIL RandomCrop(32, padding=4) / RandomHorizontalFlip / ToTensor / Normalize + DataLoader
          (batch 128, shuffle=True, num_workers=0), `.to(device)`, `loss.item()` every step and a
          OneCycleLR step, as written there

plus two data-only passes: the nas Loader alone and the seeds' DataLoader alone (one epoch each,
no training), to show where the time goes.

Ratios:
  1. nas img/s / bare img/s                               target >= 0.95
  2. share of the nas epoch outside forward/backward/step  target <= 3%
       a. (nas epoch - bare epoch) / nas epoch
       b. Loader-alone epoch / nas epoch
  3. nas epoch / seeds epoch                              target <= 0.9 (on CPU)
       b. the same from parts: (bare + Loader alone) / (bare + seeds' DataLoader alone), exact
          when data and compute run one after the other (num_workers=0), and much steadier: its
          data-only passes are short, and the bare epoch is on both sides of the fraction

Each side's epoch is estimated two ways. "wall": the median over repeats of whole-epoch seconds
(for nas, the `epoch_s` that `train` itself reports); its ratios are medians of the paired
per-repeat ratios. "step" (CPU only; the table's main columns): steps x the pass's median time
between consecutive forward calls (a forward pre-hook, identical on every side). Each
such interval is one full loop iteration, data included, and the median ignores the iterations
that another process on a shared machine slowed down: with 2 cores and 2 torch threads, one busy
neighbour process can slow a whole pass several-fold, which no wall-clock median hides. The
script also reads /proc/stat around every pass: it waits for a quiet half-second before a pass
(--quiet-wait, in all), redoes a pass during which other processes used more than 10% of a core
(--retries), and prints a warning naming any busy pass it kept.

Why many short passes (default 8 repeats x 1280 images) rather than a few long ones: on a small
shared VM the speed drifts by 10-20% over seconds even when no other process runs (the host's
neighbours), so passes run close together in time, and more of them, give steadier paired ratios
than 3 repeats of 5120 images at the same total cost.

`--part eval`: `nas.train.evaluate` at the default `train.eval_batch_size=0` against a bare
`torch.inference_mode` loop over the same (pre-normalised) batches at batch 32..1024, interleaved;
target: >= 0.95 of the bare loop at its best batch size.

`--part process`: what the user waits for. Whole processes, each in a fresh interpreter, timed
from outside from start to exit, interleaved (the order rotates every repeat):

  nas run               `nas run` (benchmarks/nas_run_timed.py: the CLI unchanged, plus timers)
                        in a folder whose MLflow store exists; "new folder": the first run in an
                        empty folder; "mlflow off": mlflow.enabled=false
  before: nas run       the same from another copy of nas (--before DIR), for before/after tables
  bare script           benchmarks/bare_run.py: the same work on the same nas-built model and
                        nothing else (pickles -> tensors, crop/flip, SGD, inference_mode eval)
  seeds' pipeline       benchmarks/seeds_run.py: torchvision CIFAR10 + PIL transforms +
                        DataLoader, the seed's train() and test() (no val split)

for a short run (--short-train 256 images, 1 epoch, 5,000 val + 10,000 test images evaluated;
target nas run <= 1.3 x bare script) and a long one (--long-train 10,000 images, 1 epoch, no val,
the test set; target nas run <= 0.9 x seeds' pipeline), with each process's own breakdown: data,
MLflow (the main thread waiting on it), model, train, eval, checkpoint, and the rest (imports,
config, exit). Ratios are medians of per-repeat ratios. Use --threads 1 on a shared machine: two
torch threads on two cores slow down several-fold whenever another process takes a core.

Nothing here asserts on timings: it prints tables.

    python benchmarks/train_throughput.py --part loop     # ~2-3 min on 2 CPU cores
    python benchmarks/train_throughput.py --part process --threads 1 --before /tmp/nas-before
    python benchmarks/train_throughput.py --quick         # plumbing check, all parts, ~2 min
    python benchmarks/train_throughput.py --preset mobilenet_v2 --width 0.5 --images 5120 --repeats 3

Real CIFAR-10 (`cifar-10-batches-py/`) is read from --root (default: ./.nas/test-data when it
exists, else $NAS_DATA / ~/.cache/nas/data). Without it the script falls back to nas's synthetic
data and feeds the seeds' transforms the same uint8 images through an equivalent of torchvision's
CIFAR10.__getitem__ (--data synthetic forces that).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    import resource
except ImportError:  # not on Windows: passes slowed by other processes go undetected there
    resource = None  # type: ignore[assignment]

import numpy as np
import torch
import torchvision
import torchvision.transforms as transforms
from PIL import Image
from torch import nn

import nas
from nas.config import TrainConfig
from nas.data import DataBundle, DataConfig, Loader, Split, default_root, load_data, split_indices
from nas.device import Precision, configure_threads, precision_for, select_device, synchronize
from nas.optim import OPTIMIZERS, param_groups
from nas.train import Diverged, train

REPO = Path(__file__).resolve().parents[1]
CIFAR_FOLDER = "cifar-10-batches-py"
# The seeds' constants (seed 004), not nas's: the seeds' pipeline is reproduced as written.
SEED_MEAN, SEED_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
LAST_LOSS: dict[str, float] = {}  # each side's last training loss: a NaN would void its timing


# ----------------------------------------------------------------------------- the seeds' data


class SeedCIFAR10(torchvision.datasets.CIFAR10):
    """torchvision's CIFAR10, minus the md5 checks (the local copy's pickles differ in bytes)."""

    meta = {**torchvision.datasets.CIFAR10.meta, "md5": None}  # _load_meta: "file exists" only

    def _check_integrity(self) -> bool:
        return True


class ArrayCIFAR(torch.utils.data.Dataset):
    """What torchvision's CIFAR10.__getitem__ does, over an in-memory uint8 NHWC array."""

    def __init__(self, data: np.ndarray, targets: list[int], transform):
        self.data, self.targets, self.transform = data, targets, transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        img, target = Image.fromarray(self.data[index]), self.targets[index]
        return self.transform(img), target


def seed_transform() -> transforms.Compose:
    return transforms.Compose([
        transforms.RandomCrop(32, padding=4),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(SEED_MEAN, SEED_STD),
    ])


# ----------------------------------------------------------------------------- timed passes


def run_nas(model: nn.Module, data: DataBundle, cfg: TrainConfig, dcfg: DataConfig,
            precision: Precision) -> tuple[list[float], float]:
    """The real loop: per-epoch seconds as `train` reports them, and the whole call's seconds."""
    start = time.perf_counter()
    try:
        result = train(model, data, cfg, data_cfg=dcfg, precision=precision, progress=False)
    except Diverged as err:
        raise SystemExit(f"nas train() diverged ({err}); rerun with a lower --lr") from None
    LAST_LOSS["nas"] = result.history[-1]["train_loss"]
    return [h["epoch_s"] for h in result.history], time.perf_counter() - start


def run_bare(model: nn.Module, batches: list, cfg: TrainConfig, precision: Precision,
             device: torch.device, optimizer) -> float:
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    model.train()
    synchronize(device)
    start = time.perf_counter()
    for x, y in batches:
        with precision.autocast(device):
            loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    synchronize(device)
    seconds = time.perf_counter() - start
    LAST_LOSS["bare"] = loss.item()
    return seconds


def run_seeds(model: nn.Module, loader, cfg: TrainConfig, precision: Precision,
              device: torch.device, optimizer: torch.optim.Optimizer, scheduler,
              max_steps: int | None = None) -> float:
    """Seed 004's `train(epoch)` body (tqdm and the every-100-steps print left out)."""
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    model.train()
    train_loss = 0.0
    synchronize(device)
    start = time.perf_counter()
    for step, (inputs, targets) in enumerate(loader):
        if max_steps is not None and step >= max_steps:
            break
        inputs, targets = inputs.to(device), targets.to(device)
        optimizer.zero_grad()
        with precision.autocast(device):
            loss = criterion(model(inputs), targets)
        loss.backward()
        optimizer.step()
        scheduler.step()
        train_loss += loss.item()
    synchronize(device)
    seconds = time.perf_counter() - start
    LAST_LOSS["seeds"] = loss.item()
    return seconds


def run_loader(data: DataBundle, dcfg: DataConfig, batch: int, precision: Precision,
               seed: int) -> float:
    """One epoch of the nas Loader as `train` builds it, with nothing done to the batches."""
    device = data.train.images.device
    synchronize(device)
    start = time.perf_counter()
    loader = Loader(data.train, batch, mean=data.mean, std=data.std, train=True, cfg=dcfg,
                    generator=torch.Generator().manual_seed(seed), drop_last=True,
                    channels_last=precision.channels_last)
    for _ in loader:
        pass
    synchronize(device)
    return time.perf_counter() - start


def run_seed_loader(loader, device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    for inputs, targets in loader:
        inputs, targets = inputs.to(device), targets.to(device)
    synchronize(device)
    return time.perf_counter() - start


PASSES = ("nas", "bare", "seeds", "loader", "seed_loader")
BUSY_SHARE = 0.1  # a pass is redone when other processes used > 10% of a core meanwhile


class StepClock:
    """Stamps every forward call of a model (a pre-hook: the same ~1 us on every side)."""

    def __init__(self, model: nn.Module):
        self.stamps: list[float] = []
        self.done: list[float] = []
        model.register_forward_pre_hook(lambda module, inputs: self.stamps.append(time.perf_counter()))

    def cut(self) -> None:
        """Keep the intervals so far, but do not count the gap to the next forward call."""
        self.done += [b - a for a, b in zip(self.stamps, self.stamps[1:])]
        self.stamps.clear()

    def intervals(self) -> list[float]:
        """Seconds between consecutive forward calls since the last call; then forget them."""
        self.cut()
        out, self.done = self.done, []
        return out


class OtherCpu:
    """CPU seconds that other processes (and the hypervisor: steal) used since construction."""

    def __init__(self):
        self.start = self._now()

    @staticmethod
    def _now() -> tuple[float, float] | None:
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        if resource is None:
            return None
        hz = os.sysconf("SC_CLK_TCK")
        busy = sum(fields[:8]) - fields[3] - fields[4]  # all but idle and iowait
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        mine = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
        return busy / hz, mine

    def seconds(self) -> float | None:
        end = self._now()
        if self.start is None or end is None:
            return None
        return max(0.0, (end[0] - self.start[0]) - (end[1] - self.start[1]))


def wait_quiet(limit: float, window: float = 0.5) -> float:
    """Wait (at most `limit` s) for a `window` in which other processes use < BUSY_SHARE of a core."""
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        other = OtherCpu()
        time.sleep(window)
        used = other.seconds()
        if used is None or used < BUSY_SHARE * window:
            break
    return time.perf_counter() - start


# ----------------------------------------------------------------------------- setup


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="shufflenet_v1_g3", help="a nas preset (default %(default)s)")
    p.add_argument("--width", type=float, default=0.25, help="width multiplier (default %(default)s)")
    p.add_argument("--batch", type=int, default=None, help="batch size (default 128; --quick 32)")
    p.add_argument("--images", type=int, default=None,
                   help="train images per epoch (class-balanced, then cut to whole batches; "
                        "default 1280; --quick 160)")
    p.add_argument("--epochs", type=int, default=1, help="epochs per timed pass (default 1)")
    p.add_argument("--repeats", type=int, default=None, help="interleaved repeats (default 8; --quick 1)")
    p.add_argument("--lr", type=float, default=TrainConfig.lr,
                   help="peak learning rate for every side (timings do not depend on it)")
    p.add_argument("--threads", type=int, default=0, help="torch threads for every side (0: all cores)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] | npu | mps")
    p.add_argument("--data", choices=("auto", "cifar10", "synthetic"), default="auto",
                   help="auto: CIFAR-10 under --root when there, else synthetic")
    p.add_argument("--root", default=None,
                   help="folder holding cifar-10-batches-py/ (default ./.nas/test-data, else $NAS_DATA)")
    p.add_argument("--seed-workers", type=int, default=0,
                   help="DataLoader num_workers for the seeds' pipeline (seed 004: 0, the default)")
    p.add_argument("--retries", type=int, default=None,
                   help="redo a pass up to this many times when other processes used more than "
                        f"{100 * BUSY_SHARE:.0f}%% of a core during it (default 2; --quick 0; 0: never)")
    p.add_argument("--quiet-wait", type=float, default=None,
                   help="seconds in all to wait, before passes, for other processes to go idle "
                        "(default 120; --quick 5)")
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes, one repeat, synthetic data for the whole processes: a plumbing check")
    p.add_argument("--part", choices=("loop", "eval", "process", "all"), default="all",
                   help="loop: the training loops in this process; eval: evaluate() against a bare "
                        "inference loop at each batch size; process: whole `nas run` processes "
                        "against whole seeds'/bare processes; all: the three (default)")
    p.add_argument("--short-train", type=int, default=256,
                   help="process part, short run: train images (5,000 val and the test set evaluated)")
    p.add_argument("--long-train", type=int, default=10000,
                   help="process part, long run: train images (no val, the test set evaluated)")
    p.add_argument("--sizes", default="short,long", help="process part: which runs (short,long)")
    p.add_argument("--process-repeats", type=int, default=None,
                   help="process part: interleaved repeats (default 3; --quick 1)")
    p.add_argument("--before", metavar="DIR",
                   help="process part: also time `nas run` from another copy of nas (e.g. `git archive"
                        " HEAD~5 | tar -x -C DIR`), interleaved with the others: a before/after table")
    p.add_argument("--bare-eval-batch", type=int, default=128,
                   help="the bare script's evaluation batch (default: CPU's best, as measured)")
    args = p.parse_args(argv)
    quick = {"batch": 32, "images": 160, "repeats": 1, "retries": 0, "quiet_wait": 5.0}
    quick = quick if args.quick else {}
    for key, full in (("batch", 128), ("images", 1280), ("repeats", 8), ("retries", 2),
                      ("quiet_wait", 120.0)):
        if getattr(args, key) is None:
            setattr(args, key, quick.get(key, full))
    if args.images < args.batch:
        p.error(f"--images {args.images} must be at least --batch {args.batch}")
    args.images -= args.images % args.batch  # whole batches: every side runs the same steps
    return args


def pick_root(args: argparse.Namespace) -> Path:
    if args.root:
        return Path(args.root).expanduser()
    local = REPO / ".nas" / "test-data"
    return local if (local / CIFAR_FOLDER).is_dir() else default_root()


def make_data(args, root: Path, device: torch.device):
    """(nas DataBundle, its DataConfig, the seeds' Dataset over the very same train images)."""
    name = args.data
    if name == "auto":
        name = "cifar10" if (root / CIFAR_FOLDER / "data_batch_5").exists() else "synthetic"
    common = dict(val_size=0, train_subset=args.images, split_seed=0, download=False)
    if name == "cifar10":
        dcfg = DataConfig(name="cifar10", root=str(root), **common)
        data = load_data(dcfg, device)
        full = SeedCIFAR10(str(root), train=True, download=False, transform=seed_transform())
        idx, _ = split_indices(torch.tensor(full.targets), dcfg.val_size, dcfg.train_subset,
                               dcfg.split_seed, 10)
        seeds = torch.utils.data.Subset(full, idx.tolist())
        first = torch.from_numpy(full.data[int(idx[0])]).permute(2, 0, 1)
        assert torch.equal(first, data.train.images[0].cpu()), "nas and torchvision images differ"
    else:
        dcfg = DataConfig(name="synthetic", synthetic_train=args.images + 10, synthetic_test=10,
                          **common)
        data = load_data(dcfg, device)
        x = data.train.images.cpu().permute(0, 2, 3, 1).contiguous().numpy()
        seeds = ArrayCIFAR(x, data.train.labels.cpu().tolist(), seed_transform())
    return data, dcfg, seeds, name


def fmt_ratio(value: float, target: float, higher: bool, pct: bool = False) -> list[str]:
    ok = value >= target if higher else value <= target
    shown = f"{100 * value:.1f}%" if pct else f"{value:.3f}"
    goal = f"{'>=' if higher else '<='} {100 * target:.0f}%" if pct else \
        f"{'>=' if higher else '<='} {target:g}"
    return [shown, goal, "pass" if ok else "FAIL"]


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)  # noqa: E731
                               for i, (c, w) in enumerate(zip(r, widths)))
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.part in ("loop", "all"):
        loop_part(args)
    if args.part in ("eval", "all"):
        eval_part(args)
    if args.part in ("process", "all"):
        process_part(args)


def loop_part(args: argparse.Namespace) -> None:
    wall_start = time.perf_counter()
    device = select_device(args.device)
    threads = configure_threads(args.threads)  # torch.set_num_threads, the same for every side
    precision = precision_for(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # what `train` sets; set here so every side has it
    root = pick_root(args)
    data, dcfg, seed_set, data_name = make_data(args, root, device)
    steps = len(data.train) // args.batch  # nas drops the last partial batch ...
    images = steps * args.batch
    if len(seed_set) > images:  # ... the seeds' DataLoader does not: give it whole batches only
        seed_set = torch.utils.data.Subset(seed_set, range(images))
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch, lr=args.lr)

    spec = nas.load_preset(args.preset, width=args.width, resolution=data.resolution,
                           num_classes=data.num_classes)
    counted = nas.count(spec)
    torch.manual_seed(0)
    base = nas.build_model(spec).to(device)
    models = {k: copy.deepcopy(base) for k in ("nas", "bare", "seeds")}
    for k in ("bare", "seeds"):  # `train` converts its own model
        if precision.channels_last:
            models[k] = models[k].to(memory_format=torch.channels_last)
    opt_bare = OPTIMIZERS[cfg.optimizer](param_groups(models["bare"], cfg.weight_decay), cfg)
    # the seeds use torch.optim (OneCycleLR needs one); nas and bare use nas's Optimizer (the same rule)
    opt_seed = torch.optim.SGD(param_groups(models["seeds"], cfg.weight_decay), lr=cfg.lr,
                               momentum=cfg.momentum, nesterov=cfg.nesterov)
    # + warm-up and retries: OneCycleLR raises past its last step
    total_seed_steps = ((args.retries + 1) * args.repeats * args.epochs + 1) * steps + 8
    sched_seed = torch.optim.lr_scheduler.OneCycleLR(
        opt_seed, cfg.lr, total_steps=total_seed_steps, div_factor=25, final_div_factor=10000,
        pct_start=0.3)
    seed_loader = torch.utils.data.DataLoader(seed_set, batch_size=args.batch, shuffle=True,
                                              num_workers=args.seed_workers)

    amp = "off" if precision.amp_dtype is None else str(precision.amp_dtype).removeprefix("torch.")
    print(f"env: torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"python {platform.python_version()}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
          + f", threads {threads} (torch.get_num_threads()={torch.get_num_threads()}), amp {amp}, "
          f"channels_last {precision.channels_last}")
    print(f"model: {args.preset} width {args.width} @ {data.resolution}px, "
          f"{counted.params:,} params, {counted.macs / 1e6:.2f}M MACs (nas.count)")
    print(f"data: {data_name} from {root if data_name == 'cifar10' else '(generated)'}, "
          f"{images} train images = {steps} steps x batch {args.batch}, {args.epochs} epoch(s) per "
          f"pass, {args.repeats} interleaved repeat(s); seeds' DataLoader num_workers="
          f"{args.seed_workers}")
    sys.stdout.flush()

    # --- warm-up: one short untimed pass for each side
    warm_n = min(2, steps)
    small = dataclasses.replace(data, train=Split(data.train.images[:warm_n * args.batch],
                                                  data.train.labels[:warm_n * args.batch]))
    run_nas(models["nas"], small, dataclasses.replace(cfg, epochs=1), dcfg, precision)
    warm_batches = list(Loader(small.train, args.batch, mean=data.mean, std=data.std, train=True,
                               cfg=dcfg, generator=torch.Generator().manual_seed(99),
                               drop_last=True, channels_last=precision.channels_last))
    run_bare(models["bare"], warm_batches, cfg, precision, device, opt_bare)
    run_seeds(models["seeds"], seed_loader, cfg, precision, device, opt_seed, sched_seed,
              max_steps=warm_n)
    run_loader(small, dcfg, args.batch, precision, 99)

    # --- timed, interleaved; the order rotates every repeat
    clocks = {k: StepClock(models[k]) for k in ("nas", "bare", "seeds")}
    wall_s: dict[str, list[float]] = {k: [] for k in PASSES}
    step_s: dict[str, list[float]] = {k: [] for k in PASSES}
    calls: list[float] = []

    def nas_pass(r: int) -> float:
        epochs, call = run_nas(models["nas"], data, dataclasses.replace(cfg, seed=r), dcfg, precision)
        calls.append(call / args.epochs)
        return statistics.median(epochs)

    def bare_pass(r: int) -> float:
        per_epoch = []
        for e in range(args.epochs):
            g = torch.Generator().manual_seed(1000 * r + e)
            batches = list(Loader(data.train, args.batch, mean=data.mean, std=data.std, train=True,
                                  cfg=dcfg, generator=g, drop_last=True,
                                  channels_last=precision.channels_last))
            clocks["bare"].cut()  # building the list is not timed
            per_epoch.append(run_bare(models["bare"], batches, cfg, precision, device, opt_bare))
            del batches
        return statistics.median(per_epoch)

    def seeds_pass(r: int) -> float:
        return statistics.median(run_seeds(models["seeds"], seed_loader, cfg, precision, device,
                                           opt_seed, sched_seed) for _ in range(args.epochs))

    passes = {
        "nas": nas_pass, "bare": bare_pass, "seeds": seeds_pass,
        "loader": lambda r: run_loader(data, dcfg, args.batch, precision, r),
        "seed_loader": lambda r: run_seed_loader(seed_loader, device),
    }
    order = list(passes)
    redone, busy_kept, waited = 0, [], 0.0
    for r in range(args.repeats):
        now, note = {}, []
        for k in order[r % len(order):] + order[:r % len(order)]:
            for attempt in range(args.retries + 1):
                waited += wait_quiet(args.quiet_wait - waited)
                for c in clocks.values():
                    c.intervals()
                other = OtherCpu()
                now[k] = passes[k](r)
                used = other.seconds()
                busy = used is not None and used > BUSY_SHARE * now[k] + 0.05
                if not busy or attempt == args.retries:
                    break
                redone += 1
                note.append(f"{k} redone ({used:.1f} CPU-s by others in {now[k]:.1f}s)")
            if busy:
                busy_kept.append(f"repeat {r + 1} {k}: {used:.1f} CPU-s by others in {now[k]:.1f}s")
            wall_s[k].append(now[k])
            ticks = clocks[k].intervals() if k in clocks else []
            # steps x the median loop iteration of this pass (data-only passes: their wall time)
            step_s[k].append(steps * statistics.median(ticks) if ticks else now[k])
        print(f"repeat {r + 1}/{args.repeats}: " + ", ".join(f"{k} {v:.2f}s" for k, v in now.items())
              + (f"  [{'; '.join(note)}]" if note else ""))
        sys.stdout.flush()

    # --- two estimates of an epoch per side:
    #   wall: whole-epoch seconds (nas: the epoch_s train itself reports)
    #   step: steps x the pass's median time between consecutive forward calls; each interval is
    #         one whole loop iteration (next batch, forward, loss, backward, step, bookkeeping),
    #         and the median ignores iterations another process slowed down. CPU only: on an
    #         accelerator the loops queue work asynchronously, so the wall clock is used there.
    # Per side: the median over repeats. Ratios: the median over repeats of the per-repeat ratio,
    # so each ratio compares passes run next to each other.
    robust = device.type == "cpu" and steps > 1
    main_s = step_s if robust else wall_s
    wall = {k: statistics.median(v) for k, v in wall_s.items()}
    est = {k: statistics.median(v) for k, v in main_s.items()}
    per_repeat = lambda f, by: [f({k: by[k][r] for k in by}) for r in range(args.repeats)]  # noqa: E731
    checks = [  # label, f(epoch seconds by side), target, higher is better, as percent
        ("1. nas img/s / bare img/s", lambda t: t["bare"] / t["nas"], 0.95, True, False),
        ("2a. (nas - bare) / nas epoch", lambda t: (t["nas"] - t["bare"]) / t["nas"], 0.03, False, True),
        ("2b. Loader alone / nas epoch", lambda t: t["loader"] / t["nas"], 0.03, False, True),
        ("3. nas epoch / seeds epoch" + ("" if device.type == "cpu" else " (target set for CPU)"),
         lambda t: t["nas"] / t["seeds"], 0.9, False, False),
        ("3b. (bare + Loader) / (bare + seeds' DataLoader)",
         lambda t: (t["bare"] + t["loader"]) / (t["bare"] + t["seed_loader"]), 0.9, False, False),
    ]
    names = {
        "bare": "bare loop (pre-made batches)", "nas": "nas train() loop",
        "seeds": "seeds' pipeline (tv CIFAR10+PIL+DataLoader)",
        "loader": "  nas Loader alone (no training)",
        "seed_loader": "  seeds' DataLoader alone (no training)",
    }
    rows = [[names[k], f"{images / est[k]:,.0f}", f"{est[k]:.3f}", f"{wall[k]:.3f}", "", "", "", "",
             ""] for k in names]
    for label, f, target, higher, pct in checks:
        values = per_repeat(f, main_s)
        value, value_wall = statistics.median(values), statistics.median(per_repeat(f, wall_s))
        shown, goal, ok = fmt_ratio(value, target, higher, pct)
        lo, hi = (fmt_ratio(v, target, higher, pct)[0] for v in (min(values), max(values)))
        rows.append([label, "", "", "", shown, f"{lo}..{hi}" if args.repeats > 1 else "-",
                     fmt_ratio(value_wall, target, higher, pct)[0], goal,
                     ok if robust else ok + " (wall)"])
    print()
    print_table(["what", "img/s", "s/epoch", "wall s/ep", "ratio", "range", "wall ratio", "target",
                 "result"], rows)
    basis = ("img/s, s/epoch, ratio: steps x the median loop iteration of each pass (robust to "
             "other processes; data-only rows: wall clock)" if robust
             else "img/s, s/epoch, ratio: wall clock")
    print(f"\n{basis}. Every number is a median over {args.repeats} interleaved repeat(s); "
          f"ratios are medians of per-repeat ratios, range: their min..max.")
    print(f"nas train() whole call incl. setup: {statistics.median(calls):.2f}s per epoch; "
          f"total wall {time.perf_counter() - wall_start:.0f}s")
    losses = ", ".join(f"{k} {v:.3f}" for k, v in LAST_LOSS.items())
    print(f"last training losses: {losses}" + ("" if all(math.isfinite(v) for v in LAST_LOSS.values())
          else "  WARNING: a loss is not finite, that side's timing is not comparable (lower --lr)"))
    if OtherCpu().start is None:
        print("(could not read /proc/stat: passes slowed by other processes are not detected)")
    else:
        print(f"waited {waited:.0f}s for a quiet machine; passes redone because other processes "
              f"were busy: {redone}; busy passes kept: {len(busy_kept)}")
    if busy_kept:
        print("WARNING: other processes used the CPU during kept passes, timings are unreliable: "
              + "; ".join(busy_kept))



# ----------------------------------------------------------------------------- evaluation speed


def eval_part(args: argparse.Namespace) -> None:
    """`nas.train.evaluate` at train.eval_batch_size=0 (the device's default) against a bare
    `torch.inference_mode` loop over pre-normalised batches at each batch size; interleaved."""
    from nas.train import eval_batch_size, evaluate

    device = select_device(args.device)
    threads = configure_threads(args.threads)
    precision = precision_for(device)
    root = pick_root(args)
    real = args.data != "synthetic" and (root / CIFAR_FOLDER / "data_batch_5").exists() and not args.quick
    dcfg = (DataConfig(name="cifar10", root=str(root), val_size=0, train_subset=100, download=False)
            if real else DataConfig(name="synthetic", val_size=0, synthetic_train=64,
                                    synthetic_test=512 if args.quick else 4096))
    data = load_data(dcfg, device)
    split = data.test
    spec = nas.load_preset(args.preset, width=args.width, resolution=data.resolution,
                           num_classes=data.num_classes)
    torch.manual_seed(0)
    model = nas.build_model(spec).to(device).eval()
    if precision.channels_last:
        model = model.to(memory_format=torch.channels_last)
    auto = eval_batch_size(0, device)
    sizes = [32, 64, 128, 256, 512, 1024]
    batches = {bs: list(Loader(split, bs, mean=data.mean, std=data.std, train=False,
                               channels_last=precision.channels_last)) for bs in sizes}

    @torch.inference_mode()
    def bare(bs: int) -> float:
        synchronize(device)
        start = time.perf_counter()
        correct = torch.zeros((), dtype=torch.long, device=device)
        with precision.autocast(device):
            for x, y in batches[bs]:
                correct += (model(x).argmax(1) == y).sum()
        correct.item()
        return len(split) / (time.perf_counter() - start)

    def ours(bs: int) -> float:
        start = time.perf_counter()
        evaluate(model, split, data, bs, precision)
        return len(split) / (time.perf_counter() - start)

    passes = {**{f"bare {bs}": (lambda bs=bs: bare(bs)) for bs in sizes},
              f"evaluate, eval_batch_size=0 ({auto})": lambda: ours(0),
              "evaluate, eval_batch_size=1024 (the old default)": lambda: ours(1024)}
    repeats = 1 if args.quick else 3
    for fn in passes.values():  # warm-up
        fn()
    rates: dict[str, list[float]] = {k: [] for k in passes}
    order = list(passes)
    for r in range(repeats):
        for k in order[r % len(order):] + order[:r % len(order)]:
            rates[k].append(passes[k]())
    med = {k: statistics.median(v) for k, v in rates.items()}
    best = max((k for k in med if k.startswith("bare")), key=med.get)
    print(f"\n== evaluation: {args.preset} width {args.width}, {len(split)} "
          f"{'CIFAR-10 test' if real else 'synthetic'} images on {device}, {threads} thread(s), "
          f"{repeats} interleaved repeat(s), medians; load average "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    rows = [[k, f"{med[k]:,.0f}", f"{med[k] / med[best]:.3f}"] for k in passes]
    print_table(["pass", "img/s", "/ best bare"], rows)
    ratio = med[f"evaluate, eval_batch_size=0 ({auto})"] / med[best]
    print(f"evaluate at the default / the bare loop at its best batch ({best}): "
          + " ".join(fmt_ratio(ratio, 0.95, True)))


# ----------------------------------------------------------------------------- whole processes
# What the user waits for: `nas run` from `python` starting to its exit, against two other
# whole processes doing the same training and evaluation: the seeds' pipeline (seeds_run.py)
# and a bare script on the same nas-built model (bare_run.py). Each side runs in its own fresh
# interpreter, interleaved (the order rotates every repeat), timed from outside; each also
# prints where its time went, so the table splits the wall time into phases.

HERE = Path(__file__).resolve().parent
PHASES = ("data", "mlflow", "model", "train", "eval", "checkpoint")
SEEDS = "seeds' pipeline"


@dataclasses.dataclass
class Size:
    name: str
    train: int
    val: int
    epochs: int = 1


def process_sizes(args: argparse.Namespace) -> list[Size]:
    if args.quick:
        return [Size("quick (synthetic)", 256, 64)]
    sizes = {"short": Size("short", args.short_train, 5000), "long": Size("long", args.long_train, 0)}
    return [sizes[name] for name in args.sizes.split(",")]


def process_sides(args: argparse.Namespace, size: Size, root: Path, data_name: str,
                  work: Path) -> dict[str, tuple[list[str], Path | None, Path]]:
    """side -> (command, cwd, nas source folder); cwd None: a fresh empty folder each repeat."""
    py = sys.executable
    common = [f"--preset={args.preset}", f"--width={args.width}", f"--threads={args.threads}",
              f"--root={root}", f"--data={data_name}", f"--epochs={size.epochs}"]
    words = [f"preset={args.preset}", f"width={args.width}", f"train.threads={args.threads}",
             f"data.train_subset={size.train}", f"data.val_size={size.val}",
             f"train.epochs={size.epochs}", "progress=false", "output_dir=runs"]
    if data_name == "synthetic":
        n_train, n_test = size.train + size.val + 16, 256
        words += ["data.name=synthetic", f"data.synthetic_train={n_train}",
                  f"data.synthetic_test={n_test}"]
        common += ["--synthetic", str(n_train), str(n_test)]
    else:
        words += [f"data.root={root}"]
    nas_cmd = [py, str(HERE / "nas_run_timed.py"), *words]
    store = work / f"store-{size.name.split()[0]}"
    store.mkdir(parents=True, exist_ok=True)
    sides = {"nas run": (nas_cmd, store, REPO)}
    full = size.name != "long"  # the long run: the comparisons its target is about
    if full:
        sides["nas run, new folder"] = (nas_cmd, None, REPO)
        sides["nas run, mlflow off"] = (nas_cmd + ["mlflow.enabled=false"], store, REPO)
    if args.before:
        before = Path(args.before).resolve()
        old_store = work / f"store-before-{size.name.split()[0]}"
        old_store.mkdir(parents=True, exist_ok=True)
        sides["before: nas run"] = (nas_cmd, old_store, before)
        if full:
            sides["before: nas run, new folder"] = (nas_cmd, None, before)
    sides["bare script"] = ([py, str(HERE / "bare_run.py"), *common, f"--train={size.train}",
                             f"--val={size.val}", f"--eval-batch={args.bare_eval_batch}"], work, REPO)
    sides[SEEDS] = ([py, str(HERE / "seeds_run.py"), *common, f"--train={size.train}"], work, REPO)
    return sides


def run_process(cmd: list[str], cwd: Path, source: Path = REPO) -> tuple[float, dict[str, float]]:
    env = {**os.environ, "PYTHONPATH": str(source) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("MLFLOW_TRACKING_URI", None)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith('{"seconds"')]
    return wall, json.loads(lines[-1])["seconds"]


def process_part(args: argparse.Namespace) -> None:
    root = pick_root(args)
    data_name = args.data
    if data_name == "auto" or args.quick:
        real = (root / CIFAR_FOLDER / "data_batch_5").exists()
        data_name = "cifar10" if real and not args.quick else "synthetic"
    threads = args.threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                               else os.cpu_count())
    repeats = args.process_repeats if args.process_repeats is not None else (1 if args.quick else 3)
    print(f"\n== whole processes: {args.preset} width {args.width}, {data_name}, {threads} torch "
          f"thread(s) on every side, {repeats} interleaved repeat(s); load average "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="nas-bench-") as tmp:
        work = Path(tmp)
        for size in process_sizes(args):
            sides = process_sides(args, size, root, data_name, work)
            for k, (cmd, cwd, source) in sides.items():  # untimed warm-up: page cache, stores
                if cwd is not None and "mlflow.enabled=false" not in cmd:
                    run_process(cmd, cwd, source)
            walls: dict[str, list[float]] = {k: [] for k in sides}
            parts: dict[str, list[dict[str, float]]] = {k: [] for k in sides}
            order = list(sides)
            for r in range(repeats):
                for k in order[r % len(order):] + order[:r % len(order)]:
                    cmd, cwd, source = sides[k]
                    if cwd is None:
                        cwd = work / f"fresh-{len(list(work.glob('fresh-*')))}"
                        cwd.mkdir()
                    wall, secs = run_process(cmd, cwd, source)
                    walls[k].append(wall)
                    parts[k].append(secs)
                print(f"  {size.name} repeat {r + 1}/{repeats}: "
                      + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in walls.items()))
                sys.stdout.flush()
            print_process_table(size, walls, parts, repeats)


def print_process_table(size: Size, walls: dict[str, list[float]],
                        parts: dict[str, list[dict[str, float]]], repeats: int) -> None:
    work = (f"{size.train} train images x {size.epochs} epoch, {size.val} val + the test set "
            "evaluated (seeds' pipeline: no val split, test only)")
    print(f"\n{size.name}: {work}")
    med = statistics.median
    header = ["side", "wall s", "range", "x bare", "x seeds", *PHASES, "other"]
    rows = []
    for k, w in walls.items():
        phase = {p: med([s.get(p, 0.0) for s in parts[k]]) for p in PHASES}
        other = med(w) - sum(phase.values())
        ratio = lambda ref: med([a / b for a, b in zip(w, walls[ref])])  # noqa: E731 - paired
        rows.append([k, f"{med(w):.2f}", f"{min(w):.1f}..{max(w):.1f}" if repeats > 1 else "-",
                     f"{ratio('bare script'):.2f}", f"{ratio(SEEDS):.2f}",
                     *(f"{phase[p]:.2f}" if phase[p] else "-" for p in PHASES), f"{other:.2f}"])
    print_table(header, rows)
    nas_bare = med([a / b for a, b in zip(walls["nas run"], walls["bare script"])])
    nas_seeds = med([a / b for a, b in zip(walls["nas run"], walls[SEEDS])])
    print(f"nas run / bare script {nas_bare:.2f} (target <= 1.3 for the short run); nas run / "
          f"seeds' pipeline {nas_seeds:.2f} (target <= 0.9 for the long run). Wall: from outside, "
          "interpreter start to exit; phases: each process's own timers (mlflow: the main thread "
          "waiting on MLflow); other: wall minus phases (interpreter start-up, config, exit).")


if __name__ == "__main__":
    try:
        main()
    except nas.NasError as err:  # a bad preset, device or data folder: one line, no traceback
        sys.exit(f"error: {err}")
