"""Result memory that is already faulted in: a small pool of large read buffers.

A 5M-row read fills ~165 MB of new arrays. Fresh memory from the OS has to be faulted in
and zeroed page by page first, which on a busy 2-core machine costs more than the read
itself (bench_store: ~180 ms for 160 MB, against ~20 ms to fill memory already mapped);
pyarrow, polars and ArcticDB avoid it with memory pools of their own. This pool keeps the
buffers of earlier read results once nothing references them any more (no array, view,
Series or DataFrame built on them) and hands them out again.

A buffer is reused only when the pool holds the last reference to it (numpy views keep
their base buffer alive, so a live view pins it); idle buffers are released after
``IDLE_SECONDS`` or when the pool exceeds ``POOL_BYTES``. Only arrays of at least
``MIN_BYTES`` come from the pool.
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np

POOL_BYTES = 512 * 2**20
MIN_BYTES = 1 * 2**20
IDLE_SECONDS = 30.0

class _Entry:
    """A pooled buffer (a uint8 array that owns its memory) and when it was last handed out.
    Compared by identity."""

    __slots__ = ("buf", "used")

    def __init__(self, buf: np.ndarray, used: float):
        self.buf, self.used = buf, used


_lock = threading.Lock()
_bufs: list[_Entry] = []


def _refs(entry: _Entry) -> int:
    return sys.getrefcount(entry.buf)


def _baseline() -> int:
    holder = [_Entry(np.empty(1, np.uint8), 0.0)]
    return _refs(holder[0])


_IDLE_REFS = _baseline()  # refcount of a buffer only the pool holds, measured on this path


def empty(n: int, dtype) -> np.ndarray:
    """``np.empty(n, dtype)``, from a pooled buffer nobody uses when one fits."""
    dtype = np.dtype(dtype)
    nbytes = n * dtype.itemsize
    if nbytes < MIN_BYTES:
        return np.empty(n, dtype)
    now = time.monotonic()
    with _lock:
        idle = [e for e in _bufs if _refs(e) <= _IDLE_REFS]
        expired = [e for e in idle if now - e.used > IDLE_SECONDS]
        for e in expired:  # release buffers idle too long
            _bufs.remove(e)
        fits = [e for e in idle if e not in expired and nbytes <= e.buf.nbytes <= 2 * nbytes]
        if fits:
            entry = min(fits, key=lambda e: e.buf.nbytes)
            entry.used = now
            return entry.buf[:nbytes].view(dtype)
        buf = np.empty(nbytes, np.uint8)
        _bufs.append(_Entry(buf, now))
        total = sum(e.buf.nbytes for e in _bufs)
        for e in sorted(_bufs, key=lambda e: e.used):  # over the cap: drop idle buffers, oldest first
            if total <= POOL_BYTES:
                break
            if e.buf is not buf and _refs(e) <= _IDLE_REFS:
                _bufs.remove(e)
                total -= e.buf.nbytes
        return buf.view(dtype)


def clear() -> None:
    """Release every idle buffer now."""
    with _lock:
        _bufs[:] = [e for e in _bufs if _refs(e) > _IDLE_REFS]
