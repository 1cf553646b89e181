"""The study's statistics against hand-computed values and known distributions."""

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


def test_bootstrap_interval_covers_the_contrast_and_repeats():
    rng = np.random.default_rng(1)
    samples = {"x": rng.normal(60, 1, 5), "y": rng.normal(65, 1, 5)}

    def difference(means):
        return means["y"] - means["x"]

    low, high = stats.bootstrap_interval(samples, difference, n_boot=2000, seed=3)
    observed = samples["y"].mean() - samples["x"].mean()
    assert low < observed < high and 0 < high - low < 4
    assert (low, high) == stats.bootstrap_interval(samples, difference, n_boot=2000, seed=3)


def test_bootstrap_needs_two_seeds_per_group():
    low, high = stats.bootstrap_interval({"x": np.array([1.0]), "y": np.array([2.0, 3.0])}, lambda m: m["y"])
    assert math.isnan(low) and math.isnan(high)
