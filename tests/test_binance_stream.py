"""BinanceStream against tiny in-test ``websockets`` servers on 127.0.0.1 (no internet).

These are about the socket: pings answered, real cuts, refused upgrades, silent feeds, a second
connection opened and the old one closed, control frames timed on both sides of the wire. The
decisions themselves (de-duplication, handover, reply matching, reconciliation, liveness,
delays) are tested without sockets in test_binance_session.py.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time

import pytest
from websockets.asyncio.server import serve

from quantlab.binance.backoff import backoff_delays
from quantlab.binance.protocol import ErrorFrame, ServerShutdown, Trade
from quantlab.binance.stream import (
    BinanceStream,
    Connected,
    ControlError,
    Disconnected,
    StreamError,
)
from quantlab.errors import UnknownSymbolError

FAST = functools.partial(backoff_delays, initial_s=0.05, factor=2.0, cap_s=0.4, jitter=0.0)
LISTED = {"BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT",
          "TRXUSDT", "LTCUSDT", "DOTUSDT", "AVAXUSDT"}


def trade_frame(symbol: str, tid: int) -> str:
    ms = 1_723_161_255_000 + tid
    return json.dumps({"stream": f"{symbol.lower()}@trade", "data": {
        "e": "trade", "E": ms + 1, "s": symbol, "t": tid, "p": f"{100 + tid % 7}.50000000",
        "q": "0.01000000", "T": ms, "m": tid % 2 == 0, "M": True}})


class Exchange:
    """``websockets.serve`` on port 0. ``behaviour(ws, n)`` runs each WebSocket connection
    (n counts from 1); ``/api/v3/exchangeInfo`` is answered over plain HTTP."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.connections = 0
        self.paths: list[str] = []
        self.rest_requests: list[str] = []
        self.control: list[tuple[float, dict]] = []  # (monotonic receive time, frame)

    async def __aenter__(self):
        self.server = await serve(self._handler, "127.0.0.1", 0, process_request=self._http,
                                  ping_interval=None, compression=None)
        port = self.server.sockets[0].getsockname()[1]
        self.ws_url = f"ws://127.0.0.1:{port}"
        self.rest_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()

    def _http(self, connection, request):
        if request.path.startswith("/api/"):
            self.rest_requests.append(request.path)
            from urllib.parse import parse_qs, urlsplit

            q = {k: v[0] for k, v in parse_qs(urlsplit(request.path).query).items()}
            wanted = json.loads(q["symbols"]) if "symbols" in q else [q.get("symbol")]
            if any(s not in LISTED for s in wanted):
                resp = connection.respond(400, json.dumps({"code": -1121, "msg": "Invalid symbol."}))
            else:
                resp = connection.respond(200, json.dumps({"symbols": [{"symbol": s, "status": "TRADING"} for s in wanted]}))
            resp.headers["X-MBX-USED-WEIGHT-1M"] = "20"
            return resp
        if not request.path.startswith("/stream?streams="):
            return connection.respond(404, "Not Found")
        return None

    async def _handler(self, ws):
        self.connections += 1
        self.paths.append(ws.request.path)
        await self.behaviour(ws, self.connections)

    async def answer_control(self, ws):
        """Reply to control frames like Binance; keep the connection open."""
        subs = set(ws.request.path.split("=", 1)[1].split("&")[0].split("/"))
        async for msg in ws:
            frame = json.loads(msg)
            self.control.append((time.monotonic(), frame))
            if frame.get("params") and any("bad" in p for p in frame["params"]):
                await ws.send(json.dumps({"error": {"code": 2, "msg": "Invalid request: bad stream"}, "id": frame["id"]}))
            elif frame["method"] == "SUBSCRIBE":
                subs.update(frame["params"])
                await ws.send(json.dumps({"result": None, "id": frame["id"]}))
            elif frame["method"] == "UNSUBSCRIBE":
                subs.difference_update(frame["params"])
                await ws.send(json.dumps({"result": None, "id": frame["id"]}))
            elif frame["method"] == "LIST_SUBSCRIPTIONS":
                await ws.send(json.dumps({"result": sorted(subs), "id": frame["id"]}))


