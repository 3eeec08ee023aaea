"""``quantlab app [--store DIR] [--symbols ...] [--port 8866] [--demo] [--no-browser] [--ip ADDR]``.

Starts the one recorder for the store (live Binance, the built-in simulator with ``--demo``,
or a ``--source ws://…`` URL), waits until it holds the store's writer lock, then serves
``app.ipynb`` (shipped in the package, found by ``notebook_dir()``) with Voilà. Every page
view is a kernel that follows that recorder's store, so any number of visitors cost one
exchange connection. Voilà's settings (kernel culling) are in ``voila.json`` beside the
notebook.

The app listens on 127.0.0.1. ``--ip`` with another address serves it to the network and
then requires a token (``--token``, ``$QUANTLAB_APP_TOKEN``, or a generated one printed at
start): open ``http://HOST:PORT/?token=…``.

Jupyter's XSRF check stays on wherever the app listens: a POST that lacks the ``_xsrf``
token (say, from another page the user visits) is refused. A closed tab still frees its
kernel at once because ``issue_xsrf_cookie`` (Voilà's prelaunch hook) gives every page the
``_xsrf`` cookie that Voilà's close-tab beacon sends back as its ``_xsrf`` field. Voilà runs
as ``python -m quantlab.commands.app NOTEBOOK ...`` (``serve``), which installs that hook.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from quantlab.commands.notebooks import APP_NOTEBOOK, notebook_dir
from quantlab.errors import QuantlabError

NAME = "app"
HELP = "start the recorder (live Binance, or the simulator with --demo) and the Voilà app"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=None,
                   help="store directory (default: $QUANTLAB_STORE or ./data/store; with --demo "
                        "the sibling <store>-demo, so simulated trades never mix with real ones)")
    p.add_argument("--symbols", default=None, help="comma-separated (default: $QUANTLAB_SYMBOLS; with --demo "
                   "and neither, the demo market's seven spot symbols and its perps um:BTCUSDT, um:ETHUSDT); "
                   "a USD-M perpetual is written um:BTCUSDT")
    p.add_argument("--port", type=int, default=8866, help="HTTP port (default 8866; 0 picks a free one)")
    p.add_argument("--demo", action="store_true", help="use the built-in exchange simulator (offline)")
    p.add_argument("--source", default=None, help="binance (default), demo, or a ws:// URL of a compatible exchange")
    p.add_argument("--ws-url", default=None, help="stream base URL for the recorder (default: Binance)")
    p.add_argument("--rest-url", default=None, help="REST base URL for the recorder (default: Binance)")
    p.add_argument("--demo-rate", type=float, default=50.0, help="demo trades/s over all symbols (default 50)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument("--ip", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; any other requires a token)")
    p.add_argument("--token", default=None,
                   help="access token, required with a non-loopback --ip (default: $QUANTLAB_APP_TOKEN or generated)")


def is_loopback(ip: str) -> bool:
    if ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        raise ValueError(f"--ip: {ip!r} is not an IP address (e.g. 127.0.0.1 or 0.0.0.0)") from None


def access_token(ip: str, given: str | None) -> str | None:
    """The token the app requires: the given one, else ``$QUANTLAB_APP_TOKEN``; a non-loopback
    address without either gets a generated one (never an open app on the network)."""
    token = given or os.environ.get("QUANTLAB_APP_TOKEN") or None
    if token is not None and (len(token) < 8 or not token.isprintable() or " " in token):
        raise ValueError("--token: use at least 8 printable characters without spaces")
    if token is None and not is_loopback(ip):
        token = secrets.token_urlsafe(24)
    return token


def free_port(ip: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def _check_port(ip: str, port: int) -> None:
    with socket.socket() as s:
        try:
            s.bind((ip, port))
        except OSError as exc:
            raise ValueError(f"--port: {ip}:{port} is not free ({exc.strerror}); pick another with --port") from None


def issue_xsrf_cookie(handler, notebook=None, cwd=None):
    """Voilà prelaunch hook: set the ``_xsrf`` cookie on the app's page.

    Voilà renders the notebook page without reading tornado's ``xsrf_token``, so the page
    never gets the ``_xsrf`` cookie; its close-tab beacon (``POST voila/api/shutdown/<kernel>``)
    reads that cookie into the ``_xsrf`` form field and, finding none, is refused with 403
    "'_xsrf' argument missing from POST" (voila issue 1458). Reading the property sets the
    cookie (tornado ``RequestHandler.xsrf_token``), so the check can stay on. Returns None:
    the notebook is served unchanged.
    """
    _ = handler.xsrf_token
    return None


def serve(argv: list[str]) -> None:
    """Voilà's own command line (``voila NOTEBOOK --port=...``) with ``issue_xsrf_cookie`` as
    its prelaunch hook: a hook is a Python callable, which ``voila.json`` cannot name."""
    from voila.app import Voila

    app = Voila.instance()
    app.initialize(argv)
    app.voila_configuration.prelaunch_hook = issue_xsrf_cookie
    app.start()


def voila_command(notebook: Path, ip: str, port: int, token: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "quantlab.commands.app", str(notebook), "--no-browser",
           f"--port={port}", f"--Voila.ip={ip}"]
    cmd.append(f"--token={token}" if token else "--token=")
    return cmd


def run(args: argparse.Namespace) -> int:
    from quantlab.config import env, require_symbols, resolve_store, settings
    from quantlab.live.process import RECORDER_LOG, log_tail, spawn_recorder, stop_process
    from quantlab.store import writer_pid
    from quantlab.ui.demo import seed_demo_history

    cfg = settings(symbols=args.symbols, store=args.store, ws_url=args.ws_url, rest_url=args.rest_url)
    source = "demo" if args.demo else (args.source or cfg.source or "binance").strip()
    if source not in ("binance", "demo") and not source.startswith(("ws://", "wss://")):
        raise ValueError(f"--source: {source!r} is not 'binance', 'demo' or a ws:// URL")
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port: {args.port} is not a TCP port (0-65535)")
    if not args.demo_rate > 0:
        raise ValueError("--demo-rate: must be a positive number of trades per second")
    require_symbols(args.symbols)
    # demo data lives in <store>-demo (or a given demo/new --store); the other kind of store is refused
    store = resolve_store(args.store, source).resolve()
    symbols = list(cfg.symbols)
    if source == "demo" and not (args.symbols or env("QUANTLAB_SYMBOLS")):
        from quantlab.sim.demo import demo_universe

        symbols = demo_universe()  # seven spot symbols with three true pairs, and two USD-M perps
    if len(symbols) < 2:
        raise ValueError("--symbols: the app needs at least two symbols (a pair), e.g. BTCUSDT,ETHUSDT")
    token = access_token(args.ip, args.token)
    port = args.port or free_port(args.ip if args.ip != "0.0.0.0" else "127.0.0.1")
    _check_port(args.ip, port)
    notebooks = notebook_dir()
    notebook = notebooks / APP_NOTEBOOK

    if source == "demo":
        n = seed_demo_history(store, symbols)
        if n:
            print(f"quantlab app: wrote {n:,} simulated trades (2 h of history) into {store}")
    held_by = writer_pid(store)
    if held_by is not None:
        print(f"quantlab app: a recorder (pid {held_by}) already writes {store}; following it")
    rec = spawn_recorder(store, symbols, source, ws_url=args.ws_url, rest_url=args.rest_url,
                         demo_rate=args.demo_rate, wait=60.0)
    voila_env = {**os.environ, "QUANTLAB_STORE": str(store), "QUANTLAB_SYMBOLS": ",".join(symbols),
                 "QUANTLAB_SOURCE": source, "PYTHONUNBUFFERED": "1"}
    if args.ws_url:
        voila_env["QUANTLAB_WS_URL"] = args.ws_url
    if args.rest_url:
        voila_env["QUANTLAB_REST_URL"] = args.rest_url
    voila = subprocess.Popen(voila_command(notebook, args.ip, port, token), cwd=notebooks, env=voila_env,
                             stdin=subprocess.DEVNULL, start_new_session=True)
    stopping = False

    def on_signal(signum, _frame) -> None:
        nonlocal stopping
        stopping = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        host = "127.0.0.1" if args.ip in ("0.0.0.0", "::") else args.ip
        deadline = time.monotonic() + 60
        while not port_open(host, port):
            if voila.poll() is not None:
                raise QuantlabError(f"Voilà exited with code {voila.returncode} before serving the app")
            if time.monotonic() > deadline or stopping:
                raise QuantlabError(f"Voilà did not listen on {host}:{port} within 60 s")
            time.sleep(0.1)
        url = f"http://{host if is_loopback(args.ip) else args.ip}:{port}/" + (f"?token={token}" if token else "")
        label = {"demo": "DEMO (simulated)", "binance": "LIVE Binance"}.get(source, source)
        print(f"quantlab app: {label} · store {store} · serving {url}", flush=True)
        if not args.no_browser:
            import webbrowser

            webbrowser.open(url)
        warned = False
        while not stopping:
            if voila.poll() is not None:
                print(f"quantlab app: Voilà exited with code {voila.returncode}", file=sys.stderr)
                return voila.returncode or 1
            if rec is not None and rec.poll() is not None and not warned:
                warned = True
                print(f"quantlab app: the recorder exited with code {rec.returncode}; the app shows it stopped. "
                      f"Last log lines:\n{log_tail(store / RECORDER_LOG)}", file=sys.stderr)
            time.sleep(0.2)
        return 0
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        stop_process(voila)
        stop_process(rec)


if __name__ == "__main__":
    serve(sys.argv[1:])
