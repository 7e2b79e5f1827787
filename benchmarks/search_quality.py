"""Which search finds the better accuracy/MACs front for the same compute? Methods vs random.

`--stand-in` (minutes for 20+ seeds, no training, no Ray): every method searches the `shufflenet`
space against a stand-in objective made from real learning curves, the table
`benchmarks/data/shufflenet_curves.csv` (per-epoch val_acc of architectures of the space trained
on CIFAR-10 at the `cpu` search budget; written by `benchmarks/fidelity.py --export-curves`, see
benchmarks/data/README.md). The stand-in, fitted to it:

  mean      per epoch e, a ridge regression of val_acc on the architecture's choices (one-hot
            for options, scaled to [0, 1] for integer ranges) and log MACs (exact, `nas.count`),
            one ridge strength for all epochs picked by leave-one-out error
  noise     gaussian, std per epoch sqrt(RSS / (n - dof)) of that fit; a trial's noise is an
            AR(1) series over its epochs, with the lag-1 correlation of the fit's residuals
            (a trial that is lucky at epoch 1 tends to stay lucky)

Methods, each given the same compute, --epochs epochs trained summed over its trials (default 100:
what `nas search --trials 50` spends at the cpu budget with ASHA, 2 epochs a trial on average):

  nsga2+moasha  the default: NSGA-II (population as `nas search`'s) + MO-ASHA promotion
  nsga2+asha    NSGA-II + scalar ASHA (promotion by val_acc alone)
  tpe+moasha    Optuna's (multi-objective) TPE + MO-ASHA
  tpe-c+moasha  the same with Optuna's constraints (`trial.set_constraint`): over-budget samples
                told COMPLETE with their violation (not FAIL), so TPE learns where the limit is; not what nas search does
                today (with FAIL, TPE keeps proposing the width it never saw trained: 1.0x, all
                over 25M MACs, and stops after 500 such samples in a row: column `stuck`; with
                constraints it re-proposes trained architectures instead, told FAIL as duplicates);
                only with --methods (TPE's asks get slow once hundreds of samples are told)
  random+moasha random sampling + MO-ASHA
  random        random sampling, every trial to the full budget (`--sampler random --no-asha`)

Successive halving is simulated synchronously, one trial after another: rungs at
grace * rf**k epochs (the cpu budget's 1, 2 with max 4), a trial continues at a rung iff
`nas.search.scheduler.promote` says so over the results recorded there (MO: val_acc max, MACs min;
scalar: val_acc alone, the same rule on one column); trials stop at the full budget. As in the real
searcher, pruned trials are told to Optuna with their last rung's values, infeasible samples
(invalid, over the budget's 25M MACs) and duplicates are told FAIL and cost nothing. When the
compute runs out mid-trial, that trial is told its values at the epoch it reached.

Score: the hypervolume (`nas.pareto.hypervolume`) of the trials trained to the full budget, in
val_acc (max) x MMACs (min), reference point (val_acc 0.1 = chance on 10 classes, MACs = 25M);
`HV` takes the stand-in's noise-free mean val_acc of those architectures (what they are worth),
`HV obs` the noisy values the search saw. Printed per method as mean +- std over seeds; the
last line is `hv_ratio_vs_random=R.RRR seeds=N` (nsga2+moasha over random, mean HV over mean HV).

`--real` runs `nas search` itself at the cpu budget for each seed: the default (`--trials T`)
and random without early stopping (`--sampler random --no-asha`, the trials that spend the same
epochs), and prints the same table from their trials.csv (observed val_acc; plumbing for the
lead: about 30 min per default search and as much per random one on 2 cores).

    python benchmarks/search_quality.py --stand-in --seeds 20           # a few minutes, 1 core
    python benchmarks/search_quality.py --stand-in --curves my_curves.csv --seeds 5 --epochs 200
    python benchmarks/search_quality.py --stand-in --quick --curves CSV --seeds 2   # CI: seconds
    python benchmarks/search_quality.py --real --seeds 3 --data-root /tmp/cifar  # ~3 h, 2 cores
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
CURVES = HERE / "data" / "shufflenet_curves.csv"
SPACE = "shufflenet"
CHANCE = 0.1  # the hypervolume's accuracy reference: chance on CIFAR-10
RIDGE_GRID = tuple(10.0 ** k for k in np.arange(-3, 3.01, 0.5))
MAX_FREE_IN_ROW = 500  # as the real searcher: that many free samples in a row ends a run


# ----------------------------------------------------------------------------- the stand-in

def read_curves(path: Path, budget: str = "search") -> dict[str, dict[str, Any]]:
    """{arch: {"choices": {...}, "curve": [val_acc after epoch 1, 2, ...]}} for one budget."""
    if not path.exists():
        raise SystemExit(f"{path}: no curves table; make one with benchmarks/fidelity.py"
                         " --export-curves (benchmarks/data/README.md), or pass --curves CSV")
    archs: dict[str, dict[str, Any]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["budget"] != budget:
                continue
            a = archs.setdefault(row["arch"], {"choices": json.loads(row["choices"]), "values": {}})
            a["values"][int(row["epoch"])] = float(row["val_acc"])
    if len(archs) < 4:
        raise SystemExit(f"{path}: {len(archs)} archs at budget {budget!r}; the stand-in needs >= 4")
    epochs = min(max(a["values"]) for a in archs.values())
    for a in archs.values():
        a["curve"] = [a["values"][e] for e in range(1, epochs + 1)]
    return archs


class StandIn:
    """val_acc per epoch of any point of the space: ridge mean + AR(1) gaussian trial noise."""

    def __init__(self, space: Any, archs: dict[str, dict[str, Any]], resolution: int = 32,
                 num_classes: int = 10):
        self.space, self.resolution, self.num_classes = space, resolution, num_classes
        self._macs: dict[str, int | None] = {}
        points = [space.normalize(a["choices"]) for a in archs.values()]
        raw = np.array([self._features(p, self.macs(p)) for p in points])
        self.center, self.scale = raw.mean(0), raw.std(0)
        self.scale[self.scale == 0] = 1.0
        X = self._design(raw)
        Y = np.array([a["curve"] for a in archs.values()])  # n archs x E epochs
        self.epochs = Y.shape[1]
        self.alpha = min(RIDGE_GRID, key=lambda lam: self._loo_error(X, Y, lam))
        self.weights, fitted, dof = self._fit(X, Y, self.alpha)
        residuals = Y - fitted
        n = len(Y)
        self.sigma = np.sqrt((residuals ** 2).sum(0) / max(n - dof, 1.0))
        lag1 = [np.corrcoef(residuals[:, e], residuals[:, e + 1])[0, 1] for e in range(self.epochs - 1)
                if residuals[:, e].std() > 0 and residuals[:, e + 1].std() > 0]
        self.rho = float(np.clip(np.mean(lag1), 0.0, 0.99)) if lag1 else 0.0
        self.n_archs = n

    def describe(self) -> str:
        return (f"ridge on {self.weights.shape[0] - 1} features of {self.n_archs} archs (alpha"
                f" {self.alpha:g}); noise std per epoch {', '.join(f'{s:.3f}' for s in self.sigma)},"
                f" lag-1 correlation {self.rho:.2f}")

    def macs(self, point: dict[str, Any]) -> int | None:
        """Exact MACs at 32 px (None: the point does not give a valid network)."""
        import nas
        from nas.errors import SpecError

        key = json.dumps(point, sort_keys=True, default=str)
        if key not in self._macs:
            try:
                spec = self.space.to_spec(point, resolution=self.resolution, num_classes=self.num_classes)
                self._macs[key] = nas.count(spec).macs
            except SpecError:
                self._macs[key] = None
        return self._macs[key]

    def _features(self, point: dict[str, Any], macs: int | None) -> list[float]:
        from nas.space import same

        out: list[float] = []
        for c in self.space.choices:
            value = point.get(c.label)
            if c.kind == "categorical":
                out += [1.0 if value is not None and same(value, o) else 0.0 for o in c.options]
            else:
                span = (c.high - c.low) or 1.0
                out.append(0.0 if value is None else (float(value) - c.low) / span)
        out.append(math.log(max(macs or 1, 1)))
        return out

    def _design(self, raw: np.ndarray) -> np.ndarray:
        z = (raw - self.center) / self.scale
        return np.hstack([np.ones((len(z), 1)), z])

    @staticmethod
    def _fit(X: np.ndarray, Y: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray, float]:
        penalty = lam * np.eye(X.shape[1])
        penalty[0, 0] = 0.0  # the intercept is not shrunk
        inverse = np.linalg.pinv(X.T @ X + penalty)
        W = inverse @ X.T @ Y
        hat_diag = np.einsum("ij,jk,ik->i", X, inverse, X)
        return W, X @ W, float(hat_diag.sum())

    @classmethod
    def _loo_error(cls, X: np.ndarray, Y: np.ndarray, lam: float) -> float:
        penalty = lam * np.eye(X.shape[1])
        penalty[0, 0] = 0.0
        inverse = np.linalg.pinv(X.T @ X + penalty)
        hat = np.einsum("ij,jk,ik->i", X, inverse, X)
        residual = Y - X @ (inverse @ X.T @ Y)
        return float(((residual / np.clip(1 - hat, 1e-6, None)[:, None]) ** 2).sum())

    def mean(self, point: dict[str, Any]) -> np.ndarray:
        """The noise-free curve: val_acc after each epoch."""
        x = self._design(np.array([self._features(point, self.macs(point))]))
        return np.clip((x @ self.weights)[0], 0.0, 1.0)

    def draw(self, point: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        """One trial's observed curve."""
        z = np.empty(self.epochs)
        z[0] = rng.standard_normal()
        for e in range(1, self.epochs):
            z[e] = self.rho * z[e - 1] + math.sqrt(1 - self.rho ** 2) * rng.standard_normal()
        return np.clip(self.mean(point) + self.sigma * z, 0.0, 1.0)


