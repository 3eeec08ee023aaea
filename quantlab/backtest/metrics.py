"""Performance metrics of an equity curve and of a list of round-trip P&Ls.

Pure functions. ``equity`` is a pandas Series of account value per bar (a ``DatetimeIndex``
lets the bar frequency be inferred) or a 1-D array together with ``periods_per_year``::

    2024-08-09 00:00:00+00:00    10000.00
    2024-08-09 00:00:01+00:00    10000.00
    2024-08-09 00:00:02+00:00     9997.95
    ...

Conventions, shared by every function here:

* bar returns ``r[t] = equity[t] / equity[t-1] - 1`` for t >= 1 (n bars give n-1 returns);
* annualisation uses a 365-day year at the bar frequency: ``periods_per_year =
  365 * 86400 s / median bar length`` (1 s bars: 31,536,000; daily bars: 365);
* ``risk_free`` is a rate *per bar*, subtracted from every bar return;
* a quantity that is undefined (no trades, a constant equity curve) is ``NaN``, never an
  exception and never a ``RuntimeWarning``; where the limit is clear it is ``inf``
  (documented per function).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import pandas as pd

YEAR_SECONDS = 365 * 86400.0

ArrayLike: TypeAlias = pd.Series | np.ndarray | Sequence[float]


def periods_per_year(index: pd.Index) -> float:
    """Bars per 365-day year, from the median spacing of a ``DatetimeIndex``.

    Raises ``ValueError`` when the index is not a ``DatetimeIndex`` of at least two
    increasing timestamps (pass ``periods_per_year`` explicitly then).
    """
    if not isinstance(index, pd.DatetimeIndex):
        raise ValueError(
            "periods_per_year: the index is not a DatetimeIndex; pass periods_per_year= "
            "explicitly (e.g. 365 for daily bars)")
    if len(index) < 2:
        raise ValueError("periods_per_year: need at least two timestamps to infer the bar size")
    ns = np.diff(index.asi8)
    step = float(np.median(ns))
    if step <= 0:
        raise ValueError("periods_per_year: the index must be strictly increasing")
    unit_ns = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}[index.unit]
    return YEAR_SECONDS * 1e9 / (step * unit_ns)


def _values(equity: ArrayLike) -> np.ndarray:
    if isinstance(equity, pd.Series):
        return equity.to_numpy(dtype=float)
    return np.asarray(equity, dtype=float)


def _ppy(equity: ArrayLike, ppy: float | None) -> float:
    if ppy is not None:
        if not ppy > 0:
            raise ValueError(f"periods_per_year must be positive, got {ppy!r}")
        return float(ppy)
    if isinstance(equity, pd.Series):
        if len(equity) < 2:
            return math.nan  # nothing to annualise: every ratio is NaN anyway
        return periods_per_year(equity.index)
    raise ValueError("periods_per_year is required when equity is not a Series with a "
                     "DatetimeIndex")


def returns(equity: ArrayLike) -> np.ndarray:
    """Bar returns ``equity[1:] / equity[:-1] - 1`` (length n-1).

    A return from a non-positive equity is NaN (the account is bust; no meaningful return).
    """
    e = _values(equity)
    if e.size < 2:
        return np.empty(0)
    prev = e[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = e[1:] / prev - 1.0
    r[prev <= 0] = np.nan
    return r


def total_return(equity: ArrayLike) -> float:
    """``equity[-1] / equity[0] - 1``; NaN for fewer than one bar or a non-positive start."""
    e = _values(equity)
    if e.size == 0 or not e[0] > 0:
        return math.nan
    return float(e[-1] / e[0] - 1.0)


def cagr(equity: ArrayLike, periods_per_year: float | None = None) -> float:
    """Compound annual growth rate ``(equity[-1]/equity[0]) ** (ppy / (n-1)) - 1``.

    ``n-1`` is the number of bar returns, so the sample spans ``(n-1)/ppy`` years. A
    final equity <= 0 gives -1. On samples much shorter than a year the extrapolation is
    huge and may overflow to ``inf`` (reported as such, without a warning). NaN for fewer
    than two bars.
    """
    e = _values(equity)
    ppy = _ppy(equity, periods_per_year)
    if e.size < 2 or not e[0] > 0:
        return math.nan
    ratio = e[-1] / e[0]
    if ratio <= 0:
        return -1.0
    g = math.log(ratio) * ppy / (e.size - 1)
    if g > 709.0:
        return math.inf
    return math.expm1(g)


def _excess(equity: ArrayLike, risk_free: float) -> np.ndarray:
    r = returns(equity)
    r = r[~np.isnan(r)]
    return r - risk_free


def sharpe(equity: ArrayLike, risk_free: float = 0.0,
           periods_per_year: float | None = None) -> float:
    """Annualised Sharpe ratio ``mean(r - rf) / std(r - rf, ddof=1) * sqrt(ppy)``.

    With a zero standard deviation (or one below 1e-12 of the mean: summation rounding
    on constant returns): NaN when the mean excess return is 0 too, else ``±inf``. NaN with fewer than two returns. (vectorbt's convention: equity
    [1, 2, 3, 4, 5] daily, ``risk_free=0.01``, ppy 365 -> 29.052280196490333.)
    """
    ppy = _ppy(equity, periods_per_year)
    ex = _excess(equity, risk_free)
    if ex.size < 2:
        return math.nan
    return _sharpe_ratio(float(ex.mean()), float(ex.std(ddof=1)), ppy)


def _sharpe_ratio(mu: float, sd: float, ppy: float) -> float:
    if math.isnan(sd) or math.isnan(mu):
        return math.nan
    if sd <= 1e-12 * abs(mu) or sd == 0.0:
        return math.nan if mu == 0.0 else math.copysign(math.inf, mu)
    return mu / sd * math.sqrt(ppy)


def sortino(equity: ArrayLike, risk_free: float = 0.0,
            periods_per_year: float | None = None) -> float:
    """Annualised Sortino ratio ``mean(r - rf) / DD * sqrt(ppy)``.

    ``DD = sqrt(mean(min(r - rf, 0) ** 2))`` over *all* bars (the target-downside
    deviation of Sortino & Price, as empyrical and vectorbt compute it). With no downside
    (DD = 0): ``inf`` when the mean excess return is positive, NaN when it is 0 (there is
    no negative mean without downside). NaN with no returns.
    """
    ppy = _ppy(equity, periods_per_year)
    ex = _excess(equity, risk_free)
    if ex.size < 1:
        return math.nan
    down = np.minimum(ex, 0.0)
    return _sortino_ratio(float(ex.mean()), math.sqrt(float(np.dot(down, down)) / ex.size), ppy)


def _sortino_ratio(mu: float, dd: float, ppy: float) -> float:
    if math.isnan(dd) or math.isnan(mu):
        return math.nan
    if dd == 0.0:
        return math.inf if mu > 0 else math.nan
    return mu / dd * math.sqrt(ppy)


def drawdown(equity: ArrayLike) -> np.ndarray:
    """Drawdown per bar ``equity / running_max(equity) - 1`` (<= 0)."""
    e = _values(equity)
    peak = np.maximum.accumulate(e) if e.size else e
    with np.errstate(divide="ignore", invalid="ignore"):
        return e / peak - 1.0


def max_drawdown(equity: ArrayLike) -> float:
    """Largest peak-to-trough loss as a fraction, ``min(equity / running_max - 1)``.

    Reported as a number <= 0 (-0.25 is a 25 % drawdown); 0 when equity never falls below
    a previous peak; NaN for an empty curve.
    """
    e = _values(equity)
    if e.size == 0:
        return math.nan
    return float(min(0.0, np.nanmin(drawdown(e))))


def max_drawdown_duration(equity: ArrayLike) -> int:
    """Longest stretch, in bars, spent strictly below a previous peak.

    For each bar under water, the number of bars since the last peak; the maximum of that.
    Equity [1, 2, 1, 1, 2, 3] -> 2 (two bars below the peak of 2); a curve that ends under
    water counts to its last bar. Multiply by the bar length for a time span.
    """
    e = _values(equity)
    if e.size == 0:
        return 0
    peak = np.maximum.accumulate(e)
    idx = np.arange(e.size)
    at_peak = e >= peak
    last_peak = np.maximum.accumulate(np.where(at_peak, idx, 0))
    return int((idx - last_peak).max())


def calmar(equity: ArrayLike, periods_per_year: float | None = None) -> float:
    """``cagr / |max_drawdown|``; NaN when there is no drawdown (or CAGR is NaN)."""
    mdd = max_drawdown(equity)
    c = cagr(equity, periods_per_year)
    if not mdd < 0 or math.isnan(c):
        return math.nan
    return c / -mdd


def win_rate(pnl: ArrayLike) -> float:
    """Share of trades with ``pnl > 0``.

    Break-even trades (pnl == 0) count in the denominator and are neither wins nor losses.
    NaN with no trades.
    """
    p = _values(pnl)
    if p.size == 0:
        return math.nan
    return float(np.count_nonzero(p > 0) / p.size)


def profit_factor(pnl: ArrayLike) -> float:
    """Gross profit over gross loss, ``sum(pnl[pnl > 0]) / -sum(pnl[pnl < 0])``.

    No losing trade: ``inf`` when there is a profit, NaN when there is none either
    (no trades, or only break-even trades).
    """
    p = _values(pnl)
    gain = float(p[p > 0].sum())
    loss = float(-p[p < 0].sum())
    if loss == 0.0:
        return math.inf if gain > 0 else math.nan
    return gain / loss


def expectancy(pnl: ArrayLike) -> float:
    """Mean net P&L per trade (account currency); NaN with no trades."""
    p = _values(pnl)
    if p.size == 0:
        return math.nan
    return float(p.mean())


#: the keys of :func:`compute_stats`, in display order
STAT_KEYS = (
    "total_return", "cagr", "sharpe", "sortino", "max_drawdown", "max_drawdown_duration",
    "calmar", "win_rate", "profit_factor", "expectancy", "n_trades", "avg_holding",
    "exposure", "turnover", "fees", "slippage", "borrow", "funding", "final_equity", "trade_sharpe", "trade_t_stat",
)

#: annualised statistics on fewer days or fewer round trips than these warn
SHORT_SAMPLE_DAYS = 30
SHORT_SAMPLE_TRADES = 30


class ShortSampleWarning(UserWarning):
    """Annualised statistics of a sample too short to annualise (see ``short_sample``)."""


def short_sample(index: pd.Index, n_trades: int) -> str | None:
    """Why annualised figures of this sample mean little (``None`` when they are fine):
    fewer than ``SHORT_SAMPLE_DAYS`` days or fewer than ``SHORT_SAMPLE_TRADES`` trades."""
    why = []
    if isinstance(index, pd.DatetimeIndex) and len(index) > 1:
        days = (index[-1] - index[0]) / pd.Timedelta(days=1)
        if days < SHORT_SAMPLE_DAYS:
            why.append(f"{days:.3g} days (< {SHORT_SAMPLE_DAYS})")
    if n_trades < SHORT_SAMPLE_TRADES:
        why.append(f"{n_trades} trades (< {SHORT_SAMPLE_TRADES})")
    return " and ".join(why) if why else None


def warn_short_sample(index: pd.Index, stats: dict, pnl: np.ndarray, gross: np.ndarray) -> None:
    """One :class:`ShortSampleWarning` line when the sample is short, with the per-trade
    statistics beside the annualised ones."""
    import warnings

    why = short_sample(index, int(stats.get("n_trades", 0)))
    if why is None:
        return
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = pnl / gross
    mean = float(np.mean(ret)) if len(ret) else math.nan
    warnings.warn(
        f"annualised Sharpe {stats['sharpe']:.3g} and CAGR {stats['cagr']:.3g} come from "
        f"{why}: read the per-trade figures instead (mean return per trade {mean:.4%}, "
        f"per-trade Sharpe {stats['trade_sharpe']:.3g}, t {stats['trade_t_stat']:.3g})",
        ShortSampleWarning, stacklevel=4)


def compute_stats(equity: np.ndarray, periods_per_year: float, *, pnl: np.ndarray,
                  bars_held: np.ndarray, signal: np.ndarray, traded: np.ndarray,
                  fees: float, capital: float, risk_free: float = 0.0,
                  slippage: float = 0.0, borrow: float = 0.0, funding: float = 0.0,
                  one_pass: bool = True) -> dict[str, float]:
    """Every statistic of a backtest, keyed as :data:`STAT_KEYS`.

    Beyond the functions above: ``n_trades`` round trips; ``avg_holding`` mean bars held
    per trade (NaN with none); ``exposure`` the share of bars with a position held
    (``signal != 0``); ``turnover`` total traded notional of both legs, all fills, over the
    initial ``capital``; ``fees`` total fees paid, ``slippage`` total slippage (fills worse
    than the bar price), ``borrow`` total interest on short spot legs, ``funding`` total
    funding paid by perpetual legs (negative: received); ``final_equity`` the last equity
    value (``capital`` + P&L at bar prices - fees - slippage - borrow - funding).

    ``one_pass=True`` computes the equity statistics in one compiled pass
    (``kernels.equity_stats``, equal to the functions above to rounding); ``False`` calls
    the functions above.
    """
    e = np.ascontiguousarray(equity, dtype=float)
    ppy = float(periods_per_year)
    c = cagr(e, ppy)
    if one_pass and e.size:
        from .kernels import equity_stats_nb

        nret, mu, sd, down, dd, dur = equity_stats_nb(e, float(risk_free))
        sh = _sharpe_ratio(mu, sd, ppy) if nret >= 2 else math.nan
        so = _sortino_ratio(mu, down, ppy) if nret >= 1 else math.nan
        dur = int(dur)
    else:
        sh, so = sharpe(e, risk_free, ppy), sortino(e, risk_free, ppy)
        dd, dur = max_drawdown(e), max_drawdown_duration(e)
    n = int(len(pnl))
    return {
        "total_return": total_return(e),
        "cagr": c,
        "sharpe": sh,
        "sortino": so,
        "max_drawdown": dd,
        "max_drawdown_duration": dur,
        "calmar": c / -dd if dd < 0 and not math.isnan(c) else math.nan,
        "win_rate": win_rate(pnl),
        "profit_factor": profit_factor(pnl),
        "expectancy": expectancy(pnl),
        "n_trades": n,
        "avg_holding": float(np.mean(bars_held)) if n else math.nan,
        "exposure": float(np.count_nonzero(signal) / len(signal)) if len(signal) else math.nan,
        "turnover": float(np.sum(traded) / capital),
        "fees": float(fees),
        "slippage": float(slippage),
        "borrow": float(borrow),
        "funding": float(funding),
        "final_equity": float(e[-1]) if e.size else math.nan,
        **_per_trade(pnl),
    }


def _per_trade(pnl: np.ndarray) -> dict[str, float]:
    """Mean P&L per round trip over its standard deviation (not annualised), and the
    t statistic of the mean (``trade_sharpe * sqrt(n)``); NaN below two trades."""
    p = np.asarray(pnl, dtype=float)
    if p.size < 2:
        return {"trade_sharpe": math.nan, "trade_t_stat": math.nan}
    sd = float(np.std(p, ddof=1))
    if not sd > 0:
        return {"trade_sharpe": math.nan, "trade_t_stat": math.nan}
    ts = float(np.mean(p)) / sd
    return {"trade_sharpe": ts, "trade_t_stat": ts * math.sqrt(p.size)}
