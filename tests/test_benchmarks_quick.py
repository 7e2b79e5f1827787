"""The fidelity and search-quality benchmarks (issue 14) in their quick modes, and the rank
statistics they report, against hand-made rankings with known values."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it runs
    spec.loader.exec_module(module)
    return module


fidelity = _load("fidelity")
search_quality = _load("search_quality")
search_throughput = _load("search_throughput")


# ----------------------------------------------------------------------------- tau and rho

def test_perfect_and_reversed_rankings():
    x = [1, 2, 3, 4, 5]
    assert fidelity.kendall_tau_b(x, [10, 20, 30, 40, 50]) == 1.0
    assert fidelity.spearman_rho(x, [0.1, 0.2, 0.3, 0.4, 0.9]) == pytest.approx(1.0)
    assert fidelity.kendall_tau_b(x, x[::-1]) == -1.0
    assert fidelity.spearman_rho(x, x[::-1]) == pytest.approx(-1.0)


def test_one_swap():
    # 4 values, one adjacent pair swapped: 5 concordant, 1 discordant of 6 -> tau 4/6;
    # rank differences (0, 0, 1, 1): rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert fidelity.kendall_tau_b([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(4 / 6)
    assert fidelity.spearman_rho([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(0.8)


def test_ties():
    # x = [1, 2, 2, 3], y = [1, 2, 3, 4]: 5 concordant, 0 discordant, one pair tied in x only:
    # tau-b = 5 / sqrt(5 * 6); ranks of x (1, 2.5, 2.5, 4): rho = 4.5 / sqrt(4.5 * 5)
    x, y = [1, 2, 2, 3], [1, 2, 3, 4]
    assert fidelity.kendall_tau_b(x, y) == pytest.approx(5 / math.sqrt(30))
    assert fidelity.spearman_rho(x, y) == pytest.approx(4.5 / math.sqrt(22.5))
    # ties on both sides, in the same pair and in different ones
    a, b = [1, 1, 2, 3, 3], [2, 2, 1, 4, 5]
    assert fidelity.kendall_tau_b(a, b) == pytest.approx(4 / math.sqrt(8 * 9))  # C 6, D 2
    assert math.isnan(fidelity.kendall_tau_b([1, 1, 1], [1, 2, 3]))
    assert math.isnan(fidelity.spearman_rho([1, 1, 1], [1, 2, 3]))


def test_against_scipy_when_importable():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.integers(0, 5, 12).tolist()  # many ties
        y = (np.array(x) + rng.integers(-2, 3, 12)).tolist()
        assert fidelity.kendall_tau_b(x, y) == pytest.approx(stats.kendalltau(x, y).statistic)
        assert fidelity.spearman_rho(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)


# ----------------------------------------------------------------------------- fidelity.py

def test_pick_archs_references_first_and_feasible():
    archs = fidelity.pick_archs(6, 25e6, seed=0)
    assert [a.label for a in archs[:2]] == ["ShuffleNet 0.25x g=3", "ShuffleNet 0.5x g=3"]
    assert all(a.macs <= 25e6 for a in archs)  # the 1x reference (42.6M MACs) is left out
    assert len({json.dumps(a.choices, sort_keys=True) for a in archs}) == 6
    assert [a.label for a in fidelity.pick_archs(6, 25e6, seed=0)] == [a.label for a in archs]


def test_fidelity_quick_writes_columns_and_prints_tau(tmp_path, capsys):
    out = tmp_path / "results"
    argv = ["--quick", "--workers", "1", "--out", str(out)]
    assert fidelity.main(argv) == 0  # in this process: one import of torch and MLflow
    printed = capsys.readouterr().out
    assert "kendall_tau_b=" in printed and "spearman_rho=" in printed
    with open(out / "fidelity.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    for column in ("arch", "search_budget_val_acc", "reference_budget_val_acc", "macs", "params",
                   "search_run_id", "reference_run_id"):
        assert column in rows[0] and all(r[column] for r in rows), column
    with open(out / "fidelity_curves.csv", newline="") as f:
        curves = list(csv.DictReader(f))
    assert {(c["budget"], c["epoch"]) for c in curves} == {("search", "1"), ("search", "2"),
                                                           ("reference", "1"), ("reference", "2")}
    assert len(curves) == 4 * 2 * 2
    # again without --resume: refused; with it and every arch done: nothing trained, same report
    with pytest.raises(SystemExit, match="--resume"):
        fidelity.main(argv)
    assert fidelity.main([*argv, "--resume"]) == 0
    again = capsys.readouterr().out
    assert "0 to run" in again and "kendall_tau_b=" in again
    # killed after one arch's search run ended, before its reference run did: only that one runs
    last = rows[-1]["arch"]
    _write_csv(out / "fidelity.csv", fidelity.COLUMNS, rows[:-1])
    _write_csv(out / "fidelity_curves.csv", fidelity.CURVE_COLUMNS,
               [c for c in curves if (c["arch"], c["budget"]) != (last, "reference")])
    assert fidelity.main([*argv, "--resume"]) == 0
    assert "1 to run (1 runs)" in capsys.readouterr().out
    with open(out / "fidelity.csv", newline="") as f:
        resumed = list(csv.DictReader(f))
    assert [r["arch"] for r in resumed] == [r["arch"] for r in rows]
    assert resumed[-1]["search_run_id"] == rows[-1]["search_run_id"]
    assert resumed[-1]["reference_run_id"] not in {"", rows[-1]["reference_run_id"]}
    with open(out / "fidelity_curves.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 4 * 2 * 2
    orphan, rows = rows[-1]["reference_run_id"], resumed
    export = tmp_path / "curves.csv"
    assert fidelity.main([*argv, "--export-curves", str(export)]) == 0
    table = search_quality.read_curves(export, "search")
    assert len(table) == 4 and all(len(a["curve"]) == 2 for a in table.values())
    # every run is in MLflow, in its own experiment
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("fidelity")
    run_ids = {r.info.run_id for r in client.search_runs([experiment.experiment_id])}
    assert run_ids == {r["search_run_id"] for r in rows} | {r["reference_run_id"] for r in rows} | {orphan}
    # a candidate budget alone, ranked against this study's reference
    other = tmp_path / "candidate"
    assert fidelity.main(["--quick", "--workers", "1", "--out", str(other), "--search-only"]) == 0
    assert "--also " + str(other) in capsys.readouterr().out
    with open(other / "fidelity_curves.csv", newline="") as f:
        assert {(c["budget"], c["epoch"]) for c in csv.DictReader(f)} == {("search", "1"), ("search", "2")}
    assert not (other / "fidelity.csv").exists()
    assert fidelity.main(["--report", "--out", str(out), "--also", str(other)]) == 0
    assert "candidate:search@2" in capsys.readouterr().out


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)


def _study(folder: Path, truth: dict[str, float], curves: dict[str, list[float]], budget: str) -> None:
    """A fidelity study's two CSVs, hand-made: reference finals per arch, one budget's curves."""
    folder.mkdir()
    for name, columns, rows in (
            ("fidelity.csv", fidelity.COLUMNS,
             [{"arch": a, "macs": 1, "params": 1, "search_budget_val_acc": v, "reference_budget_val_acc": v}
              for a, v in truth.items()]),
            ("fidelity_curves.csv", fidelity.CURVE_COLUMNS,
             [{"arch": a, "budget": budget, "epoch": e, "val_acc": v, "train_images": 100,
               "epoch_cpu_s": 6.0} for a, curve in curves.items() for e, v in enumerate(curve, 1)])):
        _write_csv(folder / name, columns, rows)


def test_report_ranks_another_studys_budgets_against_this_reference(tmp_path, capsys):
    """--report --also DIR: DIR's curves are scored against --out's reference finals, archs
    matched by label; archs only DIR has are left out, and nothing is trained."""
    truth = {"a": 0.3, "b": 0.5, "c": 0.7}
    _study(tmp_path / "new", truth, {a: [v] for a, v in truth.items()}, "reference")
    _study(tmp_path / "old", {}, {"a": [0.9, 0.1], "b": [0.5, 0.2], "c": [0.1, 0.3], "z": [0.0, 0.0]},
           "search")
    assert fidelity.main(["--report", "--out", str(tmp_path / "new"), "--also", str(tmp_path / "old")]) == 0
    printed = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in printed.splitlines()
            if line.startswith("old:") and " vs " not in line}
    assert rows["old:search@1"][4] == "-1.000" and rows["old:search@2"][4] == "1.000"
    assert rows["old:search@2"][5] == "1.000..1.000"  # every resample of a perfect ranking is perfect
    assert rows["old:search@2"][7] == "0.6"  # 3 archs x 2 epochs x 6 s, z left out
    with pytest.raises(SystemExit, match="no fidelity_curves.csv"):
        fidelity.main(["--report", "--out", str(tmp_path / "new"), "--also", str(tmp_path / "none")])


def test_beyond_cost_leaves_what_log_macs_does_not_explain():
    offsets = [0.01, -0.01, -0.01, 0.01]  # mean 0 and orthogonal to log10 MACs 1..4
    values = [0.2 * k + r for k, r in zip(range(1, 5), offsets)]
    assert fidelity.beyond_cost(values, [10, 100, 1000, 10000]) == pytest.approx(offsets)
    assert fidelity.beyond_cost([0.3, 0.5], [7, 7]) == pytest.approx([-0.1, 0.1])  # one cost: the mean


def test_report_gives_the_mac_count_alone_as_a_baseline(tmp_path, capsys):
    """The MAC count's own tau against the reference: what a budget must beat."""
    _study(tmp_path / "s", {"a": 0.3, "b": 0.5, "c": 0.7}, {}, "search")
    _write_csv(tmp_path / "s" / "fidelity.csv", fidelity.COLUMNS,
               [{"arch": a, "macs": m, "params": 1, "search_budget_val_acc": v, "reference_budget_val_acc": v}
                for a, m, v in (("a", 3, 0.3), ("b", 1, 0.5), ("c", 2, 0.7))])
    assert fidelity.main(["--report", "--out", str(tmp_path / "s")]) == 0
    printed = capsys.readouterr().out
    assert "search vs reference budget over 3 archs: kendall_tau_b=1.000" in printed
    assert "MAC count alone vs reference over 3 archs: kendall_tau_b=-0.333" in printed
    assert "beyond the MAC count (residuals on log10 MACs): kendall_tau_b=1.000" in printed


