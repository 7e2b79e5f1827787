"""Small-sample statistics: is a difference between two ablation cells real or seed noise, and how
well two rankings of the same items agree. Cells have 2-5 seeds, so intervals and tests use Student's
t, whose CDF comes from the regularized incomplete beta function (Lentz's continued fraction,
Numerical Recipes 6.4): no SciPy needed; tests check against `scipy.stats` and t tables.
NaN values (failed seeds) are dropped before anything is computed."""

from __future__ import annotations

import math
import random
from typing import Iterable, Sequence

__all__ = ["ci95", "welch_p_value", "t_cdf", "t_ppf", "betainc", "kendall_tau_b", "spearman_rho", "bootstrap_ci95",
           "check_paired"]


def _clean(values: Iterable[float]) -> list[float]:
    return [f for f in (float(v) for v in values if v is not None) if not math.isnan(f)]


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    clamp = lambda v: v if abs(v) > tiny else tiny  # noqa: E731
    c, d = 1.0, 1.0 / clamp(1.0 - (a + b) * x / (a + 1.0))
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((a - 1.0 + m2) * (a + m2)),
                   -(a + m) * (a + b + m) * x / ((a + m2) * (a + 1.0 + m2))):
            d = 1.0 / clamp(1.0 + aa * d)
            c = clamp(1.0 + aa / c)
            delta = d * c
            h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), for a, b > 0 and 0 <= x <= 1."""
    if not (a > 0 and b > 0):
        raise ValueError(f"betainc needs a, b > 0 (got a={a}, b={b})")
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):  # the continued fraction converges fast here
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b  # symmetry I_x(a, b) = 1 - I_{1-x}(b, a)


def _t_tail(t: float, dof: float) -> float:
    """P(T > |t|) for Student's t with `dof` degrees of freedom (any real dof > 0)."""
    return 0.0 if math.isinf(t) else 0.5 * betainc(dof / 2.0, 0.5, dof / (dof + t * t))


def t_cdf(t: float, dof: float) -> float:
    """P(T <= t) for Student's t with `dof` > 0 degrees of freedom."""
    tail = _t_tail(t, dof)
    return 1.0 - tail if t > 0 else tail


def t_ppf(q: float, dof: float) -> float:
    """The q-quantile of Student's t (0 < q < 1), by bisection on `t_cdf` (to ~1e-12)."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"t_ppf needs 0 < q < 1 (got {q})")
    if q <= 0.5:
        return 0.0 if q == 0.5 else -t_ppf(1.0 - q, dof)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, dof) < q:  # bracket; at dof=1, q=0.9999 the quantile is ~3183
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf(mid, dof) < q else (lo, mid)
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def _mean_var(xs: list[float]) -> tuple[float, float]:
    mean = math.fsum(xs) / len(xs)
    return mean, math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1) if len(xs) > 1 else math.nan


def ci95(values: Iterable[float]) -> tuple[float, float]:
    """95% confidence interval of the mean, mean ± t(0.975, n-1) · s / sqrt(n); (NaN, NaN) below 2 values."""
    xs = _clean(values)
    if len(xs) < 2:
        return math.nan, math.nan
    mean, var = _mean_var(xs)
    half = t_ppf(0.975, len(xs) - 1) * math.sqrt(var / len(xs))
    return mean - half, mean + half


def welch_p_value(a: Iterable[float], b: Iterable[float]) -> float:
    """Two-sided p-value of Welch's t-test (Welch-Satterthwaite dof) that the means of a and b differ.

    NaN when a side has fewer than two values; with zero variance on both sides 0 if the means
    differ, else NaN, as `scipy.stats.ttest_ind(a, b, equal_var=False)` gives."""
    xa, xb = _clean(a), _clean(b)
    na, nb = len(xa), len(xb)
    if na < 2 or nb < 2:
        return math.nan
    (ma, va), (mb, vb) = _mean_var(xa), _mean_var(xb)
    ea, eb = va / na, vb / nb
    se2 = ea + eb
    if se2 == 0.0:
        return 0.0 if ma != mb else math.nan
    dof = se2 * se2 / (ea * ea / (na - 1) + eb * eb / (nb - 1))
    return min(1.0, 2.0 * _t_tail((ma - mb) / math.sqrt(se2), dof))


# ----------------------------------------------------------------------------- rank agreement
# How well two orderings of the same items agree (a cheap budget's ranking against the full one).


def _ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties given the mean of the ranks they span."""
    ordered = sorted(values)
    first = {v: len(ordered) - i for i, v in enumerate(reversed(ordered))}  # 1-based rank of each value's first
    last = {v: i + 1 for i, v in enumerate(ordered)}
    return [(first[v] + last[v]) / 2 for v in values]


def check_paired(x: Sequence[float], y: Sequence[float]) -> None:
    if len(x) != len(y):
        raise ValueError(f"{len(x)} vs {len(y)} values")


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b, ties in either variable handled (scipy.stats.kendalltau's default); NaN
    when either side is constant or has fewer than 2 values."""
    check_paired(x, y)
    diffs = [(x[i] - x[j], y[i] - y[j]) for i in range(len(x)) for j in range(i + 1, len(x))]
    score = sum((dx * dy > 0) - (dx * dy < 0) for dx, dy in diffs)  # concordant - discordant
    untied_x, untied_y = sum(dx != 0 for dx, _ in diffs), sum(dy != 0 for _, dy in diffs)
    return score / math.sqrt(untied_x * untied_y) if untied_x and untied_y else math.nan


def bootstrap_ci95(statistic, n: int, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap 95% interval of `statistic(indices)` over n archs resampled with
    replacement (NaN draws, e.g. a constant resample, are skipped)."""
    rng = random.Random(seed)
    draws = sorted(_clean(statistic([rng.randrange(n) for _ in range(n)]) for _ in range(resamples)))
    if not draws:
        return math.nan, math.nan
    return draws[int(0.025 * (len(draws) - 1))], draws[int(math.ceil(0.975 * (len(draws) - 1)))]


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: Pearson's correlation of the (tie-averaged) ranks. NaN when constant."""
    check_paired(x, y)
    if len(x) < 2:
        return math.nan
    rx, ry = _ranks(x), _ranks(y)
    mx, my = sum(rx) / len(x), sum(ry) / len(x)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx, syy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else math.nan
