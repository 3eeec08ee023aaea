"""Binance futures market data (USD-M, and COIN-M where the same code applies), sans I/O
parsing plus a REST client: endpoints, ``markPriceUpdate`` events, funding rows.

Facts this module builds on, checked against Binance's documentation (search, 2026-11-29):

* WebSocket routes. Since 2026-04-23 ``wss://fstream.binance.com`` is split by route:
  ``/market`` carries ``aggTrade``, ``markPrice``, ``kline``, ``ticker``, ``forceOrder``;
  ``/public`` carries ``bookTicker`` and ``depth``; ``/private`` user data. Each route has
  ``/ws/<stream>`` and ``/stream?streams=a/b`` modes, e.g.
  ``wss://fstream.binance.com/market/stream?streams=bnbusdt@aggTrade/btcusdt@markPrice``
  (developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams,
  quoted in ccxt/node-binance-api#990; ccxt/go-binance#809: "Legacy URLs will be decommissioned
  on 2026-04-23"). The legacy unrouted URL still accepts the connection and the subscription
  but stopped delivering ``/market`` streams (rustrade-data 0.5.0 ``binance/futures/mod.rs``):
  hence :data:`SILENT_URL_REASON`, raised by the recorder when a market route stays silent.
* ``<symbol>@aggTrade`` (usds-margined-futures/websocket-market-streams/Aggregate-Trade-Streams):
  ``{"e":"aggTrade","E","s","a","p","q","f","l","T","m"}`` (newer payloads add ``nq``, ignored
  here); "insurance fund trades and ADL trades won't be aggregated": aggregate ids are the
  market trades only, contiguous per symbol, so gap repair works by aggregate id.
* ``GET /fapi/v1/aggTrades?symbol=&fromId=&limit=`` (public, ``limit`` <= 1000; weight 20 as the
  issue states it; the spot figure of 4 does not apply). ``/fapi/v1/historicalTrades`` needs an
  API key and is not used.
* ``GET /fapi/v1/fundingRate?symbol=&startTime=&endTime=&limit=`` (usds-margined-futures/
  market-data/rest-api/Get-Funding-Rate-History): rows ``{"symbol","fundingRate","fundingTime",
  "markPrice"}``, ascending, ``limit`` default 100 max 1000; rate limit shared with
  ``/fapi/v1/fundingInfo``: 500 requests / 5 min / IP.
* ``GET /fapi/v1/premiumIndex?symbol=`` (weight 1 with a symbol, 10 without): ``markPrice``,
  ``indexPrice``, ``estimatedSettlePrice``, ``lastFundingRate``, ``nextFundingTime``, ``time``.
* ``<symbol>@markPrice@1s`` (usds-margined-futures/websocket-market-streams/Mark-Price-Stream),
  every 1000 ms: ``{"e":"markPriceUpdate","E","s","p" mark,"i" index,"P" estimated settle,
  "r" funding rate,"T" next funding time}``; COIN-M delivery contracts send ``"r":""`` and
  ``"T":0``. Funding intervals differ per symbol and change (1 h, 4 h, 8 h): the next funding
  time is taken from each update, never assumed to be on an 8-hour grid.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from quantlab.config import env
from quantlab.symbols import Symbol

from .protocol import AggTrade, ProtocolError, _dec, _ns, _str, agg_trade_from_rest
from .rest import MAX_LIMIT, BinanceRest, _one_symbol, _rows, _symbols_of

__all__ = [
    "FUTURES_ENDPOINTS", "SILENT_URL_REASON", "MarkPrice", "FundingEvent", "FuturesRest",
    "futures_urls", "mark_price_from_payload", "agg_trades_to_batch", "marks_to_batch",
    "funding_to_batch", "WEIGHTS",
]

#: Default endpoints per futures market: (WebSocket route base, REST base, REST prefix).
#: The stream client appends ``/stream?streams=...`` to the route base.
FUTURES_ENDPOINTS = {
    "um": ("wss://fstream.binance.com/market", "https://fapi.binance.com", "/fapi/v1"),
    "cm": ("wss://dstream.binance.com", "https://dapi.binance.com", "/dapi/v1"),
}
#: Environment variables overriding them (after --ws-url / --rest-url flags).
ENV_WS = {"um": "QUANTLAB_FUTURES_WS_URL", "cm": "QUANTLAB_COINM_WS_URL"}
ENV_REST = {"um": "QUANTLAB_FUTURES_REST_URL", "cm": "QUANTLAB_COINM_REST_URL"}

#: Request weights (USD-M, 2026).
WEIGHTS = {"exchangeInfo": 1, "aggTrades": 20, "fundingRate": 1, "premiumIndex": 1}

SILENT_URL_REASON = "connected but no market data on this URL"

#: The stream kinds the futures recorder subscribes to.
STREAM_KINDS = ("aggTrade", "markPrice@1s")


def futures_urls(market: str, ws_url: str | None = None, rest_url: str | None = None) -> tuple[str, str]:
    """(ws route base, REST base) for ``market``: flags, then environment, then Binance's."""
    if market not in FUTURES_ENDPOINTS:
        raise ValueError(f"market: {market!r} is not a futures market (um or cm)")
    ws_default, rest_default, _ = FUTURES_ENDPOINTS[market]
    ws = ws_url or env(ENV_WS[market]) or ws_default
    rest = rest_url or env(ENV_REST[market]) or rest_default
    return ws.rstrip("/"), rest.rstrip("/")


