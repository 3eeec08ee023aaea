"""Fault injection for the exchange simulator: the spec and its parsing.

A fault spec is a comma-separated list of ``key=value`` items (case-insensitive keys,
spaces ignored); keys not given are off. The same string is accepted by
``Exchange(..., faults=...)`` and by ``quantlab sim --faults``::

    drop=0.01,cut_every=300,dup_after_reconnect=20,malformed=0.001,stall=5@30,rest429=1

=====================  ==============================================================
key=value              effect
=====================  ==============================================================
``drop=P``             each trade frame is withheld from a connection with probability
                       P (0..1). The trade still exists: REST backfill returns it.
``cut_every=N``        after every N data frames sent on a connection, the TCP
                       connection is aborted without a close frame (the client sees
                       code 1006).
``dup_after_reconnect=K``
                       when a connection subscribes to a symbol's trade stream that an
                       earlier connection already followed (i.e. a reconnect), the last
                       K trades already made for that symbol are sent again first.
``malformed=P``        before each trade frame, with probability P, an extra malformed
                       text frame is sent (in turn: truncated JSON, non-JSON text, a
                       trade object missing its fields). No real trade is replaced.
``stall=S@T``          from T seconds after the exchange started, for S seconds, no
                       connection receives data (connections stay open and keep
                       answering pings; new connections are silent too; trades made
                       meanwhile are withheld, as with ``drop``, and stay available
                       over REST). Repeat the key for several stalls:
                       ``stall=5@30,stall=5@90``.
``flap=N``             after N data frames on a connection, the server closes it with
                       code 1008 ("Too many requests"): the connect -> one message ->
                       close loop of a rate violation, a WAF or a shutdown storm.
``quiet=S@T``          from T seconds after the exchange started, for S seconds, the
                       market makes no trades at all (a quiet market: connections
                       carry only the server's pings). Trades resume after it with
                       contiguous ids and current times. Repeatable like ``stall``.
``dead=S@T``           from T for S seconds every connection goes dead as a half-open
                       TCP connection does: no frame at all, not even pings (trades
                       made meanwhile are withheld, as with ``stall``).
``rest429=N``          the first N requests to the trade-history endpoints
                       (``trades``, ``historicalTrades``, ``aggTrades``) answer HTTP
                       429 with a ``Retry-After`` header.
``rest418=N``          the N trade-history requests after those start an IP ban: HTTP
                       418 with ``Retry-After`` (seconds until the ban ends).
``ban=S``              length of the first ban in seconds (default 120, Binance's
                       shortest). Each later ban doubles, up to ``ban_max=S`` (default
                       259200, 3 days). Any request during a ban is answered 418 and
                       restarts the ban at the next length (a repeat offence); so is a
                       request sent inside the ``Retry-After`` of a 429 (a 429 ignored).
``rest403=N``          the N trade-history requests after the 418 ones answer HTTP 403
                       (Binance's web application firewall; an HTML page, no
                       ``Retry-After``).
``rest451=N``          the first N REST requests of any endpoint answer HTTP 451
                       ("Service unavailable from a restricted location").
``history_lag=S``      ``historicalTrades`` and ``aggTrades`` (Binance: "Data Source:
                       Database") serve only trades made at least S seconds ago: a page
                       that reaches newer ids comes back short. ``trades`` ("Data
                       Source: Memory", the last 1000) has no lag.
``data_api=1``         behave as the market-data host ``data-api.binance.vision``, which
                       does not serve ``historicalTrades`` (HTTP 404).
``retry_after=S``      the ``Retry-After`` value in seconds of the ``rest429`` replies
                       (default 1).
``seed=N``             seed of the random choices (default 0), so a run is repeatable.
=====================  ==============================================================

This module is sans-I/O: :func:`parse_faults` validates the text into a frozen
:class:`Faults`, and :class:`FaultState` holds the per-connection random state that
the server consults when it sends frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from quantlab.checks import finite_number

__all__ = ["Faults", "FaultState", "RestGate", "Refusal", "parse_faults", "quiet_offset_s", "MALFORMED_KINDS",
           "malformed_frame"]

#: The kinds of malformed frame sent in turn by the ``malformed`` fault.
MALFORMED_KINDS = ("truncated", "not_json", "missing_fields")


@dataclass(frozen=True)
class Faults:
    """A validated fault spec; ``Faults()`` injects nothing."""

    drop: float = 0.0
    cut_every: int = 0
    dup_after_reconnect: int = 0
    malformed: float = 0.0
    stalls: tuple[tuple[float, float], ...] = field(default=())  # (start_s, duration_s)
    flap: int = 0
    quiets: tuple[tuple[float, float], ...] = field(default=())  # (start_s, duration_s)
    deads: tuple[tuple[float, float], ...] = field(default=())  # (start_s, duration_s)
    rest429: int = 0
    rest418: int = 0
    retry_after: int = 1
    ban: float = 120.0
    ban_max: float = 259200.0
    rest403: int = 0
    rest451: int = 0
    history_lag: float = 0.0
    data_api: int = 0
    seed: int = 0

    @property
    def any_stream_fault(self) -> bool:
        return bool(self.drop or self.cut_every or self.malformed or self.stalls or self.flap or self.deads)

    def spec(self) -> str:
        """The canonical spec text (``parse_faults(f.spec()) == f``)."""
        parts: list[str] = []
        defaults = Faults()
        for f in fields(self):
            value = getattr(self, f.name)
            if value == getattr(defaults, f.name):
                continue
            if f.name in _WINDOWS:
                key = _WINDOWS[f.name]
                parts.extend(f"{key}={_num(d)}@{_num(t)}" for t, d in value)
            else:
                parts.append(f"{f.name}={_num(value)}")
        return ",".join(parts)

    def __str__(self) -> str:
        return self.spec() or "none"


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


_WINDOWS = {"stalls": "stall", "quiets": "quiet", "deads": "dead"}  # field -> spec key

_KEYS = {
    "drop": "probability",
    "cut_every": "count",
    "dup_after_reconnect": "count",
    "malformed": "probability",
    "stall": "window",
    "flap": "count",
    "quiet": "window",
    "dead": "window",
    "rest429": "count",
    "rest418": "count",
    "retry_after": "count",
    "ban": "seconds",
    "ban_max": "seconds",
    "rest403": "count",
    "rest451": "count",
    "history_lag": "seconds",
    "data_api": "count",
    "seed": "count",
}


def parse_faults(spec: str | Faults | None) -> Faults:
    """Parse ``"drop=0.01,cut_every=300,stall=5@30"`` into :class:`Faults`.

    ``None``, ``""`` and ``"none"`` mean no faults. Raises ``ValueError`` naming the
    offending item and the accepted keys.
    """
    if spec is None:
        return Faults()
    if isinstance(spec, Faults):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"faults: expected a spec string like 'drop=0.01,cut_every=300', got {type(spec).__name__}")
    text = spec.strip()
    if text.lower() in ("", "none", "off"):
        return Faults()
    values: dict[str, Any] = {}  # Faults fields by name
    windows: dict[str, list[tuple[float, float]]] = {"stall": [], "quiet": [], "dead": []}
    for raw in text.split(","):
        item = raw.strip().replace(" ", "")
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.lower().replace("-", "_")
        if not sep or key not in _KEYS:
            raise ValueError(
                f"faults: {raw.strip()!r} is not key=value with a known key; "
                f"use {', '.join(sorted(_KEYS))} (e.g. 'drop=0.01,stall=5@30')"
            )
        kind = _KEYS[key]
        if kind == "probability":
            p = finite_number(value, f"faults: {key}")
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"faults: {key}={value} must be a probability between 0 and 1")
            values[key] = p
        elif kind == "count":
            values[key] = _int(key, value)
        elif kind == "seconds":
            x = finite_number(value, f"faults: {key}")
            if x < 0 or (key in ("ban", "ban_max") and x <= 0):
                raise ValueError(f"faults: {key}={value} must be a {'positive' if key != 'history_lag' else 'non-negative'} number of seconds")
            values[key] = x
        else:
            dur, at, when = value.partition("@")
            if not at:
                raise ValueError(f"faults: {key}={value} must be SECONDS@START, e.g. {key}=5@30")
            d, t = finite_number(dur, f"faults: {key} duration"), finite_number(when, f"faults: {key} start")
            if d <= 0 or t < 0:
                raise ValueError(f"faults: {key}={value} needs a positive duration and a start >= 0")
            windows[key].append((t, d))
    for name, key in _WINDOWS.items():
        if windows[key]:
            values[name] = tuple(sorted(windows[key]))
    out = replace(Faults(), **values)
    if out.ban > out.ban_max:
        raise ValueError(f"faults: ban={_num(out.ban)} is longer than ban_max={_num(out.ban_max)}")
    return out


def _int(key: str, value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"faults: {key}={value!r} is not a whole number") from None
    if n < 0:
        raise ValueError(f"faults: {key}={value} must be >= 0")
    return n


def malformed_frame(kind: str, stream: str, combined: bool) -> str:
    """A text frame that no Binance parser should accept as a trade."""
    if kind == "truncated":
        body = '{"e":"trade","E":17231612553'
        return f'{{"stream":"{stream}","data":{body}' if combined else body
    if kind == "not_json":
        return "<html><body>502 Bad Gateway</body></html>"
    body = '{"e":"trade","s":"' + stream.split("@", 1)[0].upper() + '"}'
    return f'{{"stream":"{stream}","data":{body}}}' if combined else body


class FaultState:
    """Per-connection random state; deterministic for a given seed and connection number."""

    def __init__(self, faults: Faults, connection_number: int) -> None:
        self.faults = faults
        self.rng = np.random.default_rng([faults.seed, connection_number])
        self.sent = 0  # data frames sent on this connection (counts toward cut_every)
        self.malformed_sent = 0

    def drop_mask(self, n: int) -> np.ndarray | None:
        """Boolean mask of the trade frames to withhold among the next ``n``, or None."""
        if self.faults.drop <= 0 or n == 0:
            return None
        return self.rng.random(n) < self.faults.drop

    def malformed_mask(self, n: int) -> np.ndarray | None:
        if self.faults.malformed <= 0 or n == 0:
            return None
        return self.rng.random(n) < self.faults.malformed

    def next_malformed_kind(self) -> str:
        kind = MALFORMED_KINDS[self.malformed_sent % len(MALFORMED_KINDS)]
        self.malformed_sent += 1
        return kind

    def stalled(self, elapsed_s: float) -> bool:
        """True while a stall window covers ``elapsed_s`` (seconds since the exchange started)."""
        return _within(self.faults.stalls, elapsed_s)

    def dead(self, elapsed_s: float) -> bool:
        """True while a ``dead`` window covers ``elapsed_s``: send nothing, not even pings."""
        return _within(self.faults.deads, elapsed_s)


def _within(windows: tuple[tuple[float, float], ...], elapsed_s: float) -> bool:
    return any(start <= elapsed_s < start + duration for start, duration in windows)


def quiet_offset_s(faults: Faults, elapsed_s: float) -> tuple[bool, float]:
    """(whether a ``quiet`` window covers ``elapsed_s``, seconds of quiet windows before it)."""
    offset = 0.0
    for start, duration in faults.quiets:
        if start <= elapsed_s < start + duration:
            return True, offset + (elapsed_s - start)
        if elapsed_s >= start + duration:
            offset += duration
    return False, offset


# --------------------------------------------------------------------------- REST refusals


@dataclass(frozen=True)
class Refusal:
    """What the gate answers instead of the endpoint: status, Binance's body, headers."""

    status: int
    body: dict | bytes
    headers: tuple[tuple[str, str], ...] = ()


