"""HDF5 segment files: one table (kind, symbol) is a folder of segments.

``seg-<first id, 20 digits>.h5`` are *sealed*: immutable (read-only on disk), attributes hold their id and time
bounds. By default their columns are contiguous and uncompressed: a range read inside one
segment is a private (copy-on-write) memory map of the file, no copy at all; a read across
segments is one ``pread`` per column and segment straight into the result. A store created
with ``compression="blosc2-zstd"`` (hdf5plugin; zstd with a per-column shuffle, smaller than
Parquet-zstd on ticks), ``"lzf"`` or ``"gzip"`` trades read speed for 2-4x less disk; its
segments keep the first time of each chunk (``chunk_first_time``) so that a range read
decompresses only the chunks it needs. ``active.h5`` is the writer's open segment, written in SWMR mode,
uncompressed (SWMR + compression + partial chunks bloats files), with a ``committed``
row counter that the writer updates only after the rows it counts are flushed: readers
refresh the counter first and read ``min(committed, shape)`` rows, so they never see a
row that is not durable.

After a writer dies (even by SIGKILL) its ``active.h5`` can still be opened with
``swmr=True``; the next writer *salvages* it into a sealed segment, so no manual step
(h5clear) is ever needed and only the active segment can ever need salvage.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from h5py import h5s

from quantlab.errors import StoreCorruptError
from quantlab.store import pool
from quantlab.store.schema import NAT, Batch, TableSchema, batch_len

log = logging.getLogger(__name__)

ACTIVE = "active.h5"
CHUNK_ROWS = 65_536
#: Chunk of the active (appended) segment. Every flush rewrites the partly filled last chunk of
#: each column whole: with 65,536-row chunks that was 3.2 MB per table per flush (~1 GB a flush
#: at 300 recorded symbols); 1,024 rows keep it at 56 kB.
ACTIVE_CHUNK_ROWS = 1_024


def active_chunk_rows(first_rows: int) -> int:
    """Chunk of a new active segment whose first append has ``first_rows`` rows: a bulk writer
    (an import, a benchmark: 65,536 rows or more at once) gets :data:`CHUNK_ROWS`-row chunks,
    each written whole (1,024-row chunks made a 100,000-row append 98 chunk writes per
    column, most of its cost); a live writer keeps :data:`ACTIVE_CHUNK_ROWS`."""
    return CHUNK_ROWS if first_rows >= CHUNK_ROWS else ACTIVE_CHUNK_ROWS
COMPRESSIONS = (None, "lzf", "gzip", "blosc2-zstd")
FSYNC_POLICIES = ("interval", "seal", "always", "never")


def _filter_args(compression: str | None, dtype: str) -> dict:
    """h5py ``create_dataset`` keywords of a sealed segment's column of ``dtype``."""
    if compression == "blosc2-zstd":
        import hdf5plugin  # registers the Blosc2 filter with HDF5 (reading needs it too)

        b = hdf5plugin.Blosc2
        # measured per column on 1M ticks (bench_store): byte shuffle makes ids and times
        # (slowly rising int64) 2-50x smaller, it makes prices and sizes (float64) larger;
        # the 0/1 side byte packs best bit-shuffled
        kind = np.dtype(dtype).kind
        filt = b.SHUFFLE if kind == "i" else b.BITSHUFFLE if kind == "u" else b.NOFILTER
        return dict(b(cname="zstd", clevel=5, filters=filt))
    return {"compression": compression, "shuffle": True}


def fsync_path(path: Path) -> None:
    """Ask the OS to put ``path`` (a file or a folder's entries) on disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sealed_name(first_id: int) -> str:
    return f"seg-{first_id:020d}.h5"


@dataclass(frozen=True)
class SegmentInfo:
    """Bounds of a sealed segment, read from its attributes (cheap; no data read)."""

    path: Path
    rows: int
    first_id: int
    last_id: int
    first_time: int
    last_time: int
    time_sorted: bool


_filters_ready = False


def _ensure_filters() -> None:
    """Register hdf5plugin's filters (Blosc2) once, before reading a chunked dataset."""
    global _filters_ready
    if not _filters_ready:
        import hdf5plugin  # noqa: F401

        _filters_ready = True


def _open(path: Path, mode: str = "r", **kw) -> h5py.File:
    try:
        return h5py.File(path, mode, **kw)
    except OSError as exc:
        raise StoreCorruptError(
            f"cannot open {path}: {exc}. If the file is damaged, move it out of the store"
        ) from exc


