"""`search_quality.py --table`: searches replayed on a measured table of the space (issue 31).

The table (`space_table.py`) holds architectures trained with two seeds. A search at seed s sees
seed A = s mod 2 (its val_acc curve, its seconds per epoch) and is scored on seed B = 1 - A (its
test_acc): selection noise on A's validation images is not rewarded on B. See search_quality.py's
docstring for the clocks and the score.
"""

from __future__ import annotations

import argparse
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import space_table
from search_quality import (BASELINE, METHODS, Clock, Method, Observation, Score, default_method,
                            simulate_all)
from space_table import Measured, arch_key

CANDIDATE_SAMPLERS = ("random", "ehvi")  # take the table as their candidate set; others: nearest
STARTUP = 10  # random table archs every method starts with, per seed (the samplers' own start-up)
# what --table runs by default: the samplers, and MO-ASHA (a rung at epoch 1) with the default's and
# random's. Optuna's GP sampler (`--methods gp`) is left out for time: about 30 CPU-seconds a search
# of 50 trials, 25 CPU-minutes more at 50 seeds
TABLE_METHODS = ("random", "ehvi", "tpe", "nsga2", "ehvi+moasha", "random+moasha")
LOW_REFERENCE = 0.1  # the second reference accuracy (chance on CIFAR-10)


def seen_and_scored(seed: int) -> tuple[int, int]:
    """The training seed a search sees and the one its front is scored on."""
    a, b = space_table.SEEDS
    return (a, b) if seed % 2 == 0 else (b, a)


class TableOutcomes:
    """The table as `search_quality.simulate`'s outcomes. `mapped`: a feasible point off the
    table is trained as its nearest table architecture (L1 over the choices, each scaled to
    [0, 1] by its rank among the options; ties to the closer log MACs); else it is not a
    candidate (SpecError: a free sample, drawn again)."""

    def __init__(self, archs: list[Measured], space: Any, seed: int, *, mapped: bool,
                 max_macs: float = 25e6):
        self.space, self.mapped, self.max_macs = space, mapped, max_macs
        self.seen, self.scored = seen_and_scored(seed)
        self.archs = {arch_key(m.choices): m for m in archs}
        self.keys = list(self.archs)
        self.epochs = min(len(m.val_curve[s]) for m in archs for s in (self.seen, self.scored))
        self._features = np.array([self._encode(m.choices) for m in archs])
        self._log_macs = np.log10([m.macs for m in archs])
        self._specs: dict[str, Any] = {}
        self._mapped: dict[str, str | None] = {}  # an off-table point's key -> its table arch

    def _encode(self, point: dict[str, Any]) -> list[float]:
        from nas.space import same

        out = []
        for c in self.space.choices:
            value = point.get(c.label)
            if c.kind == "categorical":
                rank = next(i for i, o in enumerate(c.options) if same(o, value))
                out.append(rank / max(len(c.options) - 1, 1))
            else:
                out.append((float(value) - c.low) / ((c.high - c.low) or 1.0))
        return out

    def _spec(self, key: str) -> Any:
        if key not in self._specs:
            self._specs[key] = self.space.to_spec(self.archs[key].choices, resolution=32, num_classes=10)
        return self._specs[key]

    def nearest(self, point: dict[str, Any], macs: float | None = None) -> str:
        """The table architecture closest to `point`."""
        distance = np.abs(self._features - np.array(self._encode(point))).sum(1)
        if macs:
            distance = distance + 1e-3 * np.abs(self._log_macs - math.log10(macs))
        return self.keys[int(np.argmin(distance))]

    def resolve(self, point: dict[str, Any]) -> str | None:
        """The table architecture a point trains as: itself, or (mapped) the nearest one to a
        feasible point; None when it is off the table and not mapped, invalid or over the limit."""
        from nas.counting import count
        from nas.errors import SpecError

        key = arch_key(self.space.normalize(point))
        if key in self.archs or not self.mapped:
            return key if key in self.archs else None
        if key not in self._mapped:
            try:
                macs = count(self.space.to_spec(point, resolution=32, num_classes=10)).macs
            except SpecError:
                macs = None
            self._mapped[key] = self.nearest(point, macs) if macs and macs <= self.max_macs else None
        return self._mapped[key]

    def to_spec(self, point: dict[str, Any]) -> Any:
        from nas.errors import SpecError

        key = self.resolve(point)
        if key is not None:
            return self._spec(key)
        if not self.mapped:
            raise SpecError("not an architecture of the table")
        # invalid (SpecError) or over the MAC limit (the searcher rejects it), as in nas search
        return self.space.to_spec(point, resolution=32, num_classes=10)

    def observe(self, point: dict[str, Any], rng: np.random.Generator) -> Observation:
        key = self.resolve(point)
        m = self.archs[key]
        return Observation(key, np.array(m.val_curve[self.seen][:self.epochs]), m.test_acc[self.scored],
                           list(m.epoch_s[self.seen][:self.epochs]))


