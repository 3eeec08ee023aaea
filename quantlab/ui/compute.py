"""Pure computations behind the panels (frames in, frames/dicts out; no widgets, no I/O).

    view = pair_view(pair, window=300, hedge="ols")     # pair: DataFrame [y, x] of closes
    view.frame      # time-indexed: y, x, beta, alpha, spread, z, corr
    tests = pair_tests(pair)                            # comparison table + EG + ADF + half-life
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from quantlab.errors import InsufficientDataError

HEDGES = {"OLS": "ols", "Kalman": "kalman", "Huber": "huber", "T-S": "theilsen"}  # label -> method
BACKTEST_HEDGE = {"ols": "rolling_ols", "kalman": "kalman"}


def _check_pair(pair: pd.DataFrame, window: int, what: str) -> tuple[pd.Series, pd.Series]:
    if not isinstance(pair, pd.DataFrame) or pair.shape[1] != 2:
        raise TypeError(f"pair: expected a DataFrame with two columns [y, x], got {type(pair).__name__}")
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 3:
        raise ValueError(f"window: need a whole number of bars >= 3, got {window!r}")
    clean = pair.dropna()
    if len(clean) < window + 2:
        raise InsufficientDataError(
            f"{what} needs more than {window + 1} bars of both {pair.columns[0]} and "
            f"{pair.columns[1]}; {len(clean)} so far (wait, pick a shorter window or a shorter timeframe)")
    return clean.iloc[:, 0], clean.iloc[:, 1]


@dataclass(frozen=True)
class PairView:
    """The live pair chart data: ``frame`` columns y, x, beta, alpha, spread, z, corr."""

    frame: pd.DataFrame
    y: str
    x: str
    hedge: str
    window: int

    @property
    def last(self) -> pd.Series:
        return self.frame.iloc[-1]


def pair_view(pair: pd.DataFrame, window: int, hedge: str = "ols") -> PairView:
    """Hedge ratio, spread, z-score and rolling correlation of ``pair`` (no look-ahead for
    ``ols``/``kalman``; ``huber``/``theilsen`` fit one static ratio on the bars shown)."""
    if hedge not in HEDGES.values():
        raise ValueError(f"hedge: {hedge!r} is not one of {', '.join(HEDGES.values())}")
    from quantlab import analytics as qa  # imported on first use: the page appears sooner

    y, x = _check_pair(pair, window, "the spread")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", qa.AnalyticsWarning)
        if hedge == "ols":
            h = qa.rolling_hedge_ratio(y, x, window)
            s = qa.spread(y, x, h)
            z = qa.zscore(s, window)
            beta, alpha = h["beta"].shift(1), h["alpha"].shift(1)
        elif hedge == "kalman":
            kf = qa.kalman_hedge_ratio(y, x)
            s = kf["spread"]
            z = (kf["spread"] / kf["spread_std"]).where(np.arange(len(kf)) >= window)
            beta, alpha = kf["beta"].shift(1), kf["alpha"].shift(1)
        else:
            h = qa.hedge_ratio(y, x, method=hedge)
            s = qa.spread(y, x, h)
            z = qa.zscore(s, window)
            beta = pd.Series(h.beta, index=y.index)
            alpha = pd.Series(h.alpha, index=y.index)
        corr = qa.rolling_corr(y, x, window)
    frame = pd.DataFrame({"y": y, "x": x, "beta": beta, "alpha": alpha, "spread": s,
                          "z": z, "corr": corr}, index=y.index)
    frame.index.name = "time"
    return PairView(frame, str(pair.columns[0]), str(pair.columns[1]), hedge, int(window))


def analytics_frame(view: PairView) -> pd.DataFrame:
    """The analytics export: named columns (``<y>``, ``<x>``, beta, alpha, spread, zscore, corr)."""
    f = view.frame.rename(columns={"y": view.y, "x": view.x, "z": "zscore"})
    return f


@dataclass(frozen=True)
class PairTests:
    comparison: pd.DataFrame          # method x (beta, alpha, spread_std, adf_stat, adf_pvalue, half_life)
    eg: Any                           # CointBothResult
    adf: Any                          # ADFResult of the OLS spread
    half_life: float                  # bars
    nobs: int


def pair_tests(pair: pd.DataFrame, max_bars: int = 3_000) -> PairTests:
    """The 4-method hedge comparison, Engle-Granger both ways, ADF and half-life of the
    static OLS spread, on the last ``max_bars`` bars."""
    from quantlab import analytics as qa

    y, x = _check_pair(pair.iloc[-max_bars:], 30, "the cointegration tests")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", qa.AnalyticsWarning)
        comp = qa.compare_hedge_ratios(y, x)
        eg = qa.engle_granger_both(y, x)
        h = qa.hedge_ratio(y, x, method="ols")
        s = qa.spread(y, x, h)
        adf = qa.adf(s)
        hl = qa.half_life(s)
    return PairTests(comp, eg, adf, float(hl), len(y))


def drawdown(equity: pd.Series) -> pd.Series:
    """Drawdown from the running peak, in percent (<= 0)."""
    peak = equity.cummax()
    return (equity / peak - 1.0) * 100.0


def finite_or_none(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None