def read_info(path: Path) -> SegmentInfo:
    with _open(path) as f:
        a = f.attrs
        try:
            return SegmentInfo(
                path, int(a["rows"]), int(a["first_id"]), int(a["last_id"]),
                int(a["first_time"]), int(a["last_time"]), bool(a["time_sorted"]),
            )
        except KeyError as exc:
            raise StoreCorruptError(f"{path} is not a quantlab segment (no {exc} attribute)") from exc


def write_sealed(folder: Path, schema: TableSchema, batch: Batch | list[Batch], compression: str | None = None,
                 fsync: bool = False) -> SegmentInfo:
    """Write ``batch`` (sorted by id, unique; or consecutive parts of one, the way an active
    segment received them) as a sealed segment, atomically (tmp + rename); ``fsync``: on
    disk (file, then its folder entry) when this returns, surviving a power loss."""
    parts = [b for b in (batch if isinstance(batch, list) else [batch]) if batch_len(b)]
    if compression is not None and len(parts) > 1:
        from quantlab.store.schema import concat

        parts = [concat(parts)]
    sizes = [batch_len(b) for b in parts]
    n = sum(sizes)
    first_id, last_id = int(parts[0][schema.id][0]), int(parts[-1][schema.id][-1])
    t_min = min(int(b["time"].min()) for b in parts)
    t_max = max(int(b["time"].max()) for b in parts)
    time_sorted = all(len(b["time"]) < 2 or bool(np.all(b["time"][1:] >= b["time"][:-1])) for b in parts) and all(
        int(a["time"][-1]) <= int(b["time"][0]) for a, b in zip(parts, parts[1:], strict=False))
    path = folder / sealed_name(first_id)
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    # Blosc2: 64k-row chunks, so a range read decompresses little beyond the range
    chunk = max(1, min(n, CHUNK_ROWS if compression == "blosc2-zstd" else CHUNK_ROWS * 4))
    with h5py.File(tmp, "w", libver="latest") as f:
        for name, dt in schema.columns:
            cols = [b[name] for b in parts if name in b]
            if len(cols) < len(parts) or (name in schema.optional and all(np.all(c == NAT) for c in cols)):
                continue  # imported rows carry no receipt times: store nothing
            if compression is not None:
                f.create_dataset(name, data=cols[0].astype(dt, copy=False),
                                 **{"chunks": (chunk,), **_filter_args(compression, dt)})
            elif len(cols) == 1:
                f.create_dataset(name, data=cols[0].astype(dt, copy=False))  # contiguous
            else:  # contiguous, written part by part: no concatenated copy of the segment
                dsid = f.create_dataset(name, shape=(n,), dtype=dt).id
                lo = 0
                for c in cols:
                    fspace = dsid.get_space()
                    fspace.select_hyperslab((lo,), (len(c),))
                    dsid.write(h5s.create_simple((len(c),)), fspace, np.ascontiguousarray(c, dtype=dt))
                    lo += len(c)
        if compression is not None and time_sorted:
            # the first time of each chunk: a range read decompresses only its edge chunks' times
            f.attrs["chunk_first_time"] = parts[0]["time"][::chunk].astype("i8")
        f.attrs.update(rows=n, first_id=first_id, last_id=last_id, kind=schema.kind,
                       first_time=t_min, last_time=t_max, time_sorted=time_sorted)
    make_read_only(tmp)
    if fsync:
        fsync_path(tmp)  # the data before the name that makes it count
    os.replace(tmp, path)  # a merge replaces a sealed segment whole; it never edits one
    if fsync:
        fsync_path(folder)
    return SegmentInfo(path, n, first_id, last_id, t_min, t_max, time_sorted)


def make_read_only(path: Path) -> None:
    """Drop every write bit: sealed files are immutable on disk, so no tool (an export, an
    editor) can overwrite one by mistake. Renaming over or unlinking it needs only the folder's
    write permission, which is how the writer replaces a segment."""
    mode = os.stat(path).st_mode
    os.chmod(path, mode & ~0o222)


def read_sealed(info: SegmentInfo, schema: TableSchema, start_ns: int | None, end_ns: int | None) -> Batch:
    """Rows of a sealed segment with ``start_ns <= time < end_ns`` (None: unbounded)."""
    if (start_ns is None or start_ns <= info.first_time) and (end_ns is None or info.last_time < end_ns):
        start_ns = end_ns = None  # wholly inside: no need to scan its times
    with _open(info.path) as f:
        return _read_range(f, schema, info.rows, info.time_sorted, start_ns, end_ns)


