"""``TickStore``: the HDF5 tick store (one writer, any number of readers in any process).

Layout of a store directory::

    store.json                       format marker, version and ``source`` (binance | demo)
    writer.lock                      flock held by the single writer; holds its pid
    trades/<SYMBOL>/seg-<id>.h5      sealed segments (immutable; compressed if the store says so)
    trades/<SYMBOL>/active.h5        the writer's SWMR segment (uncompressed)
    aggtrades/<SYMBOL>/...           same layout, keyed by aggregate trade id
    klines/<SYMBOL>/<interval>.h5    imported official klines
    um/trades/<SYMBOL>/...           USD-M futures (``um:SYMBOL``): the same three kinds
    cm/trades/<SYMBOL>/...           COIN-M futures (``cm:SYMBOL``), volumes in base asset
    gaps.json                        trade-id ranges that could not be backfilled
    counters.json                    rows rejected per symbol (zero/negative price or qty)
    journal/journal-<seq>.qlj        a journaling writer's write-ahead journal (only while it
                                     writes, or after it crashed; see store/journal.py)

Spot symbols stay where release 0.1 put them, so a 0.1 store (whose ``store.json`` has no
``source``) opens unchanged as a store of real spot data. A store's ``source`` is set when it
is created and never changes: a demo (simulated) writer refuses a real store, and a real
writer (recorder, importer) refuses a demo store (:func:`check_source`).

Guarantees: per symbol, rows are sorted by trade id and each id is stored at most once
(appending ids already stored is a no-op). A reader never sees a row that is not durable.
After the writer is killed, the next writer salvages its active segment with no manual
step; every batch that ``flush()`` acknowledged is kept. A writer may also make rows durable
through the store's write-ahead journal (:mod:`quantlab.store.journal`, what the recorder
does) and write them to their tables later: the next writer replays the journal after a crash
(ids already stored are skipped), and ``close()`` seals every journaled row before it deletes
the journal. Readers never read the journal: they see a row once it is in its table.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from quantlab.atomic import atomic_write_json
from quantlab.errors import StoreCorruptError, StoreIdentityError, UnknownSymbolError
from quantlab.store import schema as seg_schema
from quantlab.store import segments as seg
from quantlab.store.bars import bars_from_arrays, combine_sources, reduce_partials
from quantlab.store.klines import (
    interval_files,
    kline_file_name,
    klines_to_bars,
    merge_klines,
    nests,
    read_klines,
)
from quantlab.store.lock import WriterLock, writer_pid
from quantlab.store.schema import (
    SCHEMAS,
    TRADES,
    Batch,
    TableSchema,
    batch_len,
    clean,
    concat,
    sort_unique,
    take,
    to_batch,
    to_frame,
)
from quantlab.symbols import MARKETS, Symbol, parse_symbol
from quantlab.timeframes import parse_timeframe
from quantlab.timestamps import to_ns

log = logging.getLogger(__name__)

FORMAT = {"format": "quantlab-store", "version": 1}
SOURCES = ("binance", "demo")  # real exchange data (live or imported) | simulated
LEGACY_SOURCE = "binance"  # a store without a source (release 0.1) holds real data
SEGMENT_ROWS = 1_000_000
DIRECT_SEAL_ROWS = SEGMENT_ROWS // 2  # a tail batch this large with no active rows is sealed directly
DEFAULT_FSYNC = "interval"  # see TickStore: flushed rows survive a power loss within ~1 s
FSYNC_INTERVAL_S = 1.0


def _close_quietly(f: h5py.File) -> None:
    """Close a reader's handle on a file that may be gone or replaced (h5py raises OSError or
    RuntimeError for a file whose HDF5 state is already invalid); nothing to lose on a reader."""
    try:
        f.close()
    except (OSError, RuntimeError) as exc:
        log.debug("closing %s: %s", getattr(f, "filename", f), exc)


def _read_json(path: Path, default):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default
    except json.JSONDecodeError as exc:
        raise StoreCorruptError(f"{path} is not valid JSON: {exc}") from exc


def _check_source_name(source: str | None) -> None:
    if source is not None and source not in SOURCES:
        raise ValueError(f"source: {source!r} is not one of {', '.join(SOURCES)}")


def store_source(path: str | os.PathLike[str]) -> str | None:
    """What an existing store holds: ``'binance'`` (real exchange data; also every store written
    by release 0.1) or ``'demo'`` (simulated); None when ``path`` is not a store yet."""
    p = Path(path).expanduser()
    marker = p / "store.json"
    if not marker.exists():
        return None
    # release 0.1 wrote no source: its stores hold real data, except the app's "<store>-demo"
    return _read_json(marker, {}).get("source") or ("demo" if p.name.endswith("-demo") else LEGACY_SOURCE)


def check_source(path: str | os.PathLike[str], source: str) -> str | None:
    """Refuse to put ``source`` data (``'binance'`` | ``'demo'``) into a store holding the other
    kind, with one line naming both and the fix. Returns the store's source (None when new)."""
    _check_source_name(source)
    held = store_source(path)
    if held is None or held == source:
        return held
    from quantlab.config import demo_store_path

    p = Path(path)
    if source == "demo":
        raise StoreIdentityError(
            f"store {p} holds real Binance data (source=binance); simulated (demo) trades never go "
            f"into it: use the demo store {demo_store_path(p)} (what --demo picks) or a new --store"
        )
    raise StoreIdentityError(
        f"store {p} holds simulated demo data (source=demo); real Binance data never goes into it: "
        "use a real store (e.g. the default ./data/store) or a new --store"
    )


