"""quantlab.backtest.sweep: one tidy row per combination, equal to run(), hedge once per window."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from quantlab import backtest as bt
from quantlab.backtest.metrics import STAT_KEYS


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


def _same(a, b):
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == pytest.approx(b, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("kw", [dict(hedge="rolling_ols"),
                                dict(hedge="kalman")],
                         ids=["rolling_ols", "kalman"])
def test_each_row_equals_run(pair, kw):
    y, x = pair
    grid = bt.sweep(y, x, entry=[1.5, 2.0], exit=[0.0, 0.5], window=[40, 80], stop=[3.0, None],
                    max_holding=[None, 50], progress=False, slippage_bps=1.0, **kw)
    assert len(grid) == 2 * 2 * 2 * 2 * 2
    assert list(grid.columns) == ["window", "entry", "exit", "stop", "max_holding",
                                  *STAT_KEYS]
    for i in (0, 7, 13, 31):
        row = grid.iloc[i]
        mh = row["max_holding"]
        res = bt.run(y, x, entry=row["entry"], exit=row["exit"],
                     stop=None if row["stop"] is None or pd.isna(row["stop"]) else row["stop"],
                     window=int(row["window"]),
                     max_holding=None if mh is None or pd.isna(mh) else int(mh),
                     slippage_bps=1.0, **kw)
        for key in STAT_KEYS:
            assert _same(row[key], res.stats[key]), (i, key)
    heat = grid[grid["window"] == 40].pivot_table(index="entry", columns="exit",
                                                  values="sharpe")
    assert heat.shape == (2, 2)


def test_hedge_is_estimated_once_per_window(pair, monkeypatch):
    y, x = pair
    from quantlab.analytics.pair import PairSpec

    calls = []
    evaluate = PairSpec.evaluate

    def counting(self, *a, **k):
        calls.append(self.hedge)
        return evaluate(self, *a, **k)

    monkeypatch.setattr(PairSpec, "evaluate", counting)
    grid = bt.sweep(y, x, entry=[1.5, 2.0, 2.5], exit=[0.0, 0.5], window=[30, 60, 90],
                    progress=False)
    assert len(grid) == 18 and calls == ["rolling_ols"] * 3


def test_invalid_combinations_are_skipped_with_a_warning(pair):
    y, x = pair
    with pytest.warns(UserWarning, match="skipped 1 combination"):
        grid = bt.sweep(y, x, entry=[1.0, 2.0], exit=[0.5, 1.5], window=50, progress=False)
    assert len(grid) == 3
    assert (grid["exit"] < grid["entry"]).all()
    with pytest.raises(ValueError, match="no combination"):
        bt.sweep(y, x, entry=[1.0], exit=[1.0], progress=False)
    with pytest.raises(ValueError, match="window"):
        bt.sweep(y, x, window=[50, 1], progress=False)


def test_progress_bar_can_be_hidden(pair, capsys):
    y, x = pair
    bt.sweep(y, x, entry=[1.5, 2.0], exit=0.5, window=50, progress=True)
    assert "backtest sweep" in capsys.readouterr().err
    bt.sweep(y, x, entry=[1.5, 2.0], exit=0.5, window=50, progress=False)
    assert capsys.readouterr().err == ""
