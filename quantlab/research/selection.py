"""Selection rules: from an all-pairs screen to the pairs worth trading in one formation window.

Pure functions of a screen result (:func:`quantlab.screen`) and the price frame it was
computed on (one column per symbol, a ``DatetimeIndex``)::

    sel = Selection(max_qvalue=0.05, max_half_life="1D", max_pairs=10, max_per_symbol=1)
    chosen = sel.apply(ql.screen(closes), closes)      # rows of the screen, best first

The rules, applied in this order (each pair must pass all):

1. Unit-root pre-test per symbol: the ADF test (constant, ``lag`` lagged differences, the
   screen's lag) of each leg's log price must NOT reject a unit root at
   ``unit_root_pvalue``. Engle-Granger assumes both legs are I(1); a stationary leg
   "cointegrates" with everything, and its many "discoveries" would also loosen the
   Benjamini-Hochberg threshold for every other pair.
2. ``qvalue <= max_qvalue``: when step 1 removed a symbol, Benjamini-Hochberg runs again
   over the pairs left (``qvalue`` is then that; the screen's is kept as ``screen_qvalue``).
3. ``min_half_life <= half_life <= max_half_life`` in time (the screen's half-life in bars
   times the median bar spacing); defaults one bar and half the window.
4. The spread ``log y - intercept - hedge_ratio log x`` crosses its mean at least
   ``min_crossings`` times in the window.
5. In the screen's order (best p-value first): skip a pair whose symbol is already in
   ``max_per_symbol`` chosen pairs; stop at ``max_pairs``.

The defaults are permissive (q-values at 5%, clearly stationary legs, one bar to half the
window, 2 crossings, no caps); narrow them for a real portfolio.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from quantlab.errors import InsufficientDataError
from quantlab.screen.fdr import bh_qvalues

_NEEDED = ("y", "x", "pvalue_pair", "qvalue", "hedge_ratio", "intercept", "half_life")


def _timedelta(value: Any, name: str) -> pd.Timedelta | None:
    if value is None:
        return None
    try:
        td = pd.Timedelta(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a duration such as '30min', '4h' or '2D', "
                         f"got {value!r}") from None
    if pd.isna(td) or td <= pd.Timedelta(0):
        raise ValueError(f"{name}: expected a positive duration, got {value!r}")
    return td


def _cap(value: Any, name: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | np.integer)
                              or value < 1):
        raise ValueError(f"{name}: expected an integer >= 1 or None (no limit), got {value!r}")


@dataclass(frozen=True)
class Selection:
    """Rules that narrow a screen to tradeable pairs (see the module docstring).

    Attributes (defaults in brackets)
    ----------
    max_qvalue : [0.05] largest Benjamini-Hochberg q-value kept.
    unit_root_pvalue : [0.01] drop a symbol whose ADF test rejects a unit root at this
        level (it looks stationary in the window); None skips the pre-test.
    min_half_life, max_half_life : [None: one bar, half the window] bounds on the spread's
        half-life, as durations ('30min', '4h', pd.Timedelta).
    min_crossings : [2] fewest crossings of the spread's mean in the window.
    max_pairs : [None] most pairs chosen; None: no limit.
    max_per_symbol : [None] most chosen pairs one symbol may be in (1: disjoint pairs).
    lag : [None: the screen's lag] lagged differences of the per-symbol ADF test.
    """

    max_qvalue: float = 0.05
    unit_root_pvalue: float | None = 0.01
    min_half_life: Any = None
    max_half_life: Any = None
    min_crossings: int = 2
    max_pairs: int | None = None
    max_per_symbol: int | None = None
    lag: int | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.max_qvalue, int | float) and not isinstance(self.max_qvalue, bool)
                and 0.0 < self.max_qvalue <= 1.0):
            raise ValueError(f"max_qvalue: expected a q-value in (0, 1], got {self.max_qvalue!r}")
        p = self.unit_root_pvalue
        if p is not None and not (isinstance(p, int | float) and not isinstance(p, bool)
                                  and 0.0 < p < 1.0):
            raise ValueError(f"unit_root_pvalue: expected a level in (0, 1) or None (no "
                             f"pre-test), got {p!r}")
        lo = _timedelta(self.min_half_life, "min_half_life")
        hi = _timedelta(self.max_half_life, "max_half_life")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"min_half_life: {self.min_half_life!r} exceeds max_half_life "
                             f"{self.max_half_life!r}")
        if (isinstance(self.min_crossings, bool) or not isinstance(self.min_crossings, int | np.integer)
                or self.min_crossings < 0):
            raise ValueError(f"min_crossings: expected an integer >= 0, got {self.min_crossings!r}")
        _cap(self.max_pairs, "max_pairs")
        _cap(self.max_per_symbol, "max_per_symbol")
        if self.lag is not None and (isinstance(self.lag, bool) or not isinstance(self.lag, int | np.integer)
                                     or self.lag < 0):
            raise ValueError(f"lag: expected an integer >= 0 or None (the screen's), got {self.lag!r}")

    def apply(self, screen_frame: pd.DataFrame, prices: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``screen_frame`` that pass every rule, in the screen's order.

        ``prices``: the closes the screen ran on (one column per symbol, DatetimeIndex).
        Adds ``half_life_time`` (Timedelta) and ``crossings``; ``result.attrs["selection"]``
        counts the pairs each rule removed and lists the symbols found stationary.
        """
        frame, prices = _check_inputs(screen_frame, prices)
        bar, window = _spacing(prices.index)
        lo = _timedelta(self.min_half_life, "min_half_life") or bar
        hi = _timedelta(self.max_half_life, "max_half_life") or window / 2
        counts: dict[str, Any] = {"candidates": len(frame)}

        stationary: list[str] = []
        passed_root = np.ones(len(frame), dtype=bool)
        if self.unit_root_pvalue is not None:
            lag = self.lag if self.lag is not None else int(screen_frame.attrs.get("lag", 4))
            legs = sorted(set(frame["y"]) | set(frame["x"]))
            pvals = {s: _adf_pvalue(prices[s], lag) for s in legs}
            stationary = [s for s in legs if pvals[s] < self.unit_root_pvalue]
            passed_root = ~(frame["y"].isin(stationary).to_numpy()
                            | frame["x"].isin(stationary).to_numpy())
        counts["unit_root"] = int((~passed_root).sum())
        # The Engle-Granger p-value of a pair with a stationary leg is no test of
        # cointegration: Benjamini-Hochberg runs again over the pairs that remain.
        qvalue = frame["qvalue"].to_numpy(dtype=float, copy=True)
        if stationary:
            qvalue = np.full(len(frame), np.nan)
            qvalue[passed_root] = bh_qvalues(frame["pvalue_pair"].to_numpy(dtype=float)[passed_root])
        keep = passed_root & (qvalue <= self.max_qvalue)
        counts["qvalue"] = int((passed_root & ~keep).sum())

        hl_ns = frame["half_life"].to_numpy(dtype=float) * float(bar.value)  # inf: no reversion
        in_range = (hl_ns >= lo.value) & (hl_ns <= hi.value)
        counts["half_life"] = int((keep & ~in_range).sum())
        keep &= in_range

        crossings = np.full(len(frame), -1, dtype=np.int64)
        for i in np.nonzero(keep)[0]:
            row = frame.iloc[i]
            crossings[i] = mean_crossings(prices[row["y"]], prices[row["x"]],
                                          row["hedge_ratio"], row["intercept"])
        enough = crossings >= self.min_crossings
        counts["crossings"] = int((keep & ~enough).sum())
        keep &= enough

        chosen: list[int] = []
        per_symbol: dict[str, int] = {}
        capped_symbol = capped_total = 0
        for i in np.nonzero(keep)[0]:
            y, x = frame["y"].iat[i], frame["x"].iat[i]
            if self.max_pairs is not None and len(chosen) >= self.max_pairs:
                capped_total += 1
                continue
            if self.max_per_symbol is not None and (
                    per_symbol.get(y, 0) >= self.max_per_symbol
                    or per_symbol.get(x, 0) >= self.max_per_symbol):
                capped_symbol += 1
                continue
            chosen.append(int(i))
            per_symbol[y] = per_symbol.get(y, 0) + 1
            per_symbol[x] = per_symbol.get(x, 0) + 1
        counts["max_per_symbol"] = capped_symbol
        counts["max_pairs"] = capped_total
        counts["selected"] = len(chosen)
        counts["stationary_symbols"] = stationary
        out = frame.iloc[chosen].copy()
        out["screen_qvalue"] = out["qvalue"]
        out["qvalue"] = qvalue[chosen]
        out["half_life_time"] = pd.to_timedelta(np.round(hl_ns[chosen]).astype(np.int64), unit="ns")
        out["crossings"] = crossings[chosen]
        out = out.reset_index(drop=True)
        out.attrs = {**screen_frame.attrs, "selection": counts, "rules": asdict(self),
                     "half_life_bounds": (lo, hi)}
        return out


def _check_inputs(screen_frame: Any, prices: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    if not isinstance(screen_frame, pd.DataFrame):
        raise TypeError("screen_frame: expected the DataFrame returned by quantlab.screen, "
                        f"got {type(screen_frame).__name__}")
    missing = [c for c in _NEEDED if c not in screen_frame.columns]
    if missing:
        raise ValueError(f"screen_frame: missing column(s) {', '.join(missing)}; pass the "
                         "result of quantlab.screen(...)")
    if not isinstance(prices, pd.DataFrame) or not isinstance(prices.index, pd.DatetimeIndex):
        raise TypeError("prices: expected a DataFrame of closes (one column per symbol) on a "
                        "DatetimeIndex, the one the screen ran on")
    symbols = set(screen_frame["y"]) | set(screen_frame["x"])
    absent = sorted(str(s) for s in symbols - set(prices.columns))
    if absent:
        raise ValueError(f"prices: no column for {', '.join(absent[:5])}; pass the closes the "
                         "screen ran on")
    if len(prices) < 3:
        raise InsufficientDataError(f"prices: {len(prices)} bars are too few to select pairs")
    return screen_frame.reset_index(drop=True), prices


def _spacing(index: pd.DatetimeIndex) -> tuple[pd.Timedelta, pd.Timedelta]:
    """(median bar spacing, span of the window including its last bar)."""
    steps = np.diff(index.as_unit("ns").asi8)
    if not (steps > 0).all():
        raise ValueError("prices: the index must be strictly increasing")
    bar = pd.Timedelta(int(np.median(steps)), unit="ns")
    return bar, (index[-1] - index[0]) + bar


def _adf_pvalue(close: pd.Series, lag: int) -> float:
    """ADF p-value (constant, fixed ``lag``; equal to statsmodels ``adfuller``) of a
    symbol's log price, by the screen's one-pass kernel; NaN if undefined (constant)."""
    from statsmodels.tsa.adfvalues import mackinnonp

    from quantlab.screen.core import adf_c_stat

    v = close.dropna().to_numpy(dtype=float)
    if v.size < 2 * lag + 10 or not (v > 0).all():
        return math.nan
    stat = adf_c_stat(np.log(v), lag)
    return math.nan if math.isnan(stat) else float(mackinnonp(stat, regression="c", N=1))


def mean_crossings(y: pd.Series, x: pd.Series, hedge_ratio: float, intercept: float) -> int:
    """Times the log spread ``log y - intercept - hedge_ratio log x`` crosses its mean, over
    the bars where both prices exist (a touch that does not change side does not count)."""
    both = y.notna().to_numpy() & x.notna().to_numpy()
    if both.sum() < 2 or not (math.isfinite(hedge_ratio) and math.isfinite(intercept)):
        return 0
    s = np.log(y.to_numpy(dtype=float)[both]) - intercept - hedge_ratio * np.log(
        x.to_numpy(dtype=float)[both])
    side = np.sign(s - s.mean())
    side = side[side != 0]
    return int(np.count_nonzero(side[1:] != side[:-1]))
