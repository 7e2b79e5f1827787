"""The search's start-up estimate: a plan of the points it will train, timed by the time model
(no training: the measured calibration is replaced by a fixed model)."""

from __future__ import annotations

import types

import pytest

from nas.campaign import estimate
from nas.campaign.budget import get_budget
from nas.campaign.time_model import Schedule, TimeModel, Work
from nas.pareto import parse_objectives
from nas.search import driver
from nas.search.expected import LATER_DRIFT, POOL_POINTS, expected_points
from nas.search.searcher import Limits
from nas.space import load_space

REFERENCE_MACS = [3271776, 11126976]  # ShuffleNet 0.25x and 0.5x g=3 at 32 px


def _search(seed: int = 0, resume: bool = False, trials: int = 50):
    space = load_space("shufflenet")
    plan = types.SimpleNamespace(sampler="ehvi", seed=seed, trials=trials, references=True)
    settings = types.SimpleNamespace(resume=resume, cpus_per_point=1.0, plan=plan)
    return types.SimpleNamespace(
        settings=settings, plan=plan, space=space, objectives=parse_objectives("val_acc,macs"),
        to_spec=lambda p: space.to_spec(p, resolution=32, num_classes=10), limits=Limits(max_macs=25e6),
        budget=get_budget("search", "cpu"), scheduler="none", schedule=Schedule(15000, 2000, 128),
        cfg=types.SimpleNamespace(train=types.SimpleNamespace(batch_size=128)), study=None, closed={})


def test_the_plan_is_the_references_then_the_samplers_own_start_then_the_space():
    s = _search()
    plan = expected_points(s, concurrency=2)
    assert [cost.macs for _, cost in plan.planned[:2]] == REFERENCE_MACS
    assert len(plan.planned) == 10 + 2 - 1  # the random start, and one more asked meanwhile
    assert all(cost.macs <= 25e6 for _, cost in plan.planned + plan.pool)
    assert len(plan.pool) == POOL_POINTS
    again, other_seed = expected_points(s, 2), expected_points(_search(seed=1), 2)
    assert [c for _, c in again.planned] == [c for _, c in plan.planned]  # the study's seed decides
    assert [c for _, c in other_seed.planned[2:]] != [c for _, c in plan.planned[2:]]
    assert expected_points(_search(resume=True), 2).planned == ()


def test_the_printed_estimate_is_the_plan_timed_by_the_calibrated_model(monkeypatch, capsys):
    s = _search(trials=20)
    model = TimeModel.calibrated([], 128)  # the reference shape as it is
    measured = []
    monkeypatch.setattr(driver, "_observed_trial_s", lambda s: None)
    monkeypatch.setattr(estimate, "calibrate", lambda specs, *a, **k: measured.append(specs) or model)
    workers = types.SimpleNamespace(kind="cpu", concurrency=2)
    assert driver._estimate_line(s, 20, workers) is model  # the sampler's prior
    assert len(measured[0]) == estimate.side_by_side(2, 1)  # the first points, side by side
    plan = expected_points(s, 2)
    work = lambda points: [Work(c, s.schedule, s.budget.epochs) for _, c in points]  # noqa: E731
    drift = LATER_DRIFT["ehvi"]
    expected = (sum(model.seconds(w) for w in work(plan.planned)) + 9 * drift / POOL_POINTS * sum(
        model.seconds(w) for w in work(plan.pool)) + 20 * estimate.POINT_OVERHEAD_S["search"]) / 2
    line = capsys.readouterr().out
    assert f"estimated time: {estimate.describe(expected)}" in line
    assert f"11 first trials as they will be sampled, 9 more at {drift:g}x the space's mean" in line
    assert expected == pytest.approx(estimate.estimate_s(work(plan.planned), model, 2, "search", more=9,
                                                         like=work(plan.pool), drift=drift))
