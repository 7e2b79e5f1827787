"""`nas` command line: one sub-command per job, errors as one line with exit code 2."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any, Callable

from nas.errors import NasError, SpecError
from nas.words import parse_words

EPILOG_SUMMARY = """examples:
  nas summary preset=mobilenet_v2
  nas summary preset=mobilenet_v1 width=0.5 resolution=160
  nas summary preset=shufflenet_v1_g3 resolution=32 num_classes=10 --json
  nas summary spec=my_net.yaml stages.2.kernel=5
"""


def spec_from_assignments(values: dict[str, Any]):
    """`preset=NAME` or `spec=PATH` plus overrides -> NetSpec."""
    from nas.presets import load_preset
    from nas.loading import load_spec

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

    spec = spec_from_assignments(parse_words(args.words))
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

    cfg = load_run_config(list(args.words) + (["progress=false"] if args.no_progress else []), args.config)
    if args.show_config:
        import yaml

        print(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        return 0
    from nas.run import run, summary_table

    outcome = run(cfg)
    print(summary_table(outcome, cfg))
    _mlflow_hint(cfg.mlflow.tracking_uri, cfg.mlflow.experiment, cfg.mlflow.enabled)
    return 0


def _mlflow_hint(uri: str | None, experiment: str, enabled: bool = True) -> None:
    """The `mlflow ui` command and the link to the experiment's training runs."""
    if not enabled:
        return
    from mlflow.tracking import MlflowClient

    from nas.mlflow_layout import ui_hint
    from nas.tracking import tracking_uri

    resolved = tracking_uri(uri)
    found = MlflowClient(tracking_uri=resolved).get_experiment_by_name(experiment)
    if found is not None:
        print(ui_hint(resolved, found.experiment_id))


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("words", nargs="*", metavar="key=value", help="config overrides (see below)")
    p.add_argument("--config", metavar="FILE", help="YAML file merged over the defaults")
    p.add_argument("--show-config", action="store_true", help="print the merged config and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (same as progress=false)")


EPILOG_SEARCH = """examples:
  nas search --space shufflenet --trials 50                 # CPU budget: about 90 min on 2 cores
  nas search --space mobilenet_v2 --objectives val_acc,macs,params --sampler tpe
  nas search --space mixed --trials 200 --budget gpu --gpus-per-trial 0.5
  nas search --space shufflenet --trials 50 max_macs=20e6 data.root=/data
  nas search --space shufflenet --name nightly --resume        # continue after Ctrl-C or kill -9
  nas search --space shufflenet --address 10.0.0.5:6379      # join a running Ray cluster
  nas search --space shufflenet --budget smoke --trials 4 data.name=synthetic data.val_size=64

spaces: search_spaces/*.yaml (shufflenet, mobilenet_v1, mobilenet_v2, mixed) or a path.
key=value words are `nas run` keys (data.*, train.*, device=, mlflow.*) plus max_macs= / max_params=.
Results: searches/NAME/{trials.csv,pareto.png,front/*.yaml}, and MLflow (a parent run per
search, a child per trial; front members tagged pareto=true).
"""


def cmd_search(args: argparse.Namespace) -> int:
    from nas.search.driver import SearchSettings, front_table, search

    settings = SearchSettings(
        space=args.space, trials=args.trials, name=args.name, resume=args.resume,
        objectives=args.objectives, seed=args.seed, budget=args.budget,
        address=args.address, cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial, accelerator=args.accelerator, per_trial=args.per_trial,
        concurrency=args.concurrency, asha=not args.no_asha, scheduler=args.scheduler,
        retrain_top=args.retrain_top, output_dir=args.output_dir, overrides=list(args.words),
        progress=not args.no_progress, references=not args.no_references,
        **({"sampler": args.sampler} if args.sampler else {}))
    outcome = search(settings)
    from nas.campaign.progress import summary_line
    from nas.search.interrupted import shown_statuses

    print(f"\nsearch {outcome.name} {'interrupted' if outcome.interrupted else 'finished'} in"
          f" {outcome.wall_s / 60:.1f} min: " + summary_line(shown_statuses(outcome.trials)))
    print(f"Pareto front over {', '.join(o.name for o in outcome.objectives)} (validation accuracy):")
    print(front_table(outcome))
    from nas.search.results import found_summary

    print("\n".join(found_summary(outcome, outcome.objectives)))
    if outcome.retrained is not None and len(outcome.retrained):
        print("\nretrained at the full budget (test accuracy is reported, never used for selection):")
        print(outcome.retrained.to_string(index=False))
    folder = shlex.quote(str(outcome.folder))
    print(f"\nfiles: {folder}/trials.csv, pareto.png, front/*.yaml"
          f"  (retrain one: nas run spec={folder}/front/<file> train.epochs=..)")
    _resume_hint(settings, outcome)
    _campaign_hint(settings.overrides)
    return INTERRUPTED if outcome.interrupted else _verdict(outcome.trials, "trial")


