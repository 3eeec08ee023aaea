"""Mean-reversion backtests of a pair's spread: honest timing, real costs, trade lists.

    from quantlab import backtest
    res = backtest.run(btc, eth, entry=2.0, exit=0.5, stop=4.0,
                       spec=ql.PairSpec(hedge="rolling_ols", window=300))
    res.z                         # the z-score it traded on (spec.evaluate(btc, eth).z)
    res.summary(); res.trades; res.equity
    grid = backtest.sweep(btc, eth, entry=[1.5, 2, 2.5], exit=[0, 0.5], window=[120, 300])

The hedge ratio and z-score at bar t use data up to t only; decisions at bar t's close
fill at bar t+1's price. See :mod:`quantlab.backtest.engine` for the full meaning.

Every cost assumption is one :class:`Costs` (fees per market and tier, slippage, borrow on
a short spot leg, funding on perpetual legs)::

    costs = backtest.Costs(borrow_annual=0.05, funding={"um:BTCUSDT": funding_table})
    backtest.run(spot_btc, perp_btc, costs=costs, spec=spec)   # names "BTCUSDT", "um:BTCUSDT"
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> submodule holding it; imported on first use, so that
#: ``quantlab.backtest.costs`` (read by the app at start) does not pull in numba
_LAZY = {
    "BacktestResult": "result", "Costs": "costs", "DEFAULT_FEES_BPS": "costs",
    "USDM_VIP_BPS": "costs", "funding_table": "costs", "ShortSampleWarning": "metrics",
    "from_zscore": "engine", "run": "engine", "sweep": "sweep",
}

__all__ = ["DEFAULT_FEES_BPS", "USDM_VIP_BPS", "BacktestResult", "Costs", "HEDGES",
           "ShortSampleWarning", "from_zscore", "funding_table", "metrics", "run", "sweep"]


def __getattr__(name: str) -> Any:
    if name == "HEDGES":
        from ..analytics.pair import HEDGES

        return HEDGES
    if name == "metrics":
        return importlib.import_module(".metrics", __name__)
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
