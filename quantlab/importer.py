"""Load official data.binance.vision files into a store (the ``quantlab import`` verb)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from quantlab.binance.archive import (
    ArchiveFile,
    checksum_path,
    identify,
    read_chunks,
    resolve_market,
    verify_checksum,
)
from quantlab.store import TickStore
from quantlab.store.klines import check_spacing
from quantlab.timeframes import parse_timeframe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportResult:
    path: Path
    symbol: str  # as the store names it: BTCUSDT, um:BTCUSDT, cm:BTCUSD_PERP
    kind: str
    rows_read: int
    rows_added: int
    checksum: bool = False  # verified against a .CHECKSUM file beside it


def check_file(path: str | Path, market: str | None = None) -> ArchiveFile:
    """Everything that can refuse a file before anything is written: it exists, its name and
    layout are known, its market agrees with ``market`` (``spot`` | ``um`` | ``cm`` | None: the
    layout's, refusing futures layouts), its ``.CHECKSUM`` (when present) matches."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file: {p}")
    if p.is_dir():
        raise ValueError(f"{p} is a directory; pass the files (e.g. {p}/*.zip)")
    af = resolve_market(identify(p), market)
    verify_checksum(p)
    if af.kind == "klines":
        next(read_chunks(af, chunk_rows=2000), None)  # mark-price klines are refused here, before any write
    return af


def import_file(store: TickStore, path: str | Path, *, market: str | None = None,
                progress: bool | None = None) -> ImportResult:
    """Import one file; ids (or kline open times) already stored are skipped.

    The store must hold real exchange data (``source='binance'``): a demo store is refused."""
    from quantlab.store.tickstore import check_source

    check_source(store.path, "binance")
    af = check_file(path, market)
    p = af.path
    symbol = af.qualified
    read = added = 0
    with tqdm(desc=p.name, unit=" rows", disable=(None if progress is None else not progress),
              leave=False) as bar:
        for batch, n in read_chunks(af):
            read += n
            if af.kind == "klines":
                assert af.interval is not None  # identify() reads it from every kline file's name
                check_spacing(batch, parse_timeframe(af.interval), p.name)
                added += store.append_klines(symbol, af.interval, batch)
            else:
                added += store.append(symbol, batch, kind=af.kind, flush=False)
            bar.update(n)
    store.flush()
    log.debug("%s: %s %s, %d rows read, %d added", p.name, symbol, af.kind, read, added)
    return ImportResult(p, symbol, af.kind, read, added, checksum=checksum_path(p).exists())
