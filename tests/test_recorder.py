"""The recorder against the exchange simulator over loopback: exact, complete, crash-safe."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantlab.pandas_compat import EXACT_FLOATS
from quantlab.recorder import Recorder, RecorderConfig
from quantlab.sim import Exchange, ExchangeThread, Replay, Synthetic
from quantlab.status import read_status
from quantlab.store import TickStore

FAST_BACKOFF = {"backoff": lambda: iter([0.05] * 100_000)}


def assert_exactly_once(store_path, made: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Every trade the exchange made between the first and last stored id is stored once,
    with its exact price, quantity and side."""
    st = TickStore(store_path)
    counts = {}
    for sym, m in made.items():
        got = st.read(sym)
        ids = got["trade_id"].to_numpy()
        assert len(ids) > 0, sym
        assert np.all(np.diff(ids) == 1), f"{sym}: ids not contiguous"
        ref = m.set_index("trade_id").loc[ids]
        assert np.array_equal(ref["price"].to_numpy(), got["price"].to_numpy()), sym
        assert np.array_equal(ref["qty"].to_numpy(), got["qty"].to_numpy()), sym
        assert np.array_equal(ref["is_buyer_maker"].to_numpy(bool), got["is_buyer_maker"].to_numpy()), sym
        counts[sym] = len(ids)
    assert st.gaps().empty
    return counts


def test_replay_of_real_captures_equals_official_trade_files(tmp_path, real_data):
    """Recorded Binance frames -> simulator -> recorder -> store == the official-layout CSVs."""
    ref = {
        sym: pd.read_csv(next((real_data / "trades").glob(f"{sym}-spot-trades-*.csv")), header=None, **EXACT_FLOATS)
        for sym in ("BTCUSDT", "ETHUSDT")
    }
    source = Replay.from_paths(str(real_data / "binance_ws" / "spot"), None, speed=150.0)

    async def main():
        async with Exchange(source) as ex:
            rec = Recorder(RecorderConfig(
                store=tmp_path / "s", symbols=list(ref), ws_url=ex.ws_url, rest_url=ex.rest_url,
                start_ids={s: int(r[0].iloc[0]) for s, r in ref.items()}, stream_options=FAST_BACKOFF,
            ))
            task = asyncio.create_task(rec.run())
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and rec.c["stored"] < sum(map(len, ref.values())):
                await asyncio.sleep(0.2)
            rec.stop()
            await task

    asyncio.run(main())
    st = TickStore(tmp_path / "s")
    for sym, r in ref.items():
        got = st.read(sym)
        assert len(got) == len(r), sym
        assert np.array_equal(got["trade_id"].to_numpy(), r[0].to_numpy())
        assert np.array_equal(got["price"].to_numpy(), r[1].to_numpy())
        assert np.array_equal(got["qty"].to_numpy(), r[2].to_numpy())
        assert np.array_equal(got["is_buyer_maker"].to_numpy(), r[5].to_numpy(bool))
        assert got.index.is_monotonic_increasing


@pytest.mark.slow
def test_sixty_seconds_through_every_fault(tmp_path):
    faults = "drop=0.01,cut_every=400,dup_after_reconnect=20,malformed=0.002,stall=5@25,rest429=1,seed=7"

    async def main():
        async with Exchange(Synthetic(["BTCUSDT", "ETHUSDT"], rate=300, seed=3), faults=faults) as ex:
            rec = Recorder(RecorderConfig(
                store=tmp_path / "s", symbols=["BTCUSDT", "ETHUSDT"], ws_url=ex.ws_url,
                rest_url=ex.rest_url, duration_s=60, watchdog_s=3.0, stream_options=FAST_BACKOFF,
            ))
            await rec.run()
            return rec.status(), ex.counters, {s: ex.trades(s) for s in ("BTCUSDT", "ETHUSDT")}

    status, sim, made = asyncio.run(main())
    counts = assert_exactly_once(tmp_path / "s", made)
    assert sum(counts.values()) > 60 * 300 * 0.8
    # every fault really happened and was survived
    assert sim["dropped"] > 50 and sim["cuts"] >= 10 and sim["duplicates"] > 0 and sim["malformed"] > 0
    assert status["reconnects"] >= 10 and status["gaps_repaired"] >= 10 and status["malformed"] > 0
    assert status["duplicates"] > 0 and status["gaps_unrepaired"] == 0
    print(f"\nfaults survived: {sim}\nrecorder: reconnects={status['reconnects']} "
          f"gaps_repaired={status['gaps_repaired']} backfilled={status['backfilled']} stored={counts}")


