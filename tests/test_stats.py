"""The study's statistics against hand-computed values, Student's table and known distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fer_lib import stats


def test_mcnemar_counts_discordant_images_and_gives_the_exact_p_value():
    a = np.array([1] * 10 + [0] * 2 + [1] * 30 + [0] * 8, dtype=bool)
    b = np.array([0] * 10 + [1] * 2 + [1] * 30 + [0] * 8, dtype=bool)
    result = stats.mcnemar(a, b)
    assert (result["only_a"], result["only_b"]) == (10, 2)
    assert result["p_value"] == pytest.approx(2 * (1 + 12 + 66) / 2**12)
    scipy_stats = pytest.importorskip("scipy.stats")
    assert result["p_value"] == pytest.approx(scipy_stats.binomtest(2, 12, 0.5).pvalue)


def test_mcnemar_symmetric_and_bounded():
    rng = np.random.default_rng(0)
    a, b = rng.random(500) < 0.7, rng.random(500) < 0.7
    assert stats.mcnemar(a, b)["p_value"] == pytest.approx(stats.mcnemar(b, a)["p_value"])
    assert stats.mcnemar(a, a) == {"only_a": 0, "only_b": 0, "p_value": 1.0}
    with pytest.raises(ValueError, match="equal-length"):
        stats.mcnemar(a, b[:-1])


def test_t_quantiles_match_the_tables():
    # Student's table: t(0.975) for 1, 2, 4 and 30 degrees of freedom
    for df, expected in ((1, 12.706), (2, 4.303), (4, 2.776), (30, 2.042)):
        assert stats.t_quantile(0.975, df) == pytest.approx(expected, abs=1e-3)
    assert stats.t_quantile(0.025, 3) == pytest.approx(-stats.t_quantile(0.975, 3))
    assert stats.t_cdf(0.0, 2.5) == pytest.approx(0.5)
    scipy_stats = pytest.importorskip("scipy.stats")
    for df in (1.0, 1.4, 2.7, 9.0, 250.0):  # Welch's degrees of freedom are not whole
        assert stats.t_quantile(0.975, df) == pytest.approx(scipy_stats.t.ppf(0.975, df), rel=1e-9)
        assert stats.t_cdf(-1.3, df) == pytest.approx(scipy_stats.t.cdf(-1.3, df), rel=1e-9)
    with pytest.raises(ValueError, match="0 < p < 1"):
        stats.t_quantile(1.0, 3)


def test_mean_interval_by_hand():
    interval = stats.mean_interval(np.array([66.0, 67.0, 68.0]))  # mean 67, sd 1, n 3
    half = 4.302653 / math.sqrt(3)
    assert interval == pytest.approx((67.0, 67.0 - half, 67.0 + half, 2.0))
    one = stats.mean_interval(np.array([66.0]))
    assert one.estimate == 66.0 and math.isnan(one.low) and math.isnan(one.high)
    assert math.isnan(stats.mean_interval(np.array([])).estimate)


def test_welch_interval_of_a_contrast():
    a, b = np.array([1.0, 2.0, 4.0]), np.array([3.0, 7.0])
    interval = stats.contrast_interval({"a": a, "b": b}, {"b": 1.0, "a": -1.0})
    # Welch by hand: v_a = 7/3/3, v_b = 8/2; df = (v_a + v_b)^2 / (v_a^2/2 + v_b^2/1)
    v_a, v_b = (7 / 3) / 3, 8 / 2
    df = (v_a + v_b) ** 2 / (v_a**2 / 2 + v_b**2 / 1)
    half = stats.t_quantile(0.975, df) * math.sqrt(v_a + v_b)
    assert interval == pytest.approx((5 - 7 / 3, 5 - 7 / 3 - half, 5 - 7 / 3 + half, df))
    scipy_stats = pytest.importorskip("scipy.stats")
    welch = scipy_stats.ttest_ind(b, a, equal_var=False)
    assert (interval.low, interval.high) == pytest.approx(tuple(welch.confidence_interval()))


def test_a_contrast_needs_two_seeds_per_cell_for_its_interval():
    weights = {"x": -0.5, "y": 0.5}
    one = stats.contrast_interval({"x": np.array([1.0]), "y": np.array([2.0, 3.0])}, weights)
    assert one.estimate == pytest.approx(0.75) and math.isnan(one.low) and math.isnan(one.high)
    assert math.isnan(stats.contrast_interval({"x": np.array([]), "y": np.array([2.0])}, weights).estimate)
    flat = stats.contrast_interval({"x": np.array([1.0, 1.0]), "y": np.array([2.0, 2.0])}, weights)
    assert flat == (0.5, 0.5, 0.5, 2.0)


def test_t_intervals_cover_at_their_stated_rate_with_two_seeds():
    """Where a percentile bootstrap of two seeds covers far too seldom, the t interval keeps 95%."""
    rng = np.random.default_rng(4)
    draws = rng.normal(0.0, 1.0, size=(2000, 2, 2))
    covered = [(lambda i: i.low <= 0 <= i.high)(stats.contrast_interval({"x": x, "y": y}, {"y": 1.0, "x": -1.0}))
               for x, y in draws]
    assert np.mean(covered) >= 0.94
    means = [(lambda i: i.low <= 0 <= i.high)(stats.mean_interval(x)) for x, _ in draws]
    assert np.mean(means) == pytest.approx(0.95, abs=0.015)


def test_seed_difference_limit():
    values = np.array([70.0, 72.0])  # sd sqrt(2)
    assert stats.seed_difference_limit(values) == pytest.approx(stats.t_quantile(0.975, 1) * 2)
    assert math.isnan(stats.seed_difference_limit(np.array([70.0])))
