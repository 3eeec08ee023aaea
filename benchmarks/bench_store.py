"""Store: quantlab against the stores quants use, on the same ticks, in one run.

5M ticks of one symbol (quick: 500k, labelled as smoke figures): full read and a middle-10 %
time-range read into a pandas DataFrame, in two regimes --

* *back to back*: the same read repeated, the previous result freed just before (allocators
  hand the same memory back);
* *fresh memory*: before each read the previous result is freed and ``malloc_trim(0)`` returns
  freed memory to the OS, so a result that comes from the C heap must be faulted in again
  (pyarrow, polars and ArcticDB keep their own pools, which is part of what is measured);

appends in 1,000-row batches (each one made durable and visible) and 100,000-row batches; size
on disk. Anchors: ArcticDB (LMDB backend; default threads and one CPU + one I/O thread, each in
its own process because its thread pool is sized when it starts), Parquet via pyarrow
(uncompressed and zstd, row groups of 1M rows; filtered read; default and single-threaded),
polars and DuckDB on the same Parquet files, and numpy reading the raw column bytes (the
floor). Ratio = anchor / quantlab for times (>1: quantlab is faster), quantlab / anchor for
rates, anchor / quantlab for disk. Figures are the best of four runs (two interleaved passes of
two); the page cache is warm (every file was just written or read), which the table states.
The fsync policies are timed on the same appends (``TickStore(..., fsync=...)``), and the
100,000-row appends also through the path before 0.2 (every row into the active segment, then
again into the sealed one). ``--appends``: only the 100,000-row append rows, three rounds
interleaved with ArcticDB's.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

try:
    from _table import Row
except ImportError:  # the ArcticDB worker process needs no Row
    Row = None

T0 = 1_723_161_255_000_000_000
SYMBOL = "BTCUSDT"
COLS = ("trade_id", "price", "qty", "is_buyer_maker")
_libc = ctypes.CDLL("libc.so.6") if sys.platform.startswith("linux") else None


def _fresh() -> None:
    gc.collect()
    if _libc is not None:
        _libc.malloc_trim(0)


def _timed(fn, repeat: int, fresh: bool) -> float:
    """Best seconds of ``repeat`` calls; the previous result is freed before each call."""
    best = float("inf")
    result = None
    for _ in range(repeat):
        result = None
        if fresh:
            _fresh()
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    del result
    return best


def make_ticks(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` trades of one symbol, about 3 per millisecond, BTC-like prices and sizes."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, n + 1, dtype="i8") + 3_000_000_000
    return {
        "trade_id": ids,
        "time": T0 + np.cumsum(rng.integers(0, 700, n)).astype("i8") * 1000,  # whole microseconds
        "price": np.round(60000 + rng.standard_normal(n).cumsum() * 0.5, 2),
        "qty": np.round(rng.exponential(0.05, n) + 1e-5, 5),
        "is_buyer_maker": rng.random(n) < 0.5,
    }


def _frame(ticks: dict) -> pd.DataFrame:
    index = pd.DatetimeIndex(ticks["time"].view("M8[ns]"), name="time").tz_localize("UTC")
    return pd.DataFrame({c: ticks[c] for c in COLS}, index=index)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# ---------------------------------------------------------------- ArcticDB (own process)
def arctic_worker(folder: str, n_small: int, repeat: int, appends_only: bool = False) -> dict:
    """Build an LMDB library from the ticks in ``folder``, time it, return the figures."""
    import arcticdb as adb

    ticks = {k: np.load(Path(folder) / f"{k}.npy") for k in ("time", *COLS)}
    frame = _frame(ticks)
    n = len(frame)
    lo, hi = int(n * 0.45), int(n * 0.55)
    start, end = frame.index[lo], frame.index[hi]
    out = {}
    root = Path(folder) / f"arctic-{os.getpid()}"
    ac = adb.Arctic(f"lmdb://{root}?map_size=8GB")
    lib = ac.get_library("bench", create_if_missing=True)
    # appends, 1,000-row batches (each append is a new durable version)
    small = frame.iloc[:n_small]
    parts = [small.iloc[i:i + 1000] for i in range(0, n_small, 1000)]
    t0 = time.perf_counter()
    for p in parts:
        lib.append("small", p)
    out["append_1k"] = n_small / (time.perf_counter() - t0)
    parts = [frame.iloc[i:i + 100_000] for i in range(0, n, 100_000)]
    t0 = time.perf_counter()
    for p in parts:
        lib.append(SYMBOL, p)
    out["append_100k"] = n / (time.perf_counter() - t0)
    lib.delete("small")
    if appends_only:
        shutil.rmtree(root, ignore_errors=True)
        return out
    assert len(lib.read(SYMBOL).data) == n
    for fresh in (False, True):
        key = "fresh" if fresh else "b2b"
        out[f"full_{key}"] = _timed(lambda: lib.read(SYMBOL).data, repeat, fresh)
        out[f"range_{key}"] = _timed(lambda: lib.read(SYMBOL, date_range=(start, end - pd.Timedelta(1))).data,
                                     repeat, fresh)
    got = lib.read(SYMBOL, date_range=(start, end - pd.Timedelta(1))).data
    out["range_rows"] = len(got)
    out["disk"] = _size(root)
    return out


def _run_arctic(folder: Path, n_small: int, repeat: int, single: bool, appends_only: bool = False) -> dict | None:
    env = dict(os.environ)
    if single:
        env["ARCTICDB_VersionStore_NumCPUThreads_int"] = "1"
        env["ARCTICDB_VersionStore_NumIOThreads_int"] = "1"
    try:
        import arcticdb  # noqa: F401
    except ImportError:
        return None
    proc = subprocess.run([sys.executable, __file__, "--arctic", str(folder), str(n_small), str(repeat),
                           *(["appends"] if appends_only else [])],
                          env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode:
        print(proc.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- the run
def _append_100k(path: Path, ticks: dict, two_step: bool = False) -> float:
    """Rows/s appending ``ticks`` in 100,000-row batches, each flushed (``fsync="interval"``).
    ``two_step``: the path before 0.2, every row into the active segment (1,024-row chunks)
    and written again when it is sealed."""
    from quantlab.store import TickStore
    from quantlab.store import segments as seg

    n = len(ticks["trade_id"])
    chunking = seg.active_chunk_rows
    if two_step:
        seg.active_chunk_rows = lambda _rows: seg.ACTIVE_CHUNK_ROWS
    try:
        with TickStore(path, mode="a") as st:
            st.direct_seal = not two_step
            t0 = time.perf_counter()
            for i in range(0, n, 100_000):
                st.append(SYMBOL, {k: v[i:i + 100_000] for k, v in ticks.items()})
            took = time.perf_counter() - t0
    finally:
        seg.active_chunk_rows = chunking
        shutil.rmtree(path, ignore_errors=True)
    return n / took


def run_appends(n: int = 5_000_000, rounds: int = 3) -> None:
    """Only the 100,000-row append rows, interleaved: quantlab, its two-step path (before
    0.2) and ArcticDB (default threads), ``rounds`` times; prints each round and the ranges."""
    ticks = make_ticks(n)
    tmp = Path(tempfile.mkdtemp(prefix="qlbench-appends-"))
    got: dict[str, list[float]] = {}
    try:
        raw = tmp / "raw"
        raw.mkdir()
        for k in ("time", *COLS):
            np.save(raw / f"{k}.npy", ticks[k])
        for r in range(rounds):
            got.setdefault("quantlab", []).append(_append_100k(tmp / "ql", ticks))
            got.setdefault("quantlab two-step path (before 0.2)", []).append(
                _append_100k(tmp / "ql2", ticks, two_step=True))
            arctic = _run_arctic(raw, 1_000, 1, single=False, appends_only=True)
            if arctic is not None:
                got.setdefault("arcticdb lmdb", []).append(arctic["append_100k"])
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1] / 1e6:.2f}" for k, v in got.items())
                  + f" M rows/s; load {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for k, v in got.items():
        print(f"append, 100,000-row batches ({n:,} rows), {k}: {min(v) / 1e6:.2f}-{max(v) / 1e6:.2f} M rows/s")


def run(quick: bool = False) -> list[Row]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from quantlab.store import TickStore

    n = 500_000 if quick else 5_000_000
    n_small = 50_000 if quick else 200_000
    repeat = 2  # per pass; two interleaved passes
    smoke = " [smoke: 500k rows]" if quick else ""
    ticks = make_ticks(n)
    lo, hi = int(n * 0.45), int(n * 0.55)
    start_ns, end_ns = int(ticks["time"][lo]), int(ticks["time"][hi])
    start, end = pd.Timestamp(start_ns, tz="UTC"), pd.Timestamp(end_ns, tz="UTC")
    tmp = Path(tempfile.mkdtemp(prefix="qlbench-store-"))
    res: dict[str, dict[str, float]] = {}
    disk: dict[str, int] = {}
    try:
        # ---- quantlab: appends (flushed, the default durability), then reads
        ql = tmp / "ql"
        with TickStore(ql, mode="a") as st:
            small = {k: v[:n_small] for k, v in ticks.items()}
            t0 = time.perf_counter()
            for i in range(0, n_small, 1000):
                st.append("ETHUSDT", {k: v[i:i + 1000] for k, v in small.items()})
            a1k = n_small / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            for i in range(0, n, 100_000):
                st.append(SYMBOL, {k: v[i:i + 100_000] for k, v in ticks.items()})
            a100k = n / (time.perf_counter() - t0)
        shutil.rmtree(ql / "trades" / "ETHUSDT")
        res["quantlab"] = {"append_1k": a1k, "append_100k": a100k}
        res["quantlab two-step path (before 0.2)"] = {"append_100k": _append_100k(tmp / "ql-two-step", ticks,
                                                                                  two_step=True)}
        # the same appends under each fsync policy (the default, "interval", is the row above)
        for policy in ("never", "seal", "always"):
            path = tmp / f"ql-fsync-{policy}"
            with TickStore(path, mode="a", fsync=policy) as st:
                rate = {}
                for batch_rows, total in ((1000, n_small), (100_000, n)):
                    t0 = time.perf_counter()
                    for i in range(0, total, batch_rows):
                        st.append(f"S{batch_rows}", {k: v[i:i + batch_rows] for k, v in ticks.items()})
                    rate[f"append_{batch_rows // 1000}k"] = total / (time.perf_counter() - t0)
            res[f"quantlab fsync={policy}"] = rate
            shutil.rmtree(path)
        disk["quantlab"] = _size(ql)
        for comp in ("blosc2-zstd", "lzf", "gzip"):
            path = tmp / f"ql-{comp}"
            with TickStore(path, mode="a", compression=comp) as st:
                t0 = time.perf_counter()
                for i in range(0, n, 100_000):
                    st.append(SYMBOL, {k: v[i:i + 100_000] for k, v in ticks.items()})
                res[f"quantlab {comp}"] = {"append_100k": n / (time.perf_counter() - t0)}
            disk[f"quantlab {comp}"] = _size(path)

        def ql_reader(path):
            st = TickStore(path)
            return (lambda: st.read(SYMBOL)), (lambda: st.read(SYMBOL, start, end))

        check = TickStore(ql).read(SYMBOL, start, end)
        assert len(check) == hi - lo and check["trade_id"].iloc[0] == ticks["trade_id"][lo]

        # ---- Parquet (pyarrow writes; pyarrow, polars, DuckDB read), numpy floor
        table = pa.Table.from_pandas(_frame(ticks), preserve_index=True)
        pq_files = {}
        for comp in ("none", "zstd"):
            p = tmp / f"ticks-{comp}.parquet"
            pq.write_table(table, p, compression=comp, row_group_size=1_000_000)
            pq_files[comp] = p
            disk[f"parquet {comp}"] = _size(p)
        del table
        raw = tmp / "raw"
        raw.mkdir()
        for k in ("time", *COLS):
            np.save(raw / f"{k}.npy", ticks[k])
        disk["raw columns (numpy)"] = _size(raw)

        readers = {"quantlab": ql_reader(ql)}
        for comp in ("blosc2-zstd", "lzf", "gzip"):
            readers[f"quantlab {comp}"] = ql_reader(tmp / f"ql-{comp}")
        import duckdb
        import polars as pl

        lo_ts = pd.Timestamp(start_ns, tz="UTC")
        hi_ts = pd.Timestamp(end_ns, tz="UTC")
        filt = [("time", ">=", lo_ts), ("time", "<", hi_ts)]
        for comp, p in pq_files.items():
            for threads in (True, False):
                tag = f"pyarrow {comp}" + ("" if threads else " 1 thread")
                readers[tag] = (
                    (lambda p=p, t=threads: pq.read_table(p, use_threads=t).to_pandas(use_threads=t)),
                    (lambda p=p, t=threads: pq.read_table(p, filters=filt, use_threads=t).to_pandas(use_threads=t)),
                )
        p = pq_files["zstd"]
        pl_lo, pl_hi = lo_ts.to_pydatetime(), hi_ts.to_pydatetime()
        readers["polars zstd (polars frame)"] = (
            lambda: pl.read_parquet(p),
            lambda: pl.scan_parquet(p).filter((pl.col("time") >= pl_lo) & (pl.col("time") < pl_hi)).collect(),
        )
        readers["polars zstd -> pandas"] = (
            lambda: pl.read_parquet(p).to_pandas(),
            lambda: pl.scan_parquet(p).filter((pl.col("time") >= pl_lo) & (pl.col("time") < pl_hi))
            .collect().to_pandas(),
        )
        con = duckdb.connect()
        readers["duckdb zstd -> pandas"] = (
            lambda: con.sql(f"select * from read_parquet('{p}')").df(),
            lambda: con.execute(f"select * from read_parquet('{p}') where time >= ? and time < ?",
                                [lo_ts.to_pydatetime(), hi_ts.to_pydatetime()]).df(),
        )

        def floor_full():
            return [np.load(raw / f"{k}.npy") for k in ("time", *COLS)]

        def floor_range():
            t = np.load(raw / "time.npy", mmap_mode="r")
            a, b = np.searchsorted(t, [start_ns, end_ns])
            return [np.array(np.load(raw / f"{k}.npy", mmap_mode="r")[a:b]) for k in ("time", *COLS)]

        readers["floor: numpy raw columns"] = (floor_full, floor_range)
        slow = ("quantlab lzf", "quantlab gzip", "duckdb zstd -> pandas")
        for fresh in (False, True):
            key = "fresh" if fresh else "b2b"
            for _ in range(2):  # two passes, interleaved, keep the best
                for name, (full, rng_) in readers.items():
                    r = res.setdefault(name, {})
                    for what, fn in (("full", full), ("range", rng_)):
                        k = f"{what}_{key}"
                        runs = 1 if name in slow else repeat
                        r[k] = min(r.get(k, float("inf")), _timed(fn, runs, fresh))
        # ---- ArcticDB, default threads and one thread, each in its own process
        for single in (False, True):
            got = _run_arctic(raw, n_small, repeat, single)
            if got is not None:
                name = "arcticdb lmdb" + (" 1 thread" if single else "")
                disk[name] = got.pop("disk")
                assert got.pop("range_rows") == hi - lo
                res[name] = got
        # ---- quantlab.closes(): 300 symbols x 1 month of 1m klines
        closes_s = _bench_closes(tmp / "closes", 60 if quick else 300, 7 if quick else 30)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _rows(res, disk, closes_s, n, n_small, smoke, quick)


def _bench_closes(path: Path, n_symbols: int, days: int) -> float:
    import quantlab
    from quantlab.store import TickStore

    rng = np.random.default_rng(1)
    n = days * 1440
    open_time = T0 // 60_000_000_000 * 60_000_000_000 + np.arange(n, dtype="i8") * 60_000_000_000
    names = [f"S{i:03d}USDT" for i in range(n_symbols)]
    with TickStore(path, mode="a") as st:
        for s in names:
            close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
            st.append_klines(s, "1m", {
                "open_time": open_time, "open": close, "high": close, "low": close, "close": close,
                "volume": np.ones(n), "close_time": open_time + 59_999_000_000, "quote_volume": close,
                "trades": np.ones(n, "i8"), "taker_buy_base": np.ones(n), "taker_buy_quote": close,
            })
    st = TickStore(path)
    got = quantlab.closes(st, names, "1m")
    assert got.shape == (n, n_symbols)
    return _timed(lambda: quantlab.closes(st, names, "1m"), 3, False)


def _rows(res, disk, closes_s, n, n_small, smoke, quick) -> list[Row]:
    rows: list[Row] = []
    q = res["quantlab"]
    floor = res["floor: numpy raw columns"]
    cache = "page cache warm"  # every file was just written, and read in the pass before
    pandas_anchors = [k for k in res if k.startswith(("pyarrow", "arcticdb")) or k.endswith("-> pandas")]
    regimes = (("b2b", "runs back to back"), ("fresh", "result in fresh memory"))
    for what, label, size in (("range", "range read, middle 10 %", n // 10), ("full", "full read", n)):
        for key, regime in regimes:
            k = f"{what}_{key}"
            head = f"{label} ({size:,} rows), {regime}, {cache}{smoke}"
            best = min((res[a][k], a) for a in pandas_anchors if k in res[a])
            goal = ("<= 2x floor" if what == "range" else f"<= 1.25x fastest pandas anchor ({best[1]})")
            rows.append(Row("store", f"{head}: quantlab (ref = floor)", q[k] * 1e3, "ms",
                            reference=floor[k] * 1e3, ratio=floor[k] / q[k], goal=goal))
            for name, r in res.items():
                if name == "quantlab" or k not in r:
                    continue
                rows.append(Row("store", f"{head}: {name} (ref = quantlab)", r[k] * 1e3, "ms",
                                reference=q[k] * 1e3, ratio=r[k] / q[k]))
    for key, label, total in (("append_1k", "append, 1,000-row batches, each durable+visible", n_small),
                              ("append_100k", "append, 100,000-row batches", n)):
        rows.append(Row("store", f"{label} ({total:,} rows){smoke}: quantlab (fsync=interval, default)", q[key] / 1e6, "M rows/s",
                        goal=">= ArcticDB"))
        for name, r in res.items():
            if name != "quantlab" and key in r:
                rows.append(Row("store", f"{label}{smoke}: {name} (ref = quantlab)", r[key] / 1e6,
                                "M rows/s", reference=q[key] / 1e6, ratio=q[key] / r[key]))
    rows.append(Row("store", f"disk, {n:,} ticks{smoke}: quantlab", disk["quantlab"] / 1e6, "MB"))
    pz = disk["parquet zstd"]
    for name, size in disk.items():
        if name != "quantlab":
            goal = "<= 1.2x parquet zstd" if name == "quantlab blosc2-zstd" else ""
            rows.append(Row("store", f"disk{smoke}: {name} (ref = quantlab)", size / 1e6, "MB",
                            reference=disk["quantlab"] / 1e6, ratio=size / disk["quantlab"], goal=goal))
    rows.append(Row("store", f"disk{smoke}: quantlab blosc2-zstd vs parquet zstd (ref)",
                    disk["quantlab blosc2-zstd"] / 1e6, "MB", reference=pz / 1e6,
                    ratio=pz / disk["quantlab blosc2-zstd"], goal="ratio >= 0.83x"))
    syms, days = (60, 7) if quick else (300, 30)
    rows.append(Row("store", f"quantlab.closes(): {syms} symbols x {days} days of 1m klines{smoke}",
                    closes_s * 1e3, "ms"))
    return rows


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--arctic":
        print(json.dumps(arctic_worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), "appends" in sys.argv[5:])))
    elif "--appends" in sys.argv:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        run_appends()
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        for row in run(quick="--quick" in sys.argv):
            print(row)
