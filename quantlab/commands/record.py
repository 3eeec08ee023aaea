"""``quantlab record --symbols BTCUSDT,ETHUSDT --store DIR [--market spot|um|cm] [--ws-url URL] [--rest-url URL] [--duration S]``.

One recorder writes one store: a symbol list may mix spot and futures (``BTCUSDT,um:BTCUSDT``);
each market gets its own connection. ``--market um`` qualifies the bare names of the list.
``--ws-url``/``--rest-url`` override the endpoints of the one market recorded; with a mixed
list they apply to spot, and ``--futures-ws-url``/``--futures-rest-url`` (or
$QUANTLAB_FUTURES_WS_URL / $QUANTLAB_FUTURES_REST_URL) to USD-M.

This command is the composition root of the demo source: with ``--source demo`` it starts the
simulators that continue the store's ids and prices (:mod:`quantlab.sim.compose`) and gives the
recorder their URLs in a new config; the recorder itself only records from the URLs it gets.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from quantlab.config import settings

if TYPE_CHECKING:
    from quantlab.recorder import RecorderConfig

NAME = "record"
HELP = "record live trades into the store until stopped (SIGINT/SIGTERM) or for --duration seconds"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--symbols", default=None,
                   help="comma-separated, e.g. BTCUSDT,ETHUSDT or BTCUSDT,um:BTCUSDT (default: $QUANTLAB_SYMBOLS)")
    p.add_argument("--market", default=None, choices=("spot", "um", "cm"),
                   help="market of the bare names in --symbols: spot (default), um (USD-M futures), cm (COIN-M)")
    p.add_argument("--futures-ws-url", default=None,
                   help="USD-M stream route (default: $QUANTLAB_FUTURES_WS_URL or wss://fstream.binance.com/market)")
    p.add_argument("--futures-rest-url", default=None,
                   help="USD-M REST base (default: $QUANTLAB_FUTURES_REST_URL or https://fapi.binance.com)")
    p.add_argument("--store", default=None,
                   help="store directory (default: $QUANTLAB_STORE or ./data/store; with --source demo "
                        "its sibling <store>-demo; a given --store must then be a demo store or new)")
    p.add_argument("--ws-url", default=None, help="stream base (default: $QUANTLAB_WS_URL or wss://stream.binance.com:9443; with only futures symbols: their stream route)")
    p.add_argument("--rest-url", default=None, help="REST base (default: $QUANTLAB_REST_URL or https://api.binance.com; with only futures symbols: their REST base)")
    p.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    p.add_argument("--flush-interval", type=float, default=0.25, help="seconds between durable appends (<= 1)")
    p.add_argument("--source", default=None,
                   help="binance (default: $QUANTLAB_SOURCE), demo (the built-in exchange simulator, "
                        "offline), or a ws:// URL")
    p.add_argument("--demo-rate", type=float, default=50.0, help="trades/s of the demo source (default 50)")
    p.add_argument("--label", default=None, help="source label shown in status (binance, demo, ...)")
    p.add_argument("--no-alerts", action="store_true", help="do not evaluate alert rules")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from quantlab.binance.futures import futures_urls
    from quantlab.config import require_symbols, resolve_store, store_identity
    from quantlab.recorder import RecorderConfig
    from quantlab.store import writer_pid
    from quantlab.symbols import parse_symbols

    require_symbols(args.symbols)
    symbols = args.symbols
    if args.market not in (None, "spot") and symbols is not None:
        # bare names take --market; a name with its own market keeps it
        symbols = ",".join(item if ":" in item else f"{args.market}:{item}"
                           for item in symbols.split(",") if item.strip())
    cfg = settings(symbols=symbols, store=args.store, ws_url=args.ws_url, rest_url=args.rest_url)
    syms = parse_symbols(list(cfg.symbols))
    markets = {s.market for s in syms}
    futures_only = "spot" not in markets
    if args.market not in (None, "spot") and args.symbols is None:
        raise ValueError(f"--market {args.market}: give the symbols too, e.g. --symbols BTCUSDT,ETHUSDT")
    fut_urls = {}
    for market in markets - {"spot"}:
        ws = args.futures_ws_url if market == "um" else None
        rest = args.futures_rest_url if market == "um" else None
        if futures_only and len(markets) == 1:  # the one market recorded: --ws-url/--rest-url are its
            ws, rest = ws or args.ws_url, rest or args.rest_url
        fut_urls[market] = futures_urls(market, ws, rest)
    if args.duration is not None and args.duration <= 0:
        raise ValueError("--duration: must be a positive number of seconds")
    if not 0 < args.flush_interval <= 1:
        raise ValueError("--flush-interval: must be in (0, 1] seconds")
    source = (args.source or cfg.source or "binance").strip()
    ws_url = cfg.ws_url
    demo_rate = None
    if source == "demo":
        if not args.demo_rate > 0:
            raise ValueError("--demo-rate: must be a positive number of trades per second")
        demo_rate = args.demo_rate
    elif source.startswith(("ws://", "wss://")):
        ws_url = args.ws_url or source
        if futures_only:
            fut_urls = {m: (args.ws_url or source, u[1]) for m, u in fut_urls.items()}
    elif source != "binance":
        raise ValueError(f"--source: {source!r} is not 'binance', 'demo' or a ws:// URL")
    main_ws = next(iter(fut_urls.values()))[0] if futures_only and fut_urls else ws_url
    label = args.label or ("demo" if demo_rate else "binance" if "binance.com" in main_ws else main_ws)
    store = resolve_store(args.store, source)  # demo -> <store>-demo; refuses the other kind of store
    pid = writer_pid(store)
    if pid is not None:
        raise ValueError(f"--store: {store} is already being written by pid {pid}; stop that process "
                         "(kill -TERM it) or record into another --store")
    config = RecorderConfig(
        store=store, store_source=store_identity(source), symbols=list(cfg.symbols), ws_url=ws_url, rest_url=cfg.rest_url,
        label=label, duration_s=args.duration, flush_interval_s=args.flush_interval,
        alerts=not args.no_alerts, futures_urls=fut_urls,
    )
    return asyncio.run(_record(config, demo_rate))


async def _record(config: RecorderConfig, demo_rate: float | None) -> int:
    """Record with ``config``; with ``demo_rate`` (trades/s) from simulators started here that
    continue the store's ids and prices (:func:`quantlab.sim.compose.demo_exchanges`)."""
    import asyncio
    import contextlib
    import dataclasses
    import signal

    from quantlab.recorder import Recorder

    stopping = asyncio.Event()  # a signal before the recorder exists still stops it
    recorder = None

    def stop() -> None:
        stopping.set()
        if recorder is not None:
            recorder.stop()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    async with contextlib.AsyncExitStack() as stack:
        if demo_rate is not None:
            from quantlab.sim.compose import demo_exchanges

            ep = await stack.enter_async_context(demo_exchanges(config.store, config.symbols, rate=demo_rate))
            config = dataclasses.replace(
                config, ws_url=ep.ws_url or config.ws_url, rest_url=ep.rest_url or config.rest_url,
                futures_urls={**config.futures_urls, **ep.futures_urls})
        recorder = Recorder(config)
        if stopping.is_set():
            recorder.stop()
        return await recorder.run()
