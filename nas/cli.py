"""`nas` command line: one sub-command per job, errors as one line with exit code 2."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

import yaml

from nas.errors import NasError, SpecError

EPILOG_SUMMARY = """examples:
  nas summary preset=mobilenet_v2
  nas summary preset=mobilenet_v1 width=0.5 resolution=160
  nas summary preset=shufflenet_v1_g3 resolution=32 num_classes=10 --json
  nas summary spec=my_net.yaml stages.2.kernel=5
"""


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """`key=value` words -> dict; values are YAML scalars (0.5, true, relu6, [1, 2])."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SpecError(f"{item!r} is not key=value (e.g. preset=mobilenet_v2 width=0.5)")
        try:
            result[key] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            result[key] = raw
    return result


def spec_from_assignments(values: dict[str, Any]):
    """`preset=NAME` or `spec=PATH` plus overrides -> NetSpec."""
    from nas.presets import load_preset
    from nas.spec import load_spec

    values = dict(values)
    preset, spec_path = values.pop("preset", None), values.pop("spec", None)
    if (preset is None) == (spec_path is None):
        raise SpecError("give exactly one of preset=NAME or spec=PATH (see `nas presets`)")
    if preset is not None:
        return load_preset(str(preset), **values)
    return load_spec(str(spec_path), **values)


def cmd_presets(args: argparse.Namespace) -> int:
    from nas.counting import count
    from nas.presets import get_preset, preset_names
    from nas.table import format_table

    rows = []
    for name in preset_names():
        preset = get_preset(name)
        spec = preset.spec()
        counted = count(spec)
        checks = [not e.mismatches(count(preset.spec(**e.overrides))) for e in preset.expected]
        status = f"{sum(checks)}/{len(checks)} match" if checks else "-"
        res = f"{spec.input.channels}x{spec.input.resolution}"
        rows.append([name, res, f"{counted.params:,}", f"{counted.macs / 1e6:.1f}M", status,
                     preset.cite])
    print(format_table(["preset", "input", "params", "MACs", "published", "provenance"], rows,
                       align="llrrll"))
    print("\nCounts at the preset's own input and classes; `nas summary preset=NAME` for details.")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from nas.counting import count
    from nas.table import format_table

    spec = spec_from_assignments(parse_assignments(args.assignments))
    counted = count(spec)
    if args.json:
        print(json.dumps(counted.as_dict()))
        return 0
    rows = [[p.name, p.detail, "x".join(map(str, p.out_shape)), f"{p.params:,}", f"{p.macs:,}"]
            for p in counted.parts]
    rows.append(["total", "", "", f"{counted.params:,}", f"{counted.macs:,}"])
    print(f"{spec.name}: input {spec.input.channels}x{spec.input.resolution}x"
          f"{spec.input.resolution}, width {spec.width}, {spec.num_classes} classes")
    print(format_table(["part", "layers", "output", "params", "MACs"], rows, align="lllrr"))
    print(f"\n{counted.params / 1e6:.3f}M params, {counted.macs / 1e6:.1f}M multiply-adds"
          " (conv + linear; BN, activations and pools excluded)")
    return 0


EPILOG_RUN = """examples:
  nas run preset=mobilenet_v1
  nas run preset=shufflenet_v1_g3 width=0.5 train.epochs=30 train.lr=0.2
  nas run preset=mobilenet_v2 data.name=cifar100 train.schedule=cosine train.ema=true
  nas run preset=dsc_cnn data.name=fashion_mnist data.flip=false
  nas run spec=my_net.yaml model.stages.2.kernel=5 --config my_run.yaml
  nas run preset=mobilenet_v1 data.name=synthetic data.val_size=100 train.epochs=1
  nas run preset=mobilenet_v1 resume=true        # continue an interrupted run

keys (key=value, merged over the defaults and --config):
  preset= spec= width= resolution= num_classes= in_channels= model.<spec field path>=
  data.name= data.root= data.val_size= data.train_subset= data.cutout= data.grayscale=
  train.epochs= train.batch_size= train.lr= train.optimizer= train.schedule= train.seed=
  train.label_smoothing= train.grad_clip= train.ema= train.deterministic= train.compile=
  device= mlflow.experiment= mlflow.tracking_uri= mlflow.enabled= resume= output_dir=
  `nas run --show-config` prints every key with its default.
"""


def cmd_run(args: argparse.Namespace) -> int:
    from nas.config import load_run_config
    from nas.schema import to_dict

    cfg = load_run_config(args.assignments, args.config)
    if args.show_config:
        print(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        return 0
    from nas.run import run, summary_table

    outcome = run(cfg)
    print(summary_table(outcome, cfg))
    return 0


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("assignments", nargs="*", metavar="key=value", help="config overrides (see below)")
    p.add_argument("--config", metavar="FILE", help="YAML file merged over the defaults")
    p.add_argument("--show-config", action="store_true", help="print the merged config and exit")


Command = tuple[Callable[[argparse.Namespace], int], str, str, Callable[[argparse.ArgumentParser], None]]


def _summary_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("assignments", nargs="*", metavar="key=value",
                   help="preset=NAME or spec=PATH, then overrides: width= resolution= num_classes="
                        " in_channels= or any field path (head.dropout=0.1, stages.2.groups=4)")
    p.add_argument("--json", action="store_true", help='print {"params": .., "macs": ..} only')


COMMANDS: dict[str, Command] = {
    "presets": (cmd_presets, "list the paper presets with params, MACs and provenance",
                "examples:\n  nas presets\n", lambda p: None),
    "summary": (cmd_summary, "per-stage table of a preset or spec: output shape, params, MACs",
                EPILOG_SUMMARY, _summary_args),
    "run": (cmd_run, "train one network (CIFAR-10 by default), tracked in MLflow", EPILOG_RUN,
            _run_args),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nas", description="Declarative efficient-CNN specs, training, search and ablations.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  nas presets\n  nas summary preset=mobilenet_v2 width=0.5\n",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (func, help_text, epilog, add_args) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        add_args(p)
        p.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except NasError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
