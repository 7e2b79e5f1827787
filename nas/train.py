"""One training run, `train(model, data, cfg, report)`: label smoothing, gradient clipping, optional
EMA, autocast and channels_last, an atomic checkpoint every epoch that `resume` continues bit-for-bit,
and a NaN/inf guard (optimizers and LR schedules: `nas.optim`)."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from nas import checkpoint
from nas.config import TrainConfig
from nas.data import DataBundle, DataConfig, Loader, Split
from nas.device import Precision, synchronize
from nas.errors import NasError
from nas.optim import OPTIMIZERS, SCHEDULES, Optimizer, param_groups

Report = Callable[[dict[str, Any]], None]
NAN_CHECK_EVERY = 50  # steps between finiteness checks (each one syncs an accelerator)


class Diverged(NasError):
    """The loss became NaN or infinite."""


class Ema:
    """Exponential moving average of parameters; buffers (BN statistics) are copied."""

    def __init__(self, model: nn.Module, decay: float):
        self.model = copy.deepcopy(model).eval()
        self.decay = decay
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        torch._foreach_lerp_(list(self.model.parameters()), list(model.parameters()), 1 - self.decay)
        for ema_b, b in zip(self.model.buffers(), model.buffers()):
            ema_b.copy_(b)


# `train.eval_batch_size=0`: the device type's fastest batch. CPUs want small ones (shufflenet_v1_g3
# x0.25, 2 cores: 525 img/s at 1024 against 858 at 100, flat from 64 to 256; train_throughput.py).
EVAL_BATCH = {"cpu": 128, "mps": 256}
EVAL_BATCH_ACCELERATOR = 1024  # cuda, npu


def eval_batch_size(batch_size: int, device: torch.device) -> int:
    """`batch_size`, or the device type's default when it is 0."""
    return batch_size if batch_size > 0 else EVAL_BATCH.get(device.type, EVAL_BATCH_ACCELERATOR)


@torch.inference_mode()
def evaluate(model: nn.Module, split: Split, data: DataBundle, batch_size: int,
             precision: Precision) -> float | None:
    """Top-1 accuracy in [0, 1] on `split` (None when empty), summed on the device: one host sync."""
    if len(split) == 0:
        return None
    was_training = model.training
    model.eval()
    device = split.images.device
    correct = torch.zeros((), dtype=torch.long, device=device)
    loader = Loader(split, eval_batch_size(batch_size, device), mean=data.mean, std=data.std,
                    train=False, channels_last=precision.channels_last)
    with precision.autocast(device):
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum()
    model.train(was_training)
    return correct.item() / len(split)


@dataclass
class TrainResult:
    model: nn.Module  # the evaluated weights: the EMA model when train.ema is on
    val_acc: float | None
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    resumed_from_epoch: int = 0


@dataclass
class _Loop:
    """What one training run holds across epochs."""

    model: nn.Module
    cfg: TrainConfig
    optimizer: Optimizer
    generator: torch.Generator
    ema: Ema | None
    drop_last: bool
    per_epoch: int
    total: int
    warmup: int

    def set_lr(self, step: int) -> None:  # torch's LambdaLR: step k runs at lr x rule(k)
        rule = SCHEDULES[self.cfg.schedule]
        for group in self.optimizer.param_groups:
            group["lr"] = self.cfg.lr * rule(step, self.total, self.warmup, self.per_epoch, self.cfg)

    @property
    def eval_model(self) -> nn.Module:
        return self.ema.model if self.ema is not None else self.model


