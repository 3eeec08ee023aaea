"""Live runtime: follower latency (receipt by the recorder -> visible in a kernel's frame) and
resident memory of the following process over 10 minutes at 2,000 ticks/s (quick: 40 s)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from _table import Row

from quantlab import Lab
from quantlab.store import writer_pid


def run(quick: bool = False) -> list[Row]:
    duration = 40 if quick else 600
    tmp = Path(tempfile.mkdtemp(prefix="qllive-"))
    store = tmp / "store"
    rec = subprocess.Popen([sys.executable, "-m", "quantlab", "--log-level", "WARNING", "record",
                            "--store", str(store), "--symbols", "BTCUSDT,ETHUSDT", "--source", "demo",
                            "--demo-rate", "2000", "--no-alerts"])
    me = psutil.Process(os.getpid())
    rows: list[Row] = []
    try:
        deadline = time.monotonic() + 30
        while writer_pid(store) != rec.pid and time.monotonic() < deadline:
            time.sleep(0.05)  # the 2,000/s recorder owns the store before the Lab looks
        if writer_pid(store) != rec.pid:
            raise RuntimeError(f"the benchmark recorder did not start (exit code {rec.poll()})")
        lab = Lab(["BTCUSDT", "ETHUSDT"], store=store, source="demo", ring_size=200_000).start()
        lab.wait_ready(60, min_ticks=100)
        t0 = time.monotonic()
        samples = []
        while time.monotonic() - t0 < duration:
            time.sleep(5)
            samples.append((time.monotonic() - t0, me.memory_info().rss / 2**20))
        lat = lab.follow_latency.percentiles_ms()
        ticks = sum(lab._rings[s].total for s in lab.symbols)
        rate = ticks / (time.monotonic() - t0)
        lab.stop()
        rows.append(Row("live", f"follower latency p50 (recorder receipt -> kernel frame), {rate:,.0f} ticks/s",
                        lat["p50"], "ms"))
        rows.append(Row("live", "follower latency p99", lat["p99"], "ms", goal="< 1000 ms"))
        # the ring keeps 2 x ring_size rows of storage per symbol, touched lazily: memory
        # grows until that storage has been written once, then must stay flat
        per_symbol_rate = rate / len(lab.symbols)
        filled_at = 2 * lab.ring_size / per_symbol_rate
        early = samples[min(len(samples) - 1, 11)]
        settled = next(((t, m) for t, m in samples if t >= filled_at + 10), None)
        last = samples[-1]
        rows.append(Row("live", f"RSS of the following process at t={early[0]:.0f} s", early[1], "MiB"))
        rows.append(Row("live", f"RSS at t={last[0]:.0f} s (ring {lab.ring_size:,} ticks x {len(lab.symbols)} symbols)",
                        last[1], "MiB"))
        if settled is not None and settled[0] < last[0]:
            rows.append(Row("live", f"RSS growth once the ring's storage is full (t={settled[0]:.0f} s -> {last[0]:.0f} s)",
                            last[1] - settled[1], "MiB", goal="flat (~0)"))
    finally:
        rec.terminate()
        rec.wait(20)
        shutil.rmtree(tmp, ignore_errors=True)
    return rows
