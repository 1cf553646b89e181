"""The few statistics the study needs, written out so that a reader can check them.

Intervals over seeds are Student's t intervals, which stay honest with two or three
seeds per cell, where a bootstrap that resamples so few values is far too narrow:
for one cell's mean, mean +- t(n-1) * sd / sqrt(n); for a contrast of several cells'
means (an effect of the 2x2 design), Welch's interval, which lets every cell have its
own variance and takes its degrees of freedom from the Welch-Satterthwaite formula.
Then the exact McNemar test for two classifiers scored on the same images.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

#: Two-sided coverage of every interval in the study.
CONFIDENCE = 0.95


class Interval(NamedTuple):
    """An estimate with its two-sided ``CONFIDENCE`` interval and the t distribution's degrees of
    freedom; the bounds are NaN where the seeds cannot give one (fewer than two in some cell)."""

    estimate: float
    low: float
    high: float
    df: float


NAN = float("nan")


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularized incomplete beta function (modified Lentz)."""
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1) < 1e-15:
            break
    return result


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularized incomplete beta function, for 0 <= x <= 1."""
    if x <= 0 or x >= 1:
        return float(x >= 1)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(a, b, x) / a
    return 1 - front * _beta_fraction(b, a, 1 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` (any positive real) degrees of freedom."""
    tail = 0.5 * _incomplete_beta(df / 2, 0.5, df / (df + t * t))
    return 1 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom, by bisection on :func:`t_cdf`."""
    if not 0 < p < 1 or not df > 0:
        raise ValueError(f"need 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, 2 * high
    while high - low > 1e-13 * high:
        middle = (low + high) / 2
        low, high = (middle, high) if t_cdf(middle, df) < p else (low, middle)
    return (low + high) / 2


def _critical(df: float) -> float:
    return t_quantile(1 - (1 - CONFIDENCE) / 2, df)


def mean_interval(values: np.ndarray) -> Interval:
    """The mean of ``values`` (one per seed) with its t interval: mean +- t(n-1) * sd / sqrt(n)."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n < 2:
        return Interval(float(values.mean()) if n else NAN, NAN, NAN, NAN)
    half = _critical(n - 1) * float(values.std(ddof=1)) / math.sqrt(n)
    mean = float(values.mean())
    return Interval(mean, mean - half, mean + half, float(n - 1))


def contrast_interval(samples: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> Interval:
    """A weighted sum of group means (``weights``: group -> weight; ``samples``: group -> values, one
    per seed) with Welch's t interval: the variance is the sum of w^2 s^2 / n over the groups, each
    with its own s, and the degrees of freedom are Welch-Satterthwaite's,
    (sum of v)^2 / sum of v^2 / (n - 1) with v = w^2 s^2 / n."""
    groups = {name: np.asarray(samples[name], dtype=float) for name in weights}
    if any(len(v) == 0 for v in groups.values()):
        return Interval(NAN, NAN, NAN, NAN)
    estimate = float(sum(w * groups[name].mean() for name, w in weights.items()))
    if any(len(v) < 2 for v in groups.values()):
        return Interval(estimate, NAN, NAN, NAN)
    parts = [w * w * float(groups[name].var(ddof=1)) / len(groups[name]) for name, w in weights.items()]
    variance = sum(parts)
    if variance == 0:
        return Interval(estimate, estimate, estimate, float(sum(len(v) - 1 for v in groups.values())))
    df = variance**2 / sum(p * p / (len(groups[name]) - 1) for p, name in zip(parts, weights, strict=True))
    half = _critical(df) * math.sqrt(variance)
    return Interval(estimate, estimate - half, estimate + half, float(df))


def seed_difference_limit(values: np.ndarray) -> float:
    """How far apart two single runs that differ only in their seed can lie before chance
    alone would part them so far less than once in 20 (``CONFIDENCE``): t(n-1) * sd * sqrt(2),
    with the sd of ``values`` (one per seed, n of them). NaN with fewer than two."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return NAN
    return _critical(len(values) - 1) * float(values.std(ddof=1)) * math.sqrt(2)


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, float]:
    """Exact McNemar test: do two classifiers err on the same images at different rates?

    ``b`` counts images only A gets right, ``c`` those only B gets right; under the null
    hypothesis each discordant image is a fair coin, so the two-sided p-value is twice
    the binomial tail of the smaller count.
    """
    correct_a, correct_b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if correct_a.shape != correct_b.shape or correct_a.ndim != 1:
        raise ValueError(f"need two equal-length vectors of per-image correctness, got {correct_a.shape} "
                         f"and {correct_b.shape}")
    b = int(np.sum(correct_a & ~correct_b))
    c = int(np.sum(~correct_a & correct_b))
    n = b + c
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n if n else 1.0
    return {"only_a": b, "only_b": c, "p_value": min(1.0, 2 * tail)}
