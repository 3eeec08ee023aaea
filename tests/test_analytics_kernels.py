"""The numba kernels and their plain-Python fallbacks give the same numbers."""

from __future__ import annotations

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal

from quantlab.analytics import kernels, theilsen


def _data(n=2000, seed=3):
    rs = np.random.default_rng(seed)
    x = 50 + np.cumsum(rs.standard_normal(n))
    y = 2 * x + rs.standard_normal(n)
    return y, x


def test_numba_is_active():
    assert kernels.HAVE_NUMBA
    assert hasattr(kernels.kalman_filter, "py_func")


def test_kalman_kernel_equal():
    y, x = _data()
    for a, b in zip(kernels.kalman_filter(y, x, 1e-4, 1e-3),
                    kernels.kalman_filter_py(y, x, 1e-4, 1e-3), strict=True):
        assert_allclose(a, b, rtol=1e-13, atol=1e-13)


def test_rolling_kernel_equal():
    y, x = _data()
    x[500:560] = 7.0  # a constant stretch: degenerate windows
    b1, a1, d1 = kernels.rolling_ols(y, x, 40)
    b2, a2, d2 = kernels.rolling_ols_py(y, x, 40)
    assert_allclose(b1, b2, rtol=1e-12, equal_nan=True)
    assert_allclose(a1, a2, rtol=1e-12, equal_nan=True)
    assert d1 == d2 > 0


def test_inversion_kernels_equal():
    rs = np.random.default_rng(0)
    seq = rs.permutation(3000).astype(np.int64)
    inv = kernels.count_inversions(seq)
    assert inv == kernels.count_inversions_py(seq)
    small = seq[:300] % 300
    small = np.argsort(np.argsort(small)).astype(np.int64)
    brute = sum(int(small[i] > small[j]) for i in range(300) for j in range(i + 1, 300))
    assert kernels.count_inversions(small) == brute
    y, x = _data(3000)
    ids = rs.permutation(3000).astype(np.int64)
    w1, m1 = kernels.inversion_slopes(seq, ids, x, y, int(inv))
    w2, m2 = kernels.inversion_slopes_py(seq, ids, x, y, int(inv))
    assert m1 == m2 == inv
    assert_array_equal(w1, w2)
    s1 = kernels.sample_slopes(x, y, 1.0, 3.0, 500, 100_000, 7)
    s2 = kernels.sample_slopes_py(x, y, 1.0, 3.0, 500, 100_000, 7)
    assert_array_equal(s1, s2)


def test_one_merge_counts_the_inversions_and_lists_their_slopes():
    """Counting and listing are one merge sort: ``total=0`` only counts; a listing of the
    first ``total`` inverted pairs is a prefix of the full one; the full one holds exactly
    the slopes of the inverted pairs (brute force), computed as scipy does."""
    rs = np.random.default_rng(4)
    n = 200
    seq = rs.permutation(n).astype(np.int64)
    ids = rs.permutation(n).astype(np.int64)
    y, x = _data(n, seed=5)
    pairs = [(p, q) for p in range(n) for q in range(p + 1, n) if seq[p] > seq[q]]
    for fn in (kernels.inversion_slopes, kernels.inversion_slopes_py):
        none, count = fn(seq, ids, x, y, 0)
        assert none.size == 0 and count == len(pairs) == kernels.count_inversions(seq)
        full, count_full = fn(seq, ids, x, y, len(pairs))
        part, count_part = fn(seq, ids, x, y, 100)
        assert count_full == count_part == len(pairs)
        assert_array_equal(part, full[:100])
        brute = [(y[ids[seq[p]]] - y[ids[seq[q]]]) / (x[ids[seq[p]]] - x[ids[seq[q]]]) for p, q in pairs]
        assert_array_equal(np.sort(full), np.sort(brute))


def test_theilsen_paths_equal():
    y, x = _data(2500)
    a = theilsen.theil_sen_slope(x, y, brute_n=10)
    b = theilsen.theil_sen_slope(x, y, brute_n=10, use_numba=False)
    c = theilsen.theil_sen_slope(x[:400], y[:400], use_numba=False)
    assert a == b
    assert c == theilsen.theil_sen_slope(x[:400], y[:400])
