"""Per-block Engle-Granger statistics on a pre-aligned log-price matrix (numba/numpy, no I/O).

The screener's unit of work is a *block*: many pairs ``(i, j)`` of rows of one matrix
``z`` of log prices, all sharing the same column slice (the bars where both symbols
have data)::

    z   : (k_symbols, n_bars) float64, C-contiguous, no NaN inside the slice
    ii  : (B,) int row indices of the first symbol of each pair
    jj  : (B,) int row indices of the second symbol of each pair

:func:`eg_block` returns one value per pair for both regression directions
(``a`` = ``z[ii]`` on ``z[jj]`` and ``b`` = ``z[jj]`` on ``z[ii]``).

**The test and its fixed lag.** Each direction is the augmented Engle-Granger test of
statsmodels ``coint(y, x, trend="c", maxlag=lag, autolag=None)``: OLS of ``y`` on
``[x, 1]``, then an ADF regression without constant of the residual's difference on its
lagged level and ``lag`` lagged differences; the statistic is the t-value of the level and
the p-value MacKinnon's (1994) approximation for two I(1) series. The lag is FIXED,
``DEFAULT_LAG = 4`` lagged differences for every pair: ``autolag="aic"`` would fit
``maxlag + 1`` regressions per direction (``maxlag = 12 (n/100)^(1/4)``, 38 at 10k bars)
and pick a different lag per pair, ~40x the work over 5,000 pairs and less comparable
statistics. Why 4 and not 1: a symbol carrying a strong stationary component (the ``y`` of
a tight pair, microstructure noise) has negatively autocorrelated differences, and a short
ADF lag then over-rejects against unrelated symbols. On 60 synthetic random walks with 5
planted AR(0.95) spreads (8 seeds, 3,000 bars), false survivors after Benjamini-Hochberg at
5% summed to 28 with lag 1, 6 with lag 4 and 6 with lag 8; lag 4 costs ~1.6x lag 1.
A pair whose ``y`` is (nearly) stationary in-sample looks cointegrated with everything: the
Engle-Granger test assumes both series are I(1).

**The kernel.** :func:`eg_block` runs a fused numba kernel, one pair at a time: pass 1 the
two means, pass 2 the centred moments (hedge ratios, return correlation), pass 3 both
residual series and their differences on the fly, accumulating the sums the ADF normal
equations need (lagged autocovariances of the differences, level-times-difference sums;
the Gram matrix's off-diagonal windows are those sums corrected by at most ``lag`` edge
terms). The pair's two rows (2 x 80 KB at 10k bars) stay in cache for all three passes and
no (pairs x bars) temporary is written, so the kernel is compute-bound and scales with
cores, where the block-numpy form (:func:`eg_block_numpy`, kept for machines without
numba) streamed ~20 temporaries through memory and was memory-bound. The residual sum of
squares comes from the normal equations (``sum d^2 - coef . r``): equal to statsmodels to
~1e-11 even for spreads 2000x narrower than the legs' moves (tests pin 1e-8);
:func:`pair_stats_reference` is the slow per-pair path it is tested against.

Blocks are deterministic (they depend on the data, never on the executor); the kernel sums
sequentially (no fastmath reassociation) and each pair's numbers depend only on its own two
rows, so a pair gives bit-identical numbers in any block and in any process on the same
machine (numba compiles for the host CPU).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr
from statsmodels.tsa import adfvalues as _adfv

# numba is a hard dependency; QUANTLAB_NO_NUMBA=1 runs the block-numpy path (one switch,
# read where the analytics kernels read it)
from quantlab.analytics.kernels import HAVE_NUMBA, _jit

DEFAULT_LAG = 4

# MacKinnon (1994) response-surface coefficients for the "c" (constant) case, N = 2 series,
# taken from statsmodels' own table so that p-values are identical to ``coint``'s.
_TAU_MAX_C2 = float(_adfv._tau_maxs["c"][1])
_TAU_MIN_C2 = float(_adfv._tau_mins["c"][1])
_TAU_STAR_C2 = float(_adfv._tau_stars["c"][1])
_TAU_SMALLP_C2 = np.asarray(_adfv._tau_smallps["c"][1], dtype=np.float64)
_TAU_LARGEP_C2 = np.asarray(_adfv._tau_largeps["c"][1], dtype=np.float64)

# statsmodels' coint() declares the pair collinear (stat -inf, p-value 0) above this R^2.
_COLLINEAR_R2 = 1.0 - 100.0 * math.sqrt(np.finfo(np.double).eps)

FIELDS = (
    "stat_a", "stat_b", "pvalue_a", "pvalue_b", "beta_a", "beta_b", "alpha_a", "alpha_b",
    "half_life_a", "half_life_b", "spread_vol_a", "spread_vol_b", "ret_corr", "collinear",
)


def mackinnon_p(stat: np.ndarray) -> np.ndarray:
    """MacKinnon's approximate p-value of Engle-Granger statistics (constant, 2 series).

    Vectorised ``statsmodels.tsa.adfvalues.mackinnonp(stat, regression="c", N=2)``,
    elementwise identical; NaN stays NaN.
    """
    s = np.asarray(stat, dtype=np.float64)
    c = np.clip(s, _TAU_MIN_C2 - 1.0, _TAU_MAX_C2 + 1.0)  # +-inf: no overflow, same result
    small = np.polyval(_TAU_SMALLP_C2[::-1], c)
    large = np.polyval(_TAU_LARGEP_C2[::-1], c)
    p = ndtr(np.where(s <= _TAU_STAR_C2, small, large))
    p = np.where(s > _TAU_MAX_C2, 1.0, p)
    p = np.where(s < _TAU_MIN_C2, 0.0, p)
    return np.where(np.isnan(s), np.nan, p)


def _rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b)


def adf_tstat(e: np.ndarray, lag: int) -> np.ndarray:
    """ADF t-statistics (no constant, fixed ``lag``) of each row of ``e`` (B, n) -> (B,).

    Equals ``adfuller(e_row, maxlag=lag, autolag=None, regression="n")[0]``.
    """
    B, n = e.shape
    d = np.diff(e, axis=1)  # (B, n-1)
    m = n - 1 - lag
    target = d[:, lag:]
    cols = [e[:, lag : n - 1]] + [d[:, lag - k : lag - k + m] for k in range(1, lag + 1)]
    K = lag + 1
    G = np.empty((B, K, K))
    r = np.empty((B, K))
    for a in range(K):
        r[:, a] = _rowdot(cols[a], target)
        for b in range(a, K):
            G[:, a, b] = G[:, b, a] = _rowdot(cols[a], cols[b])
    coef, g00 = _solve(G, r)
    resid = target.copy()
    for a in range(K):
        resid -= coef[:, a, None] * cols[a]
    sigma2 = _rowdot(resid, resid) / (m - K)
    return coef[:, 0] / np.sqrt(sigma2 * g00)


def _solve(G: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``G^-1 r`` and ``(G^-1)[0, 0]`` for a stack of systems; NaN for singular ones."""
    B, K = r.shape
    rhs = np.zeros((B, K, 2))
    rhs[:, :, 0] = r
    rhs[:, 0, 1] = 1.0
    try:
        sol = np.linalg.solve(G, rhs)
    except np.linalg.LinAlgError:  # some row is singular (e.g. a price that never moves)
        sol = np.full((B, K, 2), np.nan)
        for b in range(B):
            try:
                sol[b] = np.linalg.solve(G[b], rhs[b])
            except np.linalg.LinAlgError:
                pass
    return sol[:, :, 0], sol[:, 0, 1]


