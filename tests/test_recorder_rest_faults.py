"""The recorder against what Binance's REST API does when it says no, emulated by the simulator
over loopback: a lagging history database, escalating 418 bans, a firewall, a restricted
location, the market-data host — and `quantlab repair` afterwards."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import numpy as np
import pytest

from quantlab import cli
from quantlab.recorder import Recorder, RecorderConfig
from quantlab.sim import Exchange, ExchangeThread, Synthetic
from quantlab.store import TickStore

FAST_BACKOFF = {"backoff": lambda: iter([0.05] * 100_000)}
SYMS = ["BTCUSDT", "ETHUSDT"]


def stored_exactly_once(store_path, made):
    """Every id between the first and last stored one is stored once, equal to the exchange's."""
    st = TickStore(store_path)
    counts = {}
    for sym, m in made.items():
        got = st.read(sym)
        ids = got["trade_id"].to_numpy()
        assert len(ids) > 0, sym
        assert np.all(np.diff(ids) == 1), f"{sym}: ids not contiguous: {ids[np.flatnonzero(np.diff(ids) != 1)[:5]]}"
        ref = m.set_index("trade_id").loc[ids]
        assert np.array_equal(ref["price"].to_numpy(), got["price"].to_numpy()), sym
        assert np.array_equal(ref["qty"].to_numpy(), got["qty"].to_numpy()), sym
        counts[sym] = len(ids)
    return counts


async def _record(tmp_path, faults, seconds, *, rate=400, settle_until=None, **cfg):
    async with Exchange(Synthetic(SYMS, rate=rate, seed=11), faults=faults) as ex:
        rec = Recorder(RecorderConfig(
            store=tmp_path / "s", symbols=SYMS, ws_url=ex.ws_url, rest_url=ex.rest_url,
            watchdog_s=3.0, stream_options=FAST_BACKOFF, alerts=False, **cfg,
        ))
        task = asyncio.create_task(rec.run())
        await asyncio.sleep(seconds)
        deadline = time.monotonic() + 30  # then let open gaps be repaired
        while settle_until is not None and time.monotonic() < deadline and not settle_until(rec):
            await asyncio.sleep(0.2)
        rec.stop()
        await task
        return rec.status(), rec.c, ex.counters, {s: ex.trades(s) for s in SYMS}


def test_gaps_opened_while_history_lags_are_all_filled_none_permanent(tmp_path):
    # a 3 s stall at 500 trades/s per symbol opens gaps of ~1500 ids, and drops open small
    # ones; the history database serves nothing younger than 4 s, so first attempts get
    # short pages: the recorder must take the newest ids from memory (/trades, the last
    # 1000) and retry the rest until the database has them — never declare them gone.
    faults = "history_lag=4,stall=3@3,drop=0.005,seed=2"
    status, c, sim, made = await_run(_record(tmp_path, faults, 12, rate=1000))
    assert sim["history_short_pages"] > 0  # the lag really answered short pages
    assert c["backfill_retries"] > 0  # and some ids needed the database to catch up
    assert c["gaps_unrepaired"] == 0 and status["gaps_open"] == 0
    assert c["gaps_repaired"] >= 3
    assert TickStore(tmp_path / "s").gaps().empty  # nothing recorded, least of all permanent
    counts = stored_exactly_once(tmp_path / "s", made)
    assert all(n > 3 * 1000 for n in counts.values()), counts  # the ~1500-id stall gaps included


def test_lag_longer_than_the_hold_keeps_gaps_open_then_merges_them(tmp_path):
    # the database lags 6 s but a gap may hold trades only 0.5 s: the older part of each
    # stall gap (beyond the 1000 trades memory serves) is kept open, the held trades are
    # stored, and the repair task merges the rest in once the database has it.
    faults = "history_lag=6,stall=4@3,seed=3"
    status, c, sim, made = await_run(_record(
        tmp_path, faults, 10, rate=600, backfill_hold_s=0.5, repair_backoff_cap_s=1.0,
        settle_until=lambda rec: not rec._open))
    assert c["gaps_deferred"] >= 1 and c["gaps_repaired_later"] >= 1
    assert c["gaps_unrepaired"] == 0 and status["gaps_open"] == 0
    assert TickStore(tmp_path / "s").gaps().empty
    stored_exactly_once(tmp_path / "s", made)


