"""The futures recorder against the USD-M simulator over loopback: every aggregate id once,
exact prices and quantities, funding stored, crash-safe, and a silent legacy URL refused."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from quantlab.recorder import Recorder, RecorderConfig
from quantlab.recorder.futures import SilentStreamError
from quantlab.sim import Synthetic
from quantlab.sim.futures import FuturesExchange, FuturesExchangeThread
from quantlab.status import read_status
from quantlab.store import TickStore

FAST_BACKOFF = {"backoff": lambda: iter([0.05] * 100_000)}
SYMS = ("BTCUSDT", "ETHUSDT")


def assert_aggs_exactly_once(store_path, made: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Every aggregate the exchange made between the first and last stored id is stored once
    under um:<symbol>, with its exact price, quantity, side and trade-id range."""
    st = TickStore(store_path)
    counts = {}
    for sym, m in made.items():
        got = st.read(f"um:{sym}", kind="aggtrades")
        ids = got["agg_id"].to_numpy()
        assert len(ids) > 0, sym
        assert np.all(np.diff(ids) == 1), f"{sym}: aggregate ids not contiguous"
        ref = m.set_index("agg_id").loc[ids]
        for col in ("price", "qty", "first_trade_id", "last_trade_id"):
            assert np.array_equal(ref[col].to_numpy(), got[col].to_numpy()), (sym, col)
        assert np.array_equal(ref["is_buyer_maker"].to_numpy(bool), got["is_buyer_maker"].to_numpy()), sym
        counts[sym] = len(ids)
    assert st.gaps().empty
    assert all(s.startswith("um:") for s in st.symbols("aggtrades")), "futures data under a spot name"
    return counts


def assert_funding_stored(store_path, funding: dict[str, pd.DataFrame], since, until) -> int:
    """Every funding the exchange settled in [since, until] is stored once, exactly."""
    st = TickStore(store_path)
    n = 0
    for sym, f in funding.items():
        want = f[(f.index >= since) & (f.index <= until)]
        got = st.read(f"um:{sym}", kind="funding")
        assert got.index.is_unique
        have = got.reindex(want.index)
        assert have["funding_rate"].notna().all(), f"{sym}: funding missing at {want.index[have['funding_rate'].isna()]}"
        assert np.array_equal(have["funding_rate"].to_numpy(), want["funding_rate"].to_numpy()), sym
        assert np.array_equal(have["mark_price"].to_numpy(), want["mark_price"].to_numpy()), sym
        n += len(want)
    return n


def test_futures_through_every_fault(tmp_path):
    # the 60 s stall is scaled to 4 s (watchdog 1.5 s): the same path, a shorter wait
    faults = "drop=0.01,cut_every=300,dup_after_reconnect=20,malformed=0.003,stall=4@8,rest429=1,seed=11"

    async def main():
        async with FuturesExchange(Synthetic(list(SYMS), rate=150, seed=4), faults=faults,
                                   funding_interval=2.0) as ex:
            t0 = pd.Timestamp.now(tz="UTC")
            rec = Recorder(RecorderConfig(
                store=tmp_path / "s", symbols=[f"um:{s}" for s in SYMS], ws_url="", rest_url="http://unused",
                futures_urls={"um": (ex.ws_url, ex.rest_url)}, duration_s=22, watchdog_s=1.5,
                stream_options=FAST_BACKOFF, alerts=False, funding_delay_s=0.3,
            ))
            await rec.run()
            t1 = pd.Timestamp.now(tz="UTC")
            return (rec.status(), ex.counters, {s: ex.aggs(s) for s in SYMS}, {s: ex.funding(s) for s in SYMS},
                    t0, t1)

    status, sim, made, funding, t0, t1 = asyncio.run(main())
    counts = assert_aggs_exactly_once(tmp_path / "s", made)
    assert sum(counts.values()) > 1000, counts
    # funding settled while recording (the last one may not be published before the stop)
    n_funding = assert_funding_stored(tmp_path / "s", funding, t0, t1 - pd.Timedelta(seconds=2))
    assert n_funding >= 10
    st = TickStore(tmp_path / "s")
    marks = st.read("um:BTCUSDT", kind="markprice")
    assert len(marks) >= 8 and marks.index.is_unique and (marks["price"] > 0).all()
    assert sim["dropped"] > 10 and sim["cuts"] >= 3 and sim["duplicates"] > 0 and sim["malformed"] > 0
    assert sim["stalled"] > 0
    assert status["reconnects"] >= 3 and status["gaps_repaired"] >= 3 and status["malformed"] > 0
    assert status["duplicates"] > 0 and status["gaps_unrepaired"] == 0 and status["state"] == "stopped"
    print(f"\nfaults survived: {sim}\nrecorder: {status['reconnects']=} {status['gaps_repaired']=} "
          f"{status['backfilled']=} stored={counts} funding={n_funding}")


