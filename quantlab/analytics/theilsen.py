"""Exact Theil-Sen slope in O(n log n) expected time, equal to ``scipy.stats.theilslopes``.

scipy takes the median of all n(n-1)/2 slopes ``(y_j - y_i) / (x_j - x_i)`` over pairs with
``x_i != x_j`` (O(n^2) memory and time). Here (randomized slope selection):

1. draw random pairs, and from their slopes pick an interval (lo, hi] that should hold
   the median rank(s);
2. count the pairs with slope <= lo and <= hi exactly, by counting inversions
   (``kernels.count_inversions``, O(n log n)); if the median ranks fall inside, keep the
   interval, and repeat 1-2 inside it until it holds at most ~8n pairs;
3. list the pairs inside (``kernels.inversion_slopes``), compute their slopes with the same
   floating-point division as scipy, and select the median ranks.

The counting compares ``y - t x`` values, which rounding can sway only for pairs whose
x gap is tiny relative to their distance from lo or hi; those pairs are checked one by
one (``kernels.close_pairs_ok``) and any doubt falls back to the direct median.
Small inputs (fewer than ``BRUTE_N`` points) use the direct O(n^2) median.
"""

from __future__ import annotations

import math

import numpy as np

from . import kernels

BRUTE_N = 1500
_EPS = float(np.finfo(np.float64).eps)


def _brute(x: np.ndarray, y: np.ndarray, use_numba: bool) -> float:
    fn = kernels.pairwise_slopes if use_numba else kernels.pairwise_slopes_py
    slopes = fn(x, y)
    if slopes.size == 0:
        return float("nan")
    return float(np.median(slopes))


def theil_sen_slope(x: np.ndarray, y: np.ndarray, *, use_numba: bool = True,
                    brute_n: int = BRUTE_N, seed: int = 12345) -> float:
    """Median of (y_j - y_i)/(x_j - x_i) over pairs with x_i != x_j; nan if there is none."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    n = x.size
    if n < 2:
        return float("nan")
    if n < brute_n:
        return _brute(x, y, use_numba)
    k = kernels if use_numba else None
    order_at = kernels.order_at if k else kernels.order_at_py
    count_inv = kernels.count_inversions if k else kernels.count_inversions_py
    inv_slopes = kernels.inversion_slopes if k else kernels.inversion_slopes_py
    sample = kernels.sample_slopes if k else kernels.sample_slopes_py

    idx = np.arange(n)
    p_order = np.lexsort((idx, y, x))  # x asc, y asc
    prank = np.empty(n, dtype=np.int64)
    prank[p_order] = idx
    tb_order = np.lexsort((idx, y, -x)).astype(np.int64)  # x desc, y asc
    xs = x[p_order]
    # pairs with equal x are skipped, as scipy does
    _, counts = np.unique(xs, return_counts=True)
    total = n * (n - 1) // 2 - int(np.sum(counts * (counts - 1) // 2))
    if total == 0:
        return float("nan")
    xc = x - x.mean()
    yc = y - y.mean()
    k_lo, k_hi = (total - 1) // 2, total // 2

    def count_le(t: float) -> int:
        if t == math.inf:
            return total
        if t == -math.inf:
            return 0
        return int(count_inv(prank[order_at(yc - t * xc, tb_order)]))

    lo, hi, c_lo, c_hi = -math.inf, math.inf, 0, total
    cap = max(8 * n, 100_000)
    m_target = int(min(max(n, 2000), 50_000))
    width = 3.0
    stalled = 0
    for attempt in range(40):
        size = c_hi - c_lo
        if size <= cap or stalled >= 4:
            break
        draws = int(min(30 * n + 10 * m_target, m_target * (total / size) * 1.5 + 1000))
        s = np.sort(sample(x, y, lo, hi, m_target, draws, seed + attempt))
        m = s.size
        if m < 30:
            stalled += 1
            continue
        q_lo = (k_lo - c_lo) / size
        q_hi = (k_hi - c_lo + 1) / size
        sd = width * math.sqrt(m) * 0.5 + 1.0
        ia = int(math.floor(q_lo * m - sd))
        ib = int(math.ceil(q_hi * m + sd))
        spread = float(s[-1] - s[0])
        new_lo, new_hi = lo, hi
        if ia >= 0:
            new_lo = max(lo, float(s[ia]) - max(1e-7 * spread, 1e-12 * abs(s[ia])))
        if ib < m:
            new_hi = min(hi, float(s[ib]) + max(1e-7 * spread, 1e-12 * abs(s[ib])))
        nc_lo = count_le(new_lo) if new_lo != lo else c_lo
        nc_hi = count_le(new_hi) if new_hi != hi else c_hi
        if nc_lo <= k_lo and nc_hi > k_hi:
            if nc_hi - nc_lo > 0.9 * size:
                stalled += 1
            lo, hi, c_lo, c_hi = new_lo, new_hi, nc_lo, nc_hi
        else:
            width *= 1.5
            stalled += 1
    size = c_hi - c_lo
    if lo == -math.inf and hi == math.inf:
        return _brute_or_fail(x, y, use_numba)
    if size > 30_000_000:
        raise RuntimeError(
            f"Theil-Sen: {size:,} pairwise slopes tie (or nearly tie) around the median of "
            f"{n:,} points; the exact median needs them all. Pass a subsample.")

    o_lo = order_at(yc - lo * xc, tb_order) if lo > -math.inf else p_order.astype(np.int64)
    if hi < math.inf:
        o_hi = order_at(yc - hi * xc, tb_order)
    else:  # every distinct-x pair is <= +inf: x descending, equal x by y ascending
        o_hi = np.ascontiguousarray(tb_order)
    rank_lo = np.empty(n, dtype=np.int64)
    rank_lo[o_lo] = idx
    seq = rank_lo[o_hi]
    got = int(count_inv(seq))
    if got != size:  # rounding broke the nesting of the two orders
        return _brute_or_fail(x, y, use_numba)
    w, _ = inv_slopes(seq, o_lo.astype(np.int64), x, y, size)
    w.sort()
    a = float(w[k_lo - c_lo])
    b = float(w[k_hi - c_lo])
    # a pair can be misplaced by rounding only if its x gap is below err / distance
    xcp = xc[p_order]
    ycp = yc[p_order]
    ymax_c = float(np.abs(yc).max())
    xmax_c = float(np.abs(xc).max())

    def radius(t: float, dist: float) -> float:
        if not math.isfinite(t):
            return 0.0
        err = 8.0 * _EPS * (ymax_c + abs(t) * xmax_c) + 8.0 * _EPS * abs(t) * xmax_c
        return err / dist if dist > 0 else math.inf

    d_lo = radius(lo, a - lo)
    d_hi = radius(hi, hi - b)
    chk = kernels.close_pairs_ok if use_numba else kernels.close_pairs_ok_py
    ok = chk(xs, y[p_order], xcp, ycp, lo, a, d_lo, hi, b, d_hi, 50 * n)
    if ok != 1:
        return _brute_or_fail(x, y, use_numba)
    return (a + b) / 2.0 if k_lo != k_hi else a


def _brute_or_fail(x: np.ndarray, y: np.ndarray, use_numba: bool) -> float:
    if x.size > 20_000:
        raise RuntimeError("Theil-Sen slope selection could not separate the median from "
                           "rounding noise; pass a subsample")
    return _brute(x, y, use_numba)
