"""Loop stalls: how long the recorder's asyncio loop, and the kernel's behind the app, are kept
from running while they work.

The recorder's loop reads every connection's socket; while it is blocked (an HDF5 append, a
flush, a segment seal, alert evaluation) nothing is read and the exchange's trades queue up
in the kernel (Binance cuts a reader that falls too far behind). A sampler task on the
recorder's own loop sleeps 5 ms at a time and records how late it wakes up: that lateness is
the stall. The simulator runs in its own process (``quantlab sim``), the recorder in this
one, with 50 alert rules (40 price rules, 10 z-score pair rules on 1 s bars).

The kernel side (:func:`measure_kernel`): the app's ``Dashboard`` built and refreshing
(Monitor tab on screen, the alert toast and history live, a heartbeat as the page sends it)
over a ``Lab`` following a store that a ``quantlab record`` process fills from the simulator
at 10,000 trades/s with the same 50 rules; the store holds 25 h of history first (a trade a
second per symbol), so the Monitor's 24 h change reads real rows. A sampler task on the
kernel-like loop of this process sleeps 10 ms at a time. No browser is attached: widget
messages are built and serialised but not sent over a socket.

    python benchmarks/bench_loop_stall.py            # 40 s at 10,000 trades/s (kernel: 75 s)
    python benchmarks/bench_loop_stall.py --quick    # 15 s at 10,000 trades/s (kernel: 40 s)
    python benchmarks/bench_loop_stall.py --kernel   # the kernel side only
    PYTHONPATH=/old/tree python benchmarks/bench_loop_stall.py --kernel   # another code's kernel
      (the simulator and the recorder always run this tree's code)
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
from _sim import Sim
from _table import Row

from quantlab.alerts import PriceRule, ZScoreRule, add_rule
from quantlab.recorder.service import Recorder, RecorderConfig

SYMBOLS = [f"S{i:02d}USDT" for i in range(20)]
TICK_S = 0.005
KERNEL_TICK_S = 0.010
HERE = Path(__file__).resolve().parents[1]  # this tree: the simulator and recorder run its code


def log(msg: str) -> None:
    print(f"# loop-stall: {msg}", file=sys.stderr, flush=True)


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


def _seed_history(store: Path, hours: int = 25) -> None:
    """``hours`` of history per symbol, a trade a second, ending a minute ago (ids below the
    simulator's, which start at 10**15)."""
    from quantlab.store import TickStore

    n = hours * 3600
    t = time.time_ns() - 60 * 10**9 - n * 10**9 + np.arange(n, dtype=np.int64) * 10**9
    with TickStore(store, mode="a") as w:
        for i, s in enumerate(SYMBOLS):
            w.append(s, {"trade_id": np.arange(1, n + 1), "time": t, "price": np.full(n, 50.0 + 10 * i),
                         "qty": np.full(n, 1.0), "is_buyer_maker": np.zeros(n, "u1")}, flush=False)


def _start_recorder(store: Path, sim: Sim, env: dict) -> subprocess.Popen:
    from quantlab.store import writer_pid

    proc = subprocess.Popen([sys.executable, "-m", "quantlab", "record", "--store", str(store),
                             "--symbols", ",".join(SYMBOLS), "--ws-url", sim.ws_url, "--rest-url", sim.rest_url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    while writer_pid(store) is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the recorder did not open {store} (exit {proc.poll()})")
        time.sleep(0.1)
    return proc


async def _kernel(store: Path, duration: float, warmup: float) -> dict:
    """The app in this process: a Lab following ``store`` and its Dashboard, on this loop."""
    from quantlab import Lab
    from quantlab.ui import Dashboard

    loop = asyncio.get_running_loop()
    if os.environ.get("QL_STALL_DEBUG"):  # name the callbacks that hold the loop (slows it a little)
        loop.set_debug(True)
        loop.slow_callback_duration = 0.03
        logging.getLogger("asyncio").setLevel(logging.WARNING)
    lab = Lab(SYMBOLS, store=store, source="binance", progress=False).start()
    t_load = loop.time()
    while not lab._loaded.is_set() and loop.time() - t_load < 120:
        await asyncio.sleep(0.05)
    log(f"kernel: Lab loaded history in {loop.time() - t_load:.1f} s")
    dash = Dashboard(lab)
    lags: list[float] = []
    t_start = loop.time()

    async def heartbeat() -> None:  # what the page's Play widget sends every 2 s
        while True:
            await asyncio.sleep(2.0)
            dash.heartbeat.widget.value += 1

    async def sample() -> None:
        while True:
            t0 = loop.time()
            await asyncio.sleep(KERNEL_TICK_S)
            if t0 - t_start >= warmup:
                lags.append(loop.time() - t0 - KERNEL_TICK_S)

    tasks = [asyncio.create_task(heartbeat()), asyncio.create_task(sample())]
    prof = None
    if os.environ.get("QL_STALL_PROFILE"):  # what the loop's thread spends its time in
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    try:
        await asyncio.sleep(duration)
    finally:
        if prof is not None:
            prof.disable()
            prof.dump_stats(os.environ["QL_STALL_PROFILE"])
        for t in tasks:
            t.cancel()
        dash.stop()
        ticks = int(lab.stats()["ticks"].sum())
        lab.stop()
    return {"lags_ms": np.array(lags) * 1e3, "updates": dash.updates, "errors": dash.refresh_errors,
            "paused": dash.paused, "ticks": ticks}


IDLE_SAMPLER = f"""
import asyncio, sys
async def main(duration):
    loop, lags = asyncio.get_running_loop(), []
    end = loop.time() + duration
    while loop.time() < end:
        t0 = loop.time()
        await asyncio.sleep({KERNEL_TICK_S})
        lags.append(loop.time() - t0 - {KERNEL_TICK_S})
    print(" ".join(f"{{x * 1e3:.3f}}" for x in lags))
asyncio.run(main(float(sys.argv[1])))
"""


def measure_kernel(duration: float = float(os.environ.get("QL_STALL_S", 75.0)), rate: float = 10_000.0, warmup: float = 5.0) -> dict:
    """Loop lag of the kernel with the app open (see the module docstring); ``duration``
    covers one minute boundary (the Monitor's 24 h reference prices are looked up again then)."""
    tmp = Path(tempfile.mkdtemp(prefix="qlkstall-"))
    store = tmp / "store"
    env = {**os.environ, "PYTHONPATH": str(HERE), "QUANTLAB_LOG_LEVEL": "WARNING"}
    _seed_history(store)
    _rules(store)
    sim = Sim("--source", "synthetic", "--symbols", ",".join(SYMBOLS), "--rate", str(rate), "--start-now", env=env)
    rec = None
    try:
        rec = _start_recorder(store, sim, env)
        logging.getLogger("quantlab").setLevel(logging.ERROR)
        # the same sampler on an empty loop in its own process, meanwhile: what the machine's
        # load alone costs (a process waiting for a core) at the same moments
        idle = subprocess.Popen([sys.executable, "-c", IDLE_SAMPLER, str(duration)], stdout=subprocess.PIPE,
                                text=True)
        m = asyncio.run(_kernel(store, duration, warmup))
        m["idle_ms"] = np.array(idle.communicate(timeout=60)[0].split(), dtype=float)
        lags, idle_ms = m["lags_ms"], m["idle_ms"]
        load = os.getloadavg()
        log(f"kernel: {len(lags)} samples, updates={m['updates']} errors={m['errors']} paused={m['paused']} "
            f"ticks={m['ticks']} p50={np.percentile(lags, 50):.1f}ms p99={np.percentile(lags, 99):.1f}ms "
            f"max={lags.max():.1f}ms load={load[0]:.1f}/{load[1]:.1f}; empty loop meanwhile: "
            f"p50={np.percentile(idle_ms, 50):.1f}ms p99={np.percentile(idle_ms, 99):.1f}ms max={idle_ms.max():.1f}ms")
        return m
    finally:
        if rec is not None:
            rec.terminate()
            try:
                rec.wait(30)
            except subprocess.TimeoutExpired:
                rec.kill()
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


def kernel_rows(k: dict, label: str = "") -> list[Row]:
    lags = k["lags_ms"]
    what = f"kernel loop stall{label}, app open (Monitor, alerts), 10 ms sampler"
    return [
        Row("loop stall", f"{what}: p50", float(np.percentile(lags, 50)), "ms"),
        Row("loop stall", f"{what}: p99", float(np.percentile(lags, 99)), "ms", goal="< 50 ms"),
        Row("loop stall", f"{what}: max", float(lags.max()), "ms"),
        Row("loop stall", "the same sampler on an empty loop in another process meanwhile (machine load): p99",
            float(np.percentile(k["idle_ms"], 99)), "ms"),
    ]


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
        *kernel_rows(measure_kernel(duration=40.0 if quick else 75.0, rate=rate)),
    ]


if __name__ == "__main__":
    os.environ.setdefault("QUANTLAB_LOG_LEVEL", "WARNING")
    t0 = time.perf_counter()
    rows = kernel_rows(measure_kernel()) if "--kernel" in sys.argv else run(quick="--quick" in sys.argv)
    for r in rows:
        print(r)
    log(f"{time.perf_counter() - t0:.0f} s")
