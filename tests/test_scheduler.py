"""MO-ASHA: the promotion rule on hand-made rungs, the scheduler's rung bookkeeping, and one real
Tune run."""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import numpy as np
import pytest
from ray.tune.schedulers.async_hyperband import _Bracket
from ray.tune.schedulers.trial_scheduler import TrialScheduler

from nas.search.scheduler import (MultiObjectiveASHA, crowding_distance, nondominated_rank, promote,
                                  rung_milestones)

ACC_MACS = ["max", "min"]  # (val_acc, MACs in millions)


def ray_asha_continues(recorded: list[float], new: float, rf: float = 2) -> bool:
    """What Ray's own (scalar, one-bracket) ASHA decides for `new` at a rung holding `recorded`."""
    bracket = _Bracket(min_t=1, max_t=8, reduction_factor=rf, s=0)
    for i, acc in enumerate(recorded):
        bracket.on_result(SimpleNamespace(trial_id=f"r{i}"), 1, acc)
    return bracket.on_result(SimpleNamespace(trial_id="new"), 1, new) == TrialScheduler.CONTINUE


# ----------------------------------------------------------------------------- the pure rule


def test_cheap_net_on_the_front_continues_where_scalar_asha_stops_it():
    rung = [(0.90, 500.0), (0.88, 450.0), (0.85, 300.0)]
    cheap, big = (0.60, 20.0), (0.84, 600.0)  # cheap: on the front; big: dominated by all three
    assert promote(np.array([*rung, cheap]), 3, 0.5, ACC_MACS)
    assert not promote(np.array([*rung, big]), 3, 0.5, ACC_MACS)
    # by accuracy alone the cheap net is the worst of four: our rule on one column and Ray's ASHA
    assert not promote(np.array([*rung, cheap])[:, :1], 3, 0.5, ["max"])
    assert not ray_asha_continues([a for a, _ in rung], cheap[0])


def test_nondominated_rank_and_directions():
    v = np.array([(0.9, 500), (0.6, 20), (0.8, 600), (0.5, 700), (np.nan, 10)])
    assert nondominated_rank(v, ACC_MACS).tolist() == [0, 0, 1, 2, 3]  # NaN after every front
    # oriented by hand (bigger is better everywhere) gives the same ranks
    assert nondominated_rank(v * [1, -1]).tolist() == [0, 0, 1, 2, 3]
    with pytest.raises(ValueError, match="direction"):
        nondominated_rank(v, ["max", "smaller"])


@pytest.mark.parametrize("rf", [2, 3, 4])
def test_top_one_over_rf_quota(rf):
    acc = np.array([0.51, 0.58, 0.62, 0.55, 0.70, 0.66, 0.53, 0.60, 0.64, 0.57, 0.68, 0.50])
    best = set(np.argsort(-acc)[: math.ceil(len(acc) / rf)])
    for i in range(len(acc)):
        assert promote(acc[:, None], i, 1 / rf, ["max"]) == (i in best), i
    # a cost column constant across the rung changes no rank
    both = np.column_stack([acc, np.full(len(acc), 140.0)])
    assert [promote(both, i, 1 / rf, ACC_MACS) for i in range(len(acc))] == [i in best for i in range(len(acc))]


def test_ties_within_the_front_broken_by_crowding():
    front = np.array([(0.60, 10), (0.62, 11), (0.80, 50), (0.82, 60), (0.90, 100)])
    assert nondominated_rank(front, ACC_MACS).tolist() == [0] * 5
    # acc range 0.3, MACs range 90: interior distances 0.2/0.3 + 40/90, 0.2/0.3 + 49/90, 0.1/0.3 + 50/90
    np.testing.assert_allclose(crowding_distance(front), [math.inf, 1.1111, 1.2111, 0.8889, math.inf], atol=1e-4)
    # keep 1/2 of 5: the two extremes and the least crowded interior point; (0.62, 11) sits on
    # top of (0.60, 10) and is stopped although it is on the front
    assert [promote(front, i, 0.5, ACC_MACS) for i in range(5)] == [True, False, True, False, True]
    # identical rows share one distance (no order-dependent tie-break)
    dup = np.array([(0.6, 10), (0.7, 30), (0.7, 30), (0.9, 90)])
    assert crowding_distance(dup)[1] == crowding_distance(dup)[2]


