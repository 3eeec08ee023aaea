"""Pair rules' values on a block of bars: the batch reference of what the engine computes.

The engine feeds each closed bar to the rule's ``spec.incremental()`` stream
(:class:`quantlab.analytics.pair.PairStream`); :func:`pair_values` computes the same numbers
at once with ``spec.evaluate`` (both are :class:`quantlab.PairSpec`: one definition).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def pair_values(rule: Any, y: Any, x: Any) -> pd.Series:
    """The value of a z-score (``z``) or spread (``spread``) rule at every bar of the
    aligned closes ``y`` and ``x`` (oldest first), NaN while undefined::

        time                       value
        2025-01-01 00:00:00+00:00    NaN
        ...
        2025-01-01 00:02:10+00:00   2.61
    """
    if rule.kind not in ("zscore", "spread"):
        raise ValueError(f"kind: {rule.kind!r} must be 'zscore' or 'spread'")
    sig = rule.spec.evaluate(y, x, step=rule.timeframe_ns_td)
    out = sig.frame["z" if rule.kind == "zscore" else "spread"].copy()
    out.name = "value"
    return out.where(np.isfinite(out), np.nan)
