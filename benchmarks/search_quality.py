"""Which search finds the better accuracy/MACs front for the same compute? Methods vs random.

`--stand-in` (minutes for 20+ seeds, no training, no Ray): every method searches the `shufflenet`
space against a stand-in objective made from real learning curves, the table
`benchmarks/data/shufflenet_curves.csv` (per-epoch val_acc of architectures of the space trained
on CIFAR-10; its `cpu` rows, the default, are the trials real `nas search` runs trained at the `cpu`
budget; written by `benchmarks/fidelity.py --export-curves`, see benchmarks/data/README.md). The
stand-in, fitted to it:

  mean      per epoch e, a ridge regression of val_acc on the architecture's choices (one-hot
            for options, scaled to [0, 1] for integer ranges) and log MACs (exact, `nas.count`),
            one ridge strength for all epochs picked by leave-one-out error
  noise     gaussian, std per epoch sqrt(RSS / (n - dof)) of that fit; a trial's noise is an
            AR(1) series over its epochs, with the lag-1 correlation of the fit's residuals
            (a trial that is lucky at epoch 1 tends to stay lucky)

Methods, each given the same compute, --epochs epochs trained summed over its trials (default 100:
what `nas search --trials 50` spends at the cpu budget with ASHA, 2 epochs a trial on average).
Each drives the product's own searcher (`nas.search.searcher.OptunaSearcher`: the same asks, the
same FAIL / constraint / duplicate telling as `nas search`) on an in-memory study:

  ehvi+moasha   nas's known-cost sampler (a GP on val_acc, exact EHVI with the MACs nas.count
                gives: nas.search.known_cost) + MO-ASHA promotion
  gp+moasha     Optuna's GP sampler (logEHVI, constraints) + MO-ASHA promotion
  nsga2+moasha  NSGA-II (population as `nas search`'s) + MO-ASHA
  nsga2+asha    NSGA-II + scalar ASHA (promotion by val_acc alone)
  tpe+moasha    Optuna's multi-objective TPE + MO-ASHA
  random+moasha random sampling + MO-ASHA
  ehvi, gp, tpe, nsga2, random   the samplers with every trial trained to the full budget
                (`--sampler S --no-asha`); `random` is the baseline

The row marked (default) is what `nas search` runs by default (its default sampler + MO-ASHA).

Successive halving is simulated one trial after another: rungs at grace * rf**k epochs (the cpu
budget's 1, 2 with max 4), a trial continues at a rung iff `nas.search.scheduler.promote` says so
over the results recorded there (MO: val_acc max, MACs min; scalar: val_acc alone); trials stop at
the full budget. When the compute runs out mid-trial, that trial is told the epoch it reached.

Score: the hypervolume (`nas.pareto.hypervolume`) of the trials trained to the full budget, in
val_acc (max) x log10 MACs (min), from the reference point (the worst noise-free val_acc of any
feasible architecture of the space, the budget's 25M MACs). The stand-in enumerates the space, so
the table also gives the oracle (the HV of the space's true front) and how much of the way from
random's HV to it each method closed. `HV` takes the stand-in's noise-free mean val_acc of the
trained architectures (what they are worth), `HV obs` the noisy values the search saw. Printed as
mean +- std over seeds; the last line is `hv_ratio_vs_random=R.RRR seeds=N` (the default over
random, mean HV over mean HV).

`--real` runs `nas search` itself at the cpu budget for each seed: random without early
stopping (`--sampler random --no-asha`, the trials that spend the same epochs), then the default
(`--trials T`), both with the space's reference nets first as `nas search` does, and prints the
same table from their trials.csv (observed val_acc). At the cpu budget each search of 50 trials
takes about 70 min on 2 cores; the default's run is then exactly `nas search --space shufflenet
--trials 50`.

    python benchmarks/search_quality.py --stand-in --seeds 20           # a few minutes, 1 core
    python benchmarks/search_quality.py --stand-in --curves my_curves.csv --seeds 5 --epochs 200
    python benchmarks/search_quality.py --stand-in --quick --curves CSV --seeds 2   # CI: seconds
    python benchmarks/search_quality.py --real --seeds 3 --data-root /tmp/cifar  # ~5 h, 2 cores
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
RIDGE_GRID = tuple(10.0 ** k for k in np.arange(-3, 3.01, 0.5))


# ----------------------------------------------------------------------------- the stand-in

def read_curves(path: Path, budget: str = "search", max_epoch: int | None = None) -> dict[str, dict[str, Any]]:
    """{arch: {"choices": {...}, "curve": [val_acc after epoch 1, 2, ...]}} for one budget, the
    curves cut after `max_epoch` if given."""
    if not path.exists():
        raise SystemExit(f"{path}: no curves table; make one with benchmarks/fidelity.py"
                         " --export-curves (benchmarks/data/README.md), or pass --curves CSV")
    archs: dict[str, dict[str, Any]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["budget"] != budget:
                continue
            a = archs.setdefault(row["arch"], {"choices": json.loads(row["choices"]), "values": {},
                                               "val_images": int(row.get("val_images") or 0)})
            a["values"][int(row["epoch"])] = float(row["val_acc"])
    if len(archs) < 4:
        raise SystemExit(f"{path}: {len(archs)} archs at budget {budget!r}; the stand-in needs >= 4")
    epochs = min(max(a["values"]) for a in archs.values())
    epochs = min(epochs, max_epoch) if max_epoch else epochs
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
        fit_sigma = np.sqrt((residuals ** 2).sum(0) / max(n - dof, 1.0))
        # with few archs the fit's residuals understate the noise: a trial's val_acc is at least as
        # noisy as the binomial sampling of its validation images
        val_images = min((a["val_images"] for a in archs.values() if a["val_images"]), default=0)
        p = Y.mean(0)
        self.sigma_floor = np.sqrt(p * (1 - p) / val_images) if val_images else np.zeros(self.epochs)
        self.sigma = np.maximum(fit_sigma, self.sigma_floor)
        lag1 = [np.corrcoef(residuals[:, e], residuals[:, e + 1])[0, 1] for e in range(self.epochs - 1)
                if residuals[:, e].std() > 0 and residuals[:, e + 1].std() > 0]
        self.rho = float(np.clip(np.mean(lag1), 0.0, 0.99)) if lag1 else 0.0
        self.n_archs = n

    def describe(self) -> str:
        return (f"ridge on {self.weights.shape[0] - 1} features of {self.n_archs} archs (alpha"
                f" {self.alpha:g}); noise std per epoch {', '.join(f'{s:.3f}' for s in self.sigma)}"
                f" (at least the binomial std of the validation images,"
                f" {', '.join(f'{s:.3f}' for s in self.sigma_floor)}),"
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


METHODS = (Method("ehvi+moasha", "ehvi", "moasha"), Method("ehvi", "ehvi", None),
           Method("gp+moasha", "gp", "moasha"), Method("nsga2+moasha", "nsga2", "moasha"),
           Method("nsga2+asha", "nsga2", "asha"), Method("tpe+moasha", "tpe", "moasha"),
           Method("random+moasha", "random", "moasha"), Method("gp", "gp", None),
           Method("tpe", "tpe", None), Method("nsga2", "nsga2", None), Method("random", "random", None))
BASELINE = "random"


def default_method() -> str:
    """The method `nas search` runs by default at the cpu budget: its default sampler, with
    MO-ASHA if the budget stops early."""
    from nas.campaign.budget import get_budget
    from nas.pareto import parse_objectives
    from nas.search.driver import SearchSettings
    from nas.search.searcher import pick_sampler
    from nas.space import load_space

    settings = SearchSettings(space=SPACE)
    sampler = pick_sampler(settings.sampler, parse_objectives(settings.objectives), load_space(SPACE))
    return f"{sampler}+moasha" if get_budget("search", "cpu").early_stopping else sampler


@dataclass
class Run:
    trained: int = 0
    completed: int = 0
    pruned: int = 0
    infeasible: int = 0  # invalid or over max_macs: no compute
    duplicates: int = 0  # already trained: no compute
    stuck: bool = False  # the searcher gave up (too many free samples in a row)
    epochs: int = 0
    front_points: list | None = None  # [(true val_acc, observed val_acc, macs)] of completed trials


def _searcher(method: Method, standin: StandIn, seed: int, planned: int, max_epochs: int,
              max_macs: float, run: Run, references: bool):
    """The product's own searcher (`nas.search.searcher.OptunaSearcher`) on an in-memory study,
    the space's reference points queued first if `references` (as `nas search` does)."""
    import optuna

    from nas.pareto import Objective
    from nas.search.searcher import OBSERVE_FREE, SAMPLERS, Limits, OptunaSearcher

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=SAMPLERS[method.sampler](seed, planned))
    for ref_name, point in standin.space.references if references else ():
        study.enqueue_trial(point, user_attrs={"reference": ref_name})

    def on_free(sampled) -> None:
        if sampled.duplicate_of is None:
            run.infeasible += 1
        else:
            run.duplicates += 1

    to_spec = lambda p: standin.space.to_spec(p, resolution=standin.resolution,  # noqa: E731
                                              num_classes=standin.num_classes)
    return OptunaSearcher(study, standin.space, [Objective("val_acc", "max"), Objective("macs", "min")],
                          to_spec=to_spec, limits=Limits(max_macs=max_macs), max_epochs=max_epochs,
                          trials=10 ** 9, on_infeasible=on_free,
                          observe_free=method.sampler in OBSERVE_FREE)


