"""The sans-I/O Binance parser, byte-for-byte on real recorded frames."""

from __future__ import annotations

import csv
import gzip
import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from quantlab.binance import protocol
from quantlab.binance.protocol import (
    AggTrade,
    BookTicker,
    ErrorFrame,
    Kline,
    ProtocolError,
    ServerShutdown,
    SubscribeReply,
    Trade,
    Unknown,
    list_subscriptions_message,
    parse_frame,
    stream_url,
    subscribe_message,
    trade_from_rest,
    trades_to_frame,
    unsubscribe_message,
)
from quantlab.timestamps import NAT_NS, to_ns

EXPECTED_TRADES = {"BTCUSDT": 19_904, "ETHUSDT": 14_515}


def _capture_lines(real_data, symbol):
    for day in ("20240808", "20240809"):
        with gzip.open(real_data / "binance_ws" / "spot" / f"{symbol.lower()}_{day}.gz", "rb") as f:
            for raw in f:
                stamp, _, frame = raw.rstrip(b"\n").partition(b" ")
                yield int(stamp), frame


@pytest.fixture(scope="module")
def parsed(real_data):
    """{symbol: (REST snapshots, kinds Counter, trades by id, raw trade payloads by id)}"""
    out = {}
    for symbol in EXPECTED_TRADES:
        kinds: Counter = Counter()
        trades: dict[int, Trade] = {}
        raw_trades: dict[int, tuple[dict, int]] = {}
        snapshots = []
        for recv_ns, frame in _capture_lines(real_data, symbol):
            events = parse_frame(frame, recv_ns)  # bytes, exactly as recorded
            assert len(events) == 1, frame[:120]
            ev = events[0]
            kinds[type(ev).__name__] += 1
            if isinstance(ev, Unknown) and "lastUpdateId" in ev.raw:
                snapshots.append(ev)
            if type(ev) is Trade:
                trades.setdefault(ev.trade_id, ev)
                if ev.trade_id not in raw_trades:
                    raw_trades[ev.trade_id] = (json.loads(frame)["data"], recv_ns)
        out[symbol] = (snapshots, kinds, trades, raw_trades)
    return out


def _official(real_data, symbol):
    path = real_data / "trades" / f"{symbol}-spot-trades-2024-08-08T2354_2024-08-09T0005.csv"
    with open(path) as f:
        return list(csv.reader(f))


@pytest.mark.parametrize("symbol", sorted(EXPECTED_TRADES))
def test_recorded_trades_equal_official_file(parsed, real_data, symbol):
    _, _, trades, raw = parsed[symbol]
    rows = _official(real_data, symbol)
    assert len(trades) == EXPECTED_TRADES[symbol] == len(rows)
    ids = sorted(trades)
    assert ids == [int(r[0]) for r in rows]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # contiguous across midnight
    for row in rows:
        t = trades[int(row[0])]
        assert t.symbol == symbol
        assert t.price == float(row[1]) and t.qty == float(row[2])
        assert t.time_ns == int(row[4]) * 1_000_000
        assert t.is_buyer_maker == (row[5] == "True")
        data, recv_ns = raw[t.trade_id]
        assert t.event_time_ns == data["E"] * 1_000_000
        assert t.recv_ns == recv_ns
        assert t.price == float(data["p"]) and t.qty == float(data["q"])


@pytest.mark.parametrize("symbol", sorted(EXPECTED_TRADES))
def test_every_recorded_line_parses_to_a_known_shape(parsed, symbol):
    snapshots, kinds, _, _ = parsed[symbol]
    # one REST depth snapshot (no "stream" key) per symbol, near the start of the first day
    assert len(snapshots) == 1 and snapshots[0].raw["bids"]
    assert set(kinds) == {"Trade", "BookTicker", "Unknown"}
    # tests/data keeps 200 of each per capture file (make_slices.py)
    assert kinds["BookTicker"] >= 200 and kinds["Unknown"] >= 200  # depth updates


def test_bookticker_from_capture(real_data):
    line = next(f for _, f in _capture_lines(real_data, "ETHUSDT") if b"bookTicker" in f)
    (ev,) = parse_frame(line, 7)
    assert ev == BookTicker("ETHUSDT", 35346513501, 2683.8, 3.0292, 2683.81, 31.4395, None, None, 7)


def _fixture_frames(real_data, name):
    with open(real_data / "fixtures" / name) as f:
        lines = f.read().splitlines()
    for line in lines[1:]:  # first line is the URL
        if not line:
            continue
        stamp, _, frame = line.partition(": ")
        yield stamp, frame