def half_life_rows(s: np.ndarray) -> np.ndarray:
    """Mean-reversion half-life in bars of each row of ``s`` (B, n) -> (B,).

    OLS of ``s[t] - s[t-1]`` on ``[1, s[t-1]]`` gives the slope ``lam``; the half-life is
    ``-ln 2 / ln|1 + lam|`` (the AR(1) coefficient is ``1 + lam``): ``inf`` when the spread
    does not revert (``lam >= 0``), 0 when ``lam == -1``; as ``quantlab.analytics.half_life``
    (which also warns for the degenerate cases), row by row.
    """
    lagged = s[:, :-1]
    m = lagged.shape[1]
    ds = np.diff(s, axis=1)
    sl = lagged.sum(axis=1)
    sd = s[:, -1] - s[:, 0]
    lam = (_rowdot(lagged, ds) - sl * sd / m) / (_rowdot(lagged, lagged) - sl * sl / m)
    out = np.full(lam.shape, np.nan)
    phi = np.abs(1.0 + lam)
    ok = (lam < 0.0) & (phi > 0.0) & (phi < 1.0)
    out[ok] = -math.log(2.0) / np.log(phi[ok])
    out[(lam >= 0.0) | ((lam < 0.0) & (phi >= 1.0))] = np.inf
    out[(lam < 0.0) & (phi == 0.0)] = 0.0
    return out


