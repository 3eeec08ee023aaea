"""quantlab.PairSpec: one pure pair signal, its incremental form and its fitted state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import quantlab
from quantlab.analytics import HEDGES, PairSpec
from quantlab.analytics.pair import STATIC_HEDGES, kalman_loglik

NEEDS_FORMATION = {"kalman", *STATIC_HEDGES}


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(5)
    n = 900
    idx = pd.date_range("2024-08-09", periods=n, freq="s", tz="UTC")
    x = 60_000 * np.exp(np.cumsum(rng.normal(0, 5e-4, n)))
    s = np.zeros(n)
    for i in range(1, n):
        s[i] = 0.9 * s[i - 1] + rng.normal(0, 3.0)
    y = 0.045 * x + 20 + s
    return pd.Series(y, idx, name="ETHUSDT"), pd.Series(x, idx, name="BTCUSDT")


def _spec(h, **kw):
    return PairSpec(hedge=h, window=40, z_window=30, formation=300 if h in NEEDS_FORMATION else None,
                    **kw)


def test_one_hedge_vocabulary():
    from quantlab import backtest
    from quantlab.ui import compute

    assert HEDGES == ("rolling_ols", "expanding_ols", "kalman", "ols", "huber", "theilsen")
    assert backtest.HEDGES is HEDGES
    assert set(compute.HEDGE_LABELS.values()) == set(HEDGES)  # labels of the one vocabulary
    assert not hasattr(compute, "HEDGES")
    assert quantlab.PairSpec is PairSpec
    with pytest.raises(ValueError, match="hedge must be one of"):
        PairSpec(hedge="median")
    assert PairSpec(hedge="ols_expanding").hedge == "expanding_ols"  # the old backtest spelling


@pytest.mark.parametrize("hedge", HEDGES)
@pytest.mark.parametrize("lag", [1, 2])
@pytest.mark.parametrize("prices", ["raw", "log"])
def test_incremental_equals_evaluate_bar_for_bar(pair, hedge, lag, prices):
    y, x = pair
    spec = _spec(hedge, lag=lag, prices=prices)
    frame = spec.evaluate(y, x).frame
    assert list(frame.columns) == ["beta", "alpha", "spread", "z"] and frame.index.equals(y.index)
    stream = spec.incremental()
    rows = pd.DataFrame([stream.update(a, b) for a, b in zip(y, x, strict=True)], index=y.index)
    assert frame["z"].notna().sum() > 500
    pd.testing.assert_frame_equal(rows[frame.columns], frame, check_exact=False, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("hedge", HEDGES)
def test_fit_then_evaluate_continues_without_refitting(pair, hedge):
    y, x = pair
    spec = _spec(hedge)
    full = spec.evaluate(y, x).frame
    f = 300
    fitted = spec.fit(y.iloc[:f], x.iloc[:f])
    cont = fitted.evaluate(y.iloc[f:], x.iloc[f:]).frame
    pd.testing.assert_frame_equal(cont, full.iloc[f:], check_exact=False, rtol=1e-9, atol=1e-9)
    stream = fitted.incremental()
    rows = pd.DataFrame([stream.update(a, b) for a, b in zip(y.iloc[f:], x.iloc[f:], strict=True)],
                        index=cont.index)
    pd.testing.assert_frame_equal(rows[cont.columns], cont, check_exact=False, rtol=1e-9, atol=1e-9)
    if hedge in STATIC_HEDGES:  # fitted on the formation only, never on the bars it is applied to
        assert full["beta"].iloc[:f].isna().all()
        assert (full["beta"].iloc[f:] == fitted.beta).all()
        changed = y.copy()
        changed.iloc[f:] *= 1.5
        assert spec.fit(changed.iloc[:f], x.iloc[:f]).beta == fitted.beta
        assert (spec.evaluate(changed, x).frame["beta"].iloc[f:] == fitted.beta).all()


@pytest.mark.parametrize("hedge", HEDGES)
def test_no_lookahead(pair, hedge):
    """Changing bar t's prices changes nothing before t, and beta/alpha at t neither."""
    y, x = pair
    spec = _spec(hedge)
    a = spec.evaluate(y, x).frame
    t = 600
    y2 = y.copy()
    y2.iloc[t] *= 1.01
    b = spec.evaluate(y2, x).frame
    pd.testing.assert_frame_equal(a.iloc[:t], b.iloc[:t])
    pd.testing.assert_frame_equal(a[["beta", "alpha"]].iloc[: t + 1], b[["beta", "alpha"]].iloc[: t + 1])