@pytest.mark.parametrize("name", ["BINANCE.ws.1.0", "BINANCE_FUTURES.ws.1.0"])
def test_cryptofeed_fixtures_parse(real_data, name):
    kinds = Counter()
    for _, frame in _fixture_frames(real_data, name):
        for ev in parse_frame(frame, 0):
            kinds[type(ev).__name__] += 1
            payload = json.loads(frame)["data"]
            if isinstance(ev, AggTrade):
                assert (ev.agg_id, ev.first_trade_id, ev.last_trade_id) == (payload["a"], payload["f"], payload["l"])
                assert ev.price == float(payload["p"]) and ev.time_ns == payload["T"] * 10**6
            elif isinstance(ev, Kline):
                k = payload["k"]
                assert (ev.open, ev.high, ev.low, ev.close) == tuple(float(k[c]) for c in "ohlc")
                assert ev.trades == k["n"] and ev.closed is k["x"] and ev.interval == k["i"]
            elif isinstance(ev, BookTicker):
                assert ev.update_id == payload["u"] and ev.ask_qty == float(payload["A"])
                # futures bookTicker has extra "e", "T", "E": times kept, nothing else breaks
                assert (ev.event_time_ns is None) == ("E" not in payload)
    assert kinds["AggTrade"] and kinds["Kline"] and kinds["BookTicker"]
    assert set(kinds) <= {"AggTrade", "Kline", "BookTicker", "Unknown"}


def test_fixture_values_exact(real_data):
    frames = dict(_fixture_frames(real_data, "BINANCE.ws.1.0"))
    agg = parse_frame(frames["1633998523.957215"], 1)[0]
    assert agg == AggTrade("NKNUSDT", 15683430, 0.3528, 58.0, 19862790, 19862790, False,
                           1633998523963 * 10**6, 1633998523963 * 10**6, 1)
    kline = parse_frame(frames["1633998523.9572978"], 2)[0]
    assert kline == Kline("NKNUSDT", "1m", 1633998480000 * 10**6, 1633998539999 * 10**6, 19862761,
                          19862790, 0.3527, 0.3528, 0.3522, 0.3528, 25877.0, 9116.046, 30, 58.0,
                          20.4624, False, 1633998523963 * 10**6, 2)


def test_unknown_keys_are_ignored():
    frame = {"e": "trade", "E": 1, "s": "BTCUSDT", "t": 5, "p": "1.5", "q": "2", "T": 2,
             "m": False, "M": True, "X": "MARKET", "newField": {"deep": [1, 2]}}
    (t,) = parse_frame(json.dumps({"stream": "btcusdt@trade", "data": frame}), 3)
    assert t == Trade("BTCUSDT", 5, 1.5, 2.0, False, 2_000_000, 1_000_000, 3)
    (raw,) = parse_frame(json.dumps(frame), 3)  # raw stream (/ws/...): same event
    assert raw == t


def test_microsecond_official_rows_convert_exactly(real_data):
    """Official 2025-01-01 rows carry µs; a timeUnit=MICROSECOND stream sends the same."""
    path = real_data / "trades" / "BTCUSDT-trades-2025-01-01.rows0-209.csv"
    with open(path) as f:
        rows = list(csv.reader(f))
    assert len(rows) == 210
    for row in rows:
        us = int(row[4])
        frame = json.dumps({"stream": "btcusdt@trade", "data": {
            "e": "trade", "E": us + 1, "s": "BTCUSDT", "t": int(row[0]), "p": row[1], "q": row[2],
            "T": us, "m": row[5] == "True", "M": True}})
        for unit in (None, "MICROSECOND"):
            (t,) = parse_frame(frame, 0, time_unit=unit)
            assert t.time_ns == us * 1000 and t.event_time_ns == (us + 1) * 1000
            assert t.price == float(row[1])


def test_trx_spot_stream_in_microseconds(real_data):
    path = real_data / "trx" / "test_positive_binance_trade_stream_spot_trxusdt_04-03-2025.csv"
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1_000  # the first 1,000 rows of the real file (tests/data/README.md)
    for row in rows:
        frame = json.dumps({"e": "trade", "E": int(row["EventTime"]), "s": row["Symbol"],
                            "t": int(row["TradeId"]), "p": row["Price"], "q": row["Quantity"],
                            "T": int(row["TransactionTime"]), "m": row["IsBuyerMarketMaker"] == "1",
                            "M": True})
        (t,) = parse_frame(frame, int(row["TimestampOfReceive"]) * 1000, time_unit="MICROSECOND")
        assert t.time_ns == int(row["TransactionTime"]) * 1000
        assert t.event_time_ns - t.time_ns == (int(row["EventTime"]) - int(row["TransactionTime"])) * 1000