@dataclass(frozen=True, slots=True)
class MarkPrice:
    """One ``markPriceUpdate``: prices as floats, times as int ns (``next_funding_ns`` 0 and
    ``funding_rate`` NaN for delivery contracts)."""

    symbol: str
    event_time_ns: int
    mark_price: float
    index_price: float
    settle_price: float
    funding_rate: float
    next_funding_ns: int
    recv_ns: int


@dataclass(frozen=True, slots=True)
class FundingEvent:
    """One realised funding (``/fapi/v1/fundingRate`` row or a fundingRate archive row)."""

    symbol: str
    funding_time_ns: int
    funding_rate: float
    mark_price: float  # NaN when unknown (archives carry none)


def mark_price_from_payload(obj: Any, recv_ns: int) -> MarkPrice | None:
    """A decoded frame (combined ``{"stream","data"}`` or raw) -> :class:`MarkPrice`, or None
    when it is not a ``markPriceUpdate``. Raises :class:`ProtocolError` on mistyped fields."""
    if not isinstance(obj, dict):
        return None
    d = obj.get("data") if "stream" in obj else obj
    if not isinstance(d, dict) or d.get("e") != "markPriceUpdate":
        return None
    try:
        r = d.get("r", "")
        rate = math.nan if r in ("", None) else _dec(d, "r")
        nxt = d.get("T", 0)
        return MarkPrice(
            _str(d, "s"), _ns(d, "E", None), _dec(d, "p"),
            _dec(d, "i") if "i" in d else math.nan,
            _dec(d, "P") if d.get("P") not in ("", None) else math.nan,
            rate, _ns(d, "T", None) if nxt else 0, recv_ns,
        )
    except KeyError as exc:
        raise ProtocolError(f"markPriceUpdate: field {exc.args[0]!r} is missing") from None


def funding_from_rest(row: dict, symbol: str) -> FundingEvent:
    try:
        mark = row.get("markPrice")
        return FundingEvent(symbol, _ns(row, "fundingTime", None), _dec(row, "fundingRate"),
                            float(mark) if mark not in (None, "") else math.nan)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"fundingRate row {row!r}: missing or bad field {exc}") from None


# --------------------------------------------------------------------------- to the store


def agg_trades_to_batch(aggs: list[AggTrade]) -> dict[str, np.ndarray]:
    """Aggregate trades of ONE symbol -> the store's ``aggtrades`` batch."""
    n = len(aggs)
    return {
        "agg_id": np.fromiter((a.agg_id for a in aggs), np.int64, n),
        "time": np.fromiter((a.time_ns for a in aggs), np.int64, n),
        "price": np.fromiter((a.price for a in aggs), np.float64, n),
        "qty": np.fromiter((a.qty for a in aggs), np.float64, n),
        "is_buyer_maker": np.fromiter((a.is_buyer_maker for a in aggs), np.bool_, n),
        "first_trade_id": np.fromiter((a.first_trade_id for a in aggs), np.int64, n),
        "last_trade_id": np.fromiter((a.last_trade_id for a in aggs), np.int64, n),
    }


def marks_to_batch(marks: list[MarkPrice]) -> dict[str, np.ndarray]:
    """Mark-price updates of ONE symbol -> the store's ``markprice`` batch (keyed by event time)."""
    n = len(marks)
    return {
        "time": np.fromiter((m.event_time_ns for m in marks), np.int64, n),
        "price": np.fromiter((m.mark_price for m in marks), np.float64, n),
        "index_price": np.fromiter((m.index_price for m in marks), np.float64, n),
        "settle_price": np.fromiter((m.settle_price for m in marks), np.float64, n),
        "funding_rate": np.fromiter((m.funding_rate for m in marks), np.float64, n),
        "next_funding_time": np.fromiter((m.next_funding_ns for m in marks), np.int64, n),
        "recv_time": np.fromiter((m.recv_ns for m in marks), np.int64, n),
    }


def funding_to_batch(events: list[FundingEvent], interval_hours: float = math.nan) -> dict[str, np.ndarray]:
    """Funding events of ONE symbol -> the store's ``funding`` batch (keyed by funding time)."""
    n = len(events)
    return {
        "time": np.fromiter((e.funding_time_ns for e in events), np.int64, n),
        "funding_rate": np.fromiter((e.funding_rate for e in events), np.float64, n),
        "mark_price": np.fromiter((e.mark_price for e in events), np.float64, n),
        "interval_hours": np.full(n, interval_hours, np.float64),
    }


