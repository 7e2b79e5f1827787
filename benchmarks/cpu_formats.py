"""Which number format and memory layout make a CPU training step fastest, per network?

For each preset (at CIFAR size, 10 classes) it times a training step (forward, label-smoothed
loss, backward, SGD step) and an evaluation batch under `torch.inference_mode`, in four variants
measured interleaved in one run (the order rotates every repeat; medians reported):

  fp32        float32, contiguous (NCHW): nas's CPU default before this benchmark
  fp32+cl     float32, channels_last
  bf16        `torch.autocast("cpu", torch.bfloat16)`, contiguous
  bf16+cl     bf16 autocast, channels_last

and prints each variant's time as a ratio to fp32 (below 1: faster). bf16 pays on CPUs with
AVX512-BF16 or AMX (oneDNN's bf16 convolutions); elsewhere it is emulated and slow. The winner
differs per net, so a CPU run with `train.amp=auto` and `train.channels_last=auto` measures its own
net (`nas.formats`); `benchmarks/format_probe.py` checks that probe's picks over random
architectures. `nas.device.precision_for` (bf16 where native) is the default when nothing is measured.

    python benchmarks/cpu_formats.py --threads 2
    python benchmarks/cpu_formats.py --quick        # tiny, CI: plumbing only
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from nas.builder import build_model
from nas.presets import load_preset

NETS = (("shufflenet_v1_g3", 0.25), ("shufflenet_v1_g3", 0.5), ("mobilenet_v2", 0.5),
        ("mobilenet_v1", 0.25))
VARIANTS = {"fp32": (None, False), "fp32+cl": (None, True), "bf16": (torch.bfloat16, False),
            "bf16+cl": (torch.bfloat16, True)}


def _autocast(dtype):
    return torch.autocast("cpu", dtype=dtype) if dtype else torch.autocast("cpu", enabled=False)


def step_timer(preset: str, width: float, batch: int, dtype, channels_last: bool):
    """A function timing one training step and one eval batch of a fresh copy of the net."""
    torch.manual_seed(0)
    model = build_model(load_preset(preset, width=width, resolution=32, num_classes=10))
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,))

    def run() -> tuple[float, float]:
        model.train()
        t0 = time.perf_counter()
        with _autocast(dtype):
            loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        t1 = time.perf_counter()
        model.eval()
        with torch.inference_mode(), _autocast(dtype):
            model(x).argmax(1)
        return t1 - t0, time.perf_counter() - t1

    return run


def measure(preset: str, width: float, batch: int, repeats: int, warmup: int) -> dict[str, tuple[float, float]]:
    timers = {name: step_timer(preset, width, batch, *v) for name, v in VARIANTS.items()}
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in VARIANTS}
    names = list(VARIANTS)
    for r in range(warmup + repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotate the order
            t = timers[name]()
            if r >= warmup:
                samples[name].append(t)
    return {name: (statistics.median(s[0] for s in v), statistics.median(s[1] for s in v))
            for name, v in samples.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    nets, batch, repeats, warmup = (NETS[:1], 8, 2, 1) if args.quick else (NETS, args.batch, args.repeats, 3)
    print(f"CPU step times, batch {batch}, {args.threads} threads, median of {repeats}"
          f" (ratio to fp32 contiguous; < 1 is faster)")
    from nas.table import format_table

    rows = []
    for preset, width in nets:
        times = measure(preset, width, batch, repeats, warmup)
        base_train, base_eval = times["fp32"]
        for name, (train_s, eval_s) in times.items():
            rows.append([f"{preset} {width}x", name, f"{train_s * 1e3:.1f}", f"{train_s / base_train:.2f}",
                         f"{eval_s * 1e3:.1f}", f"{eval_s / base_eval:.2f}"])
        best = min(times, key=lambda n: times[n][0])
        print(f"  {preset} {width}x: fastest training step {best}", flush=True)
    print(format_table(["net", "variant", "train ms", "x fp32", "eval ms", "x fp32"], rows,
                       align="llrrrr"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
