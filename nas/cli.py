"""`nas` command line: one sub-command per job, errors as one line with exit code 2. The modules behind
a command are imported inside it: `nas --help` answers in 0.1 s, the spec layer (torch) costs ~4 s, the
campaign drivers (Ray, Optuna) 5-8 s. `nas search` and `nas ablate` live in `nas.cli_campaign`."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Callable

from nas.cli_campaign import (EPILOG_ABLATE, EPILOG_SEARCH, INTERRUPTED, ablate_args, cmd_ablate, cmd_search,
                              mlflow_hint, search_args)
from nas.deploy_cli import COMMANDS as DEPLOY_COMMANDS
from nas.errors import NasError
from nas.words import parse_words

EPILOG_SUMMARY = """examples:
  nas summary preset=mobilenet_v2
  nas summary preset=mobilenet_v1 width=0.5 resolution=160
  nas summary preset=shufflenet_v1_g3 resolution=32 num_classes=10 --json
  nas summary spec=my_net.yaml stages.2.kernel=5
"""


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
        published = f"{sum(checks)}/{len(checks)} match" if checks else "-"
        rows.append([name, f"{spec.input.channels}x{spec.input.resolution}", f"{counted.params:,}",
                     f"{counted.macs / 1e6:.1f}M", published, preset.cite])
    print(format_table(["preset", "input", "params", "MACs", "published", "provenance"], rows, align="llrrll"))
    print("\nCounts at the preset's own input and classes; `nas summary preset=NAME` for details.")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from nas.counting import count
    from nas.presets import spec_from_assignments
    from nas.table import format_table

    spec = spec_from_assignments(parse_words(args.words))
    counted = count(spec)
    if args.json:
        print(json.dumps(counted.as_dict()))
        return 0
    rows = [[p.name, p.detail, "x".join(map(str, p.out_shape)), f"{p.params:,}", f"{p.macs:,}"]
            for p in counted.parts]
    rows.append(["total", "", "", f"{counted.params:,}", f"{counted.macs:,}"])
    print(f"{spec.name}: input {spec.input.channels}x{spec.input.resolution}x{spec.input.resolution},"
          f" width {spec.width}, {spec.num_classes} classes")
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
  train.cuda_graphs= device= mlflow.experiment= mlflow.tracking_uri= mlflow.enabled= resume= output_dir=
  `nas run --show-config` prints every key with its default.
"""


