"""Means with confidence intervals: 95% percentile bootstrap (2000 resamples, fixed seed)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A mean with its confidence interval over ``n`` defined (non-NaN) values."""

    mean: float
    low: float
    high: float
    n: int

    def format(self, digits: int = 3) -> str:
        """``mean [low, high]``, or ``n/a`` when there are no values."""
        if self.n == 0:
            return "n/a"

        def number(value: float) -> str:
            return f"{round(value, digits) + 0.0:.{digits}f}"  # + 0.0 turns -0.0 into 0.0

        if self.n == 1 or not math.isfinite(self.low):
            return number(self.mean)
        return f"{number(self.mean)} [{number(self.low)}, {number(self.high)}]"


def bootstrap_mean(values, confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> Estimate:
    """Mean and percentile-bootstrap confidence interval, ignoring NaN; infinities are kept out too.

    Args:
        values: 1-d numbers (NaN = undefined for that pair).
        confidence: two-sided coverage of the interval.
        resamples: bootstrap resamples.
        seed: seed of the resampling (the interval is reproducible).

    Returns:
        :class:`Estimate`; with one value the interval is that value, with none everything is NaN.
    """
    array = np.asarray(values, dtype=np.float64).ravel()
    array = array[np.isfinite(array)]
    n = len(array)
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    mean = float(array.mean())
    if n == 1:
        return Estimate(mean, mean, mean, 1)
    rng = np.random.default_rng(seed)
    means = array[rng.integers(0, n, size=(resamples, n))].mean(axis=1)  # (resamples,)
    low, high = percentile_interval(means, confidence)
    return Estimate(mean, low, high, n)


def percentile_interval(statistics: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided percentile interval of bootstrap statistics, ignoring undefined (NaN) resamples."""
    statistics = np.asarray(statistics, dtype=np.float64)
    statistics = statistics[np.isfinite(statistics)]
    if len(statistics) == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(statistics, [alpha, 1.0 - alpha])
    return float(low), float(high)
