"""Fault specs and the Binance control-message rules of the simulator (sans-I/O)."""

from __future__ import annotations

import json

import pytest

from quantlab.sim import wire
from quantlab.sim.faults import Faults, FaultState, RestGate, malformed_frame, parse_faults


def test_fault_spec_parses_and_round_trips():
    f = parse_faults("drop=0.01, cut_every=300,dup_after_reconnect=20,malformed=0.001,"
                     "stall=5@30,stall=2@90,rest429=1,rest418=2,retry_after=3,seed=9")
    assert f == Faults(drop=0.01, cut_every=300, dup_after_reconnect=20, malformed=0.001,
                       stalls=((30.0, 5.0), (90.0, 2.0)), rest429=1, rest418=2, retry_after=3, seed=9)
    assert parse_faults(f.spec()) == f
    assert parse_faults(None) == parse_faults("") == parse_faults("none") == Faults()
    assert str(Faults()) == "none"


@pytest.mark.parametrize("spec, message", [
    ("drop=1.5", "probability between 0 and 1"),
    ("drop=abc", "not a number"),
    ("cut_every=-3", ">= 0"),
    ("cut_every=2.5", "whole number"),
    ("stall=5", "SECONDS@START"),
    ("stall=0@3", "positive duration"),
    ("lag=3", "known key"),
    ("drop", "known key"),
])
def test_bad_fault_specs_name_the_item(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_faults(spec)
    with pytest.raises(TypeError, match="spec string"):
        parse_faults(3)  # type: ignore[arg-type]


def test_fault_state_is_deterministic_and_stalls_by_the_clock():
    f = parse_faults("drop=0.3,stall=2@10,seed=4")
    a, b = FaultState(f, 1), FaultState(f, 1)
    assert (a.drop_mask(1000) == b.drop_mask(1000)).all()
    assert 200 < a.drop_mask(1000).sum() < 400
    assert a.stalled(10.0) and a.stalled(11.9) and not a.stalled(12.0) and not a.stalled(9.9)
    kinds = [a.next_malformed_kind() for _ in range(3)]
    for kind in kinds:
        text = malformed_frame(kind, "btcusdt@trade", combined=True)
        try:
            data = json.loads(text)
        except ValueError:
            continue
        assert "t" not in data["data"] and "p" not in data["data"]


def test_control_messages_follow_binance_rules():
    ok = wire.parse_control('{"method":"SUBSCRIBE","params":["btcusdt@trade","ethusdt@kline_1m"],"id":1}')
    assert ok.method == "SUBSCRIBE" and ok.id == 1
    assert wire.parse_control('{"method":"LIST_SUBSCRIPTIONS","id":"abc123"}').id == "abc123"
    assert wire.parse_control('{"method":"GET_PROPERTY","params":["combined"],"id":null}').id is None
    cases = [
        ("not json", 3, "Invalid JSON: expected value at line 1 column 1"),
        ('{"params":[],"id":1}', 2, "missing field `method`"),
        ('{"method":"SUBSCRIB","params":[],"id":1}', 2, "unknown variant `SUBSCRIB`, expected one of `SUBSCRIBE`"),
        ('{"method":"SUBSCRIBE","params":[],"id":1.5}', 2, "request ID must be an unsigned integer"),
        ('{"method":"SUBSCRIBE","params":[],"id":"has space"}', 2, "request ID must be an unsigned integer"),
        ('{"method":"SUBSCRIBE","params":["btcusdt@nonsense"],"id":1}', 2, "invalid stream"),
        ('{"method":"SUBSCRIBE","params":["btc-usdt@trade"],"id":1}', 2, "invalid stream"),
        ('{"method":"SET_PROPERTY","params":["colour",true],"id":5}', 0, "Unknown property"),
        ('{"method":"SET_PROPERTY","params":["combined","yes"],"id":5}', 1, "expected Boolean"),
        ('{"method":"SET_PROPERTY","params":[3,true],"id":5}', 2, "property name must be a string"),
    ]
    for text, code, msg in cases:
        with pytest.raises(wire.ControlError) as err:
            wire.parse_control(text)
        assert err.value.code == code and msg in err.value.msg, (text, err.value.msg)
    e = wire.ControlError(2, "Invalid request: invalid stream", 7)
    assert json.loads(wire.error_reply(e)) == {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 7}
    assert json.loads(wire.error_reply(e, "flat")) == {"code": 2, "msg": "Invalid request: invalid stream", "id": 7}
    assert wire.result_reply(None, 1) == '{"result":null,"id":1}'
    assert wire.parse_stream_name("btcusdt@depth20@100ms") == ("btcusdt", "depth20@100ms")
    assert wire.parse_stream_name("!miniTicker@arr") == ("", "!miniTicker@arr")


# --------------------------------------------------------------------------- REST refusals


def test_rest_fault_keys_parse_round_trip_and_refuse_bad_values():
    f = parse_faults("rest418=2,ban=1.5,ban_max=10,rest403=1,rest451=3,history_lag=4,data_api=1")
    assert (f.rest418, f.ban, f.ban_max, f.rest403, f.rest451, f.history_lag, f.data_api) == (2, 1.5, 10.0, 1, 3, 4.0, 1)
    assert parse_faults(f.spec()) == f
    assert Faults().ban == 120.0 and Faults().ban_max == 259200.0  # Binance: 2 minutes to 3 days
    with pytest.raises(ValueError, match="ban=20 is longer than ban_max=10"):
        parse_faults("ban=20,ban_max=10")
    with pytest.raises(ValueError, match="history_lag"):
        parse_faults("history_lag=-1")


def test_bans_escalate_and_a_request_during_a_ban_is_a_repeat_offence():
    gate = RestGate(parse_faults("rest418=2,ban=2,ban_max=7"))
    t = 1000.0
    first = gate.check("historicalTrades", True, t)
    assert first.status == 418 and dict(first.headers)["Retry-After"] == "2"
    assert "banned until 1002000" in first.body["msg"]
    assert gate.check("ping", False, t + 2.01) is None  # waited it out: served
    second = gate.check("historicalTrades", True, t + 3)  # the second fault ban: twice as long
    assert dict(second.headers)["Retry-After"] == "4"
    during = gate.check("ping", False, t + 4)  # sent during the ban: banned again, longer (capped)
    assert during.status == 418 and dict(during.headers)["Retry-After"] == "7"
    assert gate.counts["rest_during_ban"] == 1 and gate.counts["bans"] == 3
    assert [gate.ban_length(n) for n in (1, 2, 3, 4)] == [2, 4, 7, 7]


def test_a_429_ignored_gets_the_ip_banned():
    gate = RestGate(parse_faults("rest429=1,retry_after=3,ban=60"))
    assert gate.check("trades", True, 0.0).status == 429
    assert gate.check("trades", True, 1.0).status == 418  # inside the 3 s Retry-After
    assert gate.counts["rest_ignored_429"] == 1
    gate = RestGate(parse_faults("rest429=1,retry_after=3"))
    gate.check("trades", True, 0.0)
    assert gate.check("trades", True, 3.0) is None  # backed off as told: served


def test_firewall_and_restricted_location_replies_look_like_binance():
    gate = RestGate(parse_faults("rest403=1,rest451=1"))
    geo = gate.check("exchangeInfo", False, 0.0)
    assert geo.status == 451 and "restricted location" in geo.body["msg"]
    waf = gate.check("historicalTrades", True, 0.0)
    assert waf.status == 403 and waf.body.startswith(b"<!DOCTYPE HTML") and "Retry-After" not in dict(waf.headers)
    assert gate.check("historicalTrades", True, 0.0) is None
