"""Imported klines (official data.binance.vision kline files), one HDF5 file per symbol and interval.

``<store>/klines/<SYMBOL>/<interval>.h5`` holds 1-D datasets (times int64 ns)::

    open_time, open, high, low, close, volume, close_time, quote_volume, trades,
    taker_buy_base, taker_buy_quote

keyed and sorted by ``open_time``. Files are small and rewritten whole on import
(temp file + atomic rename), so readers never see a half-written file.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from quantlab.errors import StoreCorruptError

KLINE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("open_time", "i8"),
    ("open", "f8"),
    ("high", "f8"),
    ("low", "f8"),
    ("close", "f8"),
    ("volume", "f8"),
    ("close_time", "i8"),
    ("quote_volume", "f8"),
    ("trades", "i8"),
    ("taker_buy_base", "f8"),
    ("taker_buy_quote", "f8"),
)


def interval_files(folder: Path) -> dict[str, Path]:
    """{'1m': path, '1h': path} for one symbol's kline folder."""
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in folder.glob("*.h5")}


def read_klines(path: Path) -> dict[str, np.ndarray]:
    try:
        with h5py.File(path, "r") as f:
            return {name: f[name][:] for name, _ in KLINE_COLUMNS}
    except (OSError, KeyError) as exc:
        raise StoreCorruptError(f"cannot read klines file {path}: {exc}") from exc


def merge_klines(path: Path, new: dict[str, np.ndarray]) -> int:
    """Merge rows into ``path`` by open_time (rows already stored win); returns rows added."""
    old = read_klines(path) if path.exists() else None
    if old is not None and len(old["open_time"]):
        fresh = ~np.isin(new["open_time"], old["open_time"])
        new = {k: v[fresh] for k, v in new.items()}
        if not len(new["open_time"]):
            return 0
        merged = {k: np.concatenate([old[k], new[k]]) for k in old}
    else:
        merged = new
    order = np.argsort(merged["open_time"], kind="stable")
    ot = merged["open_time"][order]
    keep = np.r_[True, ot[1:] != ot[:-1]]
    merged = {k: v[order][keep] for k, v in merged.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with h5py.File(tmp, "w") as f:
        for name, dt in KLINE_COLUMNS:
            f.create_dataset(name, data=merged[name].astype(dt), compression="lzf", shuffle=True)
    os.chmod(tmp, os.stat(tmp).st_mode & ~0o222)  # read-only on disk; replaced whole, never edited
    os.replace(tmp, path)
    return int(len(new["open_time"]))


def klines_to_bars(k: dict[str, np.ndarray], interval_ns: int, tf_ns: int,
                   start_ns: int | None, end_ns: int | None) -> pd.DataFrame:
    """Kline rows -> the bar frame (open high low close volume vwap trades), resampled up
    to ``tf_ns`` when it is a multiple of the stored interval."""
    if tf_ns % interval_ns:
        raise ValueError(
            f"timeframe: klines are stored at {interval_ns // 1_000_000_000}s; "
            "ask for that interval or a multiple of it"
        )
    t = k["open_time"]
    sel = np.ones(len(t), dtype=bool)
    if start_ns is not None:
        sel &= t >= start_ns
    if end_ns is not None:
        sel &= t < end_ns
    k = {name: v[sel] for name, v in k.items()}
    bucket = k["open_time"] // tf_ns
    if len(bucket) == 0:
        starts = np.empty(0, dtype=np.int64)
    else:
        starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(bucket)].astype(np.int64) if len(starts) else starts
    if len(starts):
        vol = np.add.reduceat(k["volume"], starts)
        quote = np.add.reduceat(k["quote_volume"], starts)
        close = k["close"][ends - 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            vwap = np.where(vol > 0, quote / np.where(vol > 0, vol, 1.0), close)
        data = {
            "open": k["open"][starts],
            "high": np.maximum.reduceat(k["high"], starts),
            "low": np.minimum.reduceat(k["low"], starts),
            "close": close,
            "volume": vol,
            "vwap": vwap,
            "trades": np.add.reduceat(k["trades"], starts),
        }
        index_ns = bucket[starts] * tf_ns
    else:
        data = {c: np.empty(0) for c in ("open", "high", "low", "close", "volume", "vwap")}
        data["trades"] = np.empty(0, dtype="i8")
        index_ns = np.empty(0, dtype="i8")
    index = pd.DatetimeIndex(index_ns.view("M8[ns]"), name="time").tz_localize("UTC")
    return pd.DataFrame(data, index=index)
