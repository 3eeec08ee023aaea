"""The state and decisions of a Binance combined-stream client, sans I/O.

:class:`StreamSession` is what :class:`~quantlab.binance.stream.BinanceStream` knows and
decides, without a socket, a task or a clock (the pattern of python-websockets'
``Protocol``): the I/O shell feeds it events, each with an explicit monotonic ``now``, and
performs the actions it asks for::

    session = StreamSession("wss://stream.binance.com:9443", ["BTCUSDT"])
    session.start(now)                        # -> Open(link=1, url=..., rotation=False)
    for action in session.actions(): ...      # the shell opens the connection, then
    session.connected(1, now)                 # -> event Connected(url, attempt=1)
    session.frame_received(1, text, recv_ns, now)
    session.events_received()                 # -> [Trade(...), ...] for the consumer
    session.tick(now)                         # timers: watchdog, rotation, handover, replies
    session.next_deadline(now)                # when to call tick() next (None: no timer)

Events in: :meth:`start`, :meth:`connected`, :meth:`connect_failed`,
:meth:`frame_received`, :meth:`ping_received`, :meth:`frame_seen`,
:meth:`connection_closed`, :meth:`control_sent`, :meth:`tick`, :meth:`request_rotation`,
:meth:`subscribe`, :meth:`unsubscribe`, :meth:`list_subscriptions`, :meth:`close`.

Actions out (:meth:`actions`): :class:`Open` a connection, :class:`Close` one, :class:`Send`
a control frame on one, :class:`Reply` to a control request (result or
:class:`ControlError`), :class:`Fail` the stream for good (:class:`StreamError`).
Events for the consumer (:meth:`events_received`): the parsed market events plus
:class:`Connected` / :class:`Disconnected`.

What it decides:

* de-duplication: each trade id (and agg-trade id) is delivered at most once per symbol,
  ids only move forward, across reconnects and the overlap of a rotation;
* make-before-break: on ``serverShutdown``, :meth:`request_rotation`, after
  ``rotate_after_s`` (Binance cuts at 24 h) or when the wanted streams differ from what the
  connection carries, a second connection opens and buffers while the old one keeps
  delivering; it takes over once the old one has delivered every trade before the first the
  new one saw (at least ``handover_s[0]``, at most ``handover_s[1]`` seconds of overlap);
* liveness: a connection that received no frame at all (data, ping, reply) for
  ``watchdog_s`` is ended (a quiet market whose connection carries only pings is alive);
* reconnects: retryable failures wait the next ``backoff`` delay (at least ``after_1008_s``
  after a close with code 1008, at least a server's ``Retry-After``); fatal ones, or
  ``max_attempts`` failed connection attempts in a row, fail the stream; a connection that
  delivered data restarts the delays;
* control frames: at most ``control_limit`` in any ``control_window_s``, one in flight at a
  time, each answered by the reply with its id (an error frame -> :class:`ControlError`) or
  by a timeout after ``control_timeout_s``; a refused SUBSCRIBE rolls its symbols back.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from quantlab.config import parse_symbols
from quantlab.errors import QuantlabError

from .backoff import Failure, SlidingWindow, WatchdogTimeout, backoff_delays, classify
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

__all__ = [
    "StreamSession",
    "Connected",
    "Disconnected",
    "StreamError",
    "ControlError",
    "Open",
    "Close",
    "Send",
    "Reply",
    "Fail",
    "Action",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- consumer events


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
    """The server answered a SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS with an error (or not at all)."""


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Open:
    """Open connection ``link`` to ``url`` (through the connection-attempt budget); report
    :meth:`StreamSession.connected` or :meth:`StreamSession.connect_failed`."""

    link: int
    url: str
    rotation: bool


@dataclass(frozen=True, slots=True)
class Close:
    """Close connection ``link`` (a close handshake when ``graceful``, else abort it)."""

    link: int
    graceful: bool


@dataclass(frozen=True, slots=True)
class Send:
    """Send control frame ``text`` on ``link``; report :meth:`StreamSession.control_sent`."""

    link: int
    req_id: int
    text: str


@dataclass(frozen=True, slots=True)
class Reply:
    """Control request ``req_id`` is answered: ``result``, or ``error`` when refused or timed
    out. ``result`` is None also when no connection was open to take it."""

    req_id: int
    result: Any = None
    error: ControlError | None = None


@dataclass(frozen=True, slots=True)
class Fail:
    """The stream stops for good; raise ``error`` to the consumer."""

    error: StreamError


Action = Open | Close | Send | Reply | Fail

# link states
_OPENING, _STANDBY, _ACTIVE, _RETIRED = "opening", "standby", "active", "retired"


class _Link:
    """One connection and what the session knows about it."""

    __slots__ = ("id", "url", "streams", "attempt", "rotation", "state", "pending", "first_ids",
                 "last_rx", "delivered")

    def __init__(self, link_id: int, url: str, streams: set[str], attempt: int, rotation: bool) -> None:
        self.id = link_id
        self.url = url
        self.streams = streams  # what it carries: the URL's streams + acknowledged SUBSCRIBEs
        self.attempt = attempt
        self.rotation = rotation
        self.state = _OPENING
        self.pending: list[Event] = []  # events read while on standby (rotation)
        self.first_ids: dict[str, int] = {}  # first trade id per symbol seen while on standby
        self.last_rx = 0.0  # monotonic time of the last frame of any kind
        self.delivered = 0


class _Request:
    __slots__ = ("id", "method", "params", "added", "link", "deadline")

    def __init__(self, req_id: int, method: str, params: list[str] | None, added: list[str]) -> None:
        self.id = req_id
        self.method = method
        self.params = params
        self.added = added  # symbols a SUBSCRIBE added: rolled back when it is refused
        self.link: int | None = None
        self.deadline: float | None = None  # set once sent


COUNTERS = (
    "messages", "events", "trades", "agg_trades", "malformed", "duplicates",
    "connects", "connect_attempts", "connect_failures", "reconnects", "pings", "control_frames_sent",
    "watchdog_timeouts", "rotations", "server_shutdowns", "error_frames", "unknown",
)


class StreamSession:
    """State machine of one combined-stream client; see the module docstring.

    Times (``now``) are monotonic seconds supplied by the caller; ``recv_ns`` is the wall
    clock receive time stamped on market events. Arguments as for
    :class:`~quantlab.binance.stream.BinanceStream`; ``after_1008_s`` is the minimum delay
    after a close with code 1008 (the connect budget's).
    """

    def __init__(
        self,
        ws_url: str,
        symbols: Iterable[str] | str,
        kinds: Sequence[str] = ("trade",),
        *,
        time_unit: str | None = DEFAULT_TIME_UNIT,
        watchdog_s: float = 30.0,
        rotate_after_s: float = 23 * 3600,
        backoff: Callable[[], Iterator[float]] = backoff_delays,
        max_attempts: int | None = None,
        handover_s: tuple[float, float] = (0.5, 5.0),
        control_limit: int = 4,
        control_window_s: float = 1.0,
        control_timeout_s: float = 5.0,
        after_1008_s: float = 10.0,
    ) -> None:
        self.kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
        self._symbols = parse_symbols(symbols if isinstance(symbols, str) else list(symbols))
        if not self._symbols:
            raise ValueError("symbols: no symbol given (use e.g. ['BTCUSDT', 'ETHUSDT'])")
        for name, value in (("watchdog_s", watchdog_s), ("rotate_after_s", rotate_after_s),
                            ("control_timeout_s", control_timeout_s)):
            if not (isinstance(value, int | float) and value > 0):
                raise ValueError(f"{name}: must be > 0 seconds, got {value!r}")
        if max_attempts is not None and not (isinstance(max_attempts, int) and max_attempts >= 1):
            raise ValueError(f"max_attempts: must be None or an int >= 1, got {max_attempts!r}")
        if not (len(handover_s) == 2 and 0 <= handover_s[0] <= handover_s[1]):
            raise ValueError(f"handover_s: must be (min, max) seconds with min <= max, got {handover_s!r}")
        if not callable(backoff):
            raise TypeError("backoff: must be a callable returning an iterator of delays")
        self.ws_url = ws_url.rstrip("/")
        self.time_unit = time_unit.upper() if isinstance(time_unit, str) else time_unit
        self.url  # noqa: B018 - refuse a bad time unit or too many streams now, not at connect
        self.watchdog_s = float(watchdog_s)
        self.rotate_after_s = float(rotate_after_s)
        self.max_attempts = max_attempts
        self.handover_s = (float(handover_s[0]), float(handover_s[1]))
        self.control_timeout_s = float(control_timeout_s)
        self.after_1008_s = float(after_1008_s)
        self._backoff = backoff
        self._limiter = SlidingWindow(control_limit, control_window_s)
        #: monotonic times at which control frames were sent (for measurement)
        self.control_sent_at: deque[float] = deque(maxlen=1000)
        self._counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._last_ids: dict[tuple[str, str], int] = {}
        self._links: dict[int, _Link] = {}
        self._link_ids = itertools.count(1)
        self._attempt = 0
        self._active: _Link | None = None
        self._standby: _Link | None = None  # a rotation's new connection (opening or overlapping)
        self._handover_start = 0.0
        self._handover_lo_passed = False
        self._rotate_at = float("inf")
        self._rotate_now = False
        self._resume_at: float | None = None  # reconnect after a delay
        self._delays: Iterator[float] | None = None
        self._failures = 0
        self._started = False
        self.done = False  # failed or closed: no more actions but Close
        self._req_ids = itertools.count(1)
        self._queue: deque[_Request] = deque()  # control requests not yet sent
        self._in_flight: _Request | None = None  # handed to the shell, not yet reported sent
        self._awaiting: dict[int, _Request] = {}  # sent (or being sent), waiting for the reply
        self._events: list[Any] = []
        self._actions: list[Action] = []

    # ------------------------------------------------------------------ outputs

    def events_received(self) -> list[Any]:
        """Events for the consumer since the last call (market events, Connected, Disconnected)."""
        out, self._events = self._events, []
        return out

    def actions(self) -> list[Action]:
        """Actions for the shell since the last call, in order."""
        out, self._actions = self._actions, []
        return out

    @property
    def symbols(self) -> list[str]:
        """Symbols currently wanted (upper case)."""
        return list(self._symbols)

    @property
    def url(self) -> str:
        """The combined-stream URL for the wanted symbols."""
        return stream_url(self.ws_url, self._symbols, self.kinds, time_unit=self.time_unit)

    @property
    def counters(self) -> dict[str, int]:
        """Snapshot of the session's counters."""
        return dict(self._counters)

    @property
    def active_link(self) -> int | None:
        """The id of the connection that delivers now (None while none is open)."""
        return self._active.id if self._active is not None else None

    def next_deadline(self, now: float) -> float | None:
        """The monotonic time at which :meth:`tick` has something to do (None: nothing
        timed; call it again after any other event)."""
        if self.done:
            return None
        times = []
        if self._resume_at is not None:
            times.append(self._resume_at)
        act = self._active
        if act is not None:
            times.append(act.last_rx + self.watchdog_s)
            if self._standby is None:
                times.append(now if self._rotate_now else self._rotate_at)
        st = self._standby
        if st is not None and st.state == _STANDBY:
            lo, hi = self.handover_s
            times.append(self._handover_start + (hi if self._handover_lo_passed else lo))
        if self._queue and self._in_flight is None:
            times.append(now + self._limiter.delay(now))
        times.extend(r.deadline for r in self._awaiting.values() if r.deadline is not None)
        return min(times) if times else None

    # ------------------------------------------------------------------ events in: lifecycle

    def start(self, now: float) -> None:
        """Begin: open the first connection."""
        if self._started or self.done:
            return
        self._started = True
        self._delays = self._backoff()
        self._open(rotation=False)

    def close(self) -> None:
        """Stop: close every connection; pending control requests are answered None."""
        self.done = True
        self._resume_at = None
        pending = {r.id for r in (*self._queue, *self._awaiting.values())}
        if self._in_flight is not None:
            pending.add(self._in_flight.id)
        self._actions.extend(Reply(req_id, None) for req_id in sorted(pending))
        for link in list(self._links.values()):
            self._actions.append(Close(link.id, graceful=True))
        self._links.clear()
        self._active = self._standby = None
        self._queue.clear()
        self._awaiting.clear()
        self._in_flight = None

    def request_rotation(self) -> None:
        """Replace the connection at the next :meth:`tick`, make-before-break."""
        self._rotate_now = True

    def connected(self, link: int, now: float) -> None:
        """Connection ``link`` (of an :class:`Open`) is open."""
        ln = self._links.get(link)
        if ln is None or ln.state != _OPENING:
            self._actions.append(Close(link, graceful=True))  # closed meanwhile
            return
        self._counters["connects"] += 1
        ln.last_rx = now
        if ln is self._standby:
            ln.state = _STANDBY
            self._handover_start = now
            self._handover_lo_passed = False
            if self._active is None:  # the old one ended while this one was opening
                self._handover(now)
            return
        self._failures = 0
        log.info("connected to %s (attempt %d)", _redact(ln.url), ln.attempt)
        ln.state = _ACTIVE
        self._active = ln
        self._rotate_at = now + self.rotate_after_s
        self._events.append(Connected(ln.url, ln.attempt))

    def connect_failed(self, link: int, exc: BaseException, now: float) -> None:
        """Opening connection ``link`` failed with ``exc`` (classified by :func:`classify`)."""
        ln = self._links.pop(link, None)
        if ln is None or self.done:
            return
        self._counters["connect_failures"] += 1
        verdict = classify(exc)
        if ln is self._standby:
            self._standby = None
            if self._active is not None:
                log.warning("rotation: cannot open a new connection (%s); keeping the old one", verdict.reason)
                self._rotate_at = now + min(60.0, self.rotate_after_s)
                return
        self._failures += 1
        reason = f"cannot connect to {_redact(ln.url)}: {verdict.reason}"
        if not verdict.retryable:
            self._fail(f"{reason} (fatal, not retrying)", exc)
        elif self.max_attempts is not None and self._failures >= self.max_attempts:
            self._fail(f"{reason} (gave up after {self._failures} attempts)", exc)
        else:
            self._pause(now, reason, verdict)

    def connection_closed(self, link: int, exc: BaseException | None, now: float) -> None:
        """Connection ``link`` ended (``exc``: what ended it, e.g. ``ConnectionClosed``)."""
        ln = self._links.pop(link, None)
        if ln is None:
            return
        if ln is self._standby:
            log.warning("rotation: the new connection ended during the overlap; keeping the old one")
            self._standby = None
            self._actions.append(Close(ln.id, graceful=False))
            self._rotate_at = now + min(60.0, self.rotate_after_s)
        elif ln is self._active:
            self._lose_active(ln, exc, now)

    # ------------------------------------------------------------------ events in: frames

    def frame_received(self, link: int, data: str | bytes, recv_ns: int, now: float) -> None:
        """One data message arrived on ``link`` at monotonic ``now`` (wall clock ``recv_ns``)."""
        ln = self._links.get(link)
        if ln is None:
            return
        ln.last_rx = now
        c = self._counters
        c["messages"] += 1
        try:
            events = parse_frame(data, recv_ns, time_unit=self.time_unit)
        except ProtocolError as exc:
            n = c["malformed"] = c["malformed"] + 1
            if n <= 5 or n % 1000 == 0:
                log.warning("skipped malformed frame #%d: %s", n, exc)
            return
        shutdown = False
        for ev in events:
            if isinstance(ev, Trade | AggTrade):
                continue
            if isinstance(ev, SubscribeReply | ErrorFrame):
                self._reply(ev)
            elif isinstance(ev, ServerShutdown):
                c["server_shutdowns"] += 1
                shutdown = True
            elif isinstance(ev, Unknown):
                c["unknown"] += 1
        state = ln.state
        if state == _ACTIVE:
            out = self._admit(events)
            ln.delivered += len(out)
            self._events.extend(out)
            if shutdown:
                log.warning("server announced its shutdown on %s; rotating", ln.url)
                self._rotate_now = True
                self._rotate_if_due(now)  # at once: the server closes soon
        elif state == _STANDBY:
            for ev in events:
                if isinstance(ev, Trade) and ev.symbol not in ln.first_ids:
                    ln.first_ids[ev.symbol] = ev.trade_id
            ln.pending.extend(events)
        st = self._standby
        if st is not None and st.state == _STANDBY and self._handover_lo_passed and self._caught_up(st):
            self._handover(now)

    def ping_received(self, link: int, now: float) -> None:
        """The server pinged ``link`` (the shell answers it; this counts it as liveness)."""
        self._counters["pings"] += 1
        self.frame_seen(link, now)

    def frame_seen(self, link: int, now: float) -> None:
        """Any other frame (pong, close) arrived on ``link``: it is alive."""
        ln = self._links.get(link)
        if ln is not None:
            ln.last_rx = now

    def tick(self, now: float, *, consumer_behind: bool = False) -> None:
        """Run the timers due at ``now``. ``consumer_behind``: the consumer has not taken the
        events delivered so far (the shell stopped reading): the silence is not the server's."""
        if self.done:
            return
        if self._resume_at is not None and now >= self._resume_at:
            self._resume_at = None
            self._open(rotation=False)
        act = self._active
        if act is not None:
            if consumer_behind:
                act.last_rx = now
            if now - act.last_rx >= self.watchdog_s:
                self._counters["watchdog_timeouts"] += 1
                self._links.pop(act.id, None)
                self._lose_active(act, WatchdogTimeout(
                    f"no frame at all (not even a ping) for {self.watchdog_s:g} s"), now)
                act = self._active
        if act is not None and self._standby is None:
            if not self._queue and not self._awaiting and self._in_flight is None \
                    and act.streams != self._wanted():
                # symbols changed while no connection could take a SUBSCRIBE: reopen with them
                log.info("subscriptions changed while connecting; rotating to apply them")
                self._rotate_now = True
            self._rotate_if_due(now)
        st = self._standby
        if st is not None and st.state == _STANDBY:
            lo, hi = self.handover_s
            elapsed = now - self._handover_start
            if elapsed >= lo:
                self._handover_lo_passed = True
            if elapsed >= hi or (elapsed >= lo and self._caught_up(st)):
                self._handover(now)
        for req in [r for r in self._awaiting.values() if r.deadline is not None and now >= r.deadline]:
            del self._awaiting[req.id]
            self._refuse(req, ControlError(
                f"no reply to {req.method} (id {req.id}) within {self.control_timeout_s:g} s"))
        self._send_controls(now)

    # ------------------------------------------------------------------ events in: control

    def new_symbols(self, symbols: Iterable[str] | str) -> list[str]:
        """Those of ``symbols`` not wanted yet (parsed; raises ValueError on a bad name)."""
        return [s for s in parse_symbols(_listify(symbols)) if s not in self._symbols]

    def subscribe(self, symbols: Iterable[str] | str, now: float) -> int | None:
        """Want ``symbols`` too: a SUBSCRIBE request id, or None when none is new. Later
        connections include them; a refused SUBSCRIBE removes them again."""
        new = self.new_symbols(symbols)
        if not new:
            return None
        self._symbols.extend(new)
        return self._request("SUBSCRIBE", stream_names(new, self.kinds), now, added=new)

    def unsubscribe(self, symbols: Iterable[str] | str, now: float) -> int | None:
        """Stop wanting ``symbols``: an UNSUBSCRIBE request id, or None when none is wanted."""
        gone = [s for s in parse_symbols(_listify(symbols)) if s in self._symbols]
        if not gone:
            return None
        if len(gone) == len(self._symbols):
            raise ValueError("symbols: cannot unsubscribe every symbol; close the stream instead")
        self._symbols = [s for s in self._symbols if s not in gone]
        return self._request("UNSUBSCRIBE", stream_names(gone, self.kinds), now)

    def list_subscriptions(self, now: float) -> int:
        """A LIST_SUBSCRIPTIONS request id (the reply's result lists the streams)."""
        return self._request("LIST_SUBSCRIPTIONS", None, now)

    def control_sent(self, req_id: int, now: float, *, ok: bool = True) -> None:
        """The shell finished sending request ``req_id`` at ``now``; ``ok`` false when the
        connection was gone (the request is answered None: the next URL carries the symbols)."""
        req = self._in_flight
        if req is None or req.id != req_id:
            return
        self._in_flight = None
        self._limiter.record(now)  # after the send completed: never closer than the window
        self.control_sent_at.append(now)
        self._counters["control_frames_sent"] += 1
        if req.id in self._awaiting:
            if ok:
                req.deadline = now + self.control_timeout_s
            else:
                del self._awaiting[req.id]
                self._actions.append(Reply(req.id, None))
        self._send_controls(now)

    # ------------------------------------------------------------------ internals

    def _wanted(self) -> set[str]:
        return set(stream_names(self._symbols, self.kinds))

    def _open(self, *, rotation: bool) -> None:
        self._attempt += 1
        self._counters["connect_attempts"] += 1
        url = self.url
        ln = _Link(next(self._link_ids), url, self._wanted(), self._attempt, rotation)
        self._links[ln.id] = ln
        if rotation:
            self._standby = ln
        self._actions.append(Open(ln.id, url, rotation))

    def _rotate_if_due(self, now: float) -> None:
        """Open a rotation's new connection when one is asked for or due (and none is open)."""
        if self._active is not None and self._standby is None and not self.done \
                and (self._rotate_now or now >= self._rotate_at):
            self._rotate_now = False
            self._open(rotation=True)

    def _lose_active(self, ln: _Link, exc: BaseException | None, now: float) -> None:
        """The active connection ended: a standby takes over without a gap, else reconnect."""
        self._active = None
        ln.state = _RETIRED
        self._actions.append(Close(ln.id, graceful=False))
        st = self._standby
        if st is not None:
            if st.state == _STANDBY:
                self._handover(now)
            return  # the rotation's connection is opening: it takes over once open
        self._counters["reconnects"] += 1
        verdict = classify(exc) if exc is not None else Failure(True, "connection ended")
        if ln.delivered:
            self._delays = self._backoff()  # a healthy connection resets the backoff
        if not verdict.retryable:
            self._fail(f"{_redact(ln.url)}: {verdict.reason} (fatal, not retrying)", exc)
            return
        floor = self.after_1008_s if _close_code(exc) == 1008 else 0.0
        self._pause(now, verdict.reason, verdict, floor)

    def _pause(self, now: float, reason: str, verdict: Failure, floor: float = 0.0) -> None:
        assert self._delays is not None
        delay = max(0.005, floor, next(self._delays))  # a zero delay would be a busy loop
        if verdict.retry_after_s is not None:
            delay = max(delay, verdict.retry_after_s)
        log.warning("disconnected: %s; retrying in %.2f s", reason, delay)
        self._events.append(Disconnected(reason, delay))
        self._resume_at = now + delay

    def _fail(self, message: str, cause: BaseException | None) -> None:
        err = StreamError(message)
        err.__cause__ = cause
        log.error("%s", err)
        self.close()
        self._actions.append(Fail(err))

    def _handover(self, now: float) -> None:
        """The standby connection becomes the active one; the old one is closed."""
        new = self._standby
        assert new is not None
        old = self._active
        if old is not None:
            old.state = _RETIRED  # its later frames are read for replies, not delivered
            self._actions.append(Close(old.id, graceful=True))
        pending, new.pending = new.pending, []
        admitted = self._admit(pending)
        new.delivered += len(admitted)
        self._events.append(Connected(new.url, new.attempt, rotation=True))
        self._events.extend(admitted)
        new.state = _ACTIVE
        self._active = new
        self._standby = None
        self._rotate_at = now + self.rotate_after_s
        self._rotate_now = False  # asked for during the overlap: this handover answers it
        self._counters["rotations"] += 1
        log.info("rotated to a new connection after %.2f s of overlap", now - self._handover_start)

    def _caught_up(self, new: _Link) -> bool:
        """True when the old connection delivered every trade before the new one's first."""
        if not new.first_ids:
            return False
        return all(self._last_ids.get(("t", s), -1) >= tid - 1 for s, tid in new.first_ids.items())

    def _admit(self, events: list[Event]) -> list[Event]:
        """Drop trades (and agg trades) whose id was already delivered for their symbol."""
        out: list[Event] = []
        last_ids = self._last_ids
        c = self._counters
        for ev in events:
            if isinstance(ev, Trade):
                key, tid, kind = ("t", ev.symbol), ev.trade_id, "trades"
            elif isinstance(ev, AggTrade):
                key, tid, kind = ("a", ev.symbol), ev.agg_id, "agg_trades"
            else:
                out.append(ev)
                continue
            if tid <= last_ids.get(key, -1):
                c["duplicates"] += 1
                continue
            last_ids[key] = tid
            c[kind] += 1
            out.append(ev)
        c["events"] += len(out)
        return out

    def _request(self, method: str, params: list[str] | None, now: float, *,
                 added: Sequence[str] = ()) -> int:
        req = _Request(next(self._req_ids), method, params, list(added))
        self._queue.append(req)
        self._send_controls(now)
        return req.id

    def _send_controls(self, now: float) -> None:
        """Hand queued requests to the shell, one in flight, within the sliding window."""
        while self._queue and self._in_flight is None and self._limiter.delay(now) <= 0:
            req = self._queue.popleft()
            act = self._active
            if act is None:
                self._actions.append(Reply(req.id, None))  # the next connection's URL carries it
                continue
            req.link = act.id
            self._in_flight = req
            self._awaiting[req.id] = req
            self._actions.append(Send(act.id, req.id, control_message(req.method, req.params, req.id)))

    def _reply(self, ev: SubscribeReply | ErrorFrame) -> None:
        if isinstance(ev, ErrorFrame):
            self._counters["error_frames"] += 1
            log.warning("server error frame: code %s %s (id %s)", ev.code, ev.msg, ev.id)
        req = self._awaiting.pop(ev.id, None) if isinstance(ev.id, int) else None
        if req is None:
            return
        if isinstance(ev, ErrorFrame):
            self._refuse(req, ControlError(f"server refused request {ev.id}: code {ev.code} {ev.msg}"))
            return
        ln = self._links.get(req.link) if req.link is not None else None
        if ln is not None:
            if req.method == "SUBSCRIBE":
                ln.streams.update(req.params or ())
            elif req.method == "UNSUBSCRIBE":
                ln.streams.difference_update(req.params or ())
        self._actions.append(Reply(req.id, ev.result))

    def _refuse(self, req: _Request, error: ControlError) -> None:
        if req.added:  # refused: roll the symbols back
            self._symbols = [s for s in self._symbols if s not in req.added]
        self._actions.append(Reply(req.id, error=error))


def _close_code(exc: BaseException | None) -> int | None:
    """The close code the server sent, when ``exc`` is a closed connection."""
    rcvd = getattr(exc, "rcvd", None)
    return getattr(rcvd, "code", None)


def _listify(symbols: Iterable[str] | str) -> list[str] | str:
    return symbols if isinstance(symbols, str) else list(symbols)


def _redact(url: str) -> str:
    """Shorten long stream lists for log lines."""
    return url if len(url) <= 160 else url[:150] + "...(" + str(len(url)) + " chars)"
