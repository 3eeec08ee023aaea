"""Binance spot market-data wire protocol, sans I/O: frames in, typed events out.

Nothing here touches a socket or a clock: the caller passes the bytes it received and the
local receive time, and gets back a list of events. That keeps the parser testable
byte-for-byte on recorded frames, and lets the stream client, the exchange simulator and
the tests share one definition of the wire format.

Wire schema (what Binance sends) is kept apart from domain data (what quantlab stores):

* A combined-stream frame wraps a payload: ``{"stream": "btcusdt@trade", "data": {...}}``;
  a raw-stream frame (``/ws/<stream>``) is the payload itself.
* A ``@trade`` payload, as recorded from ``wss://stream.binance.com:9443`` on 2024-08-08::

      {"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000",
       "q":"0.02000000","T":1723161255342,"m":true,"M":true}

  becomes ``Trade(symbol="BTCUSDT", trade_id=3735683259, price=61837.63, qty=0.02,
  is_buyer_maker=True, time_ns=1723161255342000000, event_time_ns=1723161255343000000,
  recv_ns=<local receive time>)``.
* Control replies: ``{"result": null, "id": 1}`` (SUBSCRIBE/UNSUBSCRIBE),
  ``{"result": ["btcusdt@trade"], "id": 3}`` (LIST_SUBSCRIPTIONS); errors flat
  ``{"code": 2, "msg": "Invalid request: ...", "id": 1}`` or nested
  ``{"error": {"code": 2, "msg": "..."}, "id": 1}``.
* ``{"stream": "!serverShutdown", "data": {"e": "serverShutdown", "E": 1770123456789}}``:
  the server is about to close; open a new connection now.

Keys the parser does not know are ignored; payloads it does not know (depth updates, REST
depth snapshots, tickers) come back as :class:`Unknown` so nothing is silently lost.

All times are int nanoseconds since the epoch. Binance sends milliseconds by default and
microseconds on ``timeUnit=MICROSECOND`` connections; both convert exactly (integer
arithmetic) with :func:`quantlab.timestamps.to_ns`, the package's one converter. With
``time_unit=None`` the unit is told from the magnitude (its ``unit="auto"``: an epoch in ms is
below 1e14 until the year 5138; in µs it is below 1e17 until 5138 too). REST rows carry no
event time: theirs is :data:`quantlab.timestamps.NAT_NS`, numpy's NaT value.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from quantlab.config import parse_symbols
from quantlab.timestamps import MS_BELOW, NAT_NS, UNIT_NS, to_ns

__all__ = [
    "ProtocolError",
    "Trade",
    "AggTrade",
    "BookTicker",
    "Kline",
    "SubscribeReply",
    "ErrorFrame",
    "ServerShutdown",
    "Unknown",
    "Event",
    "parse_frame",
    "parse_payload",
    "stream_name",
    "stream_url",
    "control_message",
    "subscribe_message",
    "unsubscribe_message",
    "list_subscriptions_message",
    "trade_from_rest",
    "agg_trade_from_rest",
    "trades_to_frame",
    "trades_to_columns",
    "MAX_STREAMS_PER_CONNECTION",
    "MAX_URL_CHARS",
    "DEFAULT_TIME_UNIT",
    "connection_groups",
]

#: Binance refuses more streams than this on one connection (spot "WebSocket Limits",
#: developers.binance.com/docs/binance-spot-api-docs/web-socket-streams).
MAX_STREAMS_PER_CONNECTION = 1024

#: Longest combined-stream URL this package builds. HTTP servers and clients commonly cap a
#: request line near 8 kB (``websockets`` refuses longer ones), and 300 USDT pairs already
#: make a ~5 kB URL; :func:`connection_groups` splits the symbols below this.
MAX_URL_CHARS = 4000

#: Spot archives are in µs since 2025-01-01 and both the streams (``timeUnit=MICROSECOND``)
#: and REST (``X-MBX-TIME-UNIT: MICROSECOND``) offer µs: the one setting for both.
DEFAULT_TIME_UNIT = "MICROSECOND"

#: the ``timeUnit`` values Binance's streams and REST accept
_TIME_UNITS = ("MILLISECOND", "MICROSECOND")


class ProtocolError(ValueError):
    """A frame that is not valid JSON or whose known fields have the wrong shape."""


# --------------------------------------------------------------------------- domain events


@dataclass(frozen=True, slots=True)
class Trade:
    """One trade (``@trade`` stream or ``/api/v3/historicalTrades`` row).

    ``price``/``qty`` are ``float()`` of Binance's decimal strings; zero or negative values
    are passed through (the store rejects and counts them). ``event_time_ns`` is
    :data:`~quantlab.timestamps.NAT_NS` for trades fetched over REST.
    """

    symbol: str
    trade_id: int
    price: float
    qty: float
    is_buyer_maker: bool
    time_ns: int
    event_time_ns: int
    recv_ns: int


@dataclass(frozen=True, slots=True)
class AggTrade:
    """One aggregate trade (``@aggTrade`` stream or ``/api/v3/aggTrades`` row)."""

    symbol: str
    agg_id: int
    price: float
    qty: float
    first_trade_id: int
    last_trade_id: int
    is_buyer_maker: bool
    time_ns: int
    event_time_ns: int
    recv_ns: int


@dataclass(frozen=True, slots=True)
class BookTicker:
    """Best bid/ask (``@bookTicker``). Spot payloads carry no times (``None`` then)."""

    symbol: str
    update_id: int
    bid_price: float
    bid_qty: float
    ask_price: float
    ask_qty: float
    event_time_ns: int | None
    time_ns: int | None
    recv_ns: int


@dataclass(frozen=True, slots=True)
class Kline:
    """One kline update (``@kline_<interval>``); ``closed`` is true on the bar's final update."""

    symbol: str
    interval: str
    open_time_ns: int
    close_time_ns: int
    first_trade_id: int
    last_trade_id: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float
    trades: int
    taker_buy_volume: float
    taker_buy_quote_volume: float
    closed: bool
    event_time_ns: int
    recv_ns: int


