"""The pure evaluation: hysteresis, cooldown, batches, closed bars, pair rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlab.alerts import AlertEngine, MoveRule, PriceRule, SpreadRule, ZScoreRule, scan
from quantlab.alerts.bars import BarBuilder, SecondCloses
from quantlab.alerts.engine import legs_for

T0 = 1_700_000_000_000_000_000  # 2023-11-14 22:13:20 UTC
S = 1_000_000_000


def feed(engine, symbol, prices, *, start_ns=T0, step_ns=S, batch=100, first_id=1):
    """Feed prices as trades ``step_ns`` apart in batches; returns the triggers."""
    p = np.asarray(prices, dtype=np.float64)
    t = start_ns + np.arange(len(p), dtype=np.int64) * step_ns
    ids = first_id + np.arange(len(p), dtype=np.int64)
    out = []
    for i in range(0, len(p), batch):
        sl = slice(i, i + batch)
        out += engine.process(symbol, t[sl], p[sl], t[sl] + 1000, ids[sl])
    return out


def reference_fire(values, legs, times, cooldown_ns):
    """Tick-by-tick state machine, the definition the vectorised engine must match."""
    armed = [leg.armed for leg in legs]
    last = None
    out = []
    for i, v in enumerate(values):
        arr = np.array([v])
        for j, leg in enumerate(legs):
            if armed[j] and leg.hit(arr)[0]:
                armed[j] = False
                if cooldown_ns and last is not None and times[i] - last < cooldown_ns:
                    continue
                last = times[i]
                out.append((i, leg.event))
            elif not armed[j] and leg.rearm(arr)[0]:
                armed[j] = True
    return out


def test_scan_fires_once_per_excursion():
    p = np.array([99.0, 100.0, 100.05, 99.99, 100.0, 99.8, 100.1, 100.2])
    assert scan(p >= 100, p < 99.9, True) == ([1, 6], False)
    assert scan(p[1:] >= 100, p[1:] < 99.9, False) == ([5], False)  # needs a re-arm first
    assert scan(p >= 200, p < 99.9, True) == ([], True)
    assert scan(p >= 100, p < 50, False) == ([], False)


def test_price_above_hovering_fires_once_per_crossing():
    rng = np.random.default_rng(7)
    level = 70_000.0
    up = np.linspace(69_500, 70_050, 200)
    hover = level + rng.uniform(-60, 60, 3000)  # noise inside the default band (70)
    down = np.linspace(70_050, 69_800, 100)  # 69800 < 69930: re-arms
    prices = np.concatenate([up, hover, down, hover, down, np.full(50, 69_900.0)])
    eng = AlertEngine([PriceRule(id="r1", symbol="BTCUSDT", op="above", level=level)])
    fired = feed(eng, "BTCUSDT", prices, batch=37)
    assert [tr.event for tr in fired] == ["above", "above"]
    first = int(np.argmax(prices >= level))
    assert fired[0].time_ns == T0 + first * S and fired[0].value == prices[first]
    assert fired[0].trade_id == first + 1 and fired[0].recv_ns == fired[0].time_ns + 1000
    assert fired[0].threshold == level
    assert feed(eng, "ETHUSDT", prices) == []  # other symbols cost nothing and fire nothing


def test_cross_needs_a_side_and_fires_each_way():
    lv = 100.0
    prices = [100.0, 100.05, 99.0, 99.95, 100.0, 100.02, 99.97, 101, 100.5, 100, 99.5, 98]
    eng = AlertEngine([PriceRule(id="c", symbol="X", op="cross", level=lv, hysteresis=0.1)])
    fired = feed(eng, "X", prices, batch=5)
    # starts at the level: no side yet; 99.0 arms up; 100.0 crosses up (hovering after: none);
    # 101 arms down; 100 crosses down
    assert [(tr.event, tr.value) for tr in fired] == [("cross_up", 100.0), ("cross_down", 100.0)]


@pytest.mark.parametrize("op", ["above", "below", "cross"])
@pytest.mark.parametrize("cooldown", [0.0, 30.0])
def test_vectorised_equals_tick_by_tick(op, cooldown):
    rng = np.random.default_rng(42)
    i = np.arange(4000)
    prices = 100 + 0.5 * np.sin(i / 40) + rng.normal(0, 0.15, i.size)
    times = T0 + np.arange(len(prices)) * S
    rule = PriceRule(id="x", symbol="X", op=op, level=100.0, hysteresis=0.2, cooldown=cooldown)
    expected = reference_fire(prices, legs_for(rule), times, int(cooldown * S))
    assert len(expected) >= 5
    for batch in (1, 7, 500, 4000):
        eng = AlertEngine([rule])
        got = [(int((tr.time_ns - T0) // S), tr.event) for tr in feed(eng, "X", prices, batch=batch)]
        assert got == expected, batch


def test_cooldown_suppresses_and_disarms():
    prices = [99, 101, 99, 101, 99, 99, 101]  # one second apart
    rule = PriceRule(id="r", symbol="X", op="above", level=100, hysteresis=0.5, cooldown=3)
    eng = AlertEngine([rule])
    fired = feed(eng, "X", prices, batch=2)
    assert [int((tr.time_ns - T0) // S) for tr in fired] == [1, 6]  # t=3 is within 3 s of t=1
    assert eng.stats()["suppressed"] == 1


def test_state_survives_a_new_engine():
    rule = PriceRule(id="r", symbol="X", op="above", level=100)
    eng = AlertEngine([rule])
    assert len(feed(eng, "X", [99, 100.5])) == 1
    state = eng.state()
    eng2 = AlertEngine([rule], state=state)
    assert feed(eng2, "X", [100.4, 100.6], start_ns=T0 + 10 * S) == []  # still disarmed
    changed = PriceRule(id="r", symbol="X", op="above", level=100.2)
    eng3 = AlertEngine([changed], state=state)  # a changed condition starts afresh
    assert len(feed(eng3, "X", [100.4], start_ns=T0 + 10 * S)) == 1


def test_set_rules_keeps_state_of_unchanged_rules():
    a = PriceRule(id="a", symbol="X", op="above", level=100)
    eng = AlertEngine([a])
    feed(eng, "X", [101])
    eng.set_rules([a, PriceRule(id="b", symbol="X", op="above", level=100)])
    fired = feed(eng, "X", [101.5], start_ns=T0 + 5 * S)
    assert [tr.rule_id for tr in fired] == ["b"]


def test_move_rule():
    # flat at 100 for 60 s, then +3 % in a step, stays; window 30 s
    prices = np.r_[np.full(60, 100.0), np.full(60, 103.0), np.full(60, 100.0)]
    rule = MoveRule(id="m", symbol="X", pct=2.5, window="30s")
    fired = feed(AlertEngine([rule]), "X", prices, batch=13)
    assert [(tr.event, int((tr.time_ns - T0) // S)) for tr in fired] == [("move_up", 60), ("move_down", 120)]
    assert fired[0].value == pytest.approx(3.0)
    up_only = MoveRule(id="m", symbol="X", pct=2.5, window="30s", direction="up")
    assert [tr.event for tr in feed(AlertEngine([up_only]), "X", prices)] == ["move_up"]


def test_second_closes_are_causal():
    s = SecondCloses(keep_ns=60 * S)
    t = T0 + np.array([0, 500_000_000, 1_200_000_000, 3_000_000_000])
    s.extend(t, np.array([10.0, 11.0, 12.0, 13.0]))
    assert s.before(T0 + np.array([0, 1, 2, 3, 4]) * S).tolist()[1:] == [11.0, 12.0, 12.0, 13.0]
    assert np.isnan(s.before(np.array([T0]))[0])


def test_bar_builder_matches_pandas_resample():
    rng = np.random.default_rng(3)
    n = 5000
    t = T0 + np.cumsum(rng.integers(1, 4 * S, n))
    p = 100 + np.cumsum(rng.normal(0, 0.1, n))
    b = BarBuilder(60 * S, keep=10_000)
    closed = []
    for i in range(0, n, 97):
        c = b.update(t[i:i + 97], p[i:i + 97])
        closed += list(zip(c.bar_id.tolist(), c.close.tolist(), strict=True))
        # the trigger is the first trade of a later bar
        assert all(t[i:i + 97][k] // (60 * S) > bid for k, bid in zip(c.trigger, c.bar_id, strict=True))
    ref = pd.Series(p, index=pd.to_datetime(t, utc=True)).resample("1min").last().dropna()
    ref = ref.iloc[:-1]  # the last bar is still open
    assert [bid * 60 * S for bid, _ in closed] == list(ref.index.as_unit("ns").asi8)
    np.testing.assert_array_equal([c for _, c in closed], ref.to_numpy())


def test_bar_builder_seed_then_live():
    b = BarBuilder(60 * S)
    opens = T0 - T0 % (60 * S) + np.arange(5) * 60 * S
    b.seed(opens, np.array([1.0, 2.0, 3.0, 4.0, 5.0]))  # the last stored bar may be partial
    assert b.open_id == opens[-1] // (60 * S) and len(b.ids) == 4
    c = b.update(np.array([opens[-1] + 50 * S, opens[-1] + 70 * S]), np.array([5.5, 6.0]))
    assert c.close.tolist() == [5.5] and b.close_at(10**12) == 5.5


def _pair_ticks(n_bars, seed=0, shock_bar=None, shock=0.0):
    """Two symbols trading every 10 s (x random walk, y = 2x + stationary noise)."""
    rng = np.random.default_rng(seed)
    n = n_bars * 6
    t = T0 - T0 % (60 * S) + np.arange(n) * 10 * S + 1
    x = 100 + np.cumsum(rng.normal(0, 0.05, n))
    y = 2 * x + 5 + rng.normal(0, 0.02, n)
    if shock_bar is not None:
        y[shock_bar * 6:] += shock
    return t, y, x


def _feed_pair(eng, t, y, x, batch=4):
    out = []
    ids = np.arange(len(t))
    for i in range(0, len(t), batch):
        sl = slice(i, i + batch)
        out += eng.process("ETHUSDT", t[sl], y[sl], t[sl], ids[sl])
        out += eng.process("BTCUSDT", t[sl] + 3 * S, x[sl], t[sl] + 3 * S, ids[sl])
    return out


def _bars(t, y, x):
    by = pd.Series(y, index=pd.to_datetime(t, utc=True)).resample("1min").last()
    bx = pd.Series(x, index=pd.to_datetime(t + 3 * S, utc=True)).resample("1min").last()
    return by, bx


def test_pair_rule_evaluates_each_closed_bar_once():
    t, y, x = _pair_ticks(40)
    rule = ZScoreRule(id="z", y="ETHUSDT", x="BTCUSDT", k=2, window=10)
    eng = AlertEngine([rule])
    _feed_pair(eng, t, y, x)
    ev = eng.evaluators["z"]
    # bars 0..38 close (bar 39 is open): each fed to the signal once, with the bars' last trades
    assert ev.stream.bars == 39
    assert ev.fed[-1] == (t[38 * 6] // (60 * S), y[38 * 6 + 5], x[38 * 6 + 5])


def test_zscore_rule_fires_on_synthetic_pair():
    """Real analytics: y = 2x + noise, then y jumps; the rule fires once, on the bar where
    the z-score of ``spec.evaluate`` on the pandas bars first crosses k, with that z."""
    from quantlab.analytics import PairSpec

    shock_bar, k = 45, 3.0
    spec = PairSpec(window=20, z_window=20)
    t, y, x = _pair_ticks(60, seed=1, shock_bar=shock_bar, shock=0.2)
    rule = ZScoreRule(id="z", y="ETHUSDT", x="BTCUSDT", k=k, spec=spec)
    fired = _feed_pair(AlertEngine([rule]), t, y, x)
    by, bx = _bars(t, y, x)
    z = spec.evaluate(by.iloc[:-1], bx.iloc[:-1]).z  # the last bar never closes
    first = z.index[np.argmax(z.to_numpy() >= k)]
    assert z.iloc[:shock_bar].abs().max() < k  # quiet before the shock
    assert [tr.event for tr in fired] == ["zscore_above"]
    tr = fired[0]
    assert pd.Timestamp(tr.bar_time_ns, unit="ns", tz="UTC") == first == by.index[shock_bar]
    assert tr.value == pytest.approx(z[first], rel=1e-9, abs=1e-9)
    assert tr.symbols == ("ETHUSDT", "BTCUSDT") and tr.threshold == k
    assert tr.time_ns // (60 * S) > tr.bar_time_ns // (60 * S)  # fired by a trade of a later bar


def test_spread_rule_uses_the_spec_spread():
    from quantlab.analytics import PairSpec

    t, y, x = _pair_ticks(20, seed=2)
    spec = PairSpec(hedge="ols", window=5)
    rule = SpreadRule(id="s", y="ETHUSDT", x="BTCUSDT", op="above", level=-1e9, spec=spec)
    fired = _feed_pair(AlertEngine([rule]), t, y, x)
    assert len(fired) == 1  # fires once on the first defined spread and stays disarmed
    by, bx = _bars(t, y, x)
    s = spec.evaluate(by.iloc[:-1], bx.iloc[:-1]).frame["spread"]
    first = s.first_valid_index()
    assert first == by.index[5]  # fitted on bars 0..4, applied from bar 5
    assert pd.Timestamp(fired[0].bar_time_ns, unit="ns", tz="UTC") == first
    assert fired[0].value == pytest.approx(s[first], rel=1e-12)


def test_pair_warm_up_from_stored_bars():
    from quantlab.alerts.pairmath import pair_values

    t, y, x = _pair_ticks(40, seed=3)
    rule = ZScoreRule(id="z", y="ETHUSDT", x="BTCUSDT", k=0.5, window=5)

    def loader(symbol, timeframe, n_bars):
        assert timeframe == "1m" and n_bars >= 2 * rule.warmup_bars
        tt, pp = (t, y) if symbol == "ETHUSDT" else (t + 3 * S, x)
        s = pd.Series(pp[: 20 * 6], index=pd.to_datetime(tt[: 20 * 6], utc=True)).resample("1min").last()
        return s.index.as_unit("ns").asi8, s.to_numpy()

    eng = AlertEngine([rule], bars_loader=loader)
    fired = _feed_pair(eng, t[20 * 6:], y[20 * 6:], x[20 * 6:])
    ev = eng.evaluators["z"]
    # stored bars 0..18 warm the signal up (bar 19 was open when loaded): no wait for live bars
    assert ev.stream.bars == 39 and ev.fed[-1][0] == t[38 * 6] // (60 * S)
    by, bx = _bars(t, y, x)
    z = pair_values(rule, by.iloc[:-1], bx.iloc[:-1])
    assert fired and all(tr.bar_time_ns >= t[19 * 6] // (60 * S) * 60 * S for tr in fired)
    for tr in fired:
        assert tr.value == pytest.approx(z[pd.Timestamp(tr.bar_time_ns, unit="ns", tz="UTC")],
                                         rel=1e-9, abs=1e-9)