def test_official_ms_rows_through_rest_parser(real_data):
    path = real_data / "trades" / "BTCUSDT-trades-2023-03-24.rows587331-587545.csv"
    with open(path) as f:
        rows = list(csv.reader(f))
    for row in rows:
        rest_row = {"id": int(row[0]), "price": row[1], "qty": row[2], "quoteQty": row[3],
                    "time": int(row[4]), "isBuyerMaker": row[5] == "True", "isBestMatch": True}
        t = trade_from_rest(rest_row, "BTCUSDT", 9)
        assert t.time_ns == int(row[4]) * 1_000_000 and t.event_time_ns == NAT_NS
        assert (t.trade_id, t.price, t.qty) == (int(row[0]), float(row[1]), float(row[2]))


def test_wire_times_exact_in_both_units_through_the_one_converter():
    # no converter or "time not known" sentinel of its own: quantlab.timestamps' are used
    assert getattr(protocol, "to_ns", to_ns) is to_ns and not hasattr(protocol, "UNKNOWN_TIME")
    big = 9_007_199_254_740_993  # not representable as float64: integer arithmetic kept
    kline = {"e": "kline", "E": big, "s": "BTCUSDT", "k": {
        "t": 1735689600000000, "T": 1735689659999999, "s": "BTCUSDT", "i": "1m", "f": 1, "L": 2,
        "o": "1", "c": "1", "h": "1", "l": "1", "v": "1", "n": 2, "x": True, "q": "1", "V": "1",
        "Q": "1", "B": "0"}}
    for unit, scale in (("MICROSECOND", 1_000), ("microsecond", 1_000), (None, 1_000)):
        (k,) = parse_frame(json.dumps(kline), 0, time_unit=unit)  # the checked path
        assert (k.open_time_ns, k.event_time_ns) == (1735689600000000 * scale, big * scale)
    ms = dict(kline, E=1723161255342, k=dict(kline["k"], t=1723161240000, T=1723161299999))
    for unit in ("MILLISECOND", None):
        (k,) = parse_frame(json.dumps(ms), 0, time_unit=unit)
        assert (k.open_time_ns, k.event_time_ns) == (1723161240000 * 10**6, 1723161255342 * 10**6)
    # the fast paths of trades and agg trades follow the same rule: µs and ms, named or told
    for unit in ("MICROSECOND", None):
        (t,) = parse_frame(json.dumps({"e": "trade", "E": 1735689600074100, "s": "ETHUSDT", "t": 7,
                                       "p": "1", "q": "1", "T": 1735689600074095, "m": False}), 0,
                           time_unit=unit)
        (a,) = parse_frame(json.dumps({"e": "aggTrade", "E": 1735689600074100, "s": "ETHUSDT", "a": 7,
                                       "p": "1", "q": "1", "f": 1, "l": 1, "T": 1735689600074095,
                                       "m": False}), 0, time_unit=unit)
        assert t.time_ns == a.time_ns == 1735689600074095000
        assert t.event_time_ns == a.event_time_ns == 1735689600074100000
    with pytest.raises(ValueError, match="unit 'SECOND'"):
        parse_frame(json.dumps(kline), 0, time_unit="SECOND")


def test_control_replies_and_errors():
    (r,) = parse_frame('{"result":null,"id":1}', 0)
    assert r == SubscribeReply(1, None)
    (r,) = parse_frame('{"result":["btcusdt@trade","ethusdt@trade"],"id":3}', 0)
    assert r == SubscribeReply(3, ["btcusdt@trade", "ethusdt@trade"])
    (e,) = parse_frame('{"code":2,"msg":"Invalid request: unknown variant","id":7}', 0)
    assert e == ErrorFrame(2, "Invalid request: unknown variant", 7)
    (e,) = parse_frame('{"code":3,"msg":"Invalid JSON: expected value at line 1 column 1"}', 0)
    assert e == ErrorFrame(3, "Invalid JSON: expected value at line 1 column 1", None)
    (e,) = parse_frame('{"error":{"code":2,"msg":"Invalid request: too many parameters"},"id":"a1"}', 0)
    assert e == ErrorFrame(2, "Invalid request: too many parameters", "a1")


def test_server_shutdown_combined_and_raw():
    combined = '{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}'
    assert parse_frame(combined, 0) == [ServerShutdown(1770123456789 * 10**6)]
    assert parse_frame('{"e":"serverShutdown","E":1770123456789}', 0) == [ServerShutdown(1770123456789 * 10**6)]


