"""Side-by-side hedge-ratio methods for the "compare methods" view."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from . import _validate as v
from .hedge import METHODS, hedge_ratio, kalman_hedge_ratio
from .stationarity import adf, half_life


def compare_hedge_ratios(y: Any, x: Any, methods: tuple[str, ...] = METHODS, *,
                         delta: float = 1e-4, obs_var: float = 1e-3,
                         burn_in: int | None = None) -> pd.DataFrame:
    """One row per method: ``beta, alpha, spread_std, adf_stat, adf_pvalue, half_life``.

    Static methods use the spread ``y - (beta x + alpha)`` over the whole sample. The
    ``kalman`` row reports the last filtered state and uses the filter's one-step forecast
    errors (no look-ahead) after a burn-in of ``burn_in`` bars (default: 10% of the bars),
    since the filter starts from a zero state. ADF: regression "c", autolag AIC.
    """
    ya, xa, index = v.pair(y, x, 10, "compare_hedge_ratios")
    for m in methods:
        v.choice(m, "methods", METHODS)
    if burn_in is None:
        burn_in = ya.size // 10
    rows = {}
    for m in methods:
        if m == "kalman":
            kf = kalman_hedge_ratio(ya, xa, delta, obs_var)
            beta, alpha = float(kf["beta"].iloc[-1]), float(kf["alpha"].iloc[-1])
            s = kf["spread"].to_numpy()[burn_in:]
        else:
            h = hedge_ratio(ya, xa, method=m)
            beta, alpha = h.beta, h.alpha
            s = ya - (beta * xa + alpha)
        row = {"beta": beta, "alpha": alpha, "spread_std": float("nan"),
               "adf_stat": float("nan"), "adf_pvalue": float("nan"), "half_life": float("nan")}
        if np.isfinite(s).all() and s.size >= 10:
            row["spread_std"] = float(np.std(s, ddof=1))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", v.AnalyticsWarning)
                a = adf(s, regression="c", autolag="AIC")
                row["adf_stat"], row["adf_pvalue"] = a.stat, a.pvalue
                row["half_life"] = half_life(s)
            for w in caught:
                warnings.warn(f"{m}: {w.message}", w.category, stacklevel=2)
        rows[m] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "method"
    return out
