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

from ..analytics.pair import HEDGES
from . import metrics
from .costs import DEFAULT_FEES_BPS, USDM_VIP_BPS, Costs, funding_table
from .engine import from_zscore, run
from .metrics import ShortSampleWarning
from .result import BacktestResult
from .sweep import sweep

__all__ = ["DEFAULT_FEES_BPS", "USDM_VIP_BPS", "BacktestResult", "Costs", "HEDGES",
           "ShortSampleWarning", "from_zscore", "funding_table", "metrics", "run", "sweep"]
