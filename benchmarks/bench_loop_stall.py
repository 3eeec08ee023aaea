"""Loop stalls: how long the recorder's asyncio loop is kept from running while it records.

The recorder's loop reads every connection's socket; while it is blocked (an HDF5 append, a
flush, a segment seal, alert evaluation) nothing is read and the exchange's trades queue up
in the kernel (Binance cuts a reader that falls too far behind). A sampler task on the
recorder's own loop sleeps 5 ms at a time and records how late it wakes up: that lateness is
the stall. The simulator runs in its own process (``quantlab sim``), the recorder in this
one, with 50 alert rules (40 price rules, 10 z-score pair rules on 1 s bars).

    python benchmarks/bench_loop_stall.py            # 40 s at 10,000 trades/s
    python benchmarks/bench_loop_stall.py --quick    # 15 s at 10,000 trades/s
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _table import Row

from quantlab.alerts import PriceRule, ZScoreRule, add_rule
from quantlab.recorder.service import Recorder, RecorderConfig

SYMBOLS = [f"S{i:02d}USDT" for i in range(20)]
TICK_S = 0.005


def log(msg: str) -> None:
    print(f"# loop-stall: {msg}", file=sys.stderr, flush=True)


class Sim:
    """``quantlab sim`` in a subprocess; URLs read from its stdout."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "quantlab", "sim", "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        urls = dict(self.proc.stdout.readline().strip().split("=", 1) for _ in range(2))
        self.ws_url, self.rest_url = urls["QUANTLAB_WS_URL"], urls["QUANTLAB_REST_URL"]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _rules(store: Path) -> None:
    """40 price rules (crosses around a range of levels) and 10 z-score pair rules."""
    for i in range(40):
        add_rule(store, PriceRule(symbol=SYMBOLS[i % len(SYMBOLS)], op="cross", level=10.0 * (i + 1)),
                 symbols=SYMBOLS)
    for i in range(10):
        add_rule(store, ZScoreRule(y=SYMBOLS[2 * i], x=SYMBOLS[2 * i + 1], k=2.0, timeframe="1s", window=60),
                 symbols=SYMBOLS)


async def _record(store: Path, sim: Sim, duration: float, warmup: float) -> dict:
    rec = Recorder(RecorderConfig(store=store, symbols=SYMBOLS, ws_url=sim.ws_url, rest_url=sim.rest_url,
                                  duration_s=duration))
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    t_start = loop.time()

    async def sample() -> None:
        while True:
            t0 = loop.time()
            await asyncio.sleep(TICK_S)
            if t0 - t_start >= warmup and rec.c["stored"]:
                lags.append(loop.time() - t0 - TICK_S)

    sampler = asyncio.create_task(sample())
    try:
        await rec.run()
    finally:
        sampler.cancel()
    durable = rec.lat_durable.percentiles_ms()
    return {"lags_ms": np.array(lags) * 1e3, "stored": rec.c["stored"], "alerts": rec.c["alerts_fired"],
            "alert_errors": rec.c["alert_errors"], "durable_p99_ms": durable.get("p99"),
            "pace": rec.c["stored"] / max(duration, 1e-9)}


def measure(duration: float, rate: float, warmup: float = 5.0) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="qlstall-"))
    store = tmp / "store"
    store.mkdir()
    sim = Sim("--source", "synthetic", "--symbols", ",".join(SYMBOLS), "--rate", str(rate), "--start-now")
    try:
        _rules(store)
        logging.getLogger("quantlab").setLevel(logging.ERROR)
        m = asyncio.run(_record(store, sim, duration, warmup))
        lags = m["lags_ms"]
        log(f"{len(lags)} samples, stored={m['stored']} alerts={m['alerts']} errors={m['alert_errors']} "
            f"p50={np.percentile(lags, 50):.1f}ms p99={np.percentile(lags, 99):.1f}ms max={lags.max():.1f}ms")
        return m
    finally:
        sim.close()
        shutil.rmtree(tmp, ignore_errors=True)


def run(quick: bool = False) -> list[Row]:
    duration, rate = (15.0, 10_000.0) if quick else (40.0, 10_000.0)
    m = measure(duration, rate)
    lags = m["lags_ms"]
    what = f"{len(SYMBOLS)} symbols, {rate:,.0f} trades/s offered, 50 alert rules"
    return [
        Row("loop stall", f"recorder pace ({what})", m["pace"], "trades/s", goal=f"~{rate:,.0f}"),
        Row("loop stall", "recorder loop stall p99 (5 ms sampler)", float(np.percentile(lags, 99)), "ms",
            goal="< 50 ms"),
        Row("loop stall", "recorder loop stall max", float(lags.max()), "ms"),
        Row("loop stall", "receipt -> durable p99", m["durable_p99_ms"] or float("nan"), "ms"),
    ]


if __name__ == "__main__":
    os.environ.setdefault("QUANTLAB_LOG_LEVEL", "WARNING")
    t0 = time.perf_counter()
    for r in run(quick="--quick" in sys.argv):
        print(r)
    log(f"{time.perf_counter() - t0:.0f} s")
