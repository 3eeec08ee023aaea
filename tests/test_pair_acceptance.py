"""One pair model: the z the Pair tab shows, the z the backtest trades and the z a z-score
alert fires on (a real recorder against the simulator over loopback) are the same number at
the same closed bars."""

from __future__ import annotations

import asyncio
import time
import warnings

import numpy as np
import pandas as pd
import pytest

from quantlab import backtest as bt
from quantlab.alerts import AlertHistory, ZScoreRule, add_rule
from quantlab.recorder import Recorder, RecorderConfig
from quantlab.sim import Exchange, Replay
from quantlab.store import TickStore
from quantlab.ui.compute import controls_spec, pair_view

T0_MS = 1_735_689_600_000
SPEED = 20.0  # 20 s of data per second of replay: one 1 s bar holds 20 s of data
SECONDS = 640
N_TRADES = 2 * SECONDS  # per symbol, one every 0.5 s


def _write_market(path) -> None:
    """x: a random walk around 100; y = 2x + 3 + noise, pushed up by 1.5 from data second
    480 to 520 (bars 24-25 of the replay): a z-score excursion after a quiet warm-up."""
    rng = np.random.default_rng(12)
    t = np.arange(N_TRADES) * 0.5
    x = 100 + np.cumsum(rng.normal(0, 0.05, t.size))
    y = 2 * x + 3 + rng.normal(0, 0.05, t.size) + np.where((t >= 480) & (t < 520), 1.5, 0.0)
    for sym, prices, first in (("BTCUSDT", x, 1000), ("ETHUSDT", y, 5000)):
        ids = first + np.arange(t.size)
        lines = [f"{i},{p:.2f},0.10000000,{p * 0.1:.8f},{T0_MS + int(round(s * 1000))},True,True"
                 for i, p, s in zip(ids, prices, t, strict=True)]
        (path / f"{sym}-trades-2025-01-01.csv").write_text("\n".join(lines) + "\n")


async def _record(store, source_dir, timeout=90):
    source = Replay.from_paths(str(source_dir), None, speed=SPEED)
    async with Exchange(source) as ex:
        rec = Recorder(RecorderConfig(store=store, symbols=["BTCUSDT", "ETHUSDT"], ws_url=ex.ws_url,
                                      rest_url=ex.rest_url, start_ids={"BTCUSDT": 1000, "ETHUSDT": 5000}))
        task = asyncio.create_task(rec.run())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and rec.c["stored"] < 2 * N_TRADES:
            await asyncio.sleep(0.1)
        rec.stop()
        await task
        return rec


def test_pair_tab_backtest_and_alert_share_one_z(tmp_path):
    src = tmp_path / "market"
    src.mkdir()
    _write_market(src)
    store = tmp_path / "store"
    with TickStore(store, mode="a"):
        pass
    spec = controls_spec(8, "OLS")  # the left column: window 8, hedge "OLS" (rolling)
    rule = add_rule(store, ZScoreRule(id="z", y="ETHUSDT", x="BTCUSDT", k=2.0, timeframe="1s",
                                      spec=spec), symbols=["BTCUSDT", "ETHUSDT"])
    assert rule.spec == spec
    rec = asyncio.run(_record(store, src))
    assert rec.c["stored"] >= 2 * N_TRADES

    with TickStore(store) as st:
        by, bx = st.bars("ETHUSDT", "1s")["close"], st.bars("BTCUSDT", "1s")["close"]
    pair = pd.concat([by.rename("ETHUSDT"), bx.rename("BTCUSDT")], axis=1, join="inner")
    assert len(pair) >= 25
    tab = pair_view(pair, spec).frame["z"]  # the Pair tab's code path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bt.ShortSampleWarning)
        traded = bt.run(pair["ETHUSDT"], pair["BTCUSDT"], entry=2.0, exit=0.5, spec=spec).z
    pd.testing.assert_series_equal(tab, traded, check_names=False, rtol=1e-9, atol=1e-9)

    hist = AlertHistory(store).read()
    fired = hist[hist["rule_id"] == "z"]
    assert len(fired) >= 1, hist
    for _, row in fired.iterrows():
        bar = pd.Timestamp(row["bar_time"])
        assert bar in tab.index  # a closed bar of the store
        assert row["value"] == pytest.approx(tab[bar], rel=1e-9, abs=1e-9)
        assert row["value"] == pytest.approx(traded[bar], rel=1e-9, abs=1e-9)
        assert abs(row["value"]) >= 2.0
    # and the alert fired on the first closed bar where the shown z reaches k
    first = tab.index[np.argmax(tab.abs().to_numpy() >= 2.0)]
    assert pd.Timestamp(fired["bar_time"].iloc[0]) == first