# ----------------------------------------------------------------------------- the searches

@dataclass(frozen=True)
class Method:
    name: str
    sampler: str  # a nas.search.searcher.SAMPLERS key
    scheduler: str | None  # moasha | asha | None (every trial to the full budget)
    constrained: bool = False  # over-budget samples told COMPLETE with a constraint violation


METHODS = (Method("nsga2+moasha", "nsga2", "moasha"), Method("nsga2+asha", "nsga2", "asha"),
           Method("tpe+moasha", "tpe", "moasha"), Method("tpe-c+moasha", "tpe", "moasha", True),
           Method("random+moasha", "random", "moasha"), Method("random", "random", None))
DEFAULT, BASELINE = "nsga2+moasha", "random"


@dataclass
class Run:
    trained: int = 0
    completed: int = 0
    pruned: int = 0
    infeasible: int = 0  # invalid or over max_macs: told FAIL, no compute
    duplicates: int = 0  # already trained: told FAIL, no compute
    stuck: bool = False  # MAX_FREE_IN_ROW free samples in a row: the search ended early
    epochs: int = 0
    front_points: list | None = None  # [(true val_acc, observed val_acc, macs)] of completed trials


def simulate(method: Method, standin: StandIn, seed: int, *, epoch_budget: int, grace: int, rf: int,
             max_macs: float) -> Run:
    """One search with `method` until `epoch_budget` epochs are trained (see the module doc)."""
    import optuna

    from nas.campaign.budget import get_budget
    from nas.campaign.estimate import mean_epochs
    from nas.search.optuna_choices import OptunaChooser
    from nas.search.scheduler import promote, rung_milestones
    from nas.search.searcher import SAMPLERS, architecture_key

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    max_epochs = standin.epochs
    budget = get_budget("search", "cpu").with_epochs(max_epochs)
    planned = max(1, round(epoch_budget / mean_epochs(budget, early_stopping=method.scheduler is not None)))
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=SAMPLERS[method.sampler](seed, planned))
    milestones = ([int(m) for m in rung_milestones(grace, max_epochs, rf) if m < max_epochs]
                  if method.scheduler else [])
    rungs: dict[int, list[list[float]]] = {m: [] for m in milestones}
    rng = np.random.default_rng([seed, METHODS.index(method)])
    seen: set[tuple] = set()
    run, free_in_row, points = Run(), 0, []
    while run.epochs < epoch_budget:
        trial = study.ask()
        point = standin.space.sample(OptunaChooser(trial))
        macs = standin.macs(point)
        key = architecture_key(point)
        if method.constrained and macs is not None and macs > max_macs and key not in seen:
            trial.set_constraint("macs", macs / max_macs - 1.0)  # not what nas search does (yet)
            study.tell(trial, [0.0, float(macs)])  # infeasible: ranked after every feasible trial
            run.infeasible += 1
            free_in_row += 1
            if free_in_row >= MAX_FREE_IN_ROW:
                run.stuck = True
                break
            continue
        if macs is None or macs > max_macs or key in seen:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            if key in seen:
                run.duplicates += 1
            else:
                run.infeasible += 1
            free_in_row += 1
            if free_in_row >= MAX_FREE_IN_ROW:  # the real searcher raises here
                run.stuck = True
                break
            continue
        free_in_row = 0
        seen.add(key)
        if method.constrained:
            trial.set_constraint("macs", macs / max_macs - 1.0)  # <= 0: feasible
        curve = standin.draw(point, rng)
        run.trained += 1
        reached = 0
        for stop in [*milestones, max_epochs]:
            can = min(stop, reached + epoch_budget - run.epochs)
            run.epochs += can - reached
            reached = can
            if reached < stop:  # out of compute mid-trial: told what it reached
                run.pruned += 1
                break
            if stop == max_epochs:
                run.completed += 1
                points.append((float(standin.mean(point)[-1]), float(curve[-1]), float(macs)))
                break
            values = [float(curve[stop - 1]), float(macs)]
            column = values if method.scheduler == "moasha" else values[:1]
            directions = ["max", "min"] if method.scheduler == "moasha" else ["max"]
            rung = [*rungs[stop], column]
            keep = promote(np.array(rung), len(rung) - 1, 1.0 / rf, directions)
            rungs[stop].append(column)
            if not keep:
                run.pruned += 1
                break
        study.tell(trial, [float(curve[reached - 1]), float(macs)])
    run.front_points = points
    return run