def simulate(method: Method, standin: StandIn, seed: int, *, epoch_budget: int, grace: int, rf: int,
             max_macs: float, references: bool = True, concurrency: int = 1) -> Run:
    """One search with `method` until `epoch_budget` epochs are trained (see the module doc).

    `concurrency` trials run at once: a trial's outcome reaches the sampler only after the
    next `concurrency - 1` trials were asked, as in `nas search` with that many side by side
    (the trials' lengths are alike, so they finish in the order they started)."""
    from nas.campaign.budget import get_budget
    from nas.campaign.estimate import mean_epochs
    from nas.errors import SpecError
    from nas.search.scheduler import promote, rung_milestones
    from nas.search.trial import COSTS_KEY, SPEC_KEY, TRIAL_KEY

    max_epochs = standin.epochs
    budget = get_budget("search", "cpu").with_epochs(max_epochs)
    planned = max(1, round(epoch_budget / mean_epochs(budget, early_stopping=method.scheduler is not None)))
    run, points = Run(), []
    searcher = _searcher(method, standin, seed, planned, max_epochs, max_macs, run, references)
    milestones = ([int(m) for m in rung_milestones(grace, max_epochs, rf) if m < max_epochs]
                  if method.scheduler else [])
    rungs: dict[int, list[list[float]]] = {m: [] for m in milestones}
    directions = ["max", "min"] if method.scheduler == "moasha" else ["max"]
    rng = np.random.default_rng([seed, [m.name for m in METHODS].index(method.name)])
    in_flight: list[tuple[str, dict[str, float]]] = []
    while run.epochs < epoch_budget:
        trial_id = str(run.trained)
        try:
            config = searcher.suggest(trial_id)
        except SpecError:  # the real searcher's "too many free samples in a row"
            run.stuck = True
            break
        point = {k: v for k, v in config.items() if k not in (TRIAL_KEY, SPEC_KEY, COSTS_KEY)}
        macs = float(config[COSTS_KEY]["macs"])
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
                points.append((float(standin.mean(point)[-1]), float(curve[-1]), macs))
                break
            column = [float(curve[stop - 1]), macs][:len(directions)]
            rung = [*rungs[stop], column]
            keep = promote(np.array(rung), len(rung) - 1, 1.0 / rf, directions)
            rungs[stop].append(column)
            if not keep:
                run.pruned += 1
                break
        in_flight.append((trial_id, {"val_acc": float(curve[reached - 1]), "macs": macs, "epoch": reached}))
        while len(in_flight) >= concurrency:
            searcher.on_trial_complete(*in_flight.pop(0))
    run.front_points = points
    return run


