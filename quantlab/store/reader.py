"""``StoreReader``: reads a store (any number of them, in any process, beside its one writer).

A reader never takes the writer lock and writes nothing. It sees each table's active segment
through a SWMR handle (cached, reopened when the writer replaced the file) and keeps a
follower cursor per active segment, so that polling :meth:`StoreView.read_after` with the
last id it returned reads only the rows committed since.
"""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np

from quantlab.errors import StoreCorruptError
from quantlab.store import segments as seg
from quantlab.store.layout import check_format, check_source, check_source_name
from quantlab.store.schema import Batch, TableSchema
from quantlab.store.view import StoreView

log = logging.getLogger(__name__)


def _close_quietly(f: h5py.File) -> None:
    """Close a reader's handle on a file that may be gone or replaced (h5py raises OSError or
    RuntimeError for a file whose HDF5 state is already invalid); nothing to lose on a reader."""
    try:
        f.close()
    except (OSError, RuntimeError) as exc:
        log.debug("closing %s: %s", getattr(f, "filename", f), exc)


class StoreReader(StoreView):
    """A reader of the existing store at ``path`` (FileNotFoundError when there is none,
    StoreCorruptError when the folder is not a store). ``source`` (``'binance'`` | ``'demo'``):
    what the caller reads; a store holding the other kind is refused (StoreIdentityError)."""

    def __init__(self, path: Path, *, source: str | None = None):
        super().__init__(path)
        self._active_handles: dict[Path, tuple[int, h5py.File]] = {}
        self._cursors: dict[Path, tuple[int, int, int | None]] = {}  # follower position per active file
        check_source_name(source)
        marker = self.path / "store.json"
        if source is not None and marker.exists():
            check_source(self.path, source)
        if not self.path.exists():
            raise FileNotFoundError(
                f"store {self.path} does not exist; create it with `quantlab import` or `quantlab record`"
            )
        if not marker.exists():
            raise StoreCorruptError(
                f"{self.path} is not a quantlab store (no store.json); point --store at a store directory"
            )
        check_format(marker)

    def close(self) -> None:
        """Close the cached handles (the reader stays usable: the next read reopens them)."""
        for _, f in self._active_handles.values():
            _close_quietly(f)
        self._active_handles.clear()

    def refresh(self) -> None:
        """Readers see new rows on every read; this drops cached handles to force a reopen."""
        self.close()

    def _active_batch(self, folder: Path, schema: TableSchema, start_ns, end_ns) -> Batch:
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

    def _active_after(self, folder: Path, schema: TableSchema, after_id: int | None) -> Batch:
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