def _search_folder(folder: Path, client, experiment: str, trials: list[tuple[str, float, list[float]]]) -> None:
    """A `nas search` folder's trials.csv, each trial's val_acc per epoch in a real MLflow run."""
    folder.mkdir()
    choices = {"groups": 3, "width": 0.25, "s0.depth": 4, "s1.depth": 8, "s2.depth": 4, "kernel": 3,
               "shuffle": True}
    with open(folder / "trials.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["trial", "status", "macs", "params", "epochs", "mlflow_run_id",
                                          *[f"choice.{k}" for k in choices]])
        w.writeheader()
        for i, (status, width, curve) in enumerate(trials):
            run = client.create_run(experiment)
            for step, value in enumerate(curve, start=1):
                client.log_metric(run.info.run_id, "val_acc", value, step=step)
            w.writerow({"trial": i, "status": status, "macs": 1e6 * (1 + width), "params": 5e4,
                        "epochs": len(curve), "mlflow_run_id": run.info.run_id,
                        **{f"choice.{k}": (width if k == "width" else v) for k, v in choices.items()}})


def test_export_curves_takes_the_searches_full_budget_trials_once(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("nas")
    _search_folder(tmp_path / "a", client, experiment, [("COMPLETED", 0.25, [0.30, 0.40]),
                                                        ("COMPLETED", 0.5, [0.35, 0.45]),
                                                        ("PRUNED", 1.0, [0.2])])
    _search_folder(tmp_path / "b", client, experiment, [("COMPLETED", 0.25, [0.30, 0.40]),  # the same run
                                                        ("COMPLETED", 0.5, [0.33, 0.47]),  # a replicate
                                                        ("FAILED", 1.0, [])])
    rows = fidelity.search_curves([tmp_path / "a", tmp_path / "b"], uri)
    archs = sorted({r["arch"] for r in rows})
    assert archs == ["g3 w0.25 d4-8-4 k3 shuf", "g3 w0.5 d4-8-4 k3 shuf", "g3 w0.5 d4-8-4 k3 shuf #2"]
    assert {r["budget"] for r in rows} == {"cpu"} and len(rows) == 3 * 2
    replicate = [r["val_acc"] for r in rows if r["arch"].endswith("#2")]
    assert replicate == [0.33, 0.47]
    assert json.loads(rows[0]["choices"])["shuffle"] is True and json.loads(rows[0]["choices"])["width"] == 0.25


# ----------------------------------------------------------------------------- search_quality.py

def synthetic_curves(path: Path, n: int = 14, epochs: int = 4, seed: int = 0) -> None:
    """A made-up curves table (test only: never shipped as data): accuracy grows with log MACs
    and epochs, plus noise, for random feasible points of the space."""
    rng = np.random.default_rng(seed)
    archs = fidelity.pick_archs(n, 25e6, seed=seed)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fidelity.EXPORT_COLUMNS)
        w.writeheader()
        for a in archs:
            level = 0.25 + 0.06 * math.log(a.macs / 1e6 + 1) + (0.02 if a.choices["shuffle"] else 0)
            for budget, images, val, lift in (("search", 3000, 500, 0.0), ("reference", 15000, 2000, 0.15),
                                              ("cpu", 15000, 2000, 0.1)):
                for e in range(1, epochs + 1):
                    acc = (level + lift) * (1 - 0.5 ** e) / 0.9375 + rng.normal(0, 0.01)
                    w.writerow({"arch": a.label, "choices": json.dumps(a.choices), "macs": a.macs,
                                "params": a.params, "budget": budget, "train_images": images,
                                "val_images": val, "epochs": epochs, "epoch": e, "val_acc": round(acc, 4)})