# ----------------------------------------------------------------------------- the score

@dataclass(frozen=True)
class Score:
    """Hypervolume in (val_acc max, log10 MACs min) from a stated reference point.

    Why log MACs: the space's costs span 15x and efficient-CNN results are read on a log axis
    (a 2M-MAC net that is 1 point better matters as much as a 20M one); why the worst accuracy
    of the space as the reference rather than chance: below it lies a block every method gets
    for free, which only pulls every ratio towards 1."""

    reference_acc: float
    max_macs: float

    def hv(self, points: list[tuple[float, float]]) -> float:
        from nas.pareto import hypervolume

        if not points:
            return 0.0
        values = np.array([[acc, math.log10(macs)] for acc, macs in points])
        return hypervolume(values, ["max", "min"], [self.reference_acc, math.log10(self.max_macs)])

    def describe(self) -> str:
        return (f"HV in val_acc x log10(MACs), reference point (val_acc {self.reference_acc:.4f},"
                f" {self.max_macs / 1e6:g}M MACs)")


def feasible_points(standin: StandIn, max_macs: float) -> list[tuple[float, float]]:
    """(noise-free final val_acc, MACs) of every feasible architecture of the (finite) space."""
    from nas.errors import SpecError
    from nas.search.searcher import architecture_key

    seen, out = set(), []
    try:
        points = list(standin.space.points())
    except SpecError as err:
        raise SystemExit(f"{err}: the oracle needs a finite space") from None
    for raw in points:
        point = standin.space.normalize(raw)
        key = architecture_key(point)
        macs = standin.macs(point)
        if key in seen or macs is None or macs > max_macs:
            continue
        seen.add(key)
        out.append((float(standin.mean(point)[-1]), float(macs)))
    return out


