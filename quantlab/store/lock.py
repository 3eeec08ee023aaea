"""The store's single-writer lock: an ``flock`` on ``<store>/writer.lock`` holding the pid.

The kernel drops an flock when its process dies (even by SIGKILL), so a crashed writer
never leaves a stale lock behind; the pid in the file is only there to name the holder.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from quantlab.errors import StoreLockedError

LOCK_NAME = "writer.lock"


class WriterLock:
    def __init__(self, store_dir: Path):
        self.path = store_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StoreLockedError(
                f"store {self.path.parent} is already being written by pid {holder}; "
                "stop that process or open the store read-only (TickStore(path))"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


def writer_pid(store_dir: Path) -> int | None:
    """The pid of the live writer of ``store_dir``, or None when no process holds the lock."""
    path = Path(store_dir) / LOCK_NAME
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 64, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
