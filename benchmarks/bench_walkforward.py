"""Walk-forward: serial vs LocalCluster(2 workers x 1 thread), per-fold cost.

Full: 100 symbols x 90 days of 1m bars (129,600 bars each), formation 30D, weekly folds
(trading 7D; 9 folds, the last one 4 days). Quick: 30 symbols x 20 days, formation 7D,
trading 2D. Each fold screens every pair on its formation bars (4,950 pairs x 43,200 bars
in the full run), applies the default Selection, fits and trades the chosen pairs.
The reference of the 2-worker row is the serial run; the per-fold row compares a fold
with the screen of its formation window alone (the part that dominates).
"""

from __future__ import annotations

import time
import warnings

from _table import Row

AREA = "walk-forward"


def run(quick: bool = False) -> list[Row]:
    import pandas as pd
    from distributed import Client, LocalCluster

    from quantlab.research import walk_forward
    from quantlab.screen import screen
    from quantlab.screen.synthetic import planted_universe

    k, days, form, trade = (30, 20, "7D", "2D") if quick else (100, 90, "30D", "7D")
    closes, _ = planted_universe(n_symbols=k, n_bars=days * 1440, n_pairs=5, seed=3)
    args = dict(formation=form, trading=trade, progress=False)
    # a formation and 4 trading windows: every worker meets a fold (imports, compiled kernels)
    small = closes.iloc[: int((pd.Timedelta(form) + 4 * pd.Timedelta(trade)) / pd.Timedelta("1min"))]
    walk_forward(small, **args)  # compile / load the kernels
    t0, c0 = time.perf_counter(), time.process_time()
    serial = walk_forward(closes, **args)
    t_serial, cpu_serial = time.perf_counter() - t0, time.process_time() - c0
    n_folds = len(serial.schedule)
    window = closes.iloc[: int(serial.schedule["mid"].iloc[0])]
    t0 = time.perf_counter()
    screen(window, progress=False)
    t_screen = time.perf_counter() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # distributed's own startup chatter
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            walk_forward(small, client=client, **args)  # warm both workers
            # CPU seconds of the workers and of this process: on a shared machine the wall
            # time says how busy the neighbours were; the CPU time is the work done
            w0 = sum(client.run(time.process_time).values())
            t0, c0 = time.perf_counter(), time.process_time()
            dask2 = walk_forward(closes, client=client, **args)
            t_dask = time.perf_counter() - t0
            cpu_dask = (sum(client.run(time.process_time).values()) - w0
                        + time.process_time() - c0)
    identical = (dask2.folds.equals(serial.folds) and dask2.equity.equals(serial.equity)
                 and dask2.trades.equals(serial.trades))
    size = f"{k} sym x {days} d 1m ({len(closes):,} bars), {form}/{trade}"
    pairs = serial.stats["mean_pairs_per_fold"]
    return [
        Row(AREA, f"serial, {size}, {n_folds} folds", t_serial, "s", None, None,
            f"{pairs:.1f} pairs traded per fold"),
        Row(AREA, f"LocalCluster(2 workers x 1 thread), {size}", t_dask, "s", t_serial,
            t_serial / t_dask, f"folds as tasks; identical to serial: {identical}; CPU "
            f"{cpu_dask:.1f} s (workers + caller) vs {cpu_serial:.1f} s serial"),
        Row(AREA, f"per fold (serial), {k * (k - 1) // 2:,} pairs screened", t_serial / n_folds,
            "s/fold", t_screen, t_screen / (t_serial / n_folds),
            "reference: the screen of one formation window alone"),
    ]


if __name__ == "__main__":
    import sys

    for row in run(quick="--quick" in sys.argv):
        print(row)
