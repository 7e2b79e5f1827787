"""How well `nas.campaign.time_model` predicts a training's seconds, against MACs-only scaling.

Data: every measured training with its seconds in `benchmarks/results/` (16 ShuffleNet archs of
the `shufflenet` space, 1 thread each, 2 side by side, this project's 2-core CPU machine):
`fidelity.csv` (15,000 x 2 and 30,000 x 5, 2,000 validation images per epoch),
`fidelity_3000x4_15000x4/fidelity.csv` (3,000 x 4 with 500, 15,000 x 4 with 2,000) and the two
candidate budgets' curves (10,000 x 3 and 30,000 x 1). Each study ran on other days, under other
loads, so each is checked on its own: leave one training out, fit on the rest (the time model:
`TimeModel.refit` from a flat MACs-only prior; MACs-only: one rate, fitted the same way), and
report the relative error of the left-out one's seconds; then a fresh search (below). `benchmarks/results/search_50/trials.csv`
holds no seconds (its trials' `train_s` are in the MLflow store it ran with), so it cannot be
checked here.

    python benchmarks/time_model_check.py              # the leave-one-out table
    python benchmarks/time_model_check.py --fit-prior  # the REFERENCE shape, from all studies
    python benchmarks/time_model_check.py --replay 10  # ehvi's LATER_DRIFT on the stand-in (minutes)

Measured (2026-12-07; no training, the numbers are the committed results'): leave one out,
mean |relative error| of the left-out training's seconds, time model (refitted from a MACs-only
prior) vs MACs-only: 15,000 x 2 + 30,000 x 5: 0.22 vs 0.31; 3,000 x 4 + 15,000 x 4: 0.17 vs
0.25; 10,000 x 3: 0.19 vs 0.28; 30,000 x 1: 0.17 vs 0.25. A fresh search (the reference shape
fitted to the other studies, scaled on one net of this one, as `calibrated` does with a
measured rate): 0.24 before any trial, 0.17 / 0.16 / 0.15 refitted on 2 / 5 / 10 of its
trainings, against 0.42 for MACs-only scaled on the same net. `--replay 10`: ehvi's trials
after its random start 206.2 s, uniform candidates 171.3 s: 1.20x (nas.search.expected's
LATER_DRIFT; before the seconds entered its acquisition, 255.9 s: 1.49x).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

import nas
from nas.campaign.time_model import FEATURES, REFERENCE, Schedule, TimeModel, Work
from nas.space import load_space

RESULTS = Path(__file__).resolve().parent / "results"
BATCH = 128


def _cost(space, choices: str):
    return nas.count(space.to_spec(json.loads(choices), resolution=32, num_classes=10)).cost


def trainings() -> list[tuple[str, Work, float]]:
    """(study, work, seconds) of every measured training."""
    space = load_space("shufflenet")
    out = []
    for study, path, budgets in (
            ("15000x2+30000x5", RESULTS / "fidelity.csv", ((15000, 2000, 2), (30000, 2000, 5))),
            ("3000x4+15000x4", RESULTS / "fidelity_3000x4_15000x4" / "fidelity.csv",
             ((3000, 500, 4), (15000, 2000, 4)))):
        for _, row in pd.read_csv(path).iterrows():
            cost = _cost(space, row.choices)
            for (train, val, epochs), column in zip(budgets, ("search_cpu_s", "reference_cpu_s")):
                out.append((study, Work(cost, Schedule(train, val, BATCH), epochs), float(row[column])))
    choices = pd.read_csv(RESULTS / "fidelity.csv").set_index("arch").choices
    for name in ("candidate_10000x3", "candidate_30000x1"):
        curves = pd.read_csv(RESULTS / name / "fidelity_curves.csv")
        for arch, rows in curves.groupby("arch"):
            schedule = Schedule(int(rows.train_images.iloc[0]), int(rows.val_images.iloc[0]), BATCH)
            out.append((name, Work(_cost(space, choices[arch]), schedule, len(rows)),
                        float(rows.epoch_cpu_s.sum())))
    return out


MACS_ONLY = (1e-9, 1e-9, 1e-9, 0.0, 0.0)  # one rate per MAC, whatever the conv: the old estimate


def _loo(data: list[tuple[Work, float]], prior: tuple[float, ...]) -> np.ndarray:
    errors = []
    for i, (work, seconds) in enumerate(data):
        model = TimeModel(prior, prior).refit(data[:i] + data[i + 1:])
        errors.append(abs(model.seconds(work) / seconds - 1))
    return np.array(errors)


def _macs_only_loo(data: list[tuple[Work, float]]) -> np.ndarray:
    """One rate, least squares in relative error, fitted without the left-out one."""
    x = np.array([w.images * w.cost.macs for w, _ in data])
    y = np.array([s for _, s in data])
    errors = []
    for i in range(len(data)):
        keep = np.arange(len(data)) != i
        rate = (x[keep] / y[keep]).sum() / ((x[keep] / y[keep]) ** 2).sum()
        errors.append(abs(rate * x[i] / y[i] - 1))
    return np.array(errors)


def fit_prior(rows: list[tuple[str, Work, float]]) -> tuple[float, ...]:
    """One shape for every study, each study with its own scale (their loads differed)."""
    studies = sorted({s for s, _, _ in rows})
    scale = {s: 1.0 for s in studies}
    model = TimeModel(REFERENCE, REFERENCE)
    for _ in range(20):
        data = [(w, sec / scale[s]) for s, w, sec in rows]
        model = TimeModel(model.coefficients, model.coefficients).refit(data * 50)  # data-dominated
        for s in studies:
            ratios = [sec / model.seconds(w) for st, w, sec in rows if st == s]
            scale[s] = float(np.exp(np.mean(np.log(ratios))))
    norm = float(np.exp(np.mean(np.log(list(scale.values())))))
    return tuple(c * norm for c in model.coefficients)


def fresh_search(rows: list[tuple[str, Work, float]], trials=(0, 2, 5, 10), repeats: int = 20) -> dict:
    """A search on a machine the prior never saw: the shape fitted to the OTHER studies, scaled
    on one net of this study (as `TimeModel.calibrated` on a measured rate), refitted on `n` of
    its trainings, scored on the rest; MACs-only scaled on the same net. Mean |relative error|."""
    rng = np.random.default_rng(0)
    errors: dict = {n: [] for n in trials} | {"macs-only": []}
    for study in sorted({s for s, _, _ in rows}):
        shape = fit_prior([r for r in rows if r[0] != study])
        data = [(w, sec) for s, w, sec in rows if s == study]
        for _ in range(repeats):
            order = rng.permutation(len(data))
            typical, typical_s = data[order[0]]
            prior = tuple(c * typical_s / TimeModel(shape, shape).seconds(typical) for c in shape)
            for n in trials:
                model = TimeModel(prior, prior).refit([data[i] for i in order[1:1 + n]])
                errors[n] += [abs(model.seconds(w) / sec - 1) for w, sec in (data[i] for i in order[1 + n:])]
            rate = typical_s / (typical.images * typical.cost.macs)
            errors["macs-only"] += [abs(rate * w.images * w.cost.macs / sec - 1)
                                    for w, sec in (data[i] for i in order[1:])]
    return {k: float(np.mean(v)) for k, v in errors.items()}


def replay_drift(seeds: int, trials: int = 50, concurrency: int = 2) -> tuple[float, float]:
    """The default sampler (ehvi) on the stand-in (search_quality.py's replay, the references
    first): the mean seconds (reference shape, the cpu budget) of its trials after the random
    start, and of uniform feasible candidates (nas.search.expected's LATER_DRIFT is the ratio)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import search_quality as sq  # noqa: E402
    import stand_in  # noqa: E402

    standin = stand_in.StandIn(load_space("shufflenet"), stand_in.read_curves(stand_in.CURVES, "cpu", 0))
    ehvi, model, start = next(m for m in sq.METHODS if m.name == "ehvi"), TimeModel(), 13
    seconds = lambda key: model.seconds(Work(_cost(standin.space, key), Schedule(15000, 2000, BATCH), 2))  # noqa: E731
    later = []
    for seed in range(seeds):
        run = sq.simulate(ehvi, stand_in.StandInOutcomes(standin), seed, limit=2 * trials, max_macs=25e6,
                          queued=list(standin.space.references), concurrency=concurrency)
        later += [seconds(t.key) for t in run.trials[start:trials]]
    pool = [seconds(json.dumps(point)) for point in _uniform_points(standin.space, 200)]
    return float(np.mean(later)), float(np.mean(pool))


def _uniform_points(space, n: int) -> list[dict]:
    from nas.errors import NasError
    from nas.space import RandomChooser

    out = []
    for seed in range(4 * n):
        try:
            point = space.sample(RandomChooser(seed))
            if nas.count(space.to_spec(point, resolution=32, num_classes=10)).macs <= 25e6:
                out.append(point)
        except NasError:
            continue
        if len(out) == n:
            break
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fit-prior", action="store_true", help="print the REFERENCE shape")
    parser.add_argument("--replay", type=int, metavar="SEEDS", help="the sampler's LATER_DRIFT on the stand-in")
    args = parser.parse_args(argv)
    if args.replay:
        later, pool = replay_drift(args.replay)
        print(f"ehvi's trials after its random start: {later:.1f} s mean, uniform candidates {pool:.1f} s:"
              f" drift {later / pool:.2f}x")
        return 0
    rows = trainings()
    if args.fit_prior:
        shape = fit_prior(rows)
        print("REFERENCE = (" + ", ".join(f"{c:.1e}" for c in shape) + ")  # " + ", ".join(FEATURES))
        return 0
    print("leave one out, |relative error| of the left-out training's seconds, mean / median / max")
    print(f"{'study':18s} {'n':>3s}  {'time model':22s} MACs-only")
    for study in sorted({s for s, _, _ in rows}):
        data = [(w, sec) for s, w, sec in rows if s == study]
        tm, mo = _loo(data, MACS_ONLY), _macs_only_loo(data)
        print(f"{study:18s} {len(data):3d}  {tm.mean():.3f} / {np.median(tm):.3f} / {tm.max():.3f}"
              f"    {mo.mean():.3f} / {np.median(mo):.3f} / {mo.max():.3f}")
    fresh = fresh_search(rows)
    print("a fresh search (shape from the other studies, scaled on one net, refitted on n trainings):"
          " mean |relative error| " + ", ".join(f"n={k} {v:.3f}" if k != "macs-only" else f"MACs-only {v:.3f}"
                                                for k, v in fresh.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