def hv(points: list[tuple[float, float]], max_macs: float) -> float:
    from nas.pareto import hypervolume

    if not points:
        return 0.0
    values = np.array([[acc, macs / 1e6] for acc, macs in points])
    return hypervolume(values, ["max", "min"], [CHANCE, max_macs / 1e6])


def _mean_std(xs: list[float]) -> str:
    if not xs:
        return "-"
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):.3f} +- {sd:.3f}"


def print_table(scores: dict[str, dict[str, list[float]]], seeds: int, columns: list[str]) -> None:
    from nas.table import format_table

    print(format_table(["method", *columns],
                       [[name, *[_mean_std(s.get(c, [])) if c.startswith("HV") else
                                 f"{statistics.mean(s[c]):.1f}" if s.get(c) else "-" for c in columns]]
                        for name, s in scores.items()], align="l" + "r" * len(columns)))
    base = statistics.mean(scores[BASELINE]["HV"]) if scores.get(BASELINE, {}).get("HV") else 0.0
    ours = statistics.mean(scores[DEFAULT]["HV"]) if scores.get(DEFAULT, {}).get("HV") else math.nan
    ratio = ours / base if base > 0 else math.nan
    print(f"hv_ratio_vs_random={ratio:.3f} seeds={seeds}")


def stand_in(args: argparse.Namespace) -> None:
    from nas.campaign.budget import get_budget
    from nas.space import load_space

    budget = get_budget("search", "cpu")
    max_macs = args.max_macs or budget.default_max_macs
    space = load_space(SPACE)
    standin = StandIn(space, read_curves(Path(args.curves), args.curves_budget))
    epoch_budget = args.epochs or (24 if args.quick else 100)
    methods = [m for m in METHODS if m.name in args.methods] if args.methods else \
        [m for m in METHODS if not m.constrained]
    print(f"stand-in from {args.curves} (budget {args.curves_budget!r}): {standin.describe()}")
    print(f"{len(methods)} methods x {args.seeds} seeds, {epoch_budget} epochs each, max"
          f" {standin.epochs} a trial, rungs from {budget.grace_epochs} x {budget.reduction_factor}^k,"
          f" <= {max_macs / 1e6:g}M MACs; HV reference point (val_acc {CHANCE}, {max_macs / 1e6:g} MMACs)",
          flush=True)
    scores: dict[str, dict[str, list[float]]] = {}
    for m in methods:
        s = scores.setdefault(m.name, {})
        for seed in range(args.seeds):
            run = simulate(m, standin, seed, epoch_budget=epoch_budget, grace=budget.grace_epochs,
                           rf=budget.reduction_factor, max_macs=max_macs)
            s.setdefault("HV", []).append(hv([(t, c) for t, _, c in run.front_points], max_macs))
            s.setdefault("HV obs", []).append(hv([(o, c) for _, o, c in run.front_points], max_macs))
            for col, v in (("trained", run.trained), ("full", run.completed), ("epochs", run.epochs),
                           ("infeasible", run.infeasible), ("duplicates", run.duplicates),
                           ("stuck", int(run.stuck))):
                s.setdefault(col, []).append(v)
        print(f"  {m.name}: HV {_mean_std(s['HV'])}", flush=True)
    print_table(scores, args.seeds, ["HV", "HV obs", "trained", "full", "epochs", "infeasible",
                                     "duplicates", "stuck"])


