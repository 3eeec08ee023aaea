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

The store is read by :class:`quantlab.store.reader.StoreReader` and written by
:class:`quantlab.store.writer.StoreWriter`; both answer the reads of
:class:`quantlab.store.view.StoreView`, and :mod:`quantlab.store.layout` says where a store
keeps what. :class:`TickStore` is the one public entry: ``TickStore(path)`` opens a reader,
``TickStore(path, mode="a")`` the writer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quantlab.store.layout import (
    FORMAT,
    LEGACY_SOURCE,
    SOURCES,
    check_source,
    check_source_name,
    store_source,
)
from quantlab.store.reader import StoreReader
from quantlab.store.rows import TickRows
from quantlab.store.writer import (
    DEFAULT_FSYNC,
    DIRECT_SEAL_ROWS,
    FSYNC_INTERVAL_S,
    SEGMENT_ROWS,
    StoreWriter,
    check_options,
)
from quantlab.timeframes import Timeframe
from quantlab.timestamps import to_ns

__all__ = [
    "TickStore", "check_source", "store_source", "to_ns", "FORMAT", "SOURCES", "LEGACY_SOURCE",
    "SEGMENT_ROWS", "DIRECT_SEAL_ROWS", "DEFAULT_FSYNC", "FSYNC_INTERVAL_S",
]