def test_stand_in_fits_the_curves(tmp_path):
    from nas.space import load_space

    path = tmp_path / "curves.csv"
    synthetic_curves(path)
    table = search_quality.read_curves(path)
    model = search_quality.StandIn(load_space("shufflenet"), table)
    assert model.epochs == 4 and len(model.sigma) == 4 and 0 <= model.rho < 1
    for a in table.values():  # the fit follows the table within a few noise std
        assert np.abs(model.mean(a["choices"]) - np.array(a["curve"])).max() < 0.08
    draws = np.array([model.draw(next(iter(table.values()))["choices"], np.random.default_rng(i))
                      for i in range(200)])
    assert draws.std(0) == pytest.approx(model.sigma, rel=0.3)


def stand_in_search(method, model, seed, *, epoch_budget, references=True, **kw):
    """One simulated search on the stand-in, cut at `epoch_budget` epochs."""
    queued = list(model.space.references) if references else []
    run = search_quality.simulate(method, search_quality.stand_in.StandInOutcomes(model), seed, limit=epoch_budget,
                                  queued=queued, **kw)
    return run.at(search_quality.Clock("cost", epoch_budget))


def test_simulated_search_spends_equal_compute(tmp_path):
    from nas.space import load_space

    path = tmp_path / "curves.csv"
    synthetic_curves(path)
    model = search_quality.StandIn(load_space("shufflenet"), search_quality.read_curves(path))
    for method in search_quality.METHODS:
        run = stand_in_search(method, model, 0, epoch_budget=30, grace=1, rf=2, max_macs=25e6)
        # all the compute is spent, unless the searcher gave up on free samples in a row
        assert run.epochs == 30 or (run.stuck and run.infeasible + run.duplicates >= 500), method
        assert run.completed == len(run.front_points) >= 1
        if method.scheduler is None:
            assert run.pruned <= 1 and run.completed >= 7  # 4 epochs each, the last one maybe cut
        else:
            assert run.trained > run.completed