def test_no_request_is_sent_during_escalating_bans_and_gaps_are_repaired_after(tmp_path):
    # two bans (2 s, then 4 s: each ban doubles); gaps open throughout from drops. Binance
    # prolongs a ban for every request sent during it: the simulator counts them.
    faults = "rest418=2,ban=2,drop=0.01,seed=4"
    status, c, sim, made = await_run(_record(
        tmp_path, faults, 9, repair_backoff_cap_s=1.0, settle_until=lambda rec: not rec._open))
    assert sim["bans"] == 2 and sim["rest_418"] == 2
    assert sim.get("rest_during_ban", 0) == 0 and sim.get("rest_ignored_429", 0) == 0
    assert c["gaps_deferred"] >= 2 and c["gaps_repaired_later"] >= 2
    assert c["gaps_unrepaired"] == 0 and TickStore(tmp_path / "s").gaps().empty
    stored_exactly_once(tmp_path / "s", made)


def test_firewall_403_backs_off_then_repairs(tmp_path):
    faults = "rest403=1,drop=0.01,seed=5"
    status, c, sim, made = await_run(_record(
        tmp_path, faults, 5, rest_options={"waf_pause_s": 1.5}, repair_backoff_cap_s=1.0,
        settle_until=lambda rec: not rec._open))
    assert sim["rest_403"] == 1
    assert c["gaps_unrepaired"] == 0 and TickStore(tmp_path / "s").gaps().empty
    stored_exactly_once(tmp_path / "s", made)


def await_run(coro):
    return asyncio.run(coro)