@pytest.mark.parametrize("hedge", HEDGES)
def test_rescaling_x_rescales_beta_and_leaves_z(pair, hedge):
    y, x = pair
    spec = _spec(hedge)
    a = spec.evaluate(y, x).frame
    b = spec.evaluate(y, x * 1000).frame
    ok = a["z"].notna()
    assert ok.sum() > 500 and (b["z"].notna() == ok).all()
    scale = float(a["beta"][ok].abs().max())
    np.testing.assert_allclose(b["beta"][ok] * 1000, a["beta"][ok], rtol=1e-6, atol=1e-6 * scale)
    np.testing.assert_allclose(b["z"][ok], a["z"][ok], atol=1e-6)
    c = spec.evaluate(y * 1e-6, x).frame  # and y
    np.testing.assert_allclose(c["z"][ok], a["z"][ok], atol=1e-6)


def test_windows_as_durations_and_half_lives(pair):
    y, x = pair
    a = PairSpec(window=60, z_window=30).evaluate(y, x).frame
    b = PairSpec(window="1min", z_window="30s").evaluate(y, x).frame
    pd.testing.assert_frame_equal(a, b)
    sig = PairSpec(window="4hl", formation=300).evaluate(y, x)
    hl = sig.fitted.half_life
    assert 3 < hl < 30 and sig.fitted.window == int(np.ceil(4 * hl))
    with pytest.raises(ValueError, match="formation"):
        PairSpec(window="4hl")
    with pytest.raises(ValueError, match="duration"):
        PairSpec(window="1min").evaluate(y.to_numpy(), x.to_numpy())


def test_log_prices_are_said(pair):
    y, x = pair
    sig = PairSpec(prices="log", window=60).evaluate(y, x)
    assert "log-log" in sig.summary() and sig.frame.attrs["prices"] == "log"
    assert "raw prices" in PairSpec(window=60).evaluate(y, x).summary()
    ref = PairSpec(window=60).evaluate(np.log(y), np.log(x)).frame
    pd.testing.assert_frame_equal(sig.frame, ref, check_exact=False, rtol=1e-12)


def test_kalman_loglik_equals_pykalman_and_mle_beats_em(pair):
    from pykalman import KalmanFilter

    y, x = pair
    ys = ((y - y.mean()) / y.std(ddof=0)).to_numpy()[:300]
    xs = ((x - x.mean()) / x.std(ddof=0)).to_numpy()[:300]
    obs = np.column_stack([xs, np.ones_like(xs)])[:, None, :]

    def kf(qb, qa, r):
        return KalmanFilter(transition_matrices=np.eye(2), observation_matrices=obs,
                            transition_covariance=np.diag([qb, qa]), observation_covariance=[[r]],
                            initial_state_mean=np.zeros(2), initial_state_covariance=np.eye(2))

    for q in [(1e-3, 1e-2, 0.1), (1e-5, 3e-4, 0.02)]:
        assert kalman_loglik(ys, xs, *q) == pytest.approx(kf(*q).loglikelihood(ys), rel=1e-10)
    from quantlab.analytics.pair import fit_kalman_noise

    mle = fit_kalman_noise(ys, xs)
    em = kf(1e-3, 1e-3, 0.1).em(ys, n_iter=30, em_vars=["transition_covariance",
                                                       "observation_covariance"])
    em_q = (em.transition_covariance[0, 0], em.transition_covariance[1, 1],
            float(em.observation_covariance[0, 0]))
    assert kalman_loglik(ys, xs, *mle) >= kalman_loglik(ys, xs, *em_q) - 1e-9


def _kline_close(path: Path) -> pd.Series:
    df = pd.read_csv(path, header=None)
    return pd.Series(df[4].to_numpy(float), index=pd.to_datetime(df[6] + 1, unit="us", utc=True))


def test_kalman_defaults_on_real_sol_btc(real_data):
    sol = _kline_close(real_data / "klines" / "SOLUSDT-1m-2025-07-13.csv")
    btc = _kline_close(real_data / "klines" / "BTCUSDT-1m-2025-07-13.csv")
    sig = PairSpec(hedge="kalman").evaluate(sol, btc)
    z = sig.frame["z"].dropna()
    assert len(z) > 1000 and 0.3 < z.std() < 3.0, z.std()
    assert sig.fitted.noise_source == "mle"


def test_stream_survives_a_failed_formation_fit():
    """Flat legs over the formation cannot be fitted; the stream says so, then fits on the
    latest formation bars once they vary (an alert never gets stuck)."""
    spec = PairSpec(hedge="kalman", window=10, formation=20)
    stream = spec.incremental()
    for _ in range(19):
        assert np.isnan(stream.update(100.0, 50.0)["z"])
    with pytest.raises(ValueError, match="constant"):
        stream.update(100.0, 50.0)
    rng = np.random.default_rng(0)
    xs = 50 + np.cumsum(rng.normal(0, 0.1, 40))
    for xv in xs:
        row = stream.update(2 * xv + rng.normal(0, 0.05), xv)
    assert stream.fitted is not None and np.isfinite(row["z"])