def _events(monkeypatch) -> list[tuple[str, str, dict]]:
    """The order in which the simulated search asks and tells the product's searcher."""
    from nas.search.searcher import OptunaSearcher

    events: list[tuple[str, str, dict]] = []
    ask, tell = OptunaSearcher.suggest, OptunaSearcher.on_trial_complete

    def suggest(self, trial_id):
        config = ask(self, trial_id)
        events.append(("ask", trial_id, config))
        return config

    def on_trial_complete(self, trial_id, result=None, error=False):
        events.append(("tell", trial_id, result))
        return tell(self, trial_id, result, error)

    monkeypatch.setattr(OptunaSearcher, "suggest", suggest)
    monkeypatch.setattr(OptunaSearcher, "on_trial_complete", on_trial_complete)
    return events


@pytest.mark.parametrize("concurrency", [1, 2, 3])
def test_simulated_search_tells_after_the_trials_beside_it(tmp_path, monkeypatch, concurrency):
    """With k trials at once, the sampler asks for trial n knowing the outcomes of n - k + 1."""
    from nas.space import load_space

    path = tmp_path / "curves.csv"
    synthetic_curves(path)
    model = search_quality.StandIn(load_space("shufflenet"), search_quality.read_curves(path))
    events = _events(monkeypatch)
    method = next(m for m in search_quality.METHODS if m.name == "random")
    stand_in_search(method, model, 0, epoch_budget=40, grace=1, rf=2, max_macs=25e6,
                            concurrency=concurrency)
    asks = [i for i, e in enumerate(events) if e[0] == "ask"]
    assert len(asks) == 10
    for n, at in enumerate(asks):
        told = [e[1] for e in events[:at] if e[0] == "tell"]
        assert told == [str(k) for k in range(max(0, n - concurrency + 1))]


