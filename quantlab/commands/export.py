"""``quantlab export --store DIR --symbol S [--timeframe 1m] [--start T] [--end T] --out FILE.csv``."""

from __future__ import annotations

import argparse

from quantlab.config import settings

NAME = "export"
HELP = "write a symbol's ticks (or bars with --timeframe) to a CSV file"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=None, help="store directory (default: $QUANTLAB_STORE or ./data/store)")
    p.add_argument("--symbol", required=True, help="e.g. BTCUSDT")
    p.add_argument("--timeframe", default=None, help="bars at this timeframe (1s, 1m, 5m, 1h...); ticks if omitted")
    p.add_argument("--start", default=None, help="UTC start time, e.g. 2024-08-09T00:00")
    p.add_argument("--end", default=None, help="UTC end time (exclusive)")
    p.add_argument("--out", required=True, help="output CSV path ('-' for stdout)")


def run(args: argparse.Namespace) -> int:
    import sys

    from quantlab.export import bars_csv, ticks_csv
    from quantlab.store import TickStore

    store = TickStore(settings(store=args.store).store)
    if args.timeframe:
        text = bars_csv(store.bars(args.symbol, args.timeframe, args.start, args.end))
    else:
        text = ticks_csv(store.read(args.symbol, args.start, args.end))
    if args.out == "-":
        sys.stdout.write(text)
    else:
        with open(args.out, "w", newline="") as fh:
            fh.write(text)
        rows = text.count("\n") - 1
        print(f"{rows} rows written to {args.out}", file=sys.stderr)
    return 0