async def collect(stream, until, timeout=10.0):
    """Events from ``stream`` until ``until(events)`` is true."""
    events = []

    async def loop():
        async for ev in stream:
            events.append(ev)
            if until(events):
                return

    await asyncio.wait_for(loop(), timeout)
    return events


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def trades(events):
    return [e for e in events if isinstance(e, Trade)]


def test_pings_answered_with_payload_and_trades_delivered():
    pongs = []

    async def behaviour(ws, n):
        waiter = await ws.ping(b"hb-\x00\x01-payload")  # resolves only on a pong echoing it
        pongs.append(await asyncio.wait_for(waiter, 2))
        for tid in range(1, 6):
            await ws.send(trade_frame("BTCUSDT", tid))
        await ws.wait_closed()

    async def main():
        async with Exchange(behaviour) as ex:
            # this fake server sends ms frames: time_unit=None (no timeUnit on the URL)
            async with BinanceStream(ex.ws_url, ["btcusdt"], rest_url=ex.rest_url, time_unit=None) as stream:
                events = await collect(stream, lambda ev: len(trades(ev)) == 5)
                return ex, events, stream.counters

    ex, events, counters = run(main())
    assert isinstance(events[0], Connected) and events[0].attempt == 1
    assert events[0].url == ex.ws_url + "/stream?streams=btcusdt@trade"
    assert [t.trade_id for t in trades(events)] == [1, 2, 3, 4, 5]
    assert trades(events)[0].time_ns == (1_723_161_255_000 + 1) * 10**6
    assert len(pongs) == 1 and counters["pings"] == 1
    assert ex.paths == ["/stream?streams=btcusdt@trade"]
    assert any("exchangeInfo" in p for p in ex.rest_requests)  # validated before connecting


def test_reconnect_with_backoff_after_abrupt_cut_and_duplicates_dropped():
    cut_at = []

    async def behaviour(ws, n):
        if n == 1:
            for tid in range(1, 6):
                await ws.send(trade_frame("BTCUSDT", tid))
            await asyncio.sleep(0.05)
            cut_at.append(time.monotonic())
            ws.transport.abort()  # TCP cut, no close frame
            return
        for tid in range(3, 11):  # replays 3..5 after the reconnect
            await ws.send(trade_frame("BTCUSDT", tid))
        await ws.wait_closed()

    backoff = functools.partial(backoff_delays, initial_s=0.3, factor=2.0, cap_s=1.0, jitter=0.0)

    async def main():
        async with Exchange(behaviour) as ex:
            async with BinanceStream(ex.ws_url, ["BTCUSDT"], validate_symbols=False, backoff=backoff) as stream:
                events = []
                async def loop():
                    async for ev in stream:
                        events.append((time.monotonic(), ev))
                        if len(trades([e for _, e in events])) == 10:
                            return
                await asyncio.wait_for(loop(), 10)
                return events, stream.counters

    stamped, counters = run(main())
    events = [e for _, e in stamped]
    assert [t.trade_id for t in trades(events)] == list(range(1, 11))  # each id once, in order
    kinds = [type(e).__name__ for e in events if not isinstance(e, Trade)]
    assert kinds == ["Connected", "Disconnected", "Connected"]
    disc = next(e for e in events if isinstance(e, Disconnected))
    assert "1006" in disc.reason and disc.retry_in_s == pytest.approx(0.3)
    reconnected_at = next(t for t, e in stamped if isinstance(e, Connected) and e.attempt == 2)
    assert reconnected_at - cut_at[0] >= 0.3  # waited the backoff delay
    assert counters["duplicates"] == 3 and counters["reconnects"] == 1 and counters["trades"] == 10


def test_watchdog_reconnects_a_silent_feed():
    async def behaviour(ws, n):
        if n == 1:
            await ws.send(trade_frame("BTCUSDT", 1))
            await ws.wait_closed()  # stalled: socket open, nothing sent
            return
        await ws.send(trade_frame("BTCUSDT", 2))
        await ws.wait_closed()

    async def main():
        async with Exchange(behaviour) as ex:
            async with BinanceStream(ex.ws_url, ["BTCUSDT"], validate_symbols=False, watchdog_s=0.4,
                                     backoff=FAST) as stream:
                stamped = []
                async def loop():
                    async for ev in stream:
                        stamped.append((time.monotonic(), ev))
                        if len(trades([e for _, e in stamped])) == 2:
                            return
                await asyncio.wait_for(loop(), 10)
                return stamped, stream.counters

    stamped, counters = run(main())
    t1 = next(t for t, e in stamped if isinstance(e, Trade))
    t_disc, disc = next((t, e) for t, e in stamped if isinstance(e, Disconnected))
    assert disc.reason == "no frame at all (not even a ping) for 0.4 s"
    assert 0.4 <= t_disc - t1 < 2.0
    assert counters["watchdog_timeouts"] == 1