class TickStore:
    """Per-symbol tick data in HDF5. ``mode="r"`` reads (any number, any process);
    ``mode="a"`` is the single writer (creates the store if needed).

    >>> st = TickStore("data/store")                       # doctest: +SKIP
    >>> st.read("BTCUSDT", start="2024-08-09").tail(2)     # doctest: +SKIP
                                       trade_id     price      qty  is_buyer_maker ...
    time
    2024-08-09 00:05:04.101000+00:00  3735703162  61489.99  0.00050            True
    """

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
        check_options(compression, fsync)
        check_source_name(source)
        self.path = Path(path).expanduser()
        self.mode = mode
        self._options = (compression, fsync)  # as given (a writer reads compression from store.json)
        self._impl: StoreReader | StoreWriter
        if mode == "r":
            self._impl = StoreReader(self.path, source=source)
        else:
            self._impl = StoreWriter(self.path, compression=compression, source=source, fsync=fsync)

    # ------------------------------------------------------------------ lifecycle
    @property
    def fsync(self) -> str:
        """The writer's fsync policy (a reader: the one it was given, unused)."""
        return self._impl.fsync if isinstance(self._impl, StoreWriter) else self._options[1]

    @property
    def compression(self) -> str | None:
        """The store's compression of sealed segments (a writer reads it from ``store.json``)."""
        return self._impl.compression if isinstance(self._impl, StoreWriter) else self._options[0]

    @property
    def segment_rows(self) -> int:
        """Rows per sealed segment (the writer's; tests lower it to roll segments over)."""
        return self._impl.segment_rows if isinstance(self._impl, StoreWriter) else SEGMENT_ROWS

    @segment_rows.setter
    def segment_rows(self, rows: int) -> None:
        if isinstance(self._impl, StoreWriter):
            self._impl.segment_rows = rows

    @property
    def journal(self) -> Any:
        """The writer's write-ahead journal (:mod:`quantlab.store.journal`), when a journaling
        writer (the recorder) attached one; None otherwise and on a reader."""
        return self._impl.journal if isinstance(self._impl, StoreWriter) else None

    @journal.setter
    def journal(self, journal: Any) -> None:
        self._writer().journal = journal

    def active_segment(self, symbol: str, *, kind: str = "trades") -> Any:
        """Writer: the open active segment of ``symbol`` (None when it has none)."""
        return self._writer().active_segment(symbol, kind=kind)

    def _count(self, symbol: str, name: str, n: int) -> None:
        self._writer()._count(symbol, name, n)

    @property
    def direct_seal(self) -> bool:
        """Rows that fill a segment go straight into the sealed segment (the writer's default);
        False writes them through the active segment first, as before 0.2 (to compare the two)."""
        return self._impl.direct_seal if isinstance(self._impl, StoreWriter) else StoreWriter.direct_seal

    @direct_seal.setter
    def direct_seal(self, on: bool) -> None:
        if isinstance(self._impl, StoreWriter):
            self._impl.direct_seal = bool(on)

    def close(self) -> None:
        """Writer: flush and seal every active segment, release the lock. Reader: close handles."""
        self._impl.close()

    def __enter__(self) -> TickStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TickStore({str(self.path)!r}, mode={self.mode!r})"

    @property
    def writable(self) -> bool:
        return isinstance(self._impl, StoreWriter) and self._impl.writable

    def _writer(self) -> StoreWriter:
        if not isinstance(self._impl, StoreWriter) or not self._impl.writable:
            raise PermissionError(
                f"{self!r} is read-only; open TickStore(path, mode='a') to write (one writer at a time)"
            )
        return self._impl

    def writer_pid(self) -> int | None:
        """Pid of the process that holds the writer lock, or None when nobody writes."""
        return self._impl.writer_pid()

    @property
    def source(self) -> str:
        """``'binance'`` (real exchange data, live or imported) or ``'demo'`` (simulated)."""
        return self._impl.source

    def symbols(self, kind: str | None = None) -> list[str]:
        """Symbols with data: trades, agg trades or imported klines (or of one ``kind``);
        spot ones as ``BTCUSDT``, futures as ``um:BTCUSDT`` / ``cm:BTCUSD_PERP``."""
        return self._impl.symbols(kind)

    # ------------------------------------------------------------------ reading
    def read(self, symbol: str, start=None, end=None, *, kind: str = "trades") -> pd.DataFrame:
        """Ticks of ``symbol`` with ``start <= time < end`` (UTC; None = unbounded).

        Returns a frame indexed by exchange trade time (tz-aware UTC, named ``time``) with
        columns ``trade_id price qty is_buyer_maker event_time recv_time`` (``agg_id ...
        first_trade_id last_trade_id`` for ``kind="aggtrades"``), sorted by id.
        """
        return self._impl.read(symbol, start, end, kind=kind)

    def read_after(self, symbol: str, after_id: int | None, *, kind: str = "trades") -> TickRows:
        """The rows of ``symbol`` with id > ``after_id`` (None: all), sorted by id, as
        :class:`~quantlab.store.rows.TickRows` (numpy columns; ``rows.last_id`` is the next
        ``after_id``; ``rows.to_frame()`` the frame :meth:`read` returns): what a follower
        polls for. No rows (or no such symbol yet): an empty ``TickRows``.

        Cheap when called repeatedly with the last id it returned: the active segment is
        read from the row after the previous call's last one, sealed segments only when a
        roll-over sealed rows the follower has not seen.
        """
        return self._impl.read_after(symbol, after_id, kind=kind)

    def bars(self, symbol: str, timeframe: str | Timeframe = "1m", start=None, end=None) -> pd.DataFrame:
        """OHLCV bars of ``symbol``: ``open high low close volume vwap trades source``, indexed
        by bar open time (UTC), whole bars only.

        One bar source (see :func:`quantlab.store.bars.combine_sources`): each bar comes from
        the stored ticks (by trade time, the bar rule of :mod:`quantlab.store.bars`) where the
        store has its trades, else from imported klines (aggregated up to ``timeframe``, any
        stored interval that nests in it); ``source`` says which (``ticks`` | ``klines``).
        ``timeframe``: a name (see :func:`quantlab.timeframes.parse_timeframe`; ``1M`` is a
        month) or a :class:`~quantlab.timeframes.Timeframe`.
        Bars are those whose open lies in ``[floor(start), end)``: a ``start`` inside a bar
        gives that whole bar, never a partial one. Bars without trades are omitted.
        """
        return self._impl.bars(symbol, timeframe, start, end)

    def bar_closes(self, symbol: str, timeframe: str | Timeframe = "1m", start=None, end=None) -> pd.Series:
        """``bars(symbol, timeframe, start, end)["close"]``, cheaper where the bars come from one
        kline interval only. What ``quantlab.closes`` reads."""
        return self._impl.bar_closes(symbol, timeframe, start, end)

    def refresh(self) -> None:
        """Readers see new rows on every read; this drops cached handles to force a reopen."""
        self._impl.refresh()

    def last_trade_id(self, symbol: str, *, kind: str = "trades") -> int | None:
        """The highest stored id of ``symbol`` (None when it has no rows)."""
        return self._impl.last_trade_id(symbol, kind=kind)

    def klines(self, symbol: str, interval: str = "1m") -> pd.DataFrame:
        """Imported klines of ``symbol`` at ``interval``, all 11 official columns, indexed by open time."""
        return self._impl.klines(symbol, interval)

    def time_units(self, symbol: str, *, kind: str = "trades") -> list[dict]:
        """The source time units of ``symbol``'s rows, oldest first:
        ``[{"unit": "MILLISECOND", "from_id": 1}, {"unit": "MICROSECOND", "from_id": 5123}]``
        (empty when never noted, e.g. rows imported from archives)."""
        return self._impl.time_units(symbol, kind=kind)

    def gaps(self, symbol: str | None = None) -> pd.DataFrame:
        """Known missing id ranges: ``symbol first_id last_id count reason recorded_at
        permanent`` (``permanent`` False: open, to be re-attempted)."""
        return self._impl.gaps(symbol)

    def counters(self) -> dict:
        """Rows rejected per symbol: ``{"BTCUSDT": {"rejected": 3}}``."""
        return self._impl.counters()

    def info(self) -> pd.DataFrame:
        """One row per (symbol, kind): rows, first/last time, first/last id, ids missing
        between them, recorded gaps, rejected rows, last price; klines listed by interval."""
        return self._impl.info()

    # ------------------------------------------------------------------ writing (mode="a")
    def append(self, symbol: str, ticks, *, kind: str = "trades", flush: bool = True) -> int:
        """Add rows; ids already stored are skipped. Returns the number of rows added.

        ``ticks``: a DataFrame (time as a column or the index), structured array or dict of
        arrays with the table's columns. Rows with zero, negative or non-finite price or qty
        are rejected, counted (``info()``) and logged. With ``flush=True`` the rows are
        visible to readers and survive a crash of this process when this returns; they
        survive a power loss as the store's ``fsync`` policy says (see ``TickStore``).
        """
        return self._writer().append(symbol, ticks, kind=kind, flush=flush)

    def flush(self) -> None:
        """Make every appended row visible to readers and safe from a process crash; on disk
        (safe from a power loss) as the ``fsync`` policy says."""
        self._writer().flush()

    def sync(self) -> None:
        """Flush and fsync every active segment now (whatever the policy): what was appended
        survives a power loss. A recorder calls this on a timer when ``fsync='interval'``."""
        self._writer().sync()

    def append_klines(self, symbol: str, interval: str, klines: dict[str, np.ndarray]) -> int:
        """Merge official kline rows (see :mod:`quantlab.store.klines`); returns rows added."""
        return self._writer().append_klines(symbol, interval, klines)

    def note_time_unit(self, symbol: str, unit: str, from_id: int, *, kind: str = "trades") -> None:
        """Record that ``symbol``'s rows from id ``from_id`` on came in ``unit`` (the
        precision Binance sent: ``MILLISECOND`` or ``MICROSECOND``; stored times are ns
        either way). A no-op when the unit is the one already noted last."""
        self._writer().note_time_unit(symbol, unit, from_id, kind=kind)

    def add_gap(self, symbol: str, first_missing_id: int, last_missing_id: int, reason: str,
                *, permanent: bool = True) -> None:
        """Record trade ids missing from the store (listed by ``gaps()`` and ``info()``).

        ``permanent=False``: an *open* gap, not backfilled yet but still to be re-attempted
        (after a ban, an outage or while Binance's history lags)."""
        self._writer().add_gap(symbol, first_missing_id, last_missing_id, reason, permanent=permanent)

    def remove_gap(self, symbol: str, first_missing_id: int, last_missing_id: int) -> bool:
        """Drop the oldest gap entry ``(symbol, first, last)`` (filled, or re-recorded in
        parts); False when there is none."""
        return self._writer().remove_gap(symbol, first_missing_id, last_missing_id)
