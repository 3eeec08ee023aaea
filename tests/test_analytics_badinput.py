"""Bad and degenerate input: clear errors naming the argument, warnings with sentinels."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from quantlab import analytics as qa
from quantlab.errors import InsufficientDataError


def _pair(n=200, seed=1):
    rs = np.random.default_rng(seed)
    idx = pd.date_range("2024-08-09", periods=n, freq="1s", tz="UTC")
    x = 100 + np.cumsum(rs.standard_normal(n))
    return pd.Series(2 * x + rs.standard_normal(n), idx), pd.Series(x, idx)


@pytest.mark.parametrize("call,minimum", [
    (lambda y, x: qa.hedge_ratio(y, x), "at least 3"),
    (lambda y, x: qa.hedge_ratio(y, x, "huber"), "at least 3"),
    (lambda y, x: qa.rolling_hedge_ratio(y, x, 5), "at least 5"),
    (lambda y, x: qa.adf(y), "at least 6"),
    (lambda y, x: qa.engle_granger(y, x), "at least 8"),
    (lambda y, x: qa.half_life(y), "at least 4"),
    (lambda y, x: qa.johansen(pd.DataFrame({"a": y, "b": x})), "at least"),
])
def test_too_few_observations_names_the_minimum(call, minimum):
    y, x = _pair()
    with pytest.raises(InsufficientDataError, match=minimum) as err:
        call(y.iloc[:2], x.iloc[:2])
    assert isinstance(err.value, ValueError)


def test_nan_refused_with_a_fix():
    y, x = _pair()
    y.iloc[10] = np.nan
    for call in (lambda: qa.hedge_ratio(y, x), lambda: qa.kalman_hedge_ratio(y, x),
                 lambda: qa.rolling_hedge_ratio(y, x, 20), lambda: qa.engle_granger(y, x),
                 lambda: qa.adf(y), lambda: qa.spread(y, x, 1.0)):
        with pytest.raises(ValueError, match=r"(y|series) has 1 NaN.*position 10.*dropna"):
            call()


def test_leading_nan_warmup_is_dropped_by_single_series_tests():
    y, x = _pair()
    rh = qa.rolling_hedge_ratio(y, x, 30)
    s = qa.spread(y, x, rh)
    assert s.iloc[:30].isna().all()
    assert qa.adf(s).nobs < len(s) - 30
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", qa.AnalyticsWarning)
        assert np.isfinite(qa.half_life(s))
    z = qa.zscore(s, 20)
    assert z.iloc[:49].isna().all() and z.iloc[49:].notna().all()


def test_misaligned_indexes_refused():
    y, x = _pair()
    with pytest.raises(ValueError, match="different indexes.*align"):
        qa.hedge_ratio(y, x.shift(1, freq="1s"))
    with pytest.raises(ValueError, match="same length"):
        qa.kalman_hedge_ratio(y.to_numpy(), x.to_numpy()[:-1])
    with pytest.raises(ValueError, match="same index"):
        qa.spread(y, x, qa.rolling_hedge_ratio(y.iloc[:100], x.iloc[:100], 10))


def test_bad_arguments():
    y, x = _pair()
    with pytest.raises(ValueError, match="method must be one of"):
        qa.hedge_ratio(y, x, method="lasso")
    with pytest.raises(TypeError, match="unexpected argument"):
        qa.hedge_ratio(y, x, method="ols", delta=1e-3)
    with pytest.raises(ValueError, match="delta must be in"):
        qa.kalman_hedge_ratio(y, x, delta=1.5)
    with pytest.raises(ValueError, match="obs_var"):
        qa.kalman_hedge_ratio(y, x, obs_var=0)
    with pytest.raises(TypeError, match="window must be an int"):
        qa.rolling_hedge_ratio(y, x, 10.5)
    with pytest.raises(ValueError, match="window must be >= 3"):
        qa.rolling_hedge_ratio(y, x, 1)
    with pytest.raises(ValueError, match="regression must be one of"):
        qa.adf(y, regression="x")
    with pytest.raises(ValueError, match="autolag must be one of"):
        qa.adf(y, autolag="hqic")
    with pytest.raises(ValueError, match="maxlag must be <="):
        qa.adf(y, maxlag=150)
    with pytest.raises(TypeError, match="must hold numbers"):
        qa.hedge_ratio(["a"] * 10, x.iloc[:10])
    with pytest.raises(TypeError, match="DataFrame with 2 columns"):
        qa.adf(pd.DataFrame({"a": y, "b": x}))
    with pytest.raises(ValueError, match="positive prices"):
        qa.rolling_corr(y - 1000, x, 10)
    with pytest.raises(TypeError, match="hedge must be"):
        qa.spread(y, x, "ols")
    with pytest.raises(ValueError, match="det_order"):
        qa.johansen(pd.DataFrame({"a": y, "b": x}), det_order=2)


def test_constant_and_collinear_warn_with_sentinels():
    y, x = _pair()
    const = pd.Series(5.0, index=y.index)
    with pytest.warns(qa.AnalyticsWarning, match="constant"):
        assert np.isnan(qa.hedge_ratio(y, const).beta)
    with pytest.warns(qa.AnalyticsWarning, match="constant"):
        assert np.isnan(qa.hedge_ratio(y, const, "theilsen").beta)
    with pytest.warns(qa.AnalyticsWarning, match="constant"):
        r = qa.adf(const)
    assert np.isnan(r.stat) and np.isnan(r.pvalue)
    with pytest.warns(qa.AnalyticsWarning, match="constant"):
        assert np.isnan(qa.engle_granger(y, const).stat)
    with pytest.warns(qa.CollinearityWarning, match="collinear"):
        r = qa.engle_granger(2.0 * x + 1.0, x)
    assert r.stat == -np.inf and r.pvalue == 0.0
    with pytest.warns(qa.AnalyticsWarning, match="inf"):
        assert qa.half_life(np.cumsum(np.ones(50)) ** 2) == np.inf
    with pytest.warns(qa.AnalyticsWarning, match="constant in"):
        xs = x.copy()
        xs.iloc[50:80] = 3.0
        rh = qa.rolling_hedge_ratio(y, xs, 10)
    assert rh["beta"].iloc[60:80].isna().all() and rh["beta"].iloc[100:].notna().all()
    z = qa.zscore(pd.Series(np.r_[np.ones(30), np.arange(30.0)]), 10)
    assert z.iloc[9:30].isna().all() and z.iloc[40:].notna().all()
    with pytest.raises(ValueError, match="constant"):
        qa.johansen(pd.DataFrame({"a": y, "b": const}))


def test_no_numeric_runtime_warnings_on_awkward_data():
    # huge level, tiny moves: precision stress without RuntimeWarnings (they are errors)
    rs = np.random.default_rng(5)
    n = 500
    x = 1e6 + np.cumsum(rs.integers(-1, 2, n)) * 0.01
    y = 0.05 * x + rs.integers(-2, 3, n) * 0.01
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", qa.AnalyticsWarning)
        qa.compare_hedge_ratios(y, x)
        qa.rolling_hedge_ratio(y, x, 50)
        qa.rolling_corr(y, x, 50)
        qa.engle_granger_both(y, x)
