"""All-pairs screen: serial vs ``workers=2`` (2 threads), per-pair cost, cluster sizing.

Full: 100 symbols x 10,000 1m bars (4,950 pairs). Quick: 40 symbols x 3,000 bars.
The reference for the per-pair cost is statsmodels ``coint(maxlag=4, autolag=None)`` on
both directions of a sample of pairs, timed in the same run. Serial and ``workers=2`` runs
alternate (so both meet the same load on a shared machine); the table gives the best of
each with the range seen and the 1-minute load average at each run. The ``workers=2`` row
times exactly ``screen(closes, workers=2)``: its thread pool is started and stopped inside
the call. Wall times on a shared machine depend on the load, so a CPU row gives what the
same runs cost in CPU time (insensitive to other processes): the serial CPU, and for
``workers=2`` the calling thread's CPU (the serial part) plus half the pool threads' CPU,
the wall time the run takes on two otherwise idle cores. A ``client=`` row times a
LocalCluster of 2 single-threaded worker processes for comparison.
"""

from __future__ import annotations

import math
import os
import time
import warnings

from _table import Row, best_of

AREA = "screen"
TARGET_SYMBOLS = 500
TARGET_BARS = 365 * 24 * 60  # one year of 1m bars
TARGET_SECONDS = 600.0