def read_sealed_many(infos: list[SegmentInfo], schema: TableSchema,
                     start_ns: int | None, end_ns: int | None) -> Batch:
    """Rows of several sealed segments (sorted by id) in ``[start_ns, end_ns)``, read straight
    into preallocated result arrays: one ``read_direct`` per column and segment, no concat."""
    plan: list[tuple[SegmentInfo, int, int, dict[str, int | None]]] = []
    unsorted: list[Batch] = []
    for info in infos:
        inside = (start_ns is None or start_ns <= info.first_time) and (end_ns is None or info.last_time < end_ns)
        with _open(info.path) as f:
            names = {name: _raw_offset(f[name], dt) for name, dt in schema.columns if name in f}
            if inside:
                plan.append((info, 0, info.rows, names))
            elif not info.time_sorted:
                unsorted.append(_read_range(f, schema, info.rows, False, start_ns, end_ns))
            else:
                time_offset = names.get("time")
                if time_offset is not None:  # raw: search a map of it (touches ~log n pages)
                    lo, hi = _search_raw(info, time_offset, start_ns, end_ns)
                else:
                    _ensure_filters()
                    lo, hi = _search_chunked(f, info.rows, start_ns, end_ns)
                if hi > lo:
                    plan.append((info, lo, hi, names))
    if unsorted:  # rare (imported files whose times step back): the simple path
        from quantlab.store.schema import concat

        return concat([read_sealed(i, schema, start_ns, end_ns) for i in infos])
    if len(plan) == 1 and all(off is not None for off in plan[0][3].values()):
        mapped = _map_sealed(*plan[0], schema)
        if mapped is not None:
            return mapped
    total = sum(hi - lo for _, lo, hi, _ in plan)
    present = set().union(*(names for *_, names in plan)) if plan else set()
    # result memory from the pool: already faulted in when an earlier result has been dropped
    out: Batch = {name: pool.empty(total, dt) for name, dt in schema.columns if name in present}
    pos = 0
    for info, lo, hi, names in plan:
        n = hi - lo
        if all(off is not None for off in names.values()):
            # contiguous, uncompressed: read the bytes straight into the result (no HDF5 copy)
            fd = os.open(info.path, os.O_RDONLY)
            try:
                for name, col in out.items():
                    off = names.get(name)  # None: not in this segment (those in it are all raw)
                    if off is not None:
                        _pread_exact(fd, col[pos:pos + n], off + lo * col.itemsize, info.path)
                    else:
                        col[pos:pos + n] = NAT
            finally:
                os.close(fd)
        else:
            _ensure_filters()
            with _open(info.path) as f:
                for name, col in out.items():
                    if name in names:
                        f[name].read_direct(col, np.s_[lo:hi], np.s_[pos:pos + n])
                    else:
                        col[pos:pos + n] = NAT
        pos += n
    return out


