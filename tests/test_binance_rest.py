"""BinanceRest against a tiny in-test HTTP server on 127.0.0.1 (no internet)."""

from __future__ import annotations

import asyncio
import csv
import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from quantlab.binance.protocol import AggTrade
from quantlab.binance.rest import (
    BinanceRest,
    FirewallBlocked,
    RateLimitBanned,
    RestError,
    RestrictedLocation,
)
from quantlab.errors import QuantlabError, UnknownSymbolError
from quantlab.recorder.backfill import fetch_gap
from quantlab.timestamps import NAT_NS

TRADES_CSV = "BTCUSDT-spot-trades-2024-08-08T2354_2024-08-09T0005.csv"


class MiniHTTP:
    """HTTP/1.1 keep-alive server; ``handler(path, query) -> (status, headers, body)``."""

    def __init__(self, handler):
        self.handler = handler
        self.requests: list[tuple[str, dict]] = []
        self.connections = 0
        self.server = None

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()

    async def _client(self, reader, writer):
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                target = head.split(b" ", 2)[1].decode()
                parts = urlsplit(target)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                self.requests.append((parts.path, query))
                status, headers, body = self.handler(parts.path, query)
                if not isinstance(body, bytes):
                    body = json.dumps(body).encode()
                lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}",
                         "Content-Type: application/json"] + [f"{k}: {v}" for k, v in headers.items()]
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _official_rows(real_data):
    with open(real_data / "trades" / TRADES_CSV) as f:
        return [{"id": int(r[0]), "price": r[1], "qty": r[2], "quoteQty": r[3], "time": int(r[4]),
                 "isBuyerMaker": r[5] == "True", "isBestMatch": r[6] == "True"} for r in csv.reader(f)]


def historical_handler(rows, weight_per_call=25):
    """Serves /api/v3/historicalTrades like Binance (fromId, limit <= 1000), with weights."""
    by_id = {r["id"]: i for i, r in enumerate(rows)}
    used = [0]

    def handler(path, q):
        assert path == "/api/v3/historicalTrades", path
        assert q["symbol"] == "BTCUSDT"
        limit = int(q.get("limit", 500))
        assert 1 <= limit <= 1000
        start = int(q["fromId"])
        i = by_id.get(start)
        if i is None:  # first id at or after fromId
            i = next((k for k, r in enumerate(rows) if r["id"] >= start), len(rows))
        used[0] += weight_per_call
        return 200, {"X-MBX-USED-WEIGHT-1M": str(used[0])}, rows[i:i + limit]

    return handler


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


class FakeTime:
    """Injectable clock/sleep: sleeping advances the clock instantly."""

    def __init__(self, start=1_700_000_030.0):
        self.now = start
        self.sleeps: list[float] = []

    def clock(self):
        return self.now

    async def sleep(self, s):
        self.sleeps.append(s)
        self.now += s
        await asyncio.sleep(0)


def test_fetch_trade_range_pages_the_real_trades(real_data):
    rows = _official_rows(real_data)

    async def main():
        async with MiniHTTP(historical_handler(rows)) as srv:
            async with BinanceRest(srv.url) as rest:
                first, last = rows[0]["id"], rows[-1]["id"]
                trades = await rest.fetch_trade_range("btcusdt", first, last)
                part = await rest.fetch_trade_range("BTCUSDT", first + 1500, first + 2600)
            return srv, trades, part

    srv, trades, part = run(main())
    assert len(trades) == 19_904 and [t.trade_id for t in trades] == [r["id"] for r in rows]
    for t, r in zip(trades, rows, strict=True):
        assert (t.price, t.qty, t.is_buyer_maker) == (float(r["price"]), float(r["qty"]), r["isBuyerMaker"])
        assert t.time_ns == r["time"] * 1_000_000 and t.event_time_ns == NAT_NS
        assert t.symbol == "BTCUSDT"
    assert [t.trade_id for t in part] == list(range(rows[0]["id"] + 1500, rows[0]["id"] + 2601))
    pages = [q for p, q in srv.requests]
    assert len(pages) == 20 + 2  # 19,904 in pages of 1000, then 1000 + 101
    assert pages[-1]["limit"] == "101"  # never asks past last_id
    assert srv.connections == 1  # one kept-alive connection