def eg_block_numpy(z: np.ndarray, ii: np.ndarray, jj: np.ndarray, lag: int = DEFAULT_LAG) -> dict:
    """The block-numpy form of :func:`eg_block` (used without numba): the same statistics of
    the pairs ``(ii[p], jj[p])`` over all columns of ``z`` (k, n), the same dict of (B,)
    arrays named by :data:`FIELDS` (see :func:`eg_block`), tested equal to it.
    """
    ii = np.asarray(ii, dtype=np.intp)
    jj = np.asarray(jj, dtype=np.intp)
    n = z.shape[1]
    if n < lag + 4:
        raise ValueError(f"eg_block: {n} bars are too few for lag={lag}")
    with np.errstate(divide="ignore", invalid="ignore"):
        Y = z[ii]
        X = z[jj]
        ybar = Y.mean(axis=1)
        xbar = X.mean(axis=1)
        Y -= ybar[:, None]
        X -= xbar[:, None]
        sxx = _rowdot(X, X)
        syy = _rowdot(Y, Y)
        sxy = _rowdot(X, Y)
        beta_a = sxy / sxx
        beta_b = sxy / syy
        r2 = sxy * sxy / (sxx * syy)
        collinear = r2 >= _COLLINEAR_R2
        degenerate = ~((sxx > 0) & (syy > 0))
        e = Y - beta_a[:, None] * X
        f = X - beta_b[:, None] * Y
        # Constant series and collinear pairs would make singular ADF systems: test a
        # harmless dummy in their place, then overwrite (NaN and -inf respectively).
        skip = degenerate | collinear
        if skip.any():
            dummy = np.random.default_rng(0).standard_normal(n)
            ea, fa = e.copy(), f.copy()
            ea[skip] = fa[skip] = dummy
            stat_a = adf_tstat(ea, lag)
            stat_b = adf_tstat(fa, lag)
        else:
            stat_a = adf_tstat(e, lag)
            stat_b = adf_tstat(f, lag)
        stat_a[collinear] = -np.inf
        stat_b[collinear] = -np.inf
        dy = np.diff(Y, axis=1)
        dx = np.diff(X, axis=1)
        dy -= dy.mean(axis=1, keepdims=True)
        dx -= dx.mean(axis=1, keepdims=True)
        ret_corr = _rowdot(dy, dx) / np.sqrt(_rowdot(dy, dy) * _rowdot(dx, dx))
        out = {
            "stat_a": stat_a,
            "stat_b": stat_b,
            "pvalue_a": mackinnon_p(stat_a),
            "pvalue_b": mackinnon_p(stat_b),
            "beta_a": beta_a,
            "beta_b": beta_b,
            "alpha_a": ybar - beta_a * xbar,
            "alpha_b": xbar - beta_b * ybar,
            "half_life_a": half_life_rows(e),
            "half_life_b": half_life_rows(f),
            "spread_vol_a": np.sqrt(_rowdot(e, e) / (n - 1)),
            "spread_vol_b": np.sqrt(_rowdot(f, f) / (n - 1)),
            "ret_corr": ret_corr,
            "collinear": collinear & ~degenerate,
        }
    if degenerate.any():
        for key, value in out.items():
            if key != "collinear":
                value[degenerate] = np.nan
    return out


