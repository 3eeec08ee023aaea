"""Store: append rate, and a 5M-row time-range read vs pandas.read_csv of the official CSV."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _table import Row, best_of

from quantlab.store import TickStore

T0 = 1_723_161_255_000_000_000


def _batch(lo: int, n: int, rng) -> dict:
    ids = np.arange(lo, lo + n, dtype="i8")
    return {
        "trade_id": ids, "time": T0 + ids * 1_000_000,
        "price": np.round(60000 + rng.standard_normal(n).cumsum(), 2),
        "qty": np.round(rng.exponential(0.05, n) + 1e-5, 5), "is_buyer_maker": rng.random(n) < 0.5,
    }


def run(quick: bool = False) -> list[Row]:
    rng = np.random.default_rng(0)
    n_read = 1_000_000 if quick else 5_000_000
    tmp = Path(tempfile.mkdtemp(prefix="qlbench-"))
    rows: list[Row] = []
    try:
        # append rate: recorder-sized batches (flushed each time) and import-sized batches
        for batch_rows, total in ((1_000, 200_000 if quick else 1_000_000), (100_000, n_read)):
            path = tmp / f"append{batch_rows}"
            with TickStore(path, mode="a") as st:
                batches = [_batch(i, batch_rows, rng) for i in range(0, total, batch_rows)]
                t = time.perf_counter()
                for b in batches:
                    st.append("BTCUSDT", b)  # flushed: durable and visible on return
                dt = time.perf_counter() - t
            rows.append(Row("store", f"append, {batch_rows:,} rows/batch, flushed", total / dt, "rows/s"))
        # the read: a time range covering n_read rows of a larger symbol
        path = tmp / f"append{100_000}"
        csv = tmp / "BTCUSDT-trades-bench.csv"
        st = TickStore(path)
        full = st.read("BTCUSDT")
        off = full[["trade_id", "price", "qty"]].copy()
        off["quote"] = (off["price"] * off["qty"]).round(8)
        off["time"] = full.index.asi8 // 1_000_000
        off["m"] = full["is_buyer_maker"]
        off["best"] = True
        off.to_csv(csv, header=False, index=False)
        start, end = full.index[0], full.index[-1] + pd.Timedelta("1ms")
        t_store = best_of(lambda: st.read("BTCUSDT", start, end))
        assert len(st.read("BTCUSDT", start, end)) == n_read
        t_csv = best_of(lambda: pd.read_csv(csv, header=None), repeat=2)
        rows.append(Row("store", f"time-range read of {n_read:,} rows (read_csv of the official CSV = ref)",
                        t_store, "s", reference=t_csv, ratio=t_csv / t_store, goal=">= 20x"))
        mid = full.index[len(full) // 2]
        t_slice = best_of(lambda: st.read("BTCUSDT", mid, mid + pd.Timedelta("1min")))
        rows.append(Row("store", "1-minute range read from the middle (60k rows)", t_slice * 1e3, "ms"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows
