"""Asyncio client of Binance's combined market streams, on ``websockets``.

``BinanceStream`` is an async context manager and an async iterator of events::

    async with BinanceStream(ws_url, ["BTCUSDT", "ETHUSDT"], rest_url=rest_url) as stream:
        async for event in stream:
            ...  # Trade, AggTrade, BookTicker, Kline, SubscribeReply, ErrorFrame,
                 # ServerShutdown, Unknown, and the control events Connected / Disconnected

What it does for the caller:

* refuses unknown symbols before connecting (``/api/v3/exchangeInfo``, when ``rest_url``
  is given and ``validate_symbols`` is true);
* answers server pings with their payload (``websockets`` does it; they are counted) and
  sends no keepalive pings of its own (Binance counts every frame against 5/s);
* reconnects after any retryable failure with the delays of ``backoff`` (exponential, jitter,
  cap), yielding ``Disconnected(reason, retry_in_s)`` first and ``Connected(url, attempt)``
  once open; a fatal failure (bad URL, refused path, IP ban) raises :class:`StreamError`
  from the iterator; the delay generator restarts once a connection has delivered data;
* a watchdog closes a connection that received no frame at all (data, ping, reply) for
  ``watchdog_s`` seconds (default 1.5 x Binance's 20 s ping interval): a quiet market whose
  connection carries only pings is alive;
* every connection attempt (first, reconnect, rotation) goes through a :class:`ConnectBudget`
  (Binance: 300 attempts per 5 minutes per IP; share one between streams), and a close
  with code 1008 is followed by a longer minimum delay;
* asks for µs timestamps by default (``timeUnit=MICROSECOND``);
* rotates the connection before Binance's 24-hour cut (and on ``serverShutdown``),
  make-before-break: the new connection opens and buffers while the old one keeps
  delivering, until the old one has caught up with the first trade the new one saw;
* delivers each trade id (and agg-trade id) at most once per symbol, so the rotation overlap
  and replays after a reconnect never double a trade; ids only move forward;
* keeps outgoing control frames (SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS) at most
  ``control_limit`` in any ``control_window_s`` sliding window;
* counts and skips frames that are not valid JSON or have mistyped fields.

The recorder backfills over REST after every ``Connected``: trades missed while
disconnected are not replayed by the exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidURI
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

from quantlab.config import parse_symbols
from quantlab.errors import QuantlabError

from .backoff import (
    Failure,
    SlidingWindow,
    WatchdogTimeout,
    backoff_delays,
    classify,
)
from .protocol import (
    DEFAULT_TIME_UNIT,
    AggTrade,
    ErrorFrame,
    Event,
    ProtocolError,
    ServerShutdown,
    SubscribeReply,
    Trade,
    Unknown,
    control_message,
    parse_frame,
    stream_names,
    stream_url,
)

__all__ = ["BinanceStream", "ConnectBudget", "Connected", "Disconnected", "StreamError", "ControlError"]

log = logging.getLogger(__name__)

#: the reader lets the loop's other tasks run after this many frames in a row
READER_YIELD_EVERY = 100


@dataclass(frozen=True, slots=True)
class Connected:
    """A connection is open; ``attempt`` counts connection attempts since the stream began.

    ``rotation`` is true when it replaced a live connection make-before-break (no gap).
    """

    url: str
    attempt: int
    rotation: bool = False


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection ended or could not be opened; the next attempt is in ``retry_in_s``."""

    reason: str
    retry_in_s: float


class StreamError(QuantlabError):
    """The stream stopped for good: a fatal failure, or ``max_attempts`` failed in a row."""


class ControlError(QuantlabError):
    """The server answered a SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS with an error."""