# --------------------------------------------------------------------------- REST


class FuturesRest(BinanceRest):
    """The spot client's transport (weights, 429/418, retries) on the futures REST paths.

    ``market``: ``"um"`` (``/fapi/v1``) or ``"cm"`` (``/dapi/v1``).
    """

    def __init__(self, rest_url: str, market: str = "um", **kwargs: Any) -> None:
        if market not in FUTURES_ENDPOINTS:
            raise ValueError(f"market: {market!r} is not a futures market (um or cm)")
        kwargs.setdefault("max_weight_per_min", 2000)  # USD-M allows 2400 a minute
        super().__init__(rest_url, **kwargs)
        self.market = market
        self.api = FUTURES_ENDPOINTS[market][2]

    async def exchange_info(self, symbols) -> dict[str, dict]:
        """``{symbol: entry}`` from ``exchangeInfo`` (futures lists every symbol in one reply)."""
        from quantlab.errors import UnknownSymbolError

        names = [_one_symbol(s) for s in ([symbols] if isinstance(symbols, str) else symbols)]
        found = _symbols_of(await self._get(f"{self.api}/exchangeInfo", {}, WEIGHTS["exchangeInfo"]))
        unknown = [s for s in names if s not in found]
        if unknown:
            raise UnknownSymbolError(
                f"unknown {self.market} symbol{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
                f"not listed by {self.rest_url}{self.api}/exchangeInfo (check the spelling; "
                f"{'USD-M symbols look like BTCUSDT' if self.market == 'um' else 'COIN-M: BTCUSD_PERP'})")
        return {s: found[s] for s in names}

    async def agg_trades(self, symbol: str, from_id: int, limit: int = MAX_LIMIT) -> list[AggTrade]:
        sym = _one_symbol(symbol)
        rows = await self._get(f"{self.api}/aggTrades", {"symbol": sym, "fromId": int(from_id), "limit": int(limit)},
                               WEIGHTS["aggTrades"])
        recv_ns = time.time_ns()
        return [agg_trade_from_rest(r, sym, recv_ns) for r in _rows(rows)]

    async def fetch_agg_range(self, symbol: str, first_id: int, last_id: int) -> list[AggTrade]:
        """Every aggregate trade with ``first_id <= a <= last_id`` the exchange has, paging 1000."""
        if last_id < first_id:
            raise ValueError(f"last_id: {last_id} is below first_id {first_id}")
        out: list[AggTrade] = []
        next_id = first_id
        while next_id <= last_id:
            page = await self.agg_trades(symbol, next_id, min(MAX_LIMIT, last_id - next_id + 1))
            page = sorted((a for a in page if next_id <= a.agg_id <= last_id), key=lambda a: a.agg_id)
            if not page:
                break
            out.extend(page)
            next_id = page[-1].agg_id + 1
        return out

    async def funding_rate(self, symbol: str, start_ms: int | None = None, end_ms: int | None = None,
                           limit: int = MAX_LIMIT) -> list[FundingEvent]:
        """Realised funding of ``symbol`` with ``start_ms <= fundingTime <= end_ms``, ascending,
        paging by 1000 rows."""
        sym = _one_symbol(symbol)
        out: list[FundingEvent] = []
        start = start_ms
        while True:
            params: dict[str, Any] = {"symbol": sym, "limit": int(limit)}
            if start is not None:
                params["startTime"] = int(start)
            if end_ms is not None:
                params["endTime"] = int(end_ms)
            rows = _rows(await self._get(f"{self.api}/fundingRate", params, WEIGHTS["fundingRate"]))
            page = [funding_from_rest(r, sym) for r in rows]
            out.extend(page)
            if len(rows) < limit or not page or start is None:
                return out
            start = page[-1].funding_time_ns // 1_000_000 + 1

    async def premium_index(self, symbol: str) -> dict:
        """``/premiumIndex`` for one symbol: mark, index, last funding rate, next funding time."""
        return await self._get(f"{self.api}/premiumIndex", {"symbol": _one_symbol(symbol)}, WEIGHTS["premiumIndex"])


def qualified(market: str, name: str) -> str:
    return str(Symbol(market, name))


def funding_frame(events: list[FundingEvent]) -> pd.DataFrame:
    """Funding events as a frame indexed by funding time (UTC)."""
    idx = pd.DatetimeIndex(np.array([e.funding_time_ns for e in events], "M8[ns]"), name="time").tz_localize("UTC")
    return pd.DataFrame({"funding_rate": [e.funding_rate for e in events],
                         "mark_price": [e.mark_price for e in events]}, index=idx)