def _mean_std(xs: list[float]) -> str:
    if not xs:
        return "-"
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):.3f} +- {sd:.3f}"


def print_table(scores: dict[str, dict[str, list[float]]], seeds: int, columns: list[str],
                default: str, oracle: float | None = None) -> None:
    from nas.table import format_table

    def cell(s: dict[str, list[float]], c: str) -> str:
        if not s.get(c):
            return "-"
        return _mean_std(s[c]) if c.startswith("HV") else f"{statistics.mean(s[c]):.1f}"

    base = statistics.mean(scores[BASELINE]["HV"]) if scores.get(BASELINE, {}).get("HV") else 0.0
    extra = ["vs random"] + (["gap closed"] if oracle else [])
    rows = []
    for name, s in scores.items():
        mean = statistics.mean(s["HV"]) if s.get("HV") else math.nan
        row = [name + (" (default)" if name == default else ""), *[cell(s, c) for c in columns],
               f"{mean / base:.3f}" if base > 0 else "-"]
        if oracle:
            row.append(f"{(mean - base) / (oracle - base):+.0%}" if oracle > base else "-")
        rows.append(row)
    print(format_table(["method", *columns, *extra], rows, align="l" + "r" * (len(columns) + len(extra))))
    ours = statistics.mean(scores[default]["HV"]) if scores.get(default, {}).get("HV") else math.nan
    ratio = ours / base if base > 0 else math.nan
    print(f"hv_ratio_vs_random={ratio:.3f} seeds={seeds}")


_SHARED: dict[str, Any] = {}  # the stand-in, inherited by forked workers (not pickled per task)


def _one(task: tuple[str, int, dict[str, Any]]) -> tuple[str, int, Run]:
    import torch

    torch.set_num_threads(1)  # one core per worker: Optuna's GP fits in torch
    name, seed, kw = task
    method = next(m for m in METHODS if m.name == name)
    return name, seed, simulate(method, _SHARED["standin"], seed, **kw)


def _simulate_all(methods: list[Method], standin: StandIn, seeds: int, workers: int,
                  **kw: Any) -> dict[tuple[str, int], Run]:
    """Every method x seed, `workers` at a time (forked processes), slowest methods first."""
    import multiprocessing

    slow = ("gp", "ehvi")  # their asks fit a GP: start them first so the pool ends together
    order = sorted(methods, key=lambda m: m.sampler not in slow)
    tasks = [(m.name, seed, kw) for m in order for seed in range(seeds)]
    _SHARED["standin"] = standin
    done: dict[tuple[str, int], Run] = {}
    left = {m.name: seeds for m in methods}
    if workers <= 1:
        results = map(_one, tasks)
        for name, seed, run in results:
            done[name, seed] = run
    else:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for name, seed, run in pool.imap_unordered(_one, tasks):
                done[name, seed] = run
                left[name] -= 1
                if not left[name]:
                    print(f"  {name}: {seeds} seeds done", flush=True)
    return done


