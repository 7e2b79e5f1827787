"""How much faster `nas.count` is than building the net and running FlopCounterMode.

The search rejects over-budget architectures with `nas.count` before training, so it must be
cheap. Both methods count the same specs in one run; the ratio is what matters.

    python benchmarks/count_speed.py [--specs 40] [--resolution 32]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

import nas


def sample_specs(n: int, resolution: int) -> list[nas.NetSpec]:
    names = nas.preset_names()
    widths = [0.25, 0.5, 0.75, 1.0, 1.5]
    return [nas.load_preset(names[i % len(names)], width=widths[i % len(widths)],
                            resolution=resolution, num_classes=10) for i in range(n)]


def by_module(spec: nas.NetSpec) -> tuple[int, int]:
    model = nas.build_model(spec).eval()
    r = spec.input.resolution
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, spec.input.channels, r, r))
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() // 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--specs", type=int, default=40)
    parser.add_argument("--resolution", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    specs = sample_specs(args.specs, args.resolution)

    start = time.perf_counter()
    reference = [by_module(s) for s in specs]
    module_s = time.perf_counter() - start

    repeats = 20
    start = time.perf_counter()
    for _ in range(repeats):
        counted = [nas.count(s) for s in specs]
    count_s = (time.perf_counter() - start) / repeats

    assert [(c.params, c.macs) for c in counted] == reference, "count disagrees with FlopCounterMode"
    print(f"specs: {len(specs)} (presets x widths at {args.resolution}px), counts agree: yes")
    print(f"nas.count:                   {len(specs) / count_s:10.0f} specs/s")
    print(f"build + FlopCounterMode:     {len(specs) / module_s:10.1f} specs/s")
    print(f"ratio (count / build+flops): {module_s / count_s:10.0f}x   (target >= 100x)")


if __name__ == "__main__":
    main()
