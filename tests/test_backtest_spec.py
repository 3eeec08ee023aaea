"""backtest.run/sweep trade a PairSpec: one signal, no silent fallbacks, no log-price nonsense."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from test_backtest_realdata import btc_eth  # noqa: F401 - the real 1 s bars fixture
from test_pair_spec import _kline_close

from quantlab import backtest as bt
from quantlab.analytics import PairSpec
from quantlab.backtest.metrics import STAT_KEYS


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(3)
    n = 2000
    idx = pd.date_range("2024-08-09", periods=n, freq="s", tz="UTC")
    x = np.round(2680 * np.exp(np.cumsum(rng.normal(0, 2e-3, n))), 2)
    s = np.zeros(n)
    for i in range(1, n):
        s[i] = 0.95 * s[i - 1] + rng.normal(0, 150.0)
    return pd.Series(np.round(23 * x + 300 + s, 2), idx), pd.Series(x, idx)


def _same(a, b):
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == pytest.approx(b, rel=1e-12, abs=1e-12)


@pytest.mark.filterwarnings("ignore::quantlab.backtest.ShortSampleWarning")
@pytest.mark.parametrize("hedge", ["huber", "theilsen", "ols", "kalman", "expanding_ols"])
def test_sweep_row_equals_run_for_every_hedge(pair, hedge):
    """Seen: with Huber or Theil-Sen, sweep silently fell back to rolling OLS."""
    y, x = pair
    spec = PairSpec(hedge=hedge, window=60, formation=300)
    grid = bt.sweep(y, x, entry=[1.5, 2.0], exit=[0.3], window=[60, 90], spec=spec, progress=False)
    for _, row in grid.iterrows():
        res = bt.run(y, x, entry=row["entry"], exit=row["exit"],
                     spec=spec.replace(window=int(row["window"])))
        assert res.stats["n_trades"] > 0
        for key in STAT_KEYS:
            assert _same(row[key], res.stats[key]), (hedge, key)
    rolling = bt.sweep(y, x, entry=[1.5, 2.0], exit=[0.3], window=[60, 90], progress=False)
    assert not np.allclose(rolling["total_return"], grid["total_return"])


@pytest.mark.filterwarnings("ignore::quantlab.backtest.ShortSampleWarning")
def test_result_exposes_the_z_it_traded_on(pair):
    y, x = pair
    spec = PairSpec(hedge="huber", window=60, formation=400)
    res = bt.run(y, x, spec=spec)
    pd.testing.assert_series_equal(res.z, spec.evaluate(y, x).z, check_names=False)
    assert res.signal.spec == spec and res.params["spec"] == spec
    assert (res.trades["entry_time"] > y.index[400]).all()  # nothing traded on the formation
    old = bt.run(y, x, hedge="rolling_ols", window=60)  # the older arguments map onto a spec
    new = bt.run(y, x, spec=PairSpec(hedge="rolling_ols", window=60))
    assert old.stats == new.stats


def test_log_prices_are_refused(pair, btc_eth):  # noqa: F811
    y, x = pair
    for yy, xx in ((y, x), btc_eth):
        with pytest.raises(ValueError, match=r"PairSpec\(prices='log'\)"):
            bt.run(np.log(yy), np.log(xx))
        with pytest.raises(ValueError, match=r"PairSpec\(prices='log'\)"):
            bt.sweep(np.log(yy), np.log(xx), progress=False)


@pytest.mark.filterwarnings("ignore::quantlab.backtest.ShortSampleWarning")
def test_log_spec_hedges_in_units(pair):
    y, x = pair
    spec = PairSpec(window=60, prices="log")
    res = bt.run(y, x, spec=spec)
    sig = spec.evaluate(y, x)
    units = sig.frame["beta"] * y / x
    ok = res.positions["z"].notna()
    np.testing.assert_allclose(res.positions["beta"][ok], units[ok], rtol=1e-12)
    assert res.trades["beta"].median() == pytest.approx(23, rel=0.2)  # units, not the log slope (~1)


def test_delta_obs_var_say_what_to_use_instead(pair):
    y, x = pair
    with pytest.raises(ValueError, match="PairSpec"):
        bt.run(y, x, hedge="kalman", delta=1e-4, obs_var=1e-3)


@pytest.mark.filterwarnings("ignore::quantlab.backtest.ShortSampleWarning")
def test_default_kalman_trades_on_real_bars(btc_eth, real_data):  # noqa: F811
    y, x = btc_eth
    res = bt.run(y, x, entry=1.5, exit=0.3, stop=3.0, spec=PairSpec(hedge="kalman", window=60))
    z = res.z.dropna()
    assert res.stats["n_trades"] >= 5 and 0.5 < z.std() < 2.0
    sol = _kline_close(real_data / "klines" / "SOLUSDT-1m-2025-07-13.csv")
    btc = _kline_close(real_data / "klines" / "BTCUSDT-1m-2025-07-13.csv")
    res = bt.run(sol, btc, entry=1.5, exit=0.3, stop=3.0, spec=PairSpec(hedge="kalman"))
    assert res.stats["n_trades"] >= 5 and 0.3 < res.z.dropna().std() < 3.0


def test_short_sample_warns_once_with_per_trade_statistics(btc_eth):  # noqa: F811
    y, x = btc_eth  # 11 minutes of real bars
    with pytest.warns(bt.ShortSampleWarning) as caught:
        res = bt.run(y, x, entry=1.5, exit=0.3, window=30)
    assert len(caught) == 1
    msg = str(caught[0].message)
    assert "\n" not in msg and "days (< 30)" in msg and "per-trade Sharpe" in msg
    assert "trade_sharpe" in res.summary() and "mean little" in res.summary()
    p = res.trades["pnl"].to_numpy()
    assert res.stats["trade_sharpe"] == pytest.approx(p.mean() / p.std(ddof=1))
    assert res.stats["trade_t_stat"] == pytest.approx(res.stats["trade_sharpe"] * math.sqrt(len(p)))
