# ruff: noqa: UP031  (printf-style templates are the fast path for encoding frames)
"""Binance's wire format, as the simulator speaks it (sans-I/O: text in, text out).

Stream frames (``timeUnit=MICROSECOND`` turns ``E`` and ``T`` into microseconds)::

    raw       {"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000",
               "q":"0.02000000","T":1723161255342,"m":true,"M":true}
    combined  {"stream":"btcusdt@trade","data":{...the raw payload...}}
    shutdown  {"e":"serverShutdown","E":...}  /  {"stream":"!serverShutdown","data":{...}}

Control messages on ``/ws`` and ``/stream`` connections::

    -> {"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}   <- {"result":null,"id":1}
    -> {"method":"LIST_SUBSCRIPTIONS","id":3}                    <- {"result":["btcusdt@trade"],"id":3}
    -> {"method":"SUBSCRIB","params":[],"id":4}
    <- {"error":{"code":2,"msg":"Invalid request: unknown variant `SUBSCRIB`, ..."},"id":4}

(``error_style="flat"`` gives the documented ``{"code":2,"msg":"...","id":4}`` instead.)

REST bodies: ``/api/v3/trades`` and ``historicalTrades`` rows
``{"id":..,"price":"..","qty":"..","quoteQty":"..","time":..,"isBuyerMaker":..,"isBestMatch":true}``,
``/api/v3/aggTrades`` rows ``{"a":..,"p":"..","q":"..","f":..,"l":..,"T":..,"m":..,"M":true}``,
errors ``{"code":-1121,"msg":"Invalid symbol."}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from quantlab.sim.sources import SymbolInfo, format_scaled

__all__ = [
    "trade_frames",
    "trade_rows_json",
    "agg_rows_json",
    "exchange_info_json",
    "shutdown_frame",
    "Control",
    "ControlError",
    "parse_control",
    "result_reply",
    "error_reply",
    "parse_stream_name",
    "METHODS",
]

METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")


def _dec_fmt(decimals: int) -> str:
    return f"%d.%0{decimals}d" if decimals else "%d%.0s"


def trade_frames(
    info: SymbolInfo, batch: np.ndarray, event_time_us: int, *, micro: bool, combined: bool
) -> list[bytes]:
    """Encode a :data:`TRADE_DTYPE` batch into Binance ``@trade`` text frames (UTF-8 bytes)."""
    if len(batch) == 0:
        return []
    pf, qf = _dec_fmt(info.price_decimals), _dec_fmt(info.qty_decimals)
    body = '{"e":"trade","E":%d,"s":"' + info.symbol + '","t":%d,"p":"' + pf + '","q":"' + qf + '","T":%d,"m":%s,"M":true}'
    if combined:
        body = '{"stream":"' + info.symbol.lower() + '@trade","data":' + body + "}"
    pw, pr = np.divmod(batch["price"], 10**info.price_decimals)
    qw, qr = np.divmod(batch["qty"], 10**info.qty_decimals)
    t = batch["time"] if micro else batch["time"] // 1000
    e = int(event_time_us if micro else event_time_us // 1000)
    tf = ("false", "true")
    return [
        (body % (e, i, a, b, c, d, tt, tf[m])).encode()
        for i, a, b, c, d, tt, m in zip(
            batch["id"].tolist(), pw.tolist(), pr.tolist(), qw.tolist(), qr.tolist(),
            t.tolist(), batch["buyer_maker"].tolist(), strict=True,
        )
    ]


def shutdown_frame(event_time_us: int, *, micro: bool, combined: bool) -> str:
    e = event_time_us if micro else event_time_us // 1000
    data = '{"e":"serverShutdown","E":%d}' % e
    return '{"stream":"!serverShutdown","data":%s}' % data if combined else data


def _quote_qty(price: int, qty: int, info: SymbolInfo, out_decimals: int = 8) -> str:
    scale = info.price_decimals + info.qty_decimals
    prod = price * qty
    if scale > out_decimals:
        div = 10 ** (scale - out_decimals)
        prod = (prod + div // 2) // div
    else:
        prod *= 10 ** (out_decimals - scale)
    return format_scaled(prod, out_decimals)


def trade_rows_json(info: SymbolInfo, rows: np.ndarray, *, micro: bool = False) -> bytes:
    """``/api/v3/trades`` / ``historicalTrades`` body for ``rows`` (TRADE_DTYPE)."""
    pd_, qd = info.price_decimals, info.qty_decimals
    t = rows["time"] if micro else rows["time"] // 1000
    tf = ("false", "true")
    items = [
        '{"id":%d,"price":"%s","qty":"%s","quoteQty":"%s","time":%d,"isBuyerMaker":%s,"isBestMatch":true}'
        % (i, format_scaled(p, pd_), format_scaled(q, qd), _quote_qty(p, q, info), tt, tf[m])
        for i, p, q, tt, m in zip(
            rows["id"].tolist(), rows["price"].tolist(), rows["qty"].tolist(), t.tolist(),
            rows["buyer_maker"].tolist(), strict=True,
        )
    ]
    return ("[" + ",".join(items) + "]").encode()


def agg_rows_json(
    info: SymbolInfo, ids: np.ndarray, qty: np.ndarray, first_rows: np.ndarray,
    first_ids: np.ndarray, last_ids: np.ndarray, *, micro: bool = False,
) -> bytes:
    """``/api/v3/aggTrades`` body. ``first_rows`` are the TRADE_DTYPE rows of each aggregate's
    first trade (price, time and side are the same for the whole aggregate); ``qty`` the
    scaled quantity sums."""
    pd_, qd = info.price_decimals, info.qty_decimals
    t = first_rows["time"] if micro else first_rows["time"] // 1000
    tf = ("false", "true")
    items = [
        '{"a":%d,"p":"%s","q":"%s","f":%d,"l":%d,"T":%d,"m":%s,"M":true}'
        % (a, format_scaled(p, pd_), format_scaled(q, qd), f, lid, tt, tf[m])
        for a, p, q, f, lid, tt, m in zip(
            ids.tolist(), first_rows["price"].tolist(), qty.tolist(), first_ids.tolist(),
            last_ids.tolist(), t.tolist(), first_rows["buyer_maker"].tolist(), strict=True,
        )
    ]
    return ("[" + ",".join(items) + "]").encode()


def exchange_info_json(infos: Iterable[SymbolInfo], server_time_ms: int, weight_limit: int) -> bytes:
    symbols = []
    for i in infos:
        symbols.append({
            "symbol": i.symbol,
            "status": "TRADING",
            "baseAsset": i.base,
            "baseAssetPrecision": 8,
            "quoteAsset": i.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": i.tick_size,
                 "maxPrice": format_scaled(10 ** (6 + i.price_decimals), i.price_decimals),
                 "tickSize": i.tick_size},
                {"filterType": "LOT_SIZE", "minQty": i.step_size,
                 "maxQty": format_scaled(9000 * 10**i.qty_decimals, i.qty_decimals),
                 "stepSize": i.step_size},
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        })
    body = {
        "timezone": "UTC",
        "serverTime": server_time_ms,
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weight_limit},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
        ],
        "exchangeFilters": [],
        "symbols": symbols,
    }
    return json.dumps(body, separators=(",", ":")).encode()


# --------------------------------------------------------------------------- control messages

_STREAM_TYPES = re.compile(
    r"^(trade|aggTrade|bookTicker|depth(5|10|20)?(@100ms|@1000ms)?|kline_(1s|1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M)"
    r"|miniTicker|ticker|ticker_(1h|4h|1d)|avgPrice)$"
)
_MARKET_STREAMS = re.compile(r"^!(miniTicker@arr|ticker@arr|bookTicker|ticker_(1h|4h|1d)@arr)$")


def parse_stream_name(name: str) -> tuple[str, str] | None:
    """``"btcusdt@trade" -> ("btcusdt", "trade")``; ``None`` when not a Binance stream name."""
    if not isinstance(name, str) or not name:
        return None
    if _MARKET_STREAMS.match(name):
        return ("", name)
    sym, sep, kind = name.partition("@")
    if not sep or not sym.isalnum() or not _STREAM_TYPES.match(kind):
        return None
    return sym, kind


@dataclass(frozen=True)
class Control:
    method: str
    params: list
    id: object


class ControlError(Exception):
    def __init__(self, code: int, msg: str, id: object = None) -> None:
        super().__init__(msg)
        self.code, self.msg, self.id = code, msg, id


def _valid_id(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return isinstance(value, str) and 0 < len(value) <= 36 and value.isalnum()


def parse_control(text: str | bytes) -> Control:
    """Validate a control message the way Binance does; raises :class:`ControlError`."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        msg = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ControlError(3, f"Invalid JSON: expected value at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(msg, dict):
        raise ControlError(2, f"Invalid request: invalid type: expected struct Request at line 1 column {len(text)}")
    rid = msg.get("id")
    if "method" not in msg:
        raise ControlError(2, f"Invalid request: missing field `method` at line 1 column {len(text)}", rid)
    method = msg["method"]
    if method not in METHODS:
        where = text.find(str(method)) + len(str(method)) + 1 if isinstance(method, str) else len(text)
        expected = ", ".join(f"`{m}`" for m in METHODS)
        raise ControlError(
            2, f"Invalid request: unknown variant `{method}`, expected one of {expected} at line 1 column {where}", rid
        )
    if "id" not in msg or not _valid_id(rid):
        raise ControlError(2, "Invalid request: request ID must be an unsigned integer", None)
    params = msg.get("params", [])
    if params is None:
        params = []
    if not isinstance(params, list):
        raise ControlError(2, "Invalid request: params must be an array", rid)
    if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
        if any(parse_stream_name(p) is None for p in params):
            raise ControlError(2, "Invalid request: invalid stream", rid)
    elif method == "SET_PROPERTY":
        if len(params) != 2:
            raise ControlError(2, "Invalid request: too many parameters" if len(params) > 2
                               else "Invalid request: property name must be a string", rid)
        if not isinstance(params[0], str):
            raise ControlError(2, "Invalid request: property name must be a string", rid)
        if params[0] != "combined":
            raise ControlError(0, "Unknown property", rid)
        if not isinstance(params[1], bool):
            raise ControlError(1, "Invalid value type: expected Boolean", rid)
    elif method == "GET_PROPERTY":
        if len(params) != 1 or not isinstance(params[0], str):
            raise ControlError(2, "Invalid request: property name must be a string", rid)
        if params[0] != "combined":
            raise ControlError(0, "Unknown property", rid)
    return Control(method, params, rid)


def result_reply(result: object, rid: object) -> str:
    return json.dumps({"result": result, "id": rid}, separators=(",", ":"))


def error_reply(err: ControlError, style: str = "nested") -> str:
    if style == "flat":
        body: dict = {"code": err.code, "msg": err.msg}
        if err.id is not None:
            body["id"] = err.id
        return json.dumps(body, separators=(",", ":"))
    return json.dumps({"error": {"code": err.code, "msg": err.msg}, "id": err.id}, separators=(",", ":"))
