"""Side-by-side hedge-ratio methods for the "compare methods" view, with the right test.

A spread built from an *estimated* hedge ratio is as stationary-looking as least squares
could make it, so a Dickey-Fuller p-value on it is far too small (on independent random
walks about 17 % "significant" at 5 %). The honest p-value of "y and x are cointegrated" is
the Engle-Granger one: the same ADF statistic on the residuals, read against MacKinnon's
(2010) distribution for two series (N = 2), which accounts for the estimated hedge.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.tsa.adfvalues import mackinnonp

from . import _validate as v
from .hedge import METHODS, hedge_ratio
from .stationarity import _adf_arrays, half_life

#: where each row's p-value comes from
EG_SOURCE = "Engle-Granger: ADF of the residuals vs MacKinnon (2010), N=2, constant"
KALMAN_SOURCE = ("none: Kalman innovations are white by construction, so no unit-root test "
                 "of them says anything about cointegration; z_std ~ 1 means the fitted "
                 "noise model describes the spread")


def _eg_stat(s: np.ndarray) -> tuple[float, float]:
    """Engle-Granger step 2 on a spread: ADF without deterministic terms on the demeaned
    residuals (autolag AIC, as ``statsmodels.tsa.stattools.coint``), p-value for N=2."""
    stat, _, _, _ = _adf_arrays(s - s.mean(), "n", None, "aic")
    return float(stat), float(mackinnonp(stat, regression="c", N=2))


def compare_hedge_ratios(y: Any, x: Any, methods: tuple[str, ...] = METHODS, *,
                         formation: int | None = None) -> pd.DataFrame:
    """One row per method::

        method    beta   alpha  beta_se  rsquared  spread_std  coint_stat  coint_pvalue  half_life  z_std  pvalue_source
        ols       ...
        kalman    ...

    Static methods (``ols``, ``huber``, ``theilsen``) fit ``y ~ alpha + beta x`` over the
    whole sample (raw prices); ``coint_stat``/``coint_pvalue`` are the Engle-Granger test of
    that spread (for ``ols`` equal to ``statsmodels.tsa.stattools.coint``; for the robust
    fits the same distribution, derived for least squares, is an approximation).
    ``beta_se`` and ``rsquared`` are statsmodels OLS's (iid errors: not a test of anything
    when the series are not cointegrated).

    The ``kalman`` row is ``PairSpec(hedge="kalman")`` (noise fitted by maximum likelihood
    on the first ``formation`` bars, default the spec's): its last state, no cointegration
    p-value (see ``pvalue_source``), and ``z_std``, the standard deviation of its
    standardised one-step errors after the formation window.
    """
    ya, xa, index = v.pair(y, x, 10, "compare_hedge_ratios")
    for m in methods:
        v.choice(m, "methods", METHODS)
    rows = {}
    for m in methods:
        row: dict[str, Any] = dict.fromkeys(
            ("beta", "alpha", "beta_se", "rsquared", "spread_std", "coint_stat", "coint_pvalue",
             "half_life", "z_std"), float("nan"))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", v.AnalyticsWarning)
            if m == "kalman":
                from .pair import PairSpec

                spec = PairSpec(hedge="kalman", window=min(60, ya.size // 4),
                                formation=formation if formation is not None
                                else min(max(60, ya.size // 4), 200))
                f = spec.evaluate(ya, xa).frame
                z = f["z"].to_numpy()
                z = z[np.isfinite(z)]
                row["beta"], row["alpha"] = float(f["beta"].iloc[-1]), float(f["alpha"].iloc[-1])
                if z.size >= 2:
                    row["z_std"] = float(np.std(z, ddof=1))
                row["pvalue_source"] = KALMAN_SOURCE
            else:
                h = hedge_ratio(ya, xa, method=m)
                row["beta"], row["alpha"] = h.beta, h.alpha
                row["beta_se"], row["rsquared"] = h.beta_se, h.rsquared
                s = ya - (h.beta * xa + h.alpha)
                if np.isfinite(s).all() and s.max() > s.min():
                    row["spread_std"] = float(np.std(s, ddof=1))
                    row["coint_stat"], row["coint_pvalue"] = _eg_stat(s)
                    row["half_life"] = half_life(s)
                row["pvalue_source"] = EG_SOURCE
        for w in caught:
            warnings.warn(f"{m}: {w.message}", w.category, stacklevel=2)
        rows[m] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "method"
    out.attrs["prices"] = "raw"
    return out
