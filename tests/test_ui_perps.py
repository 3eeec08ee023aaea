"""A perpetual in the app, end to end over loopback: the demo store seeded with spot BTCUSDT
and its perp um:BTCUSDT, a Lab following the demo recorder (spot and USD-M simulators fed by
one synthetic market), and the Monitor's funding columns read from the stored mark prices."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from quantlab import Lab
from quantlab.sim.demo import DEMO_FUNDING_INTERVAL_S
from quantlab.ui import Controls, MonitorPanel, seed_demo_history

SYMS = ["BTCUSDT", "um:BTCUSDT"]


def wait_until(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value is not False and value is not None:  # a frame or a tuple once ready
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def perp_lab(tmp_path):
    store = tmp_path / "store-demo"
    assert seed_demo_history(store, SYMS, hours=0.25) > 0
    lab = Lab(SYMS, store=store, source="demo").start()
    yield lab
    lab.stop()


def test_a_lab_follows_a_perps_aggregate_trades_and_the_monitor_its_funding(perp_lab):
    lab = perp_lab
    # the seeded aggregates, read as the perp's ticks (history loads on the follower thread)
    hist = wait_until(lambda: len(t := lab.ticks("um:BTCUSDT")) > 1000 and t, 30, "the perp's history")
    ids = hist["trade_id"].to_numpy()
    assert (np.diff(ids) == 1).all()
    last_id = int(ids[-1])
    wait_until(lambda: int(lab.ticks("um:BTCUSDT", last=1)["trade_id"].iloc[-1]) > last_id + 20, 30,
               "live aggregate trades of the perp")
    # the live perp continues at its spot's price (the basis restarts at zero, not 100,000 vs 99,9xx)
    spot, perp = lab.prices().loc["BTCUSDT", "price"], lab.prices().loc["um:BTCUSDT", "price"]
    assert abs(perp / spot - 1) < 0.002, (spot, perp)
    assert len(lab.pair("um:BTCUSDT", "BTCUSDT", "1s")) > 500

    monitor = MonitorPanel(lab, Controls(SYMS, y="um:BTCUSDT", x="BTCUSDT"))
    rate, nxt = wait_until(lambda: (f := monitor.funding()["um:BTCUSDT"])[1] is not None and f, 30,
                           "a stored mark price")
    assert np.isfinite(rate) and abs(rate) < 0.01
    left = (nxt - pd.Timestamp.now(tz="UTC")).total_seconds()
    assert -2 < left <= DEMO_FUNDING_INTERVAL_S + 2
    monitor.refresh(force=True)
    assert f"{rate * 100:.4f} %" in monitor.table.value and f"{nxt:%H:%M:%S} UTC (in" in monitor.table.value