def eg_block(z: np.ndarray, ii: np.ndarray, jj: np.ndarray, lag: int = DEFAULT_LAG) -> dict:
    """Statistics of the pairs ``(ii[p], jj[p])`` over all columns of ``z`` (k, n).

    Returns a dict of (B,) arrays named by :data:`FIELDS`: for direction ``a`` (row ``ii``
    regressed on row ``jj``) and ``b`` (the reverse): Engle-Granger statistic and p-value,
    hedge ratio ``beta`` and intercept ``alpha`` (``y = alpha + beta x + spread``), the
    spread's half-life in bars and its standard deviation (ddof=1, log units); the
    correlation of one-bar log returns; and ``collinear`` (R^2 so close to 1 that
    statsmodels reports stat ``-inf`` and p-value 0). Degenerate rows (a constant series)
    give NaN, never a warning.

    With numba the fused per-pair kernel runs (three passes over the pair's two rows,
    which stay in cache; no (B, n) temporaries); without it, :func:`eg_block_numpy`.
    """
    ii = np.asarray(ii, dtype=np.intp)
    jj = np.asarray(jj, dtype=np.intp)
    n = z.shape[1]
    if n < lag + 4:
        raise ValueError(f"eg_block: {n} bars are too few for lag={lag}")
    if not HAVE_NUMBA:
        return eg_block_numpy(z, ii, jj, lag)
    out = np.empty((ii.shape[0], _N_OUT + 1))
    _eg_pairs(np.asarray(z, dtype=np.float64), ii, jj, int(lag), _COLLINEAR_R2, out)
    return {
        "stat_a": out[:, 0].copy(),
        "stat_b": out[:, 1].copy(),
        "pvalue_a": mackinnon_p(out[:, 0]),
        "pvalue_b": mackinnon_p(out[:, 1]),
        "beta_a": out[:, 2].copy(),
        "beta_b": out[:, 3].copy(),
        "alpha_a": out[:, 4].copy(),
        "alpha_b": out[:, 5].copy(),
        "half_life_a": out[:, 6].copy(),
        "half_life_b": out[:, 7].copy(),
        "spread_vol_a": out[:, 8].copy(),
        "spread_vol_b": out[:, 9].copy(),
        "ret_corr": out[:, 10].copy(),
        "collinear": out[:, _N_OUT] == 1.0,
    }


def pair_stats_reference(y: np.ndarray, x: np.ndarray, lag: int = DEFAULT_LAG) -> dict:
    """Direction-``a`` statistics of one pair by the slow, per-pair reference path.

    ``y``, ``x``: 1-D log prices of equal length. Uses ``quantlab.analytics`` (the
    project's Engle-Granger, equal to statsmodels ``coint``); :func:`eg_block` is tested
    equal to this to 1e-8.
    """
    from quantlab.analytics import engle_granger, half_life

    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    res = engle_granger(y, x, trend="c", maxlag=lag, autolag=None)
    beta, alpha = float(res.beta), float(res.alpha)
    spread = y - alpha - beta * x
    return {
        "stat_a": float(res.stat),
        "pvalue_a": float(res.pvalue),
        "beta_a": beta,
        "alpha_a": alpha,
        "half_life_a": float(half_life(spread)),
        "spread_vol_a": float(np.std(spread, ddof=1)),
        "ret_corr": float(np.corrcoef(np.diff(y), np.diff(x))[0, 1]),
    }


# --------------------------------------------------------------------------------------
# The fused per-pair kernel (numba): three passes over the pair's two rows, no temporaries
# --------------------------------------------------------------------------------------
_N_OUT = 11  # stat_a stat_b beta_a beta_b alpha_a alpha_b hl_a hl_b vol_a vol_b ret_corr
_LN2 = math.log(2.0)


def _half_life_from_sums(ed, e_sum, ee, sd, m):
    """Half-life in bars from the sums of :func:`half_life_rows` (same formula)."""
    lam = (ed - e_sum * sd / m) / (ee - e_sum * e_sum / m)
    if lam != lam:
        return np.nan
    if lam >= 0.0:
        return np.inf
    phi = abs(1.0 + lam)
    if phi == 0.0:
        return 0.0
    if phi >= 1.0:
        return np.inf
    return -_LN2 / math.log(phi)


