"""Backtest speed against vectorbt on the same positions.

Rows (a synthetic cointegrated BTC/ETH-like pair at 1 s bars):

* one backtest of 1M bars, end to end (rolling OLS hedge, z-score, state machine, fills,
  trade list, statistics) vs. vectorbt ``Portfolio.from_signals`` replaying the *same*
  positions (both legs, shared cash, same fees and slippage) plus its value curve, Sharpe
  and max drawdown. vectorbt gets the positions for free: its time is simulation only.
* the state machine + fills + statistics alone on precomputed z-scores vs. the same
  vectorbt call;
* a 100-combination sweep (5 windows x 5 entries x 4 exits) vs. vectorbt replaying the
  100 position sets one by one (again without paying for the signals);
* how far vectorbt's equity is from ours on those positions (a correctness check).

vectorbt is a benchmark-only extra (``pip install -e '.[bench]'``); it is fed numpy arrays,
its fastest path (with pandas inputs it is ~50x slower on pandas 3).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
from _table import Row, best_of
from scipy.signal import lfilter

from quantlab import backtest as bt
from quantlab.backtest import engine as _engine

AREA = "backtest"
CAPITAL = 10_000.0
FEE_BPS = 10.0
SLIP_BPS = 1.0
RULES = dict(entry=2.0, exit=0.5, stop=4.0)


def _pair(n: int, seed: int = 0) -> tuple[pd.Series, pd.Series]:
    """ETH-like x (random walk) and y = 23 x + 300 + AR(1) spread, 1 s bars."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-08-09", periods=n, freq="s", tz="UTC")
    x = 2680.0 * np.exp(np.cumsum(rng.normal(0, 2e-3, n)))
    spread = lfilter([1.0], [1.0, -0.95], rng.normal(0, 150.0, n))
    return pd.Series(23.0 * x + 300.0 + spread, idx), pd.Series(x, idx)


def _legs(signal: np.ndarray, units: np.ndarray) -> tuple[np.ndarray, ...]:
    """One leg's units per bar as from_signals entries/exits/short entries/short exits/size."""
    prev = np.r_[0.0, units[:-1]]
    change = np.r_[False, signal[1:] != signal[:-1]]
    long_entry = change & (units > 0)
    short_entry = change & (units < 0)
    long_exit = change & (prev > 0) & ~(units > 0)
    short_exit = change & (prev < 0) & ~(units < 0)
    # a leg that stays on the same side across a flip (beta changed sign) cannot be
    # expressed with from_signals without accumulation; count those bars
    resized = change & (np.sign(units) == np.sign(prev)) & (units != 0)
    return long_entry, long_exit, short_entry, short_exit, np.abs(units), int(resized.sum())


def _vbt_inputs(y: pd.Series, x: pd.Series, res: bt.BacktestResult) -> dict:
    pos = res.positions
    sig = pos["signal"].to_numpy()
    ly, lx = _legs(sig, pos["units_y"].to_numpy()), _legs(sig, pos["units_x"].to_numpy())
    return {
        "close": np.column_stack([y.to_numpy(), x.to_numpy()]),
        "entries": np.column_stack([ly[0], lx[0]]),
        "exits": np.column_stack([ly[1], lx[1]]),
        "short_entries": np.column_stack([ly[2], lx[2]]),
        "short_exits": np.column_stack([ly[3], lx[3]]),
        "size": np.column_stack([ly[4], lx[4]]),
        "unexpressible": ly[5] + lx[5],
    }


def _vbt_run(vbt, inp: dict) -> tuple[np.ndarray, float, float]:
    pf = vbt.Portfolio.from_signals(
        inp["close"], entries=inp["entries"], exits=inp["exits"],
        short_entries=inp["short_entries"], short_exits=inp["short_exits"], size=inp["size"],
        size_type="amount", fees=FEE_BPS / 1e4, slippage=SLIP_BPS / 1e4,
        init_cash=CAPITAL * 1e6,  # ample cash: no order may be cut by a cash limit
        cash_sharing=True, group_by=True, freq="1s", upon_opposite_entry="reverse",
        accumulate=False)
    value = np.asarray(pf.value())
    return value, float(pf.sharpe_ratio()), float(pf.max_drawdown())


