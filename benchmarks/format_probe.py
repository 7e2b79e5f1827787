"""Does the format probe (nas.formats) pick a fast format? Checked against a longer measurement.

For N random architectures of each space (32 px, 10 classes, drawn with `RandomChooser`), it
times a training step in every candidate format (fp32 / bf16 where native, x contiguous /
channels_last), all in the same run, interleaved (the order rotated every round; medians of
`--steps`), then runs the probe itself (`nas.formats.choose`, on an empty cache) and prints per
architecture each format's step time, the probe's pick, the old default's (precision_for) and
whether the pick is within 10% of the fastest; per space a last line `within_10pct=K/N`.
Timings need a quiet machine: nothing else running.

    python benchmarks/format_probe.py                     # 20 archs per space, 2 threads, batch 128
    python benchmarks/format_probe.py --archs 3 --steps 4 # a short check of the plumbing
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import nas
from nas.config import TrainConfig
from nas.device import configure_threads, precision_for
from nas.errors import SpecError
from nas.formats import FormatCache, candidates, choose, step_timer, time_formats
from nas.space import RandomChooser, load_space
from nas.table import format_table

SPACES = ("shufflenet", "mobilenet_v2")
WITHIN = 1.10  # a pick within 10% of the fastest format's step time counts as good
LONG_RUN = 10**6  # planned steps: the probe always runs


def architectures(space_name: str, count: int, seed: int) -> list[tuple[str, nas.NetSpec]]:
    """`count` random buildable points of a space at 32 px, 10 classes."""
    space, chooser, out = load_space(space_name), RandomChooser(seed), []
    while len(out) < count:
        point = space.sample(chooser)
        try:
            out.append((" ".join(f"{k}={v}" for k, v in point.items()),
                        space.to_spec(point, resolution=32, num_classes=10)))
        except SpecError:  # a point no network builds from: draw again
            continue
    return out


def check_one(spec: nas.NetSpec, batch: int, warmup: int, steps: int) -> dict:
    """Every format's median step (s), then the probe's pick and its cost on an empty cache."""
    timers = {name: step_timer(spec, batch, p) for name, p in candidates().items()}
    step_s = {name: statistics.median(times) for name, times in time_formats(timers, warmup, steps).items()}
    del timers
    with tempfile.TemporaryDirectory(prefix="nas-formats-") as scratch:
        started = time.perf_counter()
        choice = choose(spec, torch.device("cpu"), TrainConfig(batch_size=batch), LONG_RUN,
                        cache=FormatCache(Path(scratch) / "formats.json"))
        probe_s = time.perf_counter() - started
    pick, best = choice.precision.describe(), min(step_s.values())
    default = precision_for(torch.device("cpu")).describe()
    return {"step_s": step_s, "pick": pick, "probe_s": probe_s, "pick_x": step_s[pick] / best,
            "default_x": step_s[default] / best}


def row(label: str, macs: int, got: dict) -> list:
    return ([label, f"{macs / 1e6:.1f}"] + [f"{s * 1e3:.0f}" for s in got["step_s"].values()]
            + [got["pick"], f"{got['pick_x']:.2f}", "yes" if got["pick_x"] <= WITHIN else "NO",
               f"{got['default_x']:.2f}", f"{got['probe_s']:.1f}"])


def run_space(space_name: str, args: argparse.Namespace) -> None:
    rows, good = [], 0
    for i, (label, spec) in enumerate(architectures(space_name, args.archs, args.seed)):
        got = check_one(spec, args.batch, args.warmup, args.steps)
        rows.append(row(label, nas.count(spec).macs, got))
        good += got["pick_x"] <= WITHIN
        print(f"  {space_name} {i + 1}/{args.archs}: {' '.join(rows[-1][1:])}", flush=True)
    names = list(candidates())
    print(format_table(["architecture", "MMACs"] + [f"{n} ms" for n in names]
                       + ["pick", "x best", "<=10%", "default x best", "probe s"], rows,
                       align="lr" + "r" * len(names) + "lrlrr"))
    print(f"{space_name}: within_10pct={good}/{args.archs}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--archs", type=int, default=20, help="architectures per space")
    p.add_argument("--spaces", default=",".join(SPACES))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=10, help="timed steps per format (median)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per format first")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    configure_threads(args.threads)
    print(f"CPU training step per format: batch {args.batch}, {args.threads} threads, median of"
          f" {args.steps} after {args.warmup}; probe: nas.formats.choose on an empty cache")
    for space_name in args.spaces.split(","):
        run_space(space_name, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
