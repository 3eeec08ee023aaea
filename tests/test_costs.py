"""backtest.Costs: fees per market and tier, slippage, borrow on a short spot leg, funding on a
perpetual leg; hand-computed numbers, and the accounting identity with every cost.

The fixture: 10 hourly bars (open times 2026-11-01 00:00 .. 09:00 UTC), y the spot
BTCUSDT, x the perpetual um:BTCUSDT, hedge 1, notional 1000 on y. A z of -2.5 at bar 1 goes
long the spread (long y, short x), one of +2.5 short (short y, long x); both are filled at
bar 2's close (entry_bar 2) and closed by z = 0 at bar 5, filled at bar 6 (exit_bar 6).
The trade holds during bars 3, 4, 5, 6. Convention (quantlab.backtest.costs): a funding time
T in bar t (index[t] <= T < index[t+1]) is paid by the units held during bar t, so this trade
pays funding times from 03:00 (index[3]) up to before 07:00 (index[7]).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from quantlab import backtest as bt
from quantlab.backtest import USDM_VIP_BPS, Costs

NAN = np.nan
IDX = pd.date_range("2026-11-01", periods=10, freq="h", tz="UTC")
Y_FLAT = [100.0] * 10
X_UP = [100, 100, 100, 101, 102, 103, 104, 105, 106, 107.0]
NO_FEES = {"spot": 0, "um": 0}
NO_FUNDING = {"um:BTCUSDT": None}  # funding not counted, on purpose (no warning)

# one trade over 9 hours: the annualised figures are meaningless, as the warning says
pytestmark = pytest.mark.filterwarnings("ignore::quantlab.backtest.ShortSampleWarning")


def z_for(side: int) -> pd.Series:
    # side +1 long spread (z < -entry), -1 short spread (z > entry); exit decided at bar 5
    z = [NAN, -2.5 * side, -2.5 * side, -2.5 * side, -2.5 * side, 0.0, 0.0, 0.0, 0.0, 0.0]
    return pd.Series(z, IDX)


def legs(y=Y_FLAT, x=X_UP):
    return (pd.Series(y, IDX, name="BTCUSDT"), pd.Series(x, IDX, name="um:BTCUSDT"))


def funding_events() -> pd.DataFrame:
    """A store-shaped funding table: funding_time, funding_rate, mark_price (NaN: none)."""
    t = pd.to_datetime(["2026-11-01 01:00", "2026-11-01 02:00", "2026-11-01 03:30",
                        "2026-11-01 05:00", "2026-11-01 06:00", "2026-11-01 07:00"], utc=True)
    return pd.DataFrame({"funding_time": t,
                         "funding_rate": [0.004, 0.002, 0.001, -0.003, 0.0005, 0.005],
                         "mark_price": [NAN, NAN, NAN, 102.5, NAN, NAN]})


def run(side: int, costs: Costs, y=Y_FLAT, x=X_UP, **kw):
    ys, xs = legs(y, x)
    return bt.from_zscore(ys, xs, z_for(side), 1.0, entry=2.0, exit=0.5, stop=4.0,
                          costs=costs, capital=10_000.0, notional=1_000.0, **kw)


def assert_identity(res, y, x, capital=10_000.0):
    """equity = capital + P&L at bar prices - fees - slippage - borrow - funding, per bar and
    per trade; the trade P&Ls add up to the final equity."""
    tr, pos, s = res.trades, res.positions, res.stats
    for cost in ("fees", "slippage", "borrow", "funding"):
        assert s[cost] == pytest.approx(tr[cost].sum(), abs=1e-9)
        assert s[cost] == pytest.approx(pos[cost].sum(), abs=1e-9)
    gross = (tr["units_y"] * (tr["exit_price_y"] - tr["entry_price_y"])
             + tr["units_x"] * (tr["exit_price_x"] - tr["entry_price_x"]))  # at fill prices
    np.testing.assert_allclose(tr["pnl"], gross - tr["fees"] - tr["borrow"] - tr["funding"],
                               atol=1e-9)
    assert res.equity.iloc[-1] == pytest.approx(capital + tr["pnl"].sum(), abs=1e-9)
    # per bar: the change of equity is the units held times the price change, minus every
    # cost booked at the bar (slippage is the fills' distance from the bar price)
    y, x = np.asarray(y, dtype=float), np.asarray(x, dtype=float)
    uy, ux = pos["units_y"].to_numpy(), pos["units_x"].to_numpy()
    costs = (pos["fees"] + pos["slippage"] + pos["borrow"] + pos["funding"]).to_numpy()
    d_eq = np.diff(res.equity.to_numpy())
    np.testing.assert_allclose(d_eq, uy[:-1] * np.diff(y) + ux[:-1] * np.diff(x) - costs[1:],
                               atol=1e-8)
    assert res.equity.iloc[0] == capital
    assert s["final_equity"] == pytest.approx(res.equity.iloc[-1], abs=1e-12)


# --------------------------------------------------------------------------- funding

@pytest.mark.parametrize("side", [1, -1])
def test_funding_long_and_short_positive_and_negative_rates(side):
    res = run(side, Costs(fees=NO_FEES, funding={"um:BTCUSDT": funding_events()}))
    (t,) = res.trades.itertuples()
    assert (res.trades["entry_time"].iloc[0], res.trades["exit_time"].iloc[0]) == (IDX[2], IDX[6])
    ux = -side * 10.0  # x units: -beta * units_y, units_y = side * 1000 / 100
    assert t.units_x == ux
    # 01:00 (bar 1, before the entry): nothing held -> not paid
    # 02:00 = open of the entry fill bar 2: the entry fills at bar 2's close -> not paid
    # 03:30 in bar 3, rate +0.001, no mark -> bar 2's close 100: ux * 100 * 0.001
    # 05:00 = bar 5, rate -0.003, mark 102.5:                  ux * 102.5 * -0.003
    # 06:00 = open of the exit fill bar 6 (held until its close), rate +0.0005, mark = bar
    #        5's close 103:                                       ux * 103 * 0.0005
    # 07:00 = bar 7, after the exit -> not paid
    per_bar = {3: ux * 100 * 0.001, 5: ux * 102.5 * -0.003, 6: ux * 103 * 0.0005}
    # side +1 (short perp): receives 1.0, pays 3.075, receives 0.515 -> pays 1.56 net
    assert sum(per_bar.values()) == pytest.approx(side * (-1.0 + 3.075 - 0.515))
    got = res.positions["funding"]
    np.testing.assert_allclose(got.to_numpy(),
                               [per_bar.get(i, 0.0) for i in range(10)], atol=1e-12)
    assert t.funding == pytest.approx(1.56 * side, abs=1e-12)
    assert res.stats["funding"] == pytest.approx(1.56 * side, abs=1e-12)
    # price P&L: y flat; x from 100 (bar 2) to 104 (bar 6): ux * 4
    assert t.pnl == pytest.approx(ux * 4 - 1.56 * side, abs=1e-12)
    # equity at bar 5 (side +1): cash + marks = 10000 + ux*(103-100) = 9970, minus funding
    # booked at bars 3 and 5: -1.0 + 3.075 -> 9967.925
    if side == 1:
        assert res.equity.iloc[5] == pytest.approx(9967.925, abs=1e-9)
    assert_identity(res, Y_FLAT, X_UP)


def test_a_funding_time_outside_the_holding_period_is_not_paid():
    before_and_after = funding_events().iloc[[0, 1, 5]]  # 01:00, 02:00 (entry bar), 07:00
    res = run(1, Costs(fees=NO_FEES, funding={"um:BTCUSDT": before_and_after}))
    assert res.stats["funding"] == 0.0
    assert (res.positions["funding"] == 0).all()
    # the same rate moved one hour later (03:00 = the first bar held) is paid
    t = funding_events().iloc[[1]].assign(funding_time=pd.Timestamp("2026-11-01 03:00Z"))
    res = run(1, Costs(fees=NO_FEES, funding={"um:BTCUSDT": t}))
    assert res.stats["funding"] == pytest.approx(-10 * 100 * 0.002)  # short perp receives 2.0


def test_funding_as_binance_returns_it_and_as_a_plain_series_give_the_same_payments():
    store = funding_events()
    rest = pd.DataFrame({  # /fapi/v1/fundingRate: epoch ms, rates and marks as strings
        "symbol": "BTCUSDT",
        "fundingTime": (store["funding_time"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta("1ms"),
        "fundingRate": store["funding_rate"].map(repr),
        "markPrice": store["mark_price"].map(lambda v: "" if math.isnan(v) else repr(v))})
    a = run(1, Costs(fees=NO_FEES), funding={"um:BTCUSDT": store})
    b = run(1, Costs(fees=NO_FEES, funding={"x": rest}))
    np.testing.assert_array_equal(a.positions["funding"], b.positions["funding"])
    # data.binance.vision fundingRate archive: calc_time (ms), funding_interval_hours,
    # last_funding_rate; no mark price -> the last close before each time
    archive = pd.DataFrame({"calc_time": rest["fundingTime"], "funding_interval_hours": 1,
                            "last_funding_rate": store["funding_rate"]})
    d = run(1, Costs(fees=NO_FEES, funding={"um:BTCUSDT": archive}))
    assert d.positions["funding"].iloc[5] == pytest.approx(-10 * 102 * -0.003)
    assert d.positions["funding"].iloc[3] == a.positions["funding"].iloc[3]
    # a Series of rates by funding time: every mark is the last close (bar 4's 102 at 05:00)
    rates = store.set_index("funding_time")["funding_rate"]
    c = run(1, Costs(fees=NO_FEES, funding={"um:BTCUSDT": rates}))
    assert c.positions["funding"].iloc[5] == pytest.approx(-10 * 102 * -0.003)


# --------------------------------------------------------------------------- borrow

def test_borrow_accrues_per_bar_on_a_short_spot_leg():
    y = [100, 100, 100, 110, 120, 130, 140, 150, 150, 150.0]
    res = run(-1, Costs(fees=NO_FEES, borrow_annual=0.0876, funding=NO_FUNDING), y=y, x=Y_FLAT)
    # hourly bars: 8760 a year -> 0.0876 / 8760 = 1e-5 per bar on the 10 BTC borrowed
    # (short 1000 / 100 at bar 2), valued at each held bar's close:
    #   bar 3: 1e-5*10*110 = 0.011, bar 4: 0.012, bar 5: 0.013, bar 6 (exit bar): 0.014
    expected = [0, 0, 0, 0.011, 0.012, 0.013, 0.014, 0, 0, 0]
    np.testing.assert_allclose(res.positions["borrow"], expected, atol=1e-15)
    (t,) = res.trades.itertuples()
    assert t.bars == 4
    assert t.borrow == pytest.approx(0.05, abs=1e-12)
    assert t.pnl == pytest.approx(-10 * (140 - 100) - 0.05, abs=1e-9)
    assert_identity(res, y, Y_FLAT)


def test_no_borrow_on_a_long_spot_leg_or_a_perpetual_leg():
    res = run(1, Costs(fees=NO_FEES, borrow_annual=0.5, funding=NO_FUNDING))   # long spot, short perp
    assert res.stats["borrow"] == 0.0
    ys, xs = legs()
    both_perp = bt.from_zscore(ys, xs, z_for(-1), 1.0, costs=Costs(fees=NO_FEES,
                               borrow_annual=0.5, funding={"y": None, "x": None}),
                               legs=("um:BTCUSDT", "um:ETHUSDT"),
                               notional=1_000.0)
    assert both_perp.stats["borrow"] == 0.0
    spot_short = run(-1, Costs(fees=NO_FEES, borrow_annual=0.5, funding=NO_FUNDING))
    assert spot_short.stats["borrow"] > 0


# --------------------------------------------------------------------------- fees

def test_fee_per_market_taker_maker_and_tier():
    # entry fills at bar 2: 10 BTC spot at 100 and 10 perp at 100 -> 1000 notional each
    # exit at bar 6: spot 10 x 100 = 1000, perp 10 x 104 = 1040
    default = run(1, Costs(funding=NO_FUNDING))                       # VIP 0 taker: spot 10 bps, USD-M 5 bps
    assert default.stats["fees"] == pytest.approx(0.001 * 2000 + 0.0005 * 2040)  # 3.02
    maker = run(1, Costs(liquidity="maker", funding=NO_FUNDING))        # VIP 0 maker: spot 10 bps, USD-M 2 bps
    assert maker.stats["fees"] == pytest.approx(0.001 * 2000 + 0.0002 * 2040)
    vip3 = run(1, Costs(fees={"um": USDM_VIP_BPS[3]}, funding=NO_FUNDING))  # USD-M VIP 3 taker 3.2 bps
    assert vip3.stats["fees"] == pytest.approx(0.001 * 2000 + 0.00032 * 2040)
    np.testing.assert_allclose(default.positions["fees"].iloc[[2, 6]],
                               [1.0 + 0.5, 1.0 + 0.52], atol=1e-12)
    assert_identity(default, Y_FLAT, X_UP)


def test_fee_bps_still_means_one_fee_for_every_fill():
    ys, xs = legs()
    old = bt.from_zscore(ys, xs, z_for(1), 1.0, fee_bps=7.5, slippage_bps=2.0,
                         notional=1_000.0, funding=NO_FUNDING)
    new = bt.from_zscore(ys, xs, z_for(1), 1.0, costs=Costs.flat(7.5, 2.0), notional=1_000.0,
                         funding=NO_FUNDING)
    pd.testing.assert_frame_equal(old.trades, new.trades)
    assert old.stats["fees"] == pytest.approx(0.00075 * (2000 * 1.0 + 2040 * 1.0), rel=1e-3)
    with pytest.raises(ValueError, match="not both"):
        bt.from_zscore(ys, xs, z_for(1), 1.0, fee_bps=7.5, costs=Costs())


def test_slippage_is_reported_as_its_own_cost():
    res = run(1, Costs(fees=NO_FEES, slippage_bps=10.0, funding=NO_FUNDING))
    # 10 bps of the bar-price notional of each fill: (1000 + 1000) + (1000 + 1040)
    assert res.trades["slippage"].iloc[0] == pytest.approx(0.001 * 4040)
    np.testing.assert_allclose(res.positions["slippage"].iloc[[2, 6]], [2.0, 2.04])
    # the fills carry it: long y bought at 100.1, short x sold at 99.9, ...
    assert res.trades["entry_price_y"].iloc[0] == pytest.approx(100.1)
    assert_identity(res, Y_FLAT, X_UP)


# --------------------------------------------------------------------------- basis pair

def test_spot_vs_perp_basis_short_spot_pays_borrow_and_long_perp_funding():
    """Short the spread: short BTCUSDT spot (borrowed), long um:BTCUSDT; every cost on."""
    y = [100, 100, 100, 110, 120, 130, 140, 150, 150, 150.0]
    costs = Costs(borrow_annual=0.0876, slippage_bps=0.0,
                  funding={"um:BTCUSDT": funding_events()})
    res = run(-1, costs, y=y, x=X_UP)
    (t,) = res.trades.itertuples()
    assert (t.units_y, t.units_x) == (-10.0, 10.0)
    # fees: spot 10 bps of 1000 (in) + 1400 (out); perp 5 bps of 1000 (in) + 1040 (out)
    fees = 0.001 * (1000 + 1400) + 0.0005 * (1000 + 1040)          # 2.4 + 1.02 = 3.42
    borrow = 1e-5 * 10 * (110 + 120 + 130 + 140)                   # 0.05
    funding = 10 * (100 * 0.001 + 102.5 * -0.003 + 103 * 0.0005)   # long perp: -1.56
    price = -10 * (140 - 100) + 10 * (104 - 100)                   # -400 + 40
    assert t.fees == pytest.approx(fees, abs=1e-12)
    assert t.borrow == pytest.approx(borrow, abs=1e-12)
    assert t.funding == pytest.approx(funding, abs=1e-12) and funding == pytest.approx(-1.56)
    assert t.pnl == pytest.approx(price - fees - borrow - funding, abs=1e-9)
    assert res.stats["final_equity"] == pytest.approx(
        10_000 + price - fees - borrow - funding, abs=1e-9)
    assert_identity(res, y, X_UP)
    text = res.summary()
    assert "borrow 8.76%/yr" in text and "um:BTCUSDT (6 events)" in text


def test_run_and_sweep_take_costs_and_agree():
    rng = np.random.default_rng(7)
    n = 400
    idx = pd.date_range("2026-11-01", periods=n, freq="min", tz="UTC")
    spot = pd.Series(100_000 * np.exp(np.cumsum(rng.normal(0, 4e-4, n))), idx, name="BTCUSDT")
    perp = (spot * (1 + rng.normal(0, 3e-4, n))).rename("um:BTCUSDT")
    times = pd.date_range("2026-11-01", periods=8, freq="1h", tz="UTC")
    rates = pd.Series(rng.normal(1e-4, 2e-4, len(times)), times)
    costs = Costs(borrow_annual=0.1, slippage_bps=1.0, funding={"um:BTCUSDT": rates})
    spec_kw = dict(hedge=1.0, window=30)
    with pytest.warns(bt.ShortSampleWarning):
        res = bt.run(spot, perp, entry=1.5, exit=0.2, stop=None, costs=costs, **spec_kw)
    assert res.stats["n_trades"] > 3 and res.stats["borrow"] > 0 and res.stats["funding"] != 0
    assert_identity(res, spot, perp)
    grid = bt.sweep(spot, perp, entry=[1.5], exit=[0.2], stop=[None], costs=costs,
                    progress=False, **spec_kw)
    for key in ("fees", "slippage", "borrow", "funding", "final_equity", "sharpe"):
        assert grid[key].iloc[0] == pytest.approx(res.stats[key], rel=1e-12, abs=1e-12)


# --------------------------------------------------------------------------- bad input

def test_bad_cost_input_is_refused_in_one_line():
    ys, xs = legs()
    z = z_for(1)
    with pytest.warns(UserWarning, match="perpetual um:BTCUSDT .* no funding rates"):
        bt.from_zscore(ys, xs, z, 1.0, costs=Costs(), notional=1_000.0)
    with pytest.raises(ValueError, match="spot leg"):
        bt.from_zscore(ys, xs, z, 1.0, funding={"y": funding_events()})
    with pytest.raises(ValueError, match="not a leg of this pair"):
        bt.from_zscore(ys, xs, z, 1.0, funding={"um:ETHUSDT": funding_events(),
                                                "um:BTCUSDT": None})
    with pytest.raises(ValueError, match="no funding-rate column"):
        Costs(funding={"um:BTCUSDT": pd.DataFrame({"t": [1]})})
    with pytest.raises(ValueError, match="unknown market"):
        Costs(fees={"futures": 5})
    with pytest.raises(ValueError, match="borrow_annual"):
        Costs(borrow_annual=-0.1)
    with pytest.raises(ValueError, match="liquidity"):
        Costs(liquidity="market")
    with pytest.raises(TypeError, match="costs must be"):
        bt.from_zscore(ys, xs, z, 1.0, costs={"fee": 10})


def test_costs_is_a_frozen_value():
    a = Costs(borrow_annual=0.05, funding={"um:BTCUSDT": funding_events()})
    b = Costs(borrow_annual=0.05, funding={"um:BTCUSDT": funding_events()})
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    other = funding_events().assign(funding_rate=0.0)
    assert a != Costs(borrow_annual=0.05, funding={"um:BTCUSDT": other})
    assert Costs() == Costs(fees={"spot": (10, 10)}) != Costs(liquidity="maker")
    with pytest.raises(AttributeError):
        a.borrow_annual = 0.1  # type: ignore[misc]
    with pytest.raises(TypeError):
        a.fees["spot"] = (0, 0)  # type: ignore[index]
    assert a.fee_bps("um") == 5.0 and Costs(liquidity="maker").fee_bps("um") == 2.0