@dataclass(frozen=True, slots=True)
class SubscribeReply:
    """Reply to SUBSCRIBE / UNSUBSCRIBE (``result`` None) or LIST_SUBSCRIPTIONS (a list)."""

    id: int | str | None
    result: Any


@dataclass(frozen=True, slots=True)
class ErrorFrame:
    """An error sent by the server, flat or nested; ``id`` names the request when known."""

    code: int | None
    msg: str
    id: int | str | None


@dataclass(frozen=True, slots=True)
class ServerShutdown:
    """The server will close this connection soon: reconnect now."""

    event_time_ns: int


@dataclass(frozen=True, slots=True)
class Unknown:
    """A well-formed frame of a kind not parsed here (depth, tickers, REST snapshots)."""

    raw: Any


Event = Trade | AggTrade | BookTicker | Kline | SubscribeReply | ErrorFrame | ServerShutdown | Unknown


# --------------------------------------------------------------------------- field helpers


def _ns(d: dict, key: str, unit: str | None) -> int:
    """Integer epoch field ``key`` in Binance's ``unit`` (None: told from the magnitude) -> ns."""
    return to_ns(_int(d, key), key, unit=unit or "auto")


def _int(d: dict, key: str) -> int:
    v = d[key]
    if type(v) is not int:
        raise ProtocolError(f"field {key!r}: expected an integer, got {v!r}")
    return v


def _dec(d: dict, key: str) -> float:
    v = d[key]
    if type(v) is not str:
        raise ProtocolError(f"field {key!r}: expected a decimal string, got {v!r}")
    try:
        return float(v)
    except ValueError:
        raise ProtocolError(f"field {key!r}: {v!r} is not a decimal number") from None


def _bool(d: dict, key: str) -> bool:
    v = d[key]
    if v is True or v is False:
        return v
    raise ProtocolError(f"field {key!r}: expected true/false, got {v!r}")


def _str(d: dict, key: str) -> str:
    v = d[key]
    if type(v) is not str:
        raise ProtocolError(f"field {key!r}: expected a string, got {v!r}")
    return v


# --------------------------------------------------------------------------- payload parsers


_FAST_FACTOR: dict[str | None, int] = {None: UNIT_NS["MILLISECOND"], **{u: UNIT_NS[u] for u in _TIME_UNITS}}


def _fast_factor(unit: str | None, tt: Any, e: Any) -> int | None:
    """ns per unit of the trade and event times ``tt`` and ``e`` when both are plain epochs
    in a known unit (unit unknown: milliseconds by magnitude), else None (the checked path).
    The hot loop's shortcut of :func:`quantlab.timestamps.to_ns`, for trades and agg trades."""
    f = _FAST_FACTOR.get(unit)
    if f is None or type(tt) is not int or type(e) is not int or tt < 0 or e < 0:
        return None
    if unit is None and not (tt < MS_BELOW and e < MS_BELOW):
        return None
    return f


