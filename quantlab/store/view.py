"""``StoreView``: what a reader and the writer both answer about a store (ticks, bars, klines,
gaps, counters, info), read from the sealed segments plus the active one.

The two differ only in how they see a table's active segment: a reader through a SWMR handle
and a follower cursor (:class:`quantlab.store.reader.StoreReader`), the writer through the
segment it has open itself (:class:`quantlab.store.writer.StoreWriter`). Each supplies
:meth:`StoreView._active_batch` and :meth:`StoreView._active_after`.
"""

from __future__ import annotations

import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from quantlab.store import schema as seg_schema
from quantlab.store import segments as seg
from quantlab.store.bars import bars_from_arrays, combine_sources, reduce_partials
from quantlab.store.klines import interval_files, klines_to_bars, nests, read_klines
from quantlab.store.layout import LEGACY_SOURCE, Layout, read_json, schema_of, store_source
from quantlab.store.lock import writer_pid
from quantlab.store.rows import TickRows
from quantlab.store.schema import (
    SCHEMAS,
    TRADES,
    Batch,
    TableSchema,
    batch_len,
    concat,
    sort_unique,
    take,
    to_frame,
)
from quantlab.symbols import parse_symbol
from quantlab.timeframes import Timeframe, parse_timeframe
from quantlab.timestamps import in_window, to_ns


