"""Unit-root and cointegration tests, and the half-life of mean reversion.

``adf`` and ``engle_granger`` reproduce statsmodels ``adfuller`` and ``coint`` (same lag
rules, the same regressions, MacKinnon's p-values and critical values from
``statsmodels.tsa.adfvalues``, the reference tables) but solve each regression by one QR
factorization: the whole autolag search is read off a single factorization of the widest
design, so a 500k-point series costs one pass instead of ``maxlag + 1`` fits.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.linalg import solve_triangular
from statsmodels.tsa.adfvalues import mackinnoncrit, mackinnonp

from . import _validate as v
from .results import ADFResult, CointBothResult, CointResult, JohansenResult

REGRESSIONS = ("c", "ct", "ctt", "n")
AUTOLAGS = ("aic", "bic", "t-stat")
SQRTEPS = math.sqrt(np.finfo(np.float64).eps)
_TSTAT_STOP = 1.6448536269514722  # norm.ppf(0.95), as statsmodels


def _trend_columns(nobs: int, regression: str) -> np.ndarray:
    """statsmodels ``add_trend`` columns: const, t, t^2 with t = 1..nobs."""
    if regression == "n":
        return np.empty((nobs, 0))
    t = np.arange(1, nobs + 1, dtype=np.float64)
    cols = [np.ones(nobs)]
    if regression in ("ct", "ctt"):
        cols.append(t)
    if regression == "ctt":
        cols.append(t * t)
    return np.column_stack(cols)


def _adf_design(x: np.ndarray, xdiff: np.ndarray, lag: int, regression: str,
                trend_first: bool) -> np.ndarray:
    """One array [trend?, level x_{t-1}, dx_{t-1}, ..., dx_{t-lag}, trend?, target dx_t]
    (lagmat trim='both'); trend columns first when ``trend_first`` (autolag's order)."""
    nobs = xdiff.size - lag
    trend = _trend_columns(nobs, regression)
    nt = trend.shape[1]
    A = np.empty((nobs, lag + 2 + nt))
    off = nt if trend_first else 0
    if nt:
        A[:, (0 if trend_first else lag + 1):(nt if trend_first else lag + 1 + nt)] = trend
    A[:, off] = x[lag: lag + nobs]
    for j in range(1, lag + 1):
        A[:, off + j] = xdiff[lag - j: lag - j + nobs]
    A[:, -1] = xdiff[lag:]
    return A


def _r_factor(A: np.ndarray) -> np.ndarray:
    """Upper-triangular R of A = QR without forming Q: Cholesky QR applied twice
    (CholeskyQR2, as accurate as Householder for cond(A) < 1e7), else LAPACK QR."""
    try:
        r1 = np.linalg.cholesky(A.T @ A).T
        a1 = solve_triangular(r1, A.T, trans="T", check_finite=False).T
        r2 = np.linalg.cholesky(a1.T @ a1).T
        r = r2 @ r1
        d = np.abs(np.diag(r))
        if np.isfinite(r).all() and d.min() > 1e-7 * d.max():
            return r
    except np.linalg.LinAlgError:
        pass
    from scipy.linalg import qr

    return qr(A, mode="r", check_finite=False)[0][: A.shape[1]]


def _llf(ssr: float, nobs: int) -> float:
    nobs2 = nobs / 2.0
    return -math.log(ssr) * nobs2 - (1.0 + math.log(math.pi / nobs2)) * nobs2


def _select_lag(x: np.ndarray, xdiff: np.ndarray, maxlag: int, regression: str,
                autolag: str) -> tuple[int, float]:
    """statsmodels ``_autolag`` over lags 0..maxlag on the maxlag sample, by one QR."""
    A = _adf_design(x, xdiff, maxlag, regression, trend_first=True)
    nobs = A.shape[0]
    ncol = A.shape[1] - 1
    startlag = ncol - (maxlag + 1) + 1
    r = _r_factor(A)
    z = r[:ncol, ncol]
    ssr_full = float(r[ncol, ncol]) ** 2
    tail = np.concatenate([np.cumsum((z * z)[::-1])[::-1], [0.0]])  # sum_{i>=m} z_i^2
    ssr = {m: ssr_full + float(tail[m]) for m in range(startlag, startlag + maxlag + 1)}
    if autolag in ("aic", "bic"):
        pen = 2.0 if autolag == "aic" else math.log(nobs)
        ic = {m: -2.0 * _llf(s, nobs) + pen * m for m, s in ssr.items()}
        icbest, best = min((val, m) for m, val in ic.items())
    else:
        best = startlag + maxlag
        icbest = 0.0
        for m in range(startlag + maxlag, startlag - 1, -1):
            sigma = math.sqrt(ssr[m] / (nobs - m))
            icbest = abs(float(z[m - 1])) / sigma
            best = m
            if icbest >= _TSTAT_STOP:
                break
    return best - startlag, float(icbest)


def _ols_tstat0(A: np.ndarray) -> float:
    """t statistic of the first column's coefficient regressing A[:, -1] on A[:, :-1]."""
    k = A.shape[1] - 1
    dof = A.shape[0] - k
    if dof <= 0:
        return float("nan")
    r = _r_factor(A)
    rk = r[:k, :k]
    diag = np.abs(np.diag(rk))
    if diag.min() <= 1e-13 * diag.max():
        return float("nan")
    coef = solve_triangular(rk, r[:k, k])
    sigma2 = float(r[k, k]) ** 2 / dof
    rinv = solve_triangular(rk, np.eye(k))
    se0 = math.sqrt(sigma2 * float(rinv[0] @ rinv[0]))
    return float(coef[0]) / se0 if se0 > 0 else float("nan")


def _maxlag(nobs: int, ntrend: int, maxlag: Any) -> int:
    limit = nobs // 2 - ntrend - 1
    if maxlag is None:
        return min(limit, int(np.ceil(12.0 * np.power(nobs / 100.0, 1 / 4.0))))
    if isinstance(maxlag, bool) or not isinstance(maxlag, int | np.integer) or maxlag < 0:
        raise ValueError(f"maxlag must be a non-negative int or None, got {maxlag!r}")
    if maxlag > limit:
        raise ValueError(f"maxlag must be <= nobs//2 - 1 - ntrend = {limit} for {nobs} "
                         f"observations, got {maxlag}")
    return int(maxlag)


def _adf_arrays(x: np.ndarray, regression: str, maxlag: Any,
                autolag: str | None) -> tuple[float, int, int, float | None]:
    ntrend = len(regression) if regression != "n" else 0
    maxlag = _maxlag(x.size, ntrend, maxlag)
    xdiff = np.diff(x)
    icbest = None
    if autolag is not None:
        lag, icbest = _select_lag(x, xdiff, maxlag, regression, autolag)
    else:
        lag = maxlag
    A = _adf_design(x, xdiff, lag, regression, trend_first=False)
    return _ols_tstat0(A), lag, A.shape[0], icbest


def _crit(values: Any) -> dict[str, float]:
    return {"1%": float(values[0]), "5%": float(values[1]), "10%": float(values[2])}


def _autolag_arg(autolag: Any) -> str | None:
    return None if autolag is None else v.choice(autolag, "autolag", AUTOLAGS)


def adf(series: Any, regression: str = "c", maxlag: int | None = None,
        autolag: str | None = "AIC") -> ADFResult:
    """Augmented Dickey-Fuller test, equal to statsmodels ``adfuller`` with the same options.

    regression: "c" constant, "ct" constant and trend, "ctt" plus quadratic trend, "n" none.
    maxlag: None uses ``12 * (nobs/100)^(1/4)`` (Schwert), capped at ``nobs//2 - ntrend - 1``.
    autolag: "AIC", "BIC", "t-stat" or None (use exactly ``maxlag`` lags).
    Leading NaNs (a rolling warm-up) are dropped; other NaNs are refused. A constant series
    warns and returns stat = pvalue = nan (statsmodels raises).
    """
    regression = v.choice(regression, "regression", REGRESSIONS)
    autolag = _autolag_arg(autolag)
    x, _ = v.drop_leading_nan(series, "series")
    ntrend = len(regression) if regression != "n" else 0
    v.need_nobs(x.size, 2 * ntrend + 4, f"adf(regression={regression!r})")
    crit_nan = {"1%": float("nan"), "5%": float("nan"), "10%": float("nan")}
    if x.max() == x.min():
        v.warn("series is constant: the ADF test is undefined; stat and pvalue are nan")
        return ADFResult(float("nan"), float("nan"), 0, x.size - 1, crit_nan, regression,
                         autolag, None)
    stat, lag, nobs, icbest = _adf_arrays(x, regression, maxlag, autolag)
    if math.isnan(stat):
        v.warn("the ADF regression is singular (collinear lags/trend): stat and pvalue are nan")
        return ADFResult(stat, float("nan"), lag, nobs, crit_nan, regression, autolag, icbest)
    pvalue = float(mackinnonp(stat, regression=regression, N=1))
    crit = _crit(mackinnoncrit(N=1, regression=regression, nobs=nobs))
    return ADFResult(stat, pvalue, lag, nobs, crit, regression, autolag, icbest)


def engle_granger(y: Any, x: Any, trend: str = "c", maxlag: int | None = None,
                  autolag: str | None = "aic") -> CointResult:
    """Engle-Granger two-step cointegration test, equal to statsmodels ``coint(y, x, ...)``.

    Step 1: OLS ``y ~ beta x (+ const/trend per ``trend``)``. Step 2: ADF without
    deterministic terms on the residuals (same ``maxlag``/``autolag`` rules as :func:`adf`).
    P-value and critical values come from MacKinnon's table for 2 series with ``trend``
    (critical values use ``nobs - 1`` as statsmodels does; nan for trend "n").
    (Almost) perfectly collinear y and x warn (CollinearityWarning) and give stat = -inf.
    """
    trend = v.choice(trend, "trend", REGRESSIONS)
    autolag = _autolag_arg(autolag)
    ntrend = len(trend) if trend != "n" else 0
    ya, xa, _ = v.pair(y, x, 2 * ntrend + 6, f"engle_granger(trend={trend!r})")
    nobs = ya.size
    crit_nan = {"1%": float("nan"), "5%": float("nan"), "10%": float("nan")}
    names = {"y_name": v.name_of(y, "y"), "x_name": v.name_of(x, "x")}
    if xa.max() == xa.min() or ya.max() == ya.min():
        which = "x" if xa.max() == xa.min() else "y"
        v.warn(f"{which} is constant: the cointegration test is undefined; stat and pvalue are nan")
        return CointResult(float("nan"), float("nan"), crit_nan, float("nan"), float("nan"),
                           0, nobs, trend, **names)
    X = np.column_stack([xa, _trend_columns(nobs, trend)])
    coef, *_ = np.linalg.lstsq(X, ya, rcond=None)
    resid = ya - X @ coef
    ssr = float(resid @ resid)
    tss = float(((ya - ya.mean()) ** 2).sum()) if trend != "n" else float(ya @ ya)
    rsquared = 1.0 - ssr / tss
    beta = float(coef[0])
    alpha = float(coef[1]) if trend != "n" else 0.0
    if rsquared < 1 - 100 * SQRTEPS:
        stat, lag, _nobs, _ = _adf_arrays(resid, "n", maxlag, autolag)
    else:
        v.warn("y and x are (almost) perfectly collinear: the cointegration test is not "
               "reliable; stat is -inf", v.CollinearityWarning)
        stat, lag = float("-inf"), 0
    crit = crit_nan if trend == "n" else _crit(mackinnoncrit(N=2, regression=trend, nobs=nobs - 1))
    pvalue = float(mackinnonp(stat, regression=trend, N=2))
    return CointResult(float(stat), pvalue, crit, beta, alpha, int(lag), nobs, trend, **names)


def engle_granger_both(y: Any, x: Any, trend: str = "c", maxlag: int | None = None,
                       autolag: str | None = "aic") -> CointBothResult:
    """:func:`engle_granger` of y on x and of x on y; ``.best`` has the lower statistic."""
    return CointBothResult(engle_granger(y, x, trend, maxlag, autolag),
                           engle_granger(x, y, trend, maxlag, autolag))


def johansen(frame: Any, det_order: int = 0, k_ar_diff: int = 1) -> JohansenResult:
    """Johansen cointegration test of the columns of ``frame`` (statsmodels ``coint_johansen``).

    frame: DataFrame (or 2-D array) with one column per series, >= 2 columns, no NaN.
    det_order: -1 no deterministic terms, 0 constant, 1 linear trend.
    k_ar_diff: number of lagged differences in the VECM.
    """
    from statsmodels.tsa.vector_ar.vecm import coint_johansen

    if isinstance(det_order, bool) or det_order not in (-1, 0, 1):
        raise ValueError(f"det_order must be -1, 0 or 1, got {det_order!r}")
    if isinstance(k_ar_diff, bool) or not isinstance(k_ar_diff, int | np.integer) or k_ar_diff < 0:
        raise ValueError(f"k_ar_diff must be a non-negative int, got {k_ar_diff!r}")
    names = tuple(map(str, frame.columns)) if isinstance(frame, pd.DataFrame) else ()
    try:
        arr = np.asarray(frame, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"frame must hold numbers: {exc}") from None
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise ValueError(f"frame must be 2-D with >= 2 columns (one per series), got shape "
                         f"{arr.shape}")
    if arr.shape[1] > 12:
        raise ValueError("johansen critical values exist for at most 12 series")
    if not names:
        names = tuple(f"y{i}" for i in range(arr.shape[1]))
    for j in range(arr.shape[1]):
        v.check_finite(arr[:, j], f"frame[{names[j]!r}]")
    minimum = k_ar_diff + 2 + arr.shape[1] + 3
    v.need_nobs(arr.shape[0], minimum, f"johansen(k_ar_diff={k_ar_diff}) on {arr.shape[1]} series")
    const = [names[j] for j in range(arr.shape[1]) if arr[:, j].max() == arr[:, j].min()]
    if const:
        raise ValueError(f"frame column(s) {const} are constant: remove them before johansen")
    res = coint_johansen(arr, det_order, int(k_ar_diff))
    return JohansenResult(
        trace_stat=np.asarray(res.lr1), trace_crit=np.asarray(res.cvt),
        max_eig_stat=np.asarray(res.lr2), max_eig_crit=np.asarray(res.cvm),
        eigenvalues=np.asarray(res.eig), eigenvectors=np.asarray(res.evec),
        names=names, det_order=int(det_order), k_ar_diff=int(k_ar_diff))


def half_life(spread: Any) -> float:
    """Half-life of mean reversion in bars.

    Fits ``ds_t = a + lam * s_{t-1} + e_t`` by OLS and returns ``-ln 2 / ln(1 + lam)``.
    ``lam >= 0`` (no mean reversion) warns and returns inf. ``lam <= -1`` (the spread
    overshoots every bar) warns and uses ``|1 + lam|``. Leading NaNs are dropped.
    """
    s, _ = v.drop_leading_nan(spread, "spread")
    v.need_nobs(s.size, 4, "half_life")
    lag = s[:-1]
    ds = np.diff(s)
    dl = lag - lag.mean()
    sxx = float(dl @ dl)
    if sxx == 0.0:
        v.warn("spread is constant: no mean reversion to measure; half-life is inf")
        return float("inf")
    lam = float(dl @ (ds - ds.mean())) / sxx
    if lam >= 0.0:
        v.warn(f"no mean reversion (lambda = {lam:.4g} >= 0): half-life is inf")
        return float("inf")
    phi = 1.0 + lam
    if phi <= 0.0:
        v.warn(f"lambda = {lam:.4g} <= -1: the spread overshoots each bar; using |1 + lambda|")
        if phi == 0.0:
            return 0.0
        phi = abs(phi)
    if phi >= 1.0:
        return float("inf")
    return -math.log(2.0) / math.log(phi)
