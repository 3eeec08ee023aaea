"""``StoreWriter``: the single writer of a store (creates it if needed).

Opening one takes the store's writer lock (:class:`quantlab.store.lock.WriterLock`) and
salvages every active segment a previous writer left (clean exit or SIGKILL); then it keeps
one table per (kind, symbol) it writes: its sealed segments and the active (SWMR) one.
Rows go in by :meth:`StoreWriter.append` (ids already stored are skipped), become visible to
readers and safe from a process crash on :meth:`StoreWriter.flush`, and on disk as the
``fsync`` policy says. The writer reads too (everything a :class:`StoreView` answers), its
own active segments from the files it has open.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from quantlab.atomic import atomic_write_json
from quantlab.errors import StoreCorruptError
from quantlab.store import segments as seg
from quantlab.store.klines import kline_file_name, merge_klines
from quantlab.store.layout import (
    FORMAT,
    check_format,
    check_source,
    check_source_name,
    read_json,
    schema_of,
)
from quantlab.store.lock import WriterLock
from quantlab.store.schema import (
    NAT,
    Batch,
    TableSchema,
    batch_len,
    clean,
    concat,
    sort_unique,
    take,
    to_batch,
)
from quantlab.store.view import StoreView
from quantlab.symbols import parse_symbol
from quantlab.timeframes import parse_timeframe

log = logging.getLogger(__name__)

SEGMENT_ROWS = 1_000_000
DIRECT_SEAL_ROWS = SEGMENT_ROWS // 2  # a tail batch this large with no active rows is sealed directly
DEFAULT_FSYNC = "interval"  # see TickStore: flushed rows survive a power loss within ~1 s
FSYNC_INTERVAL_S = 1.0


def check_options(compression: str | None, fsync: str) -> None:
    """Refuse a ``compression`` or ``fsync`` policy the store does not know, naming the choices."""
    if compression not in seg.COMPRESSIONS:
        raise ValueError(f"compression: {compression!r} is not one of None, 'lzf', 'gzip', 'blosc2-zstd'")
    if fsync not in seg.FSYNC_POLICIES:
        raise ValueError(f"fsync: {fsync!r} is not one of {', '.join(map(repr, seg.FSYNC_POLICIES))}")


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


#: an active segment set aside while a new writer re-stores its rows (readers skip ``.h5x``)
RECOVERING = "active.recovering-"

class StoreWriter(StoreView):
    """The single writer of the store at ``path``; ``compression``, ``source`` and ``fsync`` as
    :class:`quantlab.store.TickStore` describes them. Raises StoreLockedError when another
    process writes the store."""

    segment_rows = SEGMENT_ROWS
    #: rows that fill a segment go straight into the sealed segment (False: through the active
    #: segment first, as before 0.2; kept to compare the two paths)
    direct_seal = True

    def __init__(self, path: Path, *, compression: str | None = None, source: str | None = None,
                 fsync: str = DEFAULT_FSYNC):
        check_options(compression, fsync)
        check_source_name(source)
        super().__init__(path)
        self.fsync = fsync
        self._last_sync = 0.0
        self.compression: str | None = compression
        self._tables: dict[Path, _Table] = {}  # keyed by the table's folder
        #: the write-ahead journal of a writer that uses one (:mod:`quantlab.store.journal`)
        self.journal: Any = None
        marker = self.path / "store.json"
        if source is not None and marker.exists():
            check_source(self.path, source)  # before taking the lock or touching any file
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
            check_format(marker)
            self.compression = read_json(marker, {}).get("compression")
            self._recover()
        except BaseException:
            self._lock.release()
            raise

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Flush and seal every active segment, release the lock."""
        if self._lock.held:
            journal = self.journal  # a JournaledTables writing through this store, if any
            if journal is not None:
                journal.apply_all()  # every journaled row into its table before the seals
            for table in self._tables.values():
                self._seal_active(table)
            if journal is not None:
                journal.discard()  # each of its rows is in a sealed segment now (fsynced as the policy says)
                self.journal = None
            self._lock.release()

    def __repr__(self) -> str:
        return f"StoreWriter({str(self.path)!r})"

    @property
    def writable(self) -> bool:
        return self._lock.held

    def _require_writer(self) -> None:
        if not self.writable:
            raise PermissionError(
                f"{self!r} is closed; open TickStore(path, mode='a') to write (one writer at a time)"
            )

    # ------------------------------------------------------------------ reading its own segments
    def _active_batch(self, folder: Path, schema: TableSchema, start_ns, end_ns) -> Batch:
        table = self._tables.get(folder)
        if table is not None and table.active is not None:  # our own writer's segment
            return seg.read_active_file(table.active.file, schema, start_ns, end_ns)
        return {}  # the writer salvaged every other active segment when it opened

    def _active_after(self, folder: Path, schema: TableSchema, after_id: int | None) -> Batch:
        return self._active_batch(folder, schema, None, None)

    def last_trade_id(self, symbol: str, *, kind: str = "trades") -> int | None:
        """As :meth:`TickStore.last_trade_id <quantlab.store.TickStore.last_trade_id>`."""
        table = self._tables.get(self.layout.folder(kind, symbol))
        if table is not None:
            return table.last_id
        return super().last_trade_id(symbol, kind=kind)

    # ------------------------------------------------------------------ writing
    def _table(self, kind: str, symbol: str) -> _Table:
        folder = self.layout.folder(kind, symbol)
        table = self._tables.get(folder)
        if table is None:
            folder.mkdir(parents=True, exist_ok=True)
            table = _Table(schema_of(kind), folder, self._segment_infos(folder))
            self._tables[folder] = table
        return table

    def append(self, symbol: str, ticks, *, kind: str = "trades", flush: bool = True) -> int:
        """As :meth:`TickStore.append <quantlab.store.TickStore.append>`."""
        self._require_writer()
        symbol = str(parse_symbol(symbol))
        schema = schema_of(kind)
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
                    self._active(table, batch_len(part)).append(part)
            return
        lo = 0
        while lo < n:
            held = table.active.rows if table.active is not None else 0
            room = self.segment_rows - held
            part = take(batch, slice(lo, lo + room))
            lo += batch_len(part)
            if self.direct_seal and batch_len(part) == room:
                # these rows fill the segment: written once, straight into the sealed segment
                # with the active rows (never into the active file first)
                self._seal_active(table, also=part)
                continue
            active = self._active(table, batch_len(part))
            active.append(part)
            if active.rows >= self.segment_rows:
                self._seal_active(table)

    def _active(self, table: _Table, first_rows: int = 0) -> seg.ActiveWriter:
        if table.active is None:
            table.active = seg.ActiveWriter(table.folder, table.schema, seg.active_chunk_rows(first_rows))
        return table.active

    def _seal_active(self, table: _Table, also: Batch | None = None) -> None:
        """Seal the active segment's rows, and ``also`` (rows after them, not yet written
        anywhere) in the same sealed segment. Readers see the sealed segment whole or not at
        all (tmp + rename); until the rename they see the active rows only."""
        active = table.active
        if active is None and also is None:
            return
        rows: list[Batch] = []
        if active is not None:
            active.flush()
            rows = active.rows_for_seal()
        if also is not None:  # every column, as the active segment holds them (NaT where absent)
            n = batch_len(also)
            rows = [*rows, {name: also[name] if name in also else np.full(n, NAT, dtype=dt)
                            for name, dt in table.schema.columns}]
        if sum(batch_len(b) for b in rows):
            table.sealed.append(seg.write_sealed(table.folder, table.schema, rows, self.compression,
                                                 self._sync_seals))
            table.sealed.sort(key=lambda s: s.first_id)
        if active is None:
            return
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
        """As :meth:`TickStore.flush <quantlab.store.TickStore.flush>`."""
        self._require_writer()
        now = time.monotonic()
        sync = self.fsync == "always" or (self.fsync == "interval" and now - self._last_sync >= FSYNC_INTERVAL_S)
        for table in self._tables.values():
            if table.active is not None:
                table.active.flush(fsync=sync)
        if sync:
            self._last_sync = now

    def sync(self) -> None:
        """As :meth:`TickStore.sync <quantlab.store.TickStore.sync>`."""
        self._require_writer()
        for table in self._tables.values():
            if table.active is not None:
                table.active.flush()
                table.active.sync()  # journaled ones too
        self._last_sync = time.monotonic()

    def active_segment(self, symbol: str, *, kind: str = "trades") -> seg.ActiveWriter | None:
        """The open active segment of ``symbol`` (None when it has none)."""
        table = self._tables.get(self.layout.folder(kind, symbol))
        return None if table is None else table.active

    # ------------------------------------------------------------------ recovery
    def _recover(self) -> None:
        """Salvage every active segment a previous writer left (clean exit or SIGKILL).

        The active file is first renamed aside (``active.recovering-<ns>.h5x``, which readers
        never open) and deleted only once its rows are sealed, so a writer killed while
        recovering leaves them for the next one (which re-appends them; ids stored meanwhile
        are dropped as duplicates).
        """
        for folder, kind, schema in self.layout.table_folders():
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink()  # a half-written file of a dead writer; its source still exists
            active = folder / seg.ACTIVE
            if active.exists():
                os.replace(active, folder / f"{RECOVERING}{time.time_ns()}.h5x")
            aside = sorted(folder.glob(f"{RECOVERING}*.h5x"))
            if not aside:
                continue
            parts = []
            for path in aside:
                try:
                    parts.append(seg.read_active(path, schema))
                except StoreCorruptError as exc:
                    corrupt = path.with_name(f"active.corrupt-{int(time.time())}.h5x")
                    os.replace(path, corrupt)
                    log.error("%s: unreadable active segment moved to %s (%s)", folder.name, corrupt, exc)
            rows = sort_unique(concat(parts), schema.id) if parts else {}
            n = batch_len(rows)
            symbol = self.layout.folder_symbol(folder)
            table = self._table(kind, symbol)
            if n:
                self.append(symbol, rows, kind=kind, flush=False)
                self._seal_active(table)
            for path in aside:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            log.info("%s/%s: recovered %d row(s) from the previous writer's active segment",
                     kind, symbol, n)
        from quantlab.store.journal import replay

        replay(self)  # rows a journaling writer acknowledged but had not put in its tables

    # ------------------------------------------------------------------ klines
    def append_klines(self, symbol: str, interval: str, klines: dict[str, np.ndarray]) -> int:
        """As :meth:`TickStore.append_klines <quantlab.store.TickStore.append_klines>`."""
        self._require_writer()
        iv = parse_timeframe(interval, "interval")
        return merge_klines(self.layout.folder("klines", symbol) / kline_file_name(iv), klines)

    # ------------------------------------------------------------------ notes beside the data
    def note_time_unit(self, symbol: str, unit: str, from_id: int, *, kind: str = "trades") -> None:
        """As :meth:`TickStore.note_time_unit <quantlab.store.TickStore.note_time_unit>`."""
        self._require_writer()
        unit = str(unit).upper()
        if unit not in ("MILLISECOND", "MICROSECOND"):
            raise ValueError(f"unit: {unit!r} is not MILLISECOND or MICROSECOND")
        history = self.time_units(symbol, kind=kind)
        if history and history[-1]["unit"] == unit:
            return
        folder = self.layout.folder(kind, symbol)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(folder / "time_unit.json", [*history, {"unit": unit, "from_id": int(from_id)}])

    def add_gap(self, symbol: str, first_missing_id: int, last_missing_id: int, reason: str,
                *, permanent: bool = True) -> None:
        """As :meth:`TickStore.add_gap <quantlab.store.TickStore.add_gap>`."""
        self._require_writer()
        if last_missing_id < first_missing_id:
            raise ValueError("last_missing_id is below first_missing_id")
        path = self.path / "gaps.json"
        gaps = read_json(path, [])
        gaps.append({
            "symbol": str(parse_symbol(symbol)), "first_id": int(first_missing_id),
            "last_id": int(last_missing_id), "count": int(last_missing_id - first_missing_id + 1),
            "reason": str(reason), "recorded_at": pd.Timestamp.now(tz="UTC").isoformat(),
            "permanent": bool(permanent),
        })
        atomic_write_json(path, gaps)

    def remove_gap(self, symbol: str, first_missing_id: int, last_missing_id: int) -> bool:
        """As :meth:`TickStore.remove_gap <quantlab.store.TickStore.remove_gap>`."""
        self._require_writer()
        path = self.path / "gaps.json"
        gaps = read_json(path, [])
        for k, g in enumerate(gaps):
            if (g["symbol"], g["first_id"], g["last_id"]) == (symbol.upper(), first_missing_id, last_missing_id):
                del gaps[k]
                atomic_write_json(path, gaps)
                return True
        return False

    def _count(self, symbol: str, name: str, n: int) -> None:
        path = self.path / "counters.json"
        counters = read_json(path, {})
        counters.setdefault(symbol, {}).setdefault(name, 0)
        counters[symbol][name] += int(n)
        atomic_write_json(path, counters)
