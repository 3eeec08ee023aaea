"""Imported klines (official data.binance.vision kline files), one HDF5 file per symbol and interval.

``<store>/klines/<SYMBOL>/<interval>.h5`` (``1m.h5``, ``1h.h5``; months ``1mo.h5``) holds 1-D datasets (times int64 ns)::

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

from quantlab.errors import LayoutError, StoreCorruptError
from quantlab.store.bars import Partials, partials_to_bars, reduce_partials
from quantlab.timeframes import Timeframe, parse_timeframe
from quantlab.timestamps import in_window

_DAY_NS = 86_400 * 1_000_000_000

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


def kline_file_name(interval: Timeframe) -> str:
    """File name of one interval: ``1m.h5``, ``1h.h5``; months are ``1mo.h5`` so that a
    case-insensitive file system never confuses a month with a minute."""
    return f"{interval.months}mo.h5" if interval.is_calendar else f"{interval.text}.h5"


def interval_files(folder: Path) -> dict[str, Path]:
    """{'1m': path, '1h': path, '1M': path} for one symbol's kline folder (canonical names)."""
    if not folder.is_dir():
        return {}
    out = {}
    for p in folder.glob("*.h5"):
        try:
            out[parse_timeframe(p.stem).text] = p
        except ValueError:
            continue
    return out


def read_klines(path: Path, columns: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """The kline columns of ``path`` (all of them, or ``columns``)."""
    names = [name for name, _ in KLINE_COLUMNS] if columns is None else list(columns)
    try:
        with h5py.File(path, "r") as f:
            return {name: f[name][:] for name in names}
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


def nests(interval: Timeframe, tf: Timeframe) -> bool:
    """True when every kline of ``interval`` lies inside one bar of ``tf`` (so bars of
    ``tf`` can be built from those klines): 1m, 1h, 1d klines make 1h, 1d, 1w or 1M bars;
    1w klines make no month bars (a week can straddle two months)."""
    if tf.is_calendar:
        return (interval.is_calendar and tf.months % interval.months == 0) or (
            not interval.is_calendar and _DAY_NS % interval.step_ns == 0)
    if interval.is_calendar:
        return False
    offset = int(tf.bucket_open(np.zeros(1, np.int64))[0])  # 0, or Monday 1970-01-05 for weeks
    return tf.step_ns % interval.step_ns == 0 and offset % interval.step_ns == 0


def kline_partials(k: dict[str, np.ndarray], tf: Timeframe) -> Partials:
    """Kline rows as partial bars of ``tf`` (one kline = a bar of its trades)."""
    t = np.asarray(k["open_time"], dtype=np.int64)
    return reduce_partials({
        "bucket": tf.bucket(t), "open": k["open"], "open_t": t, "high": k["high"], "low": k["low"],
        "close": k["close"], "close_t": np.asarray(k["close_time"], dtype=np.int64),
        "volume": k["volume"], "notional": k["quote_volume"],
        "trades": np.asarray(k["trades"], dtype=np.int64),
    })


def klines_to_bars(k: dict[str, np.ndarray], interval: Timeframe, tf: Timeframe,
                   start_ns: int | None, end_ns: int | None) -> pd.DataFrame:
    """Kline rows with ``start_ns <= open_time < end_ns`` -> the bar frame (open high low close
    volume vwap trades) at ``tf``; ``interval`` must nest in ``tf`` (:func:`nests`)."""
    if not nests(interval, tf):
        raise ValueError(f"timeframe: klines at {interval} cannot make {tf} bars; "
                         f"ask for {interval} or a multiple of it")
    sel = in_window(k["open_time"], start_ns, end_ns)
    return partials_to_bars(kline_partials({name: v[sel] for name, v in k.items()}, tf), tf)


def check_spacing(k: dict[str, np.ndarray], interval: Timeframe, where: str) -> None:
    """Refuse kline rows that are not ``interval`` klines: each row must open on the
    interval's grid and close just before the next interval opens (Binance's close time is
    the open of the next kline minus 1 ms, or 1 µs in µs files). One line naming both."""
    t = np.asarray(k["open_time"], dtype=np.int64)
    if not len(t):
        return
    close = np.asarray(k["close_time"], dtype=np.int64)
    end = interval.end_ns(t)
    ok = (interval.floor_ns(t) == t) & (close < end) & (close >= end - 1_000_000)
    if ok.all():
        return
    i = int(np.flatnonzero(~ok)[0])
    span = int(close[i] - t[i]) + 1
    if len(t) > 1:
        d = np.diff(t)
        d = d[d > 0]
        if len(d):
            span = int(np.median(d))
    seen = parse_timeframe(pd.Timedelta(span, "ns")).text if span > 0 else "unordered"
    meaning = " (one calendar month)" if interval.is_calendar else ""
    raise LayoutError(
        f"{where}: the name says {interval}{meaning} klines but the rows are {seen} apart "
        f"(row {i + 1} opens {pd.Timestamp(int(t[i]), tz='UTC')}); rename the file to its real interval"
    )