def test_small_rungs_decide_as_ray_asha_does():
    # empty rung: the first result always continues (Ray: no cutoff yet)
    assert promote(np.array([[0.1, 999.0]]), 0, 0.5, ACC_MACS) and ray_asha_continues([], 0.1)
    # one recorded: a second continues only if nothing beats it (Ray: cutoff = the one value)
    for first, second in ((0.7, 0.6), (0.6, 0.7), (0.6, 0.6)):
        ours = promote(np.array([[first], [second]]), 1, 0.5, ["max"])
        assert ours == ray_asha_continues([first], second) == (second >= first)
    for rf in (3, 4):  # fewer results than rf: still only the unbeaten continue, as in Ray
        assert promote(np.array([[0.7], [0.7]]), 1, 1 / rf, ["max"]) == ray_asha_continues([0.7], 0.7, rf)
        assert promote(np.array([[0.7], [0.6]]), 1, 1 / rf, ["max"]) == ray_asha_continues([0.7], 0.6, rf)
    # two objectives: two trade-offs are both on the front, both extremes: both continue
    assert promote(np.array([(0.9, 500), (0.6, 20)]), 1, 0.5, ACC_MACS)


def test_nan_results_are_stopped_and_do_not_count():
    assert not promote(np.array([(0.9, 500), (np.nan, 20)]), 1, 0.5, ACC_MACS)
    assert not promote(np.array([(np.nan, np.nan)]), 0, 0.5, ACC_MACS)
    # a recorded NaN row does not widen the quota: (0.4, 20) is dominated by the one valid row
    rung = np.array([(np.nan, 5), (0.5, 10), (0.4, 20)])
    assert not promote(rung, 2, 0.5, ACC_MACS)
    assert promote(np.array([(np.nan, 5), (0.5, 10), (0.6, 20)]), 2, 0.5, ACC_MACS)


def test_rung_milestones():
    assert rung_milestones(1, 4, 2) == [1, 2, 4]
    assert rung_milestones(1, 1000, 10) == [1, 10, 100, 1000]  # log(1000)/log(10) < 3 in floats
    assert rung_milestones(2, 30, 3) == [2, 6, 18]


# ----------------------------------------------------------------------------- the scheduler


def _feed(sched, trial_id, epoch, acc, macs, **extra):
    result = {"epoch": epoch, "val_acc": acc, "macs": macs, **extra}
    return sched.on_trial_result(None, SimpleNamespace(trial_id=trial_id), result)


def test_scheduler_decides_at_rung_boundaries_only(tmp_path):
    sched = MultiObjectiveASHA(objectives=[("val_acc", "max"), ("macs", "min")], max_t=4,
                               grace_period=1, reduction_factor=2)
    for t in "abcd":
        sched.on_trial_add(None, SimpleNamespace(trial_id=t))
    C, S = TrialScheduler.CONTINUE, TrialScheduler.STOP
    assert _feed(sched, "a", 1, 0.50, 300e6) == C  # first at rung 1
    assert _feed(sched, "b", 1, 0.40, 400e6) == S  # dominated by a
    assert _feed(sched, "c", 1, 0.30, 50e6) == C  # cheapest: on the front
    assert _feed(sched, "a", 2, 0.60, 300e6) == C  # first at rung 2
    assert _feed(sched, "a", 3, 0.65, 300e6) == C  # between rungs: no decision
    assert _feed(sched, "c", 2, 0.35, 50e6) == C  # still on the front at rung 2
    assert _feed(sched, "d", 1, 0.55, 350e6) == C  # a front extreme at rung 1 too
    assert _feed(sched, "d", 2, 0.45, 350e6) == S  # dominated by a at rung 2
    assert _feed(sched, "c", 3, float("nan"), 50e6) == C  # between rungs, even NaN
    assert _feed(sched, "a", 4, 0.70, 300e6) == S  # max_t
    assert _feed(sched, "c", 2, 0.35, 50e6) == C  # a duplicate report is judged once
    assert sched.on_trial_result(None, SimpleNamespace(trial_id="c"), {"epoch": 2, "val_acc": 0.3}) == C  # no macs
    sched.on_trial_complete(None, SimpleNamespace(trial_id="a"), {"epoch": 4, "val_acc": 0.70, "macs": 300e6})
    text = sched.debug_string()
    assert "val_acc:max, macs:min" in text and "num_stopped=3" in text
    assert "epoch 1: 4 recorded, 3 promoted | epoch 2: 3 recorded, 2 promoted | epoch 4: 1 recorded" in text

    sched.save(str(tmp_path / "moasha.json"))
    again = MultiObjectiveASHA(objectives=[("val_acc", "max"), ("macs", "min")], max_t=4)
    again.restore(str(tmp_path / "moasha.json"))
    assert again.debug_string() == text
    assert _feed(again, "e", 1, 0.20, 400e6) == S  # dominated by a, c and d at rung 1


