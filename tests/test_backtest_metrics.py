"""Metric functions of quantlab.backtest.metrics against published and pinned values."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantlab.backtest import metrics as m

sys.path.insert(0, str(Path(__file__).parent / "reference"))
from backtest_metrics_vectorbt import equity_curve  # noqa: E402

# printed by tests/reference/backtest_metrics_vectorbt.py (vectorbt 1.2.0)
VBT = {
    "sharpe": 1.1491008255636332,
    "sharpe_rf": 0.7695473284291852,
    "sortino": 1.6617439904422908,
    "max_drawdown": -0.21172478479704016,
    "cagr": 0.22445575108262195,
    "calmar": 1.0601297873453301,
}


def daily(values) -> pd.Series:
    return pd.Series(np.asarray(values, dtype=float),
                     index=pd.date_range("2020-01-01", periods=len(values), freq="D"))


def test_vectorbt_sharpe_fixture():
    # daily equity [1..5], returns minus 0.01 per bar, std ddof=1, 365-day year
    assert m.sharpe(daily([1, 2, 3, 4, 5]), risk_free=0.01) == pytest.approx(
        29.052280196490333, rel=1e-12)
    assert m.sharpe(np.array([1, 2, 3, 4, 5.0]), 0.01, periods_per_year=365) == pytest.approx(
        29.052280196490333, rel=1e-12)


def test_against_vectorbt_on_a_seeded_curve():
    eq = equity_curve()
    got = {
        "sharpe": m.sharpe(eq),
        "sharpe_rf": m.sharpe(eq, risk_free=0.0002),
        "sortino": m.sortino(eq),
        "max_drawdown": m.max_drawdown(eq),
        "cagr": m.cagr(eq),
        "calmar": m.calmar(eq),
    }
    for k, v in VBT.items():
        assert got[k] == pytest.approx(v, rel=1e-10), k


def test_periods_per_year_from_the_index():
    assert m.periods_per_year(pd.date_range("2024", periods=5, freq="D")) == 365
    assert m.periods_per_year(pd.date_range("2024", periods=5, freq="s", tz="UTC")) == 31_536_000
    assert m.periods_per_year(pd.date_range("2024", periods=5, freq="min").as_unit("ms")) \
        == 525_600
    with pytest.raises(ValueError, match="periods_per_year"):
        m.periods_per_year(pd.RangeIndex(5))
    with pytest.raises(ValueError, match="periods_per_year"):
        m.sharpe(np.array([1.0, 2.0, 3.0]))


def test_drawdown_and_its_duration():
    eq = daily([1, 2, 1, 1, 2, 3])
    assert m.max_drawdown(eq) == -0.5
    assert m.max_drawdown_duration(eq) == 2
    assert m.max_drawdown_duration(daily([3, 2, 1, 1])) == 3  # ends under water
    assert m.max_drawdown(daily([1, 2, 3])) == 0.0
    assert m.max_drawdown_duration(daily([1, 2, 3])) == 0
    assert math.isnan(m.calmar(daily([1, 2, 3])))  # no drawdown


def test_total_return_and_cagr():
    assert m.total_return(daily([100, 110, 121])) == pytest.approx(0.21)
    # two daily returns of 10 %: (1.21) ** (365 / 2) - 1
    assert m.cagr(daily([100, 110, 121])) == pytest.approx(1.21 ** 182.5 - 1)
    assert m.cagr(daily([100, 50, 0.0])) == -1.0
    # one second of +1 % extrapolated to a year overflows: inf, no warning
    s = pd.Series([1.0, 1.01], index=pd.date_range("2024", periods=2, freq="s"))
    assert m.cagr(s) == math.inf


def test_undefined_ratios_are_nan_or_inf_without_warnings():
    flat = daily([5, 5, 5, 5])
    assert math.isnan(m.sharpe(flat))
    assert math.isnan(m.sortino(flat))
    rising = daily([1, 2, 4, 8])  # constant return: zero std, positive mean
    assert m.sharpe(rising) == math.inf
    assert m.sortino(daily([1, 2, 3, 4])) == math.inf  # no downside
    assert math.isnan(m.sharpe(daily([1])))


def test_sortino_definition():
    eq = daily([100, 90, 99, 99, 108.9])
    r = np.array([-0.1, 0.1, 0.0, 0.1])
    dd = math.sqrt((0.01) / 4)
    assert m.sortino(eq) == pytest.approx(r.mean() / dd * math.sqrt(365))


def test_trade_statistics_conventions():
    pnl = np.array([10.0, -5.0, 0.0, 15.0])
    assert m.win_rate(pnl) == 0.5  # break-even counts in the denominator, not as a win
    assert m.profit_factor(pnl) == 5.0
    assert m.expectancy(pnl) == 5.0
    assert m.profit_factor(np.array([1.0, 0.0])) == math.inf  # no losses
    assert math.isnan(m.profit_factor(np.array([0.0])))
    assert math.isnan(m.profit_factor(np.array([])))
    assert math.isnan(m.win_rate(np.array([])))
    assert math.isnan(m.expectancy(np.array([])))


def test_returns_of_a_bust_account_are_nan():
    r = m.returns(np.array([100.0, 0.0, 10.0]))
    assert r[0] == -1.0 and math.isnan(r[1])


@pytest.mark.parametrize("curve", [
    "walk", "flat", "bust", "rising", "short",
])
def test_one_pass_statistics_equal_the_definitions(curve):
    from quantlab.backtest import kernels as k

    rng = np.random.default_rng(5)
    e = {
        "walk": 1e4 * np.cumprod(1 + rng.normal(0, 0.01, 5000)),
        "flat": np.full(50, 1e4),
        "bust": np.array([100.0, 50.0, -10.0, 5.0, 20.0, 30.0]),
        "rising": np.array([1.0, 2.0, 4.0, 8.0]),
        "short": np.array([1e4]),
    }[curve]
    pnl = rng.normal(0, 1, 7)
    args = dict(pnl=pnl, bars_held=np.arange(7), signal=np.ones(e.size), traded=np.ones(3),
                fees=2.0, capital=1e4, risk_free=1e-5)
    fast = m.compute_stats(e, 365.0, one_pass=True, **args)
    slow = m.compute_stats(e, 365.0, one_pass=False, **args)
    assert fast.keys() == slow.keys() == set(m.STAT_KEYS)
    for key in m.STAT_KEYS:
        a, b = fast[key], slow[key]
        if isinstance(b, float) and math.isnan(b):
            assert math.isnan(a), key
        else:
            assert a == pytest.approx(b, rel=1e-10), key
    for a, b in zip(k.equity_stats_nb(e, 1e-5), k.equity_stats_py(e, 1e-5), strict=True):
        assert a == b or (math.isnan(a) and math.isnan(b))
