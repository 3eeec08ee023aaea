"""Spread, z-score and rolling correlation of a pair (pandas in, pandas out).

``spread(y, x, hedge)`` is ``y - (beta * x + alpha)``; ``zscore`` standardizes it over a
trailing window that ends at (and includes) bar t, so z_t is known at the close of bar t.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from . import _validate as v
from .results import HedgeResult


def spread(y: Any, x: Any, hedge: Any, *, lag: int | None = None) -> pd.Series:
    """The spread ``y_t - (beta * x_t + alpha)`` on y's index.

    hedge may be:
      - a number: beta, with alpha = 0;
      - a :class:`HedgeResult` (from ``hedge_ratio``): its beta and alpha;
      - a DataFrame with columns ``beta`` (and optionally ``alpha``) on the same index, from
        ``rolling_hedge_ratio`` or ``kalman_hedge_ratio``. A time-varying hedge is shifted by
        ``lag`` bars (default 1), so the spread at t uses the hedge estimated up to t-1 and
        has no look-ahead; with the Kalman frame this equals its ``spread`` column.
        ``lag=0`` uses the same bar's estimate (in-sample).

    A static hedge (a number or a ``HedgeResult``) has no time to lag: passing ``lag`` with
    one is refused (fit it on a formation window instead: ``PairSpec(hedge="ols")``).
    """
    ya, xa, index = v.pair(y, x, 1, "spread")
    idx = v.out_index(index, ya.size)
    if not isinstance(hedge, pd.DataFrame) and lag is not None:
        raise ValueError(f"lag={lag!r} applies to a time-varying hedge (a DataFrame); a static "
                         "hedge is the same at every bar, so it cannot be lagged: fit it on a "
                         "formation window before the bars, e.g. quantlab.PairSpec(hedge='ols')")
    if lag is None:
        lag = 1
    beta: float | np.ndarray
    alpha: float | np.ndarray
    if isinstance(lag, bool) or not isinstance(lag, int | np.integer) or lag < 0:
        raise ValueError(f"lag must be a non-negative int number of bars, got {lag!r}")
    if isinstance(hedge, HedgeResult):
        beta, alpha = hedge.beta, hedge.alpha
    elif isinstance(hedge, pd.DataFrame):
        if "beta" not in hedge.columns:
            raise ValueError("hedge DataFrame must have a 'beta' column (and optionally 'alpha'), "
                             "e.g. the result of rolling_hedge_ratio or kalman_hedge_ratio")
        if len(hedge) != ya.size or (index is not None and not hedge.index.equals(index)):
            raise ValueError("hedge DataFrame must be on the same index as y and x; compute it "
                             "from the same aligned pair")
        b = hedge["beta"].to_numpy(dtype=np.float64)
        a = (hedge["alpha"].to_numpy(dtype=np.float64) if "alpha" in hedge.columns
             else np.zeros(ya.size))
        if lag:
            b = np.concatenate([np.full(min(lag, b.size), np.nan), b[:-lag]])
            a = np.concatenate([np.full(min(lag, a.size), np.nan), a[:-lag]])
        beta, alpha = b, a
    elif isinstance(hedge, int | float | np.integer | np.floating) and not isinstance(hedge, bool):
        beta, alpha = float(hedge), 0.0
    else:
        raise TypeError("hedge must be a number (beta), a HedgeResult or a DataFrame with "
                        f"'beta'/'alpha' columns, got {type(hedge).__name__}")
    return pd.Series(ya - (beta * xa + alpha), index=idx, name="spread")


def zscore(s: Any, window: int) -> pd.Series:
    """Rolling z-score ``(s_t - mean) / std`` over the last ``window`` values including t.

    Pandas rolling mean and std (ddof=1), ``min_periods=window``: the first ``window - 1``
    values are NaN. NaN in ``s`` (e.g. the warm-up of a rolling spread) propagate as pandas
    does. A window with zero dispersion gives NaN, not inf.
    """
    arr, index = v.as_series(s, "s")
    if np.isinf(arr).any():
        raise ValueError("s has inf values; replace them (e.g. s.replace([np.inf, -np.inf], np.nan))")
    window = v.window_arg(window, int(np.sum(~np.isnan(arr))), 2, "zscore")
    ser = pd.Series(arr, index=v.out_index(index, arr.size))
    roll = ser.rolling(window, min_periods=window)
    mean = roll.mean()
    std = roll.std(ddof=1)
    dev = ser - mean
    # a window of identical values: pandas may leave a rounding residue in std; call it 0
    scale = roll.max() - roll.min()
    std = std.where(scale > 0.0, np.nan)
    out = dev / std
    out.name = "zscore"
    return out


def rolling_corr(y: Any, x: Any, window: int) -> pd.Series:
    """Rolling Pearson correlation of the log returns of y and x over ``window`` returns.

    The first value is NaN (no return), then ``window - 1`` more warm-up NaNs. Prices must be
    positive. Windows where either return is constant give NaN.
    """
    ya, xa, index = v.pair(y, x, 2, "rolling_corr")
    if (ya <= 0).any() or (xa <= 0).any():
        raise ValueError("rolling_corr works on log returns: y and x must be positive prices")
    window = v.window_arg(window, ya.size - 1, 2, "rolling_corr")
    idx = v.out_index(index, ya.size)
    ry = pd.Series(np.log(ya), index=idx).diff()
    rx = pd.Series(np.log(xa), index=idx).diff()
    out = ry.rolling(window, min_periods=window).corr(rx)
    out = out.where(np.isfinite(out), np.nan)
    out.name = "corr"
    return out
