"""Array kernels of the pair analytics: plain Python/numpy functions compiled by numba.

Each kernel is written once as a plain function (``*_py``, the fallback, runnable without
numba) and compiled with ``numba.njit(cache=True)`` when numba is importable. The public
names (``kalman_filter``, ``rolling_ols`` ...) are the compiled versions, or the plain ones
when numba is missing or ``QUANTLAB_NO_NUMBA=1``. tests/test_analytics_kernels.py proves
both paths equal. Arrays in, arrays out: no pandas here.
"""

from __future__ import annotations

import os

import numpy as np

try:  # pragma: no cover - exercised by the environment
    if os.environ.get("QUANTLAB_NO_NUMBA", "") in ("1", "true", "yes"):
        raise ImportError("disabled by QUANTLAB_NO_NUMBA")
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    numba = None
    HAVE_NUMBA = False


def _jit(fn):
    return numba.njit(cache=True, nogil=True)(fn) if HAVE_NUMBA else fn


# --------------------------------------------------------------------------------------
# Kalman filter for a dynamic hedge ratio (Chan, "Algorithmic Trading", ch. 3)
# --------------------------------------------------------------------------------------
def kalman_filter_py(y, x, delta, obs_var):
    """Filter the state [beta, alpha] of ``y_t = beta_t x_t + alpha_t + e_t``.

    Random-walk state with noise covariance ``delta/(1-delta) * I``, observation noise
    ``obs_var``, zero initial state and covariance (the first step is the prior, as in
    pykalman: no transition before the first observation).

    Returns (beta, alpha, err, q): the filtered state after bar t, the one-step forecast
    error ``y_t - (beta_{t|t-1} x_t + alpha_{t|t-1})`` and its predicted variance Q_t.
    The arithmetic follows pykalman's ``_filter_predict``/``_filter_correct`` term by term.
    """
    n = y.shape[0]
    beta = np.empty(n)
    alpha = np.empty(n)
    err = np.empty(n)
    q = np.empty(n)
    w = delta / (1.0 - delta)
    b = 0.0
    a = 0.0
    p00 = 0.0
    p01 = 0.0
    p10 = 0.0
    p11 = 0.0
    for t in range(n):
        if t > 0:
            p00 = p00 + w
            p11 = p11 + w
        xt = x[t]
        # predicted observation and its variance: F R F' + Ve with F = [x_t, 1]
        yhat = xt * b + a
        fr0 = xt * p00 + p10
        fr1 = xt * p01 + p11
        qt = (fr0 * xt + fr1) + obs_var
        # gain R F' / Q
        rf0 = p00 * xt + p01
        rf1 = p10 * xt + p11
        inv = 1.0 / qt if qt != 0.0 else 0.0
        k0 = rf0 * inv
        k1 = rf1 * inv
        e = y[t] - yhat
        b = b + k0 * e
        a = a + k1 * e
        p00 = p00 - k0 * fr0
        p01 = p01 - k0 * fr1
        p10 = p10 - k1 * fr0
        p11 = p11 - k1 * fr1
        beta[t] = b
        alpha[t] = a
        err[t] = e
        q[t] = qt
    return beta, alpha, err, q


kalman_filter = _jit(kalman_filter_py)


# --------------------------------------------------------------------------------------
# Rolling OLS y ~ alpha + beta x from rolling moments
# --------------------------------------------------------------------------------------
def rolling_ols_py(y, x, window):
    """Rolling least squares over the last ``window`` bars including t.

    Sliding means and co-moments are updated in O(1) per bar (Welford add/remove) and
    recomputed exactly (two-pass) every ``window`` bars, which bounds rounding drift.
    Rows before the first full window, and windows where x is constant, are NaN.
    Returns (beta, alpha, degenerate_count).
    """
    n = y.shape[0]
    beta = np.full(n, np.nan)
    alpha = np.full(n, np.nan)
    mx = 0.0
    my = 0.0
    sxx = 0.0
    sxy = 0.0
    degenerate = 0
    fw = float(window)
    for t in range(window - 1, n):
        s = t - window + 1
        if (s % window) == 0:
            mx = 0.0
            my = 0.0
            for i in range(s, t + 1):
                mx += x[i]
                my += y[i]
            mx /= fw
            my /= fw
            sxx = 0.0
            sxy = 0.0
            for i in range(s, t + 1):
                dx = x[i] - mx
                sxx += dx * dx
                sxy += dx * (y[i] - my)
        else:
            # remove bar s-1
            xo = x[s - 1]
            yo = y[s - 1]
            dx = xo - mx
            dy = yo - my
            mx_r = mx - dx / (fw - 1.0)
            my_r = my - dy / (fw - 1.0)
            sxx -= (xo - mx_r) * dx
            sxy -= (xo - mx_r) * dy
            # add bar t
            xi = x[t]
            yi = y[t]
            dx = xi - mx_r
            mx = mx_r + dx / fw
            my = my_r + (yi - my_r) / fw
            sxx += dx * (xi - mx)
            sxy += dx * (yi - my)
        tol = 1e-10 * abs(mx)
        if sxx <= fw * tol * tol or sxx <= 0.0:
            degenerate += 1
            continue
        bt = sxy / sxx
        beta[t] = bt
        alpha[t] = my - bt * mx
    return beta, alpha, degenerate


rolling_ols = _jit(rolling_ols_py)


# --------------------------------------------------------------------------------------
# Theil-Sen: pairwise slopes
# --------------------------------------------------------------------------------------
def pairwise_slopes_py(x, y):
    """All slopes (y_j - y_i) / (x_j - x_i) over pairs with x_i != x_j (O(n^2) memory)."""
    n = x.shape[0]
    m = 0
    for i in range(n):
        for j in range(i + 1, n):
            if x[j] != x[i]:
                m += 1
    out = np.empty(m)
    k = 0
    for i in range(n):
        for j in range(i + 1, n):
            if x[j] != x[i]:
                out[k] = (y[j] - y[i]) / (x[j] - x[i])
                k += 1
    return out


pairwise_slopes = _jit(pairwise_slopes_py)
