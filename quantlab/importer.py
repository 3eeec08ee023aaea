"""Load official data.binance.vision files into a store (the ``quantlab import`` verb)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from quantlab.binance.archive import identify, read_chunks
from quantlab.store import TickStore
from quantlab.store.klines import check_spacing
from quantlab.timeframes import parse_timeframe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportResult:
    path: Path
    symbol: str
    kind: str
    rows_read: int
    rows_added: int


def import_file(store: TickStore, path: str | Path, *, progress: bool | None = None) -> ImportResult:
    """Import one file; ids (or kline open times) already stored are skipped."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file: {p}")
    if p.is_dir():
        raise ValueError(f"{p} is a directory; pass the files (e.g. {p}/*.zip)")
    af = identify(p)
    read = added = 0
    with tqdm(desc=p.name, unit=" rows", disable=(None if progress is None else not progress),
              leave=False) as bar:
        for batch, n in read_chunks(af):
            read += n
            if af.kind == "klines":
                check_spacing(batch, parse_timeframe(af.interval), p.name)
                added += store.append_klines(af.symbol, af.interval, batch)
            else:
                added += store.append(af.symbol, batch, kind=af.kind, flush=False)
            bar.update(n)
    store.flush()
    log.debug("%s: %s %s, %d rows read, %d added", p.name, af.symbol, af.kind, read, added)
    return ImportResult(p, af.symbol, af.kind, read, added)