def _loop(model: nn.Module, n_train: int, cfg: TrainConfig) -> _Loop:
    drop_last = n_train >= cfg.batch_size  # BN needs batches of more than one sample
    per_epoch = max(1, n_train // cfg.batch_size if drop_last else -(-n_train // cfg.batch_size))
    loop = _Loop(model, cfg, OPTIMIZERS[cfg.optimizer](param_groups(model, cfg.weight_decay), cfg),
                 torch.Generator().manual_seed(cfg.seed), Ema(model, cfg.ema_decay) if cfg.ema else None,
                 drop_last, per_epoch, cfg.epochs * per_epoch, int(cfg.warmup_epochs * per_epoch))
    loop.set_lr(0)
    return loop


def _restore(loop: _Loop, path: Path) -> tuple[list[dict[str, Any]], int]:
    """Continue from the checkpoint at `path`: weights, optimizer, schedule, EMA, RNGs."""
    state = checkpoint.load(path)
    loop.model.load_state_dict(state["model"])
    loop.optimizer.load_state_dict(state["optimizer"])
    loop.set_lr(int(state["scheduler"]["step"]))
    if loop.ema is not None and state.get("ema") is not None:
        loop.ema.model.load_state_dict(state["ema"])
    loop.generator.set_state(state["generator"])
    torch.set_rng_state(state["rng"]["torch"])
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return list(state["history"]), int(state["epoch"])


def _save(loop: _Loop, path: Path, epoch: int, history: list[dict[str, Any]], extra_state: Any) -> None:
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    checkpoint.save_atomic({
        "model": loop.model.state_dict(), "optimizer": loop.optimizer.state_dict(),
        "scheduler": {"step": loop.optimizer.steps},
        "ema": loop.ema.model.state_dict() if loop.ema is not None else None,
        "generator": loop.generator.get_state(), "rng": rng, "epoch": epoch,
        "history": history,
        "extra": dict((extra_state() if callable(extra_state) else extra_state) or {}),
    }, path)


def _epoch(loop: _Loop, step_model: nn.Module, data: DataBundle, epoch: int, *, data_cfg: DataConfig,
           precision: Precision, progress: bool) -> dict[str, Any]:
    """One pass over the training split; its metrics without val_acc. No host sync per step."""
    cfg, device = loop.cfg, data.train.images.device
    loader = Loader(data.train, cfg.batch_size, mean=data.mean, std=data.std, train=True,
                    cfg=data_cfg, generator=loop.generator, drop_last=loop.drop_last,
                    channels_last=precision.channels_last)
    bar = tqdm(total=len(loader), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch",
               disable=not progress, leave=False, dynamic_ncols=True)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    loss_sum = torch.zeros((), device=device)
    lr = loop.optimizer.param_groups[0]["lr"]
    synchronize(device)
    epoch_start, cpu_start = time.perf_counter(), time.process_time()
    for step, (x, y) in enumerate(loader):
        with precision.autocast(device):
            loss = loss_fn(step_model(x), y)
        loop.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(loop.model.parameters(), cfg.grad_clip)
        loop.optimizer.step()
        loop.set_lr(loop.optimizer.steps)
        if loop.ema is not None:
            loop.ema.update(loop.model)
        loss_sum += loss.detach().float()
        if (step + 1) % NAN_CHECK_EVERY == 0 and not torch.isfinite(loss_sum):
            raise Diverged(_diverged_message(epoch, step, lr))
        bar.update()
    synchronize(device)
    seconds, cpu_s = time.perf_counter() - epoch_start, time.process_time() - cpu_start
    bar.close()
    train_loss = (loss_sum / len(loader)).item()
    if not math.isfinite(train_loss):
        raise Diverged(_diverged_message(epoch, len(loader) - 1, lr))
    images = len(loader) * cfg.batch_size if loop.drop_last else len(data.train)
    # cpu_s: CPU seconds this process used in the pass; below epoch_s x threads, it waited for a
    # core (another process had it), which img_per_s alone cannot tell from a slow loop
    return {"epoch": epoch + 1, "train_loss": train_loss, "lr": lr, "img_per_s": images / seconds,
            "epoch_s": seconds, "cpu_s": cpu_s}


def step_module(model: nn.Module, cfg: TrainConfig, device: torch.device) -> nn.Module:
    """What the training step calls: `model` (eager) or compiled. `train.cuda_graphs` (CUDA only)
    replays forward and backward as CUDA graphs, one launch instead of hundreds for launch-bound
    small nets: dynamo's `cudagraphs` backend (capture only: seconds), or with `train.compile`
    torch.compile's "reduce-overhead" mode."""
    graphs = cfg.cuda_graphs and device.type == "cuda"
    if graphs and cfg.compile:
        return torch.compile(model, mode="reduce-overhead")
    if graphs:
        return torch.compile(model, backend="cudagraphs")
    return torch.compile(model) if cfg.compile else model


def train(model: nn.Module, data: DataBundle, cfg: TrainConfig, report: Report | None = None, *,
          data_cfg: DataConfig, precision: Precision, checkpoint_path: Path | None = None,
          resume: bool = False,
          extra_state: dict[str, Any] | Callable[[], dict[str, Any]] | None = None,
          progress: bool = True) -> TrainResult:
    """Train `model` (on the data's device) and return the evaluated weights. `report(metrics)` runs
    after every epoch and may raise to stop early. Each checkpoint holds `extra_state` (a callable:
    called then, so it may name what training started without, such as an MLflow run id)."""
    device = data.train.images.device
    if cfg.deterministic or torch.are_deterministic_algorithms_enabled():
        # only when asked (or to undo an earlier run's): the switch imports torch._dynamo (seconds)
        torch.use_deterministic_algorithms(cfg.deterministic, warn_only=True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not cfg.deterministic
    if precision.channels_last:
        model = model.to(memory_format=torch.channels_last)
    loop = _loop(model, len(data.train), cfg)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if resume and checkpoint_path is not None and checkpoint_path.exists():
        history, start_epoch = _restore(loop, checkpoint_path)
    step_model = step_module(model, cfg, device)
    started = time.perf_counter()
    model.train()
    for epoch in range(start_epoch, cfg.epochs):
        metrics = _epoch(loop, step_model, data, epoch, data_cfg=data_cfg, precision=precision,
                         progress=progress)
        metrics["val_acc"] = evaluate(loop.eval_model, data.val, data, cfg.eval_batch_size, precision)
        history.append(metrics)
        if checkpoint_path is not None:
            _save(loop, checkpoint_path, epoch + 1, history, extra_state)
        if progress:
            shown = "-" if metrics["val_acc"] is None else f"{metrics['val_acc']:.4f}"
            tqdm.write(f"epoch {epoch + 1}/{cfg.epochs}  loss {metrics['train_loss']:.4f}  val_acc"
                       f" {shown}  {metrics['img_per_s']:.0f} img/s  {metrics['epoch_s']:.1f}s")
        if report is not None:
            report(metrics)
    final_val = history[-1]["val_acc"] if history else None
    return TrainResult(loop.eval_model, final_val, history, time.perf_counter() - started, start_epoch)


def _diverged_message(epoch: int, step: int, lr: float) -> str:
    return (f"loss became NaN/inf in epoch {epoch + 1} by step {step + 1} (lr {lr:.3g}); lower"
            " train.lr, set train.grad_clip=1.0, or check the data")
