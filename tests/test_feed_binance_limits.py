"""Binance's WebSocket limits and habits, taught to the simulator and survived by the recorder:
the connection-attempt budget, quiet markets (pings only), dead connections, microseconds end
to end, hundreds of symbols, and ``serverShutdown``. Everything over loopback, times scaled down."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
import websockets
from test_recorder import assert_exactly_once

from quantlab.binance.protocol import MAX_URL_CHARS, connection_groups, stream_url
from quantlab.binance.stream import ConnectBudget
from quantlab.recorder import Recorder, RecorderConfig
from quantlab.sim import Exchange, ExchangeThread, Synthetic
from quantlab.store import TickStore

FAST = lambda: iter([0.01] * 1_000_000)  # noqa: E731 - a backoff that never slows down


def record(tmp_path, ex, symbols, seconds, *, actions=(), **cfg):
    """Run a recorder on ``ex`` for ``seconds``; ``actions`` are (at_s, fn) called meanwhile."""

    async def main():
        rec = Recorder(RecorderConfig(store=tmp_path / "s", symbols=symbols, ws_url=ex.ws_url,
                                      rest_url=ex.rest_url, duration_s=seconds, alerts=False, **cfg))
        loop = asyncio.get_running_loop()
        for at, fn in actions:
            loop.call_later(at, fn)
        await rec.run()
        return rec

    return main


def max_in_window(times: list[float], window: float) -> int:
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


# ---------------------------------------------------------------- connection-attempt budget


def test_flapping_server_attempts_stay_within_the_limit(tmp_path):
    """connect -> one message -> cut, forever: the backoff restarts after every connection that
    delivered something, so only the budget keeps the attempts under the exchange's limit."""
    limit, window = 6, 1.5

    async def main():
        async with Exchange(Synthetic(["BTCUSDT"], rate=200, seed=2), faults="cut_every=1",
                            connection_limit=(limit, window)) as ex:
            budget = ConnectBudget(limit, window, margin_s=0.1)
            rec = await record(tmp_path, ex, ["BTCUSDT"], 4.5,
                               stream_options={"backoff": FAST, "connect_budget": budget})()
            return rec, ex.counters, list(ex.connection_attempts), {"BTCUSDT": ex.trades("BTCUSDT")}

    rec, sim, attempts, made = asyncio.run(main())
    assert sim.get("connections_refused", 0) == 0
    assert max_in_window(attempts, window) <= limit
    assert len(attempts) >= 2 * limit  # the budget, not the backoff, was what held it back
    assert sim["cuts"] >= 2 * limit - 2
    assert_exactly_once(tmp_path / "s", made)  # every cut repaired over REST


def test_simulator_refuses_attempts_beyond_its_limit():
    """As Binance does: beyond the attempts allowed in the window, the upgrade is refused
    (HTTP 429 with Retry-After) until the oldest attempt leaves the window."""

    async def main():
        async with Exchange(Synthetic(["BTCUSDT"], rate=10, seed=2), connection_limit=(3, 2.0)) as ex:
            url = ex.ws_url + "/ws/btcusdt@trade"
            for _ in range(3):
                async with websockets.connect(url):
                    pass
            with pytest.raises(websockets.exceptions.InvalidStatus) as err:
                async with websockets.connect(url):
                    pass
            return err.value.response, ex.counters

    response, sim = asyncio.run(main())
    assert response.status_code == 429 and 1 <= int(response.headers["Retry-After"]) <= 2
    assert sim["connection_attempts"] == 4 and sim["connections_refused"] == 1


def test_close_1008_waits_the_longer_minimum_delay(tmp_path):
    async def main():
        async with Exchange(Synthetic(["BTCUSDT"], rate=200, seed=4), faults="flap=1") as ex:
            budget = ConnectBudget(300, 300.0, after_1008_s=0.6)
            rec = await record(tmp_path, ex, ["BTCUSDT"], 3.2,
                               stream_options={"backoff": FAST, "connect_budget": budget})()
            return rec, ex.counters, list(ex.connection_attempts)

    rec, sim, attempts = asyncio.run(main())
    assert sim["flaps"] >= 3
    gaps = np.diff(attempts)
    assert len(gaps) >= 3 and gaps.min() >= 0.55, gaps  # never the 0.01 s backoff
    assert len(attempts) <= 3.2 / 0.6 + 1


# ---------------------------------------------------------------- quiet markets, dead connections


