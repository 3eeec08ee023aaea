"""The exchange simulator over real loopback sockets, with a bare ``websockets`` client and urllib.

Budget: about 15 s (the replay of the spot captures at x200 takes ~3.5 s).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from quantlab.sim import Exchange, ExchangeThread, Replay, Synthetic
from quantlab.sim.sources import format_scaled


def run(coro, timeout: float = 30.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def _get_sync(url: str, headers: dict | None = None) -> tuple[int, dict, object]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"null")


async def get(url: str, headers: dict | None = None) -> tuple[int, dict, object]:
    return await asyncio.get_running_loop().run_in_executor(None, _get_sync, url, headers)


async def recv_json(ws, timeout: float = 5.0):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_until(ws, pred, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while True:
        msg = await recv_json(ws, max(0.01, deadline - time.monotonic()))
        if pred(msg):
            return msg


def _csv(real_data: Path, sym: str) -> list[list[str]]:
    path = next((real_data / "trades").glob(f"{sym}-spot-trades-*.csv"))
    return [line.split(",") for line in path.read_text().splitlines() if line]


# --------------------------------------------------------------------------- replay


def test_replay_through_websocket_and_rest_equals_the_official_csv(real_data: Path):
    speed = 200.0
    src = Replay.from_paths(real_data / "binance_ws" / "spot", speed=speed)
    expected = {"BTCUSDT": _csv(real_data, "BTCUSDT"), "ETHUSDT": _csv(real_data, "ETHUSDT")}

    async def scenario():
        got: dict[str, list[dict]] = {"BTCUSDT": [], "ETHUSDT": []}
        async with Exchange(src) as ex:
            url = ex.ws_url + "/stream?streams=btcusdt@trade/ethusdt@trade"
            async with websockets.connect(url, max_size=None) as ws:
                while sum(map(len, got.values())) < 19_904 + 14_515:
                    msg = await recv_json(ws, 10)
                    assert msg["stream"] == msg["data"]["s"].lower() + "@trade"
                    got[msg["data"]["s"]].append(msg["data"])
            # REST: page through historicalTrades from the first id, 1000 at a time
            paged: dict[str, list[dict]] = {}
            for sym, rows in expected.items():
                out: list[dict] = []
                next_id = int(rows[0][0])
                while True:
                    status, headers, page = await get(
                        f"{ex.rest_url}/api/v3/historicalTrades?symbol={sym}&fromId={next_id}&limit=1000")
                    assert status == 200 and int(headers["X-MBX-USED-WEIGHT-1M"]) >= 25
                    if not page:
                        break
                    assert len(page) <= 1000
                    out.extend(page)
                    next_id = page[-1]["id"] + 1
                paged[sym] = out
            counters = ex.counters
        return got, paged, counters

    got, paged, counters = run(scenario(), 60)
    assert counters["trades_made"] == counters["messages_sent"] == 19_904 + 14_515
    for sym, rows in expected.items():
        frames = got[sym]
        assert [d["t"] for d in frames] == [int(r[0]) for r in rows]
        assert [d["p"] for d in frames] == [r[1] for r in rows]  # exact decimal strings
        assert [d["q"] for d in frames] == [r[2] for r in rows]
        assert [d["m"] for d in frames] == [r[5] == "True" for r in rows]
        t_sim = np.array([d["T"] for d in frames])
        t_csv = np.array([int(r[4]) for r in rows])
        assert np.all(np.diff(t_sim) >= 0)
        assert np.all(np.array([d["E"] for d in frames]) >= t_sim)
        assert abs(t_sim[0] / 1000 - time.time()) < 120  # shifted to now
        rel_sim = t_sim - t_sim[0]
        rel_csv = (t_csv - t_csv[0]) / speed
        assert np.max(np.abs(rel_sim - rel_csv)) <= 2  # ms
        # REST pages give the same trades, with quoteQty = price * qty rounded to 8 dp
        assert [p["id"] for p in paged[sym]] == [int(r[0]) for r in rows]
        assert [p["price"] for p in paged[sym]] == [r[1] for r in rows]
        assert [p["qty"] for p in paged[sym]] == [r[2] for r in rows]
        assert [p["quoteQty"] for p in paged[sym]] == [r[3] for r in rows]
        assert [p["isBuyerMaker"] for p in paged[sym]] == [r[5] == "True" for r in rows]


# --------------------------------------------------------------------------- streams and control


def test_raw_streams_microseconds_and_control_messages():
    async def scenario():
        async with Exchange(Synthetic(rate=400, seed=1), error_style="nested", control_rate_limit=None) as ex:
            async with websockets.connect(ex.ws_url + "/ws/ethusdt@trade?timeUnit=MICROSECOND") as ws:
                d = await recv_json(ws)
                assert d["e"] == "trade" and d["s"] == "ETHUSDT" and "stream" not in d
                assert d["T"] > 10**15 and d["E"] >= d["T"]  # microseconds
                assert isinstance(d["p"], str) and len(d["p"].split(".")[1]) == 8
            async with websockets.connect(ex.ws_url + "/ws") as ws:
                await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@trade", "btcusdt@depth"], "id": 1}))
                assert await recv_json(ws) == {"result": None, "id": 1}
                d = await recv_json(ws)
                assert d["e"] == "trade" and d["s"] == "BTCUSDT" and d["T"] < 10**14
                await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
                assert (await recv_until(ws, lambda m: m.get("id") == 2))["result"] == ["btcusdt@trade", "btcusdt@depth"]
                await ws.send(json.dumps({"method": "SET_PROPERTY", "params": ["combined", True], "id": 3}))
                await recv_until(ws, lambda m: m.get("id") == 3)
                d = await recv_json(ws)
                assert d["stream"] == "btcusdt@trade"
                await ws.send(json.dumps({"method": "GET_PROPERTY", "params": ["combined"], "id": 4}))
                assert (await recv_until(ws, lambda m: m.get("id") == 4))["result"] is True
                await ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": 5}))
                await recv_until(ws, lambda m: m.get("id") == 5)
                await asyncio.sleep(0.1)
                await ws.send(json.dumps({"method": "SUBSCRIB", "params": [], "id": 6}))
                err = await recv_until(ws, lambda m: "error" in m, 2)  # no more trades in between
                assert err["id"] == 6 and err["error"]["code"] == 2 and "unknown variant" in err["error"]["msg"]
            counters = ex.counters
        assert counters["control_errors"] == 1 and counters["control_messages"] == 6

    run(scenario())


def test_flat_errors_pings_rate_limit_max_age_and_server_shutdown():
    async def scenario():
        async with Exchange(Synthetic(rate=50), error_style="flat", ping_interval=0.1,
                            max_connection_age=1.0) as ex:
            async with websockets.connect(ex.ws_url + "/stream") as ws:
                await ws.send("{oops")
                assert await recv_json(ws) == {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 2"}
                await asyncio.sleep(0.5)
                assert ex.counters["pings"] >= 2 and ex.counters["pongs"] >= 2
                ex.send_server_shutdown()
                msg = await recv_until(ws, lambda m: m.get("stream") == "!serverShutdown")
                assert msg["data"]["e"] == "serverShutdown"
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await ws.recv()
                assert closed.value.rcvd.code == 1001  # maximum age reached
            async with websockets.connect(ex.ws_url + "/ws") as ws:
                for i in range(7):
                    await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await ws.recv()
                assert closed.value.rcvd.code == 1008
            assert ex.counters["rate_limited"] == 1 and ex.counters["expired"] >= 1

    run(scenario())


def test_bad_urls_are_refused_at_the_handshake():
    async def scenario():
        async with Exchange(Synthetic(rate=10)) as ex:
            for path, status in (("/ws/btcusdt@bogus", 400), ("/nowhere", 404), ("/stream?streams=btcusdt@trade&timeUnit=NS", 400)):
                with pytest.raises(websockets.exceptions.InvalidStatus) as err:
                    async with websockets.connect(ex.ws_url + path):
                        pass
                assert err.value.response.status_code == status
            status, _, body = await get(ex.rest_url + "/api/v3/nothing")
            assert status == 404

    run(scenario())


# --------------------------------------------------------------------------- REST


def test_rest_endpoints_weights_errors_and_agg_trade_paging():
    async def scenario():
        async with Exchange(Synthetic(rate=3000, seed=2), weight_limit=400) as ex:
            await asyncio.sleep(0.6)
            base = ex.rest_url + "/api/v3/"
            s, h, body = await get(base + "ping")
            assert (s, body, h["X-MBX-USED-WEIGHT-1M"]) == (200, {}, "1")
            s, h, body = await get(base + "time")
            assert abs(body["serverTime"] / 1000 - time.time()) < 5 and h["X-MBX-USED-WEIGHT-1M"] == "2"
            s, h, body = await get(base + "exchangeInfo?symbols=" + quote('["BTCUSDT","ETHUSDT"]'))
            assert s == 200 and [x["symbol"] for x in body["symbols"]] == ["BTCUSDT", "ETHUSDT"]
            assert h["X-MBX-USED-WEIGHT-1M"] == "22"
            pf = body["symbols"][0]["filters"][0]
            assert pf["filterType"] == "PRICE_FILTER" and pf["tickSize"] == "0.01000000"
            for url, code in (("exchangeInfo?symbol=NOPEUSDT", -1121), ("exchangeInfo?symbols=" + quote('["BTCUSDT","X"]'), -1121),
                              ("trades", -1102), ("trades?symbol=BTCUSDT&limit=ten", -1100),
                              ("historicalTrades?symbol=btcusdt", -1121)):
                s, h, body = await get(base + url)
                assert s == 400 and body["code"] == code, (url, body)
            s, _, rows = await get(base + "trades?symbol=BTCUSDT&limit=5000")
            assert s == 200 and 0 < len(rows) <= 1000
            assert [r["id"] for r in rows] == list(range(rows[0]["id"], rows[0]["id"] + len(rows)))
            # aggTrades: a page by startTime, then pages by fromId, cover every trade once
            ex.pause()
            await asyncio.sleep(0.05)
            tape_rows = ex.tape("ETHUSDT").all()
            s, _, body = await get(base + "aggTrades?symbol=ETHUSDT&startTime=0&endTime=" + str(int(time.time() * 1000)))
            assert s == 400 and body["code"] == -1127  # more than an hour apart
            s, _, page = await get(base + "aggTrades?symbol=ETHUSDT&limit=300&startTime=" + str(int(tape_rows["time"][0] // 1000)))
            aggs = list(page)
            while page:
                s, _, page = await get(base + f"aggTrades?symbol=ETHUSDT&limit=300&fromId={aggs[-1]['a'] + 1}")
                assert s == 200 and len(page) <= 300
                aggs.extend(page)
            covered = [i for a in aggs for i in range(a["f"], a["l"] + 1)]
            assert covered == tape_rows["id"].tolist()
            assert [a["a"] for a in aggs] == list(range(aggs[0]["a"], aggs[0]["a"] + len(aggs)))
            assert sum(int(a["q"].replace(".", "")) for a in aggs) == int(tape_rows["qty"].sum())
            s, _, recent = await get(base + "aggTrades?symbol=ETHUSDT&limit=3")
            assert recent == aggs[-3:]
            ex.resume()
            # the weight limit: 400 a minute here, so a few more trade pages hit 429
            statuses, heads = [], []
            while 429 not in statuses and len(statuses) < 20:
                s, h, body = await get(base + "trades?symbol=ETHUSDT&limit=1")
                statuses.append(s)
                heads.append((h, body))
            h, body = heads[-1]
            assert statuses[-1] == 429 and body["code"] == -1003 and 1 <= int(h["Retry-After"]) <= 60
            # a request inside that Retry-After ignores the 429: Binance bans the IP (418)
            s, h, body = await get(base + "ping")
            assert s == 418 and body["code"] == -1003 and int(h["Retry-After"]) == 120
            assert ex.counters["rest_ignored_429"] == 1 and ex.counters["bans"] == 1

    run(scenario())


# --------------------------------------------------------------------------- faults


async def _collect(url: str, seconds: float, max_size=None) -> tuple[list, list, object]:
    """Frames (parsed when possible) and unparsable texts received until the close or timeout."""
    good, bad = [], []
    close = None
    try:
        async with websockets.connect(url, max_size=max_size) as ws:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                try:
                    raw = await asyncio.wait_for(ws.recv(), deadline - time.monotonic())
                except TimeoutError:
                    break
                try:
                    msg = json.loads(raw)
                    data = msg.get("data", msg)
                    if "t" in data and "p" in data:
                        good.append(data)
                    else:
                        bad.append(raw)
                except ValueError:
                    bad.append(raw)
    except ConnectionClosed as exc:
        close = exc
    return good, bad, close


def test_dropped_trades_are_backfilled_over_rest_and_malformed_frames_are_extra():
    async def scenario():
        async with Exchange(Synthetic(["BTCUSDT"], rate=1500, seed=5), faults="drop=0.1,malformed=0.02,seed=1") as ex:
            good, bad = [], []
            async with websockets.connect(ex.ws_url + "/stream?streams=btcusdt@trade") as ws:
                t0 = time.monotonic()
                while True:
                    if time.monotonic() - t0 > 1.0:
                        ex.pause()  # then drain what is in flight
                    try:
                        raw = await asyncio.wait_for(ws.recv(), 0.3)
                    except TimeoutError:
                        break
                    try:
                        data = json.loads(raw)["data"]
                        (good if "t" in data else bad).append(data if "t" in data else raw)
                    except ValueError:
                        bad.append(raw)
                counters = ex.counters
            ids = [d["t"] for d in good]
            lo, hi = ids[0], ids[-1]
            missing = sorted(set(range(lo, hi + 1)) - set(ids))
            assert len(missing) > 0.05 * (hi - lo)  # about 10% dropped
            missing_set = set(missing)
            # backfill the gaps over REST: every dropped trade is there, identical to the tape
            fetched = {}
            for start in range(missing[0], missing[-1] + 1, 1000):
                _, _, page = await get(f"{ex.rest_url}/api/v3/historicalTrades?symbol=BTCUSDT&fromId={start}&limit=1000")
                fetched.update({r["id"]: r for r in page if r["id"] in missing_set})
            tape = {int(r["id"]): r for r in ex.tape("BTCUSDT").all()}
            assert sorted(fetched) == missing
            for i in missing:
                assert fetched[i]["price"] == format_scaled(int(tape[i]["price"]), 8)
            for d in good:
                assert d["p"] == format_scaled(int(tape[d["t"]]["price"]), 8)
        return good, bad, counters

    good, bad, counters = run(scenario())
    assert counters["dropped"] > 0 and counters["malformed"] > 0
    assert len(bad) == counters["malformed"]
    assert counters["messages_sent"] == len(good)


def test_cuts_duplicates_after_reconnect_and_rest_429_418():
    async def scenario():
        faults = "cut_every=40,dup_after_reconnect=5,rest429=2,rest418=1,retry_after=2,ban=2"
        async with Exchange(Synthetic(["BTCUSDT"], rate=300, seed=6), faults=faults) as ex:
            url = ex.ws_url + "/stream?streams=btcusdt@trade"
            good, _, close = await _collect(url, 3.0)
            assert close is not None and close.rcvd is None  # no close frame: an abrupt cut
            assert 0 < len(good) <= 40
            dups_before = ex.counters.get("duplicates", 0)
            # the reconnect first gets the last 5 trades again, then the live ones (which 5 is
            # fixed by when the server takes the connection, not by when the client asked: the
            # market trades on meanwhile, so the server's count says they were re-sent)
            good2, _, close2 = await _collect(url, 3.0)
            first = [d["t"] for d in good2]
            assert first[:5] == list(range(first[0], first[0] + 5))
            assert ex.counters.get("duplicates", 0) - dups_before >= 5
            assert first[5] > first[4] and close2 is not None and close2.rcvd is None
            assert len(good2) <= 45  # 5 duplicates + at most 40 frames before the next cut
            statuses = []
            for _ in range(4):  # each waits out the Retry-After it was given, as a client must
                s, h, _ = await get(ex.rest_url + "/api/v3/historicalTrades?symbol=BTCUSDT&limit=5")
                statuses.append((s, h.get("Retry-After")))
                await asyncio.sleep(float(h.get("Retry-After", 0)) + 0.05)
            s_ping, _, _ = await get(ex.rest_url + "/api/v3/ping")
            return statuses, s_ping, ex.counters

    statuses, s_ping, counters = run(scenario())
    assert statuses == [(429, "2"), (429, "2"), (418, "2"), (200, None)] and s_ping == 200
    assert counters["cuts"] == 2 and counters["duplicates"] == 5
    assert counters["rest_429"] == 2 and counters["rest_418"] == 1 and counters.get("rest_during_ban", 0) == 0


def test_stall_keeps_the_connection_open_without_data():
    async def scenario():
        async with Exchange(Synthetic(["BTCUSDT"], rate=200, seed=7), faults="stall=0.8@0.3") as ex:
            async def newcomer():  # connects during the stall: silent too, until it ends
                await asyncio.sleep(0.55)
                async with websockets.connect(ex.ws_url + "/ws/btcusdt@trade") as ws2:
                    with pytest.raises(TimeoutError):
                        await asyncio.wait_for(ws2.recv(), 0.3)
                    await asyncio.wait_for(ws2.recv(), 2)

            late_task = asyncio.create_task(newcomer())
            async with websockets.connect(ex.ws_url + "/stream?streams=btcusdt@trade") as ws:
                times, ids = [], []
                t0 = time.monotonic()
                while time.monotonic() - t0 < 1.6:
                    ids.append((await recv_json(ws))["data"]["t"])
                    times.append(time.monotonic())
                gaps = np.diff(times)
                k = int(np.argmax(gaps))
                assert gaps[k] > 0.6  # the stall
                assert ids[k + 1] - ids[k] > 50  # trades made meanwhile were withheld
                late = await get(ex.rest_url + f"/api/v3/historicalTrades?symbol=BTCUSDT&fromId={ids[k] + 1}&limit=1000")
                assert [r["id"] for r in late[2][: ids[k + 1] - ids[k] - 1]] == list(range(ids[k] + 1, ids[k + 1]))
            await late_task
            return ex.counters

    counters = run(scenario())
    assert counters["stalled"] > 50


def test_exchange_thread_serves_synchronous_code_and_pushes_10k_per_second(real_data: Path):
    import websockets.sync.client as sync_ws

    csv = real_data / "trades" / "BTCUSDT-trades-2023-03-24.rows587331-587545.csv"
    with ExchangeThread(Replay.from_paths(csv, speed=math.inf, loop=True)) as ex:
        assert ex.ws_url.startswith("ws://127.0.0.1:") and ex.rest_url == ex.ws_url.replace("ws://", "http://")
        status, _, body = _get_sync(ex.rest_url + "/api/v3/ping")
        assert (status, body) == (200, {})
        with sync_ws.connect(ex.ws_url + "/ws/btcusdt@trade", max_size=None, close_timeout=1) as ws:
            ws.recv(timeout=5)
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < 1.0:
                ws.recv(timeout=5)
                n += 1
            rate = n / (time.perf_counter() - t0)
        frame = ex.trades("BTCUSDT")
        assert list(frame.columns) == ["trade_id", "price", "qty", "is_buyer_maker", "time"]
        assert str(frame["time"].dtype) == "datetime64[ns, UTC]"
        assert np.all(np.diff(frame["trade_id"].to_numpy()) == 1)  # looping keeps ids contiguous
        assert frame["price"].iloc[0] == 28060.4 and ex.counters["connections"] == 1
    assert rate >= 10_000, f"pushed {rate:.0f} trades/s to one client"


def test_a_replay_waits_for_its_first_subscriber(real_data: Path):
    csv = real_data / "trades" / "BTCUSDT-trades-2025-01-01.rows0-209.csv"

    async def scenario():
        async with Exchange(Replay.from_paths(csv, speed=50)) as ex:
            await asyncio.sleep(0.3)
            assert ex.counters.get("trades_made", 0) == 0
            async with websockets.connect(ex.ws_url + "/ws/btcusdt@trade?timeUnit=MICROSECOND") as ws:
                first = await recv_json(ws)
            return first

    first = run(scenario())
    assert (first["t"], first["p"], first["q"], first["m"]) == (4359935386, "93576.00000000", "0.00136000", True)


def test_history_lag_serves_short_pages_memory_does_not_lag_and_the_market_data_host():
    async def scenario():
        async with Exchange(Synthetic(["BTCUSDT"], rate=400, seed=2), faults="history_lag=3") as ex:
            await asyncio.sleep(1.0)
            base = ex.rest_url + "/api/v3/"
            tape = ex.tape("BTCUSDT")
            first = tape.first_id
            s, _, hist = await get(base + f"historicalTrades?symbol=BTCUSDT&fromId={first}&limit=1000")
            newest = tape.last_id  # made before the request: memory must serve it
            s2, _, recent = await get(base + "trades?symbol=BTCUSDT&limit=1000")
            await asyncio.sleep(3.0)  # the database catches up
            s3, _, later = await get(base + f"historicalTrades?symbol=BTCUSDT&fromId={first}&limit=1000")
            counters = ex.counters
        async with Exchange(Synthetic(["BTCUSDT"], rate=50), faults="data_api=1") as ex:
            s4, _, body = await get(ex.rest_url + "/api/v3/historicalTrades?symbol=BTCUSDT&limit=5")
            s5, _, _ = await get(ex.rest_url + "/api/v3/trades?symbol=BTCUSDT&limit=5")
        return s, hist, s2, recent, newest, s3, later, counters, s4, s5, first

    s, hist, s2, recent, newest, s3, later, counters, s4, s5, first = run(scenario())
    assert s == s2 == s3 == 200
    assert hist == []  # nothing made 3 s ago yet: an empty page, not an error
    assert recent and recent[-1]["id"] >= newest  # memory has the newest trades at once
    assert later and later[0]["id"] == first and len(later) >= 100
    assert [r["id"] for r in later] == list(range(later[0]["id"], later[0]["id"] + len(later)))
    assert counters["history_short_pages"] >= 1
    assert s4 == 404 and s5 == 200
