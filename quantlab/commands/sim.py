"""``quantlab sim``: run the Binance-compatible exchange simulator in the foreground.

    quantlab sim --port 0 --source replay:../shared/data/binance_ws/spot --rate 10
    quantlab sim --port 9000 --symbols BTCUSDT,ETHUSDT --rate 1000 --faults drop=0.01,stall=5@30

It prints the two base URLs on stdout, as lines a parent process can read (or ``eval``)::

    QUANTLAB_WS_URL=ws://127.0.0.1:PORT
    QUANTLAB_REST_URL=http://127.0.0.1:PORT

and serves until SIGINT/SIGTERM (or ``--duration``), then exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import signal
import sys

from quantlab.config import parse_symbols

NAME = "sim"
HELP = "run the Binance-compatible exchange simulator (WebSocket streams + REST) on 127.0.0.1"

_EPILOG = """\
sources:
  synthetic        the demo market (quantlab.sim.demo): BTCUSDT ~100,000 ... SHIBUSDT ~0.00001;
                   cointegrated pairs ETHUSDT~BTCUSDT, BNBUSDT~SOLUSDT, SHIBUSDT~DOGEUSDT
                   (y = (y0/x0) * x + AR(1) spread, half-life 60 s) when both legs are among
                   --symbols; every other symbol an independent random walk. --hedge-ratio
                   ties every symbol to the first instead. --rate is trades/s (default 50)
  replay:PATH      recorded captures (*.gz, '<recv_ns> <combined json>' lines) and/or official
                   trade CSVs; PATH is a file, a directory or a glob; times shifted to now;
                   --rate is the speed factor (default 1; 'inf' = as fast as clients read);
                   starts when the first client subscribes (or at once with --start-now)