def test_simulated_search_trains_the_reference_nets_first(tmp_path, monkeypatch):
    from nas.space import load_space

    path = tmp_path / "curves.csv"
    synthetic_curves(path)
    space = load_space("shufflenet")
    model = search_quality.StandIn(space, search_quality.read_curves(path))
    method = next(m for m in search_quality.METHODS if m.name == "random")
    feasible = [point for _, point in space.references if (model.macs(point) or 1e99) <= 25e6]
    assert len(feasible) == 2  # the 1x net is over the cpu budget's MACs: free, not trained
    for references in (True, False):
        events = _events(monkeypatch)
        stand_in_search(method, model, 0, epoch_budget=8, grace=1, rf=2, max_macs=25e6,
                                references=references)
        first = [{k: v for k, v in e[2].items() if not k.startswith("_nas_")}
                 for e in events if e[0] == "ask"][:2]
        assert (first == [space.normalize(p) for p in feasible]) is references


def test_oracle_front_bounds_every_search(tmp_path):
    """The score's reference is the space's worst arch, and no search beats the space's true front."""
    from nas.space import load_space

    path = tmp_path / "curves.csv"
    synthetic_curves(path)
    model = search_quality.StandIn(load_space("shufflenet"), search_quality.read_curves(path))
    everything = search_quality.feasible_points(model, 25e6)
    assert len(everything) > 1000 and all(macs <= 25e6 for _, macs in everything)
    score = search_quality.Score(min(acc for acc, _ in everything), 25e6)
    oracle = score.hv(everything)
    for method in search_quality.METHODS[:2]:
        run = stand_in_search(method, model, 1, epoch_budget=30, grace=1, rf=2, max_macs=25e6)
        found = score.hv([(true, macs) for true, _, macs in run.front_points])
        assert 0 < found <= oracle + 1e-12
    # a point at the reference accuracy or at the MAC limit adds nothing
    assert score.hv([(score.reference_acc, 1e6), (0.9, 25e6)]) == 0.0