def startup(archs: list[Measured], space: Any, seed: int, n: int = STARTUP) -> list[tuple[str | None, dict]]:
    """The space's references, then `n` random table architectures: every method's first asks
    at this seed (references over the MAC limit are free samples, as in nas search)."""
    from nas.space import option_key

    refs = {arch_key(space.normalize(p)) for _, p in space.references}
    others = [m for m in archs if arch_key(m.choices) not in refs]
    rng = np.random.default_rng([31, seed])
    picked = rng.choice(len(others), size=min(n, len(others)), replace=False)
    stored = lambda p: {k: option_key(v) for k, v in p.items()}  # noqa: E731
    return [*space.references, *((None, stored(others[i].choices)) for i in picked)]


def seconds_per_trial(archs: list[Measured]) -> float:
    """What a random trial of the table costs on average: training seconds, both seeds."""
    return statistics.mean(sum(m.epoch_s[s]) for m in archs for s in space_table.SEEDS)


def paired_ratio(ours: list[float], base: list[float]) -> tuple[float, float, float]:
    """mean(ours) / mean(base) over paired seeds, with a 95% percentile-bootstrap interval
    (seeds resampled together; `fidelity.bootstrap_ci95`)."""
    fidelity = space_table._rank_stats()
    ratio = lambda idx: (sum(ours[i] for i in idx) / sum(base[i] for i in idx)  # noqa: E731
                         if sum(base[i] for i in idx) > 0 else math.nan)
    lo, hi = fidelity.bootstrap_ci95(ratio, len(ours))
    return ratio(range(len(ours))), lo, hi


@dataclass(frozen=True)
class Scored:
    method: str
    clock: Clock
    reference: str
    hv: list[float]  # per seed


def _score_all(runs: dict, methods: list[Method], clocks: list[Clock], scores: dict[str, Score],
               seeds: int) -> list[Scored]:
    out = []
    for ref_name, score in scores.items():
        for clock in clocks:
            for m in methods:
                hv = [score.front(runs[m.name, s].at(clock).front_points) for s in range(seeds)]
                out.append(Scored(m.name, clock, ref_name, hv))
    return out


def _print(scored: list[Scored], runs: dict, default: str, seeds: int) -> dict[tuple[str, Clock], tuple]:
    """One table per reference point and clock; the default's (ratio, lo, hi) per both."""
    from nas.table import format_table

    ours: dict[tuple[str, Clock], tuple] = {}
    for ref_name in dict.fromkeys(s.reference for s in scored):
        for clock in dict.fromkeys(s.clock for s in scored):
            cell = {s.method: s for s in scored if s.reference == ref_name and s.clock == clock}
            base = cell[BASELINE].hv
            rows = []
            for name, s in cell.items():
                ratio, lo, hi = paired_ratio(s.hv, base)
                spent = [runs[name, k].at(clock) for k in range(seeds)]
                rows.append([name + (" (default)" if name == default else ""),
                             f"{statistics.mean(s.hv):.4f} +- {statistics.stdev(s.hv) if seeds > 1 else 0:.4f}",
                             f"{ratio:.3f}", f"[{lo:.3f}, {hi:.3f}]",
                             f"{statistics.mean(x.trained for x in spent):.1f}",
                             f"{statistics.mean(x.duplicates for x in spent):.1f}"])
                if name == default:
                    ours[ref_name, clock] = (ratio, lo, hi)
            print(f"\nclock {clock.label}; reference {ref_name}")
            print(format_table(["method", "HV (mean +- sd)", "vs random", "95% interval", "trained",
                                "dupl."], rows, align="lrrrrr"))
    return ours


