"""backtest.sweep reports the deflated Sharpe and PBO of its grid, equal to the public
functions applied to every configuration's returns from backtest.run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlab import backtest as bt
from quantlab.research import SweepOverfitting, deflated_sharpe, pbo


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(11)
    n = 2000
    idx = pd.date_range("2024-08-09", periods=n, freq="s", tz="UTC")
    x = 2680 * np.exp(np.cumsum(rng.normal(0, 2e-3, n)))
    s = np.zeros(n)
    for i in range(1, n):
        s[i] = 0.95 * s[i - 1] + rng.normal(0, 150.0)
    return pd.Series(23 * x + 300 + s, idx), pd.Series(x, idx)


def test_sweep_reports_deflated_sharpe_and_pbo_of_its_grid(pair):
    y, x = pair
    grid = bt.sweep(y, x, entry=[1.5, 2.0], exit=[0.0, 0.5], window=[40, 80], stop=[4.0],
                    progress=False)
    report = grid.attrs["overfitting"]
    assert isinstance(report, SweepOverfitting)
    assert report.n_trials == len(grid) == 8
    returns = {}
    for i, row in grid.iterrows():
        res = bt.run(y, x, entry=row["entry"], exit=row["exit"], stop=row["stop"],
                     window=int(row["window"]))
        returns[i] = res.equity.pct_change().iloc[1:].to_numpy()
    frame = pd.DataFrame(returns)
    sharpes = frame.mean() / frame.std(ddof=1)
    assert report.best_position == int(np.argmax(sharpes.to_numpy()))
    assert report.best_position == int(grid["sharpe"].to_numpy().argmax())
    best = frame[report.best_position]
    assert report.deflated_sharpe == pytest.approx(deflated_sharpe(best, sharpes), rel=1e-9)
    want = pbo(frame, n_splits=16)
    assert report.pbo.pbo == want.pbo
    np.testing.assert_allclose(report.pbo.logits, want.logits, rtol=1e-9)
    assert report.best.startswith("window=") and "entry=" in report.best
    assert "deflated Sharpe" in report.summary() and "<table>" in report._repr_html_()


def test_grid_operations_share_the_report(pair):
    y, x = pair
    grid = bt.sweep(y, x, entry=[1.5, 2.0], exit=[0.5], window=[40], progress=False)
    sub = grid[grid["entry"] > 1.0]
    assert sub.attrs["overfitting"] is grid.attrs["overfitting"]  # not deep-copied per op


def test_grid_where_no_configuration_trades(pair):
    """Entry bands no z-score reaches: every configuration's equity is flat. No warning,
    no deflated Sharpe (no risk taken, said in the note); PBO 0.5: all trials tie."""
    y, x = pair
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grid = bt.sweep(y, x, entry=[50.0, 60.0], exit=[0.5], window=[40], stop=[100.0],
                        progress=False)
    report = grid.attrs["overfitting"]
    assert np.isnan(report.deflated_sharpe) and "no configuration took risk" in report.note
    assert report.pbo.pbo == 0.5 and (report.pbo.logits == 0.0).all()
