"""Array kernels of the pair analytics: plain Python/numpy functions compiled by numba.

Each kernel is written once as a plain function (``*_py``, the fallback, runnable without
numba) and compiled with ``numba.njit(cache=True)`` when numba is importable. The public
names (``kalman_filter``, ``rolling_ols`` ...) are the compiled versions, or the plain ones
when numba is missing or ``QUANTLAB_NO_NUMBA=1``. tests/test_analytics_kernels.py proves
both paths equal. Arrays in, arrays out: no pandas here.
"""

from __future__ import annotations

import os
from types import ModuleType

import numpy as np

numba: ModuleType | None
try:  # pragma: no cover - exercised by the environment
    if os.environ.get("QUANTLAB_NO_NUMBA", "") in ("1", "true", "yes"):
        raise ImportError("disabled by QUANTLAB_NO_NUMBA")
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    numba = None
    HAVE_NUMBA = False


def _jit(fn):
    return numba.njit(cache=True, nogil=True)(fn) if numba is not None else fn


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


# --------------------------------------------------------------------------------------
# Theil-Sen slope selection by counting inversions
#
# Sort the points by x. For a threshold t let u_i = y_i - t x_i; for x_i < x_j the slope of
# (i, j) is <= t exactly when u_j <= u_i. Ordering the points by (u asc, x desc, ...) and
# counting its inversions against the x order counts the pairs with slope <= t in
# O(n log n); the inversions between the orders at two thresholds lo < hi are exactly the
# pairs with slope in (lo, hi], and a merge sort lists them in O(n log n + K).
# --------------------------------------------------------------------------------------
def order_at_py(u, tb_order):
    """Point ids sorted by u ascending, ties by their position in ``tb_order``."""
    uu = u[tb_order]
    o = np.argsort(uu, kind="mergesort")
    return tb_order[o]


order_at = _jit(order_at_py)


def inversion_slopes_py(seq, ids, x, y, total):
    """Count the inversions of ``seq`` (pairs p < q with seq[p] > seq[q]; seq holds distinct
    ints) by a bottom-up merge sort, and list the slopes of the first ``total`` of them.

    Returns (slopes, count): ``count`` every inversion, O(n log n + total) work; ``slopes``
    (length ``total``) of the inverted pairs in merge order, where the values of ``seq``
    index into ``ids`` and each slope is (y_a - y_b) / (x_a - x_b) on the raw values, the
    same floating-point operation as scipy.stats.theilslopes. ``total=0`` only counts
    (:func:`count_inversions_py`).
    """
    n = seq.shape[0]
    a = seq.copy()
    buf = np.empty_like(a)
    out = np.empty(total)
    m = 0
    width = 1
    while width < n:
        for lo in range(0, n, 2 * width):
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            i = lo
            j = mid
            k = lo
            while i < mid and j < hi:
                if a[i] <= a[j]:
                    buf[k] = a[i]
                    i += 1
                else:
                    # a[j] is smaller than every a[i:mid]: mid - i inversions
                    if m < total:
                        e2 = ids[a[j]]
                        for p in range(i, min(mid, i + total - m)):
                            e1 = ids[a[p]]
                            out[m + p - i] = (y[e1] - y[e2]) / (x[e1] - x[e2])
                    m += mid - i
                    buf[k] = a[j]
                    j += 1
                k += 1
            while i < mid:
                buf[k] = a[i]
                i += 1
                k += 1
            while j < hi:
                buf[k] = a[j]
                j += 1
                k += 1
        a, buf = buf, a
        width *= 2
    return out, m


inversion_slopes = _jit(inversion_slopes_py)

_NO_VALUES = np.empty(0)


def count_inversions_py(seq):
    """Number of pairs p < q with seq[p] > seq[q] (seq holds distinct ints), O(n log n)."""
    return inversion_slopes_py(seq, seq, _NO_VALUES, _NO_VALUES, 0)[1]


def count_inversions(seq):
    """:func:`count_inversions_py` through the compiled :func:`inversion_slopes`."""
    return inversion_slopes(seq, seq, _NO_VALUES, _NO_VALUES, 0)[1]


def sample_slopes_py(x, y, lo, hi, m, max_draws, seed):
    """Up to ``m`` slopes of uniformly drawn pairs (x_i != x_j) that fall in (lo, hi].

    A small linear congruential generator keeps the compiled and plain paths identical.
    """
    n = x.shape[0]
    out = np.empty(m)
    k = 0
    state = seed % 2147483648
    for _ in range(max_draws):
        state = (state * 1103515245 + 12345) % 2147483648
        i = int((state / 2147483648.0) * n)
        state = (state * 1103515245 + 12345) % 2147483648
        j = int((state / 2147483648.0) * n)
        if x[i] == x[j]:
            continue
        s = (y[j] - y[i]) / (x[j] - x[i])
        if lo < s <= hi:
            out[k] = s
            k += 1
            if k == m:
                break
    return out[:k]


sample_slopes = _jit(sample_slopes_py)


