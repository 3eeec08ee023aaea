"""Analytics kernels against their references, timed in the same run.

Kalman vs pykalman (pykalman is timed on fewer points and scaled linearly: it is a
per-bar Python loop), rolling hedge vs statsmodels RollingOLS, Theil-Sen vs
scipy.stats.theilslopes, fixed-lag ADF vs statsmodels adfuller.
"""

from __future__ import annotations

import time

import numpy as np
from _table import Row, best_of


def _pair(n: int, seed: int = 0):
    rs = np.random.default_rng(seed)
    x = 100 + np.cumsum(rs.standard_normal(n)) * 0.1
    return 1.5 * x + rs.standard_normal(n), x


def run(quick: bool) -> list[Row]:
    import pandas as pd
    import statsmodels.api as sm
    from pykalman import KalmanFilter
    from scipy.stats import theilslopes
    from statsmodels.regression.rolling import RollingOLS
    from statsmodels.tsa.stattools import adfuller

    from quantlab import analytics as qa

    rows: list[Row] = []

    # Kalman: 100k points ours; pykalman on n_ref points, scaled to 100k
    n = 100_000
    n_ref = 2_000 if quick else 10_000
    y, x = _pair(n)
    qa.kalman_hedge_ratio(y[:10], x[:10])  # compile
    ours = best_of(lambda: qa.kalman_hedge_ratio(y, x), 3)
    obs = np.column_stack([x[:n_ref], np.ones(n_ref)])[:, None, :]
    kf = KalmanFilter(n_dim_obs=1, n_dim_state=2, initial_state_mean=np.zeros(2),
                      initial_state_covariance=np.zeros((2, 2)), transition_matrices=np.eye(2),
                      observation_matrices=obs, observation_covariance=1e-3,
                      transition_covariance=1e-4 / (1 - 1e-4) * np.eye(2))
    t0 = time.perf_counter()
    kf.filter(y[:n_ref])
    ref = (time.perf_counter() - t0) * n / n_ref
    rows.append(Row("analytics", f"kalman_hedge_ratio 100k (pykalman timed on {n_ref:,}, x{n // n_ref} linear)",
                    ours, "s", ref, ref / ours, ">= 1000x"))

    # rolling hedge 500k, window 500
    n = 100_000 if quick else 500_000
    y, x = _pair(n, 1)
    ys, xs = pd.Series(y), pd.Series(x)
    qa.rolling_hedge_ratio(y[:50], x[:50], 10)
    ours = best_of(lambda: qa.rolling_hedge_ratio(ys, xs, 500), 3)
    X = sm.add_constant(xs)
    ref = best_of(lambda: RollingOLS(ys, X, window=500).fit(params_only=True), 1)
    rows.append(Row("analytics", f"rolling_hedge_ratio {n // 1000}k w=500 vs RollingOLS",
                    ours, "s", ref, ref / ours, ">= 50x"))

    # Theil-Sen 10k (5k in quick mode: scipy is O(n^2))
    n = 5_000 if quick else 10_000
    y, x = _pair(n, 2)
    qa.hedge_ratio(y[:3000], x[:3000], "theilsen")  # compile the fast path
    ours = best_of(lambda: qa.hedge_ratio(y, x, "theilsen"), 3)
    ref = best_of(lambda: theilslopes(y, x), 1)
    assert qa.hedge_ratio(y, x, "theilsen").beta == theilslopes(y, x).slope
    rows.append(Row("analytics", f"theilsen {n // 1000}k (exact) vs scipy theilslopes", ours, "s", ref,
                    ref / ours, "faster, equal"))
    if not quick:
        n = 1_000_000
        y, x = _pair(n, 3)
        ours = best_of(lambda: qa.hedge_ratio(y, x, "theilsen"), 1)
        rows.append(Row("analytics", "theilsen 1M (exact; scipy would need 5e11 slopes)", ours,
                        "s", None, None, "O(n log n)"))

    # ADF fixed lag at 500k
    n = 100_000 if quick else 500_000
    rs = np.random.default_rng(4)
    s = np.cumsum(rs.standard_normal(n))
    ours = best_of(lambda: qa.adf(s, maxlag=10, autolag=None), 3)
    ref = best_of(lambda: adfuller(s, maxlag=10, autolag=None, result_object=True), 1)
    rows.append(Row("analytics", f"adf {n // 1000}k maxlag=10 fixed vs adfuller", ours, "s",
                    ref, ref / ours, "faster"))
    if not quick:
        ours = best_of(lambda: qa.adf(s, maxlag=12, autolag="AIC"), 1)
        ref = best_of(lambda: adfuller(s, maxlag=12, autolag="AIC", result_object=True), 1)
        rows.append(Row("analytics", f"adf {n // 1000}k autolag AIC maxlag=12 vs adfuller",
                        ours, "s", ref, ref / ours, "faster"))
    return rows
