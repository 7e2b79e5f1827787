"""`nas search` and `nas ablate` on the command line: their options, examples and what they print at
the end (summary, resume hint, MLflow hint). Their modules are imported inside the commands (5-8 s:
torch, Ray, Optuna), which `nas --help` and the other sub-commands do not need."""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace
from typing import Any

from nas.ablate.plan import AblatePlan
from nas.campaign.settings import CampaignSettings, add_flags, from_args
from nas.errors import NasError
from nas.search.plan import SearchPlan
from nas.status import Status
from nas.words import RunOverrides


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
    from nas.search.driver import search
    from nas.search.interrupted import shown_statuses
    from nas.pareto_plot import format_front
    from nas.search.results import found_summary

    settings = from_args(args, SearchPlan, args.words)
    outcome = search(settings)
    print(f"\nsearch {outcome.name} {'interrupted' if outcome.interrupted else 'finished'} in"
          f" {outcome.wall_s / 60:.1f} min: " + summary_line(shown_statuses(outcome.trials)))
    print(f"Pareto front over {', '.join(o.name for o in outcome.objectives)} (validation accuracy):")
    spec_files = [f"front/trial{int(t):03d}.yaml" for t in outcome.front["trial"]]
    print(format_front(outcome.front, "spec", spec_files), *found_summary(outcome, outcome.objectives), sep="\n")
    if outcome.retrained is not None and len(outcome.retrained):
        print("\nretrained at the full budget (test accuracy is reported, never used for selection):")
        print(outcome.retrained.to_string(index=False))
    folder = shlex.quote(str(outcome.folder))
    print(f"\nfiles: {folder}/trials.csv, pareto.png, front/*.yaml"
          f"  (retrain one: nas run spec={folder}/front/<file> train.epochs=..)")
    _resume_hint(settings, outcome)
    _campaign_hint(settings.run)
    return INTERRUPTED if outcome.interrupted else _verdict(outcome.trials, "trial")


INTERRUPTED = 130  # the shell's code for a command stopped by Ctrl-C (SIGINT)


def _verdict(points: Any, what: str) -> int:
    """The exit code of a campaign: 0 when a point produced a result, else one line and 1."""
    from nas.campaign.progress import NOTHING_WORKED, no_result_reason

    if (reason := no_result_reason(points, what)) is None:
        return 0
    print(f"error: {reason}", file=sys.stderr)
    return NOTHING_WORKED


def _resume_hint(settings: CampaignSettings[SearchPlan], outcome: Any) -> None:
    """An interrupted search says how far it got and how to go on from there."""
    statuses = [Status(s) for s in outcome.trials["status"]] if len(outcome.trials) else []
    ran = sum(1 for s in statuses if s.trained or s is Status.FAILED)
    if ran >= settings.plan.trials:
        return
    words = replace(settings, name=outcome.name, resume=True).command(first=("space", "name", "resume", "trials"))
    print(f"interrupted at {ran} of {settings.plan.trials} trials; go on with: nas search {shlex.join(words)}")


def _campaign_hint(words: RunOverrides) -> None:
    """The MLflow hint for a search or ablation run with these `key=value` words."""
    values = words.values
    mlflow_hint(values.get("mlflow.tracking_uri"), values.get("mlflow.experiment", "nas"),
                values.get("mlflow.enabled", True) is not False)


def search_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("words", nargs="*", metavar="key=value",
                   help="nas run keys (data.root=, device=, train.*) and max_macs= / max_params= / max_latency_ms=")
    add_flags(p, SearchPlan)


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
    from nas.ablate.driver import ablate

    settings = from_args(args, AblatePlan, [w for w in args.words if "=" in w], experiment=names[0])
    outcome = ablate(settings)
    print(f"\n{outcome.report}")
    print(f"\nfiles: {shlex.quote(str(outcome.folder))}/results.csv, summary.csv"
          f"   ({outcome.wall_s / 60:.1f} min)")
    _campaign_hint(settings.run)
    return _verdict(outcome.results, "cell")


def ablate_args(p: argparse.ArgumentParser) -> None:
    add_flags(p, AblatePlan)
    p.add_argument("--list", action="store_true", help="list the shipped experiments and exit")
    p.add_argument("words", nargs="*", metavar="EXPERIMENT [key=value ...]",
                   help="experiments/NAME.yaml, a path or NAME; then nas run keys on top of the"
                        " budget (data.root=, train.epochs=, device=)")