class _Connection(ClientConnection):
    """websockets' client connection, counting the pings it answers and noting when the
    last frame of any kind (data, ping, pong, close) arrived: that is the liveness the
    watchdog checks, so a healthy connection to quiet symbols is never torn down."""

    on_ping: Callable[[bytes], None] | None = None
    #: ``time.monotonic()`` of the last frame received (asyncio's loop clock is the same).
    last_frame: float = 0.0

    def process_event(self, event: Any) -> None:
        if isinstance(event, Frame):
            self.last_frame = time.monotonic()
            if event.opcode is Opcode.PING and self.on_ping:
                self.on_ping(bytes(event.data))
        super().process_event(event)


class ConnectBudget:
    """One limiter for every connection attempt of a process (first connects, reconnects,
    rotations; share one instance between several streams).

    Binance allows 300 connection attempts per 5 minutes per IP (spot "WebSocket Limits",
    developers.binance.com/docs/binance-spot-api-docs/web-socket-streams); a connect ->
    one message -> close loop would exhaust that with the reconnect backoff alone, since the
    backoff restarts whenever a connection delivered data. :meth:`acquire` waits until an
    attempt fits in ``limit`` per sliding ``window_s``. ``after_1008_s`` is the minimum
    delay after a close with code 1008 (policy violation: Binance's answer to a client over
    its message rate; IPs disconnected repeatedly may be banned). ``margin_s`` widens the
    window the budget keeps: attempts reach the server after a varying delay, so two of them
    can arrive closer together than they left.

    >>> b = ConnectBudget(limit=2, window_s=10.0)
    >>> b.wait_s(0.0)
    0.0
    """

    def __init__(self, limit: int = 300, window_s: float = 300.0, *, after_1008_s: float = 10.0,
                 margin_s: float = 1.0) -> None:
        for name, value in (("after_1008_s", after_1008_s), ("margin_s", margin_s)):
            if not (isinstance(value, int | float) and value >= 0):
                raise ValueError(f"{name}: must be >= 0 seconds, got {value!r}")
        self._window = SlidingWindow(limit, window_s + margin_s)  # validates limit and window_s
        self.limit = limit
        self.window_s = float(window_s)
        self.after_1008_s = float(after_1008_s)
        self._lock = asyncio.Lock()
        #: monotonic times of the attempts made (the last ``4 * limit``), for status and tests
        self.attempts: deque[float] = deque(maxlen=4 * limit)
        self.waited_s = 0.0

    def wait_s(self, now: float) -> float:
        """Seconds until the next attempt may go."""
        return self._window.delay(now)

    async def acquire(self) -> None:
        """Wait for room in the window, then count one attempt."""
        async with self._lock:
            while True:
                now = time.monotonic()
                delay = self._window.delay(now)
                if delay <= 0:
                    break
                self.waited_s += delay
                log.warning("connection-attempt budget (%d per %g s) used up; next attempt in %.1f s",
                            self.limit, self.window_s, delay)
                await asyncio.sleep(delay)
            self._window.record(now)
            self.attempts.append(now)

    def most_in_window(self) -> int:
        """The largest number of recorded attempts inside any window of ``window_s``."""
        times = list(self.attempts)
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] >= self.window_s:
                lo += 1
            best = max(best, hi - lo + 1)
        return best


class _Link:
    """One open connection and what the stream knows about it."""

    __slots__ = ("ws", "url", "attempt", "active", "pending", "first_ids", "last_rx",
                 "end_exc", "reader", "delivered", "opened", "retired", "streams")

    def __init__(self, ws: _Connection, url: str, streams: set[str], attempt: int, now: float) -> None:
        self.ws = ws
        self.url = url
        self.streams = streams  # what this connection carries (URL + acknowledged SUBSCRIBEs)
        self.attempt = attempt
        self.active = False
        self.retired = False  # replaced by a rotation: its frames are ignored
        self.pending: list[Event] = []  # events read while on standby (rotation)
        self.first_ids: dict[str, int] = {}  # first trade id seen per symbol while on standby
        self.last_rx = now
        self.end_exc: BaseException | None = None
        self.reader: asyncio.Task | None = None
        self.delivered = 0
        self.opened = now


_CLOSED = object()