def _cli(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_restricted_location_stops_with_one_line(tmp_path):
    with ExchangeThread(Synthetic(SYMS, rate=50), faults="rest451=100000") as ex:
        out = subprocess.run(
            [sys.executable, "-m", "quantlab", "record", "--store", str(tmp_path / "s"), "--symbols", "BTCUSDT",
             "--ws-url", ex.ws_url, "--rest-url", ex.rest_url, "--duration", "20", "--no-alerts"],
            capture_output=True, text=True, timeout=60)
        sent = ex.counters["rest_451"]
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert len(lines) == 1 and lines[0].startswith("quantlab record: error:"), out.stderr
    assert "451" in lines[0] and "restricted location" in lines[0]
    assert sent == 1  # no retrying a refusal that cannot change


def test_market_data_host_is_refused_at_start_up(tmp_path):
    with ExchangeThread(Synthetic(SYMS, rate=50), faults="data_api=1") as ex:
        out = subprocess.run(
            [sys.executable, "-m", "quantlab", "record", "--store", str(tmp_path / "s"), "--symbols", "BTCUSDT",
             "--ws-url", ex.ws_url, "--rest-url", ex.rest_url, "--duration", "20", "--no-alerts"],
            capture_output=True, text=True, timeout=60)
        assert ex.counters.get("connections", 0) == 0  # refused before streaming
    err = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(err) == 1, out.stderr
    assert "--rest-url" in err[0] and "historicalTrades" in err[0] and "api.binance.com" in err[0]


def test_repair_fills_gaps_left_open_during_a_ban(tmp_path, capsys):
    store = tmp_path / "s"
    with ExchangeThread(Synthetic(SYMS, rate=400, seed=8), faults="rest418=1,ban=4,drop=0.02,seed=8") as ex:
        async def short_run():
            rec = Recorder(RecorderConfig(store=store, symbols=SYMS, ws_url=ex.ws_url, rest_url=ex.rest_url,
                                          duration_s=2.5, stream_options=FAST_BACKOFF, alerts=False))
            await rec.run()
            return rec.c

        c = asyncio.run(short_run())  # stops while the ban lasts: its gaps stay open
        gaps = TickStore(store).gaps()
        assert c["gaps_deferred"] >= 2 and len(gaps) == c["gaps_deferred"]
        assert not gaps["permanent"].any()
        missing = int(gaps["count"].sum())

        # a recorder holds the store: repair says so and touches nothing
        writer = TickStore(store, mode="a")
        code, out, err = _cli(capsys, "repair", "--store", str(store), "--rest-url", ex.rest_url)
        writer.close()
        assert code == 2 and "repair: error:" in err and "pid" in err and out == ""
        assert len(TickStore(store).gaps()) == len(gaps)

        time.sleep(4.5)  # the ban is over
        code, out, err = _cli(capsys, "repair", "--store", str(store), "--rest-url", ex.rest_url)
        made = {s: ex.trades(s) for s in SYMS}
        assert ex.counters.get("rest_during_ban", 0) == 0
    assert code == 0, err
    lines = out.strip().splitlines()
    assert sorted(ln.split(":")[0] for ln in lines) == sorted(set(gaps["symbol"]))
    filled = sum(int(ln.split("filled ")[1].split(" of")[0].replace(",", "")) for ln in lines)
    assert filled == missing and all("0 not yet available" in ln and "0 gone" in ln for ln in lines)
    assert TickStore(store).gaps().empty
    stored_exactly_once(store, made)


def test_repair_on_a_store_without_gaps_says_so(tmp_path, capsys):
    st = TickStore(tmp_path / "s", mode="a")
    st.close()
    code, out, _ = _cli(capsys, "repair", "--store", str(tmp_path / "s"), "--rest-url", "http://127.0.0.1:9")
    assert code == 0 and "no recorded gaps" in out


def test_status_names_open_gaps(tmp_path):
    status, c, sim, made = await_run(_record(tmp_path, "rest418=1,ban=30,drop=0.02,seed=6", 2.5))
    assert status["gaps_open"] >= 1 and status["rest_paused_s"] > 20
    gaps = TickStore(tmp_path / "s").gaps()
    assert len(gaps) == status["gaps_open"] and not gaps["permanent"].any()
    assert json.dumps(status)  # serialisable as status.json
    assert sim.get("rest_during_ban", 0) == 0


@pytest.fixture(autouse=True)
def _quiet_logs(caplog):
    caplog.set_level("WARNING")


def test_open_gaps_left_by_a_stopped_recorder_are_repaired_by_the_next_run(tmp_path):
    store = tmp_path / "s"
    with ExchangeThread(Synthetic(SYMS, rate=400, seed=9), faults="rest418=1,ban=3,drop=0.02,seed=9") as ex:
        def run_for(seconds, **extra):
            async def go():
                rec = Recorder(RecorderConfig(store=store, symbols=SYMS, ws_url=ex.ws_url, rest_url=ex.rest_url,
                                              duration_s=seconds, stream_options=FAST_BACKOFF, alerts=False,
                                              repair_backoff_cap_s=1.0, **extra))
                await rec.run()
                return rec.c, rec.status()
            return asyncio.run(go())

        c1, _ = run_for(2.0)  # stopped during the ban
        left = TickStore(store).gaps()
        assert c1["gaps_deferred"] >= 2 and len(left) == c1["gaps_deferred"] and not left["permanent"].any()
        time.sleep(1.5)  # the ban is over
        c2, status = run_for(4.0)
        made = {s: ex.trades(s) for s in SYMS}
        assert ex.counters.get("rest_during_ban", 0) == 0
    assert c2["gaps_repaired_later"] >= len(left) and status["gaps_open"] == 0
    assert TickStore(store).gaps().empty
    stored_exactly_once(store, made)


def test_repair_during_an_outage_keeps_every_gap_and_says_so(tmp_path, capsys):
    st = TickStore(tmp_path / "s", mode="a")
    st.add_gap("BTCUSDT", 100, 199, "kept open", permanent=False)
    st.add_gap("BTCUSDT", 300, 310, "gone", permanent=True)
    st.close()
    code, out, _ = _cli(capsys, "repair", "--store", str(tmp_path / "s"), "--rest-url", "http://127.0.0.1:9")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0] == "BTCUSDT: filled 0 of 111 missing ids in 2 gaps; 0 gone for good; 111 not yet available"
    assert lines[1].startswith("stopped early: REST unreachable")
    gaps = TickStore(tmp_path / "s").gaps()
    assert list(gaps["count"]) == [100, 11] and list(gaps["permanent"]) == [False, True]