def _trade(d: dict, recv_ns: int, unit: str | None) -> Trade:
    # Fast path for the hot loop: well-typed fields; anything unusual is checked below.
    s, t, p, q, m, tt, e = d["s"], d["t"], d["p"], d["q"], d["m"], d["T"], d["E"]
    f = _fast_factor(unit, tt, e)
    if (f is not None and type(s) is str and type(t) is int and type(p) is str
            and type(q) is str and (m is True or m is False)):
        try:
            return Trade(s, t, float(p), float(q), m, tt * f, e * f, recv_ns)
        except ValueError:
            pass
    return _trade_checked(d, recv_ns, unit)


def _trade_checked(d: dict, recv_ns: int, unit: str | None) -> Trade:
    return Trade(
        _str(d, "s"),
        _int(d, "t"),
        _dec(d, "p"),
        _dec(d, "q"),
        _bool(d, "m"),
        _ns(d, "T", unit),
        _ns(d, "E", unit),
        recv_ns,
    )


def _agg_trade(d: dict, recv_ns: int, unit: str | None) -> AggTrade:
    # Fast path as for trades (the futures recorder's hot loop); anything unusual is checked below.
    s, a, p, q, f, last, m, tt, e = d["s"], d["a"], d["p"], d["q"], d["f"], d["l"], d["m"], d["T"], d["E"]
    k = _fast_factor(unit, tt, e)
    if (k is not None and type(s) is str and type(a) is int and type(p) is str and type(q) is str
            and type(f) is int and type(last) is int and (m is True or m is False)):
        try:
            return AggTrade(s, a, float(p), float(q), f, last, m, tt * k, e * k, recv_ns)
        except ValueError:
            pass
    return _agg_trade_checked(d, recv_ns, unit)


def _agg_trade_checked(d: dict, recv_ns: int, unit: str | None) -> AggTrade:
    return AggTrade(
        _str(d, "s"),
        _int(d, "a"),
        _dec(d, "p"),
        _dec(d, "q"),
        _int(d, "f"),
        _int(d, "l"),
        _bool(d, "m"),
        _ns(d, "T", unit),
        _ns(d, "E", unit),
        recv_ns,
    )


def _book_ticker(d: dict, recv_ns: int, unit: str | None) -> BookTicker:
    e, t = d.get("E"), d.get("T")
    return BookTicker(
        _str(d, "s"),
        _int(d, "u"),
        _dec(d, "b"),
        _dec(d, "B"),
        _dec(d, "a"),
        _dec(d, "A"),
        None if e is None else _ns(d, "E", unit),
        None if t is None else _ns(d, "T", unit),
        recv_ns,
    )


def _kline(d: dict, recv_ns: int, unit: str | None) -> Kline:
    k = d["k"]
    if not isinstance(k, dict):
        raise ProtocolError(f"field 'k': expected an object, got {k!r}")
    return Kline(
        _str(d, "s"),
        _str(k, "i"),
        _ns(k, "t", unit),
        _ns(k, "T", unit),
        _int(k, "f"),
        _int(k, "L"),
        _dec(k, "o"),
        _dec(k, "h"),
        _dec(k, "l"),
        _dec(k, "c"),
        _dec(k, "v"),
        _dec(k, "q"),
        _int(k, "n"),
        _dec(k, "V"),
        _dec(k, "Q"),
        _bool(k, "x"),
        _ns(d, "E", unit),
        recv_ns,
    )


def _shutdown(d: dict, recv_ns: int, unit: str | None) -> ServerShutdown:
    e = d.get("E")
    return ServerShutdown(recv_ns if e is None else _ns(d, "E", unit))


_BY_EVENT: dict[str, Callable[[dict, int, str | None], Event]] = {
    "trade": _trade,
    "aggTrade": _agg_trade,
    "bookTicker": _book_ticker,
    "kline": _kline,
    "serverShutdown": _shutdown,
}


