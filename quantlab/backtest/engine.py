"""The mean-reversion backtest: pandas in, :class:`BacktestResult` out.

Meaning of a backtest (the contract every test holds it to):

* **Signal.** The hedge ratio ``beta[t]`` and the z-score ``z[t]`` use prices up to bar t
  only (``quantlab.analytics``). ``rolling_ols``: OLS ``y ~ alpha + beta * x`` over the last
  ``window`` bars; ``ols_expanding``: over every bar so far (at least ``window``); the
  spread ``y[t] - alpha[t-1] - beta[t-1] * x[t]`` (hedge estimated before the bar, as
  ``analytics.spread`` does) is z-scored over ``z_window`` bars (default ``window``).
  ``kalman``: the filter's one-step forecast error over its predicted standard deviation
  (the first ``window`` bars are warm-up). A number is a fixed hedge ratio.
* **Decision and execution.** The decision is taken at bar t's close and filled at bar
  t+1's price. Short the spread when ``entry < z <= stop``, long when ``-stop <= z <
  -entry``; a long is closed once ``z > -exit`` (a short once ``z < exit``: back inside
  the exit band, or overshot through it), and stopped out when ``z < -stop`` (a short
  when ``z > stop``).
  After a stop (or a time exit, or a signal beyond the stop band while flat) nothing is
  entered until ``|z| <= entry`` again. ``max_holding`` bars (optional) closes a trade with
  reason ``time``. A close may be followed by the opposite entry on the same fill bar
  (z jumped through the whole band). A trade still open on the last bar is closed at the
  last price with reason ``end`` (and nothing is opened on the last bar). Bars with an
  undefined z (warm-up) enter nothing and close nothing.
* **Legs.** Long spread = long ``notional / y`` units of y and short ``beta`` times as many
  units of x (``beta`` the hedge used in the bar's spread; on log prices ``beta * y / x``,
  the units that hedge a log-price spread), with ``beta`` frozen at the decision bar for the life of the trade (short
  spread: the opposite). The exit decision keeps using the current z-score.
* **Costs** (:class:`~quantlab.backtest.costs.Costs`, the one place for them). Every fill
  pays its leg's market fee (Binance VIP 0 taker: spot 10 bps, USD-M 5 bps; four fills per
  round trip) and fills ``slippage_bps`` worse than the bar's price; a short spot leg pays
  borrow interest per bar; a perpetual leg (``um:``/``cm:``) pays or receives funding at
  each funding time. Which leg is spot or perpetual comes from ``legs=`` or from the
  Series' names (``"BTCUSDT"``, ``"um:BTCUSDT"``); an unnamed leg is spot. The older
  ``fee_bps``/``slippage_bps`` arguments mean ``Costs.flat(fee_bps, slippage_bps)``.
* **Accounting.** ``equity = cash + units_y * y + units_x * x - borrow - funding`` (both
  cumulated) at each bar's price after its fills, starting from ``capital``; cash is net of
  fees and slippage. So ``equity = capital + realised and unrealised P&L at bar prices -
  fees - slippage - borrow - funding``, and final equity minus capital is the sum of the
  trade P&Ls, which are net of every cost (``trades`` has a column per cost, ``stats`` a
  total per cost).
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ..errors import InsufficientDataError
from . import kernels as _k
from . import metrics as _m
from .costs import PERPETUAL_MARKETS, Costs
from .result import BacktestResult

_REASON_NAMES = np.array(["", "exit", "stop", "time", "end"], dtype=object)


# --------------------------------------------------------------------------- validation

def _check_series(name: str, s: Any) -> np.ndarray:
    if not isinstance(s, pd.Series):
        raise TypeError(f"{name} must be a pandas Series of prices, got {type(s).__name__}")
    try:
        v = s.to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must hold numeric prices, got dtype {s.dtype}") from None
    bad = ~(np.isfinite(v) & (v > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"{name} must hold finite positive prices; {name}[{s.index[i]!r}] = {v[i]!r} "
            f"({int(bad.sum())} bad values: drop or forward-fill them first)")
    return v


def _check_pair(y: Any, x: Any) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    yv = _check_series("y", y)
    xv = _check_series("x", x)
    if not y.index.equals(x.index):
        raise ValueError("y and x must share the same index; align them first, e.g. "
                         "y, x = y.align(x, join='inner')")
    if not y.index.is_unique or not y.index.is_monotonic_increasing:
        raise ValueError("y and x need a strictly increasing index (sort it and drop "
                         "duplicate timestamps)")
    if len(yv) < 2:
        raise InsufficientDataError(f"y and x have {len(yv)} bar(s); a backtest needs at "
                                    "least 2")
    return y.index, yv, xv


def _check_int(name: str, v: Any, minimum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be an integer number of bars, got {v!r}")
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v!r}")
    return int(v)


def _check_float(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or math.isnan(v):
        raise TypeError(f"{name} must be a number, got {v!r}")
    return float(v)


def _check_rules(entry: Any, exit: Any, stop: Any,
                 max_holding: Any) -> tuple[float, float, float, int]:
    entry_f = _check_float("entry", entry)
    exit_f = _check_float("exit", exit)
    stop_f = math.inf if stop is None else _check_float("stop", stop)
    if not exit_f >= 0:
        raise ValueError(f"exit must be >= 0 (0 <= exit < entry < stop), got {exit!r}")
    if not exit_f < entry_f:
        raise ValueError(f"exit must be below entry (0 <= exit < entry < stop), got "
                         f"exit={exit!r}, entry={entry!r}")
    if not entry_f < stop_f:
        raise ValueError(f"stop must be above entry (0 <= exit < entry < stop), got "
                         f"entry={entry!r}, stop={stop!r}; use stop=None for no stop")
    if not math.isfinite(entry_f):
        raise ValueError(f"entry must be finite, got {entry!r}")
    hold = 0 if max_holding is None else _check_int("max_holding", max_holding, 1)
    return entry_f, exit_f, stop_f, hold


class _Plan(NamedTuple):
    """Costs resolved for one pair of legs on one index: what the kernels and carry need."""

    fee_y: float
    fee_x: float
    slip: float
    capital: float
    notional: float
    borrow_y: float = 0.0        # per-bar borrow rate of y (0 unless y is a spot leg)
    borrow_x: float = 0.0
    fund_bar_y: np.ndarray = np.empty(0, dtype=np.int64)   # bar booking each funding event
    fund_amt_y: np.ndarray = np.empty(0)                   # rate x mark: paid per unit held
    fund_bar_x: np.ndarray = np.empty(0, dtype=np.int64)
    fund_amt_x: np.ndarray = np.empty(0)


def _check_capital(capital: Any, notional: Any) -> tuple[float, float]:
    cap = _check_float("capital", capital)
    if not (cap > 0 and math.isfinite(cap)):
        raise ValueError(f"capital must be a positive amount, got {capital!r}")
    notl = cap if notional is None else _check_float("notional", notional)
    if not (notl > 0 and math.isfinite(notl)):
        raise ValueError(f"notional must be a positive amount per trade, got {notional!r}")
    return cap, notl


def _check_costs(fee_bps: Any, slippage_bps: Any, capital: Any, notional: Any) -> _Plan:
    """The plan of ``Costs.flat(fee_bps, slippage_bps)`` on two spot legs (no carry)."""
    c = Costs.flat(_check_bps("fee_bps", fee_bps), _check_bps("slippage_bps", slippage_bps))
    cap, notl = _check_capital(capital, notional)
    return _Plan(c.fee_bps("spot") / 1e4, c.fee_bps("spot") / 1e4, c.slippage_bps / 1e4,
                 cap, notl)


def _check_bps(name: str, v: Any) -> float:
    f = _check_float(name, v)
    if not (0 <= f < 10_000):
        raise ValueError(f"{name} must be in [0, 10000) basis points, got {v!r}")
    return f


def _costs_arg(costs: Any, fee_bps: Any, slippage_bps: Any, funding: Any) -> Costs:
    """The :class:`Costs` of a call: ``costs=``, or the older ``fee_bps``/``slippage_bps``."""
    if costs is not None:
        if not isinstance(costs, Costs):
            raise TypeError(f"costs must be a quantlab.backtest.Costs, got "
                            f"{type(costs).__name__}")
        if fee_bps is not None or slippage_bps is not None:
            raise ValueError("pass fees and slippage inside costs=Costs(...) or as fee_bps/"
                             "slippage_bps, not both")
    elif fee_bps is not None:
        costs = Costs.flat(_check_bps("fee_bps", fee_bps),
                           0.0 if slippage_bps is None else _check_bps("slippage_bps",
                                                                       slippage_bps))
    else:
        costs = Costs(slippage_bps=0.0 if slippage_bps is None
                      else _check_bps("slippage_bps", slippage_bps))
    if funding is not None and not isinstance(funding, Mapping):
        raise TypeError("funding must map a perpetual symbol (e.g. 'um:BTCUSDT') to its "
                        f"funding rates, got {type(funding).__name__}")
    return costs.with_funding(funding)


def _leg_symbols(y: pd.Series, x: pd.Series, legs: Any) -> tuple[Any, Any]:
    """The two legs as :class:`~quantlab.symbols.Symbol`: from ``legs`` or the Series names
    (a name that is no symbol, or none, is a spot leg)."""
    from ..symbols import Symbol, parse_symbol

    if legs is not None:
        if isinstance(legs, str) or not isinstance(legs, Sequence) or len(legs) != 2:
            raise ValueError(f"legs must name the two legs, e.g. legs=('BTCUSDT', "
                             f"'um:BTCUSDT'), got {legs!r}")
        return tuple(parse_symbol(str(s)) for s in legs)  # type: ignore[return-value]
    out = []
    for s in (y, x):
        name = s.name
        try:
            out.append(parse_symbol(name) if isinstance(name, str) else Symbol("spot", "?"))
        except ValueError:
            out.append(Symbol("spot", str(name)))
    return out[0], out[1]


def _funding_events(table: pd.DataFrame, index: pd.Index, prices: np.ndarray,
                    what: str) -> tuple[np.ndarray, np.ndarray]:
    """``(bar, rate x mark)`` of each funding time inside the data: a funding time T with
    ``index[t] <= T < index[t+1]`` is booked at bar t and paid by the units held during bar
    t (filled at bar t-1's close); the mark defaults to bar t-1's close (the last price at
    or before T). Bar 0 holds nothing; times before the data or after its last bar drop."""
    if not isinstance(index, pd.DatetimeIndex):
        raise ValueError(f"funding for {what} needs y and x indexed by time (a DatetimeIndex "
                         "of bar open times)")
    idx = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    bars_ns = idx.as_unit("ns").asi8
    t_ns = table.index.as_unit("ns").asi8
    step = int(np.median(np.diff(bars_ns))) if len(bars_ns) > 1 else 0
    bar = np.searchsorted(bars_ns, t_ns, side="right") - 1
    keep = (bar >= 1) & (t_ns < bars_ns[-1] + step)
    bar = bar[keep].astype(np.int64)
    mark = table["mark"].to_numpy(dtype=float)[keep]
    mark = np.where(np.isfinite(mark), mark, prices[np.maximum(bar - 1, 0)])
    return bar, table["rate"].to_numpy(dtype=float)[keep] * mark


def _plan(costs: Costs, y: pd.Series, x: pd.Series, legs: Any, index: pd.Index,
          yv: np.ndarray, xv: np.ndarray, ppy: float, capital: Any,
          notional: Any) -> tuple[_Plan, tuple[str, str]]:
    """Resolve ``costs`` for these legs and bars: fee per leg, borrow per bar, funding
    events per bar. Returns the plan and the legs' symbols as text."""
    cap, notl = _check_capital(capital, notional)
    sy, sx = _leg_symbols(y, x, legs)
    names = {"y": sy, "x": sx}
    used: set[str] = set()
    fund: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for leg, sym, prices in (("y", sy, yv), ("x", sx, xv)):
        key = leg if leg in costs.funding else str(sym)
        if key not in costs.funding:
            if sym.market in PERPETUAL_MARKETS:
                warnings.warn(f"{leg} is the perpetual {sym} and costs has no funding rates for "
                              f"it: its funding is not counted (pass funding={{'{sym}': "
                              "rates}, or None to leave it out on purpose)", UserWarning,
                              stacklevel=3)
            continue
        used.add(key)
        table = costs.funding[key]
        if table is None:
            continue
        if sym.market not in PERPETUAL_MARKETS:
            raise ValueError(f"funding given for {leg} = {sym}, a spot leg; funding is paid "
                             f"on perpetual legs (um:/cm: symbols, or legs=...)")
        fund[leg] = _funding_events(table, index, prices, str(sym))
    unused = [k for k in costs.funding if k not in used]
    if unused:
        raise ValueError(f"funding given for {', '.join(unused)}, which is not a leg of this "
                         f"pair (legs: y = {names['y']}, x = {names['x']}); name the legs with "
                         "legs=(...) or Series names")
    rate_bar = costs.borrow_annual / ppy
    empty = (np.empty(0, dtype=np.int64), np.empty(0))
    plan = _Plan(
        fee_y=costs.fee_bps(sy.market) / 1e4, fee_x=costs.fee_bps(sx.market) / 1e4,
        slip=costs.slippage_bps / 1e4, capital=cap, notional=notl,
        borrow_y=rate_bar if sy.market == "spot" else 0.0,
        borrow_x=rate_bar if sx.market == "spot" else 0.0,
        fund_bar_y=fund.get("y", empty)[0], fund_amt_y=fund.get("y", empty)[1],
        fund_bar_x=fund.get("x", empty)[0], fund_amt_x=fund.get("x", empty)[1])
    return plan, (str(sy), str(sx))


def _holding_bars(max_holding: Any, index: pd.Index) -> Any:
    """``max_holding`` as bars: an int passes through; a Timedelta or a string like
    ``"10min"`` is divided by the median bar length (rounded up)."""
    if isinstance(max_holding, str | pd.Timedelta) or hasattr(max_holding, "total_seconds"):
        try:
            span = pd.Timedelta(max_holding)
        except ValueError:
            raise ValueError(f"max_holding must be a number of bars or a duration such as "
                             f"'10min', got {max_holding!r}") from None
        if not isinstance(index, pd.DatetimeIndex):
            raise ValueError("max_holding as a duration needs a DatetimeIndex; give bars")
        step = pd.Timedelta(int(np.median(np.diff(index.asi8))), unit=index.unit)
        if span <= pd.Timedelta(0):
            raise ValueError(f"max_holding must be a positive duration, got {max_holding!r}")
        return max(1, math.ceil(span / step))
    return max_holding


def _ppy(index: pd.Index, periods_per_year: float | None) -> float:
    if periods_per_year is not None:
        p = _check_float("periods_per_year", periods_per_year)
        if not p > 0:
            raise ValueError(f"periods_per_year must be positive, got {periods_per_year!r}")
        return p
    if not isinstance(index, pd.DatetimeIndex):
        raise ValueError("periods_per_year is required when y and x are not indexed by "
                         "time (a DatetimeIndex gives the bar frequency)")
    return _m.periods_per_year(index)


# --------------------------------------------------------------------------- signal

#: log prices are refused below this level (ln 270,000: above any real crypto price's log)
_LOG_PRICE_MAX = 12.5


def _refuse_log_prices(yv: np.ndarray, xv: np.ndarray) -> None:
    """Exchange prices sit on a decimal tick grid (Binance: at most 8 decimals); logs of
    prices do not, and are small numbers. Both at once means log prices were passed."""
    def looks_log(v: np.ndarray) -> bool:
        if v.max() >= _LOG_PRICE_MAX:
            return False
        off = np.abs(v * 1e8 - np.round(v * 1e8))
        return bool(np.mean(off > 1e-3) > 0.5)

    if looks_log(yv) and looks_log(xv):
        raise ValueError("y and x look like log prices (all below 12.5 and off any price "
                         "tick); backtest.run trades prices: pass the prices and "
                         "use PairSpec(prices='log') to fit the hedge on their logs")


def spec_from_args(hedge: Any = "rolling_ols", window: Any = 60, z_window: Any = None,
                   delta: Any = None, obs_var: Any = None) -> Any:
    """The :class:`~quantlab.analytics.pair.PairSpec` meant by the older arguments
    (``hedge`` a name, ``window``, ``z_window``); a number hedge stays a fixed ratio."""
    from ..analytics.pair import HEDGES, PairSpec

    if delta is not None or obs_var is not None:
        raise ValueError("delta/obs_var set the old raw-unit Kalman noise, which depended on "
                         "the price scale; use spec=PairSpec(hedge='kalman') (noise fitted by "
                         "maximum likelihood) or PairSpec(hedge='kalman', kalman=(q_beta, "
                         "q_alpha, r)) in standardised units")
    if isinstance(hedge, numbers.Real) and not isinstance(hedge, bool):
        if not math.isfinite(hedge):
            raise ValueError(f"hedge must be one of {', '.join(HEDGES)} or a finite number, "
                             f"got {hedge!r}")
        return float(hedge)
    if not isinstance(hedge, str):
        raise ValueError(f"hedge must be one of {', '.join(HEDGES)} or a finite number, "
                         f"got {hedge!r}")
    if isinstance(window, bool) or not isinstance(window, numbers.Integral | str):
        raise TypeError(f"window must be an integer number of bars or a duration, got {window!r}")
    if isinstance(window, numbers.Integral) and window < 3:
        raise ValueError(f"window must be >= 3, got {window!r}")
    if z_window is not None and isinstance(z_window, numbers.Integral) and not isinstance(
            z_window, bool) and z_window < 2:
        raise ValueError(f"z_window must be >= 2, got {z_window!r}")
    return PairSpec(hedge=hedge, window=int(window) if isinstance(window, numbers.Integral) else window,
                    z_window=z_window)


def signal_inputs(y: pd.Series, x: pd.Series, spec: Any) -> tuple[np.ndarray, np.ndarray, Any]:
    """``(beta_units, z, signal)`` for a validated pair: the units of x per unit of y that
    hedge the spread at each bar (the spec's beta; on log prices ``beta * y / x``) and the
    z-score per bar, from ``spec.evaluate(y, x)`` (a number: a fixed ratio, the spread
    ``y - beta x`` z-scored over ``z_window``). NaN during warm-up; z is NaN wherever beta is.
    Computed once per window in :func:`quantlab.backtest.sweep`. ``spec`` may also be a
    :class:`~quantlab.analytics.pair.FittedPair` (state carried in from a formation window:
    the walk-forward's trading bars).
    """
    sig = spec.evaluate(y, x)
    f = sig.frame
    beta = f["beta"].to_numpy(dtype=float).copy()
    prices = spec.spec.prices if hasattr(spec, "spec") else spec.prices
    if prices == "log":
        beta = beta * y.to_numpy(dtype=float) / x.to_numpy(dtype=float)
    z = f["z"].to_numpy(dtype=float).copy()
    z[~np.isfinite(beta)] = np.nan
    return beta, z, sig


def _fixed_inputs(y: pd.Series, x: pd.Series, beta: float,
                  z_window: int) -> tuple[np.ndarray, np.ndarray, None]:
    from .. import analytics

    z = analytics.zscore(analytics.spread(y, x, beta), z_window).to_numpy(dtype=float)
    return np.full(len(y), beta), z, None


def _step(index: pd.Index) -> pd.Timedelta | None:
    if isinstance(index, pd.DatetimeIndex) and len(index) > 1:
        return pd.Timedelta(int(np.median(np.diff(index.as_unit("ns").asi8))), unit="ns")
    return None


def _warmup(spec: Any, index: pd.Index, z_window: int | None = None) -> int:
    """Bars before the first defined z-score."""
    if isinstance(spec, float):
        return (z_window or 60) - 1
    return spec.warmup_bars(_step(index))


def _check_length(n: int, specs: list[Any], index: pd.Index, z_window: int | None = None) -> None:
    need = max(_warmup(s, index, z_window) for s in specs) + 2
    if n < need:
        s = specs[0]
        what = f"hedge={s!r}" if isinstance(s, float) else s.label
        raise InsufficientDataError(
            f"y and x have {n} bars; {what} needs at least {need} (warm-up, one decision "
            f"bar and one fill bar)")


# --------------------------------------------------------------------------- simulation

#: columns of the engine's trade table: the kernel's, then the costs it adds
TRADE_COLUMNS = (*_k.TRADE_COLUMNS, "slippage", "borrow", "funding")
COST_COLUMNS = ("fees", "slippage", "borrow", "funding")


def _simulate(yv: np.ndarray, xv: np.ndarray, z: np.ndarray, beta: np.ndarray,
              rules: tuple[float, float, float, int], plan: _Plan, use_numba: bool = True):
    """``(signal, units_y, units_x, equity, fees, traded, trades, per_bar)``: the kernels'
    fills, then borrow and funding from the units held (they change no fill), slippage
    split out of the fill prices; ``trades`` has :data:`TRADE_COLUMNS` and ``per_bar`` the
    per-bar ``slippage``, ``borrow`` and ``funding``."""
    decide, execute = _k.get_kernels(use_numba)
    entry, exit_, stop, hold = rules
    # plain floats and ints: one compiled specialisation whatever the caller passed
    target, reason = decide(z, float(entry), float(exit_), float(stop), int(hold))
    signal, uy, ux, equity, fees, traded, tr = execute(
        yv, xv, target, reason, beta, float(plan.capital), float(plan.notional),
        float(plan.fee_y), float(plan.fee_x), float(plan.slip))
    return _add_costs(yv, xv, plan, signal, uy, ux, equity, fees, traded, tr)


def _add_costs(yv, xv, plan: _Plan, signal, uy, ux, equity, fees, traded, tr):
    n = len(yv)
    c = _COL
    borrow = np.zeros(n)
    funding = np.zeros(n)
    slippage = np.zeros(n)
    # borrow at bar t on the short spot units held during bar t, valued at its close
    if plan.borrow_y:
        borrow[1:] += plan.borrow_y * np.maximum(-uy[:-1], 0.0) * yv[1:]
    if plan.borrow_x:
        borrow[1:] += plan.borrow_x * np.maximum(-ux[:-1], 0.0) * xv[1:]
    # funding at bar t: units held during bar t x mark x rate (long pays a positive rate)
    for bars, amt, units in ((plan.fund_bar_y, plan.fund_amt_y, uy),
                             (plan.fund_bar_x, plan.fund_amt_x, ux)):
        if len(bars):
            np.add.at(funding, bars, units[bars - 1] * amt)
    k = tr.shape[0]
    eb = tr[:, c["entry_bar"]].astype(np.int64)
    xb = tr[:, c["exit_bar"]].astype(np.int64)
    auy, aux = np.abs(tr[:, c["units_y"]]), np.abs(tr[:, c["units_x"]])
    slip_in = plan.slip * (auy * yv[eb] + aux * xv[eb])
    slip_out = plan.slip * (auy * yv[xb] + aux * xv[xb])
    if plan.slip and k:
        np.add.at(slippage, eb, slip_in)
        np.add.at(slippage, xb, slip_out)
    carry = bool(plan.borrow_y or plan.borrow_x or len(plan.fund_bar_y) or len(plan.fund_bar_x))
    if carry:
        cb = np.concatenate(([0.0], np.cumsum(borrow)))
        cf = np.concatenate(([0.0], np.cumsum(funding)))
        # a trade holds during bars eb+1 .. xb: its carry is the cumulated cost over them
        tb = cb[xb + 1] - cb[eb + 1]
        tf = cf[xb + 1] - cf[eb + 1]
        equity = equity - cb[1:] - cf[1:]
    else:  # fees and slippage only: nothing to cumulate (the sweep's common case)
        tb = tf = np.zeros(k)
    trades = np.empty((k, len(TRADE_COLUMNS)))
    trades[:, :tr.shape[1]] = tr
    trades[:, c["slippage"]] = slip_in + slip_out
    trades[:, c["borrow"]] = tb
    trades[:, c["funding"]] = tf
    trades[:, c["pnl"]] = tr[:, c["pnl"]] - tb - tf
    per_bar = {"slippage": slippage, "borrow": borrow, "funding": funding}
    return signal, uy, ux, equity, fees, traded, trades, per_bar


_COL = {name: i for i, name in enumerate(TRADE_COLUMNS)}


def _stats(raw, ppy: float, capital: float, rf_bar: float) -> dict[str, Any]:
    signal, _, _, equity, _fees, traded, tr = raw[:7]
    return _m.compute_stats(
        equity, ppy, pnl=tr[:, _COL["pnl"]],
        bars_held=tr[:, _COL["exit_bar"]] - tr[:, _COL["entry_bar"]],
        signal=signal, traded=traded, fees=float(tr[:, _COL["fees"]].sum()),
        slippage=float(tr[:, _COL["slippage"]].sum()),
        borrow=float(tr[:, _COL["borrow"]].sum()),
        funding=float(tr[:, _COL["funding"]].sum()),
        capital=capital, risk_free=rf_bar)


def _rf_bar(risk_free_annual: Any, ppy: float) -> float:
    rf = _check_float("risk_free_annual", risk_free_annual)
    if not rf > -1:
        raise ValueError(f"risk_free_annual must be > -1, got {risk_free_annual!r}")
    return math.expm1(math.log1p(rf) / ppy)


def _trades_frame(tr: np.ndarray, index: pd.Index, z: np.ndarray) -> pd.DataFrame:
    n = len(index)
    c = _COL
    entry_bar = tr[:, c["entry_bar"]].astype(np.int64)
    exit_bar = tr[:, c["exit_bar"]].astype(np.int64)
    code = tr[:, c["reason"]].astype(np.int64)
    exit_decision = np.where(code == _k.REASON_END, exit_bar, exit_bar - 1)
    exit_decision = np.clip(exit_decision, 0, n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = tr[:, c["pnl"]] / tr[:, c["gross_notional"]]
    frame = {
        "entry_time": index[entry_bar],
        "exit_time": index[exit_bar],
        "side": tr[:, c["side"]].astype(np.int64),
        "entry_z": z[entry_bar - 1],
        "exit_z": z[exit_decision],
        "reason": _REASON_NAMES[code],
        "pnl": tr[:, c["pnl"]],
        "fees": tr[:, c["fees"]],
        "slippage": tr[:, c["slippage"]],
        "borrow": tr[:, c["borrow"]],
        "funding": tr[:, c["funding"]],
        "return": ret,
        "bars": exit_bar - entry_bar,
    }
    for name in ("beta", "units_y", "units_x", "entry_price_y", "entry_price_x",
                 "exit_price_y", "exit_price_x"):
        frame[name] = tr[:, c[name]]
    return pd.DataFrame(frame)


def _backtest(index: pd.Index, yv: np.ndarray, xv: np.ndarray, z: np.ndarray,
              beta: np.ndarray, rules, plan: _Plan, ppy: float, rf_bar: float,
              params: dict[str, Any], pair_signal: Any = None) -> BacktestResult:
    if np.isnan(z).all():
        warnings.warn("the z-score is undefined at every bar (series shorter than the "
                      "warm-up, or a constant spread): no trade can be taken",
                      UserWarning, stacklevel=3)
    raw = _simulate(yv, xv, z, beta, rules, plan)
    signal, units_y, units_x, equity, fees, _traded, trades, per_bar = raw
    stats = _stats(raw, ppy, plan.capital, rf_bar)
    _m.warn_short_sample(index, stats, trades[:, _COL["pnl"]], trades[:, _COL["gross_notional"]])
    positions = pd.DataFrame({"z": z, "beta": beta, "signal": signal, "units_y": units_y,
                              "units_x": units_x, "fees": fees, **per_bar}, index=index)
    return BacktestResult(
        equity=pd.Series(equity, index=index, name="equity"),
        positions=positions,
        trades=_trades_frame(trades, index, z),
        stats=stats,
        params=dict(params, periods_per_year=ppy),
        signal=pair_signal,
    )


# --------------------------------------------------------------------------- public

def run(y: pd.Series, x: pd.Series, entry: float = 2.0, exit: float = 0.5,
        stop: float | None = 4.0, window: Any = 60, *, spec: Any = None,
        hedge: str | float = "rolling_ols", z_window: Any = None,
        costs: Costs | None = None, funding: Mapping[str, Any] | None = None,
        legs: Sequence[str] | None = None,
        fee_bps: float | None = None, slippage_bps: float | None = None,
        capital: float = 10_000.0,
        notional: float | None = None, max_holding: int | None = None,
        delta: float | None = None, obs_var: float | None = None,
        risk_free_annual: float = 0.0,
        periods_per_year: float | None = None) -> BacktestResult:
    """Backtest mean reversion of the spread of ``y`` against ``x``.

    Parameters
    ----------
    y, x : Series
        Prices (never their logs: use ``PairSpec(prices="log")``) per bar on one shared,
        increasing index of bar open times (a ``DatetimeIndex`` gives the bar frequency for
        annualising; otherwise pass ``periods_per_year``); their names, when symbols, say
        which leg is spot and which perpetual::

            time                         y (BTCUSDT)   x (um:BTCUSDT)
            2024-08-09 00:00:00+00:00       61837.63        61870.10
            2024-08-09 00:00:01+00:00       61840.01        61871.90

    entry, exit, stop : float
        z-score thresholds, ``0 <= exit < entry < stop`` (``stop=None``: no stop).
    spec : PairSpec, optional
        The pair signal traded (``quantlab.PairSpec``): hedge, windows, prices, lag. The
        result's ``signal`` is ``spec.evaluate(y, x)`` and ``positions["z"]`` its z.
    window, hedge, z_window :
        Without ``spec``: ``PairSpec(hedge=hedge, window=window, z_window=z_window)``; a
        number ``hedge`` is a fixed hedge ratio (spread ``y - hedge x`` z-scored over
        ``z_window``, default ``window``).
    costs : Costs, optional
        Every cost assumption (:class:`quantlab.backtest.Costs`): fees per market, slippage,
        borrow on a short spot leg, funding on perpetual legs. Default ``Costs()``: Binance
        VIP 0 taker fees (spot 10 bps, USD-M 5 bps), nothing else.
    funding : mapping, optional
        ``{symbol or "y"/"x": funding rates}`` added to ``costs.funding`` (a table per
        perpetual as the store, the REST API or the archives give it).
    legs : (str, str), optional
        The symbols of y and x (``("BTCUSDT", "um:BTCUSDT")``) when the Series' names are
        not; an unnamed leg is spot.
    fee_bps, slippage_bps : float
        The older form: ``costs=Costs.flat(fee_bps, slippage_bps)`` (one fee for every fill).
    capital, notional : float
        Starting equity; notional of the y leg per trade (default ``capital``).
    max_holding : int or duration, optional
        Close a trade after this many bars (reason ``time``); a ``Timedelta`` or a string
        such as ``"10min"`` is converted to bars at the data's median bar length.
    risk_free_annual : float
        Annual risk-free rate for Sharpe and Sortino (converted to a per-bar rate).

    The full meaning (timing, stops, costs, accounting) is in this module's docstring.

    Returns
    -------
    BacktestResult
        ``equity``, ``positions``, ``trades``, ``stats``, ``signal``, ``summary()``.
    """
    index, yv, xv = _check_pair(y, x)
    _refuse_log_prices(yv, xv)
    max_holding = _holding_bars(max_holding, index)
    rules = _check_rules(entry, exit, stop, max_holding)
    costs_v = _costs_arg(costs, fee_bps, slippage_bps, funding)
    spec_v = _spec_arg(spec, hedge, window, z_window, delta, obs_var)
    zw = _fixed_z_window(spec_v, window, z_window)
    _check_length(len(yv), [spec_v], index, zw)
    ppy = _ppy(index, periods_per_year)
    rf_bar = _rf_bar(risk_free_annual, ppy)
    plan, leg_names = _plan(costs_v, y, x, legs, index, yv, xv, ppy, capital, notional)
    if isinstance(spec_v, float):
        assert zw is not None  # _fixed_z_window gives a fixed hedge its z-score window
        beta, z, sig = _fixed_inputs(y, x, spec_v, zw)
        hedge_p: Any = spec_v
        params_spec: dict[str, Any] = dict(window=zw, z_window=zw)
    else:
        beta, z, sig = signal_inputs(y, x, spec_v)
        hedge_p = spec_v.hedge
        params_spec = dict(window=spec_v.window, z_window=spec_v.z_window, spec=spec_v)
    params = dict(hedge=hedge_p, **params_spec, entry=rules[0], exit=rules[1],
                  stop=None if stop is None else rules[2], max_holding=max_holding,
                  **_cost_params(costs_v, plan, leg_names), risk_free_annual=risk_free_annual)
    return _backtest(index, yv, xv, z, beta, rules, plan, ppy, rf_bar, params, pair_signal=sig)


def _cost_params(costs: Costs, plan: _Plan, legs: tuple[str, str]) -> dict[str, Any]:
    return dict(costs=costs, legs=legs, fee_bps=(plan.fee_y * 1e4, plan.fee_x * 1e4),
                slippage_bps=costs.slippage_bps, borrow_annual=costs.borrow_annual,
                capital=plan.capital, notional=plan.notional)


def _spec_arg(spec: Any, hedge: Any, window: Any, z_window: Any, delta: Any,
              obs_var: Any) -> Any:
    from ..analytics.pair import PairSpec

    if spec is None:
        return spec_from_args(hedge, window, z_window, delta, obs_var)
    if not isinstance(spec, PairSpec):
        raise TypeError(f"spec must be a quantlab.PairSpec, got {type(spec).__name__}")
    return spec


def _fixed_z_window(spec: Any, window: Any, z_window: Any) -> int | None:
    if not isinstance(spec, float):
        return None
    zw = window if z_window is None else z_window
    return _check_int("z_window" if z_window is not None else "window", zw, 2)


def from_zscore(y: pd.Series, x: pd.Series, z: pd.Series, beta: pd.Series | float,
                entry: float = 2.0, exit: float = 0.5, stop: float | None = 4.0, *,
                costs: Costs | None = None, funding: Mapping[str, Any] | None = None,
                legs: Sequence[str] | None = None,
                fee_bps: float | None = None, slippage_bps: float | None = None,
                capital: float = 10_000.0, notional: float | None = None,
                max_holding: int | None = None, risk_free_annual: float = 0.0,
                periods_per_year: float | None = None) -> BacktestResult:
    """Backtest with a z-score and hedge ratio computed elsewhere (same rules and costs as
    :func:`run`).

    ``z[t]`` and ``beta[t]`` must use information up to bar t only: the engine cannot
    check that. Both share the index of ``y`` and ``x``; NaN z (or NaN beta) means no
    signal at that bar. ``beta`` may be a single number.
    """
    index, yv, xv = _check_pair(y, x)
    max_holding = _holding_bars(max_holding, index)
    rules = _check_rules(entry, exit, stop, max_holding)
    costs_v = _costs_arg(costs, fee_bps, slippage_bps, funding)
    if not isinstance(z, pd.Series) or not z.index.equals(index):
        raise ValueError("z must be a Series on the same index as y and x")
    zv = z.to_numpy(dtype=float).copy()
    if isinstance(beta, pd.Series):
        if not beta.index.equals(index):
            raise ValueError("beta must be a Series on the same index as y and x, or a number")
        bv = beta.to_numpy(dtype=float).copy()
    else:
        bv = np.full(len(index), _check_float("beta", beta))
    zv[~np.isfinite(bv)] = np.nan
    ppy = _ppy(index, periods_per_year)
    rf_bar = _rf_bar(risk_free_annual, ppy)
    plan, leg_names = _plan(costs_v, y, x, legs, index, yv, xv, ppy, capital, notional)
    params = dict(hedge="given", entry=rules[0], exit=rules[1],
                  stop=None if stop is None else rules[2], max_holding=max_holding,
                  **_cost_params(costs_v, plan, leg_names), risk_free_annual=risk_free_annual)
    return _backtest(index, yv, xv, zv, bv, rules, plan, ppy, rf_bar, params)