def test_range_with_ids_missing_on_the_exchange(real_data):
    rows = _official_rows(real_data)[:3000]
    holey = rows[:1200] + rows[1300:]  # the exchange lacks 100 ids

    async def main():
        async with MiniHTTP(historical_handler(holey)) as srv:
            async with BinanceRest(srv.url) as rest:
                got = await rest.fetch_trade_range("BTCUSDT", rows[0]["id"], rows[-1]["id"] + 500)
            return got, srv.requests

    got, requests = run(main())
    assert [t.trade_id for t in got] == [r["id"] for r in holey]  # sorted, nothing invented
    assert len(requests) <= 5  # stops at the empty page past the end


def test_429_honours_retry_after_measured():
    calls = []

    def handler(path, q):
        calls.append(time.monotonic())
        if len(calls) == 1:
            return 429, {"Retry-After": "1"}, {"code": -1003, "msg": "Too many requests"}
        return 200, {}, [{"a": 1, "p": "1.5", "q": "2", "f": 10, "l": 12, "T": 1723161255342, "m": True, "M": True}]

    async def main():
        async with MiniHTTP(handler) as srv:
            async with BinanceRest(srv.url) as rest:
                got = await rest.agg_trades("ETHUSDT", 1, 10)
                return got, rest.counters

    got, counters = run(main())
    assert got == [AggTrade("ETHUSDT", 1, 1.5, 2.0, 10, 12, True, 1723161255342 * 10**6,
                            NAT_NS, got[0].recv_ns)]
    assert calls[1] - calls[0] >= 1.0  # waited the full Retry-After
    assert counters["http_429"] == 1 and counters["retries"] == 1


def test_418_stops_and_raises_banned():
    def handler(path, q):
        return 418, {"Retry-After": "300"}, {"code": -1003, "msg": "Way too many requests; IP banned"}

    async def main():
        async with MiniHTTP(handler) as srv:
            async with BinanceRest(srv.url) as rest:
                with pytest.raises(RateLimitBanned) as info:
                    await rest.fetch_trade_range("BTCUSDT", 1, 5000)
            return info.value, len(srv.requests)

    err, n = run(main())
    assert isinstance(err, QuantlabError) and err.retry_after_s == 300.0
    assert "418" in str(err) and "banned" in str(err)
    assert n == 1  # nothing more was sent


def test_used_weight_header_makes_it_wait_for_the_next_minute():
    fake = FakeTime(start=1_700_000_010.0)  # 30 s into a minute

    def handler(path, q):
        return 200, {"X-MBX-USED-WEIGHT-1M": "4990"}, []

    async def main():
        async with MiniHTTP(handler) as srv:
            async with BinanceRest(srv.url, max_weight_per_min=5000, sleep=fake.sleep, clock=fake.clock) as rest:
                await rest.historical_trades("BTCUSDT", 1)  # server says 4990 used
                assert rest.used_weight == 4990
                await rest.historical_trades("BTCUSDT", 2)  # 4990 + 25 > 5000: wait
                return rest.counters

    counters = run(main())
    assert len(fake.sleeps) == 1 and 30.0 <= fake.sleeps[0] <= 30.2
    assert counters["weight_waits"] == 1


def test_exchange_info_names_unknown_symbols():
    listed = {"BTCUSDT", "ETHUSDT"}

    def handler(path, q):
        assert path == "/api/v3/exchangeInfo"
        wanted = json.loads(q["symbols"]) if "symbols" in q else [q["symbol"]]
        if any(s not in listed for s in wanted):
            return 400, {}, {"code": -1121, "msg": "Invalid symbol."}
        return 200, {}, {"timezone": "UTC", "symbols": [{"symbol": s, "status": "TRADING", "extra": 1} for s in wanted]}

    async def main():
        async with MiniHTTP(handler) as srv:
            async with BinanceRest(srv.url) as rest:
                ok = await rest.exchange_info(["btcusdt", "ETHUSDT"])
                with pytest.raises(UnknownSymbolError) as info:
                    await rest.exchange_info(["BTCUSDT", "FOOBAR", "BTCUSDX"])
            return ok, info.value

    ok, err = run(main())
    assert list(ok) == ["BTCUSDT", "ETHUSDT"] and ok["BTCUSDT"]["status"] == "TRADING"
    assert "FOOBAR" in str(err) and "BTCUSDX" in str(err) and "BTCUSDT," not in str(err)


