"""Exact Theil-Sen slope (median of pairwise slopes), equal to ``scipy.stats.theilslopes``."""

from __future__ import annotations

import numpy as np

from . import kernels


def theil_sen_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Median of (y_j - y_i)/(x_j - x_i) over pairs with x_i != x_j; nan if there is none."""
    slopes = kernels.pairwise_slopes(np.ascontiguousarray(x, dtype=np.float64),
                                     np.ascontiguousarray(y, dtype=np.float64))
    if slopes.size == 0:
        return float("nan")
    return float(np.median(slopes))
