"""Honest inference: Engle-Granger p-values for estimated hedges, OLS standard errors,
direction-corrected p-values, no silent arguments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.tsa.stattools import coint

import quantlab.analytics as qa


def _walks(seed, n=1000):
    rng = np.random.default_rng(seed)
    return (pd.Series(100 + np.cumsum(rng.normal(0, 1, n))),
            pd.Series(100 + np.cumsum(rng.normal(0, 1, n))))


def test_ols_hedge_inference_equals_statsmodels():
    y, x = _walks(1, 500)
    h = qa.hedge_ratio(y, x)
    ref = sm.OLS(y.to_numpy(), sm.add_constant(x.to_numpy())).fit()
    assert h.beta == pytest.approx(ref.params[1], rel=1e-10)
    assert h.alpha == pytest.approx(ref.params[0], rel=1e-10)
    assert h.beta_se == pytest.approx(ref.bse[1], rel=1e-10)
    assert h.alpha_se == pytest.approx(ref.bse[0], rel=1e-10)
    assert h.beta_t == pytest.approx(ref.tvalues[1], rel=1e-10)
    assert h.alpha_t == pytest.approx(ref.tvalues[0], rel=1e-10)
    assert h.rsquared == pytest.approx(ref.rsquared, rel=1e-10)
    assert h.prices == "raw" and "raw" in h.summary()
    lg = qa.hedge_ratio(y + 1000, x + 1000, prices="log")
    assert lg.prices == "log" and lg.beta == pytest.approx(
        qa.hedge_ratio(np.log(y + 1000), np.log(x + 1000)).beta, rel=1e-12)


def test_compare_reports_the_engle_granger_pvalue():
    y, x = _walks(2)
    y = 0.5 * x + pd.Series(np.random.default_rng(3).normal(0, 1, len(x)))  # cointegrated
    t = qa.compare_hedge_ratios(y, x)
    stat, p, _ = coint(y, x, trend="c", autolag="aic")
    assert t.loc["ols", "coint_stat"] == pytest.approx(stat, rel=1e-9)
    assert t.loc["ols", "coint_pvalue"] == pytest.approx(p, rel=1e-9)
    assert t.loc["ols", "coint_pvalue"] < 0.01
    assert "MacKinnon (2010), N=2" in t.loc["ols", "pvalue_source"]
    # the Kalman row presents no test of its (white by construction) innovations as evidence
    assert np.isnan(t.loc["kalman", "coint_pvalue"]) and np.isnan(t.loc["kalman", "half_life"])
    assert "white by construction" in t.loc["kalman", "pvalue_source"]


def test_false_positive_rate_on_independent_random_walks():
    """Seen: a Dickey-Fuller p-value on the fitted spread was 'significant' at 5 % for
    17-18.5 % of independent random walks; the Engle-Granger p-value keeps it near 5 %."""
    hits = 0
    for seed in range(400):
        y, x = _walks(10_000 + seed)
        hits += qa.compare_hedge_ratios(y, x, methods=("ols",)).loc["ols", "coint_pvalue"] < 0.05
    rate = hits / 400
    print(f"EG false-positive rate at 5 %: {rate:.4f}")
    assert rate <= 0.08


def test_engle_granger_both_corrects_for_the_direction():
    y, x = _walks(4)
    both = qa.engle_granger_both(y, x)
    assert both.pvalue == min(1.0, 2 * min(both.y_on_x.pvalue, both.x_on_y.pvalue))
    assert both.pvalue >= both.best.pvalue
    assert "direction-corrected" in both.summary()


def test_spread_does_not_ignore_lag():
    y, x = _walks(5, 200)
    h = qa.hedge_ratio(y, x)
    with pytest.raises(ValueError, match="cannot be lagged"):
        qa.spread(y, x, h, lag=5)
    with pytest.raises(ValueError, match="cannot be lagged"):
        qa.spread(y, x, 0.5, lag=1)
    rh = qa.rolling_hedge_ratio(y, x, 20)
    s5 = qa.spread(y, x, rh, lag=5)
    assert s5.iloc[30] == pytest.approx(y.iloc[30] - rh["beta"].iloc[25] * x.iloc[30] - rh["alpha"].iloc[25])
