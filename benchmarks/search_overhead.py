"""What a search costs besides training, and whether NSGA-II beats random sampling.

Part 1 - per-trial overhead. Runs a real `nas search` (local Ray, Optuna in SQLite, MLflow in
SQLite) at the default CPU budget and splits each trained trial's wall time, as MLflow sees it
(child run start = the driver's on_trial_start, end = on_trial_complete), into

  train_s    the trial's own time in `nas.train.train` (training + per-epoch validation),
             reported by the worker with each epoch, Tune's report calls excluded
  overhead   everything else: scheduling, actor reuse, building and counting the net, moving
             data, Tune's report round trips, the driver's MLflow and Optuna writes

and prints overhead / wall per trial (median, mean, max; target <= 10%), the share of the
trial slots left idle between trials (sum of trial walls vs concurrency x the span of all trials),
and the once-per-search cost (data loading, Ray start, the MLflow parent run, the final report).

Part 2 - hypervolume after N trials, NSGA-II vs random, same seeds, same budget (ASHA off, so
every trial gives its full-budget point; paper reference points off, so only the sampler picks),
objectives validation accuracy (max) and MACs (min), reference point (accuracy 0, max_macs). The
hypervolume is printed after N/4, N/2 and N trained trials, in accuracy x MMACs.

    python benchmarks/search_overhead.py --data-root ~/.cache/nas/data            # both parts
    python benchmarks/search_overhead.py --data-root DIR --skip-hv --trials 8
    python benchmarks/search_overhead.py --data-root DIR --skip-overhead --hv-trials 24 --seeds 0 1
    python benchmarks/search_overhead.py --quick      # synthetic data, smoke budget: plumbing only

Everything runs in a temporary folder (or --workdir); nothing is written to ./mlflow.db.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from nas.pareto import hypervolume
from nas.campaign.budget import get_budget
from nas.campaign.settings import make_settings
from nas.search.driver import search
from nas.search.plan import SearchPlan
from nas.table import format_table

QUICK_DATA = ["data.name=synthetic", "data.val_size=64", "data.synthetic_train=512",
              "data.synthetic_test=64", "train.batch_size=64"]


def _data_args(args: argparse.Namespace) -> list[str]:
    if args.quick:
        return list(QUICK_DATA)
    root = args.data_root or os.environ.get("NAS_DATA")
    return [f"data.root={root}"] if root else []


def _search(workdir: Path, name: str, budget: str, trials: int, overrides: list[str], **kw):
    """One real search, MLflow in its own SQLite file under workdir."""
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    words = [*overrides, f"mlflow.tracking_uri={uri}", f"mlflow.experiment=bench-{name}"]
    settings = make_settings(SearchPlan, words, space="shufflenet", trials=trials, name=name, budget=budget,
                             output_dir=str(workdir / "searches"), progress=False, **kw)
    started = time.perf_counter()
    outcome = search(settings)
    return outcome, time.perf_counter() - started, uri


def overhead_part(args: argparse.Namespace, workdir: Path) -> None:
    from mlflow.tracking import MlflowClient

    budget = "smoke" if args.quick else "cpu"
    print(f"== part 1: per-trial overhead, budget {budget}, {args.trials} trials ==", flush=True)
    # one trial per core unless told: the search's own default, stated here so the idle share
    # below divides by the slots the search really had
    concurrency = max(1, args.concurrency or os.cpu_count() or 1)
    outcome, wall, uri = _search(workdir, "overhead", budget, args.trials, _data_args(args),
                                 concurrency=concurrency)
    client = MlflowClient(uri)
    rows = []
    for _, trial in outcome.trials.iterrows():
        if trial["status"] not in ("COMPLETED", "PRUNED") or not trial["mlflow_run_id"]:
            continue
        run = client.get_run(trial["mlflow_run_id"])
        history = client.get_metric_history(run.info.run_id, "train_s")
        if not history or run.info.end_time is None:
            continue
        trial_wall = (run.info.end_time - run.info.start_time) / 1000
        train_s = max(m.value for m in history)
        rows.append({"trial": int(trial["trial"]), "status": trial["status"],
                     "epochs": int(trial["epochs"]), "wall_s": trial_wall, "train_s": train_s,
                     "start": run.info.start_time / 1000, "end": run.info.end_time / 1000})
    if not rows:
        print("no trained trial to measure")
        return
    df = pd.DataFrame(rows)
    df["overhead"] = 1 - df["train_s"] / df["wall_s"]
    print(format_table(["trial", "status", "epochs", "wall s", "train s", "overhead"],
                       [[r.trial, r.status, r.epochs, f"{r.wall_s:.1f}", f"{r.train_s:.1f}",
                         f"{r.overhead:.1%}"] for r in df.itertuples()], align="rlrrrr"))
    span = df["end"].max() - df["start"].min()
    idle = 1 - df["wall_s"].sum() / (concurrency * span)
    share = df["overhead"]
    print(f"\nper-trial overhead (time outside train(), share of the trial's wall time):"
          f" median {share.median():.1%}, mean {share.mean():.1%}, max {share.max():.1%}"
          f"  -> target <= 10%: {'PASS' if share.median() <= 0.10 else 'FAIL'}")
    print(f"trial slots idle between trials: {idle:.1%} of {concurrency} x {span:.0f} s")
    print(f"once per search (data, Ray start, MLflow parent, report): {wall - span:.0f} s of"
          f" {wall:.0f} s")


def _hv_curve(trials: pd.DataFrame, checkpoints: list[int], max_macs: float) -> list[float]:
    trained = trials[trials["status"] != "INFEASIBLE"].sort_values("trial")
    curve = []
    for n in checkpoints:
        done = trained.head(n)
        done = done[done["status"] == "COMPLETED"]
        values = done[["val_acc", "macs"]].to_numpy(dtype=float) * np.array([1.0, 1e-6])
        curve.append(hypervolume(values, ["max", "min"], [0.0, max_macs / 1e6]))
    return curve


def hv_part(args: argparse.Namespace, workdir: Path) -> None:
    budget_name = "smoke" if args.quick else "cpu"
    budget = get_budget("search", budget_name)
    max_macs = budget.default_max_macs or 25e6
    fidelity = [] if args.quick else [f"data.train_subset={args.hv_train_subset}",
                                      f"train.epochs={args.hv_epochs}"]
    n = args.hv_trials
    checkpoints = sorted({max(1, n // 4), max(1, n // 2), n})
    print(f"\n== part 2: hypervolume after {checkpoints} trials, budget {budget_name}"
          f" {' '.join(fidelity)}, ASHA off, seeds {args.seeds} ==", flush=True)
    table, finals = [], {"nsga2": [], "random": []}
    for seed in args.seeds:
        for sampler in ("nsga2", "random"):
            outcome, wall, _ = _search(workdir, f"hv-{sampler}-s{seed}", budget_name, n,
                                       [*_data_args(args), *fidelity], sampler=sampler, seed=seed,
                                       asha=False, references=False, max_macs=max_macs)
            curve = _hv_curve(outcome.trials, checkpoints, max_macs)
            finals[sampler].append(curve[-1])
            table.append([sampler, seed, *[f"{v:.3f}" for v in curve], f"{wall / 60:.1f}"])
            print(f"  {sampler} seed {seed}: HV {curve[-1]:.3f} ({wall / 60:.1f} min)", flush=True)
    print(format_table(["sampler", "seed", *[f"HV@{c}" for c in checkpoints], "min"], table,
                       align="lr" + "r" * (len(checkpoints) + 1)))
    ratios = [a / b for a, b in zip(finals["nsga2"], finals["random"]) if b > 0]
    if ratios:
        print(f"\nNSGA-II / random hypervolume after {n} trials: mean ratio"
              f" {statistics.mean(ratios):.3f} over {len(ratios)} seed(s)"
              f" (>1: NSGA-II's front dominates more of accuracy x MACs)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--data-root", help="folder holding cifar-10-batches-py (default $NAS_DATA)")
    parser.add_argument("--trials", type=int, default=8, help="part 1 trials")
    parser.add_argument("--concurrency", type=int, default=None, help="part 1: trials at once")
    parser.add_argument("--hv-trials", type=int, default=24)
    parser.add_argument("--hv-train-subset", type=int, default=1000)
    parser.add_argument("--hv-epochs", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-hv", action="store_true")
    parser.add_argument("--quick", action="store_true", help="synthetic data, smoke budget")
    parser.add_argument("--workdir", help="keep the searches here (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.hv_trials, args.seeds = min(args.trials, 4), min(args.hv_trials, 8), args.seeds[:1]
    with tempfile.TemporaryDirectory(prefix="nas-bench-") as tmp:
        workdir = Path(args.workdir or tmp).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        if not args.skip_overhead:
            overhead_part(args, workdir)
        if not args.skip_hv:
            hv_part(args, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