class BinanceStream:
    """Combined-stream client; see the module docstring.

    ``ws_url``: stream base such as ``wss://stream.binance.com:9443``.
    ``symbols``/``kinds``: e.g. ``["BTCUSDT"]`` and ``("trade",)``.
    ``rest_url``: REST base used to validate symbols (skipped when None).
    ``ping_interval_s``: how often the server pings (Binance: every 20 s, and it drops a
    client that has not answered within a minute).
    ``watchdog_s``: reconnect a connection that received no frame at all (data, ping or
    control) for this long; default 1.5 x ``ping_interval_s``, so quiet symbols whose
    connection only carries pings are never mistaken for a dead connection.
    ``connect_budget``: the :class:`ConnectBudget` every connection attempt goes through
    (share one between the streams of a process); default 300 per 5 minutes.
    ``rotate_after_s``: replace each connection after this long (Binance cuts at 24 h).
    ``backoff``: zero-argument callable returning an iterator of reconnect delays.
    ``max_attempts``: give up (:class:`StreamError`) after this many failed connection
    attempts in a row; None retries forever.
    ``time_unit``: ``"MICROSECOND"`` (default, :data:`DEFAULT_TIME_UNIT`) asks Binance for
    µs timestamps (``timeUnit=MICROSECOND`` on the URL); ``"MILLISECOND"`` or None for ms.
    ``handover_s``: (min, max) seconds of make-before-break overlap during a rotation.
    """

    def __init__(
        self,
        ws_url: str,
        symbols: Iterable[str] | str,
        kinds: Sequence[str] = ("trade",),
        *,
        rest_url: str | None = None,
        watchdog_s: float | None = None,
        ping_interval_s: float = 20.0,
        connect_budget: ConnectBudget | None = None,
        rotate_after_s: float = 23 * 3600,
        backoff: Callable[[], Iterator[float]] = backoff_delays,
        validate_symbols: bool = True,
        time_unit: str | None = DEFAULT_TIME_UNIT,
        max_attempts: int | None = None,
        open_timeout_s: float = 10.0,
        control_limit: int = 4,
        control_window_s: float = 1.0,
        control_timeout_s: float = 5.0,
        handover_s: tuple[float, float] = (0.5, 5.0),
        max_pending: int = 100_000,
        rest: Any | None = None,
    ) -> None:
        if isinstance(kinds, str):
            kinds = (kinds,)
        self.kinds = tuple(kinds)
        self._symbols = parse_symbols(symbols if isinstance(symbols, str) else list(symbols))
        if not self._symbols:
            raise ValueError("symbols: no symbol given (use e.g. ['BTCUSDT', 'ETHUSDT'])")
        if not isinstance(ws_url, str) or not ws_url.lower().startswith(("ws://", "wss://")):
            raise ValueError(
                f"ws_url: {ws_url!r} is not a WebSocket URL "
                "(use e.g. 'wss://stream.binance.com:9443')"
            )
        self.ws_url = ws_url.rstrip("/")
        self.time_unit = time_unit.upper() if isinstance(time_unit, str) else time_unit
        if watchdog_s is None:
            watchdog_s = 1.5 * ping_interval_s if isinstance(ping_interval_s, int | float) else ping_interval_s
        url = stream_url(self.ws_url, self._symbols, self.kinds, time_unit=time_unit)
        try:
            parse_uri(url)
        except (InvalidURI, ValueError) as exc:
            raise ValueError(f"ws_url: {ws_url!r} is not a valid WebSocket URL ({exc})") from None
        for name, value in (("watchdog_s", watchdog_s), ("ping_interval_s", ping_interval_s),
                            ("rotate_after_s", rotate_after_s),
                            ("open_timeout_s", open_timeout_s), ("control_timeout_s", control_timeout_s)):
            if not (isinstance(value, int | float) and value > 0):
                raise ValueError(f"{name}: must be > 0 seconds, got {value!r}")
        if max_attempts is not None and not (isinstance(max_attempts, int) and max_attempts >= 1):
            raise ValueError(f"max_attempts: must be None or an int >= 1, got {max_attempts!r}")
        if not (len(handover_s) == 2 and 0 <= handover_s[0] <= handover_s[1]):
            raise ValueError(f"handover_s: must be (min, max) seconds with min <= max, got {handover_s!r}")
        if not callable(backoff):
            raise TypeError("backoff: must be a callable returning an iterator of delays")
        self.rest_url = rest_url
        self.watchdog_s = float(watchdog_s)
        self.ping_interval_s = float(ping_interval_s)
        if connect_budget is not None and not isinstance(connect_budget, ConnectBudget):
            raise TypeError("connect_budget: must be a ConnectBudget (or None for a private one)")
        self.connect_budget = connect_budget if connect_budget is not None else ConnectBudget()
        self.rotate_after_s = float(rotate_after_s)
        self.validate_symbols = validate_symbols
        self.max_attempts = max_attempts
        self.open_timeout_s = float(open_timeout_s)
        self.control_timeout_s = float(control_timeout_s)
        self.handover_s = (float(handover_s[0]), float(handover_s[1]))
        self._backoff = backoff
        self._limiter = SlidingWindow(control_limit, control_window_s)
        self._control_lock = asyncio.Lock()
        self._rest = rest
        self._own_rest = False
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future] = {}
        self._last_ids: dict[tuple[str, str], int] = {}
        self._out: deque[Any] = deque()
        self._out_ready = asyncio.Event()
        self._out_space = asyncio.Event()
        self._out_space.set()
        self._max_pending = max_pending
        self._task: asyncio.Task | None = None
        self._active: _Link | None = None
        self._links: set[_Link] = set()
        self._wake = asyncio.Event()
        self._rotate_now = False
        self._failure: BaseException | None = None
        self._closed = False
        self._started = False
        self._attempt = 0
        self._malformed_logged = 0
        #: Monotonic times at which control frames were sent (for measurement).
        self.control_sent_at: deque[float] = deque(maxlen=1000)
        self._counters: dict[str, int] = dict.fromkeys(
            (
                "messages", "events", "trades", "agg_trades", "malformed", "duplicates",
                "connects", "connect_attempts", "connect_failures", "reconnects", "pings", "control_frames_sent",
                "watchdog_timeouts", "rotations", "server_shutdowns", "error_frames", "unknown",
            ),
            0,
        )

    # ------------------------------------------------------------------ public API

    @property
    def symbols(self) -> list[str]:
        """Symbols currently subscribed (upper case)."""
        return list(self._symbols)

    @property
    def url(self) -> str:
        """The combined-stream URL for the current symbols."""
        return stream_url(self.ws_url, self._symbols, self.kinds, time_unit=self.time_unit)

    @property
    def counters(self) -> dict[str, int]:
        """Snapshot of the stream's counters."""
        return dict(self._counters)

    async def __aenter__(self) -> BinanceStream:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __aiter__(self) -> BinanceStream:
        return self

    async def __anext__(self) -> Event | Connected | Disconnected:
        if not self._started:
            await self.start()
        while not self._out:
            if self._failure is not None:
                failure, self._failure = self._failure, None
                self._closed = True
                raise failure
            if self._closed:
                raise StopAsyncIteration
            self._out_ready.clear()
            await self._out_ready.wait()
        event = self._out.popleft()
        if not self._out_space.is_set() and len(self._out) <= self._max_pending // 2:
            self._out_space.set()
        return event

    async def start(self) -> None:
        """Validate the symbols (REST) and start connecting; idempotent."""
        if self._started:
            return
        if self._closed:
            raise RuntimeError("BinanceStream is closed")
        self._started = True
        await self._validate(self._symbols)
        self._task = asyncio.create_task(self._run(), name="binance-stream")

    async def aclose(self) -> None:
        """Stop: close every connection and end the iteration."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for link in list(self._links):
            await self._drop(link, graceful=True)
        for fut in self._replies.values():
            if not fut.done():
                fut.cancel()
        self._replies.clear()
        if self._own_rest and self._rest is not None:
            await self._rest.aclose()
            self._rest = None
        self._out_ready.set()
        self._out_space.set()

    async def subscribe(self, symbols: Iterable[str] | str) -> Any:
        """Add ``symbols`` (validated over REST first) on the open connection; later
        connections include them. Returns the server's reply result (None on success).
        """
        new = [s for s in parse_symbols(_listify(symbols)) if s not in self._symbols]
        if not new:
            return None
        await self._validate(new)
        self._symbols.extend(new)
        try:
            return await self._control("SUBSCRIBE", stream_names(new, self.kinds))
        except ControlError:
            self._symbols = [s for s in self._symbols if s not in new]  # refused: roll back
            raise

    async def unsubscribe(self, symbols: Iterable[str] | str) -> Any:
        """Remove ``symbols`` from the open connection and from later ones."""
        gone = [s for s in parse_symbols(_listify(symbols)) if s in self._symbols]
        if not gone:
            return None
        if len(gone) == len(self._symbols):
            raise ValueError("symbols: cannot unsubscribe every symbol; close the stream instead")
        self._symbols = [s for s in self._symbols if s not in gone]
        return await self._control("UNSUBSCRIBE", stream_names(gone, self.kinds))

    async def list_subscriptions(self) -> list[str] | None:
        """The streams the server says this connection carries (None when not connected)."""
        return await self._control("LIST_SUBSCRIPTIONS", None)

    def request_rotation(self) -> None:
        """Replace the connection now, make-before-break (as on ``serverShutdown``)."""
        self._rotate_now = True
        self._wake.set()

    # ------------------------------------------------------------------ internals: output

    def _emit(self, events: list) -> None:
        self._out.extend(events)
        self._out_ready.set()

    async def _emit_wait(self, events: list) -> None:
        self._emit(events)
        if len(self._out) > self._max_pending:
            self._out_space.clear()
            await self._out_space.wait()

    def _admit(self, events: list[Event]) -> list[Event]:
        """Drop trades (and agg trades) whose id was already delivered for their symbol."""
        out = []
        last_ids = self._last_ids
        c = self._counters
        for ev in events:
            if type(ev) is Trade:
                key = ("t", ev.symbol)
                if ev.trade_id <= last_ids.get(key, -1):
                    c["duplicates"] += 1
                    continue
                last_ids[key] = ev.trade_id
                c["trades"] += 1
            elif type(ev) is AggTrade:
                key = ("a", ev.symbol)
                if ev.agg_id <= last_ids.get(key, -1):
                    c["duplicates"] += 1
                    continue
                last_ids[key] = ev.agg_id
                c["agg_trades"] += 1
            out.append(ev)
        c["events"] += len(out)
        return out

    # ------------------------------------------------------------------ internals: REST

    async def _validate(self, symbols: list[str]) -> None:
        if not self.validate_symbols:
            return
        if self._rest is None:
            if self.rest_url is None:
                log.info("no rest_url given: symbols %s not checked against exchangeInfo", symbols)
                return
            from .rest import BinanceRest

            self._rest = BinanceRest(self.rest_url, max_retries=2)
            self._own_rest = True
        await self._rest.exchange_info(symbols)

    # ------------------------------------------------------------------ internals: connections

    def _wanted(self) -> set[str]:
        return set(stream_names(self._symbols, self.kinds))

    async def _open(self, url: str) -> _Link:
        streams = self._wanted()
        await self.connect_budget.acquire()
        self._attempt += 1
        self._counters["connect_attempts"] += 1
        ws = await connect(
            url,
            open_timeout=self.open_timeout_s,
            ping_interval=None,  # Binance pings us; our own pings would count against 5/s
            close_timeout=1.0,
            compression=None,
            max_queue=64,
            create_connection=self._make_connection,
        )
        link = _Link(ws, url, streams, self._attempt, asyncio.get_running_loop().time())
        self._links.add(link)
        self._counters["connects"] += 1
        return link

    def _make_connection(self, *args: Any, **kwargs: Any) -> _Connection:
        conn = _Connection(*args, **kwargs)
        conn.on_ping = self._on_ping  # before the first frame can arrive
        return conn

    def _on_ping(self, payload: bytes) -> None:
        self._counters["pings"] += 1

    def _start_reader(self, link: _Link) -> None:
        link.reader = asyncio.create_task(self._read(link), name="binance-stream-reader")
        link.reader.add_done_callback(lambda _t: self._wake.set())

    async def _read(self, link: _Link) -> None:
        """Read frames until the connection ends; the ending exception goes to end_exc."""
        loop = asyncio.get_running_loop()
        c = self._counters
        unit = self.time_unit
        ws = link.ws
        try:
            while True:
                data = await ws.recv()
                if c["messages"] % READER_YIELD_EVERY == 0:
                    # recv() returns queued frames without suspending: after a backlog (a slow
                    # disk, a busy writer thread) the reader would hold the loop until it is read
                    await asyncio.sleep(0)
                recv_ns = time.time_ns()
                link.last_rx = loop.time()
                c["messages"] += 1
                try:
                    events = parse_frame(data, recv_ns, time_unit=unit)
                except ProtocolError as exc:
                    self._malformed(exc)
                    continue
                shutdown = False
                for ev in events:
                    t = type(ev)
                    if t is Trade or t is AggTrade:
                        continue
                    if t is SubscribeReply or t is ErrorFrame:
                        self._reply(ev)
                    elif t is ServerShutdown:
                        c["server_shutdowns"] += 1
                        shutdown = True
                    elif t is Unknown:
                        c["unknown"] += 1
                if link.active:
                    out = self._admit(events)
                    link.delivered += len(out)
                    if out:
                        await self._emit_wait(out)
                elif not link.retired:
                    for ev in events:
                        if type(ev) is Trade and ev.symbol not in link.first_ids:
                            link.first_ids[ev.symbol] = ev.trade_id
                    link.pending.extend(events)
                if shutdown and link.active:
                    log.warning("server announced its shutdown on %s; rotating", link.url)
                    self.request_rotation()
        except ConnectionClosed as exc:
            if link.end_exc is None:
                link.end_exc = exc
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any reader failure ends this connection
            if link.end_exc is None:
                link.end_exc = exc

    def _malformed(self, exc: ProtocolError) -> None:
        n = self._counters["malformed"] = self._counters["malformed"] + 1
        if n <= 5 or n % 1000 == 0:
            log.warning("skipped malformed frame #%d: %s", n, exc)

    def _reply(self, ev: SubscribeReply | ErrorFrame) -> None:
        if type(ev) is ErrorFrame:
            self._counters["error_frames"] += 1
            log.warning("server error frame: code %s %s (id %s)", ev.code, ev.msg, ev.id)
        fut = self._replies.pop(ev.id, None) if isinstance(ev.id, int) else None
        if fut is None or fut.done():
            return
        if type(ev) is ErrorFrame:
            fut.set_exception(ControlError(f"server refused request {ev.id}: code {ev.code} {ev.msg}"))
        else:
            fut.set_result(ev.result)

    async def _drop(self, link: _Link, *, graceful: bool) -> None:
        """Close ``link`` and wait for its reader."""
        self._links.discard(link)
        link.active = False
        try:
            if graceful:
                await asyncio.wait_for(link.ws.close(), timeout=2.0)
            else:
                link.ws.transport.abort()
        except Exception:  # noqa: BLE001 - closing a broken connection may fail
            with contextlib.suppress(Exception):
                link.ws.transport.abort()
        if link.reader is not None and not link.reader.done():
            try:
                await asyncio.wait_for(asyncio.shield(link.reader), timeout=2.0)
            except TimeoutError:
                link.reader.cancel()
            except asyncio.CancelledError:
                if not link.reader.done():
                    link.reader.cancel()
                raise

    # ------------------------------------------------------------------ internals: supervisor

    async def _run(self) -> None:
        try:
            delays = self._backoff()
            failures = 0
            while not self._closed:
                url = self.url
                try:
                    link = await self._open(url)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - classified below
                    failures += 1
                    self._counters["connect_failures"] += 1
                    verdict = classify(exc)
                    reason = f"cannot connect to {_redact(url)}: {verdict.reason}"
                    if not verdict.retryable:
                        raise StreamError(f"{reason} (fatal, not retrying)") from exc
                    if self.max_attempts is not None and failures >= self.max_attempts:
                        raise StreamError(f"{reason} (gave up after {failures} attempts)") from exc
                    await self._pause(reason, verdict, delays)
                    continue
                failures = 0
                log.info("connected to %s (attempt %d)", _redact(url), link.attempt)
                self._emit([Connected(url, link.attempt)])
                link.active = True
                self._active = link
                self._start_reader(link)
                link, exc = await self._serve(link)
                await self._drop(link, graceful=False)
                self._active = None
                self._counters["reconnects"] += 1
                if self._closed:
                    break
                verdict = classify(exc) if exc is not None else Failure(True, "connection ended")
                if link.delivered:
                    delays = self._backoff()  # a healthy connection resets the backoff
                if not verdict.retryable:
                    raise StreamError(f"{_redact(link.url)}: {verdict.reason} (fatal, not retrying)") from exc
                floor = self.connect_budget.after_1008_s if _close_code(exc) == 1008 else 0.0
                await self._pause(verdict.reason, verdict, delays, floor)
        except Exception as exc:  # noqa: BLE001 - handed to the iterator; KeyboardInterrupt,
            # SystemExit and CancelledError (BaseExceptions) propagate and stop the program
            self._failure = exc if isinstance(exc, StreamError) else StreamError(
                f"stream stopped: {type(exc).__name__}: {exc}"
            )
            if self._failure is not exc:
                self._failure.__cause__ = exc
            log.error("%s", self._failure)
            self._out_ready.set()

    async def _pause(self, reason: str, verdict: Failure, delays: Iterator[float], floor: float = 0.0) -> None:
        delay = max(0.005, floor, next(delays))  # a zero delay would be a busy loop
        if verdict.retry_after_s is not None:
            delay = max(delay, verdict.retry_after_s)
        log.warning("disconnected: %s; retrying in %.2f s", reason, delay)
        self._emit([Disconnected(reason, delay)])
        await asyncio.sleep(delay)

    async def _serve(self, link: _Link) -> tuple[_Link, BaseException | None]:
        """Run ``link`` until it ends; handles the watchdog and rotations (which may swap
        the active link). Returns the link that ended and the exception that ended it."""
        loop = asyncio.get_running_loop()
        rotate_at = loop.time() + self.rotate_after_s
        while True:
            if link.reader.done():
                return link, link.end_exc
            now = loop.time()
            if not self._out_space.is_set():
                link.last_rx = now  # the consumer is behind, not the connection
            last = max(link.last_rx, link.ws.last_frame)  # any frame, pings included
            if now - last >= self.watchdog_s:
                self._counters["watchdog_timeouts"] += 1
                link.end_exc = WatchdogTimeout(
                    f"no frame at all (not even a ping) for {self.watchdog_s:g} s")
                return link, link.end_exc
            if not self._replies and link.streams != self._wanted():
                # symbols changed while no connection could take a SUBSCRIBE: reopen with them
                log.info("subscriptions changed while connecting; rotating to apply them")
                self._rotate_now = True
            if self._rotate_now or now >= rotate_at:
                self._rotate_now = False
                new = await self._rotate(link)
                if new is not None:
                    link = new
                    rotate_at = loop.time() + self.rotate_after_s
                else:
                    rotate_at = loop.time() + min(60.0, self.rotate_after_s)
                continue
            timeout = min(rotate_at, last + self.watchdog_s) - now
            self._wake.clear()
            if link.reader.done() or self._rotate_now:
                continue
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.001, timeout))

    async def _rotate(self, old: _Link) -> _Link | None:
        """Make-before-break: open a new connection, overlap, hand over, close the old one."""
        loop = asyncio.get_running_loop()
        url = self.url
        try:
            new = await self._open(url)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - keep the old connection
            self._counters["connect_failures"] += 1
            log.warning("rotation: cannot open a new connection (%s); keeping the old one", classify(exc).reason)
            return None
        self._start_reader(new)
        start = loop.time()
        lo, hi = self.handover_s
        while True:
            elapsed = loop.time() - start
            if old.reader.done() or new.reader.done() or elapsed >= hi:
                break
            if elapsed >= lo and self._caught_up(new):
                break
            await asyncio.sleep(0.02)
        if new.reader.done():
            log.warning("rotation: the new connection ended during the overlap; keeping the old one")
            await self._drop(new, graceful=False)
            return None
        # Hand over, without awaiting between the flush and the switch (keeps id order).
        old.active = False
        old.retired = True
        pending, new.pending = new.pending, []
        admitted = self._admit(pending)
        new.delivered += len(admitted)
        self._emit([Connected(url, new.attempt, rotation=True), *admitted])
        new.active = True
        self._active = new
        self._counters["rotations"] += 1
        log.info("rotated to a new connection after %.2f s of overlap", loop.time() - start)
        asyncio.create_task(self._drop(old, graceful=True))
        return new

    def _caught_up(self, new: _Link) -> bool:
        """True when the old connection delivered every trade before the new one's first."""
        if not new.first_ids:
            return False
        return all(self._last_ids.get(("t", s), -1) >= tid - 1 for s, tid in new.first_ids.items())

    async def _control(self, method: str, params: Sequence[str] | None) -> Any:
        """Send one control frame on the active connection under the sliding-window limit
        and wait for its reply. Returns None when no connection is open."""
        loop = asyncio.get_running_loop()
        async with self._control_lock:
            while True:
                delay = self._limiter.delay(loop.time())
                if delay <= 0:
                    break
                await asyncio.sleep(delay)
            link = self._active
            if link is None:
                self._wake.set()  # the supervisor reconciles subscriptions once connected
                return None
            req_id = next(self._ids)
            fut = loop.create_future()
            self._replies[req_id] = fut
            try:
                await link.ws.send(control_message(method, params, req_id))
            except ConnectionClosed:
                self._replies.pop(req_id, None)
                return None  # the next connection's URL carries the new symbol set
            finally:
                now = loop.time()
                self._limiter.record(now)
                self.control_sent_at.append(now)
                self._counters["control_frames_sent"] += 1
        try:
            result = await asyncio.wait_for(fut, timeout=self.control_timeout_s)
        except TimeoutError:
            self._replies.pop(req_id, None)
            raise ControlError(
                f"no reply to {method} (id {req_id}) within {self.control_timeout_s:g} s"
            ) from None
        if method == "SUBSCRIBE":
            link.streams.update(params or ())
        elif method == "UNSUBSCRIBE":
            link.streams.difference_update(params or ())
        return result


def _close_code(exc: BaseException | None) -> int | None:
    """The close code the server sent, when ``exc`` is a closed connection."""
    if isinstance(exc, ConnectionClosed) and exc.rcvd is not None:
        return exc.rcvd.code
    return None


def _listify(symbols: Iterable[str] | str) -> list[str] | str:
    return symbols if isinstance(symbols, str) else list(symbols)


def _redact(url: str) -> str:
    """Shorten long stream lists for log lines."""
    return url if len(url) <= 160 else url[:150] + "...(" + str(len(url)) + " chars)"