class Market:
    """One trade sequence shared by every connection (like the exchange's matching engine):
    each new connection starts ``replay`` trades behind the head, so overlaps duplicate."""

    def __init__(self, symbol="BTCUSDT", every_s=0.004, replay=5, shutdown_on_first_after=None):
        self.symbol, self.every_s, self.replay = symbol, every_s, replay
        self.history: list[int] = []
        self.shutdown_after = shutdown_on_first_after
        self.task = None

    async def run(self):
        tid = 1000
        while True:
            self.history.append(tid)
            tid += 1
            await asyncio.sleep(self.every_s)

    async def behaviour(self, ws, n):
        cursor = max(0, len(self.history) - self.replay)
        started = time.monotonic()
        sent_shutdown = False
        try:
            while True:
                head = len(self.history)
                for i in range(cursor, head):
                    await ws.send(trade_frame(self.symbol, self.history[i]))
                cursor = head
                if (n == 1 and self.shutdown_after is not None and not sent_shutdown
                        and time.monotonic() - started > self.shutdown_after):
                    await ws.send('{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}')
                    sent_shutdown = True
                await asyncio.sleep(self.every_s)
        except Exception:
            return


def _rotation_run(market, rotations=2, **kwargs):
    async def main():
        market.task = asyncio.create_task(market.run())
        try:
            async with Exchange(market.behaviour) as ex:
                async with BinanceStream(ex.ws_url, ["BTCUSDT"], validate_symbols=False, backoff=FAST,
                                         **kwargs) as stream:
                    events = await collect(
                        stream, lambda ev: sum(isinstance(e, Connected) and e.rotation for e in ev) >= rotations
                        and len(trades(ev)) > 400, timeout=15)
                    return events, stream.counters, ex.connections
        finally:
            market.task.cancel()

    return run(main())


def test_server_shutdown_rotates_without_a_gap():
    # no timed rotation: the notice alone must open the new connection, at once
    events, counters, _ = _rotation_run(Market(shutdown_on_first_after=0.3), rotations=1,
                                        rotate_after_s=3600, handover_s=(0.1, 2.0))
    ids = [t.trade_id for t in trades(events)]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert any(isinstance(e, ServerShutdown) for e in events)
    assert counters["server_shutdowns"] == 1 and counters["rotations"] == 1
    assert not any(isinstance(e, Disconnected) for e in events)


