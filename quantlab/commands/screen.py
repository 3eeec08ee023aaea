"""``quantlab screen``: all-pairs cointegration screen of a store's symbols (or a CSV of closes).

    quantlab screen --store DIR [--symbols A,B,...] [--timeframe 1m] [--since 30d]
                    [--workers N | --scheduler tcp://HOST:PORT] [--out pairs.csv]
    quantlab screen --closes closes.csv ...   # wide CSV: a time column, one column per symbol
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from quantlab.pandas_compat import EXACT_FLOATS

NAME = "screen"
HELP = "Engle-Granger screen of every pair of symbols, ranked with FDR control (serial or Dask)"



def add_closes_source(p) -> None:
    """The closes a verb works on (``screen``, ``research``): a store's bars or a wide CSV,
    which symbols, which bars, which span."""
    src = p.add_mutually_exclusive_group()
    src.add_argument("--store", help="store directory (default: $QUANTLAB_STORE or ./data/store)")
    src.add_argument("--closes", metavar="CSV",
                     help="wide CSV of closing prices instead of a store (first column: time)")
    p.add_argument("--symbols", help="comma-separated symbols (default: all in the store)")
    p.add_argument("--timeframe", default="1m", help="bar size (default 1m)")
    p.add_argument("--since", help="start: a duration back from now (30d, 12h, 90m, 2w, 1M = a month) or a time")
    p.add_argument("--until", help="end time (default: the last bar)")


def add_arguments(p) -> None:
    add_closes_source(p)
    run = p.add_mutually_exclusive_group()
    run.add_argument("--workers", type=int, help="run the screen on N threads in this process (its kernel releases the GIL)")
    run.add_argument("--scheduler", metavar="ADDR",
                     help="run on an existing Dask cluster, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--connect-timeout", type=float, default=10.0,
                   help="seconds to reach the scheduler and find a worker (default 10)")
    p.add_argument("--lag", type=int, default=None, help="fixed ADF lag (default 4)")
    p.add_argument("--min-overlap", type=int, default=None,
                   help="fewest common bars for a pair to be tested (default 500)")
    p.add_argument("--alpha", type=float, default=0.05, help="false-discovery rate (default 0.05)")
    p.add_argument("--oos", type=float, default=None,
                   help="re-test selected pairs on the last OOS fraction of the bars, e.g. 0.3")
    p.add_argument("--out", help="write every pair to this CSV")
    p.add_argument("--top", type=int, default=20, help="pairs to print (default 20)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def parse_since(value: str | None, now: pd.Timestamp | None = None) -> pd.Timestamp | None:
    """``"30d"`` -> now - 30 days (UTC), ``"1M"`` -> now - one calendar month (the package's one
    timeframe parser: ``m`` minutes, ``M`` months); an ISO time -> that time (UTC if naive)."""
    if value is None:
        return None
    from quantlab.timeframes import parse_timeframe

    try:
        span = parse_timeframe(value, "--since")
    except (ValueError, TypeError):
        span = None
    if span is not None:
        now = now if now is not None else pd.Timestamp.now(tz="UTC")
        return now - (pd.DateOffset(months=span.months) if span.is_calendar else span.nominal)
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ValueError(f"--since: {value!r} is neither a duration like 30d or 1M (a month) nor a time") from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def read_closes_csv(path: str) -> pd.DataFrame:
    """A wide CSV of closes: first column the bar time, then one column per symbol."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--closes: no such file: {p}")
    frame = pd.read_csv(p, index_col=0, **EXACT_FLOATS)
    try:
        frame.index = pd.to_datetime(frame.index, utc=True)
    except (TypeError, ValueError):
        raise ValueError(f"--closes: the first column of {p} must hold times") from None
    frame.index.name = "time"
    return frame


def run(args) -> int:
    from quantlab.config import settings
    from quantlab.screen import panel_data, screen
    from quantlab.screen.api import DEFAULT_MIN_OVERLAP
    from quantlab.screen.core import DEFAULT_LAG
    from quantlab.symbols import parse_symbol

    data = read_closes_csv(args.closes) if args.closes else settings(store=args.store).store
    if args.symbols is None:
        symbols = None
    else:
        symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
        if not args.closes:
            symbols = [str(parse_symbol(s)) for s in symbols]  # BTCUSDT, um:BTCUSDT, cm:BTCUSD_PERP
    result = screen(
        data, symbols, args.timeframe, parse_since(args.since),
        parse_since(args.until) if args.until else None,
        min_overlap=DEFAULT_MIN_OVERLAP if args.min_overlap is None else args.min_overlap,
        lag=DEFAULT_LAG if args.lag is None else args.lag,
        alpha=args.alpha, oos=args.oos, workers=args.workers, scheduler=args.scheduler,
        connect_timeout=args.connect_timeout, progress=False if args.no_progress else None,
    )
    if args.out:
        out = Path(args.out)
        if out.parent and not out.parent.exists():
            raise FileNotFoundError(f"--out: folder {out.parent} does not exist")
        result.to_csv(out, index=False, float_format="%.17g")
    table, _ = panel_data(result, top=args.top)
    a = result.attrs
    print(f"{a['n_pairs']} pairs of {len(a['symbols'])} symbols, {a['n_tests']} tested "
          f"(lag {a['lag']}), {a['n_selected']} selected at FDR {a['alpha']:g}")
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.out:
        print(f"wrote {len(result)} pairs to {args.out}", file=sys.stderr)
    return 0
