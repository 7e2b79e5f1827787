"""The measured space table (benchmarks/space_table.py) and the searches replayed on it
(benchmarks/search_quality.py --table, issue 31): scoring on the other seed, the equal-seconds
clock, the nearest-architecture mapping, the paired interval, and a --tiny table end to end."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import search_quality  # noqa: E402
import space_table  # noqa: E402
import table_replay  # noqa: E402
from search_quality import Clock, Run, Score, Trial  # noqa: E402


def write_table(path: Path, rows: list[dict]) -> None:
    for row in rows:
        space_table.append_row(path, {"budget": "cpu", "status": "COMPLETED", "epochs": 2, **row})


def measured_rows(arch, seed: int, curve: list[float], test: float, epoch_s: list[float]) -> dict:
    return {"arch_index": arch.index, "arch": arch.label, "choices": space_table.arch_key(arch.choices),
            "macs": arch.macs, "params": arch.params, "seed": seed, "val_acc": curve[-1],
            "val_curve": json.dumps(curve), "epoch_s": json.dumps(epoch_s), "train_s": sum(epoch_s),
            "test_acc": test}


def synthetic_table(path: Path, n: int = 40, seed: int = 0) -> list:
    """A made-up table (test only, never shipped): accuracy grows with log MACs, seed noise."""
    rng = np.random.default_rng(seed)
    archs = space_table.pick(n, 25e6)
    rows = []
    for a in archs:
        level = 0.3 + 0.08 * math.log10(a.macs / 1e6 + 1) + (0.02 if a.choices["shuffle"] else 0)
        for s in space_table.SEEDS:
            curve = [round(level - 0.1 + rng.normal(0, 0.01), 4), round(level + rng.normal(0, 0.01), 4)]
            rows.append(measured_rows(a, s, curve, round(level + rng.normal(0, 0.01), 4),
                                      [round(2 * a.macs / 1e6 + 5, 3)] * 2))
    write_table(path, rows)
    return archs


def _space():
    from nas.space import load_space

    return load_space("shufflenet")


# ----------------------------------------------------------------------------- the replay's parts

def test_the_front_is_chosen_on_seed_a_and_scored_on_seed_b(tmp_path):
    """Two archs of equal MACs: x looks better on seed 0's validation images, y is better on
    seed 1's test set. The search at seed 0 reports x and is paid x's seed-1 test_acc; the search
    at seed 1 sees seed 1 and reports y, paid y's seed-0 test_acc."""
    archs = space_table.pick(2, 25e6)[2:4]
    path = tmp_path / "t.csv"
    write_table(path, [measured_rows(archs[0], 0, [0.5, 0.60], 0.45, [1, 1]),
                       measured_rows(archs[0], 1, [0.4, 0.40], 0.40, [1, 1]),
                       measured_rows(archs[1], 0, [0.5, 0.55], 0.50, [1, 1]),
                       measured_rows(archs[1], 1, [0.5, 0.52], 0.55, [1, 1])])
    table = space_table.load_table(path)
    score, macs = Score(0.3, 25e6), 2e6  # equal MACs, so the front holds the better val_acc alone
    for seed, picked, paid in ((0, 0, 0.40), (1, 1, 0.50)):
        outcomes = table_replay.TableOutcomes(table, _space(), seed, mapped=False)
        seen = [outcomes.observe(a.choices, np.random.default_rng(0)) for a in archs]
        points = [(o.worth, float(o.curve[-1]), macs) for o in seen]
        assert seen[picked].key == space_table.arch_key(archs[picked].choices)
        assert score.front(points) == pytest.approx((paid - 0.3) * (math.log10(25e6) - math.log10(macs)))


def test_equal_seconds_clock_counts_what_ended_in_time():
    """At a cost of 25 s: the 10 s trial and the 12 s one count; the next one, cut after its
    first epoch, is pruned and off the front; a trial starting past 25 s is not there at all."""
    run = Run(trials=[Trial("a", 1e6, 0.5, 0.5, True, 0, [5, 10]),
                      Trial("b", 2e6, 0.6, 0.6, True, 10, [16, 22]),
                      Trial("c", 3e6, 0.7, 0.7, True, 22, [24, 30]),
                      Trial("d", 1e6, 0.8, 0.8, True, 30, [31, 32])])
    spent = run.at(Clock("cost", 25))
    assert (spent.trained, spent.completed, spent.pruned, spent.epochs) == (3, 2, 1, 5)
    assert [m for _, _, m in spent.front_points] == [1e6, 2e6]
    assert run.at(Clock("trials", 4)).completed == 4