def close_pairs_ok_py(xp, yp, xcp, ycp, lo, a, d_lo, hi, b, d_hi, budget):
    """Check pairs close in x (x_j - x_i < d_lo or d_hi; arrays sorted by x) whose slope
    test at ``lo``/``hi`` could be swayed by rounding: no pair counted ``<= lo`` may have a
    slope above ``a`` and no pair counted ``> hi`` a slope below ``b``.
    Returns 1 (ok), 0 (a violation) or -1 (more than ``budget`` pairs to check).
    """
    n = xp.shape[0]
    d = max(d_lo, d_hi)
    work = 0
    for i in range(n):
        j = i + 1
        while j < n and xp[j] - xp[i] < d:
            work += 1
            if work > budget:
                return -1
            if xp[j] != xp[i]:
                s = (yp[j] - yp[i]) / (xp[j] - xp[i])
                if xp[j] - xp[i] < d_lo and lo > -np.inf:
                    if (ycp[j] - lo * xcp[j]) <= (ycp[i] - lo * xcp[i]) and s > a:
                        return 0
                if xp[j] - xp[i] < d_hi and hi < np.inf:
                    if (ycp[j] - hi * xcp[j]) > (ycp[i] - hi * xcp[i]) and s < b:
                        return 0
            j += 1
    return 1


close_pairs_ok = _jit(close_pairs_ok_py)


# --------------------------------------------------------------------------------------
# Kalman filter of the pair signal: separate beta/alpha noise, given initial state
# --------------------------------------------------------------------------------------
def kalman2_step_py(y, x, qb, qa, r, b, a, p00, p01, p11, first):
    """One step of the filter of ``y = beta x + alpha + e``: predict (random walk with
    variances ``qb``, ``qa``; no transition when ``first``, pykalman's convention for the
    first observation) then correct. Returns the filtered ``(b, a, p00, p01, p11)``."""
    if not first:
        p00 = p00 + qb
        p11 = p11 + qa
    fr0 = x * p00 + p01
    fr1 = x * p01 + p11
    q = fr0 * x + fr1 + r
    inv = 1.0 / q if q != 0.0 else 0.0
    k0 = fr0 * inv
    k1 = fr1 * inv
    e = y - (x * b + a)
    b = b + k0 * e
    a = a + k1 * e
    n00 = p00 - k0 * fr0
    n01 = p01 - k0 * fr1
    n11 = p11 - k1 * fr1
    return b, a, n00, n01, n11


kalman2_step = _jit(kalman2_step_py)


def kalman2_filter_py(y, x, qb, qa, r, b, a, p00, p01, p11, prior_first):
    """:func:`kalman2_step` over arrays from the state ``(b, a, P)``; the first step has no
    transition when ``prior_first``. Returns the filtered b, a, p00, p01, p11 per bar."""
    n = y.shape[0]
    ob = np.empty(n)
    oa = np.empty(n)
    o00 = np.empty(n)
    o01 = np.empty(n)
    o11 = np.empty(n)
    for t in range(n):
        b, a, p00, p01, p11 = kalman2_step(y[t], x[t], qb, qa, r, b, a, p00, p01, p11,
                                           prior_first and t == 0)
        ob[t] = b
        oa[t] = a
        o00[t] = p00
        o01[t] = p01
        o11[t] = p11
    return ob, oa, o00, o01, o11


kalman2_filter = _jit(kalman2_filter_py)


def expanding_ols_from_py(y, x, min_periods, k, mx, my, sxx, sxy):
    """Expanding OLS ``y = alpha + beta x`` by Welford's updates, continuing from the sums
    ``(k, mx, my, sxx, sxy)`` of the bars before. Returns beta, alpha (NaN below
    ``min_periods`` bars or for a constant x) and the final sums."""
    n = y.shape[0]
    beta = np.full(n, np.nan)
    alpha = np.full(n, np.nan)
    for t in range(n):
        k += 1.0
        dx = x[t] - mx
        dy = y[t] - my
        mx += dx / k
        my += dy / k
        sxx += dx * (x[t] - mx)
        sxy += dx * (y[t] - my)
        if k >= min_periods and sxx > 0.0:
            bt = sxy / sxx
            beta[t] = bt
            alpha[t] = my - bt * mx
    return beta, alpha, k, mx, my, sxx, sxy


expanding_ols_from = _jit(expanding_ols_from_py)


def kalman2_loglik_py(y, x, qb, qa, r, p0):
    """Exact Gaussian log-likelihood of the filter of :func:`kalman2_step` from state 0 with
    covariance ``p0 * I`` (no transition before the first bar), from its innovations."""
    n = y.shape[0]
    b = 0.0
    a = 0.0
    p00 = p0
    p01 = 0.0
    p11 = p0
    ll = 0.0
    for t in range(n):
        if t > 0:
            p00 = p00 + qb
            p11 = p11 + qa
        xt = x[t]
        fr0 = xt * p00 + p01
        fr1 = xt * p01 + p11
        q = fr0 * xt + fr1 + r
        if not q > 0.0:
            return -np.inf
        e = y[t] - (xt * b + a)
        ll -= 0.5 * (np.log(2.0 * np.pi * q) + e * e / q)
        k0 = fr0 / q
        k1 = fr1 / q
        b = b + k0 * e
        a = a + k1 * e
        p00 = p00 - k0 * fr0
        p01 = p01 - k0 * fr1
        p11 = p11 - k1 * fr1
    return ll


kalman2_loglik = _jit(kalman2_loglik_py)
