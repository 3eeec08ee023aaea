"""Alert rules: validation at the boundary, JSON round trip, rules file edits."""

from __future__ import annotations

import json
import threading

import pytest

from quantlab.alerts import (
    MoveRule,
    PriceRule,
    SpreadRule,
    ZScoreRule,
    add_rule,
    list_rules,
    remove_rule,
    rule_from_dict,
)
from quantlab.alerts.rules import parse_duration_ns, parse_timeframe
from quantlab.errors import UnknownSymbolError

RULES = [
    PriceRule(id="a", symbol="btcusdt", op="above", level="70000", cooldown=5, webhook="http://127.0.0.1:1/x"),
    PriceRule(symbol="BTCUSDT", op="cross", level=65000, hysteresis=10),
    MoveRule(symbol="SOLUSDT", pct=2.5, window="90s", direction="down", note="dip"),
    ZScoreRule(y="ETHUSDT", x="BTCUSDT", k=2.5, window=30, timeframe="5m", method="kalman", exit=0.5),
    SpreadRule(y="ETHUSDT", x="BTCUSDT", op="below", level=-12.5, window="20"),
]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.kind)
def test_json_round_trip(rule):
    d = json.loads(json.dumps(rule.to_dict()))
    assert rule_from_dict(d) == rule
    assert rule_from_dict({**d, "from_a_newer_version": 1}) == rule  # unknown keys ignored


def test_normalisation():
    r = RULES[0]
    assert (r.symbol, r.level, r.cooldown) == ("BTCUSDT", 70000.0, 5.0)
    assert r.band == pytest.approx(70.0)  # default hysteresis: 0.1 % of the level
    assert RULES[1].band == 10
    assert RULES[2].band == pytest.approx(2.5 / 4)
    assert RULES[3].band == 0.5 and RULES[3].symbols == ("ETHUSDT", "BTCUSDT")
    assert RULES[4].window == 20 and RULES[4].timeframe_ns == 60 * 10**9
    assert "BTCUSDT price above 70000" in r.describe()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"symbol": "BTCUSDT", "op": "above", "level": "abc"}, "not a number"),
    ({"symbol": "BTCUSDT", "op": "above", "level": float("nan")}, "finite"),
    ({"symbol": "BTCUSDT", "op": "above", "level": -1}, "positive"),
    ({"symbol": "BTCUSDT", "op": "over", "level": 1}, "op"),
    ({"symbol": "BTC/USDT", "op": "above", "level": 1}, "symbol"),
    ({"symbol": "BTCUSDT", "op": "above", "level": 1, "cooldown": -1}, "cooldown"),
    ({"symbol": "BTCUSDT", "op": "above", "level": 1, "hysteresis": -1}, "hysteresis"),
    ({"symbol": "BTCUSDT", "op": "above", "level": 1, "webhook": "ftp://x"}, "webhook"),
    ({"symbol": "BTCUSDT", "op": "above", "level": 1, "id": "a b"}, "id"),
])
def test_price_rule_refuses(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PriceRule(**kwargs)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"window": 2}, "at least 3"),
    ({"window": 2.5}, "whole number"),
    ({"window": "x"}, "not a number"),
    ({"timeframe": "1 fortnight"}, "timeframe"),
    ({"timeframe": "1M"}, "fixed length under a week"),  # a calendar month, not a minute
    ({"timeframe": "1w"}, "fixed length under a week"),
    ({"timeframe": "0.5s"}, "whole number of seconds"),
    ({"method": "magic"}, "method"),
    ({"k": 0}, "positive"),
    ({"k": 2, "exit": 2}, "exit"),
    ({"x": "ETHUSDT"}, "differ"),
])
def test_zscore_rule_refuses(kwargs, match):
    base = {"y": "ETHUSDT", "x": "BTCUSDT", "k": 2.0}
    with pytest.raises(ValueError, match=match):
        ZScoreRule(**{**base, **kwargs})