def test_random_search_spends_the_tables_mean_seconds(tmp_path):
    """The seconds clock is what a random trial of the table costs on average; a random search
    then trains about that many trials in it (here the costs are alike, so exactly)."""
    path = tmp_path / "t.csv"
    archs = space_table.pick(30, 25e6)
    write_table(path, [measured_rows(a, s, [0.4, 0.5], 0.5, [3.0, 3.0]) for a in archs for s in (0, 1)])
    table = space_table.load_table(path)
    assert table_replay.seconds_per_trial(table) == pytest.approx(6.0)
    method = next(m for m in search_quality.METHODS if m.name == "random")
    outcomes = table_replay.TableOutcomes(table, _space(), 0, mapped=False)
    run = search_quality.simulate(method, outcomes, 0, limit=60, queued=table_replay.startup(table, _space(), 0))
    assert run.at(Clock("cost", 60)).completed == 10
    assert all(t.key in outcomes.archs for t in run.trials)  # every trial is a table architecture


def test_a_proposal_off_the_table_is_mapped_to_the_nearest_architecture(tmp_path):
    from nas.counting import count
    from nas.errors import SpecError

    path = tmp_path / "t.csv"
    archs = space_table.pick(3, 25e6)
    write_table(path, [measured_rows(a, s, [0.4, 0.5], 0.5, [1, 1]) for a in archs for s in (0, 1)])
    table = space_table.load_table(path)
    target = archs[0].choices  # ShuffleNet 0.25x g=3
    off = {**target, "s1.depth": 7}  # one step from it, off the table
    mapped = table_replay.TableOutcomes(table, _space(), 0, mapped=True)
    assert mapped.resolve(off) == space_table.arch_key(target)
    assert count(mapped.to_spec(off)).macs == archs[0].macs
    assert mapped.observe(off, np.random.default_rng(0)).key == space_table.arch_key(target)
    huge = {**target, "width": 1.0, "groups": 8}  # over the 25M MAC limit: itself, so the searcher rejects it
    assert count(mapped.to_spec(huge)).macs > 25e6
    with pytest.raises(SpecError, match="not an architecture of the table"):
        table_replay.TableOutcomes(table, _space(), 0, mapped=False).to_spec(off)


def test_a_mapped_search_trains_table_architectures_at_their_own_macs(tmp_path):
    path = tmp_path / "t.csv"
    synthetic_table(path, 30)
    table = space_table.load_table(path)
    method = next(m for m in search_quality.METHODS if m.name == "nsga2")
    outcomes = table_replay.TableOutcomes(table, _space(), 1, mapped=True)
    run = search_quality.simulate(method, outcomes, 1, limit=0, min_trials=20,
                                  queued=table_replay.startup(table, _space(), 1), concurrency=2)
    assert len(run.trials) == 20 and len({t.key for t in run.trials}) == 20
    for t in run.trials:
        m = outcomes.archs[t.key]
        assert (t.macs, t.worth, t.observed) == (m.macs, m.test_acc[0], m.val_curve[1][-1])


def test_paired_interval_of_the_ratio():
    """Seeds differ a lot, but the method is 1.1x random at each: paired, the interval is tight
    around 1.1; a method equal to random up to noise gets an interval holding 1."""
    rng = np.random.default_rng(0)
    base = list(rng.uniform(0.5, 1.5, 50))
    ratio, lo, hi = table_replay.paired_ratio([1.1 * b for b in base], base)
    assert ratio == pytest.approx(1.1) and lo == pytest.approx(1.1) and hi == pytest.approx(1.1)
    noisy = [b * (1 + rng.normal(0, 0.05)) for b in base]
    ratio, lo, hi = table_replay.paired_ratio(noisy, base)
    assert lo < ratio < hi and lo < 1.0 < hi and hi - lo < 0.05


def test_startup_is_the_same_for_every_method_and_differs_by_seed(tmp_path):
    path = tmp_path / "t.csv"
    synthetic_table(path, 30)
    table = space_table.load_table(path)
    first = table_replay.startup(table, _space(), 3)
    assert first == table_replay.startup(table, _space(), 3) != table_replay.startup(table, _space(), 4)
    assert len(first) == len(_space().references) + table_replay.STARTUP


