"""Array kernels of the backtest: the per-bar state machine and the fill/accounting loop.

Everything here works on plain numpy arrays, one bar per element, and knows nothing of
pandas. Each kernel is written once as a plain-Python function (``*_py``) and compiled
with numba (``*_nb``, ``cache=True``); a test proves the two paths equal. The engine picks
the compiled ones through :func:`get_kernels`.

Two kernels, applied in order:

``decide(z, entry, exit_, stop, max_hold) -> (target int8[n], reason int8[n])``
    The decision taken at bar t's close from the z-score known at t. ``target[t]`` is the
    position wanted after that decision (-1 short spread, 0 flat, +1 long spread);
    ``reason[t]`` is the code of the exit decided at t (0 when none): 1 exit, 2 stop,
    3 time. Codes are in :data:`REASONS`.

``execute(y, x, target, reason, beta, capital, notional, fee_y, fee_x, slip_rate)``
    Fills ``target[t-1]`` at bar t's prices (one bar of latency: no look-ahead) and marks
    the book to market at every bar. Returns per-bar ``signal`` (position held from bar t's
    price to bar t+1's), ``units_y``, ``units_x``, ``equity``, ``fees`` and ``traded``
    (notional traded at the bar), and a float64 trade table, one row per round trip, with
    the columns named in :data:`TRADE_COLUMNS`. ``fee_y``/``fee_x`` are the fee rates of
    each leg's market (a spot leg and a perpetual leg pay different rates). Borrow and
    funding do not change what is traded: the engine adds them from the units held.

``equity_stats(equity, risk_free)``
    The equity-curve statistics of :func:`quantlab.backtest.metrics.compute_stats` in one
    pass (mean, std and downside deviation of bar returns, max drawdown and its duration).

Hedges (expanding OLS included) are :mod:`quantlab.analytics` kernels, through ``PairSpec``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

REASON_EXIT = 1
REASON_STOP = 2
REASON_TIME = 3
REASON_END = 4
#: reason code -> name, as listed in ``BacktestResult.trades["reason"]``
REASONS = {REASON_EXIT: "exit", REASON_STOP: "stop", REASON_TIME: "time", REASON_END: "end"}

#: columns of the trade table returned by ``execute``
TRADE_COLUMNS = (
    "entry_bar", "exit_bar", "side", "reason", "beta", "units_y", "units_x",
    "entry_price_y", "entry_price_x", "exit_price_y", "exit_price_x",
    "fees", "pnl", "gross_notional",
)
_NCOL = len(TRADE_COLUMNS)
(_C_ENTRY, _C_EXIT, _C_SIDE, _C_REASON, _C_BETA, _C_UY, _C_UX, _C_EPY, _C_EPX,
 _C_XPY, _C_XPX, _C_FEES, _C_PNL, _C_GROSS) = range(_NCOL)


def decide_py(z, entry, exit_, stop, max_hold):
    """The mean-reversion state machine on a z-score array.

    Rules at each bar t (z NaN means "no information": hold whatever is held, enter nothing):

    * long spread (+1) is closed when ``z[t] > -exit_`` (reason exit) or when
      ``z[t] < -stop`` (reason stop); a short (-1) when ``z[t] < exit_`` or ``z[t] > stop``.
      Stop wins over exit.
    * ``max_hold > 0``: a position decided at bar d is closed at the first bar t with
      ``t - d >= max_hold`` (reason time), so it is held for exactly ``max_hold`` bars.
    * when flat and not blocked: ``z > entry`` shorts the spread, ``z < -entry`` goes long,
      provided ``|z| <= stop``; beyond the stop band nothing is entered and the side is
      blocked. A close at the bar may be followed by an opposite entry at the same bar.
    * after a stop or time exit (and when an entry was refused beyond the stop band) no
      entry is taken until ``|z| <= entry`` again.
    """
    n = z.shape[0]
    target = np.zeros(n, dtype=np.int8)
    reason = np.zeros(n, dtype=np.int8)
    pos = 0
    blocked = False
    entry_bar = 0
    for t in range(n):
        zt = z[t]
        valid = not math.isnan(zt)
        if pos != 0:
            r = 0
            if valid:
                if pos == 1:
                    if zt < -stop:
                        r = REASON_STOP
                    elif zt > -exit_:
                        r = REASON_EXIT
                else:
                    if zt > stop:
                        r = REASON_STOP
                    elif zt < exit_:
                        r = REASON_EXIT
            if r == 0 and max_hold > 0 and t - entry_bar >= max_hold:
                r = REASON_TIME
            if r != 0:
                reason[t] = r
                pos = 0
                if r != REASON_EXIT:
                    blocked = True
        if pos == 0 and valid:
            az = abs(zt)
            if blocked and az <= entry:
                blocked = False
            if not blocked and az > entry:
                if az > stop:
                    blocked = True
                else:
                    pos = -1 if zt > 0 else 1
                    entry_bar = t
        target[t] = pos
    return target, reason


def execute_py(y, x, target, reason, beta, capital, notional, fee_y, fee_x, slip_rate):
    """Fill the decisions one bar late, account cash, fees and slippage, list round trips.

    At bar t (t >= 1) the wanted position is ``target[t-1]``; on the last bar it is 0 (an
    open trade is closed at the last price with reason ``end``). Opening side s at bar t:
    ``units_y = s * notional / y[t]`` and ``units_x = -beta[t-1] * units_y`` (hedge ratio of
    the decision bar, frozen for the trade). A buy fills at ``p * (1 + slip_rate)``, a sell at
    ``p * (1 - slip_rate)``; every fill pays ``fee * |units| * fill_price`` at its leg's
    rate (``fee_y`` or ``fee_x``). Equity is
    ``cash + units_y * y[t] + units_x * x[t]`` after the bar's fills.
    """
    n = y.shape[0]
    signal = np.zeros(n, dtype=np.int8)
    units_y = np.zeros(n)
    units_x = np.zeros(n)
    equity = np.empty(n)
    fees = np.zeros(n)
    traded = np.zeros(n)
    cap = 64
    trades = np.empty((cap, _NCOL))
    k = 0
    cash = capital
    uy = 0.0
    ux = 0.0
    side = 0
    if n > 0:
        equity[0] = capital
    for t in range(1, n):
        want = target[t - 1]
        if t == n - 1:
            want = 0
        if want != side:
            py = y[t]
            px = x[t]
            if side != 0:
                # close: trade -uy of y and -ux of x
                fy = py * (1.0 + slip_rate) if uy < 0 else py * (1.0 - slip_rate)
                fx = px * (1.0 + slip_rate) if ux < 0 else px * (1.0 - slip_rate)
                notional_traded = abs(uy) * fy + abs(ux) * fx
                fee = fee_y * abs(uy) * fy + fee_x * abs(ux) * fx
                cash += uy * fy + ux * fx - fee
                fees[t] += fee
                traded[t] += notional_traded
                row = k - 1
                trades[row, _C_EXIT] = t
                r = reason[t - 1]
                trades[row, _C_REASON] = r if r != 0 else REASON_END
                trades[row, _C_XPY] = fy
                trades[row, _C_XPX] = fx
                total_fees = trades[row, _C_FEES] + fee
                trades[row, _C_FEES] = total_fees
                trades[row, _C_PNL] = (uy * (fy - trades[row, _C_EPY])
                                       + ux * (fx - trades[row, _C_EPX]) - total_fees)
                uy = 0.0
                ux = 0.0
                side = 0
            if want != 0:
                b = beta[t - 1]
                uy = want * notional / py
                ux = -b * uy
                fy = py * (1.0 + slip_rate) if uy > 0 else py * (1.0 - slip_rate)
                fx = px * (1.0 + slip_rate) if ux > 0 else px * (1.0 - slip_rate)
                notional_traded = abs(uy) * fy + abs(ux) * fx
                fee = fee_y * abs(uy) * fy + fee_x * abs(ux) * fx
                cash -= uy * fy + ux * fx + fee
                fees[t] += fee
                traded[t] += notional_traded
                if k == cap:
                    cap *= 2
                    grown = np.empty((cap, _NCOL))
                    grown[:k] = trades[:k]
                    trades = grown
                trades[k, _C_ENTRY] = t
                trades[k, _C_EXIT] = -1.0
                trades[k, _C_SIDE] = want
                trades[k, _C_REASON] = 0.0
                trades[k, _C_BETA] = b
                trades[k, _C_UY] = uy
                trades[k, _C_UX] = ux
                trades[k, _C_EPY] = fy
                trades[k, _C_EPX] = fx
                trades[k, _C_XPY] = np.nan
                trades[k, _C_XPX] = np.nan
                trades[k, _C_FEES] = fee
                trades[k, _C_PNL] = np.nan
                trades[k, _C_GROSS] = abs(uy) * py + abs(ux) * px
                k += 1
                side = want
        signal[t] = side
        units_y[t] = uy
        units_x[t] = ux
        equity[t] = cash + uy * y[t] + ux * x[t]
    return signal, units_y, units_x, equity, fees, traded, trades[:k].copy()


def equity_stats_py(equity, risk_free):
    """One pass over an equity curve for the sweep's statistics.

    Returns ``(n, mean, std, downside, max_drawdown, max_drawdown_duration)`` of the excess
    bar returns ``r - risk_free`` (returns from a non-positive equity skipped), with ``std``
    of ddof=1 (NaN below two returns) and ``downside = sqrt(mean(min(r - rf, 0) ** 2))``;
    drawdowns as defined in :mod:`quantlab.backtest.metrics`, which this equals.
    """
    m = equity.shape[0]
    n = 0
    total = 0.0
    for t in range(1, m):
        prev = equity[t - 1]
        if prev > 0:
            total += equity[t] / prev - 1.0 - risk_free
            n += 1
    mean = total / n if n > 0 else np.nan
    ss = 0.0
    down = 0.0
    for t in range(1, m):
        prev = equity[t - 1]
        if prev > 0:
            r = equity[t] / prev - 1.0 - risk_free
            d = r - mean
            ss += d * d
            if r < 0:
                down += r * r
    std = math.sqrt(ss / (n - 1)) if n > 1 else np.nan
    downside = math.sqrt(down / n) if n > 0 else np.nan
    peak = -np.inf
    mdd = 0.0
    last_peak = 0
    dur = 0
    for t in range(m):
        e = equity[t]
        if e >= peak:
            peak = e
            last_peak = t
        else:
            dd = e / peak - 1.0
            if dd < mdd:
                mdd = dd
            if t - last_peak > dur:
                dur = t - last_peak
    return n, mean, std, downside, mdd, dur


njit: Callable[..., Any] | None
try:  # numba is a hard dependency; the fallback keeps the module importable without it
    from numba import njit
except ImportError:  # pragma: no cover
    njit = None

if njit is not None:
    decide_nb = njit(cache=True, nogil=True)(decide_py)
    execute_nb = njit(cache=True, nogil=True)(execute_py)
    equity_stats_nb = njit(cache=True, nogil=True)(equity_stats_py)
else:  # pragma: no cover
    decide_nb, execute_nb = decide_py, execute_py
    equity_stats_nb = equity_stats_py


def get_kernels(use_numba: bool = True):
    """``(decide, execute)``: the numba versions, or the plain-Python ones."""
    if use_numba:
        return decide_nb, execute_nb
    return decide_py, execute_py
