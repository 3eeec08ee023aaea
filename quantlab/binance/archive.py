"""Official data.binance.vision files: trades, aggTrades and klines (``.csv`` or ``.zip``).

Layouts (header row optional; spot files have none, futures files have one)::

    trades     id, price, qty, quoteQty, time, isBuyerMaker[, isBestMatch]
    aggTrades  aggId, price, qty, firstId, lastId, time, isBuyerMaker[, isBestMatch]
    klines     openTime, open, high, low, close, volume, closeTime, quoteVolume,
               trades, takerBuyBase, takerBuyQuote, ignore

The kind and symbol come from the file name (``BTCUSDT-trades-2025-01-01.csv``,
``ETHUSDT-aggTrades-...``, ``SOLUSDT-1m-2025-07-13.zip``) and the column count must agree.
Timestamps are detected per file: Binance switched spot files from milliseconds to
microseconds on 2025-01-01; both become exact int64 nanoseconds. Prices are parsed with
round-trip precision (the same float64 that ``float("61837.63")`` gives).
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from quantlab.errors import LayoutError
from quantlab.pandas_compat import EXACT_FLOATS

CHUNK_ROWS = 500_000
_INTERVAL = re.compile(r"^\d+[smhdwM]$")


@dataclass(frozen=True)
class ArchiveFile:
    """What a file name says: ``kind`` in {'trades', 'aggtrades', 'klines'}."""

    path: Path
    symbol: str
    kind: str
    interval: str | None = None


def identify(path: str | Path) -> ArchiveFile:
    """Kind and symbol from an official file name, or a LayoutError saying what was expected."""
    p = Path(path)
    name = p.name
    for suffix in (".zip", ".csv"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    else:
        raise LayoutError(f"{p}: expected a .csv or .zip file from data.binance.vision")
    parts = name.split("-")
    symbol = parts[0].upper()
    if len(parts) < 2 or not symbol.replace("_", "").isalnum():
        raise LayoutError(
            f"{p}: cannot tell the symbol and kind from the name; expected e.g. "
            "BTCUSDT-trades-2025-01-01.zip, BTCUSDT-aggTrades-....zip or BTCUSDT-1m-2025-01-01.zip"
        )
    tokens = [t.lower() for t in parts[1:]]
    if "aggtrades" in tokens:
        return ArchiveFile(p, symbol, "aggtrades")
    if "trades" in tokens:
        return ArchiveFile(p, symbol, "trades")
    if _INTERVAL.match(parts[1]):
        return ArchiveFile(p, symbol, "klines", parts[1])
    raise LayoutError(
        f"{p}: not a trades, aggTrades or klines file; expected e.g. "
        "BTCUSDT-trades-2025-01-01.zip, BTCUSDT-aggTrades-....zip or BTCUSDT-1m-2025-01-01.zip"
    )


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix.lower() == ".zip":
        try:
            zf = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise LayoutError(f"{path}: not a valid zip file") from None
        members = [m for m in zf.namelist() if m.lower().endswith(".csv")]
        if len(members) != 1:
            raise LayoutError(f"{path}: expected one .csv inside the zip, found {len(members)}")
        return io.TextIOWrapper(zf.open(members[0]), encoding="utf-8")
    return open(path, encoding="utf-8")


def _time_unit_factor(values: np.ndarray, path: Path) -> int:
    """Factor to nanoseconds, from the magnitude of epoch timestamps (ms, µs or ns)."""
    v = values[values > 0]
    if not len(v):
        raise LayoutError(f"{path}: no valid timestamps")
    m = float(np.median(v))
    if 1e11 <= m < 1e14:
        return 1_000_000  # ms
    if 1e14 <= m < 1e17:
        return 1_000  # µs
    if 1e17 <= m < 1e20:
        return 1
    raise LayoutError(f"{path}: timestamps like {int(m)} are not epoch ms, µs or ns")


_COLUMNS = {
    "trades": (6, 7),
    "aggtrades": (7, 8),
    "klines": (12, 12),
}


def _first_line(path: Path) -> str:
    with _open_text(path) as fh:
        return fh.readline().strip()


def read_chunks(af: ArchiveFile, chunk_rows: int = CHUNK_ROWS) -> Iterator[tuple[dict[str, np.ndarray], int]]:
    """Yield (column batch, bytes-ish progress) per chunk; columns as the store expects."""
    first = _first_line(af.path)
    if not first:
        return
    cells = first.split(",")
    lo, hi = _COLUMNS[af.kind]
    if not lo <= len(cells) <= hi:
        raise LayoutError(
            f"{af.path}: {len(cells)} columns; a {af.kind} file has {lo if lo == hi else f'{lo} or {hi}'}"
        )
    try:
        float(cells[1])
        header = None
    except ValueError:
        header = 0
    ncols = len(cells)
    fh = _open_text(af.path)
    try:
        reader = pd.read_csv(
            fh, header=None, skiprows=1 if header == 0 else 0, chunksize=chunk_rows,
            dtype=_dtypes(af.kind, ncols), names=list(range(ncols)), **EXACT_FLOATS,
        )
        factor = None
        for chunk in reader:
            if chunk.isna().any().any():
                bad = int(chunk.index[chunk.isna().any(axis=1)][0]) + (2 if header == 0 else 1)
                raise LayoutError(f"{af.path}: line {bad} has an empty or non-numeric cell")
            time_col = {"trades": 4, "aggtrades": 5, "klines": 0}[af.kind]
            if factor is None:
                factor = _time_unit_factor(chunk[time_col].to_numpy("i8"), af.path)
            yield _columns(af.kind, chunk, factor), len(chunk)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, LayoutError):
            raise
        raise LayoutError(f"{af.path}: not a {af.kind} file ({str(exc).splitlines()[0]})") from None
    finally:
        fh.close()


def _dtypes(kind: str, ncols: int) -> dict[int, str]:
    if kind == "trades":
        d = {0: "int64", 1: "float64", 2: "float64", 3: "float64", 4: "int64", 5: "boolean"}
        if ncols == 7:
            d[6] = "boolean"
        return d
    if kind == "aggtrades":
        d = {0: "int64", 1: "float64", 2: "float64", 3: "int64", 4: "int64", 5: "int64", 6: "boolean"}
        if ncols == 8:
            d[7] = "boolean"
        return d
    return {0: "int64", 1: "float64", 2: "float64", 3: "float64", 4: "float64", 5: "float64",
            6: "int64", 7: "float64", 8: "int64", 9: "float64", 10: "float64", 11: "float64"}


def _columns(kind: str, c: pd.DataFrame, factor: int) -> dict[str, np.ndarray]:
    if kind == "trades":
        return {
            "trade_id": c[0].to_numpy("i8"), "price": c[1].to_numpy("f8"), "qty": c[2].to_numpy("f8"),
            "time": c[4].to_numpy("i8") * factor, "is_buyer_maker": c[5].to_numpy(bool),
        }
    if kind == "aggtrades":
        return {
            "agg_id": c[0].to_numpy("i8"), "price": c[1].to_numpy("f8"), "qty": c[2].to_numpy("f8"),
            "first_trade_id": c[3].to_numpy("i8"), "last_trade_id": c[4].to_numpy("i8"),
            "time": c[5].to_numpy("i8") * factor, "is_buyer_maker": c[6].to_numpy(bool),
        }
    close_factor = factor
    return {
        "open_time": c[0].to_numpy("i8") * factor, "open": c[1].to_numpy("f8"), "high": c[2].to_numpy("f8"),
        "low": c[3].to_numpy("f8"), "close": c[4].to_numpy("f8"), "volume": c[5].to_numpy("f8"),
        "close_time": c[6].to_numpy("i8") * close_factor, "quote_volume": c[7].to_numpy("f8"),
        "trades": c[8].to_numpy("i8"), "taker_buy_base": c[9].to_numpy("f8"),
        "taker_buy_quote": c[10].to_numpy("f8"),
    }
