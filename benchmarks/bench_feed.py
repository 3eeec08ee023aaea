"""Feed: recorder throughput vs a bare websockets receive loop on the same full-speed stream,
and receipt-to-durable latency at 1k and 10k trades/s. The simulator runs in its own process."""

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

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT.parent / "shared" / "data" / "binance_ws" / "spot"


def _source_args() -> list[str]:
    if CAPTURES.is_dir():
        return ["--source", f"replay:{CAPTURES}", "--rate", "inf", "--loop"]
    return ["--source", "synthetic", "--rate", "200000"]


async def _bare(ws_url: str, n: int, warmup: int) -> float:
    async with connect(f"{ws_url}/stream?streams=btcusdt@trade/ethusdt@trade", max_size=None) as ws:
        for _ in range(warmup + 1):
            await ws.recv()
        t0 = time.perf_counter()
        for _ in range(n):
            await ws.recv()
        return n / (time.perf_counter() - t0)


async def _recorder(sim: Sim, store: Path, n: int, duration: float | None = None,
                    warmup: int = 0) -> tuple[float, dict]:
    rec = Recorder(RecorderConfig(store=store, symbols=["BTCUSDT", "ETHUSDT"], ws_url=sim.ws_url,
                                  rest_url=sim.rest_url, alerts=False, duration_s=duration))
    task = asyncio.create_task(rec.run())
    while rec.c["stored"] <= warmup:  # past connecting, the first segment and first batches
        await asyncio.sleep(0.01)
    t0, s0 = time.perf_counter(), rec.c["stored"]
    if duration is None:
        while rec.c["stored"] - s0 < n:
            await asyncio.sleep(0.02)
        rate = (rec.c["stored"] - s0) / (time.perf_counter() - t0)
        rec.stop()
    else:
        rate = 0.0
    await task
    return rate, rec.status()


def run(quick: bool = False) -> list[Row]:
    # both loops are timed after the same warm-up, so that a quick run's ratio is the steady
    # state's too (timed from the first trade, 50,000 trades were mostly the recorder's start-up)
    n = 50_000 if quick else 300_000
    warmup = 20_000
    tmp = Path(tempfile.mkdtemp(prefix="qlfeed-"))
    rows: list[Row] = []
    try:
        sim = Sim(*_source_args())
        try:
            bare = asyncio.run(_bare(sim.ws_url, n, warmup))
        finally:
            sim.close()
        sim = Sim(*_source_args())
        try:
            ours, _ = asyncio.run(_recorder(sim, tmp / "thr", n, warmup=warmup))
        finally:
            sim.close()
        rows.append(Row("feed", f"recorder throughput, full-speed stream ({n:,} trades after {warmup:,}; bare websockets loop = ref)",
                        ours, "trades/s", reference=bare, ratio=ours / bare, goal=">= 0.5x"))
        for rate in (1_000, 10_000):
            sim = Sim("--source", "synthetic", "--rate", str(rate))
            try:
                _, status = asyncio.run(_recorder(sim, tmp / f"lat{rate}", 0, duration=5 if quick else 20))
            finally:
                sim.close()
            lat = status["latency_ms"]["recv_to_durable"]
            # a quick run's 5 s include the connection's first seconds: a smoke figure
            rows.append(Row("feed", f"receipt -> durable latency p50 at {rate:,} trades/s", lat["p50"], "ms",
                            smoke=quick))
            rows.append(Row("feed", f"receipt -> durable latency p99 at {rate:,} trades/s", lat["p99"], "ms",
                            goal="< 1000 ms", smoke=quick))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


if __name__ == "__main__":
    os.environ.setdefault("QUANTLAB_LOG_LEVEL", "WARNING")
    for r in run(quick="--quick" in sys.argv):
        print(r)
