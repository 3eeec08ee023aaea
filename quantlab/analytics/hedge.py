"""Hedge ratios of a pair ``y ~ alpha + beta * x``: static (OLS, Huber, Theil-Sen, Kalman's
last state) and time-varying (rolling OLS, Kalman filter).

Inputs are two pandas Series on one index (or two 1-D arrays of one length) of prices::

    time                      y (ETHUSDT)   x (BTCUSDT)
    2024-08-08 23:54:15+00:00   2663.20      61837.63
    ...

Time-varying results are DataFrames on y's index.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from . import _validate as v
from . import kernels
from .pair import STATIC_HEDGES  # the one hedge vocabulary
from .results import HedgeResult

#: methods of :func:`hedge_ratio`: the static fits, and Kalman's last state
METHODS = (*STATIC_HEDGES, "kalman")


# --------------------------------------------------------------------------------------
# static estimators on arrays
# --------------------------------------------------------------------------------------
def _ols(y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    mx = x.mean()
    my = y.mean()
    dx = x - mx
    sxx = float(dx @ dx)
    if sxx <= x.size * (1e-12 * max(abs(mx), 1e-300)) ** 2:
        v.warn("x is constant: the hedge ratio is undefined; beta is nan, alpha is mean(y)")
        return float("nan"), float(my)
    beta = float(dx @ (y - my)) / sxx
    return beta, float(my - beta * mx)


def _huber(y: np.ndarray, x: np.ndarray, epsilon: float = 1.35,
           tol: float = 1e-12, max_iter: int = 200) -> tuple[float, float, float]:
    """Huber regression with concomitant scale (Owen 2007), the objective of scikit-learn's
    ``HuberRegressor(epsilon, alpha=0)``::

        min_{b, s > 0}  n s + sum_{|r| <= eps s} r^2 / s + sum_{|r| > eps s} (2 eps |r| - s eps^2)

    solved by Newton's method with backtracking on standardized data (the problem is
    convex and scale-equivariant), to machine precision rather than an optimizer tolerance.
    Returns (beta, alpha, scale) in the original units.
    """
    mx, sx = x.mean(), x.std()
    my, sy = y.mean(), y.std()
    if sx <= 1e-12 * max(abs(mx), 1e-300) or sx == 0.0:
        v.warn("x is constant: the hedge ratio is undefined; beta is nan, alpha is median(y)")
        return float("nan"), float(np.median(y)), float("nan")
    if sy == 0.0:
        return 0.0, float(my), 0.0
    xs = (x - mx) / sx
    ys = (y - my) / sy
    n = float(xs.size)
    eps = float(epsilon)

    def loss(b0: float, b1: float, s: float) -> float:
        r = np.abs(ys - b0 - b1 * xs)
        out = r > eps * s
        ri = r[~out]
        return n * s + float(ri @ ri) / s + float(np.sum(2.0 * eps * r[out] - s * eps * eps))

    # start from OLS with a robust scale
    b1 = float(xs @ ys) / float(xs @ xs)
    b0 = 0.0
    r = ys - b1 * xs
    s = max(float(np.median(np.abs(r - np.median(r)))) * 1.4826, 1e-8)
    f = loss(b0, b1, s)
    for _ in range(max_iter):
        r = ys - b0 - b1 * xs
        ar = np.abs(r)
        inl = ar <= eps * s
        ri = r[inl]
        zi = xs[inl]
        sg = np.sign(r[~inl])
        zo = xs[~inl]
        n_out = float(sg.size)
        g = np.array([
            -2.0 * ri.sum() / s - 2.0 * eps * sg.sum(),
            -2.0 * (ri @ zi) / s - 2.0 * eps * (sg @ zo),
            n - (ri @ ri) / (s * s) - n_out * eps * eps,
        ])
        ni = float(ri.size)
        h = np.array([
            [2.0 * ni / s, 2.0 * zi.sum() / s, 2.0 * ri.sum() / (s * s)],
            [2.0 * zi.sum() / s, 2.0 * (zi @ zi) / s, 2.0 * (ri @ zi) / (s * s)],
            [2.0 * ri.sum() / (s * s), 2.0 * (ri @ zi) / (s * s), 2.0 * (ri @ ri) / s ** 3],
        ])
        try:
            step = np.linalg.solve(h + 1e-14 * np.eye(3) * max(np.trace(h), 1.0), -g)
        except np.linalg.LinAlgError:
            step = -g
        t = 1.0
        improved = False
        for _ in range(60):
            nb0, nb1, ns = b0 + t * step[0], b1 + t * step[1], s + t * step[2]
            if ns > 0:
                nf = loss(nb0, nb1, ns)
                if nf <= f + 1e-4 * t * float(g @ step) or nf <= f:
                    improved = True
                    break
            t *= 0.5
        if not improved:
            break
        done = abs(t * step[0]) + abs(t * step[1]) <= tol and abs(t * step[2]) <= tol * max(s, 1.0)
        b0, b1, s, f = nb0, nb1, ns, nf
        if done:
            break
    beta = b1 * sy / sx
    return float(beta), float(my + sy * b0 - beta * mx), float(s * sy)


def _theilsen(y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    from .theilsen import theil_sen_slope

    slope = theil_sen_slope(x, y)
    if np.isnan(slope):
        v.warn("x is constant: no pair of distinct x values, the Theil-Sen slope is nan")
        return float("nan"), float(np.median(y))
    return float(slope), float(np.median(y) - slope * np.median(x))


# --------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------
def hedge_ratio(y: Any, x: Any, method: str = "ols", *, prices: str = "raw",
                **kwargs: Any) -> HedgeResult:
    """Static hedge ratio of ``y ~ alpha + beta * x`` on ``prices`` (``"raw"``, the package
    default, or ``"log"``: the slope of log y on log x). The result says which.

    method:
      - ``"ols"``: least squares with intercept.
      - ``"huber"``: equals scikit-learn ``HuberRegressor(epsilon=1.35, alpha=0.0)``
        (``epsilon=`` may be passed).
      - ``"theilsen"``: the exact median of pairwise slopes with intercept
        ``median(y) - beta * median(x)``, equal to ``scipy.stats.theilslopes``; pairs with
        equal x are skipped as scipy does. O(n log n) expected time (no subsampling).
      - ``"kalman"``: the last filtered state of :func:`kalman_hedge_ratio`
        (``delta=``, ``obs_var=`` may be passed).

    NaN/inf are refused; a constant x warns and returns beta = nan.
    """
    method = v.choice(method, "method", METHODS)
    prices = v.choice(prices, "prices", ("raw", "log"))
    minimum = {"ols": 3, "huber": 3, "theilsen": 2, "kalman": 2}[method]
    ya, xa, _ = v.pair(y, x, minimum, f"hedge_ratio(method={method!r})")
    if prices == "log":
        if (ya <= 0).any() or (xa <= 0).any():
            raise ValueError("prices='log' takes logs: y and x must be positive prices")
        ya, xa = np.log(ya), np.log(xa)
    allowed = {"ols": set(), "huber": {"epsilon"}, "theilsen": set(),
               "kalman": {"delta", "obs_var"}}[method]
    extra = set(kwargs) - allowed
    if extra:
        raise TypeError(f"hedge_ratio(method={method!r}) got unexpected argument(s) "
                        f"{sorted(extra)}; allowed: {sorted(allowed) or 'none'}")
    if method == "ols":
        beta, alpha = _ols(ya, xa)
        return HedgeResult(beta=beta, alpha=alpha, method=method, nobs=int(ya.size),
                           **_ols_inference(ya, xa, beta, alpha), prices=prices)
    elif method == "huber":
        eps = float(kwargs.get("epsilon", 1.35))
        if not eps >= 1.0:
            raise ValueError(f"epsilon must be >= 1.0 (scikit-learn's bound), got {eps}")
        beta, alpha, _ = _huber(ya, xa, eps)
    elif method == "theilsen":
        beta, alpha = _theilsen(ya, xa)
    else:
        delta, obs_var = _kalman_args(kwargs.get("delta", 1e-4), kwargs.get("obs_var", 1e-3))
        b, a, _, _ = kernels.kalman_filter(ya, xa, delta, obs_var)
        beta, alpha = float(b[-1]), float(a[-1])
    ssr, sst = _ssr_sst(ya, xa, beta, alpha)
    return HedgeResult(beta=beta, alpha=alpha, method=method, nobs=int(ya.size),
                       rsquared=1.0 - ssr / sst if sst > 0 else float("nan"), prices=prices)


def _ssr_sst(y: np.ndarray, x: np.ndarray, beta: float, alpha: float) -> tuple[float, float]:
    r = y - (beta * x + alpha)
    d = y - y.mean()
    return float(r @ r), float(d @ d)


def _ols_inference(y: np.ndarray, x: np.ndarray, beta: float, alpha: float) -> dict[str, float]:
    """Standard errors, t statistics and R^2 of the OLS fit (statsmodels' iid formulas)."""
    nan = float("nan")
    n = y.size
    if not np.isfinite(beta) or n < 3:
        return {}
    ssr, sst = _ssr_sst(y, x, beta, alpha)
    dx = x - x.mean()
    sxx = float(dx @ dx)
    s2 = ssr / (n - 2)
    b_se = float(np.sqrt(s2 / sxx))
    a_se = float(np.sqrt(s2 * (1.0 / n + x.mean() ** 2 / sxx)))
    return {"beta_se": b_se, "alpha_se": a_se,
            "beta_t": beta / b_se if b_se > 0 else nan, "alpha_t": alpha / a_se if a_se > 0 else nan,
            "rsquared": 1.0 - ssr / sst if sst > 0 else nan}


def _kalman_args(delta: Any, obs_var: Any) -> tuple[float, float]:
    delta = float(delta)
    obs_var = float(obs_var)
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1) (state noise delta/(1-delta)), got {delta}")
    if not obs_var > 0.0 or not np.isfinite(obs_var):
        raise ValueError(f"obs_var must be a positive finite variance, got {obs_var}")
    return delta, obs_var


