"""Launch overhead (step 2 of `benchmarks/gpu_check.sh`): `nas.train.train` eager against
`train.cuda_graphs` (dynamo's cudagraphs backend) and against `train.cuda_graphs` +
`train.compile` (torch.compile "reduce-overhead"), capture and compile time included, projected
onto one `gpu` trial; and the SGD step of nas's own optimizer against torch.optim's foreach and
fused ones. nas's optimizer runs the same `torch._foreach_*` kernels as torch.optim's foreach
path; it exists because torch.optim imports torch._dynamo on first use (seconds of a CPU run).
"""

from __future__ import annotations

import signal
import statistics
import time
from typing import Any, Callable

from gpu_check_report import StepResult

GRAPH_VARIANTS = {"eager": {}, "graphs": {"cuda_graphs": True},
                  "compile+graphs": {"cuda_graphs": True, "compile": True}}



def time_variant(kw: dict[str, Any], spec: Any, data: Any, dcfg: Any, epochs: int, batch: int,
                 device: Any, trial: tuple[int, int]) -> dict[str, float]:
    """`nas.train.train` with these TrainConfig settings: first epoch (capture or compile
    included), the steady epoch after it, and a `gpu` trial (`trial`: images, epochs)
    projected from both."""
    import nas
    import torch
    from nas.config import TrainConfig
    from nas.device import precision_for
    from nas.train import train

    torch.manual_seed(0)
    model = nas.build_model(spec).to(device)
    cfg = TrainConfig(epochs=epochs, batch_size=batch, **kw)
    out = train(model, data, cfg, data_cfg=dcfg, precision=precision_for(device), progress=False)
    secs = [h["epoch_s"] for h in out.history]
    steady = statistics.median(secs[1:]) if len(secs) > 1 else secs[0]
    per_image = steady / len(data.train)
    return {"first_s": secs[0], "steady_s": steady, "img_s": 1 / per_image,
            "trial_s": secs[0] - steady + trial[0] * trial[1] * per_image}



def optimizer_step_us(device: Any, spec: Any, steps: int) -> dict[str, float]:
    """Microseconds per SGD step (momentum, nesterov, weight decay off BN/biases) on the net's
    parameters: nas's own optimizer against torch.optim's foreach and fused implementations."""
    import nas
    import torch
    from nas.config import TrainConfig
    from nas.device import synchronize
    from nas.train import OPTIMIZERS, param_groups

    model = nas.build_model(spec).to(device)
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    sgd = dict(lr=0.1, momentum=0.9, nesterov=True)
    makers: dict[str, Callable[[], Any]] = {
        "nas": lambda: OPTIMIZERS["sgd"](param_groups(model, 5e-4), TrainConfig()),
        "torch_foreach": lambda: torch.optim.SGD(param_groups(model, 5e-4), foreach=True, **sgd),
        "torch_fused": lambda: torch.optim.SGD(param_groups(model, 5e-4), fused=True, **sgd),
    }
    out = {}
    for name, make in makers.items():
        try:
            opt = make()
            for _ in range(min(5, steps)):  # warm-up: state buffers, kernels
                opt.step()
            synchronize(device)
            start = time.perf_counter()
            for _ in range(steps):
                opt.step()
            synchronize(device)
            out[name] = 1e6 * (time.perf_counter() - start) / steps
        except (RuntimeError, ValueError) as err:  # fused SGD where this torch has none
            print(f"optimizer {name}: {err}".splitlines()[0])
    return out



def within(seconds: float, fn: Callable[[], Any]) -> Any:
    """fn(), or TimeoutError after `seconds` (SIGALRM: a compile is Python, so it stops there)."""
    def stop(*_: Any) -> None:
        raise TimeoutError(f"not done within {seconds:.0f}s (capture or compile included)")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(max(1, int(seconds)))
    try:
        return fn()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)



def overhead_result(figures: dict[str, Any], failed: list[str], skipped: list[str],
                    dry_run: bool) -> StepResult:
    """Each variant's steady epoch, first epoch and projected `gpu` trial; the optimizers' step."""
    timed = {k: v for k, v in figures.items() if k in GRAPH_VARIANTS}
    opt = figures["optimizer_us"]
    parts = [f"{k} {v['steady_s']:.2f}s/ep (1st {v['first_s']:.1f}s), {v['trial_s']:.0f}s/trial"
             for k, v in timed.items()]
    best = min(timed, key=lambda k: timed[k]["trial_s"]) if timed and not dry_run else "-"
    fastest = min(opt, key=opt.get) if opt else "-"
    parts.append(f"best for a gpu trial: {best}; optimizer step us "
                 + ", ".join(f"{k} {v:.0f}" for k, v in opt.items()) + f" (fastest {fastest})")
    figures = {**figures, "best_graphs": best, "fastest_optimizer": fastest}
    if dry_run:
        parts.append("[dry run: graphs run eagerly on CPU]")
    return StepResult("overhead", "FAIL" if failed else "pass", "; ".join(parts + failed + skipped), figures)