class StoreView:
    """Reads of the store at ``path`` (an existing store, or one its writer is creating)."""

    def __init__(self, path: Path):
        self.path = path
        self.layout = Layout(path)
        self._info_cache: dict[tuple[str, int, int], seg.SegmentInfo] = {}

    # ------------------------------------------------------------------ the active segment
    def _active_batch(self, folder: Path, schema: TableSchema, start_ns, end_ns) -> Batch:
        """Committed rows of ``folder``'s active segment with ``start_ns <= time < end_ns``."""
        raise NotImplementedError

    def _active_after(self, folder: Path, schema: TableSchema, after_id: int | None) -> Batch:
        """Committed rows of ``folder``'s active segment a follower at ``after_id`` has not seen
        (it may return earlier ones too: :meth:`read_after` cuts them)."""
        raise NotImplementedError

    def refresh(self) -> None:
        """Drop cached file handles (a reader's); the writer holds none."""

    # ------------------------------------------------------------------ identity
    def writer_pid(self) -> int | None:
        """As :meth:`TickStore.writer_pid <quantlab.store.TickStore.writer_pid>`."""
        return writer_pid(self.path)

    @property
    def source(self) -> str:
        """``'binance'`` (real exchange data, live or imported) or ``'demo'`` (simulated)."""
        return store_source(self.path) or LEGACY_SOURCE

    def symbols(self, kind: str | None = None) -> list[str]:
        """As :meth:`TickStore.symbols <quantlab.store.TickStore.symbols>`."""
        return self.layout.symbols(kind)

    def _segment_infos(self, folder: Path) -> list[seg.SegmentInfo]:
        infos = []
        for p in sorted(folder.glob("seg-*.h5")):
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            key = (str(p), st.st_ino, st.st_mtime_ns)
            info = self._info_cache.get(key)
            if info is None:
                info = seg.read_info(p)
                self._info_cache[key] = info
            infos.append(info)
        infos.sort(key=lambda s: s.first_id)
        return infos

    # ------------------------------------------------------------------ ticks
    def _read_batch(self, folder: Path, schema: TableSchema, start_ns, end_ns) -> Batch:
        for attempt in range(5):
            try:
                infos = [
                    info for info in self._segment_infos(folder)
                    if not (start_ns is not None and info.last_time < start_ns)
                    and not (end_ns is not None and info.first_time >= end_ns)
                ]
                parts = [seg.read_sealed_many(infos, schema, start_ns, end_ns),
                         self._active_batch(folder, schema, start_ns, end_ns)]
                break
            except FileNotFoundError:  # a segment was replaced while we read: list again
                if attempt == 4:
                    raise
                time.sleep(0.01)
        # repeated ids: a writer was between writing a sealed copy and removing its source
        return sort_unique(concat(parts), schema.id)

    def read(self, symbol: str, start=None, end=None, *, kind: str = "trades") -> pd.DataFrame:
        """As :meth:`TickStore.read <quantlab.store.TickStore.read>`."""
        schema = schema_of(kind)
        folder = self.layout.check_symbol(symbol, kind)
        start_ns, end_ns = to_ns(start, "start"), to_ns(end, "end")
        if start_ns is not None and end_ns is not None and end_ns < start_ns:
            raise ValueError(f"end ({end}) is before start ({start})")
        return to_frame(self._read_batch(folder, schema, start_ns, end_ns), schema)

    def read_after(self, symbol: str, after_id: int | None, *, kind: str = "trades") -> TickRows:
        """As :meth:`TickStore.read_after <quantlab.store.TickStore.read_after>`."""
        schema = schema_of(kind)
        folder = self.layout.folder(kind, symbol)
        if not folder.is_dir():
            return TickRows({}, kind)
        parts = []
        for info in self._segment_infos(folder):
            if after_id is not None and info.last_id <= after_id:
                continue
            parts.append(seg.read_sealed(info, schema, None, None))
        parts.append(self._active_after(folder, schema, after_id))
        batch = sort_unique(concat(parts), schema.id)
        if not batch:
            return TickRows({}, kind)
        ids = batch[schema.id]
        if after_id is not None and len(ids) and ids[0] <= after_id:
            batch = take(batch, slice(int(np.searchsorted(ids, after_id, "right")), None))
        return TickRows(batch, kind)

    def last_trade_id(self, symbol: str, *, kind: str = "trades") -> int | None:
        """As :meth:`TickStore.last_trade_id <quantlab.store.TickStore.last_trade_id>`."""
        folder = self.layout.folder(kind, symbol)
        if not folder.is_dir():
            return None
        ids = [s.last_id for s in self._segment_infos(folder)]
        active = self._active_batch(folder, schema_of(kind), None, None)
        if batch_len(active):
            ids.append(int(active[schema_of(kind).id][-1]))
        return max(ids) if ids else None

    # ------------------------------------------------------------------ bars
    def bars(self, symbol: str, timeframe: str | Timeframe = "1m", start=None, end=None) -> pd.DataFrame:
        """As :meth:`TickStore.bars <quantlab.store.TickStore.bars>`."""
        tf = parse_timeframe(timeframe)
        start_ns, end_ns = to_ns(start, "start"), to_ns(end, "end")
        if start_ns is not None and end_ns is not None and end_ns < start_ns:
            raise ValueError(f"end ({end}) is before start ({start})")
        if not isinstance(symbol, str) or not symbol:
            raise TypeError(f"symbol: expected a symbol name like 'BTCUSDT', got {symbol!r}")
        sym = symbol  # layout.folder parses it (BTCUSDT, um:BTCUSDT; 0.1's futures-as-spot folders too)
        lo = None if start_ns is None else int(tf.floor_ns(start_ns))
        hi = None if end_ns is None else int(tf.end_ns(end_ns - 1))  # whole last bar
        candidates = []
        tick_folder, schema = self.layout.folder("trades", sym), TRADES
        if not (tick_folder.is_dir() and any(tick_folder.glob("*.h5"))):
            # futures recorded live are aggregate trades: same prices and volumes (the bar's
            # ``trades`` column then counts aggregates)
            agg_folder = self.layout.folder("aggtrades", sym)
            if agg_folder.is_dir() and any(agg_folder.glob("*.h5")):
                tick_folder, schema = agg_folder, SCHEMAS["aggtrades"]
        if tick_folder.is_dir() and any(tick_folder.glob("*.h5")):
            b = self._read_batch(tick_folder, schema, lo, hi)
            if b:
                candidates.append(("ticks", bars_from_arrays(b["time"], b["price"], b["qty"], tf)))
            else:
                candidates.append(("ticks", bars_from_arrays(np.empty(0, "i8"), np.empty(0), np.empty(0), tf)))
        files = interval_files(self.layout.folder("klines", sym))
        if not candidates and not files:
            self.layout.check_symbol(symbol, "trades")  # raises UnknownSymbolError naming the known ones
        usable = sorted(((parse_timeframe(iv), p) for iv, p in files.items()
                         if nests(parse_timeframe(iv), tf)), key=lambda ip: ip[0].nominal_ns)
        if files and not usable and not candidates:
            raise ValueError(
                f"timeframe: {symbol} has klines at {', '.join(sorted(files))} only; "
                f"{tf} bars cannot be built from them"
            )
        for iv, path in usable:
            candidates.append(("klines", klines_to_bars(read_klines(path), iv, tf, lo, hi)))
        out = combine_sources(candidates)
        if end_ns is not None:
            out = out[out.index.asi8 < end_ns]
        return out

    def bar_closes(self, symbol: str, timeframe: str | Timeframe = "1m", start=None, end=None) -> pd.Series:
        """As :meth:`TickStore.bar_closes <quantlab.store.TickStore.bar_closes>`."""
        tf = parse_timeframe(timeframe)
        if not isinstance(symbol, str) or not symbol:
            raise TypeError(f"symbol: expected a symbol name like 'BTCUSDT', got {symbol!r}")
        tick_folder = self.layout.folder("trades", symbol)
        files = interval_files(self.layout.folder("klines", symbol))
        usable = [(parse_timeframe(iv), p) for iv, p in files.items() if nests(parse_timeframe(iv), tf)]
        if (tick_folder.is_dir() and any(tick_folder.glob("*.h5"))) or len(usable) != 1:
            return self.bars(symbol, tf, start, end)["close"]
        start_ns, end_ns = to_ns(start, "start"), to_ns(end, "end")
        if start_ns is not None and end_ns is not None and end_ns < start_ns:
            raise ValueError(f"end ({end}) is before start ({start})")
        lo = None if start_ns is None else int(tf.floor_ns(start_ns))
        hi = None if end_ns is None else int(tf.end_ns(end_ns - 1))
        k = read_klines(usable[0][1], ("open_time", "close", "close_time"))
        sel = in_window(k["open_time"], lo, hi)
        t = k["open_time"][sel]
        p = reduce_partials({"bucket": tf.bucket(t), "close": np.asarray(k["close"][sel], dtype=np.float64),
                             "close_t": np.asarray(k["close_time"][sel], dtype=np.int64)})
        index = seg_schema.utc_index(tf.bucket_open(p["bucket"]), "time")
        out = pd.Series(p["close"], index=index, name="close")
        if end_ns is not None:
            out = out[out.index.asi8 < end_ns]
        return out

    # ------------------------------------------------------------------ klines
    def klines(self, symbol: str, interval: str = "1m") -> pd.DataFrame:
        """As :meth:`TickStore.klines <quantlab.store.TickStore.klines>`."""
        files = interval_files(self.layout.folder("klines", symbol))
        interval = parse_timeframe(interval, "interval").text
        if interval not in files:
            self.layout.check_symbol(symbol, "klines")
            raise ValueError(f"interval: {symbol} has klines at {', '.join(sorted(files))}, not {interval!r}")
        k = read_klines(files[interval])
        index = pd.DatetimeIndex(k.pop("open_time").view("M8[ns]"), name="open_time").tz_localize("UTC")
        frame = pd.DataFrame(k, index=index)
        frame["close_time"] = pd.DatetimeIndex(frame["close_time"].to_numpy().view("M8[ns]")).tz_localize("UTC")
        return frame

    # ------------------------------------------------------------------ notes beside the data
    def time_units(self, symbol: str, *, kind: str = "trades") -> list[dict]:
        """As :meth:`TickStore.time_units <quantlab.store.TickStore.time_units>`."""
        return read_json(self.layout.folder(kind, symbol) / "time_unit.json", [])

    def gaps(self, symbol: str | None = None) -> pd.DataFrame:
        """As :meth:`TickStore.gaps <quantlab.store.TickStore.gaps>`."""
        gaps = [{"permanent": True, **g} for g in read_json(self.path / "gaps.json", [])]
        frame = pd.DataFrame(gaps, columns=["symbol", "first_id", "last_id", "count", "reason",
                                            "recorded_at", "permanent"])
        frame["permanent"] = frame["permanent"].astype(bool)
        if symbol is not None:
            frame = frame[frame["symbol"] == str(parse_symbol(symbol))].reset_index(drop=True)
        return frame

    def counters(self) -> dict:
        return read_json(self.path / "counters.json", {})

    def info(self) -> pd.DataFrame:
        """As :meth:`TickStore.info <quantlab.store.TickStore.info>`."""
        rows = []
        gaps = self.gaps()
        counters = self.counters()
        for kind, schema in SCHEMAS.items():
            for symbol in self.symbols(kind):
                folder = self.layout.folder(kind, symbol)
                infos = self._segment_infos(folder)
                active = self._active_batch(folder, schema, None, None)
                n_active = batch_len(active)
                if not infos and not n_active:
                    continue
                first_id = min([s.first_id for s in infos] + ([int(active[schema.id][0])] if n_active else []))
                last_id = max([s.last_id for s in infos] + ([int(active[schema.id][-1])] if n_active else []))
                first_t = min([s.first_time for s in infos] + ([int(active["time"].min())] if n_active else []))
                last_t = max([s.last_time for s in infos] + ([int(active["time"].max())] if n_active else []))
                n = sum(s.rows for s in infos) + n_active
                if "price" not in schema.names:
                    last_price = float("nan")
                elif n_active:
                    last_price = float(active["price"][-1])
                else:
                    with h5py.File(infos[-1].path, "r") as f:
                        last_price = float(f["price"][infos[-1].rows - 1])
                # the recorder repairs spot by trade id and futures by aggregate id
                gap_kind = "trades" if ":" not in symbol else "aggtrades"
                g = gaps[gaps["symbol"] == symbol] if kind == gap_kind else gaps.iloc[0:0]
                rows.append({
                    "symbol": symbol, "kind": kind, "rows": n,
                    "first_time": pd.Timestamp(first_t, tz="UTC"), "last_time": pd.Timestamp(last_t, tz="UTC"),
                    "first_id": first_id if schema.contiguous else None,
                    "last_id": last_id if schema.contiguous else None, "missing_ids": int(last_id - first_id + 1 - n) if schema.contiguous else None,
                    "gaps": int(len(g)), "gap_ids": int(g["count"].sum()) if len(g) else 0,
                    "rejected": int(counters.get(symbol, {}).get("rejected", 0)) if kind == "trades" else 0,
                    "last_price": last_price,
                })
        for symbol in self.symbols("klines"):
            for interval, path in sorted(interval_files(self.layout.folder("klines", symbol)).items()):
                k = read_klines(path)
                if not len(k["open_time"]):
                    continue
                rows.append({
                    "symbol": symbol, "kind": f"klines {interval}", "rows": len(k["open_time"]),
                    "first_time": pd.Timestamp(int(k["open_time"][0]), tz="UTC"),
                    "last_time": pd.Timestamp(int(k["open_time"][-1]), tz="UTC"),
                    "first_id": None, "last_id": None, "missing_ids": None, "gaps": 0, "gap_ids": 0,
                    "rejected": 0, "last_price": float(k["close"][-1]),
                })
        cols = ["symbol", "kind", "rows", "first_time", "last_time", "first_id", "last_id",
                "missing_ids", "gaps", "gap_ids", "rejected", "last_price"]
        frame = pd.DataFrame(rows, columns=cols)
        for col in ("first_id", "last_id", "missing_ids"):
            frame[col] = frame[col].astype("Int64")
        return frame