def test_pair_rule_carries_a_pair_spec():
    from quantlab.analytics import PairSpec

    spec = PairSpec(hedge="kalman", window=30, formation=300, prices="log")
    r = ZScoreRule(id="z", y="ETHUSDT", x="BTCUSDT", k=2.5, timeframe="1s", spec=spec)
    assert r.spec == spec and r.method == "kalman"
    back = rule_from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r and back.spec == spec
    assert "kalman window 30" in r.describe() and "log-log" in r.describe()
    # a rule written by 0.1 (method "ols": a fit on the last window bars) is the rolling fit
    old = rule_from_dict({"kind": "zscore", "id": "z", "y": "ETHUSDT", "x": "BTCUSDT", "k": 2,
                          "window": 20, "timeframe": "1m", "method": "ols"})
    assert old.spec == PairSpec(hedge="rolling_ols", window=20)
    with pytest.raises(ValueError, match="hedge must be one of"):
        ZScoreRule(y="ETHUSDT", x="BTCUSDT", k=2, spec={"hedge": "magic"})


def test_move_rule_refuses():
    with pytest.raises(ValueError, match="at least 2 seconds"):
        MoveRule(symbol="BTCUSDT", pct=1, window="1s")
    with pytest.raises(ValueError, match="smaller than pct"):
        MoveRule(symbol="BTCUSDT", pct=1, hysteresis=1)
    with pytest.raises(ValueError, match="direction"):
        MoveRule(symbol="BTCUSDT", pct=1, direction="sideways")


def test_durations():
    assert parse_duration_ns("5m") == 300 * 10**9
    assert parse_duration_ns(1.5) == 1_500_000_000
    assert parse_duration_ns("2h") == 7200 * 10**9
    assert parse_timeframe("1d") == 86400 * 10**9
    with pytest.raises(ValueError, match="duration"):
        parse_duration_ns("5 minutes")
    with pytest.raises(TypeError, match="timeframe"):
        parse_timeframe(60)


def test_rule_from_dict_refuses_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        rule_from_dict({"kind": "volume"})


def test_rules_file_add_list_remove(tmp_path):
    syms = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    r1 = add_rule(tmp_path, PriceRule(symbol="BTCUSDT", op="above", level=1), symbols=syms)
    r2 = add_rule(tmp_path, ZScoreRule(y="ETHUSDT", x="BTCUSDT", k=2), symbols=syms)
    r3 = add_rule(tmp_path, PriceRule(id="mine", symbol="SOLUSDT", op="below", level=1), symbols=syms)
    assert [r.id for r in (r1, r2, r3)] == ["r1", "r2", "mine"]
    assert list_rules(tmp_path) == [r1, r2, r3]
    assert remove_rule(tmp_path, "r1") == r1
    r4 = add_rule(tmp_path, PriceRule(symbol="BTCUSDT", op="above", level=2), symbols=syms)
    assert r4.id == "r3"  # ids are never reused
    assert [r.id for r in list_rules(tmp_path)] == ["r2", "mine", "r3"]
    with pytest.raises(ValueError, match="already exists"):
        add_rule(tmp_path, PriceRule(id="mine", symbol="SOLUSDT", op="below", level=1), symbols=syms)
    with pytest.raises(ValueError, match=r"no alert rule 'r1' \(rules: r2, mine, r3\)"):
        remove_rule(tmp_path, "r1")
    with pytest.raises(UnknownSymbolError, match="DOGEUSDT is not in the store.*known: BTCUSDT"):
        add_rule(tmp_path, PriceRule(symbol="DOGEUSDT", op="above", level=1), symbols=syms)
    with pytest.raises(ValueError, match="not a directory"):
        add_rule(tmp_path / "nope", r1, symbols=syms)
    assert not list((tmp_path / "alerts").glob("*.tmp"))


def test_bad_entry_in_rules_file_is_skipped(tmp_path, caplog):
    add_rule(tmp_path, PriceRule(symbol="BTCUSDT", op="above", level=1), check_symbols=False)
    path = tmp_path / "alerts" / "rules.json"
    doc = json.loads(path.read_text())
    doc["rules"].append({"kind": "price", "id": "bad", "symbol": "BTCUSDT", "op": "above", "level": "x"})
    path.write_text(json.dumps(doc))
    assert [r.id for r in list_rules(tmp_path)] == ["r1"]
    assert "rule #1 skipped" in caplog.text


def test_concurrent_editors_lose_nothing(tmp_path):
    def work(k):
        for i in range(10):
            add_rule(tmp_path, PriceRule(symbol="BTCUSDT", op="above", level=1000 * k + i + 1),
                     check_symbols=False)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    rules = list_rules(tmp_path)
    assert len(rules) == 40 and len({r.id for r in rules}) == 40