def _gram_from_sums(ee_w, p, aw, d_head, d_tail, lag, m, G, r):
    """Fill the ADF normal equations ``G`` (K, K) and ``r`` (K,) from window sums.

    ``ee_w`` = sum e_i^2, ``p[l]`` = sum e_i d_(i-l), ``aw[h]`` = sum d_i d_(i-h), all over
    i in [lag, n-2]; ``d_head`` = d_0 .. d_(lag-1), ``d_tail`` = d_(n-2-lag) .. d_(n-2).
    The regressors are [e_(i), d_(i-1) .. d_(i-lag)], the target d_i.
    """
    K = lag + 1
    G[0, 0] = ee_w
    r[0] = p[0]
    for k in range(1, K):
        G[0, k] = p[k]
        G[k, 0] = p[k]
        r[k] = aw[k]
    # G[k, c] = sum_{i=lag}^{n-2} d_(i-k) d_(i-c) = aw[c-k] + head edge - tail edge
    for k in range(1, K):
        for c in range(k, K):
            h = c - k
            acc = aw[h]
            for j in range(lag - k, lag):  # j = i - k below i = lag
                acc += d_head[j] * d_head[j - h]
            for j in range(m + lag - k, m + lag):  # j = i - k above i = n - 2 - k
                # d_tail[q] holds d_(n-2-lag+q); n - 2 = m + lag - 1
                acc -= d_tail[j - (m - 1)] * d_tail[j - h - (m - 1)]
            G[k, c] = acc
            G[c, k] = acc


def _tstat_from_gram(G, r, tt, dof, K, L, v):
    """t-value of the first coefficient of the normal equations ``G c = r`` (Cholesky;
    NaN if singular), the residual sum of squares being ``tt - c . r`` over ``dof``."""
    # Cholesky G = L L^T
    for a in range(K):
        s = G[a, a]
        for b in range(a):
            s -= L[a, b] * L[a, b]
        if not s > 0.0:
            return np.nan
        L[a, a] = math.sqrt(s)
        for c in range(a + 1, K):
            t = G[c, a]
            for b in range(a):
                t -= L[c, b] * L[a, b]
            L[c, a] = t / L[a, a]
    # coef = G^-1 r: forward then back substitution (v holds the intermediate)
    for a in range(K):
        t = r[a]
        for b in range(a):
            t -= L[a, b] * v[b]
        v[a] = t / L[a, a]
    coef0 = 0.0
    for a in range(K - 1, -1, -1):
        t = v[a]
        for b in range(a + 1, K):
            t -= L[b, a] * v[b]
        v[a] = t / L[a, a]
    coef0 = v[0]
    rss = tt
    for a in range(K):
        rss -= v[a] * r[a]
    # (G^-1)[0, 0] = |L^-1 e_0|^2
    g00 = 0.0
    for a in range(K):
        t = 1.0 if a == 0 else 0.0
        for b in range(a):
            t -= L[a, b] * v[b]
        v[a] = t / L[a, a]
        g00 += v[a] * v[a]
    sigma2 = rss / dof
    if not (sigma2 > 0.0 and g00 > 0.0):
        return np.nan
    return coef0 / math.sqrt(sigma2 * g00)


def _adf_from_sums(ee_w, p, aw, d_head, d_tail, lag, m, G, r, L, v):
    """ADF t-statistic without constant (the Engle-Granger step) from window sums."""
    _gram_from_sums(ee_w, p, aw, d_head, d_tail, lag, m, G, r)
    return _tstat_from_gram(G, r, aw[0], m - (lag + 1), lag + 1, L, v)


