"""The optimizer (SGD/Adam/AdamW, no weight decay on BN and biases) and the per-step LR schedules."""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn

from nas.config import OPTIMIZER_NAMES, TrainConfig
from nas.errors import NasError


# ----------------------------------------------------------------------------- optimizers


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on conv/linear weights only: BN weights and biases (1-d tensors) are exempt."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    exempt = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": exempt, "weight_decay": 0.0}]


class Optimizer:
    """torch.optim's SGD (momentum, nesterov), Adam and AdamW rules and API, without torch.optim: its
    optimizers import torch._dynamo on first use, 1.6-3.7 s of a short CPU run. State dicts hold
    tensors and plain data only, so checkpoints stay weights_only."""

    def __init__(self, groups: list[dict[str, Any]], kind: str, lr: float, *, momentum: float = 0.0,
                 nesterov: bool = False, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        if kind not in OPTIMIZER_NAMES:
            raise ValueError(f"optimizer kind {kind!r}")
        self.kind, self.momentum, self.nesterov, self.betas, self.eps = kind, momentum, nesterov, betas, eps
        self.param_groups = [{**g, "params": list(g["params"]), "lr": lr} for g in groups]
        self.steps = 0
        self.state: dict[int, dict[str, torch.Tensor]] = {}  # parameter index -> buffers

    def _params(self) -> list[torch.Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self._params():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        index = {id(p): i for i, p in enumerate(self._params())}
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            states = [self.state.setdefault(index[id(p)], {}) for p in params]
            lr, wd = group["lr"], group.get("weight_decay", 0.0)
            if self.kind == "sgd":
                self._sgd(params, grads, states, lr, wd)
            else:
                self._adam(params, grads, states, lr, wd)

    def _sgd(self, params, grads, states, lr: float, wd: float) -> None:
        if wd:
            grads = torch._foreach_add(grads, params, alpha=wd)
        if self.momentum:
            if "momentum" not in states[0]:  # first step: the buffer is the gradient
                for st, g in zip(states, grads):
                    st["momentum"] = g.detach().clone()
                bufs = [st["momentum"] for st in states]
            else:
                bufs = [st["momentum"] for st in states]
                torch._foreach_mul_(bufs, self.momentum)
                torch._foreach_add_(bufs, grads)
            grads = torch._foreach_add(grads, bufs, alpha=self.momentum) if self.nesterov else bufs
        torch._foreach_add_(params, grads, alpha=-lr)

    def _adam(self, params, grads, states, lr: float, wd: float) -> None:
        b1, b2 = self.betas
        if wd and self.kind == "adamw":
            torch._foreach_mul_(params, 1 - lr * wd)
        elif wd:
            grads = torch._foreach_add(grads, params, alpha=wd)
        for st, p in zip(states, params):
            if "exp_avg" not in st:
                st["exp_avg"], st["exp_avg_sq"] = torch.zeros_like(p), torch.zeros_like(p)
        m, v = [st["exp_avg"] for st in states], [st["exp_avg_sq"] for st in states]
        torch._foreach_lerp_(m, grads, 1 - b1)
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - b2)
        bias1, bias2 = 1 - b1 ** self.steps, 1 - b2 ** self.steps
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, math.sqrt(bias2))
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(params, m, denom, value=-lr / bias1)

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "steps": self.steps, "lr": [g["lr"] for g in self.param_groups],
                "state": {i: dict(st) for i, st in self.state.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or state.get("kind") != self.kind:
            raise NasError(f"the checkpoint's optimizer state is not nas's {self.kind} state (a"
                           " checkpoint from an older nas or another train.optimizer); delete it to"
                           " start the run over")
        self.steps = int(state["steps"])
        for group, lr in zip(self.param_groups, state["lr"]):
            group["lr"] = lr
        params = self._params()
        self.state = {int(i): {k: v.to(params[int(i)].device) for k, v in st.items()}
                      for i, st in state["state"].items()}


OPTIMIZERS: dict[str, Callable[[list, TrainConfig], Optimizer]] = {
    "sgd": lambda groups, c: Optimizer(groups, "sgd", c.lr, momentum=c.momentum,
                                       nesterov=c.nesterov and c.momentum > 0),
    "adam": lambda groups, c: Optimizer(groups, "adam", c.lr, betas=(c.momentum, 0.999)),
    "adamw": lambda groups, c: Optimizer(groups, "adamw", c.lr, betas=(c.momentum, 0.999)),
}


# ----------------------------------------------------------------------------- schedules
# Each maps (step, total steps, warm-up steps, steps per epoch, cfg) to a multiplier of cfg.lr.


def _onecycle(step: int, total: int, warmup: int, per_epoch: int, c: TrainConfig) -> float:
    """torch's OneCycleLR shape: lr/25 -> lr over 25% of the run, cosine down to lr/1e4."""
    rise = max(1, int(0.25 * total))
    if step < rise:
        return 1 / 25 + (1 - 1 / 25) * step / rise
    progress = (step - rise) / max(1, total - rise)
    return 1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _warmed(rule: Callable[[int, int, int, int, TrainConfig], float]) -> Callable[..., float]:
    """`rule` after a linear warm-up over the first `warmup` steps."""
    def schedule(step: int, total: int, warmup: int, per_epoch: int, c: TrainConfig) -> float:
        return (step + 1) / warmup if step < warmup else rule(step, total, warmup, per_epoch, c)

    return schedule


SCHEDULES = {
    "onecycle": _onecycle,
    "cosine": _warmed(lambda step, total, warmup, per_epoch, c:
                      0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))),
    "step": _warmed(lambda step, total, warmup, per_epoch, c: c.gamma ** ((step // per_epoch) // c.step_size)),
    "constant": _warmed(lambda *_: 1.0),
}
