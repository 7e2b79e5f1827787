"""Sampler choices of the search (fast: no Ray, no training)."""

from __future__ import annotations

import optuna
import pytest

from nas.search.searcher import SAMPLERS, nsga2_population


@pytest.mark.parametrize("trials, population", [(8, 8), (50, 12), (200, 50), (1000, 50)])
def test_nsga2_population_gives_generations_to_select_in(trials, population):
    assert nsga2_population(trials) == population
    if trials >= 32:  # at least four generations whenever the budget allows
        assert trials / population >= 4


def test_samplers_are_seeded_and_sized_by_the_trial_budget():
    nsga2 = SAMPLERS["nsga2"](3, 50)
    assert isinstance(nsga2, optuna.samplers.NSGAIISampler)
    assert nsga2._population_size == 12
    draws = []
    for _ in range(2):
        study = optuna.create_study(sampler=SAMPLERS["random"](7, 10))
        draws.append([study.ask().suggest_int("x", 0, 10**6) for _ in range(5)])
    assert draws[0] == draws[1]
