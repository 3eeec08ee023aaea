"""The screener's batched kernel equals the per-pair references (statsmodels / analytics)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from statsmodels.stats.multitest import multipletests
from statsmodels.tsa import adfvalues
from statsmodels.tsa.stattools import adfuller, coint

from quantlab.screen import core
from quantlab.screen.core import eg_block, mackinnon_p, pair_stats_reference
from quantlab.screen.fdr import bh_qvalues, bh_select


def _walks(k=8, n=1500, seed=0, planted=True):
    rng = np.random.default_rng(seed)
    z = np.cumsum(rng.normal(0, 0.002, (k, n)), axis=1) + rng.normal(4, 1, (k, 1))
    if planted:
        s = np.zeros(n)
        for t in range(1, n):
            s[t] = 0.9 * s[t - 1] + rng.normal(0, 0.002)
        z[1] = 0.2 + 1.3 * z[0] + s
    return z


def test_vectorised_mackinnon_p_equals_statsmodels():
    stats = np.concatenate([np.linspace(-25, 4, 2001), [-18.86, -2.62, 0.92, -np.inf]])
    ref = np.array([adfvalues.mackinnonp(s, regression="c", N=2) for s in stats])
    assert np.array_equal(mackinnon_p(stats), ref)
    assert np.isnan(mackinnon_p(np.array([np.nan])))[0]


@pytest.mark.parametrize("lag", [0, 1, 4])
def test_kernel_equals_statsmodels_coint(lag):
    z = _walks()
    ii, jj = np.triu_indices(len(z), 1)
    out = eg_block(z, ii, jj, lag)
    for p in range(len(ii)):
        y, x = z[ii[p]], z[jj[p]]
        for d, (a, b) in (("a", (y, x)), ("b", (x, y))):
            stat, pvalue, _ = coint(a, b, trend="c", maxlag=lag, autolag=None)
            assert_allclose(out[f"stat_{d}"][p], stat, rtol=1e-8, atol=1e-8)
            assert_allclose(out[f"pvalue_{d}"][p], pvalue, rtol=1e-8, atol=1e-10)
    # the planted pair is there, with the planted hedge ratio
    assert out["pvalue_a"][0] < 1e-6
    assert_allclose(out["beta_b"][0], 1.3, rtol=0.05)  # z1 = 0.2 + 1.3 z0 + s


def test_kernel_equals_analytics_per_pair():
    z = _walks(k=6, n=1200, seed=3)
    ii, jj = np.triu_indices(len(z), 1)
    out = eg_block(z, ii, jj, core.DEFAULT_LAG)
    for p in range(len(ii)):
        ref = pair_stats_reference(z[ii[p]], z[jj[p]], core.DEFAULT_LAG)
        for key, value in ref.items():
            assert_allclose(out[key][p], value, rtol=1e-8, atol=1e-10, err_msg=key)


def test_block_composition_does_not_change_numbers():
    z = _walks(k=10, n=900, seed=5)
    ii, jj = np.triu_indices(len(z), 1)
    whole = eg_block(z, ii, jj, 2)
    for p in (0, 7, 44):
        one = eg_block(z, ii[p:p + 1], jj[p:p + 1], 2)
        for key in whole:
            assert np.array_equal(whole[key][p:p + 1], one[key], equal_nan=True), key


def test_collinear_and_constant_pairs():
    z = _walks(k=4, n=600, seed=1)
    z[2] = 2.0 * z[0] + 1.0  # exact linear copy: statsmodels says -inf, p 0
    z[3] = 5.0  # constant price
    out = eg_block(z, np.array([0, 0, 1]), np.array([2, 3, 3]), 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = coint(z[0], z[2], maxlag=1, autolag=None)
    assert out["stat_a"][0] == ref[0] == -np.inf and out["pvalue_a"][0] == 0.0
    assert out["collinear"][0] and not out["collinear"][1]
    assert np.isnan(out["stat_a"][1:]).all() and np.isnan(out["pvalue_b"][1:]).all()


def test_bh_qvalues_equal_statsmodels():
    rng = np.random.default_rng(2)
    p = np.concatenate([rng.uniform(size=400), rng.uniform(0, 1e-4, 20), [0.0, 1.0, 0.5, 0.5]])
    assert_allclose(bh_qvalues(p), multipletests(p, method="fdr_bh")[1], rtol=1e-12)
    with_nan = np.concatenate([p, [np.nan]])
    q = bh_qvalues(with_nan)
    assert np.isnan(q[-1])
    assert_allclose(q[:-1], multipletests(p, method="fdr_bh")[1], rtol=1e-12)
    assert bh_select(p, 0.05).sum() == multipletests(p, 0.05, method="fdr_bh")[0].sum()
    with pytest.raises(ValueError, match="pvalues"):
        bh_qvalues(np.array([0.1, 1.5]))
    with pytest.raises(ValueError, match="alpha"):
        bh_select(p, 1.0)


def test_size_under_the_null_is_nominal():
    """Independent random walks: ~5% of pairs reject at 5% (pair p-value, both directions)."""
    rng = np.random.default_rng(11)
    z = np.cumsum(rng.normal(0, 0.002, (70, 2000)), axis=1)
    ii, jj = np.triu_indices(len(z), 1)
    out = eg_block(z, ii, jj, core.DEFAULT_LAG)
    p_pair = np.minimum(1.0, 2 * np.fmin(out["pvalue_a"], out["pvalue_b"]))
    rate = float(np.mean(p_pair < 0.05))
    assert 0.025 < rate < 0.08, rate


@pytest.mark.parametrize("lag", [0, 1, 4])
def test_fused_kernel_equals_block_numpy_path(lag):
    """The numba per-pair kernel and the block-numpy path (used without numba) agree on
    every field, degenerate rows included, and on a column slice of a wider matrix."""
    z = _walks(k=9, n=1300, seed=8)
    z[5] = 0.7 * z[2] - 1.0  # collinear with row 2
    z[7] = 3.0  # constant
    wide = np.hstack([np.zeros((9, 50)), z, np.ones((9, 30))])
    ii, jj = np.triu_indices(len(z), 1)
    assert core.HAVE_NUMBA
    fused = eg_block(wide[:, 50:-30], ii, jj, lag)
    block = core.eg_block_numpy(z, ii, jj, lag)
    assert set(fused) == set(block) == set(core.FIELDS)
    assert fused["collinear"].dtype == bool and fused["collinear"].sum() == 1
    noise = fused["collinear"]  # its spread is rounding noise: half-life and vol are too
    for key in core.FIELDS:
        rows = ~noise if key.startswith(("half_life", "spread_vol")) else slice(None)
        assert_allclose(np.asarray(fused[key], float)[rows], np.asarray(block[key], float)[rows],
                        rtol=1e-10, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("spread_sd", [1e-3, 1e-4])
@pytest.mark.parametrize("phi", [0.0, 0.95])
def test_tight_pairs_equal_statsmodels(spread_sd, phi):
    """Spreads 20-2000x narrower than the legs' moves, short of statsmodels' collinearity
    cut: the kernel's normal equations still give coint's statistic to 1e-8."""
    rng = np.random.default_rng(1)
    n = 2000
    x = np.cumsum(rng.normal(0, 0.002, n)) + 4.0
    s = np.zeros(n)
    for t in range(1, n):
        s[t] = phi * s[t - 1] + rng.normal(0, spread_sd)
    y = 0.2 + 1.3 * x + s
    out = eg_block(np.vstack([y, x]), np.array([0]), np.array([1]), core.DEFAULT_LAG)
    assert not out["collinear"][0]
    for d, (a, b) in (("a", (y, x)), ("b", (x, y))):
        stat, pvalue, _ = coint(a, b, trend="c", maxlag=core.DEFAULT_LAG, autolag=None)
        assert_allclose(out[f"stat_{d}"][0], stat, rtol=1e-8)
        assert_allclose(out[f"pvalue_{d}"][0], pvalue, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("lag", [0, 1, 4])
def test_adf_with_constant_equals_statsmodels(lag):
    """The per-symbol unit-root pre-test's one-pass ADF equals adfuller(regression="c")."""
    rng = np.random.default_rng(lag)
    n = 2500
    ar = np.zeros(n)
    for t in range(1, n):
        ar[t] = 0.5 * ar[t - 1] + rng.normal(0, 0.004)
    series = {
        "walk": np.cumsum(rng.normal(0, 1e-3, n)) + 3.0,
        "stationary": ar + 3.0,
        "trending walk": 3.0 + np.linspace(0, 1, n) + np.cumsum(rng.normal(0, 1e-3, n)),
    }
    for name, x in series.items():
        want = adfuller(x, maxlag=lag, autolag=None, regression="c", result_object=False)[0]
        assert_allclose(core.adf_c_stat(x, lag), want, rtol=1e-8, err_msg=name)
    assert np.isnan(core.adf_c_stat(np.full(n, 3.0), lag))
