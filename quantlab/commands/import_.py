"""``quantlab import PATH... --store DIR``: official trade/aggTrade/kline files into the store."""

from __future__ import annotations

import argparse

from quantlab.binance.archive import identify
from quantlab.config import settings

NAME = "import"
HELP = "load data.binance.vision trades/aggTrades/klines files (csv or zip) into the store"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="files to import (.csv or .zip)")
    p.add_argument("--store", default=None, help="store directory (default: $QUANTLAB_STORE or ./data/store)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from quantlab.importer import import_file
    from quantlab.store import TickStore

    paths = [Path(p) for p in args.paths]
    for p in paths:  # refuse bad input before taking the writer lock or writing anything
        if not p.exists():
            raise FileNotFoundError(f"no such file: {p}")
        identify(p)
    with TickStore(settings(store=args.store).store, mode="a") as store:
        total = 0
        for p in paths:
            r = import_file(store, p, progress=False if args.no_progress else None)
            total += r.rows_added
            print(f"{p.name}: {r.symbol} {r.kind}: {r.rows_read} rows read, {r.rows_added} added")
    print(f"{total} rows added to {store.path}")
    return 0
