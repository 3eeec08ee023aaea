"""Analytics against reference libraries and published numbers.

Pinned values come from tests/reference/analytics_pinned.py; the rest compare with
statsmodels / pykalman / scikit-learn / scipy computed in the test.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose
from scipy.stats import theilslopes
from sklearn.linear_model import HuberRegressor
from statsmodels.regression.rolling import RollingOLS
from statsmodels.tsa.adfvalues import mackinnoncrit
from statsmodels.tsa.stattools import adfuller, coint
from statsmodels.tsa.vector_ar.vecm import coint_johansen

from quantlab import analytics as qa

sys.path.insert(0, str(Path(__file__).parent / "reference"))
from analytics_pinned import eg_fixture  # noqa: E402


@pytest.fixture(scope="module")
def realgdp() -> np.ndarray:
    return sm.datasets.macrodata.load_pandas().data["realgdp"].to_numpy()


def _pair(n: int = 600, seed: int = 7) -> tuple[pd.Series, pd.Series]:
    rs = np.random.default_rng(seed)
    idx = pd.date_range("2024-01-01", periods=n, freq="1s", tz="UTC")
    x = 100 + np.cumsum(rs.standard_normal(n))
    e = np.zeros(n)
    for t in range(1, n):
        e[t] = 0.9 * e[t - 1] + rs.standard_normal()
    return pd.Series(1.5 * x + 3 + e, idx, name="Y"), pd.Series(x, idx, name="X")


# --- pinned published / fixture values -------------------------------------------------
def test_engle_granger_statsmodels_fixture():
    y = eg_fixture()
    r = qa.engle_granger(y[:, 0], y[:, 1], trend="c", maxlag=4, autolag=None)
    assert_allclose(r.stat, -5.760696844656, rtol=1e-11)
    assert_allclose(r.critical_values["5%"], -3.36700631, rtol=1e-8)
    assert_allclose(r.pvalue, 5.2332898550984435e-06, rtol=1e-9)
    assert r.lags == 4


def test_adf_realgdp_stata(realgdp):
    r = qa.adf(realgdp, regression="c", maxlag=4, autolag=None)
    assert_allclose([r.stat, r.pvalue], [0.97505319, 0.99399563], atol=1e-5)  # Stata
    ref = adfuller(realgdp, regression="c", maxlag=4, autolag=None, result_object=True)
    assert_allclose([r.stat, r.pvalue], [ref.statistic, ref.pvalue], rtol=1e-10)
    assert (r.lags, r.nobs) == (4, ref.nobs)
    assert r.critical_values == pytest.approx(ref.critical_values, rel=1e-12)


def test_mackinnon_2010_asymptotic_values():
    assert_allclose(mackinnoncrit(N=1, regression="c", nobs=np.inf),
                    [-3.43035, -2.86154, -2.56677])
    assert_allclose(mackinnoncrit(N=2, regression="c", nobs=np.inf),
                    [-3.89644, -3.33613, -3.04445])
    rs = np.random.default_rng(0)
    n = 200_000
    walk = np.cumsum(rs.standard_normal(n))
    a = qa.adf(walk, maxlag=1, autolag=None)
    assert_allclose(list(a.critical_values.values()), [-3.43035, -2.86154, -2.56677], atol=2e-4)
    e = qa.engle_granger(walk + rs.standard_normal(n), walk, maxlag=1, autolag=None)
    assert_allclose(list(e.critical_values.values()), [-3.89644, -3.33613, -3.04445], atol=2e-4)


def test_kalman_chan_closed_form_second_step():
    delta, ve = 1e-4, 1e-3
    c = delta / (1 - delta)
    y = np.array([2.0, 3.1, 2.7])
    x = np.array([1.0, 1.5, 1.2])
    kf = qa.kalman_hedge_ratio(y, x, delta=delta, obs_var=ve)
    assert kf["beta"].iloc[0] == 0.0 and kf["alpha"].iloc[0] == 0.0  # prior at t=0
    den = c * (x[1] ** 2 + 1) + ve
    assert_allclose(kf["beta"].iloc[1], c * y[1] * x[1] / den, rtol=1e-13)
    assert_allclose(kf["alpha"].iloc[1], c * y[1] / den, rtol=1e-13)
    assert_allclose(kf["spread"].iloc[1], y[1], rtol=0)  # forecast from a zero state
    assert_allclose(kf["spread_std"].iloc[1], math.sqrt(c * (x[1] ** 2 + 1) + ve), rtol=1e-13)


def test_half_life_ar1():
    rs = np.random.default_rng(42)
    n = 20_000
    s = np.zeros(n)
    for t in range(1, n):
        s[t] = 0.9 * s[t - 1] + rs.standard_normal()
    hl = qa.half_life(s)
    target = math.log(0.5) / math.log(0.9)
    assert target == pytest.approx(6.579, abs=1e-3)
    # sd of phi-hat ~ sqrt((1-phi^2)/n) = 0.0031 -> half-life within ~0.25 at 3 sd
    assert abs(hl - target) < 0.3


# --- equal to the reference implementations --------------------------------------------
def test_kalman_equals_pykalman():
    from pykalman import KalmanFilter

    y, x = _pair(400)
    delta, ve = 1e-4, 1e-3
    kf = qa.kalman_hedge_ratio(y, x, delta=delta, obs_var=ve)
    obs = np.column_stack([x.to_numpy(), np.ones(len(x))])[:, None, :]
    ref = KalmanFilter(n_dim_obs=1, n_dim_state=2, initial_state_mean=np.zeros(2),
                       initial_state_covariance=np.zeros((2, 2)),
                       transition_matrices=np.eye(2), observation_matrices=obs,
                       observation_covariance=ve,
                       transition_covariance=delta / (1 - delta) * np.eye(2))
    means, _ = ref.filter(y.to_numpy())
    assert_allclose(kf["beta"].to_numpy(), means[:, 0], rtol=0, atol=1e-10)
    assert_allclose(kf["alpha"].to_numpy(), means[:, 1], rtol=0, atol=1e-10)
    assert kf.index.equals(y.index)
    assert qa.hedge_ratio(y, x, method="kalman").beta == kf["beta"].iloc[-1]


def test_rolling_hedge_equals_rollingols():
    y, x = _pair(3000)
    rh = qa.rolling_hedge_ratio(y, x, 100)
    ref = RollingOLS(y, sm.add_constant(x), window=100).fit().params
    assert rh.index.equals(y.index)
    assert rh.iloc[:99].isna().all().all()
    assert_allclose(rh["beta"].to_numpy()[99:], ref["X"].to_numpy()[99:], rtol=1e-8, atol=1e-8)
    assert_allclose(rh["alpha"].to_numpy()[99:], ref["const"].to_numpy()[99:], rtol=1e-8, atol=1e-8)


def test_ols_huber_theilsen_equal_references():
    y, x = _pair(800)
    yv = y.to_numpy().copy()
    yv[::37] += 25.0  # outliers, where the methods differ
    ols = qa.hedge_ratio(yv, x, "ols")
    ref = sm.OLS(yv, sm.add_constant(x.to_numpy())).fit().params
    assert_allclose([ols.alpha, ols.beta], ref, rtol=1e-10)
    hub = qa.hedge_ratio(yv, x, "huber")
    # scikit-learn stops at an optimizer tolerance; it converges on standardized data
    xs = (x - x.mean()) / x.std()
    hr = HuberRegressor(epsilon=1.35, alpha=0.0, max_iter=1000, tol=1e-10).fit(
        xs.to_numpy()[:, None], yv)
    beta_ref = hr.coef_[0] / x.std()
    assert_allclose(hub.beta, beta_ref, rtol=1e-5)
    assert_allclose(hub.alpha, hr.intercept_ - beta_ref * x.mean(), rtol=1e-5)
    assert abs(hub.beta - ols.beta) > 1e-3  # the outliers matter
    ts = qa.hedge_ratio(yv, x, "theilsen")
    r = theilslopes(yv, x.to_numpy())
    assert ts.beta == r.slope and ts.alpha == pytest.approx(r.intercept, rel=1e-12)


@pytest.mark.parametrize("n", [2500, 4001])
def test_theilsen_fast_path_is_exact(n):
    from quantlab.analytics import theilsen

    rs = np.random.default_rng(n)
    x = np.round(60000 + np.cumsum(rs.standard_normal(n)), 2)  # tick grid: ties, dup x
    y = np.round(2600 + 0.04 * (x - 60000) + 0.3 * rs.standard_normal(n), 2)
    assert theilsen.theil_sen_slope(x, y, brute_n=10) == theilslopes(y, x).slope
    x2 = rs.standard_normal(n)
    y2 = np.where(rs.random(n) < 0.2, 50.0, 1.0) * rs.standard_normal(n) + x2
    assert theilsen.theil_sen_slope(x2, y2, brute_n=10) == theilslopes(y2, x2).slope


@pytest.mark.parametrize("regression", ["c", "ct", "ctt", "n"])
@pytest.mark.parametrize("autolag", ["AIC", "BIC", "t-stat", None])
def test_adf_equals_adfuller(realgdp, regression, autolag):
    for series in (realgdp, np.diff(np.log(realgdp))):
        r = qa.adf(series, regression=regression, autolag=autolag)
        ref = adfuller(series, regression=regression, autolag=autolag, result_object=True)
        assert r.lags == ref.lags and r.nobs == ref.nobs
        assert_allclose([r.stat, r.pvalue], [ref.statistic, ref.pvalue], rtol=1e-9, atol=1e-12)
        assert r.critical_values == pytest.approx(ref.critical_values, rel=1e-12)
        if autolag is not None:
            assert_allclose(r.icbest, ref.icbest, rtol=1e-9)


@pytest.mark.parametrize("trend", ["c", "ct", "n"])
@pytest.mark.parametrize("autolag", ["aic", "bic", "t-stat", None])
def test_engle_granger_equals_coint(trend, autolag):
    y, x = _pair(500)
    r = qa.engle_granger(y, x, trend=trend, autolag=autolag)
    ref = coint(y, x, trend=trend, autolag=autolag)
    assert_allclose([r.stat, r.pvalue], [ref[0], ref[1]], rtol=1e-9)
    assert_allclose(list(r.critical_values.values()), ref[2], rtol=1e-12)
    beta_ref = sm.OLS(y.to_numpy(), np.column_stack([x.to_numpy(), np.ones(len(x))])).fit().params[0]
    if trend == "c":
        assert_allclose(r.beta, beta_ref, rtol=1e-10)
    both = qa.engle_granger_both(y, x, trend=trend, autolag=autolag)
    ref2 = coint(x, y, trend=trend, autolag=autolag)
    assert_allclose(both.x_on_y.stat, ref2[0], rtol=1e-9)
    assert both.best.stat == min(both.y_on_x.stat, both.x_on_y.stat)
    assert (r.y_name, r.x_name) == ("Y", "X")


@pytest.mark.parametrize("det_order,k", [(-1, 1), (0, 1), (1, 2)])
def test_johansen_equals_statsmodels(det_order, k):
    y, x = _pair(400)
    frame = pd.DataFrame({"Y": y, "X": x})
    r = qa.johansen(frame, det_order=det_order, k_ar_diff=k)
    ref = coint_johansen(frame.to_numpy(), det_order, k)
    assert_allclose(r.trace_stat, ref.lr1, rtol=1e-12)
    assert_allclose(r.max_eig_stat, ref.lr2, rtol=1e-12)
    assert_allclose(r.trace_crit, ref.cvt)
    assert_allclose(r.eigenvectors, ref.evec)
    assert r.names == ("Y", "X") and r.rank() in (0, 1, 2)


# --- spread and z-score semantics --------------------------------------------------------
def test_zscore_is_trailing_pandas_definition_without_lookahead():
    y, x = _pair(300)
    s = qa.spread(y, x, qa.hedge_ratio(y, x))
    z = qa.zscore(s, 20)
    ref = (s - s.rolling(20).mean()) / s.rolling(20).std(ddof=1)
    assert_allclose(z.to_numpy(), ref.to_numpy(), rtol=1e-12)
    assert z.iloc[:19].isna().all() and z.index.equals(y.index)
    s2 = s.copy()
    s2.iloc[150:] += 1000.0  # changing the future leaves the past untouched
    assert_allclose(qa.zscore(s2, 20).to_numpy()[:150], z.to_numpy()[:150], rtol=0)


def test_spread_with_time_varying_hedge_has_no_lookahead():
    y, x = _pair(300)
    kf = qa.kalman_hedge_ratio(y, x)
    s = qa.spread(y, x, kf)  # lag=1: the state known before bar t
    assert np.isnan(s.iloc[0])
    assert_allclose(s.to_numpy()[1:], kf["spread"].to_numpy()[1:], rtol=1e-12, atol=1e-9)
    rh = qa.rolling_hedge_ratio(y, x, 30)
    s0 = qa.spread(y, x, rh, lag=0)
    assert_allclose(s0.to_numpy()[29:], (y - rh.beta * x - rh.alpha).to_numpy()[29:])
    assert qa.spread(y, x, 1.5).equals((y - 1.5 * x).rename("spread"))


def test_rolling_corr_of_log_returns():
    y, x = _pair(300)
    c = qa.rolling_corr(y, x, 30)
    ry, rx = np.log(y).diff(), np.log(x).diff()
    assert_allclose(c.to_numpy(), ry.rolling(30).corr(rx).to_numpy(), rtol=1e-12)
    assert c.iloc[:30].isna().all() and c.iloc[30:].notna().all()


def test_compare_and_result_views():
    y, x = _pair(500)
    table = qa.compare_hedge_ratios(y, x)
    assert list(table.index) == ["ols", "huber", "theilsen", "kalman"]
    assert list(table.columns) == ["beta", "alpha", "beta_se", "rsquared", "spread_std",
                                   "coint_stat", "coint_pvalue", "half_life", "z_std",
                                   "pvalue_source"]
    assert table.loc["ols", "beta"] == qa.hedge_ratio(y, x).beta
    static = table.loc[["ols", "huber", "theilsen"], ["beta", "alpha", "spread_std", "coint_stat",
                                                       "coint_pvalue", "half_life"]]
    assert np.isfinite(static.to_numpy(dtype=float)).all()
    for r in (qa.hedge_ratio(y, x), qa.adf(y), qa.engle_granger(y, x),
              qa.engle_granger_both(y, x), qa.johansen(pd.DataFrame({"y": y, "x": x}))):
        assert r.summary().strip() and "<table>" in r._repr_html_()
        with pytest.raises(AttributeError):
            r.stat = 1.0  # frozen
