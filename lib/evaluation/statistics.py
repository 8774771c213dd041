"""Uncertainty with few units (7 test images on the UCSB split): intervals that hold their level, one paired
test, and Holm's correction for multiple comparisons.

- A pooled score over units (Dice = sum of 2TP over images / sum of 2TP + FP + FN) is a ratio of means. Its
  interval is Fieller's: the set of ratios R for which (mean a - R mean b)^2 <= t^2 var(mean a - R mean b), with
  Student's t on n - 1 degrees of freedom. It is exact when (a, b) are bivariate normal; a simulation test checks
  95% coverage at n = 7 and n = 58 on skewed per-image counts (the percentile bootstrap covers about 85% at n = 7).
- A paired comparison (model A vs model B on the same images) uses the mean of the per-unit differences, the
  sign-flip permutation test (exact: all 2^n sign patterns up to n = 16, else 20,000 seeded random ones) and its
  inverted interval: every shift whose test does not reject. Exact for differences symmetric about their mean.
- A share of items held by units (touching pairs split, per tile) compared between two models on the same items
  takes the sign-flip test over the units' differences in items counted, scaled to the share.
- With several comparisons, Holm's step-down adjustment of the p-values controls the family-wise error rate; a
  verdict follows from the adjusted p-value, never from the unadjusted interval.
"""
from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np
from scipy import stats

EXACT_UP_TO = 16           # units for which every sign pattern is enumerated
RANDOM_SIGN_PATTERNS = 20_000
LEVEL = 0.95


def ratio_interval(numerators: np.ndarray, denominators: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Fieller's interval for sum(numerators) / sum(denominators) over units; (nan, nan) with fewer than 2 units,
    (-inf, inf) when the denominators' mean is not clearly above zero."""
    a, b = np.asarray(numerators, float), np.asarray(denominators, float)
    n = len(a)
    if n < 2:
        return float("nan"), float("nan")
    t = stats.t.ppf(0.5 + level / 2, n - 1)
    covariance = np.cov(a, b, ddof=1) / n
    quadratic = b.mean() ** 2 - t ** 2 * covariance[1, 1]
    linear = -2 * (a.mean() * b.mean() - t ** 2 * covariance[0, 1])
    constant = a.mean() ** 2 - t ** 2 * covariance[0, 0]
    discriminant = linear ** 2 - 4 * quadratic * constant
    if quadratic <= 0 or discriminant < 0:
        return float("-inf"), float("inf")
    root = np.sqrt(discriminant)
    return float((-linear - root) / (2 * quadratic)), float((-linear + root) / (2 * quadratic))


@lru_cache(maxsize=64)
def _sign_patterns(n: int) -> np.ndarray:
    if n <= EXACT_UP_TO:
        return np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    signs = np.random.default_rng(n).choice((1.0, -1.0), size=(RANDOM_SIGN_PATTERNS, n))
    signs[0] = 1.0  # the observed pattern is one of the draws
    return signs


def sign_flip_p(differences: np.ndarray) -> float:
    """Two-sided p-value of the sign-flip test that the per-unit differences are centred on zero."""
    d = np.asarray(differences, float)
    if len(d) == 0:
        return float("nan")
    observed = abs(d.mean())
    null = np.abs(_sign_patterns(len(d)) @ d) / len(d)
    return float(np.mean(null >= observed - 1e-12 * max(1.0, observed)))


def sign_flip_interval(differences: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Every shift delta for which the sign-flip test of (differences - delta) does not reject at 1 - level:
    the interval of the mean difference. Empty data or a single unit gives (nan, nan); with too few units for
    the level to be reachable (n < 6 at 95%) it is unbounded."""
    d = np.asarray(differences, float)
    if len(d) < 2:
        return float("nan"), float("nan")
    alpha = 1 - level
    if 2 / 2 ** min(len(d), EXACT_UP_TO) > alpha:
        return float("-inf"), float("inf")
    centre, span = d.mean(), max(float(np.ptp(d)), 1e-9)

    def accepted(delta: float) -> bool:
        return sign_flip_p(d - delta) > alpha

    def edge(direction: float) -> float:
        inside, outside = centre, centre + direction * span
        while accepted(outside):
            outside += direction * span
        for _ in range(50):  # bisection to well below any reported digit
            middle = (inside + outside) / 2
            inside, outside = (middle, outside) if accepted(middle) else (inside, middle)
        return inside

    return edge(-1.0), edge(1.0)


def paired_comparison(differences: np.ndarray, level: float = LEVEL) -> dict[str, float]:
    """Mean difference, its sign-flip interval, the test's p-value and the number of units."""
    d = np.asarray(differences, float)
    d = d[~np.isnan(d)]
    low, high = sign_flip_interval(d, level)
    return {"difference": float(d.mean()) if len(d) else float("nan"), "CI low": low, "CI high": high,
            "p": sign_flip_p(d), "units": len(d)}


def paired_share_difference(totals: np.ndarray, successes_a: np.ndarray, successes_b: np.ndarray,
                            level: float = LEVEL) -> dict[str, float]:
    """Share B minus share A of the same items (touching pairs) held by the same units (tiles): sum(successes_b -
    successes_a) / sum(totals). The units carry the test, as items of one unit are not independent: the per-unit
    differences' sign-flip test and interval (`paired_comparison`), scaled by units / items, which is exact as both
    shares divide by the same items."""
    totals, a, b = (np.asarray(x, float) for x in (totals, successes_a, successes_b))
    test, items = paired_comparison(b - a, level), totals.sum()
    per_item = 1 / items if items else float("nan")  # no items: every share undefined
    return {**test, **{key: test[key] * len(totals) * per_item for key in ("difference", "CI low", "CI high")},
            "share A": a.sum() * per_item, "share B": b.sum() * per_item, "items": int(items)}


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN and does not count as a comparison)."""
    p = np.asarray(pvalues, float)
    adjusted = np.full_like(p, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    m, running = len(order), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def verdict(difference: float, adjusted_p: float, alpha: float = 1 - LEVEL) -> str:
    """`supported` (better, adjusted p < alpha), `contradicted` (worse, adjusted p < alpha), else
    `inconclusive`; `no data` without a test."""
    if np.isnan(adjusted_p):
        return "no data"
    if adjusted_p >= alpha:
        return "inconclusive"
    return "supported" if difference > 0 else "contradicted"
