"""``quantlab import PATH... --store DIR [--market spot|um|cm]``: official trade/aggTrade/kline
files, and futures fundingRate files, into the store (mark/index/premium-index klines are
refused: they are not trades)."""

from __future__ import annotations

import argparse

from quantlab.config import settings
from quantlab.symbols import MARKETS

NAME = "import"
HELP = "load data.binance.vision trades/aggTrades/klines/fundingRate files (csv or zip) into the store"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="files to import (.csv or .zip)")
    p.add_argument("--store", default=None, help="store directory (default: $QUANTLAB_STORE or ./data/store)")
    p.add_argument("--market", default=None, choices=MARKETS,
                   help="spot (default for spot layouts), um (USD-M futures) or cm (COIN-M futures); "
                        "a futures file without it is refused")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from quantlab.importer import check_file, import_file
    from quantlab.store import TickStore
    from quantlab.store.tickstore import check_source

    store_path = settings(store=args.store).store
    paths = [Path(p) for p in args.paths]
    for p in paths:  # refuse bad input before taking the writer lock or writing anything
        check_file(p, args.market)
    check_source(store_path, "binance")
    with TickStore(store_path, mode="a", source="binance") as store:
        total = 0
        for p in paths:
            r = import_file(store, p, market=args.market, progress=False if args.no_progress else None)
            total += r.rows_added
            verified = " (checksum ok)" if r.checksum else ""
            print(f"{p.name}: {r.symbol} {r.kind}: {r.rows_read} rows read, {r.rows_added} added{verified}")
    print(f"{total} rows added to {store.path}")
    return 0