def test_legacy_url_is_reported_as_silent_within_seconds(tmp_path):
    async def main():
        async with FuturesExchange(Synthetic(["BTCUSDT"], rate=100, seed=1)) as ex:
            rec = Recorder(RecorderConfig(
                store=tmp_path / "s", symbols=["um:BTCUSDT"], ws_url="", rest_url="http://unused",
                futures_urls={"um": (ex.legacy_ws_url, ex.rest_url)}, futures_silent_s=2.0, alerts=False,
            ))
            t = time.monotonic()
            with pytest.raises(SilentStreamError) as err:
                await rec.run()
            return time.monotonic() - t, str(err.value), rec.status(), ex.counters

    elapsed, msg, status, sim = asyncio.run(main())
    assert "connected but no market data on this URL" in msg and "/market" in msg
    assert elapsed < 6, elapsed
    assert sim["legacy_connections"] >= 1 and sim["trades_made"] > 0  # the exchange traded meanwhile
    assert status["state"] == "failed" and "no market data" in status["reason"]


def _record_cmd(store, ex, *extra):
    return [sys.executable, "-m", "quantlab", "record", "--store", str(store), "--market", "um",
            "--symbols", ",".join(SYMS), "--ws-url", ex.ws_url, "--rest-url", ex.rest_url, "--no-alerts", *extra]