INTERRUPTED = 130  # the shell's code for a command stopped by Ctrl-C (SIGINT)


def _verdict(points: Any, what: str) -> int:
    """The exit code of a campaign: 0 when a point produced a result, else one line and 1."""
    from nas.campaign.verdict import NOTHING_WORKED, no_result_reason

    reason = no_result_reason(points, what)
    if reason is None:
        return 0
    print(f"error: {reason}", file=sys.stderr)
    return NOTHING_WORKED


def _resume_hint(settings: Any, outcome: Any) -> None:
    """An interrupted search says how far it got and how to go on from there."""
    from nas.status import Status

    statuses = [Status(s) for s in outcome.trials["status"]] if len(outcome.trials) else []
    ran = sum(1 for s in statuses if s.trained or s is Status.FAILED)
    if ran >= settings.trials:
        return
    default = type(settings)(space=settings.space)
    words = ["--space", settings.space, "--name", outcome.name, "--resume", "--trials", str(settings.trials)]
    for flag, field in (("--budget", "budget"), ("--sampler", "sampler"), ("--output-dir", "output_dir"),
                        ("--objectives", "objectives"), ("--seed", "seed"), ("--scheduler", "scheduler")):
        if getattr(settings, field) != getattr(default, field):
            words += [flag, str(getattr(settings, field))]
    words += [] if settings.asha else ["--no-asha"]
    print(f"interrupted at {ran} of {settings.trials} trials; go on with: nas search"
          f" {shlex.join(words + list(settings.overrides))}")


def _campaign_hint(words: list[str]) -> None:
    """The MLflow hint for a search or ablation run with these `key=value` words."""
    values = parse_words(words)
    _mlflow_hint(values.get("mlflow.tracking_uri"), values.get("mlflow.experiment", "nas"),
                 values.get("mlflow.enabled", True) is not False)


def _accelerator_args(p: argparse.ArgumentParser, per: str) -> None:
    p.add_argument("--accelerator", default="auto", choices=("auto", "cuda", "npu", "cpu"),
                   help="where points train (auto: what the Ray cluster has: GPU, else NPU, else CPU)")
    p.add_argument(f"--per-{per}", type=float, default=None, dest=f"per_{per}",
                   help=f"accelerator share per {per} (fractions share a device; default 0.25)")


def _search_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("words", nargs="*", metavar="key=value",
                   help="nas run keys (data.root=, device=, train.*) and max_macs= / max_params=")
    p.add_argument("--space", required=True, help="search space name or YAML path")
    p.add_argument("--trials", type=int, default=50, help="trials to train (infeasible samples are free)")
    p.add_argument("--name", help="search name (default: SPACE-DATE); reuse it with --resume")
    p.add_argument("--resume", action="store_true", help="continue the search called --name")
    p.add_argument("--objectives", default="val_acc,macs",
                   help="comma list: val_acc (max), macs, params, latency_ms (min)")
    p.add_argument("--sampler", help="auto (the default: ehvi for val_acc against macs or params on a"
                   " finite space, else gp) | ehvi (GP on val_acc, EHVI with the costs nas.count"
                   " knows) | gp (Optuna's GP sampler, logEHVI) | nsga2 | tpe | random")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budget", default=None, help="smoke | cpu | gpu (default: gpu if visible, else cpu)")
    p.add_argument("--address", help="join a running Ray cluster (default: start a local one)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    p.add_argument("--gpus-per-trial", type=float, default=None,
                   help="same as --accelerator cuda --per-trial SHARE (0: train on CPUs)")
    _accelerator_args(p, "trial")
    p.add_argument("--concurrency", type=int, help="trials at once (default: what resources allow)")
    p.add_argument("--no-asha", action="store_true", help="train every trial to the full budget")
    p.add_argument("--scheduler", default="auto",
                   help="early stopping: auto (the budget's: none at cpu; else moasha with several"
                        " objectives, asha with one) | moasha | asha")
    p.add_argument("--retrain-top", type=int, default=0, help="retrain the K best front members")
    p.add_argument("--output-dir", default="searches")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--no-references", action="store_true",
                   help="skip the space's reference points (the paper nets, evaluated first)")


Command = tuple[Callable[[argparse.Namespace], int], str, str, Callable[[argparse.ArgumentParser], None]]


