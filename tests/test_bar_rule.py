"""One bar rule, one kernel: store, live and alert bars are equal on the same ticks, late
trades included (a trade arriving after its bar closed amends that bar: the store is the truth)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlab.alerts.bars import BarBuilder
from quantlab.live.bars import IncrementalBars
from quantlab.store import TickStore
from quantlab.timeframes import parse_timeframe

S = 10**9
T0 = 1_752_364_800 * S  # 2025-07-13 00:00 UTC


def late_ticks(n=6000, seed=7):
    """Trade ids in arrival order; trade times mostly rising, 5 % stamped up to 90 s earlier
    than the trade before (late arrivals across bar boundaries), some equal times."""
    rng = np.random.default_rng(seed)
    t = T0 + np.cumsum(rng.integers(0, 400, n)) * 10**6 * 5  # 0-2 s apart, ties included
    late = rng.random(n) < 0.05
    t = np.where(late, t - rng.integers(1, 90, n) * S, t)
    price = 100 + np.round(np.cumsum(rng.normal(0, 0.05, n)), 2)
    qty = np.round(rng.exponential(0.5, n), 4) + 0.0001
    return np.arange(1, n + 1, dtype=np.int64), t, price, qty


def batches(n, rng):
    i = 0
    while i < n:
        k = int(rng.integers(1, 200))
        yield slice(i, i + k)
        i += k


@pytest.mark.parametrize("tf", ["1s", "1m", "5m"])
def test_store_live_and_alert_bars_are_equal_with_late_trades(tmp_path, tf):
    ids, t, price, qty = late_ticks()
    step = parse_timeframe(tf).step_ns
    bucket = t // step
    assert (bucket < np.maximum.accumulate(bucket)).sum() > 20  # late trades for closed bars
    with TickStore(tmp_path / "s", mode="a") as st:
        st.append("BTCUSDT", {"trade_id": ids, "time": t, "price": price, "qty": qty,
                              "is_buyer_maker": ids % 2 == 0})
        stored = st.bars("BTCUSDT", tf)
    live, alert = IncrementalBars(step), BarBuilder(step, keep=100_000)
    rng = np.random.default_rng(1)
    for sl in batches(len(ids), rng):
        live.update(t[sl], price[sl], qty[sl])
        alert.update(t[sl], price[sl])
    got = live.frame()
    assert got.index.equals(stored.index)
    for col in ("open", "high", "low", "close", "trades"):
        assert np.array_equal(got[col].to_numpy(), stored[col].to_numpy()), col
    np.testing.assert_allclose(got["volume"], stored["volume"], rtol=1e-12)
    np.testing.assert_allclose(got["vwap"], stored["vwap"], rtol=1e-12)
    assert got["partial"].tolist() == [False] * (len(got) - 1) + [True]
    # the alert builder's closed bars and open bar: the store's closes
    assert alert.ids + [alert.open_id] == (stored.index.asi8 // step).tolist()
    assert alert.closes + [alert.open_close] == stored["close"].tolist()


def test_a_late_trade_amends_its_closed_bar_not_the_open_one():
    t = T0 + np.array([10, 50, 70, 59]) * S  # the 4th trade is late for the first minute
    p = np.array([1.0, 2.0, 3.0, 9.0])
    q = np.ones(4)
    live = IncrementalBars(60 * S)
    closed = live.update(t[:3], p[:3], q[:3])
    assert closed["close"].tolist() == [2.0]
    live.update(t[3:], p[3:], q[3:])
    frame = live.frame()
    assert frame["close"].tolist() == [9.0, 3.0] and frame["high"].tolist() == [9.0, 3.0]
    alert = BarBuilder(60 * S)
    alert.update(t[:3], p[:3])
    assert alert.update(t[3:], p[3:]).bar_id.size == 0  # amending is not closing again
    assert alert.close_at(alert.open_id - 1) == 9.0 and alert.open_close == 3.0


def test_month_bars_live_equal_store(tmp_path):
    rng = np.random.default_rng(2)
    t = np.sort(pd.Timestamp("2025-01-20", tz="UTC").value + rng.integers(0, 90 * 86_400, 3000) * S)
    t[::50] -= 20 * 86_400 * S  # late, across month ends
    ids = np.arange(1, len(t) + 1)
    p = 50 + rng.random(len(t))
    q = np.ones(len(t))
    with TickStore(tmp_path / "s", mode="a") as st:
        st.append("SOLUSDT", {"trade_id": ids, "time": t, "price": p, "qty": q, "is_buyer_maker": ids % 2 == 0})
        stored = st.bars("SOLUSDT", "1M")
    live = IncrementalBars("1M")
    for sl in batches(len(t), rng):
        live.update(t[sl], p[sl], q[sl])
    got = live.frame()
    assert got.index.equals(stored.index) and (got.index.day == 1).all()
    assert np.array_equal(got[["open", "high", "low", "close", "trades"]].to_numpy(),
                          stored[["open", "high", "low", "close", "trades"]].to_numpy())


def test_alert_builders_refuse_calendar_timeframes():
    with pytest.raises(ValueError, match="fixed length"):
        BarBuilder(7 * 86_400 * S)
