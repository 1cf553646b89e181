"""The few statistics the study needs, written out so that a reader can check them.

Percentile bootstrap over seeds for the effects of the 2x2 design, and the exact
McNemar test for two classifiers scored on the same images.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

#: Two-sided coverage of every interval in the study.
CONFIDENCE = 0.95


def bootstrap_interval(
    samples: Mapping[str, np.ndarray],
    statistic: Callable[[Mapping[str, float]], float],
    *,
    n_boot: int = 10_000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of ``statistic`` over groups resampled with replacement.

    ``samples`` maps each group (a cell of the study) to its per-seed values;
    ``statistic`` takes the groups' means. Each group is resampled on its own,
    so the interval reflects seed-to-seed variation within every cell. With
    fewer than two values in some group the interval is undefined: (nan, nan).
    """
    if any(len(v) < 2 for v in samples.values()):
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = {name: rng.choice(np.asarray(v, dtype=float), size=(n_boot, len(v))).mean(axis=1)
             for name, v in samples.items()}
    values = np.array([statistic({name: draws[name][i] for name in draws}) for i in range(n_boot)])
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


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
