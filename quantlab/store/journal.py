"""The write-ahead journal: one append-only file per store makes a writer's batches durable.

Why: with hundreds of symbols, making each batch durable in its own HDF5 table costs a fixed
~1.5-2 ms of CPU per table (7 column writes, two file flushes) plus, once a second, one
``fsync`` per table (~5 ms each on the development disk): 300 symbols spent most of each
second there and a trade waited up to two such cycles (receipt-to-durable p99 1.6-6.6 s). With
the journal a flush cycle is one ``write`` of every symbol's rows to one file (and, as the
store's ``fsync`` policy says, one ``fsync``); the HDF5 tables are updated later, each with
the rows of about a second at once, and never fsynced per interval: the journal covers them.

Layout (inside the store directory)::

    journal/journal-<seq, 12 digits>.qlj    append-only; the highest seq is the one written

A file is a run of records, one per (kind, symbol) batch::

    b"QLJ1" | payload length u32 | crc32(payload) u32 | payload
    payload: kind (u8 length + ascii) | symbol (u8 length + ascii) | rows u32 | columns u8
             then per column: name (u8 length + ascii) | numpy dtype str (u8 length + ascii)
                              | rows x itemsize raw little-endian bytes

A record is whole or it is ignored: replay stops reading a file at the first record whose
header, length or checksum does not hold (the tail a crash tore off, never acknowledged).

Lifecycle: the writer appends records (:meth:`JournalWriter.write`), rotates to a new file
every ``ROTATE_S`` seconds or ``ROTATE_BYTES``, and deletes a closed file once every row it
holds has been written to the HDF5 tables *and* those files are on disk (a checkpoint fsyncs
them on a helper thread, so the writer never waits for it). The next writer that opens the
store (after a crash, a SIGKILL, a power loss) replays every journal file
(:func:`replay`): ``TickStore.append`` stores each id at most once, so rows already in the
tables are skipped and the rest are added; then the journal is removed. Readers never look
at the journal: a row is visible to them once it reaches its table (see
:class:`JournaledTables`: ``visible_after_s`` is the longest wait, a few symbols are visible
every cycle).
"""

from __future__ import annotations

import logging
import os
import struct
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from quantlab.store.schema import SCHEMAS, Batch, batch_len, clean, concat, sort_unique
from quantlab.store.segments import fsync_path as _fsync

log = logging.getLogger(__name__)

FOLDER = "journal"
MAGIC = b"QLJ1"
HELD = "+held"  # kind suffix of records held behind a gap (see JournaledTables.journal)
_HEADER = struct.Struct("<4sII")
ROTATE_S = 30.0
ROTATE_BYTES = 64 * 2**20
FSYNC_INTERVAL_S = 1.0


def journal_files(store_path: Path) -> list[Path]:
    """The journal files of a store, oldest first (empty when it has none)."""
    folder = Path(store_path) / FOLDER
    if not folder.is_dir():
        return []
    return sorted(folder.glob("journal-*.qlj"))


def _seq(path: Path) -> int:
    return int(path.stem.split("-", 1)[1])


# ---------------------------------------------------------------------- records (pure)
def _short(text: str) -> bytes:
    raw = text.encode("ascii")
    if len(raw) > 255:
        raise ValueError(f"journal: name {text[:40]!r}... is longer than 255 bytes")
    return bytes([len(raw)]) + raw


def encode(kind: str, symbol: str, batch: Batch) -> bytes:
    """One record holding ``batch`` (a column batch of ``kind`` for ``symbol``)."""
    n = batch_len(batch)
    parts = [_short(kind), _short(symbol), struct.pack("<IB", n, len(batch))]
    for name, col in batch.items():
        col = np.ascontiguousarray(col)
        dt = col.dtype.newbyteorder("<") if col.dtype.byteorder == ">" else col.dtype
        parts += [_short(name), _short(dt.str), col.astype(dt, copy=False).tobytes()]
    payload = b"".join(parts)
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def _decode_payload(payload: bytes) -> tuple[str, str, Batch]:
    mv = memoryview(payload)
    pos = 0

    def short() -> str:
        nonlocal pos
        k = mv[pos]
        s = bytes(mv[pos + 1:pos + 1 + k]).decode("ascii")
        pos += 1 + k
        return s

    kind, symbol = short(), short()
    n, ncols = struct.unpack_from("<IB", payload, pos)
    pos += 5
    batch: Batch = {}
    for _ in range(ncols):
        name, dt = short(), np.dtype(short())
        size = n * dt.itemsize
        batch[name] = np.frombuffer(payload, dtype=dt, count=n, offset=pos).copy()
        pos += size
    if pos != len(payload):
        raise ValueError("record length does not match its columns")
    return kind, symbol, batch


