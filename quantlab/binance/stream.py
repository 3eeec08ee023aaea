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

The state and every decision above (de-duplication, handover, liveness, reconnect delays,
reply matching, subscriptions) live in the sans-I/O :class:`~quantlab.binance.session.StreamSession`;
this module is its I/O shell: it opens and closes the sockets, reads frames, sends the
control frames and sleeps until the session's next deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, assert_never, cast

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidURI
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

from .backoff import SlidingWindow, backoff_delays
from .protocol import DEFAULT_TIME_UNIT, Event
from .session import (
    Close,
    Connected,
    ControlError,
    Disconnected,
    Fail,
    Open,
    Reply,
    Send,
    StreamError,
    StreamSession,
)

__all__ = ["BinanceStream", "ConnectBudget", "Connected", "Disconnected", "StreamError", "ControlError"]

log = logging.getLogger(__name__)

#: the reader lets the loop's other tasks run after this many frames in a row
READER_YIELD_EVERY = 100


class _Connection(ClientConnection):
    """websockets' client connection, telling the stream about the control frames it gets
    (pings, which websockets answers itself, pongs, close): liveness beyond data frames, so a
    healthy connection to quiet symbols is never torn down. websockets has no public hook for
    received pings; this overrides its per-frame ``process_event``."""

    on_control_frame: Callable[[bool], None] | None = None

    def process_event(self, event: Any) -> None:
        if isinstance(event, Frame) and event.opcode.value >= Opcode.CLOSE.value and self.on_control_frame:
            self.on_control_frame(event.opcode is Opcode.PING)
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
        if not (isinstance(window_s, int | float) and window_s > 0):  # the margin must not hide 0
            raise ValueError(f"window_s: must be > 0 seconds, got {window_s!r}")
        self._window = SlidingWindow(limit, window_s + margin_s)  # validates limit
        self.limit = limit
        self.window_s = float(window_s)
        self.after_1008_s = float(after_1008_s)
        self._lock = asyncio.Lock()
        #: monotonic times of the attempts made (the last ``4 * limit``), for status and tests
        self.attempts: deque[float] = deque(maxlen=4 * limit)
        self.waited_s = 0.0

    def wait_s(self, now: float) -> float:
        """Seconds until the next attempt may go (``now``: monotonic seconds)."""
        return self._window.delay(now)

    def record(self, now: float) -> None:
        """Count one attempt made at ``now``."""
        self._window.record(now)
        self.attempts.append(now)

    async def acquire(self) -> None:
        """Wait for room in the window, then count one attempt."""
        async with self._lock:
            while True:
                now = time.monotonic()
                delay = self.wait_s(now)
                if delay <= 0:
                    break
                self.waited_s += delay
                log.warning("connection-attempt budget (%d per %g s) used up; next attempt in %.1f s",
                            self.limit, self.window_s, delay)
                await asyncio.sleep(delay)
            self.record(now)

    def most_in_window(self) -> int:
        """The largest number of recorded attempts inside any window of ``window_s``."""
        times = list(self.attempts)
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] >= self.window_s:
                lo += 1
            best = max(best, hi - lo + 1)
        return best


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
        if not isinstance(ws_url, str) or not ws_url.lower().startswith(("ws://", "wss://")):
            raise ValueError(
                f"ws_url: {ws_url!r} is not a WebSocket URL "
                "(use e.g. 'wss://stream.binance.com:9443')"
            )
        for name, value in (("ping_interval_s", ping_interval_s), ("open_timeout_s", open_timeout_s)):
            if not (isinstance(value, int | float) and value > 0):
                raise ValueError(f"{name}: must be > 0 seconds, got {value!r}")
        if watchdog_s is None:
            watchdog_s = 1.5 * ping_interval_s
        if connect_budget is not None and not isinstance(connect_budget, ConnectBudget):
            raise TypeError("connect_budget: must be a ConnectBudget (or None for a private one)")
        self.connect_budget = connect_budget if connect_budget is not None else ConnectBudget()
        self._session = StreamSession(
            ws_url, symbols, kinds, time_unit=time_unit, watchdog_s=watchdog_s,
            rotate_after_s=rotate_after_s, backoff=backoff, max_attempts=max_attempts,
            handover_s=handover_s, control_limit=control_limit, control_window_s=control_window_s,
            control_timeout_s=control_timeout_s, after_1008_s=self.connect_budget.after_1008_s,
        )
        try:
            parse_uri(self._session.url)
        except (InvalidURI, ValueError) as exc:
            raise ValueError(f"ws_url: {ws_url!r} is not a valid WebSocket URL ({exc})") from None
        s = self._session
        self.ws_url, self.kinds, self.time_unit = s.ws_url, s.kinds, s.time_unit
        self.watchdog_s, self.rotate_after_s, self.handover_s = s.watchdog_s, s.rotate_after_s, s.handover_s
        self.max_attempts, self.control_timeout_s = s.max_attempts, s.control_timeout_s
        self.rest_url = rest_url
        self.ping_interval_s = float(ping_interval_s)
        self.validate_symbols = validate_symbols
        self.open_timeout_s = float(open_timeout_s)
        self._rest = rest
        self._own_rest = False
        self._replies: dict[int, asyncio.Future] = {}
        self._ws: dict[int, _Connection] = {}
        self._readers: dict[int, asyncio.Task] = {}
        self._tasks: set[asyncio.Task] = set()  # opens, sends and closes in progress
        self._out: deque[Any] = deque()
        self._out_ready = asyncio.Event()
        self._out_space = asyncio.Event()
        self._out_space.set()
        self._max_pending = max_pending
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._failure: BaseException | None = None
        self._closed = False
        self._started = False

    # ------------------------------------------------------------------ public API

    @property
    def symbols(self) -> list[str]:
        """Symbols currently subscribed (upper case)."""
        return self._session.symbols

    @property
    def url(self) -> str:
        """The combined-stream URL for the current symbols."""
        return self._session.url

    @property
    def counters(self) -> dict[str, int]:
        """Snapshot of the stream's counters."""
        return self._session.counters

    @property
    def control_sent_at(self) -> deque[float]:
        """Monotonic times at which control frames were sent (for measurement)."""
        return self._session.control_sent_at

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
        await self._validate(self._session.symbols)
        self._task = asyncio.create_task(self._run(), name="binance-stream")

    async def aclose(self) -> None:
        """Stop: close every connection and end the iteration."""
        self._closed = True
        self._session.close()
        self._pump()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for t in list(self._tasks):
            if not t.done() and t.get_name() != "binance-stream-close":
                t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
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
        new = self._session.new_symbols(symbols)
        if not new:
            return None
        await self._validate(new)
        return await self._control(lambda now: self._session.subscribe(new, now))

    async def unsubscribe(self, symbols: Iterable[str] | str) -> Any:
        """Remove ``symbols`` from the open connection and from later ones."""
        return await self._control(lambda now: self._session.unsubscribe(symbols, now))

    async def list_subscriptions(self) -> list[str] | None:
        """The streams the server says this connection carries (None when not connected)."""
        return await self._control(self._session.list_subscriptions)

    def request_rotation(self) -> None:
        """Replace the connection now, make-before-break (as on ``serverShutdown``)."""
        self._session.request_rotation()
        self._wake.set()

    # ------------------------------------------------------------------ internals: the session

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _pump(self, *, wake: bool = False) -> None:
        """Hand the session's events to the consumer and perform its actions; wake the
        supervisor when they (or the event just fed, ``wake``) may move a deadline."""
        s = self._session
        events = s.events_received()
        if events:
            self._out.extend(events)
            self._out_ready.set()
        actions = s.actions()
        for action in actions:
            match action:
                case Send():
                    self._spawn(self._send(action), "binance-stream-send")
                case Reply():
                    fut = self._replies.pop(action.req_id, None)
                    if fut is not None and not fut.done():
                        if action.error is not None:
                            fut.set_exception(action.error)
                        else:
                            fut.set_result(action.result)
                case Open():
                    self._spawn(self._open(action), "binance-stream-open")
                case Close():
                    self._close(action)
                case Fail():
                    self._failure = action.error
                    self._out_ready.set()
                case _:  # a new kind of action must be performed here
                    assert_never(action)
        if actions or wake:
            self._wake.set()

    def _spawn(self, coro: Any, name: str) -> asyncio.Task:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        """A helper task ended: one that failed stops the stream (as the supervisor's would)."""
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, Exception):  # KeyboardInterrupt and SystemExit stop the loop itself
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc if isinstance(exc, StreamError) else StreamError(
                f"stream stopped: {type(exc).__name__}: {exc}"
            )
            if self._failure is not exc:
                self._failure.__cause__ = exc
            log.error("%s", self._failure)
        self._session.close()
        self._pump()
        self._out_ready.set()
        self._wake.set()

    async def _control(self, request: Callable[[float], int | None]) -> Any:
        """Queue one control request with the session and wait for its :class:`Reply`."""
        req_id = request(self._now())
        if req_id is None:
            return None
        fut = asyncio.get_running_loop().create_future()
        self._replies[req_id] = fut
        self._pump(wake=True)
        return await fut

    async def _run(self) -> None:
        """Supervisor: run the session's timers until it is done."""
        s = self._session
        try:
            s.start(self._now())
            self._pump()
            while not s.done:
                now = self._now()
                deadline = s.next_deadline(now)
                self._wake.clear()
                timeout = None if deadline is None else max(0.001, deadline - now)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=timeout)
                s.tick(self._now(), consumer_behind=not self._out_space.is_set())
                self._pump()
        except Exception as exc:  # noqa: BLE001 - handed to the iterator; KeyboardInterrupt,
            # SystemExit and CancelledError (BaseExceptions) propagate and stop the program
            self._fail(exc)

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

    # ------------------------------------------------------------------ internals: sockets

    async def _open(self, action: Open) -> None:
        s = self._session
        try:
            await self.connect_budget.acquire()
            # websockets documents create_connection as a factory of the ClientConnection but
            # types it as type[ClientConnection]; this factory builds a _Connection
            factory = functools.partial(self._make_connection, action.link)
            ws = cast(_Connection, await connect(
                action.url,
                open_timeout=self.open_timeout_s,
                ping_interval=None,  # Binance pings us; our own pings would count against 5/s
                close_timeout=1.0,
                compression=None,
                max_queue=64,
                create_connection=factory,  # type: ignore[arg-type]
            ))
        except Exception as exc:  # noqa: BLE001 - the session classifies it
            s.connect_failed(action.link, exc, self._now())
            self._pump(wake=True)
            return
        self._ws[action.link] = ws
        s.connected(action.link, self._now())
        if action.link in self._ws:  # not closed at once (the stream may be closing)
            reader = asyncio.create_task(self._read(action.link, ws), name="binance-stream-reader")
            reader.add_done_callback(self._task_done)
            self._readers[action.link] = reader
        self._pump(wake=True)

    def _make_connection(self, link: int, *args: Any, **kwargs: Any) -> _Connection:
        conn = _Connection(*args, **kwargs)
        s = self._session

        def on_control_frame(is_ping: bool) -> None:
            now = time.monotonic()  # asyncio's loop clock is the same
            if is_ping:
                s.ping_received(link, now)
            else:
                s.frame_seen(link, now)

        conn.on_control_frame = on_control_frame  # before the first frame can arrive
        return conn

    async def _read(self, link: int, ws: _Connection) -> None:
        """Feed the session every message until the connection ends."""
        loop = asyncio.get_running_loop()
        s = self._session
        frame_received, out = s.frame_received, self._out
        n = 0
        end: BaseException | None = None
        try:
            while True:
                data = await ws.recv()
                n += 1
                if n % READER_YIELD_EVERY == 0:
                    # recv() returns queued frames without suspending: after a backlog (a slow
                    # disk, a busy writer thread) the reader would hold the loop until it is read
                    await asyncio.sleep(0)
                frame_received(link, data, time.time_ns(), loop.time())
                self._pump()
                if len(out) > self._max_pending:
                    self._out_space.clear()
                    await self._out_space.wait()
        except Exception as exc:  # noqa: BLE001 - ConnectionClosed, or any reader failure ends it
            end = exc
        s.connection_closed(link, end, loop.time())
        self._pump(wake=True)

    async def _send(self, action: Send) -> None:
        ws = self._ws.get(action.link)
        ok = False
        if ws is not None:
            try:
                await ws.send(action.text)
                ok = True
            except ConnectionClosed:
                pass  # the next connection's URL carries the new symbol set
        self._session.control_sent(action.req_id, self._now(), ok=ok)
        self._pump(wake=True)

    def _close(self, action: Close) -> None:
        ws = self._ws.pop(action.link, None)
        reader = self._readers.pop(action.link, None)
        if ws is not None:
            self._spawn(self._drop(ws, reader, graceful=action.graceful), "binance-stream-close")

    @staticmethod
    async def _drop(ws: _Connection, reader: asyncio.Task | None, *, graceful: bool) -> None:
        """Close ``ws`` and wait for its reader."""
        try:
            if graceful:
                await asyncio.wait_for(ws.close(), timeout=2.0)
            else:
                ws.transport.abort()
        except Exception:  # noqa: BLE001 - closing a broken connection may fail
            with contextlib.suppress(Exception):
                ws.transport.abort()
        if reader is not None and not reader.done():
            try:
                await asyncio.wait_for(asyncio.shield(reader), timeout=2.0)
            except TimeoutError:
                reader.cancel()
            except asyncio.CancelledError:
                if not reader.done():
                    reader.cancel()
                raise