def kalman_hedge_ratio(y: Any, x: Any, delta: float = 1e-4, obs_var: float = 1e-3,
                       *, use_numba: bool = True) -> pd.DataFrame:
    """Dynamic hedge ratio by a Kalman filter (Chan's parametrisation).

    State ``[beta, alpha]`` follows a random walk with covariance ``delta/(1-delta) * I``;
    ``y_t = beta_t x_t + alpha_t + e_t`` with ``var(e_t) = obs_var``; zero initial state and
    covariance. Returns a DataFrame on y's index::

        beta, alpha   filtered state after bar t (equal to pykalman's filter())
        spread        one-step forecast error y_t - (beta_{t|t-1} x_t + alpha_{t|t-1})
        spread_std    its predicted standard deviation sqrt(Q_t)

    ``spread / spread_std`` is a z-score that uses only information before bar t's price.
    """
    delta, obs_var = _kalman_args(delta, obs_var)
    ya, xa, index = v.pair(y, x, 1, "kalman_hedge_ratio")
    fn = kernels.kalman_filter if use_numba else kernels.kalman_filter_py
    beta, alpha, err, q = fn(ya, xa, delta, obs_var)
    return pd.DataFrame({"beta": beta, "alpha": alpha, "spread": err, "spread_std": np.sqrt(q)},
                        index=v.out_index(index, ya.size))


def rolling_hedge_ratio(y: Any, x: Any, window: int, *, use_numba: bool = True) -> pd.DataFrame:
    """Rolling OLS ``y ~ alpha + beta * x`` over the last ``window`` bars including t.

    Equal to statsmodels ``RollingOLS(y, add_constant(x), window)`` (params ``x`` and
    ``const``), computed from rolling moments in O(n). Returns a DataFrame ``beta, alpha``
    on y's index; the first ``window - 1`` rows are NaN, and so are windows where x is
    constant (with a warning).
    """
    ya, xa, index = v.pair(y, x, 1, "rolling_hedge_ratio")
    window = v.window_arg(window, ya.size, 3, "rolling_hedge_ratio")
    fn = kernels.rolling_ols if use_numba else kernels.rolling_ols_py
    beta, alpha, degenerate = fn(ya, xa, window)
    if degenerate:
        v.warn(f"x is constant in {degenerate} window(s): beta and alpha are NaN there")
    return pd.DataFrame({"beta": beta, "alpha": alpha}, index=v.out_index(index, ya.size))