def parse_payload(obj: Any, recv_ns: int, *, time_unit: str | None = None) -> list[Event]:
    """Decoded JSON of one frame (combined or raw) -> events; see :func:`parse_frame`."""
    if not isinstance(obj, dict):
        if isinstance(obj, list):  # e.g. a raw ``!miniTicker@arr`` payload
            return [Unknown(obj)]
        raise ProtocolError(f"frame: expected a JSON object, got {type(obj).__name__}")
    data = obj.get("data") if "stream" in obj else obj
    if not isinstance(data, dict):  # only a combined frame's "data" can be anything else
        if isinstance(data, list):
            return [Unknown(obj)]
        raise ProtocolError(f"frame: 'data' of stream {obj.get('stream')!r} is not an object")
    try:
        kind = data.get("e")
        if kind == "trade":
            return [_trade(data, recv_ns, time_unit)]
        if kind == "aggTrade":
            return [_agg_trade(data, recv_ns, time_unit)]
        if kind is not None:
            parser = _BY_EVENT.get(kind)
            return [parser(data, recv_ns, time_unit)] if parser else [Unknown(obj)]
        if "u" in data and "b" in data and "A" in data and "s" in data:
            return [_book_ticker(data, recv_ns, time_unit)]  # spot bookTicker has no "e"
        if data is obj:
            if "result" in obj and "id" in obj:
                return [SubscribeReply(obj["id"], obj["result"])]
            err = obj.get("error")
            if isinstance(err, dict):
                return [_error(err, obj.get("id"))]
            if "code" in obj and "msg" in obj:
                return [_error(obj, obj.get("id"))]
        return [Unknown(obj)]
    except KeyError as exc:
        raise ProtocolError(f"frame: field {exc.args[0]!r} is missing") from None


def _error(d: dict, req_id: Any) -> ErrorFrame:
    code = d.get("code")
    if code is not None and type(code) is not int:
        raise ProtocolError(f"field 'code': expected an integer, got {code!r}")
    return ErrorFrame(code, str(d.get("msg", "")), req_id)


def parse_frame(
    data: str | bytes | bytearray, recv_ns: int, *, time_unit: str | None = None
) -> list[Event]:
    """One WebSocket message -> a list of events (usually one).

    ``data``: the text (or binary) message as received, combined ``{"stream","data"}`` or
    raw. ``recv_ns``: local receive time, stamped on every market-data event.
    Raises :class:`ProtocolError` (a ``ValueError``) on bad JSON or a known payload with
    missing or mistyped fields; the caller counts and skips such frames.
    """
    try:
        obj = json.loads(data)
    except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        snippet = bytes(data[:60]) if not isinstance(data, str) else data[:60]
        raise ProtocolError(f"frame is not JSON ({exc}): {snippet!r}") from None
    return parse_payload(obj, recv_ns, time_unit=time_unit)


# --------------------------------------------------------------------------- REST rows


def trade_from_rest(row: dict, symbol: str, recv_ns: int, *, time_unit: str | None = None) -> Trade:
    """One ``/api/v3/historicalTrades`` (or ``/api/v3/trades``) row -> :class:`Trade`.

    Row shape::

        {"id": 3735683259, "price": "61837.63000000", "qty": "0.02000000",
         "quoteQty": "1236.75260000", "time": 1723161255342, "isBuyerMaker": true,
         "isBestMatch": true}

    REST rows carry no event time: ``event_time_ns`` is :data:`~quantlab.timestamps.NAT_NS`.
    """
    try:
        return Trade(
            symbol,
            _int(row, "id"),
            _dec(row, "price"),
            _dec(row, "qty"),
            _bool(row, "isBuyerMaker"),
            _ns(row, "time", time_unit),
            NAT_NS,
            recv_ns,
        )
    except (KeyError, TypeError) as exc:
        raise ProtocolError(f"historicalTrades row {row!r}: missing or bad field {exc}") from None


def agg_trade_from_rest(
    row: dict, symbol: str, recv_ns: int, *, time_unit: str | None = None
) -> AggTrade:
    """One ``/api/v3/aggTrades`` row -> :class:`AggTrade`.

    Row shape::

        {"a": 26129, "p": "0.01633102", "q": "4.70443515", "f": 27781, "l": 27781,
         "T": 1498793709153, "m": true, "M": true}
    """
    try:
        return AggTrade(
            symbol,
            _int(row, "a"),
            _dec(row, "p"),
            _dec(row, "q"),
            _int(row, "f"),
            _int(row, "l"),
            _bool(row, "m"),
            _ns(row, "T", time_unit),
            NAT_NS,
            recv_ns,
        )
    except (KeyError, TypeError) as exc:
        raise ProtocolError(f"aggTrades row {row!r}: missing or bad field {exc}") from None