def _adf_c_py(x, lag):
    """ADF t-statistic WITH constant and ``lag`` fixed lagged differences of a 1-D series
    (statsmodels ``adfuller(x, maxlag=lag, autolag=None, regression="c")[0]``): the window
    sums of the no-constant form, centred over the window (Frisch-Waugh), one pass."""
    n = x.shape[0]
    K = lag + 1
    m = n - 1 - lag
    G = np.empty((K, K))
    r = np.empty(K)
    L = np.zeros((K, K))
    v = np.empty(K)
    ring = np.zeros(K)
    head = np.zeros(max(lag, 1))
    p = np.zeros(K)
    aw = np.zeros(K)
    xbar = 0.0
    for t in range(n):
        xbar += x[t]
    xbar /= n
    eew = 0.0
    ew = 0.0
    e = x[0] - xbar
    for i in range(n - 1):
        e1 = x[i + 1] - xbar
        d = e1 - e
        for k in range(K - 1, 0, -1):
            ring[k] = ring[k - 1]
        ring[0] = d
        if i < lag:
            head[i] = d
        else:
            eew += e * e
            ew += e
            for k in range(K):
                p[k] += e * ring[k]
                aw[k] += d * ring[k]
        e = e1
    tail = np.empty(K)
    for k in range(K):
        tail[k] = ring[K - 1 - k]
    _gram_from_sums(eew, p, aw, head, tail, lag, m, G, r)
    # column sums over the window: level e_i, and d_(i-k) = x[n-1-k] - x[lag-k] (telescoping)
    sums = np.empty(K)
    sums[0] = ew
    for k in range(1, K):
        sums[k] = x[n - 1 - k] - x[lag - k]
    st = x[n - 1] - x[lag]
    for a in range(K):
        r[a] -= sums[a] * st / m
        for b in range(K):
            G[a, b] -= sums[a] * sums[b] / m
    tt = aw[0] - st * st / m
    return _tstat_from_gram(G, r, tt, m - K - 1, K, L, v)