def _map_sealed(info: SegmentInfo, lo: int, hi: int, offsets: dict[str, int | None],
                schema: TableSchema) -> Batch | None:
    """Rows ``lo:hi`` of one raw (contiguous, unfiltered) sealed segment with no copy: each
    column is a view of a private (copy-on-write) memory map of the file, so the result is
    the page cache's pages until someone writes to it, and writing never reaches the file.
    None when the file cannot be mapped (the caller then reads it)."""
    try:
        with open(info.path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            mm = mmap.mmap(fh.fileno(), size, access=mmap.ACCESS_COPY)  # MAP_PRIVATE
    except (OSError, ValueError):
        return None
    out: Batch = {}
    for name, dt in schema.columns:
        off = offsets.get(name)
        if off is None:
            continue
        itemsize = np.dtype(dt).itemsize
        if off + hi * itemsize > size:
            raise StoreCorruptError(f"{info.path} is shorter than its datasets say (truncated file?)")
        out[name] = np.frombuffer(mm, dtype=dt, count=hi - lo, offset=off + lo * itemsize)
    return out


def _search_chunked(f: h5py.File, rows: int, start_ns: int | None, end_ns: int | None) -> tuple[int, int]:
    """Row bounds of ``[start_ns, end_ns)`` in a filtered segment's sorted time column; with a
    ``chunk_first_time`` attribute only the chunk holding each bound is read."""
    ds = f["time"]
    firsts = f.attrs.get("chunk_first_time")
    if firsts is None or ds.chunks is None:
        t = ds[:rows]
        return (int(np.searchsorted(t, start_ns, "left")) if start_ns is not None else 0,
                int(np.searchsorted(t, end_ns, "left")) if end_ns is not None else rows)
    chunk = ds.chunks[0]

    def bound(x: int | None, default: int) -> int:
        if x is None:
            return default
        c = max(int(np.searchsorted(firsts, x, "left")) - 1, 0)  # chunks after c start at >= x
        a, b = c * chunk, min((c + 1) * chunk, rows)
        return a + int(np.searchsorted(ds[a:b], x, "left"))

    return bound(start_ns, 0), bound(end_ns, rows)


def _search_raw(info: SegmentInfo, offset: int, start_ns: int | None, end_ns: int | None) -> tuple[int, int]:
    """Row bounds of ``[start_ns, end_ns)`` in a sealed segment's raw, sorted time column."""
    with open(info.path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        if offset + info.rows * 8 > len(mm):
            raise StoreCorruptError(f"{info.path} is shorter than its datasets say (truncated file?)")
        t = np.frombuffer(mm, dtype="i8", count=info.rows, offset=offset)
        lo = int(np.searchsorted(t, start_ns, "left")) if start_ns is not None else 0
        hi = int(np.searchsorted(t, end_ns, "left")) if end_ns is not None else info.rows
        del t  # the map closes only once no array views it
    return lo, hi


def _raw_offset(ds: h5py.Dataset, dt: str) -> int | None:
    """Byte offset of a contiguous, unfiltered dataset stored in native byte order, else None."""
    if ds.chunks is not None or ds.compression is not None or ds.dtype != np.dtype(dt):
        return None
    return ds.id.get_offset()


def _pread_exact(fd: int, out: np.ndarray, offset: int, path: Path) -> None:
    view = out.data.cast("B")  # the array's own memoryview
    done = 0
    while done < len(view):
        got = os.preadv(fd, [view[done:]], offset + done)
        if got <= 0:
            raise StoreCorruptError(f"{path} is shorter than its datasets say (truncated file?)")
        done += got


def _read_range(f: h5py.File, schema: TableSchema, rows: int, time_sorted: bool,
                start_ns: int | None, end_ns: int | None) -> Batch:
    lo, hi, mask = 0, rows, None
    if start_ns is not None or end_ns is not None:
        if f["time"].chunks is not None:
            _ensure_filters()
        t = f["time"][:rows]
        if time_sorted:
            lo = int(np.searchsorted(t, start_ns, "left")) if start_ns is not None else 0
            hi = int(np.searchsorted(t, end_ns, "left")) if end_ns is not None else rows
        else:
            mask = np.ones(rows, dtype=bool)
            if start_ns is not None:
                mask &= t >= start_ns
            if end_ns is not None:
                mask &= t < end_ns
    out: Batch = {}
    n = max(hi - lo, 0)
    if f["time"].chunks is not None:
        _ensure_filters()
    for name, dt in schema.columns:
        if name not in f:
            continue  # an optional column this segment does not hold (rows imported, not recorded)
        col = np.empty(n, dtype=dt)
        if n:
            f[name].read_direct(col, np.s_[lo:hi])
        out[name] = col if mask is None else col[mask[lo:hi]]
    return out


# Rows a writer keeps in memory (all tables of the process) so that sealing writes them from
# memory instead of reading its own active file back; past the budget, sealing reads the file.
SEAL_CACHE_BYTES = 256 * 2**20
_seal_cache_used = 0


class ActiveWriter:
    """The writer's SWMR segment: append, flush (durable + visible), seal.

    Appends go through h5py's low-level dataset ids (extent, hyperslab, write): the high-level
    ``ds[lo:hi] = ...`` costs ~0.1 ms of Python per column and batch, most of a 1,000-row
    append. The rows appended are also kept in memory (within ``SEAL_CACHE_BYTES``) so that
    :meth:`rows_for_seal` need not read the file back."""

    def __init__(self, folder: Path, schema: TableSchema, chunk_rows: int = ACTIVE_CHUNK_ROWS):
        self.folder, self.schema = folder, schema
        self.path = folder / ACTIVE
        tmp = folder / f".active.{os.getpid()}.tmp"
        f = h5py.File(tmp, "w", libver="latest")
        for name, dt in schema.columns:
            f.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dt, chunks=(int(chunk_rows),))
        f.create_dataset("committed", shape=(1,), maxshape=(1,), dtype="i8", chunks=(1,))
        f.attrs.update(kind=schema.kind)
        f.swmr_mode = True
        os.replace(tmp, self.path)  # readers only ever see a file already in SWMR mode
        self.file = f
        self._ids = {name: f[name].id for name, _ in schema.columns}
        self._committed_id = f["committed"].id
        self.rows = 0  # written
        self.committed = 0  # flushed and counted
        self.last_id: int | None = None
        self._cache: list[Batch] | None = []  # every row written, while within the budget
        self._cached_bytes = 0
        self._name_synced = False
        #: a write-ahead journal holds these rows (:mod:`quantlab.store.journal`): a flush
        #: never fsyncs the file; the journal's checkpoints and :meth:`sync` do
        self.journaled = False

    def append(self, batch: Batch) -> None:
        global _seal_cache_used
        n = batch_len(batch)
        if not n:
            return
        lo, hi = self.rows, self.rows + n
        mspace = h5s.create_simple((n,))
        nat: np.ndarray | None = None  # one column of NaT, shared by the columns batch lacks
        full: Batch = {}
        for name, dt in self.schema.columns:
            if name in batch:
                # a copy: the caller may reuse its arrays, and the copy is what sealing writes
                col = np.array(batch[name], dtype=dt, copy=True)
            else:
                if nat is None:
                    nat = np.full(n, NAT, dtype="i8")
                col = nat
            full[name] = col
            dsid = self._ids[name]
            dsid.set_extent((hi,))
            fspace = dsid.get_space()
            fspace.select_hyperslab((lo,), (n,))
            dsid.write(mspace, fspace, col)
        self.rows = hi
        self.last_id = int(batch[self.schema.id][-1])
        if self._cache is not None:
            size = sum(c.nbytes for c in full.values())
            if _seal_cache_used + size <= SEAL_CACHE_BYTES:
                self._cache.append(full)
                self._cached_bytes += size
                _seal_cache_used += size
            else:
                self._drop_cache()

    def _drop_cache(self) -> None:
        global _seal_cache_used
        _seal_cache_used -= self._cached_bytes
        self._cache, self._cached_bytes = None, 0

    def rows_for_seal(self) -> list[Batch]:
        """Every committed row (call after :meth:`flush`), as the parts appended when it kept
        them in memory, else read back from the file."""
        if self._cache is not None and self.committed == self.rows \
                and sum(batch_len(b) for b in self._cache) == self.rows:
            return list(self._cache)
        return [read_active_file(self.file, self.schema)]

    def flush(self, fsync: bool = False) -> None:
        """Make the written rows visible to readers (and, with ``fsync``, on disk)."""
        fsync = fsync and not self.journaled
        if self.committed == self.rows:
            if fsync:
                self.sync()
            return
        self.file.flush()  # data first ...
        self._committed_id.write(h5s.ALL, h5s.ALL, np.array([self.rows], dtype="i8"))
        self.file.flush()  # ... then the counter that makes it visible
        self.committed = self.rows
        if fsync:
            self.sync()

    def sync(self) -> None:
        """fsync the active file: what :meth:`flush` made visible survives a power loss."""
        os.fsync(self.file.id.get_vfd_handle())
        if not self._name_synced:  # the folder entry of a new active file, once
            fsync_path(self.folder)
            self._name_synced = True

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.flush()
        with contextlib.suppress(Exception):
            self.file.close()
        if self._cache is not None:
            self._drop_cache()


def read_active(path: Path, schema: TableSchema) -> Batch:
    """Committed rows of an active segment (live writer, dead writer, or closed)."""
    with _open(path, "r", swmr=True) as f:
        return read_active_file(f, schema)


def read_active_tail(f: h5py.File, schema: TableSchema, lo: int) -> tuple[Batch, int]:
    """Committed rows ``lo:`` of an active segment, and the committed count (for followers)."""
    f["committed"].refresh()
    committed = int(f["committed"][0])
    for name, _ in schema.columns:
        f[name].refresh()
    rows = min([committed] + [f[name].shape[0] for name, _ in schema.columns])
    lo = min(lo, rows)
    out: Batch = {}
    for name, dt in schema.columns:
        col = np.empty(rows - lo, dtype=dt)
        if rows > lo:
            f[name].read_direct(col, np.s_[lo:rows])
        out[name] = col
    return out, rows


def read_active_file(f: h5py.File, schema: TableSchema, start_ns=None, end_ns=None) -> Batch:
    f["committed"].refresh()
    committed = int(f["committed"][0])
    for name, _ in schema.columns:
        f[name].refresh()
    rows = min([committed] + [f[name].shape[0] for name, _ in schema.columns])
    # time order within the active segment is checked on read (it is small)
    t = f["time"][:rows]
    time_sorted = bool(rows < 2 or np.all(t[1:] >= t[:-1]))
    return _read_range(f, schema, rows, time_sorted, start_ns, end_ns)