def test_quiet_market_with_pings_only_causes_no_reconnect(tmp_path):
    """Pings every 0.3 s, watchdog 1.5 x that: 2.5 s without a trade is a quiet market."""

    async def main():
        async with Exchange(Synthetic(["BTCUSDT", "ETHUSDT"], rate=100, seed=5),
                            faults="quiet=2.5@1", ping_interval=0.3) as ex:
            rec = await record(tmp_path, ex, ["BTCUSDT", "ETHUSDT"], 5.0,
                               stream_options={"ping_interval_s": 0.3})()
            return rec, ex.counters, {s: ex.trades(s) for s in ("BTCUSDT", "ETHUSDT")}

    rec, sim, made = asyncio.run(main())
    sc = rec.stream_counters()
    times = np.sort(np.concatenate([m["time"].to_numpy("i8") for m in made.values()]))
    assert np.diff(times).max() >= 2.3e9  # the market really was quiet for ~2.5 s
    assert sc["pings"] >= 6 and sim["pongs"] >= 6
    assert sc["watchdog_timeouts"] == 0 and sc["reconnects"] == 0 and sim["connections"] == 1
    assert rec.status()["reconnects"] == 0
    assert_exactly_once(tmp_path / "s", made)


def test_dead_connection_is_still_detected(tmp_path):
    """No frame at all (not even a ping) for longer than the ping interval allows: reconnect,
    then backfill what was withheld."""

    async def main():
        async with Exchange(Synthetic(["BTCUSDT"], rate=150, seed=6), faults="dead=1.5@1",
                            ping_interval=0.3) as ex:
            rec = await record(tmp_path, ex, ["BTCUSDT"], 4.5,
                               stream_options={"ping_interval_s": 0.3, "backoff": FAST})()
            return rec, ex.counters, {"BTCUSDT": ex.trades("BTCUSDT")}

    rec, sim, made = asyncio.run(main())
    sc = rec.stream_counters()
    assert sim["dead_withheld"] > 0
    assert sc["watchdog_timeouts"] >= 1 and rec.status()["reconnects"] >= 1
    assert rec.c["backfilled"] > 0
    assert_exactly_once(tmp_path / "s", made)


# ---------------------------------------------------------------- microseconds end to end


