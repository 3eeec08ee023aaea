"""Futures feed: the USD-M recorder (aggTrade + markPrice@1s, sequencing, store appends) vs a
bare websockets receive loop on the same full-speed ``/market`` stream of the simulator, which
runs in its own process (``quantlab sim --market um``)."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _sim import Sim
from _table import Row
from websockets.asyncio.client import connect

from quantlab.recorder import Recorder, RecorderConfig

SYMBOLS = ("BTCUSDT", "ETHUSDT")


def FuturesSim(*args: str) -> Sim:  # noqa: N802 - the simulator of this benchmark's market
    """``quantlab sim --market um`` over this benchmark's symbols."""
    return Sim("--symbols", ",".join(SYMBOLS), *args, market="um")


async def _bare(ws_url: str, n: int) -> float:
    streams = "/".join(f"{s.lower()}@{k}" for s in SYMBOLS for k in ("aggTrade", "markPrice@1s"))
    async with connect(f"{ws_url}/stream?streams={streams}", max_size=None, ping_interval=None) as ws:
        await ws.recv()
        t0 = time.perf_counter()
        for _ in range(n):
            await ws.recv()
        return n / (time.perf_counter() - t0)


async def _recorder(sim: Sim, store: Path, n: int) -> tuple[float, dict]:
    rec = Recorder(RecorderConfig(store=store, symbols=[f"um:{s}" for s in SYMBOLS], ws_url="", rest_url="http://unused",
                                  futures_urls={"um": (sim.ws_url, sim.rest_url)}, alerts=False))
    task = asyncio.create_task(rec.run())
    while rec.c["stored"] == 0:
        if task.done():
            await task
        await asyncio.sleep(0.01)
    t0, s0 = time.perf_counter(), rec.c["stored"]
    while rec.c["stored"] - s0 < n:
        await asyncio.sleep(0.02)
    rate = (rec.c["stored"] - s0) / (time.perf_counter() - t0)
    rec.stop()
    await task
    return rate, rec.status()


def run(quick: bool = False) -> list[Row]:
    n = 30_000 if quick else 200_000
    tmp = Path(tempfile.mkdtemp(prefix="qlfut-"))
    src = ["--source", "synthetic", "--rate", "50000"]
    try:
        sim = FuturesSim(*src)
        try:
            bare = asyncio.run(_bare(sim.ws_url, n))
        finally:
            sim.close(20)
        sim = FuturesSim(*src)
        try:
            ours, status = asyncio.run(_recorder(sim, tmp / "thr", n))
        finally:
            sim.close(20)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load = os.getloadavg()[0]
    return [Row("futures", f"USD-M recorder throughput, full-speed /market stream ({n:,} aggregates; bare "
                f"websockets loop = ref; load {load:.1f})", ours, "aggTrades/s", reference=bare,
                ratio=ours / bare, goal=">= 0.5x")]


if __name__ == "__main__":
    os.environ.setdefault("QUANTLAB_LOG_LEVEL", "WARNING")
    for r in run(quick="--quick" in sys.argv):
        print(r)