def test_sigkill_and_restart_keeps_every_aggregate_exactly_once(tmp_path):
    store = tmp_path / "s"
    with FuturesExchangeThread(Synthetic(list(SYMS), rate=300, seed=5), funding_interval=2.0) as ex:
        t0 = pd.Timestamp.now(tz="UTC")
        proc = subprocess.Popen(_record_cmd(store, ex), stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        while time.time() < deadline and read_status(store).get("ticks_total", 0) < 800:
            time.sleep(0.2)
        assert read_status(store).get("ticks_total", 0) >= 800, proc.stderr.read() if proc.poll() else ""
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(2.5)  # aggregates and a funding made while no recorder runs come back over REST
        out = subprocess.run(_record_cmd(store, ex, "--duration", "5"), capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        t1 = pd.Timestamp.now(tz="UTC")
        made = {s: ex.aggs(s) for s in SYMS}
        funding = {s: ex.funding(s) for s in SYMS}
    counts = assert_aggs_exactly_once(store, made)
    assert all(c > 800 for c in counts.values()), counts
    # a funding settled in the last seconds before the recorder stopped is fetched by the next
    # run (after funding_delay); under load the stop is up to a few seconds before t1
    assert assert_funding_stored(store, funding, t0, t1 - pd.Timedelta(seconds=6)) >= 3


def test_one_recorder_writes_spot_and_usdm_into_one_store(tmp_path):
    """The store has one writer: spot and USD-M symbols share one recorder, one connection each,
    and the same name stays apart (BTCUSDT vs um:BTCUSDT)."""
    from quantlab.sim import Exchange

    async def main():
        async with Exchange(Synthetic(["BTCUSDT"], rate=100, seed=2)) as spot, \
                FuturesExchange(Synthetic(["BTCUSDT"], rate=100, seed=3), funding_interval=2.0) as fut:
            rec = Recorder(RecorderConfig(
                store=tmp_path / "s", symbols=["BTCUSDT", "um:BTCUSDT"], ws_url=spot.ws_url, rest_url=spot.rest_url,
                futures_urls={"um": (fut.ws_url, fut.rest_url)}, duration_s=5, alerts=False,
            ))
            await rec.run()
            return rec.status(), spot.trades("BTCUSDT"), fut.aggs("BTCUSDT")

    status, trades, aggs = asyncio.run(main())
    st = TickStore(tmp_path / "s")
    assert st.symbols() == ["BTCUSDT", "um:BTCUSDT"]
    spot_got = st.read("BTCUSDT")
    assert np.all(np.diff(spot_got["trade_id"].to_numpy()) == 1) and len(spot_got) > 100
    ref = trades.set_index("trade_id").loc[spot_got["trade_id"]]
    assert np.array_equal(ref["price"].to_numpy(), spot_got["price"].to_numpy())
    assert_aggs_exactly_once(tmp_path / "s", {"BTCUSDT": aggs})
    assert set(status["per_symbol"]) == {"BTCUSDT", "um:BTCUSDT"} and status["futures"]["um"]["state"] == "stopped"


@pytest.mark.slow  # a real 60 s stall: the number, unscaled
def test_futures_through_a_sixty_second_stall_at_binance_timings(tmp_path):
    """A 60 s stall of every market stream (pings go on, as on Binance) with drops and cuts
    around it, at the recorder's default timings (watchdog from the ping interval): the
    connection is kept through the stall and every aggregate made during it is repaired over
    /fapi/v1/aggTrades afterwards, exactly once."""
    faults = "drop=0.01,cut_every=400,dup_after_reconnect=20,malformed=0.003,stall=60@5,seed=12"

    async def main():
        async with FuturesExchange(Synthetic(list(SYMS), rate=40, seed=6), faults=faults,
                                   funding_interval=5.0) as ex:
            t0 = pd.Timestamp.now(tz="UTC")
            rec = Recorder(RecorderConfig(
                store=tmp_path / "s", symbols=[f"um:{s}" for s in SYMS], ws_url="",
                rest_url="http://unused", futures_urls={"um": (ex.ws_url, ex.rest_url)},
                duration_s=75, stream_options=FAST_BACKOFF, alerts=False, funding_delay_s=0.3,
            ))
            await rec.run()
            t1 = pd.Timestamp.now(tz="UTC")
            return (rec.status(), ex.counters, {s: ex.aggs(s) for s in SYMS},
                    {s: ex.funding(s) for s in SYMS}, t0, t1)

    status, sim, made, funding, t0, t1 = asyncio.run(main())
    counts = assert_aggs_exactly_once(tmp_path / "s", made)
    assert sim["stalled"] > 1000, sim  # trades withheld from the streams for the whole minute
    assert status["gaps_repaired"] >= 1 and status["gaps_unrepaired"] == 0
    assert status["state"] == "stopped"
    assert assert_funding_stored(tmp_path / "s", funding, t0, t1 - pd.Timedelta(seconds=6)) >= 8
    print(f"\n60 s stall survived: {sim}\nrecorder: {status['reconnects']=} "
          f"{status['gaps_repaired']=} {status['backfilled']=} stored={counts}")


def test_the_status_keeps_a_perps_mark_price_and_funding_between_mark_updates(tmp_path):
    """Marks come once a second, trades every flush: a flush with trades only replaced the
    symbol's status entry, so status.json lost mark_price/funding_rate/next_funding_time
    for most of each second."""
    from quantlab.binance.futures import MarkPrice
    from quantlab.binance.protocol import AggTrade
    from quantlab.recorder.futures import FuturesFeed

    rec = Recorder(RecorderConfig(store=tmp_path / "s", symbols=["um:BTCUSDT"], ws_url="ws://127.0.0.1:1",
                                  rest_url="http://127.0.0.1:1"))
    feed = FuturesFeed(rec, "um", ["BTCUSDT"], "ws://127.0.0.1:1/market", "http://127.0.0.1:1")
    rec.feeds.append(feed)
    now = time.time_ns()
    nxt = now + 3600 * 10**9

    def trade(i: int) -> AggTrade:
        return AggTrade("BTCUSDT", i, 100_000.0 + i, 0.01, 3 * i, 3 * i + 2, False, now + i, now + i, now + i)

    mark = MarkPrice("BTCUSDT", now, 100_001.5, 100_000.5, 100_001.0, 0.0001, nxt, now)
    feed.account_flush([("BTCUSDT", [trade(1)], [mark], [])], [(1, 1, 0)])
    feed.account_flush([("BTCUSDT", [trade(2)], [], [])], [(1, 0, 0)])  # trades, no new mark
    row = rec.status()["per_symbol"]["um:BTCUSDT"]
    assert row["last_id"] == 2 and row["last_price"] == 100_002.0
    assert row["mark_price"] == 100_001.5 and row["funding_rate"] == 0.0001
    assert row["next_funding_time"] == pd.Timestamp(nxt, tz="UTC").isoformat()


def test_a_price_rule_on_a_perp_fires_from_the_recorded_aggregate_trades(tmp_path):
    """Alert rules on ``um:`` symbols are evaluated on the aggregate trades the futures recorder
    stores (a futures-only recorder runs the alert service too), and their pair warm-up reads
    the perp's stored aggregate trades."""
    from quantlab.alerts import AlertHistory, PriceRule, add_rule
    from quantlab.alerts.service import store_bars_loader

    store = tmp_path / "s"
    with TickStore(store, mode="a", source="demo"):
        pass
    add_rule(store, PriceRule(id="perp-up", symbol="um:BTCUSDT", op="above", level=1e-6),  # true at once
             symbols=["um:BTCUSDT"])
    add_rule(store, PriceRule(id="perp-never", symbol="um:BTCUSDT", op="below", level=1e-6),
             symbols=["um:BTCUSDT"])

    async def main():
        async with FuturesExchange(Synthetic(["BTCUSDT"], rate=50, seed=3)) as ex:
            rec = Recorder(RecorderConfig(
                store=store, symbols=["um:BTCUSDT"], ws_url="", rest_url="http://unused",
                futures_urls={"um": (ex.ws_url, ex.rest_url)}, duration_s=4, stream_options=FAST_BACKOFF,
                store_source="demo",
            ))
            await rec.run()
            return rec

    rec = asyncio.run(main())
    assert rec.c["stored"] > 0
    hist = AlertHistory(store).read()
    assert list(hist["rule_id"]) == ["perp-up"], hist
    fired = hist.iloc[0]
    assert fired["symbols"] == "um:BTCUSDT"
    with TickStore(store) as st:
        first = st.read("um:BTCUSDT", kind="aggtrades").iloc[0]
    assert fired["value"] == first["price"] and fired["trade_id"] == first["agg_id"]
    assert rec.status()["alerts_fired"] == 1
    loaded = store_bars_loader(store)("um:BTCUSDT", "1s", 10)
    assert loaded is not None and len(loaded[0]) >= 1
