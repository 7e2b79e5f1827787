"""nas.stats: the t interval and Welch's test, against t tables and (where installed) SciPy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nas.stats import betainc, ci95, t_cdf, t_ppf, welch_p_value

# two-sided 95% critical values t(0.975, dof) from any t table
T_TABLE = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 9: 2.262, 10: 2.228, 30: 2.042}


@pytest.mark.parametrize("dof,t", T_TABLE.items())
def test_t_quantiles_match_the_table(dof, t):
    assert t_ppf(0.975, dof) == pytest.approx(t, abs=5e-4)
    assert t_cdf(t, dof) == pytest.approx(0.975, abs=1e-4)
    assert t_ppf(0.025, dof) == pytest.approx(-t, abs=5e-4)


def test_closed_forms():
    # dof=1 is the Cauchy distribution; dof=2 has F(t) = 1/2 + t / (2 sqrt(2 + t^2))
    for t in (-7.0, -1.0, 0.0, 0.3, 2.5, 40.0):
        assert t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)
        assert t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-12)
    assert betainc(1, 1, 0.3) == pytest.approx(0.3)  # uniform
    assert betainc(2, 3, 0.0) == 0.0 and betainc(2, 3, 1.0) == 1.0


def test_ci95():
    low, high = ci95([1.0, 2.0, 3.0])  # mean 2, s = 1, n = 3: 2 ± 4.303 / sqrt(3)
    assert (low, high) == pytest.approx((2 - 4.3027 / math.sqrt(3), 2 + 4.3027 / math.sqrt(3)), abs=1e-3)
    assert all(math.isnan(v) for v in ci95([0.7]))
    assert all(math.isnan(v) for v in ci95([]))
    assert ci95([0.5, float("nan"), 0.7]) == pytest.approx(ci95([0.5, 0.7]))  # failed seeds dropped
    assert ci95([0.6, 0.6]) == (0.6, 0.6)


def test_welch_textbook_example():
    # two groups, means 20 and 22, variances 1 and 4, three values each (worked by hand):
    a, b = [19.0, 20.0, 21.0], [20.0, 22.0, 24.0]
    # t = -2 / sqrt(1/3 + 4/3) = -1.549, dof = (5/3)^2 / ((1/3)^2/2 + (4/3)^2/2) = 2.941
    dof = (5 / 3) ** 2 / ((1 / 3) ** 2 / 2 + (4 / 3) ** 2 / 2)
    expected = 2 * (1 - t_cdf(2 / math.sqrt(5 / 3), dof))
    assert welch_p_value(a, b) == pytest.approx(expected)
    assert 0.2 < welch_p_value(a, b) < 0.25
    assert welch_p_value(a, b) == pytest.approx(welch_p_value(b, a))


def test_welch_edge_cases():
    assert math.isnan(welch_p_value([0.5], [0.6, 0.7]))  # one seed: no variance estimate
    assert math.isnan(welch_p_value([0.5, float("nan")], [0.6, 0.7]))
    assert welch_p_value([1.0, 1.0], [2.0, 2.0]) == 0.0
    assert math.isnan(welch_p_value([1.0, 1.0], [1.0, 1.0]))
    assert welch_p_value([0.1, 0.2, 0.3], [0.1, 0.2, 0.3]) == pytest.approx(1.0)


def test_against_scipy():
    stats = pytest.importorskip("scipy.stats")
    special = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(0)
    for dof in (1, 1.5, 2, 3.7, 7, 25, 200):
        for q in (0.6, 0.9, 0.975, 0.999):
            assert t_ppf(q, dof) == pytest.approx(stats.t.ppf(q, dof), rel=1e-8)
        for t in (-30.0, -2.0, -0.1, 0.5, 3.0, 12.0):
            assert t_cdf(t, dof) == pytest.approx(stats.t.cdf(t, dof), rel=1e-9, abs=1e-14)
    for a, b, x in rng.uniform([0.1, 0.1, 0], [30, 30, 1], size=(200, 3)):
        assert betainc(a, b, x) == pytest.approx(special.betainc(a, b, x), rel=1e-9, abs=1e-14)
    for _ in range(100):
        na, nb = rng.integers(2, 8, size=2)
        a = rng.normal(0.7, rng.uniform(0.001, 0.05), na)
        b = rng.normal(0.7 + rng.uniform(-0.05, 0.05), rng.uniform(0.001, 0.05), nb)
        expected = stats.ttest_ind(a, b, equal_var=False).pvalue
        assert welch_p_value(a, b) == pytest.approx(expected, rel=1e-7, abs=1e-12)
        low, high = ci95(a)
        ref = stats.t.interval(0.95, na - 1, loc=a.mean(), scale=stats.sem(a))
        assert (low, high) == pytest.approx(ref, rel=1e-9)