def read_records(path: Path) -> tuple[list[tuple[str, str, Batch]], int]:
    """The whole records of one journal file and the number of bytes after the last of them
    (a torn tail: nonzero only after a crash in the middle of a write)."""
    data = Path(path).read_bytes()
    out, pos = [], 0
    while pos + _HEADER.size <= len(data):
        magic, length, crc = _HEADER.unpack_from(data, pos)
        end = pos + _HEADER.size + length
        if magic != MAGIC or end > len(data):
            break
        payload = data[pos + _HEADER.size:end]
        if zlib.crc32(payload) != crc:
            break
        try:
            out.append(_decode_payload(payload))
        except (ValueError, UnicodeDecodeError, TypeError, IndexError, struct.error):
            break
        pos = end
    return out, len(data) - pos


# ---------------------------------------------------------------------- replay (writer open)
def replay(store) -> int:
    """Put every row of the store's journal into its tables (ids already stored are skipped),
    make them durable, then delete the journal. Called by ``TickStore`` when a writer opens
    the store, after it salvaged the active segments. Returns the rows added."""
    files = journal_files(store.path)
    if not files:
        return 0
    per_table: dict[tuple[str, str], list[Batch]] = {}
    held: dict[tuple[str, str], list[Batch]] = {}
    torn = 0
    for path in files:
        records, tail = read_records(path)
        torn += tail
        for kind, symbol, batch in records:
            if kind.endswith(HELD):
                held.setdefault((kind[:-len(HELD)], symbol), []).append(batch)
            else:
                per_table.setdefault((kind, symbol), []).append(batch)
    added = 0
    for (kind, symbol), batches in per_table.items():
        rows = sort_unique(concat(batches), SCHEMAS[kind].id)
        added += store.append(symbol, rows, kind=kind, flush=False)
    for (kind, symbol), batches in held.items():
        rows = sort_unique(concat(batches), SCHEMAS[kind].id)
        _record_held_gaps(store, kind, symbol, rows[SCHEMAS[kind].id])
        added += store.append(symbol, rows, kind=kind, flush=False)
    store.flush()
    store.sync()  # on disk before the journal that held them goes
    for path in files:
        path.unlink()
    _fsync(Path(store.path) / FOLDER)
    if added or torn:
        log.info("journal: %d row(s) replayed into the tables%s", added,
                 f"; {torn} byte(s) of a torn last record ignored (never acknowledged)" if torn else "")
    return added


def _record_held_gaps(store, kind: str, symbol: str, ids: np.ndarray) -> None:
    """Before held rows go in: the ids missing below and between them (the gap that was
    being backfilled) become open gaps, unless ``gaps.json`` already covers them."""
    last = store.last_trade_id(symbol, kind=kind)
    if last is None:
        return
    ids = ids[ids > last]
    if not len(ids):
        return
    edges = np.concatenate([[last], ids])
    jump = np.flatnonzero(np.diff(edges) > 1)
    known = store.gaps(symbol)
    for k in jump:
        a, b = int(edges[k]) + 1, int(edges[k + 1]) - 1
        covered = ((known["first_id"] <= a) & (known["last_id"] >= b)).any() if len(known) else False
        if not covered:
            store.add_gap(symbol, a, b, "trades after these ids were journaled while they were being "
                          "backfilled when the writer stopped; re-attempted", permanent=False)