def test_stored_times_equal_the_simulators_microseconds(tmp_path):
    """Stream rows (timeUnit=MICROSECOND) and backfilled rows (X-MBX-TIME-UNIT) alike; the
    store notes the unit, and a later ms run is noted as a change, not silently mixed."""
    syms = ["BTCUSDT", "ETHUSDT"]

    async def main():
        async with Exchange(Synthetic(syms, rate=300, seed=8), faults="drop=0.05,seed=3") as ex:
            rec = await record(tmp_path, ex, syms, 3.0)()
            made_us = {s: ex.tape(s).all().copy() for s in syms}
            stored_us = {s: TickStore(tmp_path / "s").last_trade_id(s) for s in syms}
            await record(tmp_path, ex, syms, 2.0, time_unit="MILLISECOND")()
            made_all = {s: ex.tape(s).all().copy() for s in syms}
            return rec, made_us, stored_us, made_all

    rec, made_us, last_us, made_all = asyncio.run(main())
    assert rec.c["backfilled"] > 0  # REST rows are in the comparison too
    st = TickStore(tmp_path / "s")
    for s in syms:
        got = st.read(s)
        ids = got["trade_id"].to_numpy()
        tape = made_all[s]
        pos = np.searchsorted(tape["id"], ids)
        assert np.array_equal(tape["id"][pos], ids)
        want_ns = tape["time"][pos].astype(np.int64) * 1000
        got_ns = got.index.asi8
        micro = ids <= last_us[s]
        assert np.array_equal(got_ns[micro], want_ns[micro])  # exactly, to the microsecond
        assert (want_ns[micro] % 1_000_000 != 0).mean() > 0.9  # and the µs really were there
        assert np.array_equal(got_ns[~micro], want_ns[~micro] // 1_000_000 * 1_000_000)
        units = st.time_units(s)
        assert [u["unit"] for u in units] == ["MICROSECOND", "MILLISECOND"]
        assert units[0]["from_id"] == ids[0] and units[1]["from_id"] == last_us[s] + 1


# ---------------------------------------------------------------- the whole universe


def universe(n: int) -> list[str]:
    return [f"U{i:03d}USDT" for i in range(n)]


def test_a_url_of_hundreds_of_streams_is_split_and_the_long_one_refused():
    syms = universe(600)
    groups = connection_groups("ws://127.0.0.1:1", syms, time_unit="MICROSECOND")
    assert [s for g in groups for s in g] == syms
    assert all(len(stream_url("ws://127.0.0.1:1", g, time_unit="MICROSECOND")) <= MAX_URL_CHARS
               for g in groups)
    assert len(groups) >= 3
    many = [f"S{i:04d}USDT" for i in range(1025)]
    split = connection_groups("ws://h:1", many, max_url_chars=10**6)
    assert [len(g) for g in split] == [513, 512]  # 1024 per connection at most, evenly filled

    async def main():
        async with Exchange(Synthetic(syms[:2], rate=10)) as ex:
            with pytest.raises(websockets.exceptions.InvalidStatus) as err:  # > 8 kB request line
                async with websockets.connect(stream_url(ex.ws_url, syms)):
                    pass
            # 1025 streams cannot fit a URL of 8 kB: ask for them by SUBSCRIBE instead
            async with websockets.connect(ex.ws_url + "/ws", max_size=None) as ws:
                params = [f"s{i}usdt@trade" for i in range(1025)]
                await ws.send(json.dumps({"method": "SUBSCRIBE", "params": params, "id": 1}))
                reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
            return err.value.response.status_code, reply

    status, reply = asyncio.run(main())
    assert status == 414
    assert reply["id"] == 1 and "1024" in reply["error"]["msg"]


@pytest.mark.slow  # ~15 s on an idle machine; creating, sealing and reading 300 tables dominates
def test_three_hundred_symbols_through_drops_and_cuts_every_id_once(tmp_path):
    syms = universe(300)

    # the simulator runs on its own thread and loop, so its REST answers never wait for the
    # recorder's flushes of 300 tables (as on a real machine, where they are apart)
    with ExchangeThread(Synthetic(syms, rate=600, seed=9), faults="drop=0.003,seed=4") as ex:
        # two cuts of every connection; the market pauses before the stop, so no symbol ends
        # with its few trades held behind a gap still being repaired
        main = record(tmp_path, ex, syms, 6.0, stream_options={"backoff": FAST}, actions=[
            (2.5, ex.abort_connections), (3.5, ex.abort_connections),
            (4.2, lambda: ex.call(lambda e: e.pause()))])
        rec = asyncio.run(main())
        sim, made = ex.counters, {s: ex.trades(s) for s in syms}

    assert len(rec.streams) >= 2 and sim.get("connections_refused", 0) == 0
    assert sim["dropped"] > 0 and sim["cuts"] >= 1
    stored = set(TickStore(tmp_path / "s").symbols())
    # a symbol starts at its first live trade: one whose every frame a cut swallowed before it
    # was ever seen has nothing to store; any symbol seen has every id since, exactly once
    unseen = {s for s in syms if rec.seqs[s].last_id is None}
    assert stored == set(syms) - unseen and len(unseen) <= 10, sorted(unseen)
    assert all(rec.seqs[s].held == 0 for s in syms)  # nothing left behind an open gap
    counts = assert_exactly_once(tmp_path / "s", {s: made[s] for s in stored})
    assert sum(counts.values()) > 900  # (the pace at 300 symbols is measured by bench_universe)


# ---------------------------------------------------------------- serverShutdown


def test_server_shutdown_rotates_make_before_break_without_a_gap(tmp_path):
    syms = ["BTCUSDT", "ETHUSDT"]

    async def main():
        async with Exchange(Synthetic(syms, rate=300, seed=10), shutdown_grace=1.0) as ex:
            rec = await record(tmp_path, ex, syms, 5.0, actions=[
                (1.2, ex.send_server_shutdown), (3.0, ex.send_server_shutdown)])()
            return rec, ex.counters, {s: ex.trades(s) for s in syms}

    rec, sim, made = asyncio.run(main())
    sc = rec.stream_counters()
    assert sim["shutdown_events"] >= 2 and sc["server_shutdowns"] >= 2
    assert sc["rotations"] >= 2
    assert rec.status()["reconnects"] == 0  # rotations, never a reconnect
    assert rec.c["backfilled"] == 0 and rec.c["gaps_repaired"] == 0  # no gap to repair
    assert_exactly_once(tmp_path / "s", made)