def _record_cmd(store, ex, *extra):
    return [sys.executable, "-m", "quantlab", "record", "--store", str(store), "--symbols", "BTCUSDT,ETHUSDT",
            "--ws-url", ex.ws_url, "--rest-url", ex.rest_url, *extra]


def test_sigkill_and_restart_keeps_every_trade_exactly_once(tmp_path):
    store = tmp_path / "s"
    with ExchangeThread(Synthetic(["BTCUSDT", "ETHUSDT"], rate=400, seed=5)) as ex:
        proc = subprocess.Popen(_record_cmd(store, ex), stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        while time.time() < deadline and read_status(store).get("ticks_total", 0) < 1000:
            time.sleep(0.2)
        assert read_status(store).get("ticks_total", 0) >= 1000, proc.stderr.read() if proc.poll() else ""
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(1.5)  # trades made while no recorder runs must come back by backfill
        out = subprocess.run(_record_cmd(store, ex, "--duration", "4"), capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        made = {s: ex.trades(s) for s in ("BTCUSDT", "ETHUSDT")}
    counts = assert_exactly_once(store, made)
    assert all(c > 1500 for c in counts.values()), counts


def test_sigterm_flushes_and_exits_zero(tmp_path):
    store = tmp_path / "s"
    with ExchangeThread(Synthetic(["BTCUSDT", "ETHUSDT"], rate=200, seed=1)) as ex:
        proc = subprocess.Popen(_record_cmd(store, ex), stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        while time.time() < deadline and read_status(store).get("ticks_total", 0) < 200:
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        status = read_status(store)
        made = {s: ex.trades(s) for s in ("BTCUSDT", "ETHUSDT")}
    assert status["state"] == "stopped"
    counts = assert_exactly_once(store, made)
    assert sum(counts.values()) == status["ticks_total"]
    assert not list(Path(store).rglob("active.h5"))  # sealed on a clean exit


def test_unknown_symbol_is_refused_before_connecting(tmp_path):
    with ExchangeThread(Synthetic(["BTCUSDT"], rate=10)) as ex:
        out = subprocess.run(
            [sys.executable, "-m", "quantlab", "record", "--store", str(tmp_path / "s"), "--symbols", "BTCUSDT,NOPECOIN",
             "--ws-url", ex.ws_url, "--rest-url", ex.rest_url, "--duration", "5"],
            capture_output=True, text=True, timeout=30)
        assert ex.counters.get("connections", 0) == 0
    assert out.returncode == 2 and "NOPECOIN" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("flag, value, needle", [
    ("--ws-url", "http://127.0.0.1:9", "ws_url"),
    ("--rest-url", "ftp://127.0.0.1:9", "rest_url"),
    ("--duration", "-1", "--duration"),
])
def test_bad_urls_and_flags_get_one_line_errors(tmp_path, flag, value, needle):
    args = {"--ws-url": "ws://127.0.0.1:9", "--rest-url": "http://127.0.0.1:9", "--duration": "1"}
    args[flag] = value
    cmd = [sys.executable, "-m", "quantlab", "record", "--store", str(tmp_path / "s"), "--symbols", "BTCUSDT"]
    for k, v in args.items():
        cmd += [k, v]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and needle in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_unreachable_endpoint_retries_with_backoff_not_a_busy_loop(tmp_path):
    cmd = [sys.executable, "-m", "quantlab", "record", "--store", str(tmp_path / "s"), "--symbols", "BTCUSDT",
           "--ws-url", "ws://127.0.0.1:9", "--rest-url", "http://127.0.0.1:9", "--duration", "4"]
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    attempts = [line for line in out.stderr.splitlines() if "127.0.0.1:9" in line and "WARNING" in line]
    assert 3 <= len(attempts) <= 12, out.stderr  # a few attempts with growing delays, no busy loop
    assert "Connection refused" in attempts[0] and "Traceback" not in out.stderr
    assert time.monotonic() - t0 < 30
    assert read_status(tmp_path / "s")["state"] == "unreachable"
