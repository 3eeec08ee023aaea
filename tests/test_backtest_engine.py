"""quantlab.backtest.run / from_zscore: hand-computed trades, accounting, no look-ahead."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from quantlab import backtest as bt
from quantlab.backtest import kernels as k
from quantlab.backtest import metrics as m
from quantlab.errors import InsufficientDataError

NAN = np.nan
DAYS = pd.date_range("2024-01-01", periods=10, freq="D")


def hand_case():
    """Two trades with fees, the second stopped out (numbers worked out in the test)."""
    z = pd.Series([NAN, 0, 2.5, 1.0, 0.2, -2.5, -4.5, -3.0, -1.0, 0.0], DAYS)
    y = pd.Series([100, 100, 100, 100, 98, 97, 100, 94, 95, 95.0], DAYS)
    x = pd.Series([50, 50, 50, 50, 49.5, 49, 50, 48, 48, 48.0], DAYS)
    return y, x, z


def test_hand_computed_two_trades_with_fees_and_a_stop():
    y, x, z = hand_case()
    res = bt.from_zscore(y, x, z, 2.0, entry=2.0, exit=0.5, stop=4.0, fee_bps=10.0,
                         capital=10_000.0, notional=1_000.0)
    # bar 2: z=2.5 > 2 -> short the spread, filled at bar 3 (y=100, x=50):
    #   units_y = -1000/100 = -10, units_x = +2*10 = 20; fee 10 bps of 1000+1000 = 2.00
    # bar 4: z=0.2 < 0.5 -> exit, filled at bar 5 (y=97, x=49): fee 0.001*(970+980) = 1.95
    #   pnl = -10*(97-100) + 20*(49-50) - 3.95 = 6.05
    # bar 5: z=-2.5 -> long, filled at bar 6 (y=100, x=50): +10 y, -20 x, fee 2.00
    # bar 6: z=-4.5 < -4 -> stop, filled at bar 7 (y=94, x=48): fee 0.001*(940+960) = 1.90
    #   pnl = 10*(94-100) - 20*(48-50) - 3.90 = -23.90
    # bar 7: z=-3 would enter long, but the stop blocks it; bar 8 |z|<=2 unblocks
    assert res.positions["signal"].tolist() == [0, 0, 0, -1, -1, 0, 1, 0, 0, 0]
    assert res.positions["units_y"].tolist() == [0, 0, 0, -10, -10, 0, 10, 0, 0, 0]
    assert res.positions["units_x"].tolist() == [0, 0, 0, 20, 20, 0, -20, 0, 0, 0]
    np.testing.assert_allclose(
        res.equity.to_numpy(),
        [10000, 10000, 10000, 9998, 10008, 10006.05, 10004.05, 9982.15, 9982.15, 9982.15],
        rtol=0, atol=1e-9)
    tr = res.trades
    assert tr["entry_time"].tolist() == [DAYS[3], DAYS[6]]
    assert tr["exit_time"].tolist() == [DAYS[5], DAYS[7]]
    assert tr["side"].tolist() == [-1, 1]
    assert tr["entry_z"].tolist() == [2.5, -2.5]
    assert tr["exit_z"].tolist() == [0.2, -4.5]
    assert tr["reason"].tolist() == ["exit", "stop"]
    assert tr["bars"].tolist() == [2, 1]
    np.testing.assert_allclose(tr["pnl"], [6.05, -23.9], rtol=0, atol=1e-9)
    np.testing.assert_allclose(tr["fees"], [3.95, 3.9], rtol=0, atol=1e-12)
    np.testing.assert_allclose(tr["return"], [6.05 / 2000, -23.9 / 2000], rtol=1e-12)
    s = res.stats
    assert s["n_trades"] == 2
    assert s["fees"] == pytest.approx(7.85, abs=1e-12)
    assert s["win_rate"] == 0.5
    assert s["profit_factor"] == pytest.approx(6.05 / 23.9, rel=1e-12)
    assert s["expectancy"] == pytest.approx(-8.925, abs=1e-12)
    assert s["avg_holding"] == 1.5
    assert s["exposure"] == pytest.approx(0.3)
    assert s["turnover"] == pytest.approx((2000 + 1950 + 2000 + 1900) / 10000, rel=1e-12)
    assert s["total_return"] == pytest.approx(-17.85 / 10000, rel=1e-9)
    assert s["final_equity"] == pytest.approx(9982.15, abs=1e-9)


def test_hand_computed_slippage():
    y, x, z = hand_case()
    res = bt.from_zscore(y, x, z.where(z.index < DAYS[5]), 2.0, fee_bps=0.0,
                         slippage_bps=100.0, notional=1_000.0)
    # short spread: sell 10 y at 100*0.99, buy 20 x at 50*1.01; exit: buy y at 97*1.01,
    # sell x at 49*0.99 -> -10*(97.97-99) + 20*(48.51-50.5) = 10.3 - 39.8
    (pnl,) = res.trades["pnl"]
    assert pnl == pytest.approx(-29.5, abs=1e-9)
    assert res.trades["entry_price_y"].iloc[0] == pytest.approx(99.0)
    assert res.trades["exit_price_x"].iloc[0] == pytest.approx(48.51)
    assert res.stats["fees"] == 0.0


def test_time_exit_end_of_data_and_flip():
    y, x, _ = hand_case()
    z = pd.Series([0, 2.5, 3.0, 3.0, 3.0, 1.0, -2.5, 2.5, 2.5, 2.5], DAYS)
    res = bt.from_zscore(y, x, z, 2.0, max_holding=2, fee_bps=0.0)
    tr = res.trades
    # short decided at bar 1 (fill 2), time exit decided at bar 3 (fill 4);
    # blocked until bar 5 (|z| <= 2); long at bar 6 (fill 7), exit + flip at bar 7
    # (fill 8: close the long, open a short), open at the end -> closed on bar 9
    assert tr["reason"].tolist() == ["time", "exit", "end"]
    assert tr["side"].tolist() == [-1, 1, -1]
    assert tr["bars"].tolist() == [2, 1, 1]
    assert tr["exit_time"].tolist() == [DAYS[4], DAYS[8], DAYS[9]]
    assert tr["entry_time"].tolist() == [DAYS[2], DAYS[7], DAYS[8]]
    assert res.positions["signal"].iloc[-1] == 0


# ------------------------------------------------------------------ synthetic cointegrated pair

@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(7)
    n = 3000
    idx = pd.date_range("2024-08-09", periods=n, freq="s", tz="UTC")
    x = 2680 * np.exp(np.cumsum(rng.normal(0, 2e-3, n)))
    s = np.zeros(n)
    for i in range(1, n):
        s[i] = 0.95 * s[i - 1] + rng.normal(0, 150.0)
    y = 23 * x + 300 + s
    return pd.Series(y, idx, name="BTCUSDT"), pd.Series(x, idx, name="ETHUSDT")


HEDGE_CASES = [
    dict(hedge="rolling_ols"),
    dict(hedge="kalman"),
    dict(hedge="expanding_ols"),
    dict(hedge=23.0),
]


@pytest.mark.parametrize("kw", HEDGE_CASES, ids=lambda kw: str(kw["hedge"]))
def test_accounting_identities(pair, kw):
    y, x = pair
    res = bt.run(y, x, entry=1.5, exit=0.3, stop=3.0, window=60, max_holding=100,
                 slippage_bps=1.0, **kw)
    tr = res.trades
    assert len(tr) >= 10
    assert res.equity.iloc[-1] - res.equity.iloc[0] == pytest.approx(tr["pnl"].sum(),
                                                                     rel=1e-9, abs=1e-6)
    assert res.stats["fees"] == pytest.approx(tr["fees"].sum(), rel=1e-12)
    assert res.stats["fees"] == pytest.approx(res.positions["fees"].sum(), rel=1e-12)
    eq = res.equity
    assert res.stats["sharpe"] == pytest.approx(m.sharpe(eq), rel=1e-12)
    r = eq.pct_change().iloc[1:]
    assert res.stats["sharpe"] == pytest.approx(r.mean() / r.std() * math.sqrt(365 * 86400),
                                                rel=1e-9)
    assert res.stats["max_drawdown"] == pytest.approx((eq / eq.cummax() - 1).min(), rel=1e-12)
    assert res.stats["n_trades"] == len(tr)
    assert res.stats["exposure"] == pytest.approx((res.positions["signal"] != 0).mean())
    # every trade has a frozen hedge: the units held do not change during the trade
    for row in tr.itertuples():
        held = res.positions.loc[row.entry_time:row.exit_time].iloc[:-1]
        assert (held["units_x"] == row.units_x).all()
        assert row.units_x == pytest.approx(-row.beta * row.units_y)
    assert set(tr["reason"]) <= {"exit", "stop", "time", "end"}


def _scrambled(s: pd.Series, k: int, seed: int) -> pd.Series:
    rng = np.random.default_rng(seed)
    out = s.copy()
    tail = out.iloc[k + 1:].to_numpy()
    out.iloc[k + 1:] = rng.permutation(tail) * rng.uniform(0.9, 1.1, tail.size)
    return out


@pytest.mark.parametrize("kw", HEDGE_CASES, ids=lambda kw: str(kw["hedge"]))
def test_no_look_ahead(pair, kw):
    y, x = pair
    args = dict(entry=1.5, exit=0.3, stop=3.0, window=60, **kw)
    base = bt.run(y, x, **args)
    for k_ in (700, 1500, 2400):
        other = bt.run(_scrambled(y, k_, 1), _scrambled(x, k_, 2), **args)
        # the position held from bar k+1 is decided at bar k's close
        pd.testing.assert_series_equal(other.positions["signal"].iloc[:k_ + 2],
                                       base.positions["signal"].iloc[:k_ + 2])
        pd.testing.assert_frame_equal(other.positions.iloc[:k_ + 1], base.positions.iloc[:k_ + 1],
                                      check_exact=True)
        pd.testing.assert_series_equal(other.equity.iloc[:k_ + 1], base.equity.iloc[:k_ + 1],
                                       check_exact=True)
        # the scramble really changes what comes after k
        assert not other.equity.iloc[k_ + 1:].equals(base.equity.iloc[k_ + 1:])


def test_shifting_the_signal_changes_the_result(pair):
    y, x = pair
    res = bt.run(y, x, entry=1.5, exit=0.3, stop=3.0, window=60)
    z = res.positions["z"].to_numpy()
    beta = res.positions["beta"].to_numpy()
    yv, xv = y.to_numpy(), x.to_numpy()
    target, reason = k.decide_nb(z, 1.5, 0.3, 3.0, 0)
    eq = k.execute_nb(yv, xv, target, reason, beta, 1e4, 1e4, 1e-3, 1e-3, 0.0)[3]
    np.testing.assert_array_equal(eq, res.equity.to_numpy())
    # one bar later or one bar earlier: different equity
    late = k.execute_nb(yv, xv, np.roll(target, 1), np.roll(reason, 1), beta,
                        1e4, 1e4, 1e-3, 1e-3, 0.0)[3]
    early = k.execute_nb(yv, xv, np.roll(target, -1), np.roll(reason, -1), beta,
                         1e4, 1e4, 1e-3, 1e-3, 0.0)[3]
    assert np.abs(late - eq).max() > 1.0
    assert np.abs(early - eq).max() > 1.0
    # a one-bar look-ahead (deciding at bar t on z[t+1]) makes the position held from
    # bar k+1 depend on prices after k; the scramble test sees that, the real engine not
    def signals(zz, yy, xx, peek):
        t_, r_ = k.decide_nb(np.roll(zz, -1) if peek else zz, 1.5, 0.3, 3.0, 0)
        return k.execute_nb(yy, xx, t_, r_, beta, 1e4, 1e4, 1e-3, 1e-3, 0.0)[0]

    caught = 0
    for kk in range(600, 2900, 100):
        ys, xs = _scrambled(y, kk, 1), _scrambled(x, kk, 2)
        zs = bt.run(ys, xs, entry=1.5, exit=0.3, stop=3.0, window=60).positions["z"].to_numpy()
        for peek in (False, True):
            a = signals(z, yv, xv, peek)[: kk + 2]
            b = signals(zs, ys.to_numpy(), xs.to_numpy(), peek)[: kk + 2]
            if not peek:
                np.testing.assert_array_equal(a, b)
            else:
                caught += not np.array_equal(a, b)
    assert caught >= 3


def test_summary_and_html(pair):
    y, x = pair
    res = bt.run(y, x, entry=1.5, exit=0.3, stop=3.0, window=60)
    text = res.summary()
    for key in ("sharpe", "max_drawdown", "profit_factor", "trades by reason", "window 60"):
        assert key in text
    html = res._repr_html_()
    assert "<table" in html and "sharpe" in html and "entry_z" in html
    with pytest.raises(Exception):  # noqa: B017 - frozen dataclass
        res.equity = None


# ------------------------------------------------------------------ validation

@pytest.mark.parametrize("kwargs,match", [
    (dict(entry=2.0, exit=2.0), "exit must be below entry"),
    (dict(entry=2.0, exit=-0.1), "exit must be >= 0"),
    (dict(entry=2.0, stop=2.0), "stop must be above entry"),
    (dict(window=0), "window must be >= 3"),
    (dict(fee_bps=-1), "fee_bps"),
    (dict(slippage_bps=-1), "slippage_bps"),
    (dict(capital=0), "capital"),
    (dict(notional=-5), "notional"),
    (dict(max_holding=0), "max_holding"),
    (dict(hedge="median"), "hedge must be one of"),
])
def test_bad_arguments_raise_value_errors_naming_them(pair, kwargs, match):
    y, x = pair
    with pytest.raises(ValueError, match=match):
        bt.run(y, x, **kwargs)


def test_bad_series_raise(pair):
    y, x = pair
    bad = y.copy()
    bad.iloc[5] = -1.0
    with pytest.raises(ValueError, match="y must hold finite positive prices"):
        bt.run(bad, x)
    bad.iloc[5] = NAN
    with pytest.raises(ValueError, match="y must hold finite positive prices"):
        bt.run(bad, x)
    with pytest.raises(ValueError, match="same index"):
        bt.run(y, x.iloc[1:])
    with pytest.raises(TypeError, match="x must be a pandas Series"):
        bt.run(y, x.to_numpy())
    with pytest.raises(TypeError, match="window"):
        bt.run(y, x, window=2.5)
    with pytest.raises(InsufficientDataError, match="needs at least"):
        bt.run(y.iloc[:100], x.iloc[:100], window=60)
    with pytest.raises(ValueError, match="periods_per_year"):
        bt.run(y.reset_index(drop=True), x.reset_index(drop=True))


def test_degenerate_input_warns(pair):
    y, x = pair
    idx = y.index[:200]
    flat = pd.Series(100.0, idx)
    with pytest.warns(UserWarning, match="undefined at every bar"):
        res = bt.run(flat * 2, flat, hedge=2.0, window=20)
    assert res.stats["n_trades"] == 0 and res.equity.iloc[-1] == 10_000.0
    assert math.isnan(res.stats["sharpe"])


def test_max_holding_as_a_duration(pair):
    y, x = pair
    a = bt.run(y, x, entry=1.5, exit=0.3, window=60, max_holding=30)
    b = bt.run(y, x, entry=1.5, exit=0.3, window=60, max_holding="30s")
    c = bt.run(y, x, entry=1.5, exit=0.3, window=60, max_holding=pd.Timedelta(seconds=29.5))
    assert (a.trades["reason"] == "time").any()
    pd.testing.assert_frame_equal(a.trades, b.trades)
    pd.testing.assert_frame_equal(a.trades, c.trades)
    assert a.trades["bars"].max() <= 30
    with pytest.raises(ValueError, match="max_holding"):
        bt.run(y, x, max_holding="soon")
