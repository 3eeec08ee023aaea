"""Research statistics: is a backtest's best configuration real or the luck of the search?

    import quantlab as ql
    ql.research.deflated_sharpe(best_returns, trial_sharpes)   # P(true Sharpe > luck's max)
    res = ql.research.pbo(returns_by_trial, n_splits=16)       # CSCV; res.pbo, res.summary()
    # only N and the trial-Sharpe variance V known (e.g. trials run elsewhere):
    ql.research.probabilistic_sharpe(oos_returns, ql.research.expected_max_from_variance(N, V))
    wf = ql.research.walk_forward(closes, formation="30D", trading="7D", n_trials=12)

Modules: :mod:`~.sharpe` (probabilistic / deflated Sharpe), :mod:`~.cscv` (probability of
backtest overfitting), :mod:`~.trials` (both for a parameter sweep's grid),
:mod:`~.selection` (rules that narrow a screen to the pairs worth trading),
:mod:`~.walkforward` (``walk_forward``: select on formation windows, trade out of sample)
and :mod:`~.wf_result` (its result).
"""

from quantlab.research.cscv import PBOResult, pbo
from quantlab.research.selection import Selection
from quantlab.research.sharpe import (
    deflated_sharpe,
    expected_max_from_variance,
    expected_max_sharpe,
    probabilistic_sharpe,
)
from quantlab.research.trials import SweepOverfitting, TrialRecorder
from quantlab.research.walkforward import deflated_sharpe_given_trials, walk_forward
from quantlab.research.wf_result import WalkForwardResult

__all__ = [
    "PBOResult", "Selection", "SweepOverfitting", "TrialRecorder", "WalkForwardResult",
    "deflated_sharpe", "deflated_sharpe_given_trials", "expected_max_from_variance",
    "expected_max_sharpe", "pbo", "probabilistic_sharpe", "walk_forward",
]