# --------------------------------------------------------------------------- URLs and control


def _check_kind(kind: str) -> str:
    if not isinstance(kind, str) or not kind or any(c in kind for c in "/?&# \t"):
        raise ValueError(
            f"kinds: {kind!r} is not a stream kind (use e.g. 'trade', 'aggTrade', "
            "'bookTicker', 'kline_1m')"
        )
    return kind


def stream_name(symbol: str, kind: str = "trade") -> str:
    """``("BTCUSDT", "trade")`` -> ``"btcusdt@trade"`` (symbols are lowercase on the wire)."""
    syms = parse_symbols([symbol])
    if not syms:
        raise ValueError("symbol: empty symbol name (use e.g. 'BTCUSDT')")
    return f"{syms[0].lower()}@{_check_kind(kind)}"


def stream_names(symbols: Iterable[str], kinds: Sequence[str] = ("trade",)) -> list[str]:
    """All ``symbol@kind`` names, symbol-major, duplicates removed."""
    if isinstance(kinds, str):
        kinds = (kinds,)
    syms = parse_symbols(list(symbols) if not isinstance(symbols, str) else symbols)
    if not syms:
        raise ValueError("symbols: no symbol given (use e.g. ['BTCUSDT', 'ETHUSDT'])")
    if not kinds:
        raise ValueError("kinds: no stream kind given (use e.g. ('trade',))")
    names = [f"{s.lower()}@{_check_kind(k)}" for s in syms for k in kinds]
    return list(dict.fromkeys(names))


def stream_url(
    base: str,
    symbols: Iterable[str] | str,
    kinds: Sequence[str] = ("trade",),
    *,
    time_unit: str | None = None,
) -> str:
    """Combined-stream URL: ``base + "/stream?streams=btcusdt@trade/ethusdt@trade"``.

    ``base``: ``ws://`` or ``wss://`` origin such as ``wss://stream.binance.com:9443``.
    ``time_unit="MICROSECOND"`` appends ``&timeUnit=MICROSECOND``.
    """
    if not isinstance(base, str) or not base.lower().startswith(("ws://", "wss://")):
        raise ValueError(
            f"base: {base!r} is not a WebSocket URL (use e.g. 'wss://stream.binance.com:9443')"
        )
    names = stream_names(symbols, kinds)
    if len(names) > MAX_STREAMS_PER_CONNECTION:
        raise ValueError(
            f"symbols: {len(names)} streams exceed Binance's {MAX_STREAMS_PER_CONNECTION} per "
            "connection; split them over several connections"
        )
    url = base.rstrip("/") + "/stream?streams=" + "/".join(quote(n, safe="@_") for n in names)
    if time_unit is not None:
        unit = str(time_unit).upper()
        if unit not in _TIME_UNITS:
            raise ValueError(f"time_unit: {time_unit!r} is not one of MILLISECOND, MICROSECOND")
        url += "&timeUnit=" + unit
    return url