fault spec (--faults), comma-separated key=value items:
  drop=P                 withhold each trade frame with probability P (REST still has it)
  cut_every=N            abort the TCP connection (no close frame) after every N data frames
  dup_after_reconnect=K  on a reconnect, send the last K trades of each symbol again first
  malformed=P            with probability P, send a malformed frame before a trade frame
  stall=S@T              from T s after start, no data on any connection for S s
                         (connections stay open; repeat the key for several stalls)
  flap=N                 after N data frames the server closes the connection with code 1008
                         (the connect -> one message -> close loop of a rate violation)
  quiet=S@T              from T s after start, for S s, the market makes no trades: connections
                         carry only the server's pings (a quiet market; repeatable)
  dead=S@T               from T s, for S s, every connection goes silent as a half-open TCP
                         connection does: no frame at all, not even pings (repeatable)
  rest429=N              the first N trade-history REST requests answer 429 + Retry-After
  rest418=N              the N trade-history requests after those start an IP ban: 418 + Retry-After
  ban=S                  first ban length in seconds (default 120); each later ban doubles, up to
  ban_max=S              (default 259200 = 3 days); any request during a ban, or inside a 429's
                         Retry-After, is answered 418 and bans again (Binance's repeat offenders)
  rest403=N              the N trade-history requests after the 418 ones answer 403 (web firewall)
  rest451=N              the first N REST requests answer 451 (restricted location)
  history_lag=S          historicalTrades/aggTrades (Binance: "Data Source: Database") serve only
                         trades at least S s old: short pages near the head; /trades
                         ("Data Source: Memory", the last 1000) does not lag
  data_api=1             act as data-api.binance.vision: historicalTrades is not served (404)
  retry_after=S          Retry-After seconds of the rest429 replies (default 1)
  seed=N                 seed of the random fault choices (default 0)
  e.g. --faults "drop=0.01,cut_every=300,dup_after_reconnect=20,malformed=0.001,stall=5@30,rest429=1"
"""


def _rate(text: str) -> float:
    t = text.strip().lower()
    if t in ("inf", "max", "infinity"):
        return math.inf
    try:
        value = float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (or 'inf')") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = _EPILOG
    p.add_argument("--port", type=int, default=0, help="TCP port (default 0: a free port, printed on stdout)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--symbols", default=None,
                   help="comma-separated symbols (default: the replay's symbols, or BTCUSDT,ETHUSDT)")
    p.add_argument("--source", default="synthetic", help="synthetic (default) or replay:PATH")
    p.add_argument("--rate", type=_rate, default=None,
                   help="synthetic: trades/s in total (default 50); replay: speed factor (default 1, 'inf')")
    p.add_argument("--loop", action="store_true", help="replay: start again after the end (new contiguous ids)")
    p.add_argument("--faults", default=None, help="fault spec, see below (default: none)")
    p.add_argument("--market", choices=("spot", "um"), default="spot",
                   help="spot (default) or um: USD-M futures (/market route, aggTrade, markPrice@1s, "
                        "/fapi/v1; prints QUANTLAB_FUTURES_WS_URL / _REST_URL)")
    p.add_argument("--funding-interval", type=float, default=8.0,
                   help="um: seconds between funding settlements (default 8; Binance: 1, 4 or 8 hours)")
    g = p.add_argument_group("synthetic market")
    g.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    g.add_argument("--hedge-ratio", type=float, default=None,
                   help="tie every symbol to the first: y = hedge_ratio * x + mu + spread (default: the demo pairs)")
    g.add_argument("--half-life", type=float, default=None, help="spread half-life in seconds (default: the demo pair's, 60)")
    g.add_argument("--volatility", type=float, default=None,
                   help="annualized volatility of every random walk (default: per demo symbol, else 0.6)")
    g.add_argument("--spread-vol", type=float, default=None,
                   help="spread standard deviation as a fraction of y's price (default: the demo pair's, 0.0008)")
    g = p.add_argument_group("connection behaviour")
    g.add_argument("--ping-interval", type=float, default=20.0, help="server ping every S seconds (default 20)")
    g.add_argument("--max-age", type=float, default=None,
                   help="close connections older than S seconds (Binance: 86400; default never)")
    g.add_argument("--error-style", choices=("nested", "flat"), default="nested",
                   help="control error replies as {\"error\":{..},\"id\":..} (default) or flat {\"code\":..}")
    g.add_argument("--start-now", action="store_true",
                   help="replay: start at once instead of when the first client subscribes")
    g.add_argument("--duration", type=float, default=None, help="stop after S seconds (default: run until signalled)")


def run(args: argparse.Namespace) -> int:
    from quantlab.sim.exchange import Exchange
    from quantlab.sim.faults import parse_faults
    from quantlab.sim.sources import source_from_spec

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port {args.port}: must be 0..65535 (0 picks a free port)")
    if args.duration is not None and not args.duration > 0:
        raise ValueError(f"--duration {args.duration}: must be > 0 seconds")
    faults = parse_faults(args.faults)
    source = source_from_spec(
        args.source,
        symbols=parse_symbols(args.symbols) or None,
        rate=args.rate,
        loop=args.loop,
        seed=args.seed,
        hedge_ratio=args.hedge_ratio,
        half_life=args.half_life,
        volatility=args.volatility,
        spread_vol=args.spread_vol,
    )
    kind, extra = Exchange, {}
    if args.market == "um":
        from quantlab.sim.futures import FuturesExchange

        if not args.funding_interval > 0:
            raise ValueError(f"--funding-interval {args.funding_interval}: must be > 0 seconds")
        kind, extra = FuturesExchange, {"funding_interval": args.funding_interval}
    exchange = kind(
        source,
        **extra,
        host=args.host,
        port=args.port,
        faults=faults,
        ping_interval=args.ping_interval if args.ping_interval and args.ping_interval > 0 else None,
        max_connection_age=args.max_age,
        error_style=args.error_style,
        start_on_subscribe=False if args.start_now else None,
    )
    return asyncio.run(_serve(exchange, args.duration))


async def _serve(exchange, duration: float | None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
            pass
    async with exchange:
        prefix = "QUANTLAB_FUTURES" if exchange.REST_PREFIX.startswith("/fapi") else "QUANTLAB"
        print(f"{prefix}_WS_URL={exchange.ws_url}", flush=True)
        print(f"{prefix}_REST_URL={exchange.rest_url}", flush=True)
        print(f"quantlab sim: {exchange.source.describe()}; faults: {exchange.faults}; "
              "stop with Ctrl-C", file=sys.stderr, flush=True)
        try:
            await asyncio.wait_for(stop.wait(), duration)
        except TimeoutError:
            pass
        counters = exchange.counters
    summary = ", ".join(f"{k} {v:,}" for k, v in sorted(counters.items()) if v)
    print(f"quantlab sim: stopped ({summary or 'idle'})", file=sys.stderr, flush=True)
    return 0