# ----------------------------------------------------------------------------- --real

def real(args: argparse.Namespace) -> None:
    """`nas search` for real at the cpu budget, each seed: the default and random without
    early stopping on the same epochs; the table from their trials.csv."""
    import pandas as pd

    from nas.campaign.budget import get_budget
    from nas.campaign.estimate import mean_epochs

    budget = get_budget("search", "cpu")
    max_macs = args.max_macs or budget.default_max_macs
    out = Path(args.output_dir)
    random_trials = max(1, round(args.trials * mean_epochs(budget, early_stopping=True) / budget.epochs))
    words = [f"data.root={args.data_root}"] if args.data_root else []
    runs = [(DEFAULT, ["--sampler", "nsga2", "--trials", str(args.trials)]),
            (BASELINE, ["--sampler", "random", "--no-asha", "--trials", str(random_trials)])]
    scores: dict[str, dict[str, list[float]]] = {}
    for seed in range(args.seeds):
        for label, extra in runs:
            name = f"quality-{label.replace('+', '-')}-s{seed}"
            table = out / name / "trials.csv"
            if not table.exists():
                cmd = [sys.executable, "-c", "import sys; from nas.cli import main; sys.exit(main())",
                       "search", "--space", SPACE, "--budget", "cpu", "--seed", str(seed), "--name", name,
                       "--output-dir", str(out), "--no-references", *extra, *words, *args.overrides]
                if (out / name).exists():
                    cmd.append("--resume")
                print("  $ nas " + " ".join(cmd[3:]), flush=True)
                subprocess.run(cmd, check=True)
            trials = pd.read_csv(table)
            done = trials[trials["status"] == "COMPLETED"]
            s = scores.setdefault(label, {})
            s.setdefault("HV", []).append(hv(list(zip(done["val_acc"], done["macs"])), max_macs))
            free = trials["status"].isin(["INFEASIBLE", "DUPLICATE"])
            s.setdefault("trained", []).append(int((~free).sum()))
            s.setdefault("full", []).append(len(done))
    print(f"real searches at the cpu budget ({args.trials} default trials, {random_trials} random"
          f" ones); HV of observed val_acc, reference point (val_acc {CHANCE}, {max_macs / 1e6:g} MMACs)")
    print_table(scores, args.seeds, ["HV", "trained", "full"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--stand-in", action="store_true", help="simulated searches on the curves table")
    mode.add_argument("--real", action="store_true", help="real `nas search` runs (cpu budget)")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--curves", default=str(CURVES), help="curves table (fidelity.py --export-curves)")
    parser.add_argument("--curves-budget", default="search",
                        help="the table's budget the stand-in is fitted to")
    parser.add_argument("--epochs", type=int,
                        help="compute per search, epochs summed (default 100; --quick 24)")
    parser.add_argument("--methods", nargs="+", choices=[m.name for m in METHODS],
                        help="default: all but tpe-c+moasha (slow: its stuck runs ask TPE 500 times)")
    parser.add_argument("--max-macs", type=float, help="default: the cpu budget's (25e6)")
    parser.add_argument("--quick", action="store_true", help="small compute per search (CI)")
    parser.add_argument("--trials", type=int, default=50, help="--real: trials of the default search")
    parser.add_argument("--data-root", default=os.environ.get("NAS_DATA"), help="--real: CIFAR-10 folder")
    parser.add_argument("--output-dir", default="searches", help="--real: where the searches go")
    parser.add_argument("overrides", nargs="*", help="--real: more `nas search` key=value words")
    args = parser.parse_args(argv)
    if args.stand_in:
        stand_in(args)
    else:
        real(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