EPILOG_ABLATE = """examples:
  nas ablate experiments/mobilenet_v1_width.yaml                 # the file's seeds and budget
  nas ablate mobilenet_v2_proj_act --seeds 3 --budget gpu --gpus-per-cell 0.5
  nas ablate shufflenet_shuffle --budget cpu data.root=/data train.epochs=3 data.train_subset=5000
  nas ablate dsc_cnn_act_conv --budget smoke data.name=synthetic   # the CI check
  nas ablate mobilenet_v1_width --name w1 --resume               # continue after Ctrl-C or kill -9
  nas ablate mobilenet_v1_width --address 10.0.0.5:6379          # join a running Ray cluster
  nas ablate --list                                              # the shipped experiments

experiments: experiments/*.yaml (a name or a path). key=value words are `nas run` keys (data.*,
train.*, device=, mlflow.*) applied on top of the budget; a factor's own key cannot be overridden.
Budgets: smoke (64 images, 1 epoch), cpu (5,000 images, 5 epochs, 2,000 test images), gpu (45,000
images, 30 epochs, full test set). Each cell x seed is one Ray task; the driver alone writes
MLflow (a parent run, a child per cell and seed) and ablations/NAME/{results.csv,summary.csv}.
$NAS_FAIL_CELLS="label,label@seed" makes those cells fail (fault-injection tests).
"""


def cmd_ablate(args: argparse.Namespace) -> int:
    if args.list:
        from nas.ablate.experiment import experiment_files, load_experiment

        for path in experiment_files():
            exp = load_experiment(path)
            grid = " x ".join(f"{f.name} ({len(f.levels)})" for f in exp.factors)
            print(f"{exp.name:24s} {grid:28s} {exp.description}")
        return 0
    names = [w for w in args.words if "=" not in w]
    if len(names) != 1:
        raise NasError("give one experiment (experiments/NAME.yaml, a path or NAME; see nas ablate"
                       f" --list), then key=value words; got {names or 'none'}")
    from nas.ablate.driver import AblateSettings, ablate

    settings = AblateSettings(
        experiment=names[0], seeds=args.seeds, budget=args.budget, name=args.name,
        resume=args.resume, address=args.address, cpus_per_cell=args.cpus_per_cell,
        gpus_per_cell=args.gpus_per_cell, accelerator=args.accelerator, per_cell=args.per_cell,
        concurrency=args.concurrency, test_images=args.test_images,
        output_dir=args.output_dir, overrides=[w for w in args.words if "=" in w],
        progress=not args.no_progress, retry_failed=args.retry_failed)
    outcome = ablate(settings)
    print()
    print(outcome.report)
    print(f"\nfiles: {shlex.quote(str(outcome.folder))}/results.csv, summary.csv"
          f"   ({outcome.wall_s / 60:.1f} min)")
    _campaign_hint(settings.overrides)
    return _verdict(outcome.results, "cell")


def _ablate_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=int, help="run the first N seeds (default: the file's list)")
    p.add_argument("--budget", help="smoke | cpu | gpu (default: the file's)")
    p.add_argument("--name", help="ablation name (default: EXPERIMENT-DATE); reuse it with --resume")
    p.add_argument("--resume", action="store_true", help="continue the ablation called --name")
    p.add_argument("--retry-failed", action="store_true", help="with --resume: run FAILED cells again")
    p.add_argument("--address", help="join a running Ray cluster (default: start a local one)")
    p.add_argument("--cpus-per-cell", type=float, default=1.0, help="CPUs per cell x seed (threads)")
    p.add_argument("--gpus-per-cell", type=float, default=None,
                   help="same as --accelerator cuda --per-cell SHARE (0: train on CPUs)")
    _accelerator_args(p, "cell")
    p.add_argument("--concurrency", type=int, help="cells at once (default: what resources allow)")
    p.add_argument("--test-images", type=int,
                   help="test images per cell, fixed and class-balanced (default: the budget's; 0: all)")
    p.add_argument("--output-dir", default="ablations")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--list", action="store_true", help="list the shipped experiments and exit")


def _ablate_args(p: argparse.ArgumentParser) -> None:
    _ablate_options(p)
    p.add_argument("words", nargs="*", metavar="EXPERIMENT [key=value ...]",
                   help="experiments/NAME.yaml, a path or NAME; then nas run keys on top of the"
                        " budget (data.root=, train.epochs=, device=)")


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
    from nas.dashboard import format_front, front_table, load_search, pareto_figure

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
    "summary": (cmd_summary, "per-stage table of a preset or spec: output shape, params, MACs",
                EPILOG_SUMMARY, _summary_args),
    "search": (cmd_search, "multi-objective architecture search (Optuna on Ray Tune, MLflow)",
               EPILOG_SEARCH, _search_args),
    "run": (cmd_run, "train one network (CIFAR-10 by default), tracked in MLflow", EPILOG_RUN,
            _run_args),
    "ablate": (cmd_ablate, "paper ablations: cells x seeds on Ray, mean ± std beside the paper's numbers",
               EPILOG_ABLATE, _ablate_args),
    "pareto": (cmd_pareto, "a search's accuracy vs MACs / params with its Pareto front, from MLflow",
               EPILOG_PARETO, _pareto_args),
}


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
