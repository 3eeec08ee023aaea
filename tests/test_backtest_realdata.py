"""Backtests on real Binance BTCUSDT/ETHUSDT trades (2024-08-08 23:54 -> 2024-08-09 00:05)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from quantlab import backtest as bt
from quantlab.pandas_compat import EXACT_FLOATS

COLUMNS = ["id", "price", "qty", "quote_qty", "time_ms", "is_buyer_maker", "is_best_match"]


def load_1s(path: Path) -> pd.Series:
    """Last trade price per 1 s bar, forward-filled (data.binance.vision layout, no header)."""
    df = pd.read_csv(path, header=None, names=COLUMNS, **EXACT_FLOATS)
    t = pd.to_datetime(df["time_ms"], unit="ms", utc=True)
    s = pd.Series(df["price"].to_numpy(dtype=float), index=pd.DatetimeIndex(t, name="time"))
    return s.resample("1s").last().ffill()


@pytest.fixture(scope="module")
def btc_eth(real_data):
    files = {sym: real_data / "trades" / f"{sym}-spot-trades-2024-08-08T2354_2024-08-09T0005.csv"
             for sym in ("BTCUSDT", "ETHUSDT")}
    y, x = load_1s(files["BTCUSDT"]), load_1s(files["ETHUSDT"])
    y, x = y.align(x, join="inner")
    keep = y.notna() & x.notna()
    return y[keep], x[keep]


def check_trades(res, entry, exit_, stop, max_holding, last_time):
    tr = res.trades
    for row in tr.itertuples():
        if row.side == -1:
            assert entry < row.entry_z <= stop
        else:
            assert -stop <= row.entry_z < -entry
        if row.reason == "exit":
            assert (row.exit_z > -exit_) if row.side == 1 else (row.exit_z < exit_)
        elif row.reason == "stop":
            assert (row.exit_z < -stop) if row.side == 1 else (row.exit_z > stop)
        elif row.reason == "time":
            assert row.bars == max_holding
        else:
            assert row.reason == "end" and row.exit_time == last_time
        assert 1 <= row.bars <= max_holding
    # round trips follow each other: the next entry is at or after the previous exit
    assert (tr["entry_time"].iloc[1:].to_numpy() >= tr["exit_time"].iloc[:-1].to_numpy()).all()


@pytest.mark.parametrize("kw", [dict(hedge="rolling_ols"),
                                dict(hedge="kalman"),
                                dict(hedge="expanding_ols")],
                         ids=["rolling_ols", "kalman", "expanding_ols"])
def test_backtest_on_real_1s_bars(btc_eth, kw):
    y, x = btc_eth
    assert len(y) > 600 and (y.index[1:] - y.index[:-1] == pd.Timedelta("1s")).all()
    res = bt.run(y, x, entry=1.5, exit=0.3, stop=3.0, window=30, max_holding=60, **kw)
    assert res.stats["n_trades"] >= 10
    assert res.params["periods_per_year"] == 365 * 86400
    check_trades(res, 1.5, 0.3, 3.0, 60, y.index[-1])
    assert {"exit", "stop"} <= set(res.trades["reason"])
    assert res.equity.iloc[-1] - 10_000 == pytest.approx(res.trades["pnl"].sum(), abs=1e-6)
    assert res.trades["beta"].median() > 0  # BTC and ETH move together


def test_sweep_on_real_data(btc_eth):
    y, x = btc_eth
    grid = bt.sweep(y, x, entry=[1.5, 2.0], exit=[0.0, 0.5], window=[30, 60], stop=3.0,
                    progress=False)
    assert len(grid) == 8 and (grid["n_trades"] > 0).all()
