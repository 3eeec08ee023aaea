"""The backtest kernels: numba equals plain Python, and the state machine's rules."""

from __future__ import annotations

import numpy as np
import pytest

from quantlab.backtest import kernels as k

NAN = np.nan


def _random_case(seed: int, n: int = 3000):
    rng = np.random.default_rng(seed)
    # an AR(1) z-score that crosses every band, with warm-up NaNs and a few holes
    z = np.empty(n)
    z[0] = 0.0
    for i in range(1, n):
        z[i] = 0.9 * z[i - 1] + rng.normal(0, 0.9)
    z[:50] = NAN
    z[rng.integers(50, n, 40)] = NAN
    z[rng.integers(50, n, 10)] *= 4  # jumps beyond the stop band and through the mean
    y = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    x = 50 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    beta = 2 + 0.1 * np.sin(np.arange(n) / 100)
    return z, y, x, beta


@pytest.mark.parametrize("seed,max_hold,slip", [(0, 0, 0.0), (1, 25, 5e-4), (2, 3, 1e-4)])
def test_numba_equals_python(seed, max_hold, slip):
    z, y, x, beta = _random_case(seed)
    t_nb, r_nb = k.decide_nb(z, 1.5, 0.25, 3.0, max_hold)
    t_py, r_py = k.decide_py(z, 1.5, 0.25, 3.0, max_hold)
    np.testing.assert_array_equal(t_nb, t_py)
    np.testing.assert_array_equal(r_nb, r_py)
    assert set(np.unique(r_py)) >= {0, k.REASON_EXIT, k.REASON_STOP}
    out_nb = k.execute_nb(y, x, t_nb, r_nb, beta, 1e4, 5e3, 1e-3, 5e-4, slip)
    out_py = k.execute_py(y, x, t_py, r_py, beta, 1e4, 5e3, 1e-3, 5e-4, slip)
    assert len(out_py[-1]) > 20
    for a, b in zip(out_nb, out_py, strict=True):
        np.testing.assert_array_equal(a, b)


def test_expanding_ols_matches_least_squares_and_numba():
    # the one expanding-OLS kernel (analytics; PairSpec(hedge="expanding_ols") runs it)
    from quantlab.analytics import kernels as ak

    rng = np.random.default_rng(3)
    n = 400
    x = 2680 + np.cumsum(rng.normal(0, 1, n))
    y = 23 * x + 100 + rng.normal(0, 5, n)
    b_nb, a_nb = ak.expanding_ols_from(y, x, 30, 0.0, 0.0, 0.0, 0.0, 0.0)[:2]
    b_py, a_py = ak.expanding_ols_from_py(y, x, 30, 0.0, 0.0, 0.0, 0.0, 0.0)[:2]
    np.testing.assert_array_equal(b_nb, b_py)
    np.testing.assert_array_equal(a_nb, a_py)
    assert np.isnan(b_nb[:29]).all() and not np.isnan(b_nb[29:]).any()
    for t in (29, 100, 399):
        slope, intercept = np.polyfit(x[: t + 1], y[: t + 1], 1)
        assert b_nb[t] == pytest.approx(slope, rel=1e-9)
        assert a_nb[t] == pytest.approx(intercept, rel=1e-7)


def _decide(z, entry=2.0, exit_=0.5, stop=4.0, hold=0):
    t, r = k.decide_py(np.asarray(z, dtype=float), entry, exit_, stop, hold)
    return t.tolist(), r.tolist()


def test_entries_exits_and_nan_bars():
    t, r = _decide([NAN, 2.1, NAN, 1.0, 0.4, -2.1, -0.6, -0.4])
    assert t == [0, -1, -1, -1, 0, 1, 1, 0]
    assert r == [0, 0, 0, 0, 1, 0, 0, 1]
    # exactly on a threshold does not trigger (strict inequalities)
    assert _decide([2.0, -2.0])[0] == [0, 0]
    assert _decide([2.5, 0.5])[0] == [-1, -1]


def test_overshoot_through_the_mean_exits_and_flips():
    t, r = _decide([-2.5, 3.0, 0.0])
    assert t == [1, -1, 0]
    assert r == [0, 1, 1]


def test_stop_blocks_reentry_until_back_inside_the_entry_band():
    t, r = _decide([2.5, 4.5, 3.0, 2.5, 2.0, 2.5])
    assert t == [-1, 0, 0, 0, 0, -1]
    assert r == [0, 2, 0, 0, 0, 0]
    # a favourable overshoot beyond the stop band is an exit, and no entry beyond the stop
    t, r = _decide([2.5, -4.5, -3.0, -1.0, -2.5])
    assert t == [-1, 0, 0, 0, 1]
    assert r == [1 if i == 1 else 0 for i in range(5)]


def test_time_exit_after_max_hold_bars_then_blocked():
    t, r = _decide([2.5, 3.0, 3.0, 3.0, 1.0, 2.5], hold=2)
    assert t == [-1, -1, 0, 0, 0, -1]
    assert r == [0, 0, 3, 0, 0, 0]


def test_execute_fills_one_bar_late_and_closes_at_the_end():
    y = np.array([100.0, 100, 110, 120])
    x = np.array([50.0, 50, 50, 50])
    target = np.array([1, 1, 1, 1], dtype=np.int8)
    reason = np.zeros(4, dtype=np.int8)
    sig, uy, ux, eq, fees, traded, tr = k.execute_py(
        y, x, target, reason, np.full(4, 0.0), 1000.0, 1000.0, 0.0, 0.0, 0.0)
    assert sig.tolist() == [0, 1, 1, 0]  # filled at bar 1, closed on the last bar
    assert uy.tolist() == [0.0, 10.0, 10.0, 0.0]
    assert eq.tolist() == [1000.0, 1000.0, 1100.0, 1200.0]
    assert tr.shape == (1, len(k.TRADE_COLUMNS))
    row = dict(zip(k.TRADE_COLUMNS, tr[0], strict=True))
    assert row["reason"] == k.REASON_END and row["pnl"] == 200.0
    assert traded.tolist() == [0.0, 1000.0, 0.0, 1200.0]