def test_scheduler_arguments_checked():
    with pytest.raises(ValueError, match="direction"):
        MultiObjectiveASHA(objectives=[("val_acc", "up")], max_t=4)
    with pytest.raises(ValueError, match="grace_period"):
        MultiObjectiveASHA(objectives=[("val_acc", "max")], max_t=4, grace_period=8)
    with pytest.raises(ValueError, match="reduction_factor"):
        MultiObjectiveASHA(objectives=[("val_acc", "max")], max_t=4, reduction_factor=1)
    from nas.pareto import parse_objectives

    sched = MultiObjectiveASHA(objectives=parse_objectives("val_acc,macs,latency_ms"), max_t=4)
    assert sched.objectives == [("val_acc", "max"), ("macs", "min"), ("latency_ms", "min")]


# ----------------------------------------------------------------------------- a real Tune run


@pytest.mark.slow  # 20-40 s on 2 shared cores, most of it starting Ray
def test_tune_run_stops_trials_at_rung_boundaries(tmp_path):
    ray = pytest.importorskip("ray")
    from ray import tune

    nets = [(0.90, 500e6), (0.60, 20e6), (0.85, 450e6), (0.55, 480e6),
            (0.70, 100e6), (0.50, 520e6), (0.80, 300e6), (0.45, 460e6)]

    def trainable(config):  # a closure: Ray ships it by value, the workers need not import tests/
        acc, macs = nets[config["net"]]
        for epoch in range(1, 5):
            tune.report({"epoch": epoch, "val_acc": acc * epoch / 4, "macs": macs})

    started = time.monotonic()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        sched = MultiObjectiveASHA(objectives=[("val_acc", "max"), ("macs", "min")], max_t=4)
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1}),
            param_space={"net": tune.grid_search(list(range(len(nets))))},
            tune_config=tune.TuneConfig(scheduler=sched),  # no Tune metric: the scheduler has its own
            run_config=tune.RunConfig(storage_path=str(tmp_path), name="moasha", verbose=0))
        grid = tuner.fit()
    finally:
        ray.shutdown()
    last = {r.config["net"]: int(r.metrics["epoch"]) for r in grid}
    assert len(last) == len(nets) and not grid.errors
    assert set(last.values()) <= {1, 2, 4}, last  # stopped at a rung or run to max_t
    assert any(e < 4 for e in last.values()), last  # something was stopped
    assert last[1] == 4 and last[0] == 4  # the cheapest and the most accurate: front extremes
    assert last[5] < 4  # (0.50, 520M) is dominated by (0.90, 500M) everywhere
    print(f"tune run {time.monotonic() - started:.1f}s, last epochs {last}")


def test_auto_follows_the_budget_and_an_explicit_choice_wins():
    from nas.campaign.budget import get_budget
    from nas.pareto import parse_objectives
    from nas.search.scheduler import scheduler_name

    two, one = parse_objectives("val_acc,macs"), parse_objectives("val_acc")
    cpu, smoke = get_budget("search", "cpu"), get_budget("search", "smoke")
    assert not cpu.early_stopping and smoke.early_stopping  # cpu: rungs at epoch 1 misrank (fidelity.py)
    assert scheduler_name(True, "auto", two, cpu.early_stopping) == "none"
    assert scheduler_name(True, "auto", two, smoke.early_stopping) == "moasha"
    assert scheduler_name(True, "auto", one, smoke.early_stopping) == "asha"
    assert scheduler_name(True, "moasha", two, cpu.early_stopping) == "moasha"  # asked for: given
    assert scheduler_name(False, "moasha", two, smoke.early_stopping) == "none"  # --no-asha wins
