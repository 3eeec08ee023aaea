"""Replace a small JSON file atomically and durably: the one writer of ``store.json``,
``gaps.json``, ``counters.json``, ``status.json`` and the alerts' ``rules.json`` / ``state.json``.

A reader sees the old file or the new one, never a torn one, and after a power cut the file is
whichever of the two was last *completely* written: the data is written to a temp file in the
same folder, ``fsync``-ed, ``os.replace``-d over the target, and the folder is ``fsync``-ed so
the rename itself is on disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write_json(path: str | os.PathLike[str], data: Any, *, indent: int | None = 1,
                      default: Callable[[Any], Any] | None = None) -> None:
    """Write ``data`` as JSON (sorted keys, ``indent``) to ``path`` atomically and durably;
    ``default`` as for :func:`json.dump`. Creates the folder if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=indent, sort_keys=True, default=default)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a platform without directory handles (Windows): the rename is what we have
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on a directory; the file itself is synced
        pass
    finally:
        os.close(fd)
