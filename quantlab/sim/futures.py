"""USD-M futures mode of the exchange simulator: the 2026 WebSocket routes, ``@aggTrade``,
``@markPrice@1s`` with funding, and the ``/fapi/v1`` REST endpoints, on one loopback port.

    async with FuturesExchange(Synthetic(["BTCUSDT"], rate=200), funding_interval=5) as ex:
        ex.ws_url        # "ws://127.0.0.1:PORT/market" (the route base the recorder takes)
        ex.legacy_ws_url # "ws://127.0.0.1:PORT": the pre-2026 URL, acknowledges, sends nothing
        ex.rest_url      # "http://127.0.0.1:PORT"   (client appends /fapi/v1/...)
        ex.aggs("BTCUSDT")     # every aggregate trade made so far (DataFrame)
        ex.funding("BTCUSDT")  # every funding event settled so far (DataFrame)

Everything else is the spot simulator's (:class:`~quantlab.sim.exchange.Exchange`): sources,
the trade tape (aggregates are derived there), faults (drop, cut, dup, malformed, stall and
REST 429/418 apply to these streams and endpoints the same way), pings, control messages.

Routes (as Binance split ``wss://fstream.binance.com`` on 2026-04-23, see
:mod:`quantlab.binance.futures`): ``/market/stream?streams=...`` and ``/market/ws/...`` carry
``<symbol>@aggTrade`` and ``<symbol>@markPrice[@1s]``; ``/public/...`` accepts its streams
(``bookTicker``, ``depth``) and sends nothing here; the unrouted ``/stream`` and ``/ws`` accept
connections and SUBSCRIBEs (with their replies) and send no market data, as the real legacy
URL does since the split.

Aggregates are published once complete (a later trade with another time, price or side
exists), so a streamed aggregate never differs from the REST row with the same id.
Funding: every ``funding_interval`` seconds (demo mode: a few seconds; Binance: 1, 4 or 8
hours, per symbol) the current rate is settled, recorded for ``/fapi/v1/fundingRate`` and a
new rate is drawn (both signs occur); ``markPriceUpdate`` frames carry the rate and the next
funding time every ``mark_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from quantlab.sim import wire
from quantlab.sim.exchange import (
    Exchange,
    ExchangeThread,
    _cancel_and_wait,
    _Client,
    _now_us,
    _RestError,
)
from quantlab.sim.sources import SymbolInfo, format_scaled

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FuturesExchange", "FuturesExchangeThread", "FUTURES_WEIGHTS"]

#: ``/fapi/v1`` request weights (USD-M, 2026; see quantlab.binance.futures).
FUTURES_WEIGHTS = {"ping": 1, "time": 1, "exchangeInfo": 1, "aggTrades": 20, "fundingRate": 1,
                   "premiumIndex": 1}
_FUTURES_HISTORY = ("aggTrades", "fundingRate")
_MARKET_KINDS = re.compile(r"^(aggTrade|markPrice(@1s)?|kline_\w+|ticker|miniTicker|forceOrder)$")
_PUBLIC_KINDS = re.compile(r"^(bookTicker|depth(5|10|20)?(@100ms|@250ms|@500ms)?)$")
_ROUTES = ("/market", "/public")


def _futures_stream(name: str) -> tuple[str, str] | None:
    sym, sep, kind = name.partition("@")
    if not sep or not sym.isalnum() or not (_MARKET_KINDS.match(kind) or _PUBLIC_KINDS.match(kind)):
        return None
    return sym, kind


class FuturesExchange(Exchange):
    """A USD-M futures exchange on one loopback port; see the module docstring.

    ``mark_interval``: seconds between ``markPriceUpdate`` frames (Binance ``@1s``: 1).
    ``funding_interval``: seconds between funding settlements (demo default 5).
    ``agg_first_ids``: first aggregate id per symbol (default: a per-symbol base).
    Other keyword arguments are :class:`~quantlab.sim.exchange.Exchange`'s.
    """

    REST_PREFIX = "/fapi/v1/"
    REST_WEIGHTS = FUTURES_WEIGHTS
    REST_HISTORY = _FUTURES_HISTORY

    def __init__(self, source: Any, *, mark_interval: float = 1.0, funding_interval: float = 5.0,
                 weight_limit: int = 2400, agg_first_ids: Mapping[str, int] | None = None,
                 **kwargs: Any) -> None:
        for name, v in (("mark_interval", mark_interval), ("funding_interval", funding_interval)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name}: {v!r} must be a positive number of seconds")
        super().__init__(source, weight_limit=weight_limit, **kwargs)
        self.mark_interval = float(mark_interval)
        self.funding_interval = float(funding_interval)
        self._by_stream = {}  # the spot @trade streams carry nothing here
        self._agg_streams = {f"{s.lower()}@aggTrade": s for s in self.symbols}
        self._mark_streams = {f"{s.lower()}@markPrice{k}": s for s in self.symbols for k in ("", "@1s")}
        self._agg_sent = dict.fromkeys(self.symbols, 0)  # aggregates published per symbol
        self._funding: dict[str, list[tuple[int, str, str]]] = {s: [] for s in self.symbols}
        self._rates = {s: self._draw_rate(s, 0) for s in self.symbols}
        self._next_funding_ms: dict[str, int] = {}
        self._mark_task: asyncio.Task | None = None
        for sym, first in (agg_first_ids or {}).items():  # continue a demo store's aggregate ids
            self._tapes[sym].agg_first_id = int(first)

    # ------------------------------------------------------------------ lifecycle / URLs

    async def start(self) -> FuturesExchange:
        await super().start()
        step = int(self.funding_interval * 1000)
        now_ms = int(time.time() * 1000)
        self._next_funding_ms = {s: (now_ms // step + 1) * step for s in self.symbols}
        self._mark_task = asyncio.create_task(self._mark_loop(), name="quantlab-sim-markprice")
        return self

    async def close(self) -> None:
        await _cancel_and_wait(self._mark_task)
        await super().close()

    @property
    def ws_url(self) -> str:
        """The ``/market`` route base (aggTrade, markPrice)."""
        return super().ws_url + "/market"

    @property
    def legacy_ws_url(self) -> str:
        """The unrouted pre-2026 URL: subscriptions acknowledged, no market data."""
        return Exchange.ws_url.fget(self)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ inspection

    def aggs(self, symbol: str) -> pd.DataFrame:
        """Every complete aggregate trade so far: agg_id, price, qty (floats of the exact
        decimals), first_trade_id, last_trade_id, is_buyer_maker, time (UTC)."""
        import pandas as pd

        sym = str(symbol).upper()
        tape, info = self.tape(sym), self._infos[sym]
        ids, first, last, qty = tape.aggs(0, max(0, tape.n_aggs() - 1))
        rows = tape.all()
        f = rows[first] if len(first) else rows[:0]
        return pd.DataFrame({
            "agg_id": ids, "price": f["price"] / 10.0**info.price_decimals,
            "qty": qty / 10.0**info.qty_decimals,
            "first_trade_id": f["id"].astype("int64"), "last_trade_id": rows["id"][last].astype("int64"),
            "is_buyer_maker": f["buyer_maker"].astype(bool),
            "time": pd.to_datetime(f["time"] * 1000, unit="ns", utc=True),
        })

    def funding(self, symbol: str) -> pd.DataFrame:
        """Funding settled so far: time (UTC, index), funding_rate, mark_price."""
        import pandas as pd

        rows = self._funding[str(symbol).upper()]
        idx = pd.to_datetime([r[0] for r in rows], unit="ms", utc=True).rename("time")
        return pd.DataFrame({"funding_rate": [float(r[1]) for r in rows],
                             "mark_price": [float(r[2]) for r in rows]}, index=idx)

    # ------------------------------------------------------------------ market

    @staticmethod
    def _draw_rate(symbol: str, k: int) -> str:
        """A funding rate that changes sign now and then: +-0.0001 scale, 8 decimals."""
        seed = (sum(map(ord, symbol)) * 7919 + k * 104729) % 2**32
        r = float(np.random.default_rng(seed).normal(0.0001, 0.0002))
        return f"{r:.8f}"

    def _mark_str(self, sym: str) -> str:
        info: SymbolInfo = self._infos[sym]
        tape = self.tape(sym)
        if not len(tape):
            return ""
        price = int(tape.last(1)["price"][0])
        return format_scaled(price * 10 ** max(0, 8 - info.price_decimals), max(8, info.price_decimals))

    def _publish(self, batches: Mapping[str, Any], now_us: int) -> None:
        for sym, batch in batches.items():
            if not len(batch):
                continue
            tape = self._tapes[sym]
            tape.append(batch)
            self._counters["trades_made"] += len(batch)
            lo, hi = self._agg_sent[sym], tape.n_aggs() - 1  # the last aggregate may still grow
            if hi <= lo:
                continue
            self._agg_sent[sym] = hi
            stream = f"{sym.lower()}@aggTrade"
            subs = self._subs.get(stream)
            if not subs:
                continue
            encoded: dict[tuple[bool, bool], list[bytes]] = {}
            for c in list(subs):
                key = (c.combined, c.micro)
                frames = encoded.get(key)
                if frames is None:
                    frames = encoded[key] = self._agg_frames(sym, lo, hi, now_us, c.micro, c.combined)
                c.enqueue(frames, True, stream)
                if c.pending > self.max_pending and not c.closing:
                    self._counters["slow_consumers"] += 1
                    c.closing = True
                    c.ws.transport.abort()

    def _agg_frames(self, sym: str, lo: int, hi: int, now_us: int, micro: bool, combined: bool) -> list[bytes]:
        """``@aggTrade`` frames of aggregates ``lo..hi-1``: the REST rows' numbers, one per frame."""
        tape, info = self._tapes[sym], self._infos[sym]
        ids, first, last, qty = tape.aggs(lo, hi)
        if not len(ids):
            return []
        rows = tape.slice(int(first[0]), int(last[-1]) + 1)
        base = int(first[0])
        f = rows[first - base]
        last_ids = rows["id"][last - base]
        pf, qf = wire._dec_fmt(info.price_decimals), wire._dec_fmt(info.qty_decimals)
        body = ('{"e":"aggTrade","E":%d,"a":%d,"s":"' + sym + '","p":"' + pf + '","q":"' + qf
                + '","f":%d,"l":%d,"T":%d,"m":%s}')
        if combined:
            body = '{"stream":"' + sym.lower() + '@aggTrade","data":' + body + "}"
        pw, pr = np.divmod(f["price"], 10**info.price_decimals)
        qw, qr = np.divmod(qty, 10**info.qty_decimals)
        t = f["time"] if micro else f["time"] // 1000
        e = int(now_us if micro else now_us // 1000)
        tf = ("false", "true")
        return [
            (body % (e, a, b, c, d, g, fi, li, tt, tf[m])).encode()
            for a, b, c, d, g, fi, li, tt, m in zip(
                ids.tolist(), pw.tolist(), pr.tolist(), qw.tolist(), qr.tolist(), f["id"].tolist(),
                last_ids.tolist(), t.tolist(), f["buyer_maker"].tolist(), strict=True)
        ]

    async def _mark_loop(self) -> None:
        k = 0
        while True:
            await asyncio.sleep(self.mark_interval)
            if self._paused:
                continue
            now_ms = int(time.time() * 1000)
            for sym in self.symbols:
                mark = self._mark_str(sym)
                while now_ms >= self._next_funding_ms[sym]:
                    t = self._next_funding_ms[sym]
                    if mark:
                        self._funding[sym].append((t, self._rates[sym], mark))
                        self._counters["funding_events"] += 1
                    k += 1
                    self._rates[sym] = self._draw_rate(sym, k)
                    self._next_funding_ms[sym] = t + int(self.funding_interval * 1000)
                if not mark:
                    continue
                for kind in ("", "@1s"):
                    stream = f"{sym.lower()}@markPrice{kind}"
                    subs = self._subs.get(stream)
                    if not subs:
                        continue
                    payload = {"e": "markPriceUpdate", "E": now_ms, "s": sym, "p": mark, "i": mark,
                               "P": mark, "r": self._rates[sym], "T": self._next_funding_ms[sym]}
                    body = json.dumps(payload, separators=(",", ":"))
                    for c in list(subs):
                        frame = f'{{"stream":"{stream}","data":{body}}}' if c.combined else body
                        c.enqueue([frame.encode()], True, stream)
                        self._counters["mark_updates"] += 1

    # ------------------------------------------------------------------ HTTP / WebSocket

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        if path.startswith("/fapi/"):
            return self._rest(path, params, request.headers)
        route = next((r for r in _ROUTES if path == r or path.startswith(r + "/")), "")
        sub = path[len(route):]
        if sub in ("/ws", "/ws/", "/stream", "/stream/") or sub.startswith("/ws/"):
            if "upgrade" not in request.headers.get("Connection", "").lower():
                return self._json(400, {"code": -1, "msg": "This endpoint speaks WebSocket only."})
            combined = sub.startswith("/stream")
            raw = unquote(params.get("streams", "")) if combined else unquote(sub[len("/ws"):])
            names = [s for s in raw.split("/") if s]
            bad = [s for s in names if _futures_stream(s) is None]
            if bad:
                return self._json(400, {"code": 2, "msg": f"Invalid request: invalid stream {bad[0]!r}"})
            conn.sim_plan = (combined, False, names)  # type: ignore[attr-defined]
            conn.sim_route = route or "legacy"  # type: ignore[attr-defined]
            if not route:
                self._counters["legacy_connections"] += 1
            return None
        return self._json(404, {"code": -1, "msg": f"Not found: {path}"})

    def _subscribe(self, c: _Client, names: Sequence[str]) -> None:
        route = getattr(c.ws, "sim_route", "legacy")
        for name in names:
            if name in c.streams:
                continue
            c.streams.append(name)
            if route != "/market":
                continue  # legacy URL: acknowledged, silent; /public: no aggTrade/markPrice there
            sym = self._agg_streams.get(name) or self._mark_streams.get(name)
            if sym is None:
                continue
            self._subs.setdefault(name, set()).add(c)
            k = self.faults.dup_after_reconnect
            if k and name in self._served and name in self._agg_streams:
                hi = self._agg_sent[sym]
                frames = self._agg_frames(sym, max(0, hi - k), hi, _now_us(), c.micro, c.combined)
                c.enqueue(frames, False, name)
                self._counters["duplicates"] += len(frames)
            self._served.add(name)

    # ------------------------------------------------------------------ REST

    def _endpoint(self, endpoint: str, params: dict[str, str], micro: bool) -> bytes | dict | list:
        if endpoint == "exchangeInfo":
            infos = [self._infos[s] for s in self.symbols]
            return {"timezone": "UTC", "serverTime": int(time.time() * 1000),
                    "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                                    "intervalNum": 1, "limit": self.weight_limit}],
                    "symbols": [{"symbol": i.symbol, "pair": i.symbol, "contractType": "PERPETUAL",
                                 "status": "TRADING", "baseAsset": i.base, "quoteAsset": i.quote,
                                 "marginAsset": i.quote, "pricePrecision": i.price_decimals,
                                 "quantityPrecision": i.qty_decimals,
                                 "filters": [{"filterType": "PRICE_FILTER", "tickSize": i.tick_size},
                                             {"filterType": "LOT_SIZE", "stepSize": i.step_size}]}
                                for i in infos]}
        if endpoint == "premiumIndex":
            sym = self._symbol(params)
            mark = self._mark_str(sym) or "0"
            return {"symbol": sym, "markPrice": mark, "indexPrice": mark, "estimatedSettlePrice": mark,
                    "lastFundingRate": self._rates[sym], "interestRate": "0.00010000",
                    "nextFundingTime": self._next_funding_ms.get(sym, 0), "time": int(time.time() * 1000)}
        if endpoint == "fundingRate":
            sym = self._symbol(params)
            limit = self._int(params, "limit", 100)
            if not 1 <= limit <= 1000:
                raise _RestError(400, -1100, "Illegal characters found in parameter 'limit'; legal range is '1'..'1000'.")
            start, end = self._int(params, "startTime"), self._int(params, "endTime")
            rows = [r for r in self._funding[sym]
                    if (start is None or r[0] >= start) and (end is None or r[0] <= end)]
            rows = rows[:limit] if start is not None else rows[-limit:]
            return [{"symbol": sym, "fundingTime": t, "fundingRate": rate, "markPrice": mark}
                    for t, rate, mark in rows]
        return super()._endpoint(endpoint, params, micro)


class FuturesExchangeThread(ExchangeThread):
    """:class:`FuturesExchange` on a background event loop, for synchronous code."""

    EXCHANGE = FuturesExchange

    @property
    def legacy_ws_url(self) -> str:
        ex = self._ex()
        assert isinstance(ex, FuturesExchange)  # EXCHANGE above
        return ex.legacy_ws_url

    def aggs(self, symbol: str) -> pd.DataFrame:
        return self.call(FuturesExchange.aggs, symbol)

    def funding(self, symbol: str) -> pd.DataFrame:
        return self.call(FuturesExchange.funding, symbol)