def run(quick: bool = False) -> list[Row]:
    import numpy as np
    from distributed import Client, LocalCluster
    from statsmodels.tsa.stattools import coint

    from quantlab.screen import screen
    from quantlab.screen.core import DEFAULT_LAG
    from quantlab.screen.synthetic import planted_universe

    k, n = (40, 3000) if quick else (100, 10_000)
    closes, _ = planted_universe(n_symbols=k, n_bars=n, n_pairs=5, seed=7)
    pairs = k * (k - 1) // 2
    repeat = 2 if quick else 5
    want = screen(closes, progress=False)  # compile / load the kernel
    screen(closes, workers=2, progress=False)
    serial, threads = _Runs(), _Runs()
    identical = True
    for _ in range(repeat):
        serial.time(lambda: screen(closes, progress=False))
        got = threads.time(lambda: screen(closes, workers=2, progress=False))
        identical &= bool(got.equals(want))
    ratios = sorted(a / b for a, b in zip(serial.wall, threads.wall, strict=True))
    speedup = serial.best / threads.best
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # distributed's own startup chatter
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            screen(closes, client=client, progress=False)  # warm the workers' imports
            procs = best_of(lambda: screen(closes, client=client, progress=False), repeat)
            identical &= bool(screen(closes, client=client, progress=False).equals(want))

    logp = np.log(closes.to_numpy().T)
    rng = np.random.default_rng(0)
    sample = rng.choice(pairs, size=10 if quick else 20, replace=False)
    ii, jj = np.triu_indices(k, 1)

    def reference():
        for p in sample:
            coint(logp[ii[p]], logp[jj[p]], maxlag=DEFAULT_LAG, autolag=None)
            coint(logp[jj[p]], logp[ii[p]], maxlag=DEFAULT_LAG, autolag=None)

    ref_pair = best_of(reference, 2) / len(sample)
    our_pair = serial.best / pairs
    fused_cpu, numpy_cpu = _kernel_cpu(logp, ii, jj, 300 if quick else 1000)
    serial_cpu = min(serial.cpu)
    main_cpu = min(threads.main)
    pool_cpu = min(c - m for c, m in zip(threads.cpu, threads.main, strict=True))
    two_idle_cores = main_cpu + pool_cpu / 2

    # Extrapolation: the kernel is linear in bars; a cluster of C cores runs at the
    # measured per-core efficiency (speedup / 2 of the two threads).
    cpu = our_pair / n * TARGET_BARS * (TARGET_SYMBOLS * (TARGET_SYMBOLS - 1) // 2)
    efficiency = min(1.0, speedup / 2.0)
    cores = math.ceil(cpu / (TARGET_SECONDS * efficiency))
    matrix_gb = TARGET_SYMBOLS * TARGET_BARS * 8 / 1e9
    size = f"{k} sym x {n:,} bars"
    return [
        Row(AREA, f"serial, {size} ({pairs:,} pairs)", serial.best, "s", ref_pair * pairs,
            ref_pair * pairs / serial.best, "statsmodels coint per pair as reference"),
        Row(AREA, f"workers=2 (2 threads), {size}", threads.best, "s", serial.best, speedup,
            f">= 1.6x on 2 cores; serial {serial.range()} s, workers=2 {threads.range()} s, "
            f"paired runs {ratios[0]:.2f}-{ratios[-1]:.2f}x; load avg {serial.loads()}; "
            f"identical to serial: {identical}"),
        Row(AREA, f"workers=2 on 2 idle cores, from CPU time, {size}", two_idle_cores, "s",
            serial_cpu, serial_cpu / two_idle_cores,
            f"serial CPU {serial_cpu:.3f} s; workers=2: calling thread {main_cpu:.3f} s + "
            f"pool {pool_cpu:.3f} s / 2 (insensitive to load)"),
        Row(AREA, f"client=LocalCluster(2 processes x 1 thread), {size}", procs, "s",
            serial.best, serial.best / procs, "pickles the matrix to each worker"),
        Row(AREA, f"kernel CPU per pair, both directions, {n:,} bars", fused_cpu * 1e6,
            "us/pair", numpy_cpu * 1e6, numpy_cpu / fused_cpu,
            "fused numba kernel vs the block-numpy kernel (process time)"),
        Row(AREA, f"per-pair cost, both directions, {n:,} bars", our_pair * 1e6, "us/pair",
            ref_pair * 1e6, ref_pair / our_pair, "statsmodels coint(maxlag=4) x2"),
        Row(AREA, f"cores for {TARGET_SYMBOLS} sym x 1y 1m in {TARGET_SECONDS / 60:.0f} min",
            float(cores), "cores", None, None,
            f"{cpu / 3600:,.1f} CPU-h at {efficiency:.0%} efficiency; "
            f"{matrix_gb:.1f} GB matrix per worker"),
    ]


class _Runs:
    """Wall, process CPU and calling-thread CPU seconds of repeated runs, with the load."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.main: list[float] = []
        self.load: list[float] = []

    def time(self, fn):
        self.load.append(os.getloadavg()[0])
        w0, c0, m0 = time.perf_counter(), time.process_time(), time.thread_time()
        out = fn()
        self.wall.append(time.perf_counter() - w0)
        self.cpu.append(time.process_time() - c0)
        self.main.append(time.thread_time() - m0)
        return out

    @property
    def best(self) -> float:
        return min(self.wall)

    def range(self) -> str:
        return f"{min(self.wall):.2f}-{max(self.wall):.2f}"

    def loads(self) -> str:
        return f"{min(self.load):.1f}-{max(self.load):.1f}"


def _kernel_cpu(logp, ii, jj, pairs: int) -> tuple[float, float]:
    """CPU seconds per pair of the fused kernel and of the block-numpy kernel."""
    import numpy as np

    from quantlab.screen.core import DEFAULT_LAG, eg_block, eg_block_numpy

    z = np.ascontiguousarray(logp)  # (symbols, bars)
    ii, jj = ii[:pairs], jj[:pairs]
    eg_block(z, ii[:2], jj[:2], DEFAULT_LAG)
    t0 = time.process_time()
    eg_block(z, ii, jj, DEFAULT_LAG)
    fused = (time.process_time() - t0) / len(ii)
    t0 = time.process_time()
    for s in range(0, len(ii), 64):  # the screen's block size at 10k bars
        eg_block_numpy(z, ii[s:s + 64], jj[s:s + 64], DEFAULT_LAG)
    return fused, (time.process_time() - t0) / len(ii)


if __name__ == "__main__":
    import sys

    for row in run(quick="--quick" in sys.argv):
        print(row)
