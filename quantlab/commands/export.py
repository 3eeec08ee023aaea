"""``quantlab export --store DIR --symbol S [--timeframe 1m | --kind funding|markprice] [--start T] [--end T] --out FILE.csv [--force]``."""

from __future__ import annotations

import argparse

from quantlab.config import settings

NAME = "export"
HELP = "write a symbol's ticks (or bars with --timeframe) to a CSV file"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=None, help="store directory (default: $QUANTLAB_STORE or ./data/store)")
    p.add_argument("--symbol", required=True, help="e.g. BTCUSDT, um:BTCUSDT or cm:BTCUSD_PERP")
    p.add_argument("--timeframe", default=None, help="bars at this timeframe (1s, 1m, 5m, 1h...); ticks if omitted")
    p.add_argument("--kind", default="ticks", choices=("ticks", "funding", "markprice"),
                   help="ticks (trades; a futures symbol recorded live: its aggregate trades), funding "
                        "(realised funding of a futures symbol) or markprice (its mark-price updates)")
    p.add_argument("--start", default=None, help="UTC start time, e.g. 2024-08-09T00:00")
    p.add_argument("--end", default=None, help="UTC end time (exclusive)")
    p.add_argument("--out", required=True,
                   help="output CSV path ('-' for stdout); never inside a store, never an existing file without --force")
    p.add_argument("--force", action="store_true", help="replace --out if it exists (never a store file)")


def run(args: argparse.Namespace) -> int:
    import sys

    from quantlab.export import (
        agg_ticks_csv,
        bars_csv,
        check_out,
        funding_csv,
        marks_csv,
        ticks_csv,
        write_atomic,
    )
    from quantlab.store import TickStore
    from quantlab.symbols import parse_symbol

    if args.out != "-":
        check_out(args.out, force=args.force)  # refuse before reading anything
    symbol = str(parse_symbol(args.symbol))
    store = TickStore(settings(store=args.store).store)
    if args.kind != "ticks":
        if args.timeframe:
            raise ValueError(f"--timeframe: bars are built from ticks; leave it out with --kind {args.kind}")
        if symbol not in store.symbols(args.kind):
            known = ", ".join(store.symbols(args.kind)) or "none"
            raise ValueError(f"--symbol: {symbol} has no {args.kind} rows in {store.path} (symbols with "
                             f"{args.kind}: {known}); funding and mark prices exist for futures symbols (um:/cm:)")
        rows = store.read(symbol, args.start, args.end, kind=args.kind)
        text = funding_csv(rows) if args.kind == "funding" else marks_csv(rows)
    elif args.timeframe:
        text = bars_csv(store.bars(symbol, args.timeframe, args.start, args.end))
    elif symbol not in store.symbols("trades") and symbol in store.symbols("aggtrades"):
        text = agg_ticks_csv(store.read(symbol, args.start, args.end, kind="aggtrades"))
    else:
        if symbol not in store.symbols("trades") and symbol in store.symbols("klines"):
            raise ValueError(f"--symbol: {symbol} has klines only: pass --timeframe (e.g. --timeframe 1m) "
                             "to export its bars")
        text = ticks_csv(store.read(symbol, args.start, args.end))
    rows = text.count("\n") - 1
    if args.out == "-":
        sys.stdout.write(text)
    else:
        write_atomic(args.out, text, force=args.force)
        print(f"{symbol}: {rows} rows written to {args.out}", file=sys.stderr)
    return 0
