"""Intervals that hold their level with few units, the sign-flip test, Holm's adjustment."""
import numpy as np
import pytest

from lib.evaluation import statistics


def _images(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-image Dice numerators and denominators: skewed sizes, varied recall and precision."""
    size = rng.lognormal(8, 0.6, n)
    tp = size * rng.beta(6, 4, n)
    fp = tp / rng.beta(6, 3, n) - tp
    return 2 * tp, 2 * tp + fp + (size - tp)


@pytest.mark.slow
@pytest.mark.parametrize("n", [7, 58])
def test_ratio_interval_covers_95_percent_with_7_and_58_images(n):
    rng = np.random.default_rng(0)
    a, b = _images(rng, 2_000_000)
    truth = a.sum() / b.sum()
    covered = [low <= truth <= high for low, high in
               (statistics.ratio_interval(*_images(rng, n)) for _ in range(2000))]
    assert abs(np.mean(covered) - 0.95) <= 0.025  # 2000 draws: the standard error is 0.005


@pytest.mark.slow
@pytest.mark.parametrize("n", [7, 58])
def test_sign_flip_interval_covers_95_percent_with_7_and_58_images(n):
    rng = np.random.default_rng(1)
    draws = 1000 if n == 7 else 300
    covered = [(lambda lo_hi: lo_hi[0] <= 0.05 <= lo_hi[1])(statistics.sign_flip_interval(rng.normal(0.05, 0.1, n)))
               for _ in range(draws)]
    assert abs(np.mean(covered) - 0.95) <= (0.025 if n == 7 else 0.04)


def test_sign_flip_test_by_hand():
    assert statistics.sign_flip_p(np.ones(7)) == pytest.approx(2 / 128)   # all 7 images better: the smallest p
    assert statistics.sign_flip_p(np.array([1.0, -1.0, 1.0, -1.0])) == 1.0
    low, high = statistics.sign_flip_interval(np.array([0.1, 0.2, 0.15, 0.3, 0.05, 0.25, 0.2]))
    assert 0 < low < 0.178 < high < 0.3
    assert statistics.sign_flip_interval(np.ones(5)) == (-np.inf, np.inf)  # 5 units cannot reach 95%
    assert np.isnan(statistics.sign_flip_interval(np.ones(1))[0])


def test_paired_comparison_drops_missing_units():
    result = statistics.paired_comparison(np.array([0.1, np.nan, 0.2, 0.3, 0.1, 0.2, 0.2, 0.1]))
    assert result["units"] == 7 and result["difference"] == pytest.approx(1.2 / 7) and result["p"] < 0.05


def test_paired_share_difference_by_hand():
    totals = np.array([2, 4, 1, 3, 2, 2])  # touching pairs per tile
    a = np.array([1, 2, 1, 1, 1, 0])       # split by model A: 6 of 14
    b = np.array([2, 4, 1, 3, 2, 1])       # split by model B: 13 of 14
    result = statistics.paired_share_difference(totals, a, b)
    assert result["share A"] == pytest.approx(6 / 14) and result["share B"] == pytest.approx(13 / 14)
    assert result["difference"] == pytest.approx(7 / 14)
    assert result["units"] == 6 and result["items"] == 14
    # five tiles gain, one ties: of the 2^6 sign patterns only the all-plus and all-minus ones (each twice, the tie's
    # sign being free) reach the observed mean
    assert result["p"] == pytest.approx(4 / 64)
    assert result["CI low"] < result["difference"] < result["CI high"]
    same = statistics.paired_share_difference(totals, a, a)
    assert same["difference"] == 0 and same["p"] == 1


def test_holm_by_hand():
    adjusted = statistics.holm(np.array([0.01, 0.04, 0.03, np.nan]))
    assert adjusted[:3] == pytest.approx([0.03, 0.06, 0.06]) and np.isnan(adjusted[3])
    assert statistics.holm(np.array([0.5, 0.9])).tolist() == [1.0, 1.0]


def test_verdicts_follow_the_adjusted_p_value():
    assert statistics.verdict(0.1, 0.01) == "supported" and statistics.verdict(-0.1, 0.01) == "contradicted"
    assert statistics.verdict(0.1, 0.2) == "inconclusive" and statistics.verdict(0.1, np.nan) == "no data"


def test_ratio_interval_brackets_the_pooled_ratio():
    low, high = statistics.ratio_interval(np.array([180.0, 20, 100]), np.array([190.0, 110, 110]))
    assert low < 300 / 410 < high
    assert np.isnan(statistics.ratio_interval(np.array([1.0]), np.array([2.0]))[0])
