"""Selection rules on a planted universe: planted pairs kept, a stationary symbol's false
"cointegrations" removed by the unit-root pre-test, bounds and caps applied in order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlab.research import Selection
from quantlab.research.selection import mean_crossings
from quantlab.screen import screen
from quantlab.screen.synthetic import planted_universe


@pytest.fixture(scope="module")
def universe():
    closes, planted = planted_universe(n_symbols=20, n_bars=3000, n_pairs=3, seed=21)
    used = {s for p in planted for s in p}
    stationary = next(c for c in closes.columns[::-1] if c not in used)
    rng = np.random.default_rng(5)
    s = np.zeros(len(closes))
    for t in range(1, len(s)):
        s[t] = 0.5 * s[t - 1] + rng.normal(0.0, 0.004)
    closes[stationary] = np.exp(3.0 + s)  # a stationary log price
    result = screen(closes, progress=False)
    return closes, planted, stationary, result


def _pairs(frame):
    return {frozenset(p) for p in zip(frame["y"], frame["x"], strict=True)}


def test_default_keeps_planted_pairs_and_drops_the_stationary_leg(universe):
    closes, planted, stationary, result = universe
    naive = result[result["qvalue"] <= 0.05]
    with_stationary = naive[(naive["y"] == stationary) | (naive["x"] == stationary)]
    assert len(with_stationary) >= 5  # the trap: a stationary leg "cointegrates" widely
    chosen = Selection().apply(result, closes)
    assert {frozenset(p) for p in planted} <= _pairs(chosen)
    assert stationary not in set(chosen["y"]) | set(chosen["x"])
    counts = chosen.attrs["selection"]
    assert counts["stationary_symbols"] == [stationary]
    assert counts["unit_root"] == int(((result["y"] == stationary) | (result["x"] == stationary)).sum())
    assert counts["candidates"] == len(result)
    assert counts["qvalue"] + counts["unit_root"] + len(chosen) + counts["crossings"] + counts["half_life"] == len(result)
    assert len(chosen) - len(planted) <= 2  # independent walks rarely pass
    assert (chosen["crossings"] >= 2).all()
    bar = pd.Timedelta("1min")
    err = (chosen["half_life_time"] - chosen["half_life"] * bar).abs()
    assert (err < pd.Timedelta("1us")).all()
    assert chosen.attrs["selection"]["selected"] == len(chosen)
    # without the pre-test the stationary symbol's pairs come back
    loose = Selection(unit_root_pvalue=None).apply(result, closes)
    assert _pairs(with_stationary) <= _pairs(loose)


def test_half_life_bounds_are_durations(universe):
    closes, planted, _, result = universe
    # planted spreads: AR(0.95), half-life ~13.5 one-minute bars
    short = Selection(max_half_life="5min").apply(result, closes)
    assert not ({frozenset(p) for p in planted} & _pairs(short))
    assert short.attrs["selection"]["half_life"] >= len(planted)
    assert (short["half_life_time"] <= pd.Timedelta("5min")).all()
    slow = Selection(min_half_life="1h").apply(result, closes)
    assert not ({frozenset(p) for p in planted} & _pairs(slow))
    lo, hi = Selection().apply(result, closes).attrs["half_life_bounds"]
    assert lo == pd.Timedelta("1min") and hi == pd.Timedelta("1500min")  # 3000 bars / 2


def test_caps_take_the_best_pairs_first(universe):
    closes, _, _, result = universe
    loose = Selection(unit_root_pvalue=None)
    everything = loose.apply(result, closes)
    capped = Selection(unit_root_pvalue=None, max_pairs=2).apply(result, closes)
    assert list(capped["rank"]) == list(everything["rank"][:2])
    disjoint = Selection(unit_root_pvalue=None, max_per_symbol=1).apply(result, closes)
    legs = list(disjoint["y"]) + list(disjoint["x"])
    assert len(legs) == len(set(legs))
    assert disjoint.attrs["selection"]["max_per_symbol"] == len(everything) - len(disjoint)
    assert Selection(min_crossings=10**6).apply(result, closes).empty


def test_mean_crossings_by_hand():
    idx = pd.date_range("2025-01-01", periods=5, freq="1min", tz="UTC")
    # log spread 1, -1, 1, 1, -1 (x = 1, hedge 0): mean 0.2, sides + - + + -: 3 crossings
    y = pd.Series(np.exp([1.0, -1.0, 1.0, 1.0, -1.0]), idx)
    x = pd.Series(np.ones(5), idx)
    assert mean_crossings(y, x, 0.0, 0.0) == 3
    # with a hedge: log y = 2 log x + s  ->  the same spread
    x2 = pd.Series(np.exp([0.1, 0.2, 0.3, 0.4, 0.5]), idx)
    y2 = pd.Series(np.exp(2 * np.log(x2.to_numpy()) + [1.0, -1.0, 1.0, 1.0, -1.0]), idx)
    assert mean_crossings(y2, x2, 2.0, 0.0) == 3


@pytest.mark.parametrize("kwargs, match", [
    (dict(max_qvalue=0.0), "max_qvalue"),
    (dict(unit_root_pvalue=1.5), "unit_root_pvalue"),
    (dict(min_half_life="2h", max_half_life="1h"), "min_half_life"),
    (dict(max_half_life="soon"), "max_half_life"),
    (dict(max_pairs=0), "max_pairs"),
    (dict(max_per_symbol=1.5), "max_per_symbol"),
    (dict(min_crossings=-1), "min_crossings"),
])
def test_bad_rules_fail_with_one_line(kwargs, match):
    with pytest.raises(ValueError, match=match) as err:
        Selection(**kwargs)
    assert "\n" not in str(err.value)


def test_apply_refuses_prices_that_do_not_match(universe):
    closes, _, _, result = universe
    with pytest.raises(ValueError, match="prices: no column for"):
        Selection().apply(result, closes.iloc[:, :5])
    with pytest.raises(ValueError, match="screen_frame: missing"):
        Selection().apply(result.drop(columns=["qvalue"]), closes)
    with pytest.raises(TypeError, match="DatetimeIndex"):
        Selection().apply(result, closes.reset_index(drop=True))


def test_selection_is_frozen():
    with pytest.raises(AttributeError):
        Selection().max_pairs = 3  # type: ignore[misc]