@dataclass
class _Table:
    """The writer's view of one (kind, symbol) table."""

    schema: TableSchema
    folder: Path
    sealed: list[seg.SegmentInfo] = field(default_factory=list)  # sorted by first_id
    active: seg.ActiveWriter | None = None

    @property
    def last_id(self) -> int | None:
        ids = [s.last_id for s in self.sealed]
        if self.active is not None and self.active.last_id is not None:
            ids.append(self.active.last_id)
        return max(ids) if ids else None


class TickStore:
    """Per-symbol tick data in HDF5. ``mode="r"`` reads (any number, any process);
    ``mode="a"`` is the single writer (creates the store if needed).

    >>> st = TickStore("data/store")                       # doctest: +SKIP
    >>> st.read("BTCUSDT", start="2024-08-09").tail(2)     # doctest: +SKIP
                                       trade_id     price      qty  is_buyer_maker ...
    time
    2024-08-09 00:05:04.101000+00:00  3735703162  61489.99  0.00050            True
    """

    segment_rows = SEGMENT_ROWS

    def __init__(self, path: str | os.PathLike[str], mode: str = "r", *, compression: str | None = None,
                 source: str | None = None, fsync: str = DEFAULT_FSYNC):
        """``source`` (``'binance'`` | ``'demo'``): what the caller reads or writes; a store holding
        the other kind is refused (StoreIdentityError). A new store records it (default
        ``'binance'``); None accepts either kind of existing store.

        ``compression`` (new store only; sealed segments; the active segment is never
        compressed): None, ``'lzf'``, ``'gzip'`` or ``'blosc2-zstd'`` (hdf5plugin).

        ``fsync`` (writer): what survives a power loss or an OS crash (a process crash loses
        no flushed row under any setting) --
        ``'interval'`` (default): sealed segments at once, flushed rows within about a second
        (a flush fsyncs the active segment when the last fsync is a second old; ``sync()`` and
        ``close()`` always do); ``'always'``: every flush; ``'seal'``: sealed segments only;
        ``'never'``: whatever the OS has written back (up to ~30 s on Linux)."""
        if mode not in ("r", "a"):
            raise ValueError(f"mode: {mode!r} is not 'r' (read) or 'a' (the single writer)")
        if compression not in seg.COMPRESSIONS:
            raise ValueError(f"compression: {compression!r} is not one of None, 'lzf', 'gzip', 'blosc2-zstd'")
        if fsync not in seg.FSYNC_POLICIES:
            raise ValueError(f"fsync: {fsync!r} is not one of {', '.join(map(repr, seg.FSYNC_POLICIES))}")
        self.fsync = fsync
        self._last_sync = 0.0
        _check_source_name(source)
        self.path = Path(path).expanduser()
        self.mode = mode
        self._lock: WriterLock | None = None
        self._tables: dict[Path, _Table] = {}  # keyed by the table's folder
        self._info_cache: dict[tuple[str, int, int], seg.SegmentInfo] = {}
        self._active_handles: dict[Path, tuple[int, h5py.File]] = {}
        self.compression: str | None = compression
        self._cursors: dict[Path, tuple[int, int, int | None]] = {}  # follower position per active file
        self.journal = None  # the write-ahead journal of a writer that uses one (store/journal.py)
        marker = self.path / "store.json"
        if source is not None and marker.exists():
            check_source(self.path, source)  # before taking the lock or touching any file
        if mode == "r":
            if not self.path.exists():
                raise FileNotFoundError(
                    f"store {self.path} does not exist; create it with `quantlab import` or `quantlab record`"
                )
            if not marker.exists():
                raise StoreCorruptError(
                    f"{self.path} is not a quantlab store (no store.json); point --store at a store directory"
                )
        else:
            if self.path.exists() and not self.path.is_dir():
                raise ValueError(f"store: {self.path} is a file, not a directory")
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock = WriterLock(self.path)
            self._lock.acquire()
            try:
                if not marker.exists():
                    atomic_write_json(marker, {**FORMAT, "compression": compression, "source": source or "binance"})
                elif source is not None:
                    check_source(self.path, source)  # created by another writer meanwhile
                self._check_format(marker)
                self.compression = _read_json(marker, {}).get("compression")
                self._recover()
            except BaseException:
                self._lock.release()
                raise
        if mode == "r":
            self._check_format(marker)

    # ------------------------------------------------------------------ lifecycle
    @staticmethod
    def _check_format(marker: Path) -> None:
        meta = _read_json(marker, {})
        if meta.get("format") != FORMAT["format"]:
            raise StoreCorruptError(f"{marker} does not describe a quantlab store")
        if int(meta.get("version", 0)) > FORMAT["version"]:
            raise StoreCorruptError(
                f"{marker}: store format version {meta.get('version')} is newer than this quantlab; upgrade it"
            )

    def close(self) -> None:
        """Writer: flush and seal every active segment, release the lock. Reader: close handles."""
        if self._lock is not None and self._lock.held:
            journal = self.journal  # a JournaledTables writing through this store, if any
            if journal is not None:
                journal.apply_all()  # every journaled row into its table before the seals
            for table in self._tables.values():
                self._seal_active(table)
            if journal is not None:
                journal.discard()  # each of its rows is in a sealed segment now (fsynced as the policy says)
                self.journal = None
            self._lock.release()
        for _, f in self._active_handles.values():
            _close_quietly(f)
        self._active_handles.clear()

    def __enter__(self) -> TickStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TickStore({str(self.path)!r}, mode={self.mode!r})"

    @property
    def writable(self) -> bool:
        return self._lock is not None and self._lock.held

    def _require_writer(self) -> None:
        if not self.writable:
            raise PermissionError(
                f"{self!r} is read-only; open TickStore(path, mode='a') to write (one writer at a time)"
            )

    def writer_pid(self) -> int | None:
        """Pid of the process that holds the writer lock, or None when nobody writes."""
        return writer_pid(self.path)

    @property
    def source(self) -> str:
        """``'binance'`` (real exchange data, live or imported) or ``'demo'`` (simulated)."""
        return store_source(self.path) or LEGACY_SOURCE

    # ------------------------------------------------------------------ layout
    def _market_root(self, market: str) -> Path:
        return self.path if market == "spot" else self.path / market  # spot: where 0.1 put it

    def _folder(self, kind: str, symbol: str | Symbol) -> Path:
        try:
            sym = parse_symbol(symbol)
        except ValueError:
            # release 0.1 filed futures files as spot (e.g. klines/BTCUSD_PERP): still readable
            name = str(symbol).strip().upper()
            if ":" in name or not (self.path / kind / name).is_dir():
                raise
            return self.path / kind / name
        return self._market_root(sym.market) / kind / sym.name

    def _folder_symbol(self, folder: Path) -> str:
        """The symbol string of a table folder (``BTCUSDT`` or ``um:BTCUSDT``)."""
        rel = folder.relative_to(self.path).parts
        market = rel[0] if len(rel) == 3 else "spot"
        return str(Symbol(market, folder.name))

    def symbols(self, kind: str | None = None) -> list[str]:
        """Symbols with data: trades, agg trades or imported klines (or of one ``kind``);
        spot ones as ``BTCUSDT``, futures as ``um:BTCUSDT`` / ``cm:BTCUSD_PERP``."""
        kinds = [kind] if kind else ["trades", "aggtrades", "klines"]
        out: set[str] = set()
        for market in MARKETS:
            for k in kinds:
                root = self._market_root(market) / k
                if root.is_dir():
                    out.update(str(Symbol(market, p.name)) for p in root.iterdir()
                               if p.is_dir() and any(p.glob("*.h5")))
        return sorted(out)

    def _check_symbol(self, symbol: str, kind: str) -> Path:
        if not isinstance(symbol, (str, Symbol)) or not symbol:
            raise TypeError(f"symbol: expected a symbol name like 'BTCUSDT', got {symbol!r}")
        folder = self._folder(kind, symbol)
        if not folder.is_dir() or not any(folder.glob("*.h5")):
            known = self.symbols(kind) or ["none yet"]
            raise UnknownSymbolError(
                f"unknown symbol {symbol!r} in store {self.path} ({kind}); known: {', '.join(known)}"
            )
        return folder

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

    # ------------------------------------------------------------------ reading
    def _active_batch(self, folder: Path, schema: TableSchema, start_ns, end_ns) -> Batch:
        table = self._tables.get(folder)
        if table is not None and table.active is not None:  # our own writer's segment
            return seg.read_active_file(table.active.file, schema, start_ns, end_ns)
        f = self._active_handle(folder / seg.ACTIVE)
        return {} if f is None else seg.read_active_file(f, schema, start_ns, end_ns)

    def _active_handle(self, path: Path) -> h5py.File | None:
        """A reader's SWMR handle on an active segment (cached; reopened when the file was
        replaced), or None when there is none. Opens only: no data is read."""
        try:
            ino = path.stat().st_ino
        except FileNotFoundError:
            return None
        cached = self._active_handles.get(path)
        if cached is None or cached[0] != ino:
            if cached is not None:
                _close_quietly(cached[1])
            try:
                f = h5py.File(path, "r", swmr=True)
            except FileNotFoundError:
                return None
            except OSError as exc:
                if not path.exists():
                    return None
                raise StoreCorruptError(f"cannot open {path}: {exc}") from exc
            self._active_handles[path] = (ino, f)
            cached = (ino, f)
        return cached[1]

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
        """Ticks of ``symbol`` with ``start <= time < end`` (UTC; None = unbounded).

        Returns a frame indexed by exchange trade time (tz-aware UTC, named ``time``) with
        columns ``trade_id price qty is_buyer_maker event_time recv_time`` (``agg_id ...
        first_trade_id last_trade_id`` for ``kind="aggtrades"``), sorted by id.
        """
        schema = self._schema(kind)
        folder = self._check_symbol(symbol, kind)
        start_ns, end_ns = to_ns(start, "start"), to_ns(end, "end")
        if start_ns is not None and end_ns is not None and end_ns < start_ns:
            raise ValueError(f"end ({end}) is before start ({start})")
        return to_frame(self._read_batch(folder, schema, start_ns, end_ns), schema)

    def read_after(self, symbol: str, after_id: int | None, *, kind: str = "trades") -> Batch:
        """Column batch of the rows with id > ``after_id``: what a follower polls for.

        Cheap when called repeatedly with the last id it returned: the active segment is
        read from the row after the previous call's last one, sealed segments only when a
        roll-over sealed rows the follower has not seen.
        """
        schema = self._schema(kind)
        folder = self._folder(kind, symbol)
        if not folder.is_dir():
            return {}
        parts = []
        for info in self._segment_infos(folder):
            if after_id is not None and info.last_id <= after_id:
                continue
            parts.append(seg.read_sealed(info, schema, None, None))
        parts.append(self._active_after(folder, schema, after_id))
        batch = sort_unique(concat(parts), schema.id)
        if not batch:
            return batch
        ids = batch[schema.id]
        if after_id is not None and len(ids) and ids[0] <= after_id:
            batch = take(batch, slice(int(np.searchsorted(ids, after_id, "right")), None))
        return batch

    def _active_after(self, folder: Path, schema: TableSchema, after_id: int | None) -> Batch:
        if self._tables.get(folder) is not None:
            return self._active_batch(folder, schema, None, None)  # the writer's own segment
        path = folder / seg.ACTIVE
        f = self._active_handle(path)  # opens or reopens the handle (inode check); reads nothing
        if f is None:
            return {}
        ino = self._active_handles[path][0]
        cursor = self._cursors.get(path)
        if cursor is not None and cursor[0] == ino and cursor[2] == after_id:
            lo = cursor[1]
        else:
            f[schema.id].refresh()
            ids = f[schema.id][:]
            lo = 0 if after_id is None else int(np.searchsorted(ids, after_id, "right"))
        batch, rows = seg.read_active_tail(f, schema, lo)
        ids = batch[schema.id]
        self._cursors[path] = (ino, rows, int(ids[-1]) if len(ids) else after_id)
        return batch

    def bars(self, symbol: str, timeframe: str = "1m", start=None, end=None) -> pd.DataFrame:
        """OHLCV bars of ``symbol``: ``open high low close volume vwap trades source``, indexed
        by bar open time (UTC), whole bars only.

        One bar source (see :func:`quantlab.store.bars.combine_sources`): each bar comes from
        the stored ticks (by trade time, the bar rule of :mod:`quantlab.store.bars`) where the
        store has its trades, else from imported klines (aggregated up to ``timeframe``, any
        stored interval that nests in it); ``source`` says which (``ticks`` | ``klines``).
        ``timeframe``: see :func:`quantlab.timeframes.parse_timeframe` (``1M`` is a month).
        Bars are those whose open lies in ``[floor(start), end)``: a ``start`` inside a bar
        gives that whole bar, never a partial one. Bars without trades are omitted.
        """
        tf = parse_timeframe(timeframe)
        start_ns, end_ns = to_ns(start, "start"), to_ns(end, "end")
        if start_ns is not None and end_ns is not None and end_ns < start_ns:
            raise ValueError(f"end ({end}) is before start ({start})")
        if not isinstance(symbol, str) or not symbol:
            raise TypeError(f"symbol: expected a symbol name like 'BTCUSDT', got {symbol!r}")
        sym = symbol  # _folder parses it (BTCUSDT, um:BTCUSDT; 0.1's futures-as-spot folders too)
        lo = None if start_ns is None else int(tf.floor_ns(start_ns))
        hi = None if end_ns is None else int(tf.end_ns(end_ns - 1))  # whole last bar
        candidates = []
        tick_folder, schema = self._folder("trades", sym), TRADES
        if not (tick_folder.is_dir() and any(tick_folder.glob("*.h5"))):
            # futures recorded live are aggregate trades: same prices and volumes (the bar's
            # ``trades`` column then counts aggregates)
            agg_folder = self._folder("aggtrades", sym)
            if agg_folder.is_dir() and any(agg_folder.glob("*.h5")):
                tick_folder, schema = agg_folder, SCHEMAS["aggtrades"]
        if tick_folder.is_dir() and any(tick_folder.glob("*.h5")):
            b = self._read_batch(tick_folder, schema, lo, hi)
            if b:
                candidates.append(("ticks", bars_from_arrays(b["time"], b["price"], b["qty"], tf)))
            else:
                candidates.append(("ticks", bars_from_arrays(np.empty(0, "i8"), np.empty(0), np.empty(0), tf)))
        files = interval_files(self._folder("klines", sym))
        if not candidates and not files:
            self._check_symbol(symbol, "trades")  # raises UnknownSymbolError naming the known ones
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

    def bar_closes(self, symbol: str, timeframe: str = "1m", start=None, end=None) -> pd.Series:
        """``bars(symbol, timeframe, start, end)["close"]``, cheaper where the bars come from
        one kline interval only (no ticks stored): then only ``open_time``, ``close`` and
        ``close_time`` are read and reduced by the bar rule (:func:`reduce_partials`), instead
        of all eleven kline columns and every bar field. What ``quantlab.closes`` reads."""
        tf = parse_timeframe(timeframe)
        if not isinstance(symbol, str) or not symbol:
            raise TypeError(f"symbol: expected a symbol name like 'BTCUSDT', got {symbol!r}")
        tick_folder = self._folder("trades", symbol)
        files = interval_files(self._folder("klines", symbol))
        usable = [(parse_timeframe(iv), p) for iv, p in files.items() if nests(parse_timeframe(iv), tf)]
        if (tick_folder.is_dir() and any(tick_folder.glob("*.h5"))) or len(usable) != 1:
            return self.bars(symbol, tf, start, end)["close"]
        start_ns, end_ns = to_ns(start, "start"), to_ns(end, "end")
        if start_ns is not None and end_ns is not None and end_ns < start_ns:
            raise ValueError(f"end ({end}) is before start ({start})")
        lo = None if start_ns is None else int(tf.floor_ns(start_ns))
        hi = None if end_ns is None else int(tf.end_ns(end_ns - 1))
        k = read_klines(usable[0][1], ("open_time", "close", "close_time"))
        t = k["open_time"]
        sel = np.ones(len(t), dtype=bool)
        if lo is not None:
            sel &= t >= lo
        if hi is not None:
            sel &= t < hi
        t = t[sel]
        p = reduce_partials({"bucket": tf.bucket(t), "close": np.asarray(k["close"][sel], dtype=np.float64),
                             "close_t": np.asarray(k["close_time"][sel], dtype=np.int64)})
        index = seg_schema.utc_index(tf.bucket_open(p["bucket"]), "time")
        out = pd.Series(p["close"], index=index, name="close")
        if end_ns is not None:
            out = out[out.index.asi8 < end_ns]
        return out

    def refresh(self) -> None:
        """Readers see new rows on every read; this drops cached handles to force a reopen."""
        for _, f in self._active_handles.values():
            _close_quietly(f)
        self._active_handles.clear()

    # ------------------------------------------------------------------ writing
    @staticmethod
    def _schema(kind: str) -> TableSchema:
        try:
            return SCHEMAS[kind]
        except KeyError:
            raise ValueError(f"kind: {kind!r} is not one of {', '.join(SCHEMAS)}") from None

    def _table(self, kind: str, symbol: str) -> _Table:
        folder = self._folder(kind, symbol)
        table = self._tables.get(folder)
        if table is None:
            folder.mkdir(parents=True, exist_ok=True)
            table = _Table(self._schema(kind), folder, self._segment_infos(folder))
            self._tables[folder] = table
        return table

    def append(self, symbol: str, ticks, *, kind: str = "trades", flush: bool = True) -> int:
        """Add rows; ids already stored are skipped. Returns the number of rows added.

        ``ticks``: a DataFrame (time as a column or the index), structured array or dict of
        arrays with the table's columns. Rows with zero, negative or non-finite price or qty
        are rejected, counted (``info()``) and logged. With ``flush=True`` the rows are
        visible to readers and survive a crash of this process when this returns; they
        survive a power loss as the store's ``fsync`` policy says (see ``TickStore``).
        """
        self._require_writer()
        symbol = str(parse_symbol(symbol))
        schema = self._schema(kind)
        batch, rejected = clean(to_batch(ticks, schema), schema, symbol)
        if rejected:
            self._count(symbol, "rejected", rejected)
        n = batch_len(batch)
        if not n:
            return 0
        table = self._table(kind, symbol)
        last = table.last_id
        ids = batch[schema.id]
        if last is None or ids[0] > last:
            tail, old = batch, {}
        else:
            cut = int(np.searchsorted(ids, last, "right"))
            tail, old = take(batch, slice(cut, None)), take(batch, slice(0, cut))
        added = self._merge_old(table, old) if batch_len(old) else 0
        if batch_len(tail):
            self._append_tail(table, tail)
            added += batch_len(tail)
        if flush:
            self.flush()
        return added

    def _append_tail(self, table: _Table, batch: Batch) -> None:
        n = batch_len(batch)
        if (table.active is None or table.active.rows == 0) and n >= DIRECT_SEAL_ROWS:
            for lo in range(0, n, self.segment_rows):
                part = take(batch, slice(lo, lo + self.segment_rows))
                if batch_len(part) >= DIRECT_SEAL_ROWS or lo == 0:
                    table.sealed.append(seg.write_sealed(table.folder, table.schema, part, self.compression,
                                                            self._sync_seals))
                else:
                    self._active(table).append(part)
            return
        lo = 0
        while lo < n:
            active = self._active(table)
            room = self.segment_rows - active.rows
            part = take(batch, slice(lo, lo + room))
            active.append(part)
            lo += batch_len(part)
            if active.rows >= self.segment_rows:
                self._seal_active(table)

    def _active(self, table: _Table) -> seg.ActiveWriter:
        if table.active is None:
            table.active = seg.ActiveWriter(table.folder, table.schema)
        return table.active

    def _seal_active(self, table: _Table) -> None:
        active = table.active
        if active is None:
            return
        active.flush()
        rows = active.rows_for_seal()
        if sum(batch_len(b) for b in rows):
            table.sealed.append(seg.write_sealed(table.folder, table.schema, rows, self.compression,
                                                 self._sync_seals))
            table.sealed.sort(key=lambda s: s.first_id)
        active.close()
        with contextlib.suppress(FileNotFoundError):
            active.path.unlink()
        table.active = None

    def _merge_old(self, table: _Table, batch: Batch) -> int:
        """Rows with ids at or below the table's last id: merge them into sealed segments."""
        schema = table.schema
        self._seal_active(table)
        ids = batch[schema.id]
        sealed = table.sealed
        firsts = np.array([s.first_id for s in sealed], dtype="i8")
        lasts = np.array([s.last_id for s in sealed], dtype="i8")
        pos = np.searchsorted(firsts, ids, "right") - 1  # segment whose first_id <= id
        inside = (pos >= 0) & (ids <= lasts[np.clip(pos, 0, None)]) if len(sealed) else np.zeros(len(ids), bool)
        # drop ids already stored in the segments they fall in
        fresh = np.ones(len(ids), dtype=bool)
        for k in np.unique(pos[inside]):
            sel = inside & (pos == k)
            with h5py.File(sealed[k].path, "r") as f:
                stored = f[schema.id][:]
            fresh[sel] = ~np.isin(ids[sel], stored)
        batch, ids, pos, inside = take(batch, fresh), ids[fresh], pos[fresh], inside[fresh]
        if not len(ids):
            return 0
        added = len(ids)
        # rows inside a segment: rewrite that segment with them merged in
        for k in np.unique(pos[inside]):
            sel = inside & (pos == k)
            old_info = sealed[k]
            merged = concat([seg.read_sealed(old_info, schema, None, None), take(batch, sel)])
            order = np.argsort(merged[schema.id], kind="stable")
            self._replace_segment(table, old_info, take(merged, order))
        # rows between segments: new segments, one group per gap between existing segments
        for k in np.unique(pos[~inside]):
            sel = ~inside & (pos == k)
            part = take(batch, sel)
            for lo in range(0, batch_len(part), self.segment_rows):
                table.sealed.append(
                    seg.write_sealed(table.folder, schema, take(part, slice(lo, lo + self.segment_rows)),
                                     self.compression, self._sync_seals)
                )
        table.sealed = self._segment_infos(table.folder)
        return added

    def _replace_segment(self, table: _Table, old: seg.SegmentInfo, merged: Batch) -> None:
        n = batch_len(merged)
        written = []
        for lo in range(0, n, self.segment_rows):
            written.append(seg.write_sealed(table.folder, table.schema, take(merged, slice(lo, lo + self.segment_rows)),
                                            self.compression, self._sync_seals))
        if all(w.path != old.path for w in written):
            old.path.unlink()

    @property
    def _sync_seals(self) -> bool:
        return self.fsync != "never"

    def flush(self) -> None:
        """Make every appended row visible to readers and safe from a process crash; on disk
        (safe from a power loss) as the ``fsync`` policy says."""
        self._require_writer()
        now = time.monotonic()
        sync = self.fsync == "always" or (self.fsync == "interval" and now - self._last_sync >= FSYNC_INTERVAL_S)
        for table in self._tables.values():
            if table.active is not None:
                table.active.flush(fsync=sync)
        if sync:
            self._last_sync = now

    def sync(self) -> None:
        """Flush and fsync every active segment now (whatever the policy): what was appended
        survives a power loss. A recorder calls this on a timer when ``fsync='interval'``."""
        self._require_writer()
        for table in self._tables.values():
            if table.active is not None:
                table.active.flush()
                table.active.sync()  # journaled ones too
        self._last_sync = time.monotonic()

    def active_segment(self, symbol: str, *, kind: str = "trades") -> seg.ActiveWriter | None:
        """Writer: the open active segment of ``symbol`` (None when it has none)."""
        table = self._tables.get(self._folder(kind, symbol))
        return None if table is None else table.active

    def last_trade_id(self, symbol: str, *, kind: str = "trades") -> int | None:
        """The highest stored id of ``symbol`` (None when it has no rows)."""
        folder = self._folder(kind, symbol)
        table = self._tables.get(folder)
        if table is not None:
            return table.last_id
        if not folder.is_dir():
            return None
        ids = [s.last_id for s in self._segment_infos(folder)]
        active = self._active_batch(folder, self._schema(kind), None, None)
        if batch_len(active):
            ids.append(int(active[self._schema(kind).id][-1]))
        return max(ids) if ids else None

    # ------------------------------------------------------------------ recovery
    def _recover(self) -> None:
        """Salvage every active segment a previous writer left (clean exit or SIGKILL)."""
        roots = [(self._market_root(m) / kind, kind, schema) for m in MARKETS for kind, schema in SCHEMAS.items()]
        for root, kind, schema in roots:
            if not root.is_dir():
                continue
            for folder in sorted(p for p in root.iterdir() if p.is_dir()):
                for tmp in folder.glob(".*.tmp"):
                    tmp.unlink()  # a half-written file of a dead writer; its source still exists
                active = folder / seg.ACTIVE
                if not active.exists():
                    continue
                try:
                    rows = seg.read_active(active, schema)
                except StoreCorruptError as exc:
                    aside = active.with_name(f"active.corrupt-{int(time.time())}.h5x")
                    os.replace(active, aside)
                    log.error("%s: unreadable active segment moved to %s (%s)", folder.name, aside, exc)
                    continue
                n = batch_len(rows)
                symbol = self._folder_symbol(folder)
                table = self._table(kind, symbol)
                active.unlink()
                if n:
                    self.append(symbol, rows, kind=kind, flush=False)
                    self._seal_active(table)
                log.info("%s/%s: recovered %d row(s) from the previous writer's active segment",
                         kind, symbol, n)
        from quantlab.store.journal import replay

        replay(self)  # rows a journaling writer acknowledged but had not put in its tables

    # ------------------------------------------------------------------ klines
    def append_klines(self, symbol: str, interval: str, klines: dict[str, np.ndarray]) -> int:
        """Merge official kline rows (see :mod:`quantlab.store.klines`); returns rows added."""
        self._require_writer()
        iv = parse_timeframe(interval, "interval")
        return merge_klines(self._folder("klines", symbol) / kline_file_name(iv), klines)

    def klines(self, symbol: str, interval: str = "1m") -> pd.DataFrame:
        """Imported klines of ``symbol`` at ``interval``, all 11 official columns, indexed by open time."""
        files = interval_files(self._folder("klines", symbol))
        interval = parse_timeframe(interval, "interval").text
        if interval not in files:
            self._check_symbol(symbol, "klines")
            raise ValueError(f"interval: {symbol} has klines at {', '.join(sorted(files))}, not {interval!r}")
        k = read_klines(files[interval])
        index = pd.DatetimeIndex(k.pop("open_time").view("M8[ns]"), name="open_time").tz_localize("UTC")
        frame = pd.DataFrame(k, index=index)
        frame["close_time"] = pd.DatetimeIndex(frame["close_time"].to_numpy().view("M8[ns]")).tz_localize("UTC")
        return frame

    # ------------------------------------------------------------------ source time unit
    def note_time_unit(self, symbol: str, unit: str, from_id: int, *, kind: str = "trades") -> None:
        """Record that ``symbol``'s rows from id ``from_id`` on came in ``unit`` (the
        precision Binance sent: ``MILLISECOND`` or ``MICROSECOND``; stored times are ns
        either way). A no-op when the unit is the one already noted last."""
        self._require_writer()
        unit = str(unit).upper()
        if unit not in ("MILLISECOND", "MICROSECOND"):
            raise ValueError(f"unit: {unit!r} is not MILLISECOND or MICROSECOND")
        history = self.time_units(symbol, kind=kind)
        if history and history[-1]["unit"] == unit:
            return
        folder = self._folder(kind, symbol)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(folder / "time_unit.json", [*history, {"unit": unit, "from_id": int(from_id)}])

    def time_units(self, symbol: str, *, kind: str = "trades") -> list[dict]:
        """The source time units of ``symbol``'s rows, oldest first:
        ``[{"unit": "MILLISECOND", "from_id": 1}, {"unit": "MICROSECOND", "from_id": 5123}]``
        (empty when never noted, e.g. rows imported from archives)."""
        return _read_json(self._folder(kind, symbol) / "time_unit.json", [])

    # ------------------------------------------------------------------ gaps and counters
    def add_gap(self, symbol: str, first_missing_id: int, last_missing_id: int, reason: str,
                *, permanent: bool = True) -> None:
        """Record trade ids missing from the store (listed by ``gaps()`` and ``info()``).

        ``permanent=False``: an *open* gap, not backfilled yet but still to be re-attempted
        (after a ban, an outage or while Binance's history lags)."""
        self._require_writer()
        if last_missing_id < first_missing_id:
            raise ValueError("last_missing_id is below first_missing_id")
        path = self.path / "gaps.json"
        gaps = _read_json(path, [])
        gaps.append({
            "symbol": str(parse_symbol(symbol)), "first_id": int(first_missing_id),
            "last_id": int(last_missing_id), "count": int(last_missing_id - first_missing_id + 1),
            "reason": str(reason), "recorded_at": pd.Timestamp.now(tz="UTC").isoformat(),
            "permanent": bool(permanent),
        })
        atomic_write_json(path, gaps)

    def remove_gap(self, symbol: str, first_missing_id: int, last_missing_id: int) -> bool:
        """Drop the oldest gap entry ``(symbol, first, last)`` (filled, or re-recorded in
        parts); False when there is none."""
        self._require_writer()
        path = self.path / "gaps.json"
        gaps = _read_json(path, [])
        for k, g in enumerate(gaps):
            if (g["symbol"], g["first_id"], g["last_id"]) == (symbol.upper(), first_missing_id, last_missing_id):
                del gaps[k]
                atomic_write_json(path, gaps)
                return True
        return False

    def gaps(self, symbol: str | None = None) -> pd.DataFrame:
        """Known missing id ranges: ``symbol first_id last_id count reason recorded_at
        permanent`` (``permanent`` False: open, to be re-attempted)."""
        gaps = [{"permanent": True, **g} for g in _read_json(self.path / "gaps.json", [])]
        frame = pd.DataFrame(gaps, columns=["symbol", "first_id", "last_id", "count", "reason",
                                            "recorded_at", "permanent"])
        frame["permanent"] = frame["permanent"].astype(bool)
        if symbol is not None:
            frame = frame[frame["symbol"] == str(parse_symbol(symbol))].reset_index(drop=True)
        return frame

    def _count(self, symbol: str, name: str, n: int) -> None:
        path = self.path / "counters.json"
        counters = _read_json(path, {})
        counters.setdefault(symbol, {}).setdefault(name, 0)
        counters[symbol][name] += int(n)
        atomic_write_json(path, counters)

    def counters(self) -> dict:
        return _read_json(self.path / "counters.json", {})

    def info(self) -> pd.DataFrame:
        """One row per (symbol, kind): rows, first/last time, first/last id, ids missing
        between them, recorded gaps, rejected rows, last price; klines listed by interval."""
        rows = []
        gaps = self.gaps()
        counters = self.counters()
        for kind, schema in SCHEMAS.items():
            for symbol in self.symbols(kind):
                folder = self._folder(kind, symbol)
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
            for interval, path in sorted(interval_files(self._folder("klines", symbol)).items()):
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
