"""`nas search` and `nas ablate` on the command line: their options, examples, and what they
print at the end (the summary, the resume hint, the MLflow hint). The modules behind them are
imported inside the commands: importing them costs 5-8 s (torch, Ray, Optuna), which
`nas --help` and the other sub-commands do not need.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from nas.errors import NasError
from nas.status import Status
from nas.words import parse_words


def mlflow_hint(uri: str | None, experiment: str, enabled: bool = True) -> None:
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


EPILOG_SEARCH = """examples:
  nas search --space shufflenet --trials 50                 # CPU budget: about 90 min on 2 cores
  nas search --space mobilenet_v2 --objectives val_acc,macs,params --sampler tpe
  nas search --space mixed --trials 200 --budget gpu --gpus-per-trial 0.5
  nas search --space shufflenet --trials 50 max_macs=20e6 data.root=/data
  nas search --space shufflenet --name nightly --resume        # continue after Ctrl-C or kill -9
  nas search --space shufflenet --address 10.0.0.5:6379      # join a running Ray cluster
  nas search --space shufflenet --budget smoke --trials 4 data.name=synthetic data.val_size=64
  nas search --space shufflenet --objectives val_acc,latency max_latency_ms=5   # measured, ONNX Runtime

spaces: search_spaces/*.yaml (shufflenet, mobilenet_v1, mobilenet_v2, mixed) or a path.
key=value words are `nas run` keys (data.*, train.*, device=, mlflow.*) plus max_macs= / max_params=
/ max_latency_ms=. Latency (an objective or a limit) is measured before training, once per shape,
on this machine (`nas latency`: --latency-runtime, --latency-threads).
Results: searches/NAME/{trials.csv,pareto.png,front/*.yaml}, and MLflow (a parent run per
search, a child per trial; front members tagged pareto=true).
"""


def cmd_search(args: argparse.Namespace) -> int:
    from nas.campaign.progress import summary_line
    from nas.search.driver import SearchSettings, search
    from nas.search.interrupted import shown_statuses
    from nas.search.results import found_summary, front_text

    settings = SearchSettings(
        space=args.space, trials=args.trials, name=args.name, resume=args.resume,
        objectives=args.objectives, seed=args.seed, budget=args.budget,
        address=args.address, cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial, accelerator=args.accelerator, per_trial=args.per_trial,
        concurrency=args.concurrency, asha=not args.no_asha, scheduler=args.scheduler,
        retrain_top=args.retrain_top, output_dir=args.output_dir, overrides=list(args.words),
        latency_runtime=args.latency_runtime, latency_threads=args.latency_threads,
        progress=not args.no_progress, references=not args.no_references,
        **({"sampler": args.sampler} if args.sampler else {}))
    outcome = search(settings)
    print(f"\nsearch {outcome.name} {'interrupted' if outcome.interrupted else 'finished'} in"
          f" {outcome.wall_s / 60:.1f} min: " + summary_line(shown_statuses(outcome.trials)))
    print(f"Pareto front over {', '.join(o.name for o in outcome.objectives)} (validation accuracy):")
    print(front_text(outcome))
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
    mlflow_hint(values.get("mlflow.tracking_uri"), values.get("mlflow.experiment", "nas"),
                 values.get("mlflow.enabled", True) is not False)


def _accelerator_args(p: argparse.ArgumentParser, per: str) -> None:
    p.add_argument("--accelerator", default="auto", choices=("auto", "cuda", "npu", "cpu"),
                   help="where points train (auto: what the Ray cluster has: GPU, else NPU, else CPU)")
    p.add_argument(f"--per-{per}", type=float, default=None, dest=f"per_{per}",
                   help=f"accelerator share per {per} (fractions share a device; default 0.25)")


def search_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("words", nargs="*", metavar="key=value",
                   help="nas run keys (data.root=, device=, train.*) and max_macs= / max_params= / max_latency_ms=")
    p.add_argument("--space", required=True, help="search space name or YAML path")
    p.add_argument("--trials", type=int, default=50, help="trials to train (infeasible samples are free)")
    p.add_argument("--name", help="search name (default: SPACE-DATE); reuse it with --resume")
    p.add_argument("--resume", action="store_true", help="continue the search called --name")
    p.add_argument("--objectives", default="val_acc,macs",
                   help="comma list: val_acc (max), macs, params, latency (min; measured, see nas latency)")
    p.add_argument("--latency-runtime", default="onnxruntime", help="onnxruntime | executorch | torch")
    p.add_argument("--latency-threads", type=int, default=1, help="threads the latency is measured with")
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


def ablate_args(p: argparse.ArgumentParser) -> None:
    _ablate_options(p)
    p.add_argument("words", nargs="*", metavar="EXPERIMENT [key=value ...]",
                   help="experiments/NAME.yaml, a path or NAME; then nas run keys on top of the"
                        " budget (data.root=, train.epochs=, device=)")
