"""Is `nas latency` a measurement one can trust? Two checks, side by side in one run:

1. repeatability: `nas latency` run R times on one architecture (separate processes); each
   repeat's median should land in the first run's printed interquartile range;
2. ranking: N random `shufflenet` architectures at 32 px timed by `nas.latency` and, directly,
   by ONNX Runtime on the files `nas export` wrote (a plain loop here: 20 warm-up calls, then
   the median of 200, 1 thread), in a fresh folder; Kendall tau-b between the two rankings.

Timings need a quiet machine; on a loaded one both checks say how loaded it was.

    python benchmarks/latency_check.py [--archs 10] [--repeats 5] [--preset shufflenet_v1_g3]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from nas.export import export_spec
from nas.latency import LatencySettings, measure
from nas.space import RandomChooser, load_space

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fidelity import kendall_tau_b  # noqa: E402 - the project's one tau-b

LINE = re.compile(r"median ([\d.]+) ms, IQR ([\d.]+)-([\d.]+) ms")


def repeated(preset: str, repeats: int) -> list[tuple[float, float, float]]:
    """(median, q1, q3) of `nas latency` run `repeats` times, each in its own process."""
    out = []
    for _ in range(repeats):
        done = subprocess.run([sys.executable, "-m", "nas.cli", "latency", f"preset={preset}",
                               "resolution=32", "num_classes=10"], capture_output=True, text=True, check=True)
        median, q1, q3 = map(float, LINE.search(done.stdout).groups())
        print(f"  nas latency: {done.stdout.strip().split(': ', 1)[1]}", flush=True)
        out.append((median, q1, q3))
    return out


def direct_ms(path: Path, warmup: int = 20, runs: int = 200) -> float:
    """ONNX Runtime alone: its own session, its own loop."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name, shape = session.get_inputs()[0].name, session.get_inputs()[0].shape
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for _ in range(warmup):
        session.run(None, {name: x})
    times = []
    for _ in range(runs):
        begun = time.perf_counter()
        session.run(None, {name: x})
        times.append((time.perf_counter() - begun) * 1e3)
    return float(np.median(times))


def ranking(n: int) -> tuple[list[float], list[float]]:
    space = load_space("shufflenet")
    specs = [space.to_spec(space.sample(RandomChooser(seed)), resolution=32, num_classes=10)
             for seed in range(n)]
    ours, theirs = [], []
    with tempfile.TemporaryDirectory(prefix="latency-check-") as fresh:
        for i, spec in enumerate(specs):
            ours.append(measure(spec, LatencySettings()).median_ms)
            (check,) = export_spec(spec, ["onnx"], Path(fresh), stem=f"arch{i}")
            theirs.append(direct_ms(check.path))
            print(f"  arch {i}: nas.latency {ours[-1]:.3f} ms, ONNX Runtime directly {theirs[-1]:.3f} ms", flush=True)
    return ours, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--preset", default="shufflenet_v1_g3")
    args = parser.parse_args()
    print(f"1. nas latency preset={args.preset} resolution=32, {args.repeats} times:")
    runs = repeated(args.preset, args.repeats)
    _, q1, q3 = runs[0]
    inside = sum(q1 <= m <= q3 for m, _, _ in runs[1:])
    print(f"repeatability: {inside} of {len(runs) - 1} repeats' medians inside the first run's IQR"
          f" ({q1:.3f}-{q3:.3f} ms); medians {', '.join(f'{m:.3f}' for m, _, _ in runs)} ms")
    print(f"2. {args.archs} random shufflenet archs at 32 px, nas.latency against ONNX Runtime directly:")
    ours, theirs = ranking(args.archs)
    print(f"ranking: Kendall tau-b {kendall_tau_b(ours, theirs):.3f} over {args.archs} archs"
          f" (median ratio nas/direct {np.median(np.array(ours) / np.array(theirs)):.2f})")


if __name__ == "__main__":
    main()
