"""Reconnect and pacing policy as pure, swappable functions (no sockets, no sleeping).

* :func:`backoff_delays` yields reconnect delays: exponential, capped, with jitter, never
  zero (so a dead endpoint can never cause a busy loop).
* :func:`classify` tells a retryable failure (network down, server restarting, rate
  limited) from a fatal one (bad URL, refused path, protocol violation, IP ban), from an
  exception, a WebSocket close code or an HTTP status.
* :class:`SlidingWindow` paces outgoing control frames: at most ``limit`` in any window of
  ``window_s`` seconds (Binance disconnects a client sending more than 5 messages a second,
  pings and pongs included).

The stream client takes ``backoff=`` as a zero-argument callable returning an iterator of
delays, so a test or a caller swaps the policy with e.g.
``functools.partial(backoff_delays, initial_s=0.01, cap_s=0.1)``.
"""

from __future__ import annotations

import random
import socket
import ssl
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "backoff_delays",
    "Failure",
    "classify",
    "classify_close_code",
    "classify_http_status",
    "SlidingWindow",
    "WatchdogTimeout",
]


def backoff_delays(
    initial_s: float = 0.25,
    factor: float = 2.0,
    cap_s: float = 30.0,
    jitter: float = 0.5,
    *,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """Endless reconnect delays in seconds: ``min(cap_s, initial_s * factor**n)`` each
    shrunk by a random fraction in ``[0, jitter)``, so ``initial_s * (1 - jitter)`` is the
    smallest delay ever returned.

    >>> d = backoff_delays(1.0, 2.0, 8.0, jitter=0.0)
    >>> [next(d) for _ in range(6)]
    [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    """
    if not (isinstance(initial_s, int | float) and initial_s > 0):
        raise ValueError(f"initial_s: must be > 0 seconds, got {initial_s!r}")
    if not factor >= 1.0:
        raise ValueError(f"factor: must be >= 1, got {factor!r}")
    if not cap_s >= initial_s:
        raise ValueError(f"cap_s: must be >= initial_s ({initial_s}), got {cap_s!r}")
    if not 0.0 <= jitter < 1.0:
        raise ValueError(f"jitter: must be in [0, 1), got {jitter!r}")
    return _delays(float(initial_s), float(factor), float(cap_s), float(jitter), rng or random.Random())


def _delays(initial: float, factor: float, cap: float, jitter: float, rng: random.Random):
    base = initial
    while True:
        yield base * (1.0 - jitter * rng.random())
        base = min(cap, base * factor)


# --------------------------------------------------------------------------- classification


class WatchdogTimeout(Exception):
    """No data arrived on an open connection for the watchdog period (retryable)."""


@dataclass(frozen=True, slots=True)
class Failure:
    """Verdict on one failure: retry it or give up, and why."""

    retryable: bool
    reason: str
    retry_after_s: float | None = None


# WebSocket close codes (RFC 6455 §7.4.1, IANA registry).
_RETRYABLE_CLOSE = {
    1000,  # normal closure: the server ended the session (24 h cut, deploy)
    1001,  # going away
    1005,  # no status received
    1006,  # abnormal closure: TCP cut without a close frame
    1008,  # policy violation: Binance uses it when a client exceeds its message rate
    1011,  # internal server error
    1012,  # service restart
    1013,  # try again later
    1014,  # bad gateway
}
_FATAL_CLOSE = {
    1002,  # protocol error: retrying repeats it
    1003,  # unsupported data
    1007,  # invalid payload data
    1009,  # message too big
    1010,  # mandatory extension missing
    1015,  # TLS handshake failure
    3000,  # unauthorized
    3003,  # forbidden
}


def classify_close_code(code: int | None) -> bool:
    """True when a connection closed with ``code`` is worth reopening.

    Transient codes (1000, 1001, 1006, 1011-1014, 1008 rate limit, 4xxx application codes)
    are retryable; protocol violations (1002, 1003, 1007, 1009, 1010), TLS failure (1015)
    and 3000/3003 (unauthorized/forbidden) are fatal. ``None`` (no close frame) is
    treated as 1006.
    """
    if code is None:
        return True
    if code in _RETRYABLE_CLOSE:
        return True
    if code in _FATAL_CLOSE:
        return False
    if 4000 <= code <= 4999:
        return True
    return 1000 <= code < 3000 and code not in _FATAL_CLOSE


def classify_http_status(status: int) -> bool:
    """True when an HTTP ``status`` (REST reply or refused WebSocket upgrade) is transient.

    408, 425, 429 and 5xx are retryable. 418 (Binance's IP ban after ignoring 429s),
    every other 4xx (bad path, bad stream name, forbidden) and 3xx are fatal.
    """
    if status in (408, 425, 429):
        return True
    return 500 <= status <= 599


def parse_retry_after(value: str | None) -> float | None:
    """Seconds of a ``Retry-After`` header value (never negative); None if absent or not a number."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _retry_after(headers) -> float | None:
    if headers is None:
        return None
    try:
        value = headers.get("Retry-After")
    except Exception:  # pragma: no cover - exotic header containers
        return None
    return parse_retry_after(value)


def classify(exc: BaseException) -> Failure:
    """Verdict on an exception raised while opening or using a stream connection."""
    from websockets.exceptions import (  # local import: keeps this module cheap to load
        ConnectionClosed,
        InvalidHandshake,
        InvalidMessage,
        InvalidProxy,
        InvalidStatus,
        InvalidURI,
    )

    if isinstance(exc, WatchdogTimeout):
        return Failure(True, str(exc) or "no data from the server")
    if isinstance(exc, InvalidURI | InvalidProxy):
        return Failure(False, f"bad URL: {exc}")
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        after = _retry_after(exc.response.headers)
        body = bytes(exc.response.body or b"")[:200].decode("utf-8", "replace").strip()
        detail = f"server refused the WebSocket upgrade with HTTP {status}" + (
            f": {body}" if body else ""
        )
        if status == 418:
            detail += " (IP banned for ignoring rate limits)"
        return Failure(classify_http_status(status), detail, after)
    if isinstance(exc, ConnectionClosed):
        frame = exc.rcvd
        if frame is None:
            return Failure(True, "connection cut without a close frame (1006)")
        code = frame.code
        why = f" {frame.reason}" if frame.reason else ""
        return Failure(classify_close_code(code), f"server closed the connection ({code}{why})")
    if isinstance(exc, InvalidMessage):
        return Failure(True, f"bad handshake reply: {exc}")
    if isinstance(exc, InvalidHandshake):
        return Failure(False, f"handshake failed: {exc}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Failure(False, f"TLS certificate rejected: {exc}")
    if isinstance(exc, socket.gaierror):
        return Failure(True, f"cannot resolve host: {exc}")
    if isinstance(exc, TimeoutError):
        return Failure(True, f"timed out: {exc}" if str(exc) else "timed out")
    if isinstance(exc, ConnectionRefusedError):
        return Failure(True, f"connection refused, is the server up? ({exc})")
    if isinstance(exc, OSError):
        return Failure(True, f"network error: {exc}")
    if isinstance(exc, EOFError):
        return Failure(True, f"connection ended: {exc}")
    return Failure(False, f"unexpected {type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------- pacing


class SlidingWindow:
    """At most ``limit`` events in any window of ``window_s`` seconds (strict, not bucketed).

    Pure: the caller supplies the clock. Ask :meth:`delay` how long to wait, send, then
    :meth:`record` the time *after* the send completed — recording late never lets two
    events come closer than the window allows.

    >>> w = SlidingWindow(2, 1.0)
    >>> w.record(0.0); w.record(0.1); w.delay(0.5)
    0.5
    """

    def __init__(self, limit: int, window_s: float) -> None:
        if not (isinstance(limit, int) and limit >= 1):
            raise ValueError(f"limit: must be an int >= 1, got {limit!r}")
        if not window_s > 0:
            raise ValueError(f"window_s: must be > 0 seconds, got {window_s!r}")
        self.limit = limit
        self.window_s = float(window_s)
        self._times: deque[float] = deque(maxlen=limit)

    def delay(self, now: float) -> float:
        """Seconds to wait before the next event may go (0.0 when it may go now)."""
        if len(self._times) < self.limit:
            return 0.0
        return max(0.0, self._times[0] + self.window_s - now)

    def record(self, now: float) -> None:
        """Note that an event went out at ``now``."""
        self._times.append(now)

    def count(self, now: float) -> int:
        """Events inside the window ending at ``now``."""
        return sum(1 for t in self._times if t > now - self.window_s)
