"""The demo market teaches: three truly cointegrated pairs among independent random walks, at
realistic prices (BTC ~100,000, SHIB ~0.00001). Two hours of demo history, written by the app's
own seeding and read back from the store, let the screener find the planted pairs (and at most a
documented few others), and a mean-reversion backtest of a true pair make money before costs."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from quantlab import backtest
from quantlab.screen import screen
from quantlab.sim import DEMO_PAIRS, Synthetic, demo_history, demo_symbols
from quantlab.store import TickStore
from quantlab.ui import seed_demo_history

PLANTED = {frozenset((p.y, p.x)) for p in DEMO_PAIRS}


def closes_1s(trades: dict[str, pd.Series]) -> pd.DataFrame:
    """Last trade price per second, carried forward (what the screener sees on 1 s bars)."""
    return pd.DataFrame({s: p.resample("1s").last() for s, p in trades.items()}).ffill().dropna()


def run_screen(closes: pd.DataFrame) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short-sample notes of the screen, not under test here
        return screen(closes, timeframe="1s", progress=False, min_overlap=500)


def selected_pairs(res: pd.DataFrame) -> set[frozenset]:
    return {frozenset((r.y, r.x)) for r in res[res["selected"]].itertuples()}


def test_the_demo_market_is_one_definition_with_realistic_prices():
    syms = demo_symbols()
    assert {"BTCUSDT", "SHIBUSDT", "XRPUSDT"} <= set(syms) and len(syms) == 7
    src = Synthetic(syms, rate=200, seed=1)  # the default market is the demo market
    assert src.pairs == {p.y: p.x for p in DEMO_PAIRS}
    assert "XRPUSDT" in src.independent and "BTCUSDT" in src.independent
    assert "ETHUSDT = 0.035*BTCUSDT" in src.describe() and "XRPUSDT" in src.describe()
    out = demo_history(syms, 0, 600_000_000, rate=200, seed=1)  # ten minutes
    btc = out["BTCUSDT"]["price"] / 1e8
    shib = out["SHIBUSDT"]["price"] / 1e8
    assert 90_000 < np.median(btc) < 110_000 and 0.000009 < np.median(shib) < 0.000011
    assert src.info("SHIBUSDT").tick_size == "0.00000001" and src.info("BTCUSDT").tick_size == "0.01000000"
    # a subset keeps only the pairs whose two legs are present
    assert Synthetic(["ETHUSDT", "SOLUSDT", "BTCUSDT"]).pairs == {"ETHUSDT": "BTCUSDT"}
    with pytest.raises(ValueError, match="not both"):
        Synthetic(["BTCUSDT", "ETHUSDT"], pairs={"ETHUSDT": "BTCUSDT"}, hedge_ratio=0.03)
    with pytest.raises(ValueError, match="independent symbol"):
        Synthetic(["A" + "USDT", "BUSDT", "CUSDT"], pairs={"BUSDT": "AUSDT", "AUSDT": "CUSDT"})


def test_two_hours_of_demo_history_screen_to_the_planted_pairs_and_trade_at_a_profit(tmp_path):
    """The app's path: seed_demo_history writes the store, the store is read back."""
    store = tmp_path / "store"
    assert seed_demo_history(store, demo_symbols()) > 300_000
    with TickStore(store) as st:
        trades = {s: st.read(s)["price"] for s in demo_symbols()}
    closes = closes_1s(trades)
    assert len(closes) > 7_000
    res = run_screen(closes)
    assert len(res) == 21
    q = {frozenset((r.y, r.x)): r.qvalue for r in res.itertuples()}
    for pair in PLANTED:
        assert q[pair] < 0.05, (sorted(pair), q[pair])
    # documented in quantlab.sim.demo: at most SHIB's tick-noise artefact adds false pairs
    assert len(selected_pairs(res) - PLANTED) <= 1, sorted(map(sorted, selected_pairs(res) - PLANTED))

    # a mean-reversion backtest of each true pair makes money before costs (the app's defaults)
    for p in DEMO_PAIRS:
        r = backtest.run(closes[p.y], closes[p.x], entry=2.0, exit=0.5, stop=4.0, window=300,
                         hedge="rolling_ols", fee_bps=0.0)
        assert r.stats["n_trades"] >= 10 and r.stats["total_return"] > 0, (p.y, p.x, r.stats["total_return"])


