"""A Binance-compatible exchange on one loopback port: WebSocket trade streams and REST.

Tests, benchmarks and the offline demo point the recorder at it through the same URL
flags as the real exchange::

    async with Exchange(Synthetic(["BTCUSDT", "ETHUSDT"], rate=1000)) as ex:
        ex.ws_url    # "ws://127.0.0.1:PORT"   (client appends /stream?streams=btcusdt@trade/...)
        ex.rest_url  # "http://127.0.0.1:PORT" (client appends /api/v3/...)
        ...
        ex.trades("BTCUSDT")  # DataFrame of every trade made so far
        ex.counters           # {"connections": 1, "messages_sent": 5123, "dropped": 51, ...}

From synchronous code (notebooks, tests), :class:`ExchangeThread` runs the same server on
a background event loop: ``ExchangeThread(source).start()`` ... ``.stop()``.

Served on the one port (WebSocket upgrade requests go to the streams, plain HTTP GETs to
REST, through ``websockets``' ``process_request`` hook):

* ``/stream?streams=btcusdt@trade/ethusdt@trade`` (combined frames), ``/ws/btcusdt@trade``
  (raw frames), ``/ws`` and ``/stream`` with ``SUBSCRIBE``/``UNSUBSCRIBE``/
  ``LIST_SUBSCRIPTIONS``/``SET_PROPERTY``/``GET_PROPERTY`` control messages, replies and
  error replies as in :mod:`quantlab.sim.wire`; ``timeUnit=MICROSECOND``; server pings
  every ``ping_interval`` s (payload echoed by the client; no pong within
  ``ping_timeout`` s drops the connection); more than ``control_rate_limit`` incoming
  messages a second closes the connection (code 1008), as Binance does;
  ``max_connection_age`` closes old connections (Binance: 24 h); a ``serverShutdown``
  event is sent before a clean stop, and :meth:`Exchange.send_server_shutdown` sends one
  and closes those connections ``shutdown_grace`` s later (code 1001); at most
  ``connection_limit`` = (attempts, seconds) WebSocket connection attempts are accepted
  (Binance: 300 per 5 minutes per IP; beyond it HTTP 429 with ``Retry-After``); at most
  1024 streams per connection (URL and SUBSCRIBE), and request lines over 8 kB are
  refused by the HTTP layer, as many real clients and servers do.

  Binance facts emulated here, from the spot "WebSocket Streams" page
  (developers.binance.com/docs/binance-spot-api-docs/web-socket-streams) and its
  CHANGELOG (checked 2026-11): ping every 20 s, disconnect without a pong within a minute;
  5 incoming messages a second (pings, pongs and control messages); 1024 streams per
  connection; 300 connection attempts per 5 minutes per IP; ``timeUnit=MICROSECOND``
  on the stream URL and ``X-MBX-TIME-UNIT: MICROSECOND`` on REST; the ``serverShutdown``
  event "sent when the server is about to shutdown, resulting in disconnection" (2026-06
  update). How Binance refuses attempts over the budget is not documented: the simulator
  answers 429 with ``Retry-After``, as its REST limits do. Only ``<symbol>@trade`` streams carry data; other
  valid stream names are accepted and stay silent.
* ``GET /api/v3/ping``, ``/time``, ``/exchangeInfo?symbol=|symbols=[..]``,
  ``/trades?symbol=&limit=``, ``/historicalTrades?symbol=&fromId=&limit=``,
  ``/aggTrades?symbol=&fromId=|startTime=&endTime=&limit=`` (limit <= 1000), with
  ``X-MBX-USED-WEIGHT-1M`` (weights from :data:`quantlab.binance.rest.WEIGHTS`; limit
  ``weight_limit`` a minute, then 429 with ``Retry-After``; a request inside that
  ``Retry-After`` gets the IP banned, 418, as on Binance), ``X-MBX-TIME-UNIT: MICROSECOND``
  honoured, Binance's error bodies (``{"code":-1121,"msg":"Invalid symbol."}``). REST faults
  (escalating bans, firewall 403, restricted location 451, a lagging history database, the
  market-data host) are in :class:`~quantlab.sim.faults.RestGate` and ``history_lag``.

A :class:`~quantlab.sim.sources.Replay` starts making trades when the first client
subscribes to a trade stream (``start_on_subscribe``), so a recorder started after the
simulator still sees the whole recording; other sources start with the exchange.
Every trade made stays available for backfill (per symbol, in the compact
:class:`~quantlab.sim.tape.Tape`), including trades a fault kept off the stream.
Faults: see :mod:`quantlab.sim.faults`.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http
import json
import logging
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload
from urllib.parse import parse_qs, unquote

import numpy as np
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from quantlab.binance.rest import WEIGHTS
from quantlab.errors import UnknownSymbolError
from quantlab.sim import wire
from quantlab.sim.faults import (
    Faults,
    FaultState,
    Refusal,
    RestGate,
    malformed_frame,
    parse_faults,
    quiet_offset_s,
)
from quantlab.sim.sources import Replay, Source, SymbolInfo, source_from_spec
from quantlab.sim.tape import Tape

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Exchange", "ExchangeThread", "WEIGHTS"]

log = logging.getLogger("quantlab.sim")
_ws_log = logging.getLogger("quantlab.sim.websockets")
if _ws_log.level == logging.NOTSET:
    _ws_log.setLevel(logging.WARNING)  # one line per REST request is noise

_HISTORY = ("trades", "historicalTrades", "aggTrades")
_MAX_LIMIT = 1000
_MAX_STREAMS = 1024  # streams per WebSocket connection (Binance spot)
_DEFAULT_LIMIT = 500


def _now_us() -> int:
    return time.time_ns() // 1000


class _Client:
    """One WebSocket connection: its subscriptions, outgoing queue and fault state."""

    __slots__ = ("ws", "number", "combined", "micro", "streams", "queue", "pending", "wake",
                 "connected_at", "fault", "incoming", "closing", "close_with", "tasks", "flap_due")

    def __init__(self, ws: ServerConnection, number: int, combined: bool, micro: bool,
                 faults: Faults, connected_at: float) -> None:
        self.ws = ws
        self.number = number
        self.combined = combined
        self.micro = micro
        self.streams: list[str] = []
        self.queue: deque[tuple[list[bytes], bool, str]] = deque()
        self.pending = 0  # data frames queued
        self.wake = asyncio.Event()
        self.connected_at = connected_at
        self.fault = FaultState(faults, number)
        self.incoming: deque[float] = deque()
        self.closing = False
        self.close_with: tuple[int, str] | None = None
        self.tasks: list[asyncio.Task] = []
        self.flap_due = False

    def enqueue(self, frames: list[bytes], data: bool, stream: str = "") -> None:
        if not frames:
            return
        self.queue.append((frames, data, stream))
        if data:
            self.pending += len(frames)
        self.wake.set()


class Exchange:
    """A Binance-compatible exchange on ``host:port`` (``port=0`` picks a free port).

    ``source`` is a :class:`~quantlab.sim.sources.Source` or a spec string
    (``"synthetic"``, ``"replay:PATH"``); ``faults`` a :class:`Faults` or spec string.
    Use as ``async with Exchange(...) as ex:`` or ``await ex.start()`` / ``await ex.close()``.
    """

    def __init__(
        self,
        source: Source | str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | str | None = None,
        ping_interval: float | None = 20.0,
        ping_timeout: float = 60.0,
        max_connection_age: float | None = None,
        control_rate_limit: int | None = 5,
        weight_limit: int = 6000,
        error_style: str = "nested",
        tick: float = 0.005,
        max_pending: int = 2_000_000,
        throttle_pending: int = 20_000,
        announce_shutdown: bool = True,
        start_on_subscribe: bool | None = None,
        connection_limit: tuple[int, float] | None = (300, 300.0),
        shutdown_grace: float | None = 5.0,
    ) -> None:
        self.source = source_from_spec(source) if isinstance(source, str) else source
        if not isinstance(self.source, Source):
            raise TypeError(f"source: expected a quantlab.sim Source or a spec string, got {type(source).__name__}")
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port: {port!r} must be an integer 0..65535 (0 picks a free port)")
        if error_style not in ("nested", "flat"):
            raise ValueError(f"error_style: {error_style!r} must be 'nested' or 'flat'")
        for name, v in (("tick", tick), ("ping_timeout", ping_timeout)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name}: {v!r} must be a positive number of seconds")
        if ping_interval is not None and not ping_interval > 0:
            raise ValueError(f"ping_interval: {ping_interval!r} must be > 0 seconds (None: no pings)")
        if connection_limit is not None:
            if not (len(connection_limit) == 2 and isinstance(connection_limit[0], int)
                    and connection_limit[0] >= 1 and connection_limit[1] > 0):
                raise ValueError(f"connection_limit: {connection_limit!r} must be (attempts >= 1, seconds > 0) "
                                 "or None (Binance: (300, 300.0))")
        if shutdown_grace is not None and not shutdown_grace >= 0:
            raise ValueError(f"shutdown_grace: {shutdown_grace!r} must be >= 0 seconds (None: never close)")
        self.connection_limit = connection_limit
        self.shutdown_grace = shutdown_grace
        #: monotonic times of every WebSocket connection attempt (accepted or refused)
        self.connection_attempts: list[float] = []
        self._accepted_attempts: deque[float] = deque()
        self.host = host
        self.faults = parse_faults(faults)
        self.ping_interval = ping_interval
        self.ping_timeout = float(ping_timeout)
        self.max_connection_age = max_connection_age
        self.control_rate_limit = control_rate_limit
        self.weight_limit = int(weight_limit)
        self.error_style = error_style
        self.tick = float(tick)
        self.max_pending = int(max_pending)
        self.throttle_pending = int(throttle_pending)
        self.announce_shutdown = announce_shutdown
        # a replay starts when the first client subscribes, so it can be recorded whole
        self.start_on_subscribe = (isinstance(self.source, Replay) if start_on_subscribe is None
                                   else bool(start_on_subscribe))
        self._source_started = False
        self._requested_port = port
        self.port: int | None = None
        self.symbols: tuple[str, ...] = tuple(self.source.symbols)
        self._infos: dict[str, SymbolInfo] = {s: self.source.info(s) for s in self.symbols}
        self._by_stream = {f"{s.lower()}@trade": s for s in self.symbols}
        self._tapes = {s: Tape(agg_first_id=self._agg_base(s)) for s in self.symbols}
        self._subs: dict[str, set[_Client]] = {}
        self._clients: set[_Client] = set()
        self._served: set[str] = set()
        self._counters: Counter[str] = Counter()
        self._gate = RestGate(self.faults)
        self._weight_minute = -1
        self._weight_used = 0
        self._server: Any = None
        self._pump_task: asyncio.Task | None = None
        self._t_start = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._paused = False

    #: REST paths this exchange serves and their weights (the futures simulator overrides them)
    REST_PREFIX = "/api/v3/"
    REST_WEIGHTS = WEIGHTS
    REST_HISTORY: tuple[str, ...] = _HISTORY

    @staticmethod
    def _agg_base(symbol: str) -> int:
        return 1_000_000_000 + (sum(map(ord, symbol)) % 97) * 10_000_000

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Exchange:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> Exchange:
        if self._server is not None:
            raise RuntimeError("exchange: already started")
        self._loop = asyncio.get_running_loop()
        self._server = await serve(
            self._handler,
            self.host,
            self._requested_port,
            process_request=self._process_request,
            compression=None,
            ping_interval=None,  # pings are ours (counted, with Binance's timing)
            close_timeout=2,
            max_size=2**16,
            write_limit=2**20,
            logger=_ws_log,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._t_start = time.monotonic()
        if not self.start_on_subscribe:
            self._start_source()
        self._pump_task = asyncio.create_task(self._pump(), name="quantlab-sim-pump")
        log.info("exchange simulator on %s: %s; faults: %s", self.ws_url, self.source.describe(), self.faults)
        return self

    async def close(self) -> None:
        if self._server is None or self._closed:
            return
        self._closed = True
        await _cancel_and_wait(self._pump_task)
        if self.announce_shutdown and self._clients:
            self.send_server_shutdown()
            await asyncio.sleep(0.05)
        self._server.close()
        try:
            await asyncio.wait_for(self._server.wait_closed(), 5)
        except TimeoutError:
            for c in list(self._clients):
                c.ws.transport.abort()
        log.info("exchange simulator stopped: %s", dict(self._counters))

    @property
    def ws_url(self) -> str:
        self._require_started()
        return f"ws://{self._url_host}:{self.port}"

    @property
    def rest_url(self) -> str:
        self._require_started()
        return f"http://{self._url_host}:{self.port}"

    @property
    def _url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    def _require_started(self) -> None:
        if self.port is None:
            raise RuntimeError("exchange: not started; use 'async with Exchange(...) as ex' or await ex.start()")

    # ------------------------------------------------------------------ inspection

    @property
    def counters(self) -> dict[str, int]:
        """A snapshot: connections, messages_sent, trades_made, dropped, cuts, duplicates,
        malformed, stalled, pings, pongs, control_messages, rest_requests, rest_429, ..."""
        snap = dict(self._counters)
        snap.update({k: v for k, v in self._gate.counts.items() if v})
        snap["connections_open"] = len(self._clients)
        return snap

    def tape(self, symbol: str) -> Tape:
        s = str(symbol).upper()
        if s not in self._tapes:
            raise UnknownSymbolError(f"exchange: unknown symbol {symbol!r}; it trades {', '.join(self.symbols)}")
        return self._tapes[s]

    def trades(self, symbol: str) -> pd.DataFrame:
        """Every trade made so far for ``symbol``: columns trade_id (int64), price, qty
        (float64), is_buyer_maker (bool), time (datetime64[ns, UTC], trade time T)."""
        import pandas as pd

        rows = self.tape(symbol).all()
        info = self._infos[str(symbol).upper()]
        return pd.DataFrame({
            "trade_id": rows["id"].astype("int64"),
            "price": rows["price"] / 10.0**info.price_decimals,
            "qty": rows["qty"] / 10.0**info.qty_decimals,
            "is_buyer_maker": rows["buyer_maker"].astype(bool),
            "time": pd.to_datetime(rows["time"] * 1000, unit="ns", utc=True),
        })

    def info(self, symbol: str) -> SymbolInfo:
        self.tape(symbol)
        return self._infos[str(symbol).upper()]

    # ------------------------------------------------------------------ control from tests

    def abort_connections(self) -> int:
        """Cut every WebSocket connection now, without a close frame; returns how many."""
        n = 0
        for c in list(self._clients):
            c.closing = True
            c.ws.transport.abort()
            n += 1
        self._counters["cuts"] += n
        return n

    def pause(self) -> None:
        """Stop making trades (connections stay open), e.g. to read a stable tape in a test.

        The clock keeps running: on :meth:`resume` a real-time source makes the trades of
        the pause at once."""
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    def send_server_shutdown(self, grace: float | None = None) -> None:
        """Send the ``serverShutdown`` event to every open connection, then close those
        connections ``grace`` seconds later (default ``shutdown_grace``; None keeps them)
        with code 1001, as a server going down does. Connections opened after the notice
        are not affected."""
        now = _now_us()
        grace = self.shutdown_grace if grace is None else grace
        for c in list(self._clients):
            c.enqueue([wire.shutdown_frame(now, micro=c.micro, combined=c.combined).encode()], False)
            if grace is not None and self._loop is not None and not self._closed:
                c.tasks.append(asyncio.ensure_future(self._close_later(c, grace)))
        self._counters["shutdown_events"] += len(self._clients)

    async def _close_later(self, c: _Client, delay: float) -> None:
        await asyncio.sleep(delay)
        if c in self._clients and not c.closing:
            c.closing = True
            self._counters["shutdown_closes"] += 1
            with contextlib.suppress(Exception):
                await c.ws.close(1001, "Server shutdown")

    # ------------------------------------------------------------------ market

    def _start_source(self) -> None:
        self._source_started = True
        self.source.start(_now_us())

    async def _pump(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.tick)
                if self._paused:
                    continue
                if not self._source_started:
                    if not any(self._subs.values()):
                        continue
                    self._start_source()
                if self.source.throttleable:
                    watchers = [c for subs in self._subs.values() for c in subs]
                    if not watchers or any(c.pending > self.throttle_pending for c in watchers):
                        continue
                now = _now_us()
                shift_us = 0
                if self.faults.quiets:
                    quiet, off = quiet_offset_s(self.faults, time.monotonic() - self._t_start)
                    if quiet:
                        continue  # a quiet market: no trades, connections carry only pings
                    shift_us = int(off * 1e6)
                batches = self.source.advance(now - shift_us)
                if shift_us:  # the source's clock lags by the quiet time: trades print now
                    for batch in batches.values():
                        batch["time"] += shift_us
                if batches:
                    self._publish(batches, now)
                if self.source.exhausted:
                    log.info("exchange simulator: the source has no more trades (%s)", self.source.describe())
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("exchange simulator: the market pump failed")
            raise

    def _publish(self, batches: Mapping[str, Any], now_us: int) -> None:
        for sym, batch in batches.items():
            n = len(batch)
            if not n:
                continue
            self._tapes[sym].append(batch)
            self._counters["trades_made"] += n
            stream = f"{sym.lower()}@trade"
            subs = self._subs.get(stream)
            if not subs:
                continue
            info = self._infos[sym]
            encoded: dict[tuple[bool, bool], list[bytes]] = {}
            for c in list(subs):
                key = (c.combined, c.micro)
                frames = encoded.get(key)
                if frames is None:
                    frames = encoded[key] = wire.trade_frames(info, batch, now_us, micro=c.micro, combined=c.combined)
                c.enqueue(frames, True, stream)
                if c.pending > self.max_pending and not c.closing:
                    log.warning("exchange simulator: connection %d is %d frames behind; closing it", c.number, c.pending)
                    self._counters["slow_consumers"] += 1
                    c.closing = True
                    c.ws.transport.abort()

    # ------------------------------------------------------------------ HTTP entry point

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        if path.startswith("/api/"):
            return self._rest(path, params, request.headers)
        if path in ("/ws", "/ws/", "/stream", "/stream/") or path.startswith("/ws/"):
            if "upgrade" not in request.headers.get("Connection", "").lower():
                return self._json(400, {"code": -1, "msg": "This endpoint speaks WebSocket only."})
            combined = path.startswith("/stream")
            if combined:
                names = [s for s in unquote(params.get("streams", "")).split("/") if s]
            else:
                names = [s for s in unquote(path[len("/ws"):]).split("/") if s]
            refused = self._count_attempt()
            if refused is not None:
                return refused
            if len(names) > _MAX_STREAMS:
                return self._json(400, {"code": -1, "msg": (
                    f"Too many streams: {len(names)}; a connection carries at most {_MAX_STREAMS}.")})
            bad = [s for s in names if wire.parse_stream_name(s) is None]
            if bad:
                return self._json(400, {"code": 2, "msg": f"Invalid request: invalid stream {bad[0]!r}"})
            unit = params.get("timeUnit", "MILLISECOND").upper()
            if unit not in ("MILLISECOND", "MICROSECOND"):
                return self._json(400, {"code": -1100, "msg": f"Invalid timeUnit {params['timeUnit']!r}; use MILLISECOND or MICROSECOND."})
            conn.sim_plan = (combined, unit == "MICROSECOND", names)  # type: ignore[attr-defined]
            return None
        return self._json(404, {"code": -1, "msg": f"Not found: {path}"})

    def _count_attempt(self) -> Response | None:
        """Count one WebSocket connection attempt; a 429 once the budget is used up."""
        now = time.monotonic()
        self.connection_attempts.append(now)
        self._counters["connection_attempts"] += 1
        if self.connection_limit is None:
            return None
        limit, window = self.connection_limit
        acc = self._accepted_attempts
        while acc and now - acc[0] >= window:
            acc.popleft()
        if len(acc) >= limit:
            self._counters["connections_refused"] += 1
            retry = max(1, math.ceil(acc[0] + window - now))
            log.info("connection attempt refused: more than %d in %gs", limit, window)
            return self._json(429, {"code": -1003, "msg": (
                f"Too many connection attempts; the limit is {limit} per {window:g} seconds per IP.")},
                (("Retry-After", str(retry)),))
        acc.append(now)
        return None

    # ------------------------------------------------------------------ WebSocket

    async def _handler(self, ws: ServerConnection) -> None:
        combined, micro, names = getattr(ws, "sim_plan", (False, False, []))
        self._counters["connections"] += 1
        number = self._counters["connections"]
        c = _Client(ws, number, combined, micro, self.faults, time.monotonic() - self._t_start)
        self._clients.add(c)
        log.debug("connection %d: %s", number, ws.request.path if ws.request else "?")
        c.tasks.append(asyncio.create_task(self._writer(c)))
        if self.ping_interval:
            c.tasks.append(asyncio.create_task(self._keepalive(c)))
        if self.max_connection_age:
            c.tasks.append(asyncio.create_task(self._age_limit(c)))
        try:
            if names:
                self._subscribe(c, names)
            async for message in ws:
                self._on_message(c, message)
                if c.closing:
                    if c.close_with:
                        await ws.close(*c.close_with)
                    break
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(c)
            for stream in c.streams:
                subs = self._subs.get(stream)
                if subs is not None:
                    subs.discard(c)
            for t in c.tasks:
                t.cancel()
            self._counters["disconnections"] += 1

    def _on_message(self, c: _Client, message: str | bytes) -> None:
        self._counters["control_messages"] += 1
        now = time.monotonic()
        if self.control_rate_limit:
            c.incoming.append(now)
            while c.incoming and now - c.incoming[0] > 1.0:
                c.incoming.popleft()
            if len(c.incoming) > self.control_rate_limit:
                self._counters["rate_limited"] += 1
                log.info("connection %d sent more than %d messages in a second; closing it",
                         c.number, self.control_rate_limit)
                c.closing = True
                c.close_with = (1008, "Too many messages")
                return
        try:
            ctl = wire.parse_control(message)
        except wire.ControlError as err:
            self._counters["control_errors"] += 1
            c.enqueue([wire.error_reply(err, self.error_style).encode()], False)
            return
        if ctl.method == "SUBSCRIBE" and len(set(c.streams) | set(ctl.params)) > _MAX_STREAMS:
            self._counters["control_errors"] += 1
            c.enqueue([wire.error_reply(wire.ControlError(
                2, f"Invalid request: a connection carries at most {_MAX_STREAMS} streams", ctl.id),
                self.error_style).encode()], False)
            return
        if ctl.method == "SUBSCRIBE":
            reply = wire.result_reply(None, ctl.id).encode()
            c.enqueue([reply], False)
            self._subscribe(c, ctl.params)
        elif ctl.method == "UNSUBSCRIBE":
            for name in ctl.params:
                if name in c.streams:
                    c.streams.remove(name)
                    subs = self._subs.get(name)
                    if subs:
                        subs.discard(c)
            c.enqueue([wire.result_reply(None, ctl.id).encode()], False)
        elif ctl.method == "LIST_SUBSCRIPTIONS":
            c.enqueue([wire.result_reply(list(c.streams), ctl.id).encode()], False)
        elif ctl.method == "SET_PROPERTY":
            c.combined = bool(ctl.params[1])
            c.enqueue([wire.result_reply(None, ctl.id).encode()], False)
        else:  # GET_PROPERTY
            c.enqueue([wire.result_reply(c.combined, ctl.id).encode()], False)

    def _subscribe(self, c: _Client, names: Sequence[str]) -> None:
        for name in names:
            if name in c.streams:
                continue
            c.streams.append(name)
            sym = self._by_stream.get(name)
            if sym is None:
                if name.lower() in self._by_stream:
                    log.warning("stream %r has upper-case letters: Binance sends nothing on it; use %r",
                                name, name.lower())
                continue
            self._subs.setdefault(name, set()).add(c)
            k = self.faults.dup_after_reconnect
            if k and name in self._served:
                last = self._tapes[sym].last(k)
                if len(last):
                    frames = wire.trade_frames(self._infos[sym], last, _now_us(), micro=c.micro, combined=c.combined)
                    c.enqueue(frames, False, name)
                    self._counters["duplicates"] += len(frames)
            self._served.add(name)

    async def _writer(self, c: _Client) -> None:
        ws = c.ws
        try:
            while True:
                await c.wake.wait()
                c.wake.clear()
                while c.queue:
                    out: list[bytes] = []
                    cut = False
                    dead = bool(self.faults.deads) and c.fault.dead(time.monotonic() - self._t_start)
                    while c.queue and len(out) < 8192 and not cut:
                        frames, data, stream = c.queue.popleft()
                        if dead:  # a dead connection sends nothing at all
                            if data:
                                c.pending -= len(frames)
                            self._counters["dead_withheld"] += len(frames)
                            continue
                        if not data:
                            out.extend(frames)
                            continue
                        c.pending -= len(frames)
                        cut = self._faulty_frames(c, frames, stream, out)
                    if out:
                        async with ws.send_context():
                            for f in out:
                                ws.protocol.send_text(f)
                    if c.flap_due and not c.closing:
                        c.queue.clear()
                        c.closing = True
                        self._counters["flaps"] += 1
                        await ws.close(1008, "Too many requests")
                        return
                    if cut:
                        c.queue.clear()
                        c.closing = True
                        self._counters["cuts"] += 1
                        log.debug("connection %d: cut after %d frames", c.number, c.fault.sent)
                        ws.transport.abort()
                        return
        except ConnectionClosed:
            return

    def _faulty_frames(self, c: _Client, frames: list[bytes], stream: str, out: list[bytes]) -> bool:
        """Append ``frames`` to ``out`` through the fault filters; True when the cut is due."""
        f = self.faults
        st = c.fault
        if not f.any_stream_fault:
            out.extend(frames)
            self._counters["messages_sent"] += len(frames)
            st.sent += len(frames)
            return False
        if (f.stalls and st.stalled(time.monotonic() - self._t_start)) or c.flap_due:
            self._counters["stalled"] += len(frames)
            return False
        n = len(frames)
        drop = st.drop_mask(n)
        bad = st.malformed_mask(n)
        for k in range(n):
            if bad is not None and bad[k]:
                out.append(malformed_frame(st.next_malformed_kind(), stream, c.combined).encode())
                self._counters["malformed"] += 1
            if drop is not None and drop[k]:
                self._counters["dropped"] += 1
                continue
            out.append(frames[k])
            st.sent += 1
            self._counters["messages_sent"] += 1
            if f.flap and st.sent >= f.flap:
                c.flap_due = True
                return False
            if f.cut_every and st.sent % f.cut_every == 0:
                self._counters["cut_lost"] += n - k - 1
                return True
        return False

    async def _keepalive(self, c: _Client) -> None:
        n = 0
        try:
            while True:
                await asyncio.sleep(self.ping_interval)  # type: ignore[arg-type]
                if self.faults.deads and c.fault.dead(time.monotonic() - self._t_start):
                    continue  # a dead connection sends no pings either
                n += 1
                waiter = await c.ws.ping(str(n).encode())
                self._counters["pings"] += 1
                try:
                    await asyncio.wait_for(asyncio.shield(waiter), self.ping_timeout)
                    self._counters["pongs"] += 1
                except TimeoutError:
                    self._counters["ping_timeouts"] += 1
                    log.info("connection %d: no pong within %gs; dropping it", c.number, self.ping_timeout)
                    c.closing = True
                    c.ws.transport.abort()
                    return
        except ConnectionClosed:
            return

    async def _age_limit(self, c: _Client) -> None:
        await asyncio.sleep(self.max_connection_age)  # type: ignore[arg-type]
        self._counters["expired"] += 1
        c.closing = True
        await c.ws.close(1001, "Connection reached its maximum age")

    # ------------------------------------------------------------------ REST

    def _json(self, status: int, body: object, extra: Sequence[tuple[str, str]] = ()) -> Response:
        raw = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
        if not any(k.lower() == "content-type" for k, _ in extra):
            extra = (("Content-Type", "application/json;charset=UTF-8"), *extra)
        headers = Headers([
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Content-Length", str(len(raw))),
            ("Connection", "close"),
            *extra,
        ])
        return Response(status, http.HTTPStatus(status).phrase, headers, raw)

    def _use_weight(self, weight: int) -> tuple[int, int]:
        """Add ``weight`` to this minute's total; returns (used, seconds left in the minute)."""
        now = time.time()
        minute = int(now // 60)
        if minute != self._weight_minute:
            self._weight_minute, self._weight_used = minute, 0
        self._weight_used += weight
        return self._weight_used, max(1, math.ceil(60 - now % 60))

    def _rest(self, path: str, params: dict[str, str], headers: Headers) -> Response:
        self._counters["rest_requests"] += 1
        endpoint = path[len(self.REST_PREFIX):] if path.startswith(self.REST_PREFIX) else ""
        weight = self.REST_WEIGHTS.get(endpoint)
        if weight is None:
            return self._json(404, {"code": -1, "msg": f"Not found: {path}"})
        now = time.time()
        refusal: Refusal | None = self._gate.check(endpoint, endpoint in self.REST_HISTORY, now)
        if refusal is not None:
            return self._json(refusal.status, refusal.body, refusal.headers)
        used, reset = self._use_weight(weight)
        used_h = (("X-MBX-USED-WEIGHT-1M", str(used)),)
        if used > self.weight_limit:
            r = self._gate.refuse_429(reset, now, "weight", self.weight_limit)
            return self._json(r.status, r.body, (*used_h, *r.headers))
        if endpoint == "historicalTrades" and self.faults.data_api:
            # data-api.binance.vision does not list historicalTrades among the endpoints it
            # serves (faqs/market_data_only.md); the shape of its refusal is not documented,
            # so it is answered here as any path the host does not serve.
            self._counters["rest_not_served"] += 1
            return self._json(404, {"code": -1, "msg": f"Not found: {path}"}, used_h)
        micro = headers.get("X-MBX-TIME-UNIT", "").upper() == "MICROSECOND"
        try:
            body = self._endpoint(endpoint, params, micro)
        except _RestError as err:
            self._counters["rest_errors"] += 1
            return self._json(err.status, {"code": err.code, "msg": err.msg}, used_h)
        return self._json(200, body, used_h)

    def _symbol(self, params: dict[str, str]) -> str:
        raw = params.get("symbol", "")
        if not raw:
            raise _RestError(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        if raw not in self._tapes:
            raise _RestError(400, -1121, "Invalid symbol.")
        return raw

    @overload
    @staticmethod
    def _int(params: dict[str, str], name: str) -> int | None: ...
    @overload
    @staticmethod
    def _int(params: dict[str, str], name: str, default: int) -> int: ...
    @staticmethod
    def _int(params: dict[str, str], name: str, default: int | None = None) -> int | None:
        raw = params.get(name)
        if raw is None or raw == "":
            return default
        if not raw.isdigit() or len(raw) > 20:
            raise _RestError(400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.")
        return int(raw)

    def _limit(self, params: dict[str, str]) -> int:
        limit = self._int(params, "limit", _DEFAULT_LIMIT)
        if limit < 1:
            raise _RestError(400, -1100, "Illegal characters found in parameter 'limit'; legal range is '1'..'1000'.")
        return min(limit, _MAX_LIMIT)

    def _endpoint(self, endpoint: str, params: dict[str, str], micro: bool) -> bytes | dict | list:
        if endpoint == "ping":
            return {}
        if endpoint == "time":
            return {"serverTime": int(time.time() * 1000)}
        if endpoint == "exchangeInfo":
            return wire.exchange_info_json(
                [self._infos[s] for s in self._info_symbols(params)], int(time.time() * 1000), self.weight_limit)
        sym = self._symbol(params)
        tape = self._tapes[sym]
        info = self._infos[sym]
        limit = self._limit(params)
        if endpoint == "trades":
            return wire.trade_rows_json(info, tape.last(limit), micro=micro)
        if endpoint == "historicalTrades":
            from_id = self._int(params, "fromId")
            rows = tape.last(limit) if from_id is None else tape.from_id(from_id, limit)
            return wire.trade_rows_json(info, self._lagged(rows), micro=micro)
        # aggTrades
        from_id = self._int(params, "fromId")
        start, end = self._int(params, "startTime"), self._int(params, "endTime")
        unit = 1 if micro else 1000
        n_aggs = tape.n_aggs()
        if from_id is not None:
            lo = tape.agg_index_of_id(from_id)
            hi = lo + limit
        elif start is not None or end is not None:
            if start is not None and end is not None and end - start > 3600 * 1000 * (1000 // unit):
                raise _RestError(400, -1127, "More than 1 hours between startTime and endTime.")
            lo = tape.agg_index_of_time(start * unit) if start is not None else 0
            hi = tape.agg_index_of_time(end * unit + unit) if end is not None else n_aggs
            hi = min(hi, lo + limit)
        else:
            hi = n_aggs
            lo = max(0, hi - limit)
        if self.faults.history_lag > 0:  # served from the database too: the same lag
            hi = min(hi, tape.agg_index_of_time(self._history_cutoff_us()))
        ids, first, last, qty = tape.aggs(lo, hi)
        if len(ids) == 0:
            return b"[]"
        rows = tape.slice(int(first[0]), int(last[-1]) + 1)
        base = int(first[0])
        first_rows = rows[first - base]
        last_ids = rows["id"][last - base]
        return wire.agg_rows_json(info, ids, qty, first_rows, first_rows["id"], last_ids, micro=micro)

    def _history_cutoff_us(self) -> int:
        return _now_us() - int(self.faults.history_lag * 1e6)

    def _lagged(self, rows):
        """``historicalTrades`` rows as a lagging history database serves them.

        Binance's spot docs give ``historicalTrades`` "Data Source: Database" and ``trades``
        "Data Source: Memory", and order the sources by "potential for delays in data
        updates" with the database last (rest-api.md, "Data Sources"): the newest trades
        reach the database some time after they happen. With ``history_lag=S`` rows made in
        the last S seconds are not there yet, so the page comes back short."""
        if self.faults.history_lag <= 0 or len(rows) == 0:
            return rows
        keep = int(np.searchsorted(rows["time"], self._history_cutoff_us(), "left"))
        if keep < len(rows):
            self._counters["history_short_pages"] += 1
        return rows[:keep]

    def _info_symbols(self, params: dict[str, str]) -> list[str]:
        if "symbol" in params:
            s = params["symbol"]
            if s not in self._infos:
                raise _RestError(400, -1121, "Invalid symbol.")
            return [s]
        if "symbols" in params:
            raw = unquote(params["symbols"]).strip()
            try:
                names = json.loads(raw) if raw.startswith("[") else [x for x in raw.split(",") if x]
                if not isinstance(names, list) or not names or not all(isinstance(x, str) for x in names):
                    raise ValueError
            except ValueError:
                raise _RestError(400, -1100, "Illegal characters found in parameter 'symbols'; legal range is "
                                 "'^\\[(\"[A-Z0-9-_.]{1,20}\"(,\"[A-Z0-9-_.]{1,20}\"){0,}){0,1}\\]$'.") from None
            if any(s not in self._infos for s in names):
                raise _RestError(400, -1121, "Invalid symbol.")
            return list(dict.fromkeys(names))
        return list(self.symbols)


class _RestError(Exception):
    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


async def _cancel_and_wait(task: asyncio.Task | None) -> None:
    """Cancel ``task`` (a market loop) and wait until it has ended, so that closing goes on
    after it; a failure it had ended with is logged in one line, not raised."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    except Exception as exc:  # noqa: BLE001 - the simulator closes anyway; say what failed
        log.warning("exchange simulator: %s had failed: %s", task.get_name(), exc)


class ExchangeThread:
    """Runs an :class:`Exchange` on a background event loop, for synchronous code.

    >>> with ExchangeThread(Synthetic(rate=500), faults="drop=0.01") as ex:
    ...     ex.ws_url, ex.rest_url
    ...     ex.trades("BTCUSDT")
    """

    #: the exchange class it runs (the futures simulator's thread overrides it)
    EXCHANGE: type[Exchange] = Exchange

    def __init__(self, source: Source | str, **kwargs: Any) -> None:
        self._source = source
        self._kwargs = kwargs
        self.exchange: Exchange | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 30.0) -> ExchangeThread:
        if self._thread is not None:
            raise RuntimeError("exchange thread: already started")
        self._thread = threading.Thread(target=self._run, name="quantlab-sim", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"exchange thread: not ready within {timeout}s")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with self.EXCHANGE(self._source, **self._kwargs) as ex:
            self.exchange = ex
            self._ready.set()
            await self._stop.wait()

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass
        self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> ExchangeThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _ex(self) -> Exchange:
        if self.exchange is None:
            raise RuntimeError("exchange thread: not started; call .start() first")
        return self.exchange

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(exchange, *args)`` on the exchange's loop and return its result."""
        ex = self._ex()
        assert self._loop is not None

        async def _do() -> Any:
            return fn(ex, *args)

        return asyncio.run_coroutine_threadsafe(_do(), self._loop).result(10)

    @property
    def ws_url(self) -> str:
        return self._ex().ws_url

    @property
    def rest_url(self) -> str:
        return self._ex().rest_url

    @property
    def port(self) -> int:
        return int(self._ex().port or 0)

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._ex().symbols

    @property
    def counters(self) -> dict[str, int]:
        return self.call(lambda ex: ex.counters)

    def trades(self, symbol: str) -> pd.DataFrame:
        return self._ex().trades(symbol)

    def abort_connections(self) -> int:
        return self.call(lambda ex: ex.abort_connections())

    def pause(self) -> None:
        """Stop the exchange's market (see :meth:`Exchange.pause`); connections stay open."""
        self.call(lambda ex: ex.pause())

    def resume(self) -> None:
        self.call(lambda ex: ex.resume())

    def send_server_shutdown(self) -> None:
        self.call(lambda ex: ex.send_server_shutdown())
