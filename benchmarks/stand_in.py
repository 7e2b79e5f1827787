"""The stand-in objective of `benchmarks/search_quality.py --stand-in`: a fast plumbing test.

It draws val_acc curves for any point of the `shufflenet` space from a ridge regression over the
choices and log MACs fitted to real learning curves (`benchmarks/data/shufflenet_curves.csv`),
plus AR(1) gaussian trial noise. Its truth is a linear model of the same features `ehvi`'s
surrogate uses, so it shows that the searches run, not which one is better: that is the table
replay's job (`search_quality.py --table`, issue 31).
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
CURVES = HERE / "data" / "shufflenet_curves.csv"
RIDGE_GRID = tuple(10.0 ** k for k in np.arange(-3, 3.01, 0.5))


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


# ----------------------------------------------------------------------------- the run

class StandInOutcomes:
    """The stand-in as `simulate`'s outcomes: any point of the space, a noisy curve each time,
    worth its noise-free final val_acc, one clock unit an epoch."""

    def __init__(self, standin: StandIn):
        self.standin, self.space, self.epochs = standin, standin.space, standin.epochs

    def to_spec(self, point: dict[str, Any]) -> Any:
        return self.space.to_spec(point, resolution=self.standin.resolution,
                                  num_classes=self.standin.num_classes)

    def observe(self, point: dict[str, Any], rng: np.random.Generator) -> Any:
        from search_quality import Observation
        from space_table import arch_key

        return Observation(arch_key(self.space.normalize(point)), self.standin.draw(point, rng),
                           float(self.standin.mean(point)[-1]), [1.0] * self.epochs)


def run(args: Any) -> None:
    """`search_quality.py --stand-in`: every method on the stand-in, scored by HV in val_acc."""
    from nas.campaign.budget import get_budget
    from nas.campaign.estimate import mean_epochs
    from nas.space import load_space
    from nas.table import format_table
    from search_quality import BASELINE, METHODS, SPACE, Clock, Score, default_method, simulate_all

    budget = get_budget("search", "cpu")
    max_macs = args.max_macs or budget.default_max_macs
    standin = StandIn(load_space(SPACE), read_curves(Path(args.curves), args.curves_budget, args.curves_epochs))
    trials = 12 if args.quick else 50  # what the default `nas search --trials 50` spends
    epoch_budget = args.epochs or round(trials * mean_epochs(budget.with_epochs(standin.epochs),
                                                              early_stopping=budget.early_stopping))
    default = default_method()
    methods = [m for m in METHODS if m.name in args.methods] if args.methods else list(METHODS)
    everything = feasible_points(standin, max_macs)
    score = Score(min(acc for acc, _ in everything), max_macs)
    oracle = score.hv(everything)
    print(f"PLUMBING TEST, not evidence (see --table): stand-in from {args.curves} (budget"
          f" {args.curves_budget!r}): {standin.describe()}")
    print(f"{len(methods)} methods x {args.seeds} seeds, {epoch_budget} epochs each, {score.describe()}:"
          f" the worst of the space's {len(everything)} feasible archs; the oracle's HV {oracle:.4f}",
          flush=True)
    queued = [] if args.no_references else list(standin.space.references)
    runs = simulate_all(methods, lambda method, seed: StandInOutcomes(standin), lambda seed: queued, args.seeds,
                        args.workers, limit=epoch_budget, grace=budget.grace_epochs,
                        rf=budget.reduction_factor, max_macs=max_macs, concurrency=args.concurrency)
    clock = Clock("cost", epoch_budget)
    base = statistics.mean(score.front(runs[BASELINE, s].at(clock).front_points) for s in range(args.seeds)) \
        if BASELINE in [m.name for m in methods] else math.nan
    rows, ours = [], math.nan
    for m in methods:
        spent = [runs[m.name, s].at(clock) for s in range(args.seeds)]
        hv = [score.front(x.front_points) for x in spent]
        ours = statistics.mean(hv) if m.name == default else ours
        rows.append([m.name + (" (default)" if m.name == default else ""), _mean_std(hv),
                     f"{statistics.mean(x.completed for x in spent):.1f}",
                     f"{statistics.mean(hv) / base:.3f}" if base > 0 else "-",
                     f"{(statistics.mean(hv) - base) / (oracle - base):+.0%}" if oracle > base else "-"])
    print(format_table(["method", "HV", "full", "vs random", "gap to oracle closed"], rows, align="lrrrr"))
    print(f"hv_ratio_vs_random={ours / base if base > 0 else math.nan:.3f} seeds={args.seeds}")
