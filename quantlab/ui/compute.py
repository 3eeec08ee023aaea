"""Pure computations behind the panels (frames in, frames/dicts out; no widgets, no I/O).

    spec = controls_spec(window=300, hedge="rolling_ols")  # the one pair signal (PairSpec)
    view = pair_view(pair, spec)                        # pair: DataFrame [y, x] of closes
    view.frame      # time-indexed: y, x, beta, alpha, spread, z, corr (z = spec.evaluate's)
    tests = pair_tests(pair)                            # comparison table + EG + ADF + half-life
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from quantlab.errors import InsufficientDataError

#: the hedge control: button label -> PairSpec hedge (the package's one vocabulary)
HEDGE_LABELS = {"OLS": "rolling_ols", "Kalman": "kalman", "Huber": "huber", "T-S": "theilsen",
          "Static OLS": "ols", "Expanding": "expanding_ols"}
HEDGE_TIPS = ("ordinary least squares over the rolling window", "Kalman filter (dynamic beta, "
              "noise fitted by maximum likelihood)", "Huber robust regression fitted on the "
              "first window (formation), then fixed", "Theil-Sen median slope fitted on the first "
              "window, then fixed", "least squares fitted on the first window, then fixed",
              "least squares over every bar so far")


def controls_spec(window: int, hedge: str) -> Any:
    """The :class:`~quantlab.analytics.pair.PairSpec` of the left column's controls: the one
    signal the Pair tab shows, the backtest trades, the alert form watches and the CSV holds."""
    from quantlab.analytics.pair import PairSpec

    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 3:
        raise ValueError(f"window: need a whole number of bars >= 3, got {window!r}")
    return PairSpec(hedge=HEDGE_LABELS.get(hedge, hedge), window=int(window))


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


def _step(index: pd.Index) -> Any:
    if isinstance(index, pd.DatetimeIndex) and len(index) > 1:
        return pd.Timedelta(int(np.median(np.diff(index.as_unit("ns").asi8))), unit="ns")
    return None


@dataclass(frozen=True)
class PairView:
    """The live pair chart data: ``frame`` columns y, x, beta, alpha, spread, z, corr, where
    beta, alpha, spread and z are ``spec.evaluate(y, x).frame``."""

    frame: pd.DataFrame
    y: str
    x: str
    spec: Any
    window: int

    @property
    def hedge(self) -> str:
        return self.spec.hedge

    @property
    def last(self) -> pd.Series:
        return self.frame.iloc[-1]


def pair_view(pair: pd.DataFrame, spec: Any) -> PairView:
    """The spec's signal on ``pair`` (no look-ahead for any hedge: static fits use the
    formation window at the start of the bars shown, never the bars they are applied to)
    and the rolling correlation of returns over the spec's window."""
    from quantlab import analytics as qa  # imported on first use: the page appears sooner
    from quantlab.analytics.pair import PairSpec

    if not isinstance(spec, PairSpec):
        raise TypeError(f"spec: expected a quantlab.PairSpec, got {type(spec).__name__}")
    clean = pair.dropna() if isinstance(pair, pd.DataFrame) else pair
    step = _step(clean.index) if isinstance(clean, pd.DataFrame) else None
    # bars before the first spread (z follows z_window bars later)
    need = spec.formation_bars(step) if spec.needs_formation else spec.warmup_bars(step)
    if not spec.needs_formation:
        need = need - (spec.z_window if isinstance(spec.z_window, int) else need) + 1
        need = max(need, spec.window if isinstance(spec.window, int) else 3)
    y, x = _check_pair(pair, max(need, 3), "the spread")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", qa.AnalyticsWarning)
        sig = spec.evaluate(y, x)
        w = sig.fitted.window if sig.fitted is not None else need
        corr = qa.rolling_corr(y, x, min(max(w, 2), len(y) - 1))
    frame = pd.DataFrame({"y": y, "x": x, **{c: sig.frame[c] for c in ("beta", "alpha", "spread", "z")},
                          "corr": corr}, index=y.index)
    frame.index.name = "time"
    return PairView(frame, str(pair.columns[0]), str(pair.columns[1]), spec, int(w))


def analytics_frame(view: PairView) -> pd.DataFrame:
    """The analytics export: named columns (``<y>``, ``<x>``, ``beta_raw`` or ``beta_log`` (the
    prices the hedge ratio is on), alpha, spread, zscore, corr) of the controls' spec;
    ``attrs["spec"]`` says which signal."""
    f = view.frame.rename(columns={"y": view.y, "x": view.x, "z": "zscore",
                                   "beta": f"beta_{view.spec.prices}"})
    f.attrs["spec"] = view.spec.label
    return f


@dataclass(frozen=True)
class PairTests:
    comparison: pd.DataFrame          # method x (beta, ..., coint_stat, coint_pvalue, half_life, z_std)
    eg: Any                           # CointBothResult (.pvalue: direction-corrected)
    half_life: float                  # bars, of the static OLS spread
    nobs: int


def pair_tests(pair: pd.DataFrame, max_bars: int = 3_000) -> PairTests:
    """The hedge comparison with Engle-Granger p-values (MacKinnon N=2: the hedge is
    estimated, so a Dickey-Fuller p-value on the spread would be far too small),
    Engle-Granger both ways with the direction-corrected p-value, and the half-life of the
    static OLS spread, on the last ``max_bars`` bars."""
    from quantlab import analytics as qa

    y, x = _check_pair(pair.iloc[-max_bars:], 30, "the cointegration tests")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", qa.AnalyticsWarning)
        comp = qa.compare_hedge_ratios(y, x)
        eg = qa.engle_granger_both(y, x)
        hl = float(comp.loc["ols", "half_life"]) if "ols" in comp.index else float("nan")
    return PairTests(comp, eg, hl, len(y))


def drawdown(equity: pd.Series) -> pd.Series:
    """Drawdown from the running peak, in percent (<= 0)."""
    peak = equity.cummax()
    return (equity / peak - 1.0) * 100.0

