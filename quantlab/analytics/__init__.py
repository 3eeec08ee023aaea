"""Pair analytics: hedge ratios, spread and z-score, unit-root and cointegration tests.

Pure functions of arrays/Series (no I/O). Inputs are pandas Series on one index or 1-D
arrays; results are frozen dataclasses (``.summary()``, notebook HTML) or pandas objects on
the input's index::

    from quantlab import analytics as qa
    h = qa.hedge_ratio(eth, btc, method="ols")          # HedgeResult(beta, alpha, ...)
    kf = qa.kalman_hedge_ratio(eth, btc)                # DataFrame beta, alpha, spread, spread_std
    z = qa.zscore(qa.spread(eth, btc, h), window=60)    # Series
    qa.engle_granger(eth, btc).pvalue

    spec = qa.PairSpec(hedge="rolling_ols", window=60)  # the one pair signal of quantlab
    spec.evaluate(eth, btc).frame                       # beta, alpha, spread, z
"""

from ._validate import AnalyticsWarning, CollinearityWarning
from .compare import compare_hedge_ratios
from .hedge import hedge_ratio, kalman_hedge_ratio, rolling_hedge_ratio
from .pair import HEDGES, FittedPair, PairSignal, PairSpec, PairStream
from .results import (
    ADFResult,
    CointBothResult,
    CointResult,
    HedgeResult,
    JohansenResult,
)
from .spread import rolling_corr, spread, zscore
from .stationarity import adf, engle_granger, engle_granger_both, half_life, johansen

__all__ = [
    "ADFResult",
    "AnalyticsWarning",
    "CointBothResult",
    "CointResult",
    "CollinearityWarning",
    "FittedPair",
    "HEDGES",
    "HedgeResult",
    "JohansenResult",
    "PairSignal",
    "PairSpec",
    "PairStream",
    "adf",
    "compare_hedge_ratios",
    "engle_granger",
    "engle_granger_both",
    "half_life",
    "hedge_ratio",
    "johansen",
    "kalman_hedge_ratio",
    "rolling_corr",
    "rolling_hedge_ratio",
    "spread",
    "zscore",
]