# ---------------------------------------------------------------------- writing
class JournalWriter:
    """The append side: records go to the newest file; ``fsync`` as the store's policy says
    (``'always'``: every write, before it returns; ``'interval'``: once a second, on a helper
    thread, so a slow disk never holds up the writer; ``'seal'`` and ``'never'``: none, the OS
    writes back). A written record survives a crash of the process under every policy."""

    def __init__(self, store_path: Path, fsync: str):
        self.folder = Path(store_path) / FOLDER
        self.folder.mkdir(exist_ok=True)
        self.fsync = fsync
        existing = journal_files(store_path)
        self.seq = (_seq(existing[-1]) + 1) if existing else 1
        self._fd: int | None = None
        self._opened = 0.0
        self.size = 0
        self._last_sync = 0.0
        self._sync_job: Future | None = None
        self._syncer = ThreadPoolExecutor(1, thread_name_prefix="quantlab-journal-sync")
        self._open()

    @property
    def path(self) -> Path:
        return self.folder / f"journal-{self.seq:012d}.qlj"

    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._opened, self.size = time.monotonic(), 0
        if self.fsync in ("always", "interval"):
            _fsync(self.folder)  # the new file's name, before anything in it counts

    def write(self, records: list[bytes]) -> None:
        """Append ``records`` with one write: they survive a crash of this process when this
        returns, and a power loss as the fsync policy says."""
        fd = self._fd
        if fd is None:
            raise ValueError("journal: write after close")
        data = b"".join(records)
        view = memoryview(data)
        while view:
            done = os.write(fd, view)
            view = view[done:]
        self.size += len(data)
        now = time.monotonic()
        if self.fsync == "always":
            os.fsync(fd)
        elif self.fsync == "interval" and now - self._last_sync >= FSYNC_INTERVAL_S \
                and (self._sync_job is None or self._sync_job.done()):
            self._last_sync = now
            self._sync_job = self._syncer.submit(_fsync_fd, os.dup(fd))  # closed there

    def due_to_rotate(self) -> bool:
        return self.size >= ROTATE_BYTES or (self.size > 0 and time.monotonic() - self._opened >= ROTATE_S)

    def rotate(self) -> int:
        """Close the current file (synced) and start the next; returns the closed file's seq."""
        closed = self.seq
        self.close()
        self.seq += 1
        self._open()
        return closed

    def close(self, *, final: bool = False) -> None:
        if self._fd is not None:
            if self.fsync != "never":
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
        if final:
            self._syncer.shutdown(wait=True)


@dataclass
class _Pending:
    """Rows of one table journaled but not yet written to it."""

    kind: str
    symbol: str
    parts: list[Batch] = field(default_factory=list)
    since: float = 0.0  # monotonic time of the oldest part
    seq: int = 0  # journal file of the oldest part
    last_id: int | None = None


@dataclass
class Applied:
    """What one :meth:`JournaledTables.apply` wrote to the tables."""

    tables: int = 0
    rows: int = 0
    #: receipt-to-visible latency (ns) of each row written, where the rows carry ``recv_time``
    visible_ns: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    cpu_s: float = 0.0


