"""Every analytics function on real Binance trades (BTCUSDT, ETHUSDT, 2024-08-08 23:54 to
2024-08-09 00:05 UTC) aligned to 1-second last-price bars, compared with the references."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose
from scipy.stats import theilslopes
from statsmodels.regression.rolling import RollingOLS
from statsmodels.tsa.stattools import adfuller, coint
from statsmodels.tsa.vector_ar.vecm import coint_johansen

from quantlab import analytics as qa
from quantlab.pandas_compat import EXACT_FLOATS

COLUMNS = ["id", "price", "qty", "quote_qty", "time_ms", "is_buyer_maker", "is_best_match"]
WINDOW = "2024-08-08T2354_2024-08-09T0005"


def load_last_price_bars(trades_dir: Path, symbols=("ETHUSDT", "BTCUSDT")) -> pd.DataFrame:
    """1 s last-price bars of data.binance.vision trade files (no header), one column per
    symbol on a common UTC index, forward-filled, rows before every symbol traded dropped."""
    closes = {}
    for sym in symbols:
        t = pd.read_csv(trades_dir / f"{sym}-spot-trades-{WINDOW}.csv", header=None,
                        names=COLUMNS, **EXACT_FLOATS)
        t = t.sort_values("id")
        t.index = pd.to_datetime(t["time_ms"], unit="ms", utc=True)
        closes[sym] = t["price"].resample("1s").last()
    return pd.DataFrame(closes).ffill().dropna()


@pytest.fixture(scope="module")
def bars(real_data) -> pd.DataFrame:
    return load_last_price_bars(real_data / "trades")


def test_loader_shape(bars):
    assert list(bars.columns) == ["ETHUSDT", "BTCUSDT"]
    assert 600 < len(bars) < 700 and bars.index.is_monotonic_increasing
    assert bars.notna().all().all() and (bars["BTCUSDT"] > 50_000).all()


def test_hedge_ratios_on_real_bars(bars):
    y, x = bars["ETHUSDT"], bars["BTCUSDT"]
    ols = qa.hedge_ratio(y, x)
    ref = sm.OLS(y.to_numpy(), sm.add_constant(x.to_numpy())).fit().params
    assert_allclose([ols.alpha, ols.beta], ref, rtol=1e-8)
    ts = qa.hedge_ratio(y, x, "theilsen")
    assert ts.beta == theilslopes(y.to_numpy(), x.to_numpy()).slope
    hub = qa.hedge_ratio(y, x, "huber")
    assert 0 < hub.beta < 0.2 and np.isfinite(hub.alpha)


def test_dynamic_hedges_on_real_bars(bars):
    from pykalman import KalmanFilter

    y, x = bars["ETHUSDT"], bars["BTCUSDT"]
    rh = qa.rolling_hedge_ratio(y, x, 120)
    ref = RollingOLS(y, sm.add_constant(x), window=120).fit().params
    # raw prices (x ~ 6e4, tiny moves) are ill-conditioned for the reference's pinv; both
    # agree to the precision the data allows
    assert_allclose(rh["beta"].to_numpy()[119:], ref["BTCUSDT"].to_numpy()[119:], rtol=1e-6)
    # well-scaled: log prices, demeaned
    ly, lx = np.log(y) - np.log(y).mean(), np.log(x) - np.log(x).mean()
    rl = qa.rolling_hedge_ratio(ly, lx, 120)
    refl = RollingOLS(ly, sm.add_constant(lx), window=120).fit().params
    assert_allclose(rl["beta"].to_numpy()[119:], refl["BTCUSDT"].to_numpy()[119:], rtol=1e-8)
    kf = qa.kalman_hedge_ratio(y, x, delta=1e-5, obs_var=1e-2)
    obs = np.column_stack([x.to_numpy(), np.ones(len(x))])[:, None, :]
    kref = KalmanFilter(n_dim_obs=1, n_dim_state=2, initial_state_mean=np.zeros(2),
                        initial_state_covariance=np.zeros((2, 2)), transition_matrices=np.eye(2),
                        observation_matrices=obs, observation_covariance=1e-2,
                        transition_covariance=1e-5 / (1 - 1e-5) * np.eye(2))
    means, _ = kref.filter(y.to_numpy())
    assert_allclose(kf[["beta", "alpha"]].to_numpy(), means, rtol=1e-9, atol=1e-10)
    z = kf["spread"] / kf["spread_std"]
    assert np.isfinite(z).all()


def test_tests_on_real_bars(bars):
    y, x = bars["ETHUSDT"], bars["BTCUSDT"]
    a = qa.adf(y)
    r = adfuller(y.to_numpy(), result_object=True)
    assert_allclose([a.stat, a.pvalue], [r.statistic, r.pvalue], rtol=1e-9)
    assert a.lags == r.lags
    eg = qa.engle_granger(y, x)
    c = coint(y, x)
    assert_allclose([eg.stat, eg.pvalue], [c[0], c[1]], rtol=1e-8)
    assert_allclose(list(eg.critical_values.values()), c[2])
    j = qa.johansen(bars)
    jr = coint_johansen(bars.to_numpy(), 0, 1)
    assert_allclose(j.trace_stat, jr.lr1, rtol=1e-10)
    s = qa.spread(y, x, qa.hedge_ratio(y, x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", qa.AnalyticsWarning)
        hl = qa.half_life(s)
    assert hl > 0
    z = qa.zscore(s, 60)
    assert z.iloc[59:].notna().all()
    corr = qa.rolling_corr(y, x, 60)
    assert ((corr.dropna() >= -1) & (corr.dropna() <= 1)).all()
    table = qa.compare_hedge_ratios(y, x)
    assert table.shape == (4, 10)
    assert 0.5 < table.loc["kalman", "z_std"] < 2.0  # default Kalman: standardised errors ~ 1