def test_unknown_payloads_kept_whole():
    frame = '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[]}}'
    (u,) = parse_frame(frame, 0)
    assert isinstance(u, Unknown) and u.raw["stream"] == "btcusdt@depth@100ms"
    (u,) = parse_frame('[{"e":"24hrMiniTicker"}]', 0)
    assert isinstance(u, Unknown)


@pytest.mark.parametrize(
    "frame, match",
    [
        (b"not json at all", "not JSON"),
        (b"\xff\xfe{", "not JSON"),
        ('{"stream":"btcusdt@trade","data":{"e":"trade"', "not JSON"),
        ("42", "JSON object"),
        ("null", "JSON object"),
        ('{"stream":"x","data":5}', "not an object"),
        ('{"e":"trade","E":1,"s":"BTCUSDT","t":1,"q":"1","T":1,"m":true}', "'p' is missing"),
        ('{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":1.5,"q":"1","T":1,"m":true}', "decimal string"),
        ('{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"abc","q":"1","T":1,"m":true}', "not a decimal"),
        ('{"e":"trade","E":1,"s":"BTCUSDT","t":"1","p":"1","q":"1","T":1,"m":true}', "integer"),
        ('{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1","q":"1","T":1,"m":"false"}', "true/false"),
        ('{"e":"kline","E":1,"s":"BTCUSDT","k":[]}', "'k'"),
    ],
)
def test_malformed_frames_raise_protocol_error(frame, match):
    with pytest.raises(ProtocolError, match=match) as info:
        parse_frame(frame, 0)
    assert isinstance(info.value, ValueError)


def test_zero_price_is_passed_through_not_filtered():
    (t,) = parse_frame('{"e":"trade","E":1,"s":"TRXUSDT","t":548331095,"p":"0","q":"0","T":1,"m":false}', 0)
    assert t.price == 0.0 and t.qty == 0.0


def test_stream_url():
    base = "wss://stream.binance.com:9443"
    assert stream_url(base, ["BTCUSDT", "ethusdt"]) == base + "/stream?streams=btcusdt@trade/ethusdt@trade"
    assert stream_url(base + "/", "BTCUSDT", ("trade", "kline_1m"), time_unit="MICROSECOND") == (
        base + "/stream?streams=btcusdt@trade/btcusdt@kline_1m&timeUnit=MICROSECOND")
    assert stream_url("ws://127.0.0.1:1234", ["BNBUSDT"], ("aggTrade", "bookTicker")) == (
        "ws://127.0.0.1:1234/stream?streams=bnbusdt@aggTrade/bnbusdt@bookTicker")
    with pytest.raises(ValueError, match="base"):
        stream_url("https://api.binance.com", ["BTCUSDT"])
    with pytest.raises(ValueError, match="symbols"):
        stream_url(base, ["BTC-USDT"])
    with pytest.raises(ValueError, match="symbols"):
        stream_url(base, [])
    with pytest.raises(ValueError, match="kinds"):
        stream_url(base, ["BTCUSDT"], ("trade/x",))
    with pytest.raises(ValueError, match="time_unit"):
        stream_url(base, ["BTCUSDT"], time_unit="SECOND")
    with pytest.raises(ValueError, match="1024"):
        stream_url(base, [f"S{i}USDT" for i in range(1025)])


def test_control_messages():
    assert json.loads(subscribe_message(["btcusdt@trade"], 1)) == {
        "method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1}
    assert json.loads(unsubscribe_message(["btcusdt@trade"], 2))["method"] == "UNSUBSCRIBE"
    assert json.loads(list_subscriptions_message(3)) == {"method": "LIST_SUBSCRIPTIONS", "id": 3}


def test_trades_to_frame(parsed):
    trades = sorted(parsed["ETHUSDT"][2].values(), key=lambda t: t.trade_id)[:500]
    frame = trades_to_frame(trades)
    assert list(frame.columns) == ["trade_id", "price", "qty", "is_buyer_maker", "time", "event_time", "recv_time"]
    assert [str(d) for d in frame.dtypes] == ["int64", "float64", "float64", "bool", "int64", "int64", "int64"]
    np.testing.assert_array_equal(frame["trade_id"], [t.trade_id for t in trades])
    np.testing.assert_array_equal(frame["time"], [t.time_ns for t in trades])
    assert frame["price"].tolist() == [t.price for t in trades]
    # int64 ns -> datetime64 gives the exchange trade time back
    assert pd.Timestamp(frame["time"].iloc[0], unit="ns", tz="UTC").year == 2024
    empty = trades_to_frame([])
    assert len(empty) == 0 and str(empty["time"].dtype) == "int64"
    with pytest.raises(ValueError, match="mixes symbols"):
        trades_to_frame([trades[0], Trade("BTCUSDT", 1, 1.0, 1.0, True, 1, 1, 1)])