# rest-api.md does not list 451; this is the reply public client reports quote from Binance
# for a restricted location (e.g. github.com/ccxt/ccxt/issues/15872, "451 Client Error").
_GEO_MSG = ("Service unavailable from a restricted location according to 'b. Eligibility' in "
            "https://www.binance.com/en/terms. Please contact customer service if you believe you "
            "received this message in error.")
_WAF_PAGE = (b"<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01 Transitional//EN\"><HTML><HEAD><TITLE>"
             b"ERROR: The request could not be satisfied</TITLE></HEAD><BODY><H1>403 ERROR</H1>"
             b"<H2>The request could not be satisfied.</H2>Request blocked.</BODY></HTML>")


class RestGate:
    """The REST fault and ban state of one simulated IP (sans-I/O: the caller gives the clock).

    Binance's rules as its spot docs state them (``rest-api.md``, "LIMITS" and "HTTP Return
    Codes", checked 2026-07): a client that keeps sending after a 429 is auto-banned with
    HTTP 418; "IP bans are tracked and scale in duration for repeat offenders, from 2
    minutes to 3 days"; ``Retry-After`` gives the seconds until the ban is over; 403 is the
    web application firewall; 451 a restricted location. The exact escalation ladder is not
    published: here each ban doubles the previous one (``ban`` .. ``ban_max``), and a request
    during a ban is a repeat offence that restarts the ban at the next length.

    ``check(endpoint, history, now)`` returns a :class:`Refusal` or None (serve the request;
    ``history``: a trade-history endpoint, the only ones the count faults hit);
    ``refuse_429(retry_after, now, why)`` answers a 429 for another reason (the weight limit)
    and opens its ``Retry-After`` window.
    """

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.left = {429: faults.rest429, 418: faults.rest418, 403: faults.rest403, 451: faults.rest451}
        self.banned_until = 0.0
        self.bans = 0
        self.quiet_until = 0.0  # the Retry-After window of the last 429
        self.counts = {"rest_429": 0, "rest_418": 0, "rest_403": 0, "rest_451": 0,
                       "rest_during_ban": 0, "rest_ignored_429": 0, "bans": 0}

    def ban_length(self, n: int) -> float:
        """Length of the ``n``-th ban (1-based) in seconds."""
        return min(self.faults.ban_max, self.faults.ban * 2.0 ** (n - 1))

    def _ban(self, now: float, why: str) -> Refusal:
        self.bans += 1
        self.counts["bans"] += 1
        self.counts["rest_418"] += 1
        self.banned_until = now + self.ban_length(self.bans)
        return self._banned_reply(now, why)

    def _banned_reply(self, now: float, why: str) -> Refusal:
        left = max(1, math.ceil(self.banned_until - now))
        return Refusal(418, {"code": -1003, "msg": (
            f"Way too many requests; IP(127.0.0.1) banned until {int(self.banned_until * 1000)}. "
            f"Please use WebSocket Streams for live updates to avoid bans. ({why})")},
            (("Retry-After", str(left)),))

    def check(self, endpoint: str, history: bool, now: float) -> Refusal | None:
        if self.left[451] > 0:
            self.left[451] -= 1
            self.counts["rest_451"] += 1
            return Refusal(451, {"code": 0, "msg": _GEO_MSG})
        if now < self.banned_until:
            self.counts["rest_during_ban"] += 1
            return self._ban(now, "request sent during a ban")
        if now < self.quiet_until:
            self.counts["rest_ignored_429"] += 1
            self.quiet_until = 0.0
            return self._ban(now, "429 not backed off")
        if not history:
            return None
        if self.left[429] > 0:
            self.left[429] -= 1
            return self.refuse_429(self.faults.retry_after, now, "fault")
        if self.left[418] > 0:
            self.left[418] -= 1
            return self._ban(now, "fault")
        if self.left[403] > 0:
            self.left[403] -= 1
            self.counts["rest_403"] += 1
            return Refusal(403, _WAF_PAGE, (("Content-Type", "text/html"),))
        return None

    def refuse_429(self, retry_after: float, now: float, why: str, limit: int = 6000) -> Refusal:
        self.counts["rest_429"] += 1
        self.quiet_until = now + retry_after
        return Refusal(429, {"code": -1003, "msg": (
            f"Too many requests; current limit of IP(127.0.0.1) request weight per 1 MINUTE is {limit}. "
            "Please use WebSocket Streams for live updates to avoid polling the API.")},
            (("Retry-After", str(int(math.ceil(retry_after)))),))