def test_the_screen_finds_the_planted_pairs_whatever_the_seed():
    """Seeds 0-4 (seeds 0-19 were measured when the market was tuned: exactly the three pairs in
    18 of 20, SHIB with 4-5 others in 2; see quantlab.sim.demo)."""
    false = 0
    for seed in range(5):
        out = demo_history(demo_symbols(), 0, int(2 * 3600e6), seed=seed)
        trades = {s: pd.Series(a["price"] / 1e8, index=pd.to_datetime(a["time"], unit="us", utc=True))
                  for s, a in out.items()}
        sel = selected_pairs(run_screen(closes_1s(trades)))
        assert PLANTED <= sel, (seed, sorted(map(sorted, PLANTED - sel)))
        false += len(sel - PLANTED)
    assert false <= 5  # of 5 x 18 = 90 unrelated pairs


def test_a_demo_perp_co_moves_with_its_spot_through_a_stationary_basis():
    """um:BTCUSDT = BTCUSDT + an OU basis: the basis of 1 s closes is stationary (ADF, MacKinnon
    p-values) while the price itself wanders; its sd is near the documented 0.02 % of the price."""
    from statsmodels.tsa.stattools import adfuller

    from quantlab.sim.demo import DEMO_BASIS

    out = demo_history(["BTCUSDT", "um:BTCUSDT"], 0, int(1800e6), seed=3)
    closes = closes_1s({s: pd.Series(a["price"] / 1e8, index=pd.to_datetime(a["time"], unit="us"))
                        for s, a in out.items()})
    basis = closes["um:BTCUSDT"] - closes["BTCUSDT"]
    assert adfuller(basis.to_numpy(), maxlag=5, autolag=None, result_object=False)[1] < 0.01
    assert adfuller(closes["BTCUSDT"].to_numpy(), maxlag=5, autolag=None, result_object=False)[1] > 0.05
    sd_expected = DEMO_BASIS[0].spread_vol * 100_000
    assert 0.5 * sd_expected < basis.std() < 1.5 * sd_expected


def test_market_sources_split_one_market_without_losing_or_renaming_trades():
    from quantlab.sim.demo import market_sources

    whole = Synthetic(["BTCUSDT", "um:BTCUSDT"], seed=5)
    whole.start(0)
    ref = whole.advance(int(20e6))
    views = market_sources(Synthetic(["BTCUSDT", "um:BTCUSDT"], seed=5))
    assert views["um"].symbols == ("BTCUSDT",) and views["um"].info("BTCUSDT").symbol == "BTCUSDT"
    views["um"].start(0)
    views["spot"].start(123)  # the second start joins the first: one clock
    perp = [views["um"].advance(int(20e6))["BTCUSDT"]]
    spot = [views["spot"].advance(int(7e6))["BTCUSDT"], views["spot"].advance(int(20e6))["BTCUSDT"]]
    assert spot[0]["time"].max() <= 7e6  # a view never returns trades after the time it asks for
    np.testing.assert_array_equal(np.concatenate(spot), ref["BTCUSDT"])
    np.testing.assert_array_equal(np.concatenate(perp), ref["um:BTCUSDT"])


def test_seeded_demo_history_gives_a_perp_aggregates_and_funding(tmp_path):
    from quantlab.sim.demo import DEMO_FUNDING_INTERVAL_S

    store = tmp_path / "store"
    assert seed_demo_history(store, ["BTCUSDT", "um:BTCUSDT"], hours=0.1) > 0
    with TickStore(store) as st:
        aggs = st.read("um:BTCUSDT", kind="aggtrades")
        funding = st.read("um:BTCUSDT", kind="funding")
        spot = st.read("BTCUSDT")
    assert len(aggs) > 1000 and (np.diff(aggs["agg_id"].to_numpy()) == 1).all()
    assert abs(aggs["price"].iloc[-1] / spot["price"].iloc[-1] - 1) < 0.002  # the perp tracks its spot
    steps = np.diff(funding.index.asi8) / 1e9
    assert len(funding) >= 0.1 * 3600 / DEMO_FUNDING_INTERVAL_S - 1 and (steps == DEMO_FUNDING_INTERVAL_S).all()
    assert (funding["funding_rate"] > 0).any() and (funding["funding_rate"] < 0).any()


def test_a_restarted_demo_perp_starts_at_the_given_price_so_the_basis_starts_at_zero():
    """The demo recorder restarts spot and perp at the store's last spot price; the perp's
    price was looked up as 'UM:BTCUSDT' and fell back to 100,000 (a basis jump at restart)."""
    src = Synthetic(["BTCUSDT", "um:BTCUSDT"], prices={"BTCUSDT": 91_234.5, "um:BTCUSDT": 91_234.5})
    assert src.start_prices["um:BTCUSDT"] == 91_234.5
    assert src.hedge_ratios == {"um:BTCUSDT": 1.0}
