"""Exchange simulator: push rate to one client, latency at 10k trades/s, REST page time, memory.

Each row times the simulator and a reference in the same run:
* push rate: the simulator replaying at full speed vs a bare ``websockets`` server sending
  the same pre-encoded frames in a ``send()`` loop, both read by the same bare client;
* latency: synthetic market at 10k trades/s, trade time T to client receipt (p50/p99);
* REST: one 1000-trade ``historicalTrades`` page, vs ``json.dumps`` of the same rows as dicts;
* memory: bytes per trade kept for backfill, vs a list of per-trade dicts.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
import tracemalloc
import urllib.request
from pathlib import Path

import numpy as np
import websockets
from _table import Row, best_of
from websockets.asyncio.server import serve

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from quantlab.sim import Exchange, Replay, Synthetic  # noqa: E402
from quantlab.sim.wire import trade_frames  # noqa: E402

SPOT = ROOT.parent / "shared" / "data" / "binance_ws" / "spot"


def _source(speed: float):
    if SPOT.is_dir():
        return Replay.from_paths(SPOT, speed=speed, loop=True)
    return Synthetic(rate=1e6 if math.isinf(speed) else 1000.0)


async def _client_rate(url: str, seconds: float) -> float:
    async with websockets.connect(url, max_size=None, compression=None, close_timeout=0.5) as ws:
        await ws.recv()
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            await ws.recv()
            n += 1
        return n / (time.perf_counter() - t0)


async def _push_rates(seconds: float) -> tuple[float, float]:
    src = _source(math.inf)
    async with Exchange(src) as ex:
        ours = await _client_rate(ex.ws_url + "/stream?streams=btcusdt@trade/ethusdt@trade", seconds)
        sym = ex.symbols[0]
        frames = trade_frames(ex.info(sym), ex.tape(sym).last(5000), time.time_ns() // 1000,
                              micro=False, combined=True)

    async def handler(ws):
        try:
            while True:
                for f in frames:
                    await ws.send(f, text=True)
        except websockets.ConnectionClosed:
            pass

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        ref = await _client_rate(f"ws://127.0.0.1:{port}/", seconds)
    return ours, ref


async def _latency(rate: float, seconds: float) -> tuple[float, float, float]:
    async with Exchange(Synthetic(rate=rate, seed=1)) as ex:
        async with websockets.connect(ex.ws_url + "/stream?streams=btcusdt@trade/ethusdt@trade&timeUnit=MICROSECOND",
                                      max_size=None, compression=None, close_timeout=0.5) as ws:
            lat = []
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                msg = await ws.recv()
                now_us = time.time_ns() // 1000
                t_us = int(msg[msg.index('"T":') + 4: msg.index(',"m"')])
                lat.append((now_us - t_us) / 1000.0)
            got = len(lat) / (time.perf_counter() - t0)
    lat_a = np.array(lat[len(lat) // 10:])  # skip the connection warm-up
    return got, float(np.percentile(lat_a, 50)), float(np.percentile(lat_a, 99))


def _rest_page() -> tuple[float, float]:
    async def setup():
        ex = Exchange(Synthetic(rate=20_000, seed=2))
        await ex.start()
        await asyncio.sleep(0.3)
        ex.pause()
        return ex

    loop = asyncio.new_event_loop()
    ex = loop.run_until_complete(setup())
    import threading

    t = threading.Thread(target=loop.run_forever, daemon=True)
    t.start()
    first = ex.tape("BTCUSDT").first_id
    url = f"{ex.rest_url}/api/v3/historicalTrades?symbol=BTCUSDT&fromId={first}&limit=1000"

    def fetch():
        with urllib.request.urlopen(url, timeout=10) as r:
            assert len(json.loads(r.read())) == 1000

    ours = best_of(fetch, 5)
    rows = ex.tape("BTCUSDT").from_id(first, 1000)
    dicts = [{"id": int(r["id"]), "price": f"{r['price'] / 1e8:.8f}", "qty": f"{r['qty'] / 1e8:.8f}",
              "quoteQty": f"{int(r['price']) * int(r['qty']) / 1e16:.8f}", "time": int(r["time"] // 1000),
              "isBuyerMaker": bool(r["buyer_maker"]), "isBestMatch": True} for r in rows]
    ref = best_of(lambda: json.dumps(dicts).encode(), 5)
    asyncio.run_coroutine_threadsafe(ex.close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    t.join(5)
    return ours * 1e3, ref * 1e3


def _memory(n: int) -> tuple[float, float]:
    src = Synthetic(rate=1e5, seed=3)
    src.start(0)
    batches = src.advance(int(n / 1e5 * 1e6))
    from quantlab.sim.tape import Tape

    tracemalloc.start()
    tape = Tape(chunk=1 << 12)  # small chunks: the steady state of hours of trades
    total = 0
    for b in batches.values():
        tape.append(b)
        total += len(b)
    ours = tracemalloc.get_traced_memory()[0] / total
    tracemalloc.stop()
    tracemalloc.start()
    objs = [dict(id=int(r["id"]), price=float(r["price"]) / 1e8, qty=float(r["qty"]) / 1e8,
                 time=int(r["time"]), m=bool(r["buyer_maker"])) for b in batches.values() for r in b]
    ref = tracemalloc.get_traced_memory()[0] / len(objs)
    tracemalloc.stop()
    del tape, objs
    return ours, ref


def run(quick: bool) -> list[Row]:
    secs = 1.0 if quick else 3.0
    ours, ref = asyncio.run(_push_rates(secs))
    rows = [Row("sim", "push to one client, full speed", ours, "trades/s", ref, ours / ref, ">= 10,000 trades/s")]
    rate = 10_000.0
    got, p50, p99 = asyncio.run(_latency(rate, secs))
    rows.append(Row("sim", "delivered at 10k trades/s", got, "trades/s", rate, got / rate, ">= 0.95x the rate"))
    rows.append(Row("sim", "T -> client latency p50 @10k/s", p50, "ms", None, None, "< 20 ms"))
    rows.append(Row("sim", "T -> client latency p99 @10k/s", p99, "ms", None, None, "< 100 ms"))
    ms, ref_ms = _rest_page()
    rows.append(Row("sim", "historicalTrades 1000-row page", ms, "ms", ref_ms, ref_ms / ms, "< 50 ms (ref: json.dumps only)"))
    b_ours, b_ref = _memory(50_000 if quick else 200_000)
    rows.append(Row("sim", "memory kept per trade", b_ours, "bytes", b_ref, b_ref / b_ours, "<= 48 bytes"))
    return rows


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r)
