"""The one place where alerts call :mod:`quantlab.analytics` (pair rules' values).

Given the last ``window`` aligned closes of a pair (oldest first), the hedge is fitted with
``analytics.hedge_ratio(y, x, method)`` on those bars, the spread is
``analytics.spread(y, x, hedge) = y - (beta*x + alpha)`` (what the app plots), and

* ``zscore``: the last value of ``analytics.zscore(spread, window)``;
* ``spread``: the last spread value.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def pair_value(kind: str, y: np.ndarray, x: np.ndarray, method: str) -> float:
    """Value of a pair rule on one window of closes; NaN when it is not defined (flat legs)."""
    from quantlab.analytics import hedge_ratio, spread, zscore

    if kind not in ("zscore", "spread"):
        raise ValueError(f"kind: {kind!r} must be 'zscore' or 'spread'")
    ys = pd.Series(np.asarray(y, dtype=np.float64))
    xs = pd.Series(np.asarray(x, dtype=np.float64))
    if ys.nunique() < 2 or xs.nunique() < 2:  # no variation: no hedge, no z-score
        return math.nan
    s = spread(ys, xs, hedge_ratio(ys, xs, method=method))
    out = s if kind == "spread" else zscore(s, len(ys))
    value = float(np.asarray(out, dtype=np.float64)[-1])
    return value if math.isfinite(value) else math.nan