def replay(args: argparse.Namespace) -> None:
    from nas.campaign.budget import get_budget
    from nas.space import load_space

    path = Path(args.table) if args.table else space_table.TABLE
    archs, space = space_table.load_table(path), load_space(space_table.SPACE)
    max_macs = args.max_macs or get_budget("search", "cpu").default_max_macs
    trials = sorted(int(t) for t in str(args.trials).split(","))
    per_trial = seconds_per_trial(archs)
    clocks = [Clock("trials", t, f"{t} trials") for t in trials] + \
             [Clock("cost", t * per_trial, f"{t * per_trial:.0f} s (random's {t} trials)") for t in trials]
    default = default_method()
    names = {*(args.methods or TABLE_METHODS), BASELINE, default}  # the ratio's two sides always run
    methods = [m for m in METHODS if m.name in names]
    worst = min(min(m.test_acc.values()) for m in archs)
    scores = {f"({worst:.4f}, {max_macs / 1e6:g}M MACs): the table's worst test_acc": Score(worst, max_macs),
              f"({LOW_REFERENCE}, {max_macs / 1e6:g}M MACs)": Score(LOW_REFERENCE, max_macs)}
    mapped = [m.name for m in methods if m.sampler not in CANDIDATE_SAMPLERS]
    print(f"replay on {path}: {len(archs)} architectures x seeds {space_table.SEEDS}; a search at seed s"
          f" sees seed s mod 2's val_acc and training seconds, its front is scored on the other seed's"
          f" test_acc; HV in test_acc x log10 MACs")
    print(f"  restricted to the table: {', '.join(m.name for m in methods if m.name not in mapped)} by"
          f" candidate set; {', '.join(mapped) or 'none'}: each proposal MAPPED to the nearest table"
          f" architecture (a repeat of a trained one is a free duplicate)")
    print(f"  every search starts with the references and the same {STARTUP} random table archs per"
          f" seed; {args.seeds} paired seeds, {args.concurrency} trial(s) at once; clocks: equal trials"
          f" and equal training seconds ({per_trial:.1f} s a trial of the table on average)", flush=True)
    outcomes = lambda method, seed: TableOutcomes(  # noqa: E731
        archs, space, seed, mapped=method.sampler not in CANDIDATE_SAMPLERS, max_macs=max_macs)
    runs = simulate_all(methods, outcomes,
                        lambda seed: startup(archs, space, seed), args.seeds, args.workers,
                        limit=max(c.amount for c in clocks if c.kind == "cost"), min_trials=max(trials),
                        max_macs=max_macs, concurrency=args.concurrency)
    whole = [Score(worst, max_macs).front([(m.test_acc[b], m.val_curve[a][-1], m.macs) for m in archs])
             for a, b in (seen_and_scored(0), seen_and_scored(1))]
    best = [Score(worst, max_macs).hv([(m.test_acc[b], m.macs) for m in archs]) for _, b in
            (seen_and_scored(0), seen_and_scored(1))]
    print(f"  for scale (worst-of-table reference): the front chosen on one seed's val_acc over the whole"
          f" table, scored on the other's test_acc, HV {whole[0]:.4f} / {whole[1]:.4f}; the table's own"
          f" test_acc front {best[0]:.4f} / {best[1]:.4f} (seen seed 0 / 1)")
    ours = _print(_score_all(runs, methods, clocks, scores, args.seeds), runs, default, args.seeds)
    ratio, lo, hi = ours.get((next(iter(scores)), clocks[-1]), (math.nan,) * 3)
    print(f"hv_ratio_vs_random={ratio:.3f} ci95=[{lo:.3f},{hi:.3f}] seeds={args.seeds} clock=seconds")