def connection_groups(
    ws_url: str,
    symbols: Iterable[str] | str,
    kinds: Sequence[str] = ("trade",),
    *,
    time_unit: str | None = None,
    max_streams: int = MAX_STREAMS_PER_CONNECTION,
    max_url_chars: int = MAX_URL_CHARS,
) -> list[list[str]]:
    """Split ``symbols`` into groups whose combined-stream URL holds at most ``max_streams``
    streams and ``max_url_chars`` characters: one connection per group.

    >>> connection_groups("wss://stream.binance.com:9443", ["BTCUSDT", "ETHUSDT"])
    [['BTCUSDT', 'ETHUSDT']]
    """
    if not (isinstance(max_streams, int) and 1 <= max_streams <= MAX_STREAMS_PER_CONNECTION):
        raise ValueError(f"max_streams: must be an int in 1..{MAX_STREAMS_PER_CONNECTION}, got {max_streams!r}")
    if not isinstance(ws_url, str) or not ws_url.lower().startswith(("ws://", "wss://")):
        raise ValueError(
            f"ws_url: {ws_url!r} is not a WebSocket URL (use e.g. 'wss://stream.binance.com:9443')"
        )
    syms = parse_symbols(list(symbols) if not isinstance(symbols, str) else symbols)
    if not syms:
        raise ValueError("symbols: no symbol given (use e.g. ['BTCUSDT', 'ETHUSDT'])")
    if isinstance(kinds, str):
        kinds = (kinds,)
    fixed = len(stream_url(ws_url, syms[:1], kinds, time_unit=time_unit)) - len(
        "/".join(stream_names(syms[:1], kinds)))

    def greedy(cap: int) -> list[list[str]]:
        groups: list[list[str]] = []
        cur: list[str] = []
        n_streams = length = 0
        for sym in syms:
            names = stream_names([sym], kinds)
            add = sum(len(quote(n, safe="@_")) for n in names) + len(names)  # names + "/"
            if fixed + add > max_url_chars:
                raise ValueError(f"max_url_chars: {max_url_chars} cannot hold even the streams of {sym}")
            if cur and (n_streams + len(names) > cap or fixed + length + add > max_url_chars):
                groups.append(cur)
                cur, n_streams, length = [], 0, 0
            cur.append(sym)
            n_streams += len(names)
            length += add
        groups.append(cur)
        return groups

    groups = greedy(max_streams)
    if len(groups) > 1:  # as many connections, evenly filled: a cut costs each the same repair
        total = len(syms) * len(kinds)
        groups = greedy(max(len(kinds), -(-total // len(groups))))
    return groups


def control_message(method: str, params: Sequence[Any] | None, req_id: int | str) -> str:
    """``{"method": ..., "params": [...], "id": ...}`` as compact JSON text."""
    msg: dict[str, Any] = {"method": method}
    if params is not None:
        msg["params"] = list(params)
    msg["id"] = req_id
    return json.dumps(msg, separators=(",", ":"))


def subscribe_message(streams: Sequence[str], req_id: int | str) -> str:
    return control_message("SUBSCRIBE", streams, req_id)


def unsubscribe_message(streams: Sequence[str], req_id: int | str) -> str:
    return control_message("UNSUBSCRIBE", streams, req_id)


def list_subscriptions_message(req_id: int | str) -> str:
    return control_message("LIST_SUBSCRIPTIONS", None, req_id)


# --------------------------------------------------------------------------- to the store


def trades_to_columns(trades: Sequence[Trade]) -> dict[str, np.ndarray]:
    """Trades of ONE symbol -> a dict of column arrays (the store's ``append()`` input,
    without a DataFrame: what the recorder writes several hundred times a second).

    Keys and dtypes as :func:`trades_to_frame`'s columns. Row order is kept.
    """
    n = len(trades)
    if n and len({t.symbol for t in trades}) > 1:
        syms = sorted({t.symbol for t in trades})
        raise ValueError(f"trades: mixes symbols {', '.join(syms)}; pass one symbol's trades")
    if not n:
        rows = np.empty((0, 7))
    else:
        # one pass over the objects, then typed columns
        ints = np.array([(t.trade_id, t.time_ns, t.event_time_ns, t.recv_ns) for t in trades], np.int64)
        floats = np.array([(t.price, t.qty) for t in trades], np.float64)
        return {
            "trade_id": ints[:, 0].copy(),
            "price": floats[:, 0].copy(),
            "qty": floats[:, 1].copy(),
            "is_buyer_maker": np.fromiter((t.is_buyer_maker for t in trades), np.bool_, n),
            "time": ints[:, 1].copy(),
            "event_time": ints[:, 2].copy(),
            "recv_time": ints[:, 3].copy(),
        }
    return {
        "trade_id": rows[:, 0].astype(np.int64),
        "price": rows[:, 0].astype(np.float64),
        "qty": rows[:, 0].astype(np.float64),
        "is_buyer_maker": rows[:, 0].astype(np.bool_),
        "time": rows[:, 0].astype(np.int64),
        "event_time": rows[:, 0].astype(np.int64),
        "recv_time": rows[:, 0].astype(np.int64),
    }


def trades_to_frame(trades: Sequence[Trade]) -> pd.DataFrame:
    """Trades of ONE symbol -> the store's ``append()`` input.

    Columns: ``trade_id`` int64, ``price`` float64, ``qty`` float64, ``is_buyer_maker``
    bool, ``time``, ``event_time``, ``recv_time`` (int64 ns; ``event_time`` is
    :data:`~quantlab.timestamps.NAT_NS`, numpy's NaT value, for REST trades). Row order is kept.
    """
    return pd.DataFrame(trades_to_columns(trades))

