"""Rebuild ``tests/data`` from the project's real-data folder (the ``data`` folder of the shared project material).

The test suite reads only ``tests/data``; this script documents, and can redo, how each slice
was cut from the original files. Run from the project root::

    python tests/data/make_slices.py [SOURCE_DIR]

What it keeps (see README.md beside it for the sources):
- ``binance_ws/spot/*.gz``: the REST depth snapshot line, every ``@trade`` message and the
  first 200 ``@bookTicker`` and 200 ``@depth`` messages of each capture.
- ``trades/``, ``klines/``, ``fixtures/``: copied unchanged.
- ``trx/``: the header and the first 1,000 rows of each file, plus, for the USD-M file, the
  rows around trade id 548331095 (the real zero-price, zero-quantity anomaly).
"""

from __future__ import annotations

import gzip
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _captures(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.glob("*.gz")):
        kept, book, depth = [], 0, 0
        with gzip.open(path, "rt") as f:
            for line in f:
                if '"stream"' not in line or "@trade" in line:
                    kept.append(line)
                elif "@bookTicker" in line and book < 200:
                    kept.append(line)
                    book += 1
                elif "@depth" in line and depth < 200:
                    kept.append(line)
                    depth += 1
        # mtime=0: the same input gives the same bytes
        with open(dst / path.name, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
            out.write("".join(kept).encode())


def _trx(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.glob("*.csv")):
        lines = path.read_text().splitlines(keepends=True)
        keep = set(range(0, 1001))
        for i, line in enumerate(lines):
            if ",548331095," in line:
                keep.update(range(i - 50, i + 51))
        (dst / path.name).write_text("".join(lines[i] for i in sorted(keep) if i < len(lines)))


def main(argv: list[str]) -> int:
    src = Path(argv[0]) if argv else HERE.parents[2] / "shared" / "data"
    if not src.is_dir():
        print(f"make_slices: {src} is not a folder: pass the real-data folder as the argument")
        return 2
    _captures(src / "binance_ws" / "spot", HERE / "binance_ws" / "spot")
    for name in ("trades", "klines", "fixtures"):
        shutil.copytree(src / name, HERE / name, dirs_exist_ok=True)
    _trx(src / "trx", HERE / "trx")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