def test_unreachable_endpoint_retries_with_backoff_then_fails_clearly():
    fake = FakeTime()

    async def main():
        srv = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        srv.close()
        await srv.wait_closed()  # nothing listens there now
        async with BinanceRest(f"http://127.0.0.1:{port}", max_retries=3, sleep=fake.sleep,
                               clock=fake.clock, timeout_s=2) as rest:
            with pytest.raises(RestError) as info:
                await rest.historical_trades("BTCUSDT", 1)
            return info.value

    err = run(main())
    assert "unreachable" in str(err) and "4 attempts" in str(err)
    assert len(fake.sleeps) == 3 and all(s > 0 for s in fake.sleeps)
    assert fake.sleeps[2] > fake.sleeps[0]  # exponential, not a busy loop


def test_5xx_is_retried_and_4xx_is_not():
    seq = iter([(503, {}, b"busy"), (200, {}, [])])

    async def main():
        async with MiniHTTP(lambda p, q: next(seq)) as srv:
            async with BinanceRest(srv.url, backoff=lambda: iter([0.01] * 10)) as rest:
                assert await rest.historical_trades("BTCUSDT", 1) == []
        async with MiniHTTP(lambda p, q: (400, {}, {"code": -1100, "msg": "Illegal characters"})) as srv:
            async with BinanceRest(srv.url) as rest:
                with pytest.raises(RestError, match="-1100") as info:
                    await rest.historical_trades("BTCUSDT", 1)
            return info.value, len(srv.requests)

    err, n = run(main())
    assert err.status == 400 and err.code == -1100 and n == 1


def test_bad_arguments():
    with pytest.raises(ValueError, match="rest_url"):
        BinanceRest("ftp://api.binance.com")
    with pytest.raises(ValueError, match="rest_url"):
        BinanceRest("api.binance.com")

    async def main():
        async with BinanceRest("http://127.0.0.1:9") as rest:
            for call, match in [
                (rest.historical_trades("BTCUSDT", 1, limit=0), "limit"),
                (rest.historical_trades("BTCUSDT", 1, limit=1001), "limit"),
                (rest.historical_trades("BTCUSDT", -1), "from_id"),
                (rest.historical_trades("BTC/USDT", 1), "symbol"),
                (rest.fetch_trade_range("BTCUSDT", 10, 5), "last_id"),
                (rest.exchange_info([]), "symbols"),
            ]:
                with pytest.raises(ValueError, match=match):
                    await call

    run(main())


# --------------------------------------------------------------------------- when Binance says no


def test_a_ban_is_remembered_and_nothing_is_sent_until_it_ends():
    fake = FakeTime()
    banned_until_ms = int((fake.now + 90) * 1000)

    def handler(path, q):
        if len(srv.requests) == 1:  # no Retry-After: the end is read from Binance's message
            return 418, {}, {"code": -1003, "msg": f"Way too many requests; IP(1.2.3.4) banned until {banned_until_ms}."}
        return 200, {}, []

    async def main():
        global srv
        async with MiniHTTP(handler) as srv:
            async with BinanceRest(srv.url, sleep=fake.sleep, clock=fake.clock) as rest:
                with pytest.raises(RateLimitBanned):
                    await rest.historical_trades("BTCUSDT", 1)
                # two callers at once, and later ones: none of them may reach the server
                results = await asyncio.gather(rest.historical_trades("BTCUSDT", 2), rest.recent_trades("BTCUSDT"),
                                               return_exceptions=True)
                fake.now += 60
                with pytest.raises(RateLimitBanned) as late:
                    await rest.exchange_info("BTCUSDT")
                sent_during = len(srv.requests)
                assert rest.banned and 29 <= rest.pause_left() <= 31
                fake.now += 31  # the ban is over
                assert await rest.historical_trades("BTCUSDT", 3) == []
                return results, late.value, sent_during, len(srv.requests), rest.counters

    results, late, sent_during, sent_after, counters = run(main())
    assert all(isinstance(r, RateLimitBanned) for r in results)
    assert "banned this IP until" in str(late) and late.until == pytest.approx(banned_until_ms / 1000)
    assert sent_during == 1 and sent_after == 2
    assert counters["withheld"] == 3 and counters["http_418"] == 1


