"""Produce the vectorbt reference values pinned in tests/test_backtest_metrics.py.

Run from the project root with the bench extra installed (vectorbt is not a test
dependency; this script is how the pinned numbers were made):

    .venv/bin/python tests/reference/backtest_metrics_vectorbt.py

The equity curve is a seeded random walk of 400 daily bars (see ``equity_curve``); the
values come from vectorbt's returns accessor on its bar returns, 365-day year.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def equity_curve() -> pd.Series:
    rng = np.random.default_rng(20240809)
    r = rng.normal(0.0005, 0.01, 400)
    r[0] = 0.0
    idx = pd.date_range("2023-01-01", periods=400, freq="D", tz="UTC")
    return pd.Series(10_000.0 * np.cumprod(1.0 + r), index=idx, name="equity")


def main() -> None:
    import vectorbt as vbt

    eq = equity_curve()
    rets = eq.pct_change().iloc[1:]
    acc = rets.vbt.returns(freq="1D", year_freq="365 days")
    out = {
        "sharpe": acc.sharpe_ratio(),
        "sharpe_rf": acc.sharpe_ratio(risk_free=0.0002),
        "sortino": acc.sortino_ratio(),
        "max_drawdown": acc.max_drawdown(),
        "cagr": acc.annualized(),
        "calmar": acc.calmar_ratio(),
    }
    print(f"vectorbt {vbt.__version__}")
    for k, v in out.items():
        print(f"{k} = {float(v)!r}")
    # the fixture of vectorbt's own test-suite: daily equity [1, 2, 3, 4, 5], rf 0.01/bar
    fix = pd.Series([1.0, 2, 3, 4, 5], index=pd.date_range("2020-01-01", periods=5))
    print("fixture sharpe =", float(fix.pct_change().iloc[1:].vbt.returns(
        freq="1D", year_freq="365 days").sharpe_ratio(risk_free=0.01)))


if __name__ == "__main__":
    main()