def cmd_run(args: argparse.Namespace) -> int:
    from nas.config import load_run_config
    from nas.schema import to_dict

    cfg = load_run_config(list(args.words) + (["progress=false"] if args.no_progress else []), args.config)
    if args.show_config:
        import yaml

        print(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        return 0
    from nas.run import run, summary_table

    outcome = run(cfg)
    print(summary_table(outcome, cfg))
    mlflow_hint(cfg.mlflow.tracking_uri, cfg.mlflow.experiment, cfg.mlflow.enabled)
    return 0


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("words", nargs="*", metavar="key=value", help="config overrides (see below)")
    p.add_argument("--config", metavar="FILE", help="YAML file merged over the defaults")
    p.add_argument("--show-config", action="store_true", help="print the merged config and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (same as progress=false)")


Command = tuple[Callable[[argparse.Namespace], int], str, str, Callable[[argparse.ArgumentParser], None]]


EPILOG_PARETO = """examples:
  nas pareto --experiment nas                        # the latest search: pareto-<search>.png
  nas pareto --experiment nas --search nightly --out front.png
  nas pareto --experiment nas --tracking-uri sqlite:////data/mlflow.db

Reads the MLflow store (--tracking-uri, else $MLFLOW_TRACKING_URI, else ./mlflow.db): the
search's parent run and its trial runs. Draws validation accuracy vs MACs and vs params (each
with its front as a staircase, the paper nets starred) and prints the front under the search's
objectives. dashboards/pareto.ipynb draws the same figure.
"""


def cmd_pareto(args: argparse.Namespace) -> int:
    from nas.dashboard import front_table, load_search, pareto_figure
    from nas.pareto_plot import format_front

    search = load_search(args.tracking_uri, args.experiment, args.search)
    out = pareto_figure(search, args.out or f"pareto-{search.name}.png")
    print(search.describe())
    print(f"Pareto front ({','.join(o.name for o in search.objectives)}):")
    print(format_front(front_table(search)))
    print(f"\nfigure: {out}")
    return 0


def _pareto_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--experiment", required=True, help="MLflow experiment of the search (nas run's mlflow.experiment)")
    p.add_argument("--search", metavar="SEARCH_NAME", help="search name (default: the latest search)")
    p.add_argument("--out", metavar="PNG", help="figure path (default: pareto-<search>.png)")
    p.add_argument("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")


def _summary_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("words", nargs="*", metavar="key=value",
                   help="preset=NAME or spec=PATH, then overrides: width= resolution= num_classes="
                        " in_channels= or any field path (head.dropout=0.1, stages.2.groups=4)")
    p.add_argument("--json", action="store_true", help='print {"params": .., "macs": ..} only')


COMMANDS: dict[str, Command] = {
    "presets": (cmd_presets, "list the paper presets with params, MACs and provenance",
                "examples:\n  nas presets\n", lambda p: None),
    "summary": (cmd_summary, "per-stage table of a preset or spec: output shape, params, MACs", EPILOG_SUMMARY,
                _summary_args),
    "search": (cmd_search, "multi-objective architecture search (Optuna on Ray Tune, MLflow)", EPILOG_SEARCH,
               search_args),
    "run": (cmd_run, "train one network (CIFAR-10 by default), tracked in MLflow", EPILOG_RUN, _run_args),
    "ablate": (cmd_ablate, "paper ablations: cells x seeds on Ray, mean ± std beside the paper's numbers",
               EPILOG_ABLATE, ablate_args),
    "pareto": (cmd_pareto, "a search's accuracy vs MACs / params with its Pareto front, from MLflow",
               EPILOG_PARETO, _pareto_args),
}
COMMANDS.update(DEPLOY_COMMANDS)  # export, latency (nas.deploy_cli)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nas")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nas", description="Declarative efficient-CNN specs, training, search and ablations.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  nas presets\n  nas summary preset=mobilenet_v2 width=0.5\n"
               "  nas run preset=shufflenet_v1_g3 width=0.5\n  nas search --space shufflenet --trials 50\n"
               "  nas ablate shufflenet_shuffle\n",
    )
    parser.add_argument("--version", action="version", version=f"nas {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (func, help_text, epilog, add_args) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        add_args(p)
        p.set_defaults(func=func)
    return parser


def parse(argv: list[str]) -> argparse.Namespace:
    """One rule for every sub-command: options and `key=value` words in any order
    (`nas search --space x a=1 --trials 3 b=2`)."""
    parser = build_parser()
    if not argv or argv[0].startswith("-") or argv[0] not in COMMANDS:
        return parser.parse_args(argv)  # top-level help, or argparse's error for a bad command
    sub = parser._subparsers._group_actions[0].choices[argv[0]]  # noqa: SLF001 - the sub-parser
    args = sub.parse_intermixed_args(argv[1:])
    args.command = argv[0]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else list(argv))
    if not getattr(args, "func", None):
        build_parser().print_help()
        return 2
    try:
        return args.func(args)
    except NasError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted{_continue_hint(args)}", file=sys.stderr)
        return INTERRUPTED


def _continue_hint(args: argparse.Namespace) -> str:
    """How to go on after Ctrl-C: `nas run ... resume=true`, or the campaign's --resume."""
    words = [w for w in getattr(args, "words", None) or [] if not w.startswith("resume=")]
    if args.command == "run" and not getattr(args, "show_config", False):
        config = ["--config", args.config] if args.config else []
        return f"; continue with: nas run {shlex.join(words + config + ['resume=true'])}"
    if args.command in ("search", "ablate") and getattr(args, "name", None):
        return f"; continue with the same command and --resume (--name {shlex.quote(args.name)})"
    return ""


if __name__ == "__main__":
    sys.exit(main())
