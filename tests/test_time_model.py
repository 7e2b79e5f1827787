"""The time model: a point's seconds from its plan, refitted on finished points (no training)."""

from __future__ import annotations

import numpy as np
import pytest

import nas
from nas.blocks import Cost
from nas.campaign import estimate
from nas.campaign.time_model import PRIOR_POINTS, REFERENCE, Schedule, TimeModel, Work

SCHEDULE = Schedule(15000, 2000, 128)


def _costs(n: int, seed: int = 0) -> list[Cost]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        dw, grouped, dense = (int(v) for v in rng.uniform([1e5, 1e6, 2e5], [2e6, 2e7, 3e6]))
        kernel = rng.choice([3, 5, 7])  # depthwise outputs = its MACs / k^2
        out.append(Cost(0, dw + grouped + dense, dw, grouped, int(dw / kernel ** 2),
                        int(rng.integers(20, 60))))
    return out


def _observed(truth: tuple[float, ...], costs: list[Cost]) -> list[tuple[Work, float]]:
    model = TimeModel(truth, truth)
    return [(Work(c, SCHEDULE, 1 + i % 3), model.seconds(Work(c, SCHEDULE, 1 + i % 3)))
            for i, c in enumerate(costs)]


def _relative_distance(a, b) -> float:
    return float(np.max(np.abs(np.array(a) / np.array(b) - 1)))


TRUTH = (5e-10, 1e-10, 6e-09, 2e-08, 3e-03)  # another machine: another shape than REFERENCE


def test_it_recovers_known_coefficients_from_many_points():
    fitted = TimeModel().refit(_observed(TRUTH, _costs(1000)))
    assert _relative_distance(fitted.coefficients, TRUTH) < 0.05
    assert _relative_distance(TimeModel().coefficients, TRUTH) > 0.5  # the prior was far off


def _log_gap(a: TimeModel, b: TimeModel, costs: list[Cost]) -> float:
    """Mean |log| of the ratio of two models' predictions over `costs`."""
    return float(np.mean([abs(np.log(a.seconds(Work(c, SCHEDULE, 2)) / b.seconds(Work(c, SCHEDULE, 2))))
                          for c in costs]))


def test_with_no_points_it_is_the_prior_and_with_two_it_stays_near_it():
    truth, held_out = TimeModel(TRUTH, TRUTH), _costs(50, seed=5)
    # the right scale on this machine (what the calibration measures), another shape
    prior = TimeModel.calibrated([(c, truth.seconds(Work(c, Schedule(1, 0, 128), 1))) for c in held_out], 128)
    assert prior.refit([]).coefficients == prior.prior
    two = prior.refit(_observed(TRUTH, _costs(2, seed=1)))
    assert _log_gap(two, prior, held_out) < 0.5 * _log_gap(truth, prior, held_out)
    many = prior.refit(_observed(TRUTH, _costs(1000, seed=2)))
    assert _log_gap(many, truth, held_out) < 0.02  # the data win once there are many
    assert PRIOR_POINTS > 0


def test_coefficients_are_never_negative():
    """Seconds that fall as depthwise MACs grow (no machine does that): the fit clips at 0."""
    costs = _costs(60, seed=3)
    observed = [(Work(c, SCHEDULE, 2), 2 * 17000 * (1e-9 * c.macs - 4e-9 * c.depthwise_macs + 5e-3))
                for c in costs]
    observed = [(w, s) for w, s in observed if s > 0]
    fitted = TimeModel().refit(observed)
    assert min(fitted.coefficients) >= 0
    assert all(TimeModel(fitted.coefficients).seconds(w) >= 0 for w, _ in observed)


def test_calibration_scales_the_reference_shape_to_the_measured_nets():
    a, b = _costs(2, seed=4)
    at_rate = lambda cost, seconds: TimeModel.calibrated([(cost, seconds)], 128)  # noqa: E731
    model = at_rate(a, 2e-3)
    assert model.seconds(Work(a, Schedule(1, 0, 128), 1)) == pytest.approx(2e-3)
    assert _relative_distance(np.array(model.coefficients) / REFERENCE, [model.coefficients[0] / REFERENCE[0]] * 5) < 1e-9
    both = TimeModel.calibrated([(a, 2e-3), (b, 8e-3)], 128)
    ratio_a = both.seconds(Work(a, Schedule(1, 0, 128), 1)) / 2e-3
    ratio_b = both.seconds(Work(b, Schedule(1, 0, 128), 1)) / 8e-3
    assert ratio_a * ratio_b == pytest.approx(1.0)  # the geometric mean of the two nets' ratios


def test_the_count_splits_macs_by_kind_of_convolution():
    for name in nas.preset_names():
        cost = nas.count(nas.load_preset(name)).cost
        assert cost.macs == nas.count(nas.load_preset(name)).macs
        assert cost.dense_macs + cost.depthwise_macs + cost.grouped_macs == cost.macs
        assert cost.layers > 0 and min(cost) >= 0
    assert nas.count(nas.load_preset("plain_cnn")).cost.depthwise_macs == 0
    g3 = nas.count(nas.load_preset("shufflenet_v1_g3")).cost
    assert g3.grouped_macs > 0 and g3.depthwise_outputs > 0
    assert nas.count(nas.load_preset("shufflenet_v1_g1")).cost.grouped_macs == 0


def test_the_estimate_of_a_plan_is_its_points_then_the_rest_at_the_mean_of_the_candidates():
    """Two planned points, three more at the mean of two candidates, two at a time."""
    unit = Cost(0, 1, layers=0)  # one dense MAC: seconds = images x the dense coefficient
    model = TimeModel((1.0, 0, 0, 0, 0), (1.0, 0, 0, 0, 0))
    planned = [Work(Cost(0, 10), Schedule(3, 0, 1), 1), Work(Cost(0, 20), Schedule(3, 0, 1), 1)]
    like = [Work(Cost(0, 4), Schedule(3, 0, 1), 1), Work(Cost(0, 8), Schedule(3, 0, 1), 1)]
    overhead = estimate.POINT_OVERHEAD_S["search"]
    seconds = estimate.estimate_s(planned, model, 2, "search", more=3, like=like)
    assert seconds == pytest.approx((30 + 60 + 3 * 18 + 5 * overhead) / 2)
    drifted = estimate.estimate_s(planned, model, 2, "search", more=3, like=like, drift=1.5)
    assert drifted == pytest.approx((30 + 60 + 3 * 18 * 1.5 + 5 * overhead) / 2)  # not the overhead
    assert model.seconds(Work(unit, Schedule(3, 6, 1), 2)) == pytest.approx(3 * 2 + 6 * 2 / 3)