def test_control_frames_strict_sliding_window_and_runtime_subscriptions():
    ex_ref = []

    async def behaviour(ws, n):
        await ex_ref[0].answer_control(ws)

    new_symbols = ["ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "TRXUSDT"]

    async def main():
        async with Exchange(behaviour) as ex:
            ex_ref.append(ex)
            async with BinanceStream(ex.ws_url, ["BTCUSDT"], rest_url=ex.rest_url) as stream:
                await collect(stream, lambda ev: isinstance(ev[-1], Connected))
                t0 = time.monotonic()
                results = await asyncio.gather(*(stream.subscribe([s]) for s in new_symbols))
                listed = await stream.list_subscriptions()
                elapsed = time.monotonic() - t0
                await stream.unsubscribe("TRXUSDT")
                with pytest.raises(UnknownSymbolError, match="NOPEUSDT"):
                    await stream.subscribe(["NOPEUSDT"])
                return ex, stream, results, listed, elapsed

    ex, stream, results, listed, elapsed = run(main())
    assert results == [None] * 7
    assert listed == sorted(["btcusdt@trade"] + [s.lower() + "@trade" for s in new_symbols])
    server_times = [t for t, _ in ex.control]
    sent = list(stream.control_sent_at)
    assert len(server_times) == len(sent) == 9
    # measured: never 5 frames within one second, on either side of the socket
    for i in range(len(sent) - 4):
        assert sent[i + 4] - sent[i] >= 1.0
        assert server_times[i + 4] - server_times[i] >= 0.98  # loopback jitter allowance
    assert elapsed >= 1.0  # frames 5..8 had to wait
    assert stream.counters["control_frames_sent"] == 9
    assert stream.symbols == ["BTCUSDT"] + [s for s in new_symbols if s != "TRXUSDT"]
    assert ex.control[-1][1] == {"method": "UNSUBSCRIBE", "params": ["trxusdt@trade"], "id": 9}


def test_control_error_reaches_the_awaiting_caller():
    ex_ref = []

    async def behaviour(ws, n):
        await ex_ref[0].answer_control(ws)

    async def main():
        async with Exchange(behaviour) as ex:
            ex_ref.append(ex)
            async with BinanceStream(ex.ws_url, ["BTCUSDT"], validate_symbols=False, kinds=("trade", "bad")) as stream:
                await collect(stream, lambda ev: isinstance(ev[-1], Connected))
                with pytest.raises(ControlError, match="bad stream"):
                    await stream.subscribe(["ETHUSDT"])
                events = await collect(stream, lambda ev: isinstance(ev[-1], ErrorFrame))
                return events

    events = run(main())
    assert events[-1] == ErrorFrame(2, "Invalid request: bad stream", 1)


def test_unknown_symbol_refused_before_connecting():
    async def behaviour(ws, n):
        await ws.wait_closed()

    async def main():
        async with Exchange(behaviour) as ex:
            stream = BinanceStream(ex.ws_url, ["BTCUSDT", "NOPEUSDT", "ETHUSDX"], rest_url=ex.rest_url)
            with pytest.raises(UnknownSymbolError) as info:
                async with stream:
                    pass
            return info.value, ex.connections

    err, connections = run(main())
    assert str(err).startswith("unknown symbols NOPEUSDT, ETHUSDX: not listed by " + "http://127.0.0.1")
    assert connections == 0


def test_unreachable_endpoint_retries_with_growing_delays_then_gives_up():
    async def main():
        srv = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        srv.close()
        await srv.wait_closed()
        stream = BinanceStream(f"ws://127.0.0.1:{port}", ["BTCUSDT"], validate_symbols=False,
                               backoff=functools.partial(backoff_delays, 0.1, 2.0, 1.0, jitter=0.0),
                               max_attempts=4)
        stamped = []
        t0 = time.monotonic()
        with pytest.raises(StreamError) as info:
            async for ev in stream:
                stamped.append((time.monotonic() - t0, ev))
        await stream.aclose()
        return stamped, info.value, stream.counters, time.monotonic() - t0

    stamped, err, counters, total = run(main())
    discs = [e for _, e in stamped]
    assert all(isinstance(e, Disconnected) for e in discs) and len(discs) == 3
    assert [d.retry_in_s for d in discs] == [0.1, 0.2, 0.4]
    assert "cannot connect to ws://127.0.0.1" in discs[0].reason and "refused" in discs[0].reason.lower()
    assert "gave up after 4 attempts" in str(err)
    assert counters["connect_failures"] == 4
    assert total >= 0.7  # slept 0.1 + 0.2 + 0.4: no busy loop


def test_fatal_failures_stop_at_once():
    async def close_1003(ws, n):
        await ws.close(code=1003, reason="unsupported data")

    async def main():
        out = []
        async with Exchange(close_1003) as ex:
            # a path the server refuses (HTTP 404) is fatal: no retry
            stream = BinanceStream(ex.ws_url + "/nope", ["BTCUSDT"], validate_symbols=False, backoff=FAST)
            with pytest.raises(StreamError, match="HTTP 404") as info:
                async for _ in stream:
                    pass
            out.append((info.value, stream.counters["connect_failures"]))
            # close code 1003 is fatal too
            stream = BinanceStream(ex.ws_url, ["BTCUSDT"], validate_symbols=False, backoff=FAST)
            with pytest.raises(StreamError, match="1003") as info:
                async for _ in stream:
                    pass
            out.append((info.value, ex.connections))
        return out

    (e404, fails), (e1003, conns) = run(main())
    assert fails == 1 and "fatal" in str(e404) and conns == 1


def test_bad_arguments():
    with pytest.raises(ValueError, match="ws_url"):
        BinanceStream("https://stream.binance.com:9443", ["BTCUSDT"])
    with pytest.raises(ValueError, match="ws_url.*notaport"):
        BinanceStream("ws://127.0.0.1:notaport", ["BTCUSDT"])  # refused before any I/O
    with pytest.raises(ValueError, match="symbols"):
        BinanceStream("wss://stream.binance.com:9443", [])
    with pytest.raises(ValueError, match="symbols"):
        BinanceStream("wss://stream.binance.com:9443", ["BTC-USDT"])
    with pytest.raises(ValueError, match="watchdog_s"):
        BinanceStream("wss://stream.binance.com:9443", ["BTCUSDT"], watchdog_s=0)
    with pytest.raises(ValueError, match="max_attempts"):
        BinanceStream("wss://stream.binance.com:9443", ["BTCUSDT"], max_attempts=0)


def test_upgrade_refused_with_429_waits_retry_after():
    async def behaviour(ws, n):
        await ws.send(trade_frame("BTCUSDT", 1))
        await ws.wait_closed()

    class Busy(Exchange):
        refused = 0

        def _http(self, connection, request):
            if request.path.startswith("/stream") and self.refused == 0:
                self.refused += 1
                resp = connection.respond(429, "Too many connection attempts")
                resp.headers["Retry-After"] = "0.5"
                return resp
            return super()._http(connection, request)

    async def main():
        async with Busy(behaviour) as ex:
            async with BinanceStream(ex.ws_url, ["BTCUSDT"], validate_symbols=False, backoff=FAST) as stream:
                t0 = time.monotonic()
                events = await collect(stream, lambda ev: len(trades(ev)) == 1)
                return events, time.monotonic() - t0

    events, elapsed = run(main())
    disc = events[0]
    assert isinstance(disc, Disconnected) and "HTTP 429" in disc.reason
    assert disc.retry_in_s == 0.5 and elapsed >= 0.5  # Retry-After beats the 0.05 s backoff
    assert isinstance(events[1], Connected) and events[1].attempt == 2


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_interrupts_propagate_instead_of_becoming_stream_errors(interrupt):
    """Ctrl-C (or an exit) arriving while the stream picks its next reconnect delay stops the
    program: it is not turned into a StreamError the caller would log and retry."""
    def backoff():
        raise interrupt()
        yield 0.1  # pragma: no cover - a generator that interrupts on its first delay

    async def main():
        srv = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        srv.close()
        await srv.wait_closed()
        async with BinanceStream(f"ws://127.0.0.1:{port}", ["BTCUSDT"], validate_symbols=False,
                                 backoff=backoff) as stream:
            async for _ in stream:
                pass

    with pytest.raises(interrupt):
        asyncio.run(asyncio.wait_for(main(), 10))


def test_cancelling_the_consumer_propagates_cancelled_error():
    async def behaviour(ws, n):
        await ws.send(trade_frame("BTCUSDT", 1))
        await ws.wait_closed()

    async def main():
        async with Exchange(behaviour) as ex:
            stream = BinanceStream(ex.ws_url, ["BTCUSDT"], validate_symbols=False, time_unit=None)
            got = []

            async def consume():
                async for ev in stream:
                    got.append(ev)

            task = asyncio.create_task(consume())
            while not trades(got):
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await stream.aclose()
            return got

    assert [t.trade_id for t in trades(run(main()))] == [1]


def test_a_failure_inside_the_shell_ends_the_iteration_with_stream_error():
    """A bug in a helper task (here the session refusing a connection it asked for) stops
    the stream with a StreamError naming it, instead of leaving the consumer waiting."""
    async def behaviour(ws, n):
        await ws.wait_closed()

    async def main():
        async with Exchange(behaviour) as ex:
            stream = BinanceStream(ex.ws_url, ["BTCUSDT"], validate_symbols=False)

            def broken(link, now):
                raise RuntimeError("session bug")

            stream._session.connected = broken
            with pytest.raises(StreamError, match="RuntimeError: session bug"):
                async for _ in stream:
                    pass
            await stream.aclose()
            return ex.connections

    assert run(main()) == 1