def stand_in(args: argparse.Namespace) -> None:
    from nas.campaign.budget import get_budget
    from nas.space import load_space

    budget = get_budget("search", "cpu")
    max_macs = args.max_macs or budget.default_max_macs
    space = load_space(SPACE)
    from nas.campaign.estimate import mean_epochs

    standin = StandIn(space, read_curves(Path(args.curves), args.curves_budget, args.curves_epochs))
    trials = 12 if args.quick else 50  # what the default `nas search --trials 50` spends
    epoch_budget = args.epochs or round(trials * mean_epochs(budget.with_epochs(standin.epochs),
                                                              early_stopping=budget.early_stopping))
    default = default_method()
    methods = [m for m in METHODS if m.name in args.methods] if args.methods else list(METHODS)
    everything = feasible_points(standin, max_macs)
    score = Score(min(acc for acc, _ in everything), max_macs)
    oracle = score.hv(everything)
    print(f"stand-in from {args.curves} (budget {args.curves_budget!r}): {standin.describe()}")
    print(f"{len(methods)} methods x {args.seeds} seeds, {epoch_budget} epochs each, max"
          f" {standin.epochs} a trial, rungs from {budget.grace_epochs} x {budget.reduction_factor}^k,"
          f" <= {max_macs / 1e6:g}M MACs; {score.describe()}: the worst of the space's"
          f" {len(everything)} feasible archs; their front (the oracle) has HV {oracle:.4f};"
          f" {'no reference nets' if args.no_references else 'the reference nets first, as nas search does'};"
          f" {args.concurrency} trial(s) at once",
          flush=True)
    scores: dict[str, dict[str, list[float]]] = {}
    runs = _simulate_all(methods, standin, args.seeds, args.workers, epoch_budget=epoch_budget,
                         grace=budget.grace_epochs, rf=budget.reduction_factor, max_macs=max_macs,
                         references=not args.no_references, concurrency=args.concurrency)
    for m in methods:
        s = scores.setdefault(m.name, {})
        for seed in range(args.seeds):
            run = runs[m.name, seed]
            s.setdefault("HV", []).append(score.hv([(t, c) for t, _, c in run.front_points]))
            s.setdefault("HV obs", []).append(score.hv([(o, c) for _, o, c in run.front_points]))
            for col, v in (("trained", run.trained), ("full", run.completed), ("epochs", run.epochs),
                           ("infeasible", run.infeasible), ("duplicates", run.duplicates),
                           ("stuck", int(run.stuck))):
                s.setdefault(col, []).append(v)
    print(f"HV: the noise-free val_acc of the archs each search trained to the full budget; `HV obs`:"
          f" what it saw; `gap closed`: of the way from random's HV to the oracle's")
    print_table(scores, args.seeds, ["HV", "HV obs", "trained", "full", "epochs", "infeasible",
                                     "duplicates", "stuck"], default, oracle)


# ----------------------------------------------------------------------------- --real

def _trained(table: Path) -> int:
    """Trials a search's trials.csv says were trained (0 if there is none yet)."""
    if not table.exists():
        return 0
    with open(table, newline="") as f:
        return sum(row["status"] in ("COMPLETED", "PRUNED", "FAILED") for row in csv.DictReader(f))


