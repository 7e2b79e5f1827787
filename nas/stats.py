"""Small-sample statistics: is a difference between two ablation cells real, or seed noise? And how
well two rankings of the same items agree (Kendall, Spearman, a bootstrap interval)?

Ablations repeat each cell over a handful of seeds (often 2-5), so the t-distribution, not the
normal, gives the interval and the test. Student's t CDF is computed here from the regularized
incomplete beta function (Lentz's continued fraction, as in Numerical Recipes, section 6.4), so
the project needs no SciPy; tests check both functions against `scipy.stats` where it is installed
and against textbook t tables.

NaN values (failed seeds) are dropped before anything is computed.
"""

from __future__ import annotations

import math
import random
from typing import Iterable, Sequence

__all__ = ["ci95", "welch_p_value", "t_cdf", "t_ppf", "betainc", "kendall_tau_b", "spearman_rho", "bootstrap_ci95",
           "check_paired"]


def _clean(values: Iterable[float]) -> list[float]:
    out = []
    for v in values:
        if v is None:
            continue
        f = float(v)
        if not math.isnan(f):
            out.append(f)
    return out


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), for a, b > 0 and 0 <= x <= 1."""
    if not (a > 0 and b > 0):
        raise ValueError(f"betainc needs a, b > 0 (got a={a}, b={b})")
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):  # the continued fraction converges fast here
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b  # symmetry I_x(a, b) = 1 - I_{1-x}(b, a)


def _t_tail(t: float, dof: float) -> float:
    """P(T > |t|) for Student's t with `dof` degrees of freedom (any real dof > 0)."""
    if math.isinf(t):
        return 0.0
    return 0.5 * betainc(dof / 2.0, 0.5, dof / (dof + t * t))


def t_cdf(t: float, dof: float) -> float:
    """P(T <= t) for Student's t with `dof` > 0 degrees of freedom."""
    tail = _t_tail(t, dof)
    return 1.0 - tail if t > 0 else tail


def t_ppf(q: float, dof: float) -> float:
    """The q-quantile of Student's t (0 < q < 1), by bisection on `t_cdf` (to ~1e-12)."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"t_ppf needs 0 < q < 1 (got {q})")
    if q == 0.5:
        return 0.0
    if q < 0.5:
        return -t_ppf(1.0 - q, dof)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, dof) < q:  # bracket; at dof=1, q=0.9999 the quantile is ~3183
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, dof) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def _mean_var(xs: list[float]) -> tuple[float, float]:
    n = len(xs)
    mean = math.fsum(xs) / n
    var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1) if n > 1 else math.nan
    return mean, var


def ci95(values: Iterable[float]) -> tuple[float, float]:
    """95% confidence interval of the mean: mean ± t(0.975, n-1) · s / sqrt(n).

    NaNs are dropped; with fewer than two values the interval is (NaN, NaN).
    """
    xs = _clean(values)
    n = len(xs)
    if n < 2:
        return math.nan, math.nan
    mean, var = _mean_var(xs)
    half = t_ppf(0.975, n - 1) * math.sqrt(var / n)
    return mean - half, mean + half


def welch_p_value(a: Iterable[float], b: Iterable[float]) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances) that the means of a and b differ.

    Degrees of freedom by Welch-Satterthwaite. NaNs are dropped; NaN when either side has fewer
    than two values. When both samples have zero variance the p-value is 0 if the means differ
    and NaN if they are equal, as `scipy.stats.ttest_ind(a, b, equal_var=False)` gives.
    """
    xa, xb = _clean(a), _clean(b)
    na, nb = len(xa), len(xb)
    if na < 2 or nb < 2:
        return math.nan
    ma, va = _mean_var(xa)
    mb, vb = _mean_var(xb)
    ea, eb = va / na, vb / nb
    se2 = ea + eb
    if se2 == 0.0:
        return 0.0 if ma != mb else math.nan
    t = (ma - mb) / math.sqrt(se2)
    dof = se2 * se2 / (ea * ea / (na - 1) + eb * eb / (nb - 1))
    return min(1.0, 2.0 * _t_tail(t, dof))


# ----------------------------------------------------------------------------- rank agreement
# How well two orderings of the same items agree (a cheap budget's ranking against the full one).


def _ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties given the mean of the ranks they span."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def check_paired(x: Sequence[float], y: Sequence[float]) -> None:
    if len(x) != len(y):
        raise ValueError(f"{len(x)} vs {len(y)} values")


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b: (concordant - discordant) / sqrt((n0 - ties_x) (n0 - ties_y)) over all
    pairs, ties in either variable handled (scipy.stats.kendalltau's default). NaN when either
    side is constant or fewer than 2 values."""
    check_paired(x, y)
    n = len(x)
    concordant = discordant = ties_x = ties_y = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                ties_x += 1
                ties_y += 1
            elif dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    pairs = n * (n - 1) // 2
    denominator = math.sqrt((pairs - ties_x) * (pairs - ties_y))
    return (concordant - discordant) / denominator if denominator > 0 else math.nan


def bootstrap_ci95(statistic, n: int, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap 95% interval of `statistic(indices)` over n archs resampled with
    replacement (NaN draws, e.g. a constant resample, are skipped)."""
    rng, draws = random.Random(seed), []
    for _ in range(resamples):
        value = statistic([rng.randrange(n) for _ in range(n)])
        if not math.isnan(value):
            draws.append(value)
    if not draws:
        return math.nan, math.nan
    draws.sort()
    return draws[int(0.025 * (len(draws) - 1))], draws[int(math.ceil(0.975 * (len(draws) - 1)))]


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: Pearson's correlation of the (tie-averaged) ranks. NaN when constant."""
    check_paired(x, y)
    rx, ry = _ranks(x), _ranks(y)
    n = len(x)
    if n < 2:
        return math.nan
    mx, my = sum(rx) / n, sum(ry) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else math.nan
