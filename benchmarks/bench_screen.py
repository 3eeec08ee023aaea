"""All-pairs screen: serial vs LocalCluster(2 workers x 1 thread), per-pair cost, cluster sizing.

Full: 100 symbols x 10,000 1m bars (4,950 pairs). Quick: 40 symbols x 3,000 bars.
The reference for the per-pair cost is statsmodels ``coint(maxlag=4, autolag=None)`` on
both directions of a sample of pairs, timed in the same run. Serial and 2-worker runs
alternate (so both meet the same load on a shared machine) and the table gives the best
of each with the range seen; the kernel's CPU time per pair (process time, insensitive to
other processes) is compared with the block-numpy kernel it replaced.
"""

from __future__ import annotations

import math
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
    screen(closes, progress=False)  # compile / load the kernel
    serial_runs: list[float] = []
    dask_runs: list[float] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # distributed's own startup chatter
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            screen(closes, client=client, progress=False)  # warm the workers' imports
            for _ in range(repeat):
                serial_runs.append(_timed(lambda: screen(closes, progress=False)))
                t0 = time.perf_counter()
                got = screen(closes, client=client, progress=False)
                dask_runs.append(time.perf_counter() - t0)
    serial, dask2 = min(serial_runs), min(dask_runs)
    want = screen(closes, progress=False)
    identical = bool(got.equals(want))

    logp = np.log(closes.to_numpy().T)
    rng = np.random.default_rng(0)
    sample = rng.choice(pairs, size=10 if quick else 20, replace=False)
    ii, jj = np.triu_indices(k, 1)

    def reference():
        for p in sample:
            coint(logp[ii[p]], logp[jj[p]], maxlag=DEFAULT_LAG, autolag=None)
            coint(logp[jj[p]], logp[ii[p]], maxlag=DEFAULT_LAG, autolag=None)

    ref_pair = best_of(reference, 2) / len(sample)
    our_pair = serial / pairs
    speedup = serial / dask2
    ratios = sorted(a / b for a, b in zip(serial_runs, dask_runs, strict=True))
    fused_cpu, numpy_cpu = _kernel_cpu(logp, ii, jj, 300 if quick else 1000)

    # Extrapolation: the kernel is linear in bars; a cluster of C cores runs at the
    # measured per-core efficiency (speedup / 2 of the 2-core LocalCluster).
    cpu = our_pair / n * TARGET_BARS * (TARGET_SYMBOLS * (TARGET_SYMBOLS - 1) // 2)
    efficiency = min(1.0, speedup / 2.0)
    cores = math.ceil(cpu / (TARGET_SECONDS * efficiency))
    matrix_gb = TARGET_SYMBOLS * TARGET_BARS * 8 / 1e9
    size = f"{k} sym x {n:,} bars"
    return [
        Row(AREA, f"serial, {size} ({pairs:,} pairs)", serial, "s", ref_pair * pairs,
            ref_pair * pairs / serial, "statsmodels coint per pair as reference"),
        Row(AREA, f"LocalCluster(2 workers x 1 thread), {size}", dask2, "s", serial, speedup,
            f">= 1.6x on 2 cores; serial {min(serial_runs):.2f}-{max(serial_runs):.2f} s, "
            f"2 workers {min(dask_runs):.2f}-{max(dask_runs):.2f} s, paired runs "
            f"{ratios[0]:.2f}-{ratios[-1]:.2f}x; identical to serial: {identical}"),
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


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


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
