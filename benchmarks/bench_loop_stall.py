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


def measure_stats(n_sym: int = 50, hours: int = 25) -> tuple[float, float]:
    """Kernel side: ``Lab.stats()`` (the Monitor calls it every 2 s on the kernel's loop) on a
    store of ``n_sym`` symbols with a trade a second over ``hours``: (first call, median of
    the next five) in seconds."""
    from quantlab import Lab
    from quantlab.store import TickStore

    tmp = Path(tempfile.mkdtemp(prefix="qlstats-"))
    syms = [f"U{i:03d}USDT" for i in range(n_sym)]
    n = hours * 3600
    t = time.time_ns() - n * 10**9 + np.arange(n) * 10**9
    try:
        with TickStore(tmp / "s", mode="a") as w:
            for s in syms:
                w.append(s, {"trade_id": np.arange(1, n + 1), "time": t, "price": np.full(n, 100.0),
                             "qty": np.full(n, 1.0), "is_buyer_maker": np.zeros(n, "u1")}, flush=False)
            w.flush()
            lab = Lab(syms, store=tmp / "s", source="binance", progress=False, history="10min").start()
            try:
                lab.wait_ready(timeout=120, min_ticks=0)
                took = []
                for _ in range(6):
                    t0 = time.perf_counter()
                    lab.stats()
                    took.append(time.perf_counter() - t0)
            finally:
                lab.stop()
        return took[0], float(np.median(took[1:]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(quick: bool = False) -> list[Row]:
    duration, rate = (15.0, 10_000.0) if quick else (40.0, 10_000.0)
    m = measure(duration, rate)
    lags = m["lags_ms"]
    what = f"{len(SYMBOLS)} symbols, {rate:,.0f} trades/s offered, 50 alert rules"
    first, again = measure_stats()
    return [
        Row("loop stall", f"recorder pace ({what})", m["pace"], "trades/s", goal=f"~{rate:,.0f}"),
        Row("loop stall", "recorder loop stall p99 (5 ms sampler)", float(np.percentile(lags, 99)), "ms",
            goal="< 50 ms"),
        Row("loop stall", "recorder loop stall max", float(lags.max()), "ms"),
        Row("loop stall", "receipt -> durable p99", m["durable_p99_ms"] or float("nan"), "ms"),
        Row("loop stall", "kernel: Lab.stats() of 50 symbols x 25 h of ticks, first call", first * 1e3, "ms"),
        Row("loop stall", "kernel: Lab.stats() again (the Monitor's 2-s refresh)", again * 1e3, "ms",
            goal="< 50 ms"),
    ]


if __name__ == "__main__":
    os.environ.setdefault("QUANTLAB_LOG_LEVEL", "WARNING")
    t0 = time.perf_counter()
    for r in run(quick="--quick" in sys.argv):
        print(r)
    log(f"{time.perf_counter() - t0:.0f} s")
