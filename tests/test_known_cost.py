"""The known-cost EHVI sampler: its hypervolume-gain arithmetic and what it proposes (no Ray)."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest

from nas.pareto import hypervolume, parse_objectives
from nas.search.known_cost import expected_hv_gain


def _exact_gain(front, acc, cost, reference):
    directions = ["max", "min"]
    before = hypervolume(np.array(front), directions, reference) if front else 0.0
    return hypervolume(np.array([*front, (acc, cost)]), directions, reference) - before


@pytest.mark.parametrize("acc, cost", [(0.5, 1.0), (0.7, 2.5), (0.35, 0.2), (0.9, 3.9), (0.2, 1.0)])
def test_gain_of_a_certain_candidate_is_the_exact_hypervolume_gain(acc, cost):
    front = [(0.4, 1.0), (0.6, 2.0), (0.8, 3.0)]
    reference = (0.3, 4.0)
    gain = expected_hv_gain(front, np.array([acc]), np.array([1e-7]), np.array([cost]), reference)
    assert gain[0] == pytest.approx(_exact_gain(front, acc, cost, reference), abs=3e-3)


def test_uncertainty_has_value_and_dominated_candidates_have_none():
    front = [(0.5, 1.0), (0.7, 2.0)]
    reference = (0.3, 3.0)
    sure, unsure = expected_hv_gain(front, np.array([0.6, 0.6]), np.array([1e-7, 0.1]),
                                    np.array([2.5, 2.5]), reference)
    assert sure == pytest.approx(0.0, abs=1e-6)  # (0.6, 2.5) is dominated by (0.7, 2.0)
    # it may turn out better than 0.7: 0.5 MMACs cheaper x E[(a - 0.7)+] = 0.1 (phi(1) - (1 - Phi(1)))
    assert unsure == pytest.approx(0.5 * 0.1 * (0.2419707 - 0.1586553), rel=1e-4)


def _searcher(sampler, limits, objectives="val_acc,macs"):
    from nas.search.searcher import SAMPLERS, Limits, OptunaSearcher
    from nas.space import load_space

    space = load_space("shufflenet")
    study = optuna.create_study(directions=["maximize", "minimize"][:len(objectives.split(","))] or None,
                                sampler=SAMPLERS[sampler](0, 40))
    return OptunaSearcher(study, space, parse_objectives(objectives),
                          to_spec=lambda p: space.to_spec(p, resolution=32, num_classes=10),
                          limits=Limits(max_macs=limits), max_epochs=4, trials=40,
                          on_infeasible=lambda s: None), study


def test_after_its_random_start_it_proposes_only_new_feasible_points_and_learns_the_trend():
    """Accuracy that grows with log MACs: the guided asks spread along the cost axis and none
    is over the limit (the sampler costs candidates by `nas.count` before proposing)."""
    searcher, study = _searcher("ehvi", 25e6)
    start = study.sampler.n_startup
    free_before = 0
    for i in range(start + 12):
        config = searcher.suggest(str(i))
        macs = config["_nas_costs"]["macs"]
        assert macs <= 25e6
        if i == start:
            free_before = searcher.infeasible
        acc = 0.2 + 0.05 * math.log10(macs) + (0.02 if config["shuffle"] else 0.0)
        searcher.on_trial_complete(str(i), {"epoch": 4, "val_acc": acc, "macs": macs})
    assert searcher.infeasible == free_before  # guided asks: no infeasible or duplicate sample
    guided = [t for t in study.trials if t.user_attrs.get("nas_status") == "COMPLETED"][start:]
    assert sum(t.params["shuffle"] for t in guided) >= 0.75 * len(guided)  # it learned shuffle helps
    costs = sorted(t.user_attrs["macs"] for t in guided)
    assert costs[-1] / costs[0] > 3  # and it covers the front, not one corner of it


def test_it_refuses_objectives_it_cannot_cost():
    from nas.errors import NasError

    with pytest.raises(NasError, match="ehvi"):
        _searcher("ehvi", 25e6, objectives="val_acc,macs,params")


def test_pruned_trials_train_the_surrogate_at_their_fidelity():
    searcher, study = _searcher("ehvi", 25e6)
    seen = []
    real_gp = __import__("nas.search.known_cost", fromlist=["_GP"])._GP

    class Spy(real_gp):
        def __init__(self, X, y):
            seen.append(X[:, -2].copy())  # the fidelity column
            super().__init__(X, y)

    import nas.search.known_cost as kc

    kc._GP = Spy
    try:
        for i in range(2 * study.sampler.n_startup + 2):  # past the random start of completed trials
            config = searcher.suggest(str(i))
            epoch = 4 if i % 2 == 0 else 1  # every other trial "pruned" after 1 of 4 epochs
            searcher.on_trial_complete(str(i), {"epoch": epoch, "val_acc": 0.3 + 0.01 * i,
                                                "macs": config["_nas_costs"]["macs"]})
    finally:
        kc._GP = real_gp
    assert seen and sorted(set(seen[-1].tolist())) == [0.25, 1.0]



def test_the_surrogate_pools_additive_effects_into_unseen_combinations():
    """Each option's effect, learned from the trials that share it, predicts a combination no
    trial trained (the linear part of the kernel)."""
    from nas.search.known_cost import _GP

    rng = np.random.default_rng(0)
    effect_a, effect_b = rng.normal(0, 0.03, 5), rng.normal(0, 0.03, 4)

    def row(i, j):
        return [*np.eye(5)[i], *np.eye(4)[j], 1.0, 6.5]  # one-hot options, fidelity, log cost

    combos = [(i, j) for i in range(5) for j in range(4)]
    held_out = [(0, 1), (1, 2), (2, 3), (3, 0), (4, 1)]
    train = [c for c in combos if c not in held_out]
    y = np.array([0.5 + effect_a[i] + effect_b[j] + rng.normal(0, 0.003) for i, j in train])
    gp = _GP(np.array([row(*c) for c in train]), y)
    mean, sd = gp.predict(np.array([row(*c) for c in held_out]))
    truth = np.array([0.5 + effect_a[i] + effect_b[j] for i, j in held_out])
    assert np.sqrt(np.mean((mean - truth) ** 2)) < 0.25 * truth.std()
    assert np.all(np.abs(mean - truth) < 3 * sd + 0.01)


def test_a_gain_inside_the_noise_is_a_tie():
    """epsilon raises the front's accuracies: beating the top net by half the noise at its
    cost is worth nothing, beating it by more counts only the part beyond the noise."""
    front, reference, noise = [(0.5, 1.0), (0.6, 2.0)], (0.3, 3.0), 0.01
    certain = np.array([1e-9, 1e-9])
    inside, beyond = expected_hv_gain(front, np.array([0.605, 0.62]), certain, np.array([2.0, 2.0]),
                                      reference, epsilon=noise)
    assert inside == pytest.approx(0.0, abs=1e-12)
    assert beyond == pytest.approx((3.0 - 2.0) * (0.62 - 0.61))
    plain = expected_hv_gain(front, np.array([0.605]), certain[:1], np.array([2.0]), reference)
    assert plain[0] == pytest.approx((3.0 - 2.0) * 0.005)  # without the noise it was a gain
    cheaper = expected_hv_gain(front, np.array([0.595]), certain[:1], np.array([1.5]), reference,
                               epsilon=noise)
    assert cheaper[0] == pytest.approx((2.0 - 1.5) * (0.595 - 0.51))  # cheaper still counts


def test_the_noise_of_a_tie_is_the_gps_fitted_noise():
    from nas.search.known_cost import _GP

    rng = np.random.default_rng(1)
    log_cost = rng.uniform(6.2, 7.4, 80)
    options = np.eye(4)[rng.integers(0, 4, 80)]
    X = np.column_stack([options, np.ones(80), log_cost])
    y = 0.1 + 0.05 * log_cost + options @ np.array([0.0, 0.01, -0.01, 0.02]) + rng.normal(0, 0.01, 80)
    assert 0.006 < _GP(X, y).noise_std < 0.016  # the 0.01 of the data, not a constant


def test_of_candidates_of_equal_value_the_cheaper_to_train_wins(monkeypatch):
    import nas.search.known_cost as kc

    searcher, study = _searcher("ehvi", 25e6)
    for i in range(study.sampler.n_startup):
        config = searcher.suggest(str(i))
        searcher.on_trial_complete(str(i), {"epoch": 4, "val_acc": 0.5, "macs": config["_nas_costs"]["macs"],
                                            "train_s": 100.0})
    monkeypatch.setattr(kc, "expected_hv_gain", lambda front, mu, *args, **kwargs: np.ones(len(mu)))
    study.sampler.bind_cost(searcher._known_cost(), searcher._fidelity,
                            seconds=lambda params: float(params["s1.depth"]))
    assert searcher.suggest("cheap")["s1.depth"] == 4  # the space's shallowest: the fewest seconds
    study.sampler.bind_cost(searcher._known_cost(), searcher._fidelity,
                            seconds=lambda params: 1.0 / params["s1.depth"])
    assert searcher.suggest("deep")["s1.depth"] == 8


def test_the_searcher_refits_its_time_model_on_trained_trials():
    searcher, study = _searcher("ehvi", 25e6)
    prior = searcher.time_model
    config = searcher.suggest("0")
    searcher.on_trial_complete("0", {"epoch": 4, "val_acc": 0.5, "macs": config["_nas_costs"]["macs"],
                                     "train_s": 1e6})
    assert study.trials[config["_nas_trial"]].user_attrs["train_s"] == 1e6
    assert searcher.time_model.coefficients != prior.coefficients
    assert sum(searcher.time_model.coefficients) > sum(prior.coefficients)  # a slow machine: slower
