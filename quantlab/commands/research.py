"""``quantlab research``: walk-forward selection and out-of-sample trading of pairs, as a report.

    quantlab research --store DIR --symbols A,B,C,... --timeframe 1m --formation 30D
                      --trading 7D [--step 7D] [--since 90d] [--n-trials 12]
                      [--workers N | --scheduler tcp://HOST:PORT] --out report.html
    quantlab research --closes closes.csv ...   # wide CSV: a time column, one column per symbol
"""

from __future__ import annotations

import sys
from pathlib import Path

NAME = "research"
HELP = ("walk-forward: select pairs on each formation window, trade them on the next, "
        "report out-of-sample equity and the deflated Sharpe")


def add_arguments(p) -> None:
    from quantlab.commands.screen import add_closes_source

    add_closes_source(p)
    p.add_argument("--formation", default="30D", help="formation window (default 30D)")
    p.add_argument("--trading", default="7D", help="trading window (default 7D)")
    p.add_argument("--step", help="roll folds by this (default: --trading)")
    p.add_argument("--hedge", default="ols",
                   help="PairSpec hedge fitted per pair (default ols: static, log prices)")
    p.add_argument("--window", default="60", help="z-score / regression window: bars or a "
                   "duration (default 60)")
    p.add_argument("--entry", type=float, default=2.0, help="entry |z| (default 2)")
    p.add_argument("--exit", type=float, default=0.5, help="exit |z| (default 0.5)")
    p.add_argument("--stop", type=float, default=4.0, help="stop |z| (default 4)")
    p.add_argument("--max-qvalue", type=float, default=0.05, help="selection q-value (default 0.05)")
    p.add_argument("--max-pairs", type=int, default=None, help="most pairs per fold (default: no cap)")
    p.add_argument("--max-per-symbol", type=int, default=None,
                   help="most pairs one symbol may be in per fold (default: no cap)")
    p.add_argument("--weights", default="equal", choices=("equal", "inverse_vol"),
                   help="capital split across a fold's pairs (default equal)")
    p.add_argument("--capital", type=float, default=10_000.0, help="starting equity (default 10000)")
    p.add_argument("--fee-bps", type=float, default=None, help="fee per fill (default: the backtest's)")
    p.add_argument("--slippage-bps", type=float, default=None,
                   help="slippage per fill (default: the backtest's)")
    p.add_argument("--n-trials", type=int, default=1,
                   help="configurations you tried in all, this one included (deflated Sharpe)")
    run = p.add_mutually_exclusive_group()
    run.add_argument("--workers", type=int, help="start a local Dask cluster of N worker processes")
    run.add_argument("--scheduler", metavar="ADDR",
                     help="run on an existing Dask cluster, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--out", help="write the self-contained HTML report here")
    p.add_argument("--folds-csv", help="also write the fold table (one row per fold and pair)")
    p.add_argument("--force", action="store_true", help="overwrite --out / --folds-csv if present")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _outfile(path: str | None, flag: str, force: bool) -> Path | None:
    if path is None:
        return None
    out = Path(path)
    if out.parent and not out.parent.exists():
        raise FileNotFoundError(f"{flag}: folder {out.parent} does not exist")
    if out.exists() and not force:
        raise FileExistsError(f"{flag}: {out} exists; pass --force to overwrite it or choose "
                              "another name")
    return out


def _window(text: str):
    return int(text) if text.strip().isdigit() else text.strip()


def load_closes(args):
    """The closes the walk-forward runs on: a CSV, or the store's bars via quantlab.closes."""
    from quantlab.aligned import closes
    from quantlab.commands.screen import parse_since, read_closes_csv
    from quantlab.config import settings
    from quantlab.errors import UnknownSymbolError
    from quantlab.screen.data import open_store
    from quantlab.symbols import parse_symbol

    start = parse_since(args.since)
    end = parse_since(args.until) if args.until else None
    wanted = None if args.symbols is None else [s.strip() for s in args.symbols.split(",")
                                                if s.strip()]
    if args.closes:
        frame = read_closes_csv(args.closes)
        if wanted:
            missing = [s for s in wanted if s not in frame.columns]
            if missing:
                raise ValueError(f"--symbols: {missing} not in {args.closes}")
            frame = frame[wanted]
        return frame.loc[start:end] if (start is not None or end is not None) else frame
    st, opened = open_store(settings(store=args.store).store)
    try:
        known = list(st.symbols())
        names = [str(parse_symbol(s)) for s in (wanted or known)]
        missing = [s for s in names if s not in known]
        if missing:
            raise UnknownSymbolError(f"--symbols: unknown symbol(s) {missing}; known: "
                                     f"{', '.join(known) or 'none yet'}")
        if len(names) < 2:
            raise ValueError("--symbols: a walk-forward needs at least 2 symbols")
        return closes(st, names, args.timeframe, start, end)
    finally:
        if opened:
            st.close()


def run(args) -> int:
    from quantlab.analytics.pair import PairSpec
    from quantlab.backtest.costs import Costs
    from quantlab.research import Selection, walk_forward

    out = _outfile(args.out, "--out", args.force)
    folds_csv = _outfile(args.folds_csv, "--folds-csv", args.force)
    spec = PairSpec(hedge=args.hedge, prices="log", window=_window(args.window))
    select = Selection(max_qvalue=args.max_qvalue, max_pairs=args.max_pairs,
                       max_per_symbol=args.max_per_symbol)
    default = Costs()  # the backtest's defaults: Binance VIP 0 taker fee per market
    costs = default if args.fee_bps is None and args.slippage_bps is None else Costs.flat(
        default.fee_bps("spot") if args.fee_bps is None else args.fee_bps,
        default.slippage_bps if args.slippage_bps is None else args.slippage_bps)
    frame = load_closes(args)
    res = walk_forward(frame, formation=args.formation, trading=args.trading, step=args.step,
                       spec=spec, entry=args.entry, exit=args.exit, stop=args.stop,
                       select=select, costs=costs, capital=args.capital,
                       n_trials=args.n_trials, weights=args.weights, workers=args.workers,
                       scheduler=args.scheduler, progress=False if args.no_progress else None)
    print(res.summary())
    if out is not None:
        res.to_html(out)
        print(f"wrote the report to {out}", file=sys.stderr)
    if folds_csv is not None:
        res.folds.to_csv(folds_csv, index=False)
        print(f"wrote {len(res.folds)} fold rows to {folds_csv}", file=sys.stderr)
    return 0