def test_search_quality_stand_in_quick(tmp_path):
    path = tmp_path / "curves.csv"
    synthetic_curves(path)
    cmd = [sys.executable, str(BENCH / "search_quality.py"), "--stand-in", "--quick", "--curves",
           str(path), "--seeds", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("hv_ratio_vs_random=") and last.endswith("seeds=2"), proc.stdout[-2000:]
    assert float(last.split()[0].split("=")[1]) > 0
    for name in ("gp+moasha", "nsga2+moasha", "nsga2+asha", "tpe+moasha", "random"):
        assert name in proc.stdout
    assert "(default)" in proc.stdout and "oracle" in proc.stdout


@pytest.mark.slow
def test_fidelity_quick_on_two_ray_workers(tmp_path):
    """The --workers path: Ray tasks executing nas.job.execute, the driver recording."""
    out = tmp_path / "results"
    cmd = [sys.executable, str(BENCH / "fidelity.py"), "--quick", "--workers", "2", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 at once" in proc.stdout and "kendall_tau_b=" in proc.stdout
    with open(out / "fidelity.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 4


def test_best_per_cost_needs_a_useful_tau_and_a_whole_run():
    """A cheap budget that barely ranks (tau 0.3) must not win on tau per minute, nor a cheap
    early epoch of a longer run (not a budget one can set); the reference (tau 1 by definition)
    is never a candidate."""
    cand = lambda name, tau, minutes: {"candidate": name, "tau": tau, "cpu_min": minutes,  # noqa: E731
                                       "tau_per_cpu_min": tau / minutes, "n": 16}
    cands = [cand("other:search@1", 0.3, 10), cand("search@1", 0.55, 5), cand("search@2", 0.6, 40),
             cand("reference@2", 0.65, 80), cand("reference@5", 1.0, 20)]
    assert fidelity.best_per_cost(cands)["candidate"] == "search@2"
    assert fidelity.best_per_cost(cands, min_tau=0.2)["candidate"] == "other:search@1"
    assert fidelity.best_per_cost(cands, min_tau=0.7) is None


def test_tau_difference_interval_tells_a_real_gap_from_noise():
    """A budget that ranks 16 archs perfectly beats one that ranks them backwards, with an
    interval above zero; two budgets one swap apart are not told apart."""
    truth = [float(i) for i in range(16)]
    backwards = truth[::-1]
    one_swap = truth[:7] + [truth[8], truth[7]] + truth[9:]
    lo, hi = fidelity.tau_difference_ci95(truth, backwards, truth)
    assert lo > 1.5 and hi == pytest.approx(2.0)
    lo, hi = fidelity.tau_difference_ci95(one_swap, truth, truth)
    assert lo < 0 <= hi
    lo, hi = fidelity.tau_ci95(truth, truth)
    assert lo == hi == pytest.approx(1.0)


def test_throughput_counts_what_each_search_trained_per_hour():
    Row = search_throughput.Row
    former = Row("former", 71, {"COMPLETED": 13, "PRUNED": 37, "INFEASIBLE": 21}, 50, 13,
                 50 * 2 * 3000, 50 * 2 * 3000 * 4e6, 1800.0, (1.8e6, 9e6), 2)
    default = Row("default", 53, {"COMPLETED": 50, "INFEASIBLE": 3}, 50, 50, 50 * 2 * 15000,
                  50 * 2 * 15000 * 6e6, 5400.0, (1.7e6, 20e6), 2)
    same_budget = Row("default-3000x4", 52, {"COMPLETED": 50, "INFEASIBLE": 2}, 50, 50,
                      50 * 4 * 3000, 50 * 4 * 3000 * 5e6, 1200.0, (1.7e6, 12e6), 2)
    assert former.per_hour == (100.0, 26.0) and default.per_hour == pytest.approx((100 / 3, 100 / 3))
    assert former.gmacs_per_core_s == pytest.approx(300_000 * 4e6 / 1800 / 2 / 1e9)
    text = search_throughput.report([former, default, same_budget], (1.7e6, 24.9e6))
    last = text.splitlines()[-1]
    assert last == (f"to_the_end_per_hour_ratio={(100 / 3) / 26:.3f} trained_per_hour_ratio={1 / 3:.3f} "
                    f"same_budget_to_the_end_per_hour_ratio={150 / 26:.3f}")
    assert "1.70M-24.90M" in text and "30,000" in text and "6,000" in text  # image-epochs per trained arch
    cells = {line.split()[0]: line.split() for line in text.splitlines()[2:5]}
    assert "0.33" in cells["former"] and "0.83" in cells["default"]  # GMAC-images/s/core: 1.2e12 / 1800 s / 2


@pytest.mark.slow
def test_search_throughput_quick_runs_its_searches_and_skips_finished_ones(tmp_path):
    cmd = [sys.executable, str(BENCH / "search_throughput.py"), "--quick", "--workdir", str(tmp_path)]
    outputs = []
    for _ in range(2):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        outputs.append(proc.stdout)
    assert outputs[0].count("$ nas search") == 3 and "--sampler nsga2 --scheduler asha" in outputs[0]
    assert outputs[1].count("finished before, not run again") == 3
    last = outputs[1].strip().splitlines()[-1].split()
    assert [w.split("=")[0] for w in last] == ["to_the_end_per_hour_ratio", "trained_per_hour_ratio",
                                               "same_budget_to_the_end_per_hour_ratio"]
    assert all(float(w.split("=")[1]) > 0 for w in last)
    assert outputs[0].splitlines()[-7:] == outputs[1].splitlines()[-7:]  # read back, not re-measured