def _eg_pairs_py(z, ii, jj, lag, collinear_r2, out):
    """Fill ``out`` (B, 11) with the statistics of pairs (ii[p], jj[p]) over all columns
    of ``z``; ``out[:, 11]`` is 1.0 for a collinear pair. One pair at a time: its two rows
    (2 x 8n bytes) stay in cache for the three passes."""
    n = z.shape[1]
    m = n - 1 - lag
    K = lag + 1
    G = np.empty((K, K))
    r = np.empty(K)
    L = np.zeros((K, K))
    v = np.empty(K)
    ring_a = np.zeros(K)
    ring_b = np.zeros(K)
    head_a = np.zeros(max(lag, 1))
    head_b = np.zeros(max(lag, 1))
    pa = np.empty(K)
    pb = np.empty(K)
    awa = np.empty(K)
    awb = np.empty(K)
    for q in range(ii.shape[0]):
        y = z[ii[q]]
        x = z[jj[q]]
        # pass 1: means
        sy = 0.0
        sx = 0.0
        for t in range(n):
            sy += y[t]
            sx += x[t]
        ybar = sy / n
        xbar = sx / n
        # pass 2: centred moments of the levels and of the one-bar returns
        sxx = 0.0
        syy = 0.0
        sxy = 0.0
        mdy = (y[n - 1] - y[0]) / (n - 1)
        mdx = (x[n - 1] - x[0]) / (n - 1)
        ryy = 0.0
        rxx = 0.0
        rxy = 0.0
        for t in range(n):
            yc = y[t] - ybar
            xc = x[t] - xbar
            sxx += xc * xc
            syy += yc * yc
            sxy += xc * yc
            if t > 0:
                dy = (y[t] - y[t - 1]) - mdy
                dx = (x[t] - x[t - 1]) - mdx
                ryy += dy * dy
                rxx += dx * dx
                rxy += dy * dx
        if not (sxx > 0.0 and syy > 0.0):
            for c in range(_N_OUT + 1):
                out[q, c] = np.nan
            out[q, _N_OUT] = 0.0
            continue
        beta_a = sxy / sxx
        beta_b = sxy / syy
        collinear = sxy * sxy / (sxx * syy) >= collinear_r2
        # pass 3: both residual series e = yc - beta_a xc, f = xc - beta_b yc and their
        # differences d; i runs over the differences d_i = e_(i+1) - e_i, i = 0 .. n-2
        for k in range(K):
            pa[k] = 0.0
            pb[k] = 0.0
            awa[k] = 0.0
            awb[k] = 0.0
            ring_a[k] = 0.0
            ring_b[k] = 0.0
        ee_a = 0.0
        ee_b = 0.0
        es_a = 0.0
        es_b = 0.0
        eew_a = 0.0
        eew_b = 0.0
        ed_head_a = 0.0
        ed_head_b = 0.0
        ee_head_a = 0.0
        ee_head_b = 0.0
        ea = (y[0] - ybar) - beta_a * (x[0] - xbar)
        eb = (x[0] - xbar) - beta_b * (y[0] - ybar)
        e0a = ea
        e0b = eb
        for i in range(n - 1):
            ya = y[i + 1] - ybar
            xa = x[i + 1] - xbar
            ea1 = ya - beta_a * xa
            eb1 = xa - beta_b * ya
            da = ea1 - ea
            db = eb1 - eb
            # ring[k] = d_(i-k) after the shift
            for k in range(K - 1, 0, -1):
                ring_a[k] = ring_a[k - 1]
                ring_b[k] = ring_b[k - 1]
            ring_a[0] = da
            ring_b[0] = db
            es_a += ea
            es_b += eb
            if i < lag:
                head_a[i] = da
                head_b[i] = db
                ed_head_a += ea * da
                ed_head_b += eb * db
                ee_head_a += ea * ea
                ee_head_b += eb * eb
            else:
                eew_a += ea * ea
                eew_b += eb * eb
                for k in range(K):
                    pa[k] += ea * ring_a[k]
                    pb[k] += eb * ring_b[k]
                    awa[k] += da * ring_a[k]
                    awb[k] += db * ring_b[k]
            ea = ea1
            eb = eb1
        # ea, eb now hold e_(n-1); the ring holds d_(n-2) .. d_(n-2-lag), reversed below
        for k in range(K):
            r[k] = ring_a[K - 1 - k]
        for k in range(K):
            ring_a[k] = r[k]
        for k in range(K):
            r[k] = ring_b[K - 1 - k]
        for k in range(K):
            ring_b[k] = r[k]
        if collinear:
            stat_a = -np.inf
            stat_b = -np.inf
        else:
            stat_a = _adf_from_sums(eew_a, pa, awa, head_a, ring_a, lag, m, G, r, L, v)
            stat_b = _adf_from_sums(eew_b, pb, awb, head_b, ring_b, lag, m, G, r, L, v)
        ee_a = ee_head_a + eew_a
        ee_b = ee_head_b + eew_b
        out[q, 0] = stat_a
        out[q, 1] = stat_b
        out[q, 2] = beta_a
        out[q, 3] = beta_b
        out[q, 4] = ybar - beta_a * xbar
        out[q, 5] = xbar - beta_b * ybar
        out[q, 6] = _half_life_from_sums(ed_head_a + pa[0], es_a, ee_a, ea - e0a, n - 1.0)
        out[q, 7] = _half_life_from_sums(ed_head_b + pb[0], es_b, ee_b, eb - e0b, n - 1.0)
        out[q, 8] = math.sqrt((ee_a + ea * ea) / (n - 1))
        out[q, 9] = math.sqrt((ee_b + eb * eb) / (n - 1))
        out[q, 10] = rxy / math.sqrt(ryy * rxx)
        out[q, _N_OUT] = 1.0 if collinear else 0.0


if HAVE_NUMBA:
    _half_life_from_sums = _jit(_half_life_from_sums)
    _gram_from_sums = _jit(_gram_from_sums)
    _tstat_from_gram = _jit(_tstat_from_gram)
    _adf_from_sums = _jit(_adf_from_sums)
    _eg_pairs = _jit(_eg_pairs_py)
    _adf_c = _jit(_adf_c_py)
else:  # pragma: no cover
    _eg_pairs = _eg_pairs_py
    _adf_c = _adf_c_py


def adf_c_stat(x: np.ndarray, lag: int = DEFAULT_LAG) -> float:
    """ADF statistic (constant, ``lag`` fixed lagged differences) of a 1-D series without
    NaN: ``adfuller(x, maxlag=lag, autolag=None, regression="c")[0]`` in one pass (numba).
    NaN for a constant or too short series. P-value: statsmodels ``mackinnonp(stat, "c")``.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 1 or x.shape[0] < 2 * lag + 8:
        return math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(_adf_c(x, int(lag)))