def real(args: argparse.Namespace) -> None:
    """`nas search` for real at the cpu budget, each seed: the default and random without
    early stopping on the same epochs; the table from their trials.csv."""
    import pandas as pd

    from nas.campaign.budget import get_budget
    from nas.campaign.estimate import mean_epochs

    budget = get_budget("search", "cpu")
    max_macs = args.max_macs or budget.default_max_macs
    out = Path(args.output_dir)
    random_trials = max(1, round(args.trials * mean_epochs(budget, early_stopping=budget.early_stopping)
                                 / budget.epochs))
    words = [f"data.root={args.data_root}"] if args.data_root else []
    default = default_method()
    # random first: the default's wall time is then the one a quiet machine gives
    runs = [(BASELINE, ["--sampler", "random", "--no-asha", "--trials", str(random_trials)]),
            (default, ["--trials", str(args.trials)])]
    done: dict[str, Any] = {}
    missing: set[int] = set()
    for seed in range(args.seeds):
        for label, extra in runs:
            name = f"quality-{label.replace('+', '-')}-s{seed}"
            table = out / name / "trials.csv"
            if not args.no_run and _trained(table) < int(extra[extra.index("--trials") + 1]):
                cmd = [sys.executable, "-c", "import sys; from nas.cli import main; sys.exit(main())",
                       "search", "--space", SPACE, "--budget", "cpu", "--seed", str(seed), "--name", name,
                       "--output-dir", str(out), *extra, *words, *args.overrides]
                if (out / name).exists():
                    cmd.append("--resume")
                print("  $ nas " + " ".join(cmd[3:]), flush=True)
                subprocess.run(cmd, check=True)
            if not table.exists():  # --no-run: a search not run yet leaves its seed out
                print(f"  {name}: no trials.csv in {out / name}; seed {seed} left out")
                missing.add(seed)
                continue
            trials = pd.read_csv(table)
            if args.first:  # equal compute when a search was cut short: its first N trained trials
                trained = trials[trials["status"].isin(["COMPLETED", "PRUNED", "FAILED"])]
                trials = trials[trials["trial"] <= trained["trial"].iloc[:args.first].max()]
            done.setdefault(label, {})[seed] = trials
    kept = [seed for seed in range(args.seeds) if seed not in missing]
    done = {label: [by_seed[seed] for seed in kept] for label, by_seed in done.items()}
    completed = [t[t["status"] == "COMPLETED"] for tables in done.values() for t in tables]
    score = Score(min(float(t["val_acc"].min()) for t in completed if len(t)), max_macs)
    scores: dict[str, dict[str, list[float]]] = {}
    for label, tables in done.items():
        s = scores.setdefault(label, {})
        for trials in tables:
            full = trials[trials["status"] == "COMPLETED"]
            s.setdefault("HV", []).append(score.hv(list(zip(full["val_acc"], full["macs"]))))
            free = trials["status"].isin(["INFEASIBLE", "DUPLICATE"])
            s.setdefault("trained", []).append(int((~free).sum()))
            s.setdefault("full", []).append(len(full))
    counted = f"the first {args.first} trained trials of each" if args.first else "every trial"
    print(f"real searches at the cpu budget ({args.trials} default trials, {random_trials} random"
          f" ones; {counted}); observed val_acc; {score.describe()}: the worst completed trial of"
          f" them all")
    if BASELINE in scores and default in scores:
        ratios = [f"s{seed} {ours / theirs:.3f}" for seed, ours, theirs
                  in zip(kept, scores[default]["HV"], scores[BASELINE]["HV"]) if theirs > 0]
        print(f"{default} over random per seed: {', '.join(ratios)}")
    print_table(scores, len(kept), ["HV", "trained", "full"], default)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--stand-in", action="store_true", help="simulated searches on the curves table")
    mode.add_argument("--real", action="store_true", help="real `nas search` runs (cpu budget)")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--curves", default=str(CURVES), help="curves table (fidelity.py --export-curves)")
    parser.add_argument("--curves-budget", default="cpu",
                        help="the table's budget the stand-in is fitted to (default: cpu, the"
                             " trials real searches trained at it; reference with --curves-epochs 2:"
                             " the fidelity study's 15,000 x 4 runs cut at epoch 2)")
    parser.add_argument("--curves-epochs", type=int, default=0,
                        help="cut the table's curves after this epoch (0: keep them whole)")
    parser.add_argument("--epochs", type=int,
                        help="compute per search, epochs summed (default: what 50 trials with early"
                             " stopping spend, 100 on 4-epoch curves; --quick: 12 trials' worth)")
    parser.add_argument("--methods", nargs="+", choices=[m.name for m in METHODS],
                        help="default: all of them")
    parser.add_argument("--max-macs", type=float, help="default: the cpu budget's (25e6)")
    parser.add_argument("--quick", action="store_true", help="small compute per search (CI)")
    parser.add_argument("--concurrency", type=int, default=2,
                        help="--stand-in: trials at once, the sampler told each outcome that much"
                             " later (default 2: what `nas search` runs on a 2-core machine)")
    parser.add_argument("--no-references", action="store_true",
                        help="--stand-in: do not queue the space's reference nets first (every"
                             " method gets them by default, as `nas search` does)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="--stand-in: simulations at once (default: every core)")
    parser.add_argument("--trials", type=int, default=50, help="--real: trials of the default search")
    parser.add_argument("--data-root", default=os.environ.get("NAS_DATA"), help="--real: CIFAR-10 folder")
    parser.add_argument("--output-dir", default="searches", help="--real: where the searches go")
    parser.add_argument("--first", type=int,
                        help="--real: score the first N trained trials of each search (equal"
                             " compute when one was cut short)")
    parser.add_argument("--no-run", action="store_true",
                        help="--real: score the searches already in --output-dir, run none")
    parser.add_argument("overrides", nargs="*", help="--real: more `nas search` key=value words")
    args = parser.parse_args(argv)
    if args.stand_in:
        stand_in(args)
    else:
        real(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
