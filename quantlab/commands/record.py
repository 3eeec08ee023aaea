"""``quantlab record --symbols BTCUSDT,ETHUSDT --store DIR [--ws-url URL] [--rest-url URL] [--duration S]``."""

from __future__ import annotations

import argparse

from quantlab.config import settings

NAME = "record"
HELP = "record live trades into the store until stopped (SIGINT/SIGTERM) or for --duration seconds"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--symbols", default=None, help="comma-separated, e.g. BTCUSDT,ETHUSDT (default: $QUANTLAB_SYMBOLS)")
    p.add_argument("--store", default=None,
                   help="store directory (default: $QUANTLAB_STORE or ./data/store; with --source demo "
                        "its sibling <store>-demo; a given --store must then be a demo store or new)")
    p.add_argument("--ws-url", default=None, help="stream base (default: $QUANTLAB_WS_URL or wss://stream.binance.com:9443)")
    p.add_argument("--rest-url", default=None, help="REST base (default: $QUANTLAB_REST_URL or https://api.binance.com)")
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
    import signal

    from quantlab.config import require_symbols, resolve_store, store_identity
    from quantlab.recorder import Recorder, RecorderConfig
    from quantlab.store import writer_pid

    require_symbols(args.symbols)
    cfg = settings(symbols=args.symbols, store=args.store, ws_url=args.ws_url, rest_url=args.rest_url)
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
    elif source != "binance":
        raise ValueError(f"--source: {source!r} is not 'binance', 'demo' or a ws:// URL")
    label = args.label or ("demo" if demo_rate else "binance" if "binance.com" in ws_url else ws_url)
    store = resolve_store(args.store, source)  # demo -> <store>-demo; refuses the other kind of store
    pid = writer_pid(store)
    if pid is not None:
        raise ValueError(f"--store: {store} is already being written by pid {pid}; stop that process "
                         "(kill -TERM it) or record into another --store")
    rec = Recorder(RecorderConfig(
        store=store, store_source=store_identity(source), symbols=list(cfg.symbols), ws_url=ws_url, rest_url=cfg.rest_url,
        label=label, duration_s=args.duration, flush_interval_s=args.flush_interval,
        alerts=not args.no_alerts, demo_rate=demo_rate,
    ))

    async def main() -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, rec.stop)
        return await rec.run()

    return asyncio.run(main())