class JournaledTables:
    """A writer's journaled appends: durable at :meth:`journal`, visible at :meth:`apply`.

    ::

        jt = JournaledTables(store, last_ids={"BTCUSDT": 123})
        added = jt.journal([("BTCUSDT", cols), ...])   # durable now (one write for all)
        jt.apply(budget_s=0.1)                          # due tables (waited visible_after_s), then the rest
        ...
        jt.close()                                      # every row in its table, journal gone

    Two threads may share it: :meth:`journal` touches only the journal file (give
    ``last_ids`` for every symbol it will see, else it reads the store once per symbol),
    everything else runs on the store's writer thread. So a slow table write or a slow disk
    never holds up durability. A table's rows reach it in journal order; before another write
    to a table (a gap repair merging older ids), call :meth:`apply_table` so that order holds.
    Rows at or below the last id journaled for their table (never the case for a sequencer's
    output) are journaled too and merged by ``TickStore.append`` when applied (ids already
    stored are skipped there); they do not count as added.
    """

    def __init__(self, store, kind: str = "trades", *, visible_after_s: float = 1.0,
                 last_ids: dict[str, int | None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.store, self.kind, self.schema = store, kind, SCHEMAS[kind]
        self.visible_after_s = visible_after_s
        self.clock = clock  # how long rows waited (monotonic seconds; a test may drive it)
        self.writer = JournalWriter(store.path, store.fsync)
        store.journal = self  # TickStore.close applies and seals every row before it drops the journal
        self.pending: dict[str, _Pending] = {}
        self._last: dict[str, int | None] = dict(last_ids or {})
        # journal thread -> writer thread (deque appends and pops are atomic)
        self._inbox: deque[tuple[str, Batch, float, int]] = deque()
        self._rejected: deque[tuple[str, int]] = deque()
        self._rotated: deque[int] = deque()
        self._closed: list[int] = []  # journal files closed by rotation, not yet deleted
        self._checkpoint: tuple[Future, int] | None = None
        self._syncer = ThreadPoolExecutor(1, thread_name_prefix="quantlab-checkpoint")
        self._written: set[str] = set()  # tables written since the last checkpoint started
        self.rows_journaled = 0  # written by the journal thread only
        self.rows_applied = 0  # new rows written to tables; by the writer thread only

    # ---------------------------------------------------------------- durable
    def journal(self, batches: list[tuple[str, Batch]], held: Sequence[tuple[str, Batch]] = ()) -> list[int]:
        """Journal each ``(symbol, column batch)``: the rows survive a crash of the process
        when this returns. Returns the new rows per batch (ids above the last journaled or
        stored; bad rows are rejected and counted as ``TickStore.append`` does).

        ``held``: rows behind a gap still being backfilled, made durable now but not written
        to their tables (a table takes its ids in order): the caller journals them again
        once the gap is settled. Replay after a crash stores them and records the ids before
        them as an open gap, re-attempted by the next recorder or ``quantlab repair``."""
        records, added = [], []
        for symbol, cols in held:
            batch, _ = clean({k: np.asarray(v) for k, v in cols.items()}, self.schema, symbol)
            if batch_len(batch):
                records.append(encode(self.kind + HELD, symbol, batch))
        now = self.clock()
        staged = []
        for symbol, cols in batches:
            batch, rejected = clean({k: np.asarray(v) for k, v in cols.items()}, self.schema, symbol)
            if rejected:
                self._rejected.append((symbol, rejected))
            ids = batch.get(self.schema.id)
            if ids is None or not len(ids):
                added.append(0)
                continue
            last = self._last_id(symbol)
            added.append(len(ids) if last is None else int(np.count_nonzero(ids > last)))
            records.append(encode(self.kind, symbol, batch))
            staged.append((symbol, batch, now, self.writer.seq))
            self._last[symbol] = int(ids[-1]) if last is None else max(last, int(ids[-1]))
        if records:
            self.writer.write(records)
            self._inbox.extend(staged)  # after the write: applied only once durable
            self.rows_journaled += sum(added)
        if self.writer.due_to_rotate():
            self._rotated.append(self.writer.rotate())
        return added

    def _last_id(self, symbol: str) -> int | None:
        if symbol not in self._last:
            self._last[symbol] = self.store.last_trade_id(symbol, kind=self.kind)
        return self._last[symbol]

    # ---------------------------------------------------------------- visible (writer thread)
    def _take_inbox(self) -> None:
        closed = []
        while self._rotated:
            closed.append(self._rotated.popleft())
        # records of a rotated file were queued before its rotation: take them after it
        while self._inbox:
            symbol, batch, since, seq = self._inbox.popleft()
            p = self.pending.get(symbol)
            if p is None:
                p = self.pending[symbol] = _Pending(self.kind, symbol, since=since, seq=seq)
            p.parts.append(batch)
        self._closed += closed
        while self._rejected:
            symbol, n = self._rejected.popleft()
            self.store._count(symbol, "rejected", n)

    def pending_rows(self) -> int:
        """Rows journaled and not yet written to their tables (any thread)."""
        return self.rows_journaled - self.rows_applied

    def apply(self, budget_s: float) -> Applied:
        """Write journaled rows to their tables, then one flush makes them visible.

        ``visible_after_s`` is the *longest* a row should wait, not the shortest: first the
        tables whose oldest rows waited that long (due), oldest first, until ``budget_s``
        seconds (wall clock) are spent (at least one due table is written per call); then,
        while the budget lasts, every other pending table, oldest first. A few symbols are
        visible every cycle; hundreds degrade to about one table write per symbol per
        ``visible_after_s``. Also deletes journal files a checkpoint made redundant."""
        self._take_inbox()
        now = self.clock()
        todo = sorted(self.pending.values(), key=lambda p: p.since)
        ndue = sum(1 for p in todo if now - p.since >= self.visible_after_s)
        out = self._apply(todo, budget_s, due=ndue)
        self._housekeep()
        return out

    def apply_table(self, symbol: str) -> Applied:
        """Write ``symbol``'s journaled rows to its table now (before another write to it)."""
        self._take_inbox()
        p = self.pending.get(symbol)
        return self._apply([p] if p is not None else [], None)

    def apply_all(self) -> Applied:
        self._take_inbox()
        return self._apply(sorted(self.pending.values(), key=lambda p: p.since), None)

    def _apply(self, todo: list[_Pending], budget_s: float | None, due: int | None = None) -> Applied:
        """Write ``todo`` in order; with a budget, the first ``due`` until it is spent (at least
        one), the rest only while some of it is left."""
        out = Applied()
        if not todo:
            return out
        t0, c0 = time.perf_counter(), time.thread_time()
        visible = []
        for i, p in enumerate(todo):
            if budget_s is not None and due is not None and i >= due \
                    and time.perf_counter() - t0 >= budget_s:
                break
            batch = concat(p.parts)
            n = self.store.append(p.symbol, batch, kind=self.kind, flush=False)
            active = self.store.active_segment(p.symbol, kind=self.kind)
            if active is not None:
                active.journaled = True  # the journal covers it: no fsync per interval
            del self.pending[p.symbol]
            self._written.add(p.symbol)
            out.tables += 1
            out.rows += batch_len(batch)
            self.rows_applied += n
            if "recv_time" in batch:
                visible.append(batch["recv_time"])
            if budget_s is not None and i < (due if due is not None else len(todo)) \
                    and time.perf_counter() - t0 >= budget_s:
                break
        if not out.tables:
            return out
        self.store.flush()  # visible to readers on return
        if visible:
            out.visible_ns = time.time_ns() - np.concatenate(visible)
        out.cpu_s = time.thread_time() - c0
        return out

    # ---------------------------------------------------------------- checkpoints
    def _housekeep(self) -> None:
        if self._checkpoint is not None:
            fut, upto = self._checkpoint
            if not fut.done():
                return
            self._checkpoint = None
            try:
                fut.result()
            except OSError as exc:  # the files stay; the next checkpoint tries again
                log.warning("journal checkpoint failed (%s); the journal is kept", exc)
            else:
                self._delete_upto(upto)
        if not self._closed:
            return
        oldest_pending = min((p.seq for p in self.pending.values()), default=self.writer.seq)
        done = [s for s in self._closed if s < oldest_pending]
        if not done:
            return
        # every row of these files is in its table: put the tables on disk, then drop them
        fds, folders = [], []
        for symbol in self._written:
            active = self.store.active_segment(symbol, kind=self.kind)
            if active is None:
                continue  # sealed meanwhile: sealing fsyncs the segment
            fds.append(os.dup(active.file.id.get_vfd_handle()))
            folders.append(active.folder)
        self._written = set()
        sync = self.store.fsync != "never"
        self._checkpoint = (self._syncer.submit(_sync_all, fds, folders, sync), max(done))

    def _delete_upto(self, upto: int) -> None:
        for s in [s for s in self._closed if s <= upto]:
            path = self.writer.folder / f"journal-{s:012d}.qlj"
            path.unlink(missing_ok=True)
            self._closed.remove(s)

    def close(self) -> None:
        """Every journaled row into its table and on disk; then the journal is deleted (the
        store stays open). ``TickStore.close`` does the same without the extra fsyncs: it
        seals the tables, then calls :meth:`discard`."""
        self.apply_all()
        self.store.sync()
        self.discard()

    def discard(self) -> None:
        """Delete the journal: call only once every row it holds is in a table on disk."""
        if self._checkpoint is not None:
            self._checkpoint[0].exception()  # wait; its files are deleted below anyway
            self._checkpoint = None
        self._syncer.shutdown(wait=True)
        self.writer.close(final=True)
        for path in journal_files(self.store.path):
            path.unlink()
        if self.store.fsync != "never":
            _fsync(self.writer.folder)
        if self.store.journal is self:
            self.store.journal = None


def _fsync_fd(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_all(fds: list[int], folders: list[Path], sync: bool) -> None:
    """fsync each file (duplicated descriptors, closed here) and each folder (new names)."""
    try:
        if sync:
            for fd in fds:
                os.fsync(fd)
            for folder in set(folders):
                _fsync(folder)
    finally:
        for fd in fds:
            os.close(fd)
