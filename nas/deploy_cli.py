"""`nas export` and `nas latency`: a network out of PyTorch, and its speed on a runtime.

Each command imports what it runs when called (presets, loading and export bring torch, ~3 s):
`nas --help` and a bad argument answer without it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nas.errors import NasError
from nas.words import parse_words

EPILOG_EXPORT = """examples:
  nas export preset=mobilenet_v2                           # mobilenet_v2.onnx here, checked
  nas export preset=shufflenet_v1_g3 resolution=32 num_classes=10 --format onnx,executorch
  nas export spec=searches/NAME/front/trial007.yaml --out deploy/
  nas export --front searches/NAME                         # every front member of a search
  nas export spec=my_net.yaml --weights runs/my_net-1a2b/checkpoint.pt

Weights: --weights CHECKPOINT (a `nas run` checkpoint.pt; its EMA weights when kept); for
--front, searches/NAME/weights/trialNNN.pt where `nas search --retrain-top` wrote them; else
fresh ones (random BatchNorm statistics, so the check sees every branch). Each file is run in its
runtime on random inputs against PyTorch: it fails (exit 2) when the largest absolute
difference is above 1e-4 x the largest |output| (at least 1e-4).
Formats: onnx (pip install 'nas[onnx]'), executorch (XNNPACK; pip install 'nas[executorch]').
"""

EPILOG_LATENCY = """examples:
  nas latency preset=mobilenet_v2                          # ONNX Runtime, CPU, 1 thread, batch 1
  nas latency preset=shufflenet_v1_g3 resolution=32 --runtime executorch
  nas latency spec=searches/NAME/front/trial007.yaml --runtime torch --device cuda
  nas latency preset=mobilenet_v1 --threads 4 --batch 8 --max-s 10

Fresh weights (a dense conv's time does not depend on its values). After --warmup untimed calls,
calls in rounds of 10 until the median's 95% interval is within --target of it (2%), or --max-s
seconds or --max-runs calls. Prints the median, the interquartile range (where a repeated
measurement lands) and the median's interval. Runtimes: onnxruntime ('nas[onnx]'), executorch
(XNNPACK, 'nas[executorch]'), torch (on --device).
"""


def _specs(args: argparse.Namespace) -> list[tuple[Any, str, str | None]]:
    """(spec, file stem, weights path) per network to export."""
    from nas.presets import spec_from_assignments

    if args.front is None:
        spec = spec_from_assignments(parse_words(args.words))
        return [(spec, spec.name, args.weights)]
    if args.words or args.weights:
        raise NasError("--front exports a search's front as it is: give no key=value words nor --weights")
    from nas.loading import load_spec

    folder = Path(args.front)
    front = folder / "front" if (folder / "front").is_dir() else folder
    files = sorted(front.glob("trial*.yaml"))
    if not files:
        raise NasError(f"no front/trial*.yaml in {folder}: give a search's folder (searches/NAME)")
    out = []
    for path in files:
        weights = front.parent / "weights" / f"{path.stem}.pt"
        out.append((load_spec(path), path.stem, str(weights) if weights.is_file() else None))
    return out


def cmd_export(args: argparse.Namespace) -> int:
    from nas.export import ExportError, export_spec

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    out_dir = Path(args.out or (Path(args.front) / "export" if args.front else "."))
    failed = []
    for spec, stem, weights in _specs(args):
        for check in export_spec(spec, formats, out_dir, stem=stem, weights=weights, batch=args.batch):
            print(check.describe())
            failed += [] if check.ok else [check]
    if failed:
        worst = max(failed, key=lambda c: c.max_abs_diff)
        raise ExportError(f"{len(failed)} export(s) differ from PyTorch beyond tolerance; worst"
                          f" {worst.path}: {worst.max_abs_diff:.2e} > {worst.tolerance:.1e}")
    return 0


def cmd_latency(args: argparse.Namespace) -> int:
    from nas.latency import LatencySettings, check_settings, measure

    settings = LatencySettings(runtime=args.runtime, threads=args.threads, batch=args.batch,
                               device=args.device, warmup=args.warmup, max_runs=args.max_runs,
                               max_s=args.max_s, target=args.target)
    check_settings(settings)  # an unknown or missing runtime: one line before building anything
    from nas.presets import spec_from_assignments

    spec = spec_from_assignments(parse_words(args.words))
    res = spec.input.resolution
    print(f"{spec.name} at {spec.input.channels}x{res}x{res}: {measure(spec, settings).describe()}")
    return 0


def export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("words", nargs="*", metavar="key=value",
                   help="preset=NAME or spec=PATH, then overrides (resolution=32 num_classes=10 ...)")
    p.add_argument("--front", metavar="SEARCH_DIR", help="export every front/*.yaml of a search")
    p.add_argument("--format", default="onnx", help="comma list: onnx, executorch (default onnx)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: here; SEARCH_DIR/export with --front)")
    p.add_argument("--weights", metavar="CHECKPOINT", help="trained weights (default: fresh ones)")
    p.add_argument("--batch", type=int, default=1, help="the exported input's batch size")


def latency_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("words", nargs="*", metavar="key=value",
                   help="preset=NAME or spec=PATH, then overrides (resolution=32 ...)")
    p.add_argument("--runtime", default="onnxruntime", help="onnxruntime | executorch | torch")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (default 1: a phone core)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--device", default="cpu", help="the torch runtime's device (cpu, cuda, npu)")
    p.add_argument("--warmup", type=int, default=10, help="untimed calls first")
    p.add_argument("--max-runs", type=int, default=2000)
    p.add_argument("--max-s", type=float, default=3.0, help="stop timing after this many seconds")
    p.add_argument("--target", type=float, default=0.02,
                   help="stop when the median's 95%% interval is within this share of it")


COMMANDS = {
    "export": (cmd_export, "a spec, preset or search front to ONNX / ExecuTorch, checked against PyTorch",
               EPILOG_EXPORT, export_args),
    "latency": (cmd_latency, "measured inference latency on onnxruntime, executorch or torch",
                EPILOG_LATENCY, latency_args),
}