def test_replay_end_to_end_on_a_made_up_table(tmp_path):
    path = tmp_path / "t.csv"
    synthetic_table(path, 40)
    cmd = [sys.executable, str(BENCH / "search_quality.py"), "--table", str(path), "--seeds", "2",
           "--trials", "14,16", "--methods", "random", "ehvi", "nsga2", "--workers", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "nsga2: each proposal MAPPED to the nearest table architecture" in out
    assert "ehvi, random by candidate set" in out and "(0.1, 25M MACs)" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("hv_ratio_vs_random=") and last.endswith("seeds=2 clock=seconds"), out[-2000:]
    lo, hi = (float(v) for v in last.split("ci95=[")[1].split("]")[0].split(","))
    assert lo <= float(last.split()[0].split("=")[1]) <= hi


# ----------------------------------------------------------------------------- the table itself

def test_a_cpu_rows_clock_is_its_cpu_seconds_and_wall_seconds_elsewhere(tmp_path):
    arch = space_table.pick(1, 25e6)[0]
    rows = [{**measured_rows(arch, s, [0.4, 0.5], 0.5, [30.0, 30.0]), "device": device,
             "epoch_cpu_s": json.dumps([10.0, 11.0])} for s, device in ((0, "cpu"), (1, "cuda:0"))]
    write_table(tmp_path / "t.csv", rows)
    (measured,) = space_table.load_table(tmp_path / "t.csv")
    assert measured.epoch_s == {0: [10.0, 11.0], 1: [30.0, 30.0]}


def test_a_table_with_the_old_columns_gains_the_new_ones_and_keeps_its_rows(tmp_path):
    path = tmp_path / "t.csv"
    old = [c for c in space_table.COLUMNS if c not in ("epoch_cpu_s", "train_cpu_s")]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=old)
        writer.writeheader()
        writer.writerow({c: "1" for c in old})
    space_table.append_row(path, {"arch": "new", "epoch_cpu_s": "[2.0]"})
    rows = space_table.read_rows(path)
    assert list(rows[0]) == space_table.COLUMNS
    assert (rows[0]["arch"], rows[0]["epoch_cpu_s"]) == ("1", "")
    assert (rows[1]["arch"], rows[1]["epoch_cpu_s"]) == ("new", "[2.0]")


def test_sample_order_is_fixed_references_first_and_feasible():
    archs = space_table.pick(5, 25e6)
    assert [a.reference for a in archs] == [True, True, False, False, False, False, False]
    assert all(a.macs <= 25e6 for a in archs)
    assert [a.choices for a in space_table.pick(7, 25e6)[:7]] == [a.choices for a in archs]
    assert len({space_table.arch_key(a.choices) for a in archs}) == len(archs)


def test_tiny_table_end_to_end_resumes_without_duplicates(tmp_path, capsys):
    table = tmp_path / "tiny.csv"
    base = ["--tiny", "--table", str(table), "--concurrency", "1"]
    assert space_table.main([*base, "--time-limit-s", "0"]) == 0  # nothing fits: nothing starts
    assert not table.exists()
    assert space_table.main([*base, "--archs", "0"]) == 0  # the two references x two seeds
    with open(table, newline="") as f:
        first = list(csv.DictReader(f))
    assert len(first) == 4 and {r["budget"] for r in first} == {"tiny"}
    assert space_table.main([*base, "--archs", "1"]) == 0  # resumed: one more arch
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[:4] == first and len(rows) == 6
    assert len({(r["choices"], r["seed"]) for r in rows}) == 6
    for r in rows:
        assert r["status"] == "COMPLETED" and len(json.loads(r["val_curve"])) == 2
        assert float(r["test_acc"]) >= 0 and float(r["train_s"]) > 0 and r["device"] == "cpu"
        assert 0 < float(r["train_cpu_s"]) and len(json.loads(r["epoch_cpu_s"])) == 2
    assert len(space_table.load_table(table)) == 3
    assert space_table.main(["--fidelity", "--table", str(table)]) == 0
    assert "Kendall tau-b" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="budget tiny"):
        space_table.main(["--table", str(table), "--archs", "0", "--time-limit-s", "0"])