def test_firewall_403_backs_off_long_doubling_then_retries():
    fake = FakeTime()
    waf = b"<HTML><HEAD><TITLE>ERROR: The request could not be satisfied</TITLE></HEAD></HTML>"

    def handler(path, q):
        return (403, {}, waf) if len(srv.requests) <= 2 else (200, {}, [])

    async def main():
        global srv
        async with MiniHTTP(handler) as srv:
            async with BinanceRest(srv.url, sleep=fake.sleep, clock=fake.clock, waf_pause_s=300) as rest:
                with pytest.raises(FirewallBlocked) as first:
                    await rest.historical_trades("BTCUSDT", 1)
                assert rest.pause_left() == pytest.approx(300)
                with pytest.raises(FirewallBlocked):
                    await rest.historical_trades("BTCUSDT", 1)  # withheld, not sent
                fake.now += 300
                with pytest.raises(FirewallBlocked):
                    await rest.historical_trades("BTCUSDT", 1)  # 403 again: twice as long
                second = rest.pause_left()
                fake.now += second
                got = await rest.historical_trades("BTCUSDT", 1)
                return first.value, second, got, len(srv.requests)

    first, second, got, n = run(main())
    assert first.status == 403 and "firewall" in str(first)
    assert second == pytest.approx(600) and got == [] and n == 3


def test_restricted_location_451_is_fatal_and_not_retried():
    def handler(path, q):
        return 451, {}, {"code": 0, "msg": "Service unavailable from a restricted location according to "
                                           "'b. Eligibility' in https://www.binance.com/en/terms."}

    async def main():
        async with MiniHTTP(handler) as srv:
            async with BinanceRest(srv.url) as rest:
                with pytest.raises(RestrictedLocation) as info:
                    await rest.exchange_info("BTCUSDT")
            return info.value, len(srv.requests)

    err, n = run(main())
    assert n == 1 and isinstance(err, QuantlabError) and "451" in str(err) and "restricted location" in str(err)


def test_market_data_host_is_known_not_to_serve_history_without_asking():
    async def main():
        async with BinanceRest("https://data-api.binance.vision") as rest:
            return await rest.serves_history("BTCUSDT"), rest.counters["requests"]

    assert run(main()) == (False, 0)


def _rows_by_id(ids, t0=1723161255342):
    return [{"id": i, "price": "61837.63", "qty": "0.02", "quoteQty": "1236.75", "time": t0 + i,
             "isBuyerMaker": bool(i % 2), "isBestMatch": True} for i in ids]


def test_fetch_gap_tells_gone_from_not_yet_served():
    # the history database lacks 105..109 but served 110.. (proof 1: gone), and has nothing
    # after 150 yet (lag); memory holds the last 1000 trades 1100..2099, so 151..1099 stay
    # pending and 1100..1200 come from memory.
    history = _rows_by_id([*range(100, 105), *range(110, 151)])
    memory = _rows_by_id(range(1100, 2100))

    def handler(path, q):
        if path == "/api/v3/trades":
            return 200, {}, memory
        start, limit = int(q["fromId"]), int(q["limit"])
        return 200, {}, [r for r in history if r["id"] >= start][:limit]

    async def main():
        async with MiniHTTP(handler) as srv:
            async with BinanceRest(srv.url) as rest:
                return await fetch_gap(rest, "BTCUSDT", 100, 1200, head_id=2099)

    fill = run(main())
    assert fill.gone == [(105, 109)]
    assert fill.pending == [(151, 1099)]
    assert [t.trade_id for t in fill.trades] == [*range(100, 105), *range(110, 151), *range(1100, 1201)]
    assert fill.is_gone((105, 109)) and not fill.is_gone((151, 1099)) and not fill.complete


def test_fetch_gap_memory_proves_a_hole_near_the_head():
    memory = _rows_by_id([*range(5000, 5010), *range(5012, 5990)])  # 5010, 5011 never made it

    def handler(path, q):
        return 200, {}, (memory if path == "/api/v3/trades" else [])  # database lags: empty

    async def main():
        async with MiniHTTP(handler) as srv:
            async with BinanceRest(srv.url) as rest:
                return await fetch_gap(rest, "BTCUSDT", 5005, 5020)

    fill = run(main())
    assert fill.gone == [(5010, 5011)] and fill.pending == []
    assert len(fill.trades) == 14