def run(quick: bool) -> list[Row]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import vectorbt as vbt

    n = 100_000 if quick else 1_000_000
    n_sweep = 100_000 if quick else 1_000_000
    size = f"{n // 1000}k" if n < 1_000_000 else f"{n // 1_000_000}M"
    size_sweep = f"{n_sweep // 1000}k" if n_sweep < 1_000_000 else f"{n_sweep // 1_000_000}M"
    rows: list[Row] = []
    y, x = _pair(n)
    kw = dict(RULES, window=300, fee_bps=FEE_BPS, slippage_bps=SLIP_BPS, capital=CAPITAL)

    # warm up (numba compiles, or loads its cache) outside the timings
    small_y, small_x = _pair(2000, 1)
    warm = bt.run(small_y, small_x, **dict(kw, window=60))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _vbt_run(vbt, _vbt_inputs(small_y, small_x, warm))

    res = bt.run(y, x, **kw)
    inp = _vbt_inputs(y, x, res)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value, _, _ = _vbt_run(vbt, inp)
        t_ref = best_of(lambda: _vbt_run(vbt, inp), repeat=3)
    t_ours = best_of(lambda: bt.run(y, x, **kw), repeat=3)
    rows.append(Row(AREA, f"run(), {size} bars, rolling OLS, {res.stats['n_trades']} trades "
                          "(vectorbt: positions given)",
                    t_ours, "s", t_ref, t_ref / t_ours, ">= 1x vectorbt from_signals"))

    z = res.positions["z"].to_numpy()
    beta = res.positions["beta"].to_numpy()
    yv, xv = y.to_numpy(), x.to_numpy()
    rules = _engine._check_rules(RULES["entry"], RULES["exit"], RULES["stop"], None)
    costs = _engine._check_costs(FEE_BPS, SLIP_BPS, CAPITAL, None)
    ppy = 365 * 86400.0

    def kernel_only():
        raw = _engine._simulate(yv, xv, z, beta, rules, costs)
        return _engine._stats(raw, ppy, CAPITAL, 0.0)

    t_kernel = best_of(kernel_only, repeat=5)
    rows.append(Row(AREA, f"state machine + fills + stats, {size} bars",
                    t_kernel, "s", t_ref, t_ref / t_kernel, ">= 1x vectorbt from_signals"))

    ours_pnl = res.equity.to_numpy() - CAPITAL
    ref_pnl = value - CAPITAL * 1e6
    worst = float(np.max(np.abs(ours_pnl - ref_pnl)) / CAPITAL)
    rows.append(Row(AREA, f"equity vs vectorbt on the same positions, max |diff| / capital "
                          f"({inp['unexpressible']} leg resizes vbt cannot express)",
                    worst, "fraction", None, None, "< 1e-6 when nothing is unexpressible"))

    # the sweep: 5 windows x 5 entries x 4 exits
    ys, xs = (y, x) if n_sweep == n else _pair(n_sweep)
    grid = dict(entry=[1.5, 1.75, 2.0, 2.25, 2.5], exit=[0.0, 0.25, 0.5, 0.75],
                window=[120, 180, 240, 300, 360], stop=4.0)
    t0 = time.perf_counter()
    table = bt.sweep(ys, xs, **grid, fee_bps=FEE_BPS, slippage_bps=SLIP_BPS, capital=CAPITAL,
                     progress=False)
    t_sweep = time.perf_counter() - t0
    assert len(table) == 100

    # vectorbt on the same 100 position sets (built here, untimed)
    inputs = []
    for w in grid["window"]:
        beta_w, z_w, _ = _engine.signal_inputs(ys, xs, _engine.spec_from_args("rolling_ols", w))
        for en in grid["entry"]:
            for ex in grid["exit"]:
                r = bt.from_zscore(ys, xs, pd.Series(z_w, ys.index), pd.Series(beta_w, ys.index),
                                   entry=en, exit=ex, stop=4.0, fee_bps=FEE_BPS,
                                   slippage_bps=SLIP_BPS, capital=CAPITAL)
                inputs.append(_vbt_inputs(ys, xs, r))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        for one in inputs:
            _vbt_run(vbt, one)
        t_vbt_sweep = time.perf_counter() - t0
    rows.append(Row(AREA, f"sweep(), 100 combinations, {size_sweep} bars (5 hedge windows "
                          "computed; vectorbt: positions given)",
                    t_sweep, "s", t_vbt_sweep, t_vbt_sweep / t_sweep,
                    ">= 1x vectorbt from_signals"))
    return rows


if __name__ == "__main__":
    import sys

    for row in run(quick="--quick" in sys.argv):
        print(row)
