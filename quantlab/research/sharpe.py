"""Probabilistic and deflated Sharpe ratios (Bailey & López de Prado 2012, 2014).

Everything here works on **per-period** (not annualised) Sharpe ratios: the Sharpe of
1-minute returns is ``mean(r) / std(r)`` of those minutes, ~1/725 of the annualised figure.
An annualised Sharpe passed as a trial Sharpe makes every deflated Sharpe ~0.

Formulas (Bailey & López de Prado, "The Deflated Sharpe Ratio: Correcting for Selection
Bias, Backtest Overfitting and Non-Normality", J. Portfolio Management 40(5), 2014)::

    SR    = mean(r) / std(r, ddof=1)                         the observed Sharpe, T returns
    PSR(SR*) = Phi( (SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1)/4 SR^2) )
    SR0   = sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))
    DSR   = PSR(SR0)

``g3``/``g4`` are the skewness and the (non-excess, normal = 3) kurtosis of the returns
(moment estimators, as in the paper), ``N`` the number of trials, ``V`` the sample variance
(ddof=1) of their Sharpe ratios, ``gamma`` the Euler-Mascheroni constant. ``SR0`` is the
expected maximum Sharpe of N unskilled trials (true Sharpe 0) whose estimates scatter with
variance V; DSR is the probability that the true Sharpe exceeds it. With ``N = 1`` there is
no selection and ``SR0 = 0`` (DSR = PSR(0)).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from quantlab.errors import InsufficientDataError

EULER_GAMMA = 0.5772156649015329
#: fewest returns for which a Sharpe ratio, a skewness and a kurtosis are computed
MIN_PERIODS = 3


def _returns(returns: Any, name: str = "returns") -> np.ndarray:
    if isinstance(returns, str | bytes) or np.isscalar(returns):
        raise TypeError(f"{name}: expected a 1-D Series or array of per-period returns, "
                        f"got {type(returns).__name__}")
    try:
        r = np.asarray(returns, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected numbers (per-period returns)") from None
    if r.ndim != 1:
        raise TypeError(f"{name}: expected one column of per-period returns, got shape "
                        f"{r.shape}; pass one strategy's returns (e.g. df['strategy'])")
    bad = ~np.isfinite(r)
    if bad.any():
        raise ValueError(f"{name}: {int(bad.sum())} NaN/inf value(s) (first at position "
                         f"{int(np.argmax(bad))}); drop them (.dropna()) before calling")
    if r.size < MIN_PERIODS:
        raise InsufficientDataError(f"{name}: {r.size} periods are too few; a Sharpe ratio "
                                    f"with its skewness and kurtosis needs >= {MIN_PERIODS}")
    return r


def _trial_sharpes(trial_sharpes: Any) -> np.ndarray:
    if isinstance(trial_sharpes, str | bytes) or np.isscalar(trial_sharpes):
        raise TypeError("trial_sharpes: expected the per-period Sharpe ratio of every "
                        f"configuration tried (a list or array), got {trial_sharpes!r}")
    s = np.asarray(trial_sharpes, dtype=np.float64).ravel()
    if s.size == 0:
        raise ValueError("trial_sharpes: empty; pass the Sharpe ratio of every configuration "
                         "tried, the chosen one included")
    if not np.isfinite(s).all():
        raise ValueError(f"trial_sharpes: {int((~np.isfinite(s)).sum())} NaN/inf value(s); "
                         "give a configuration that never traded a Sharpe of 0")
    return s


def moments(returns: Any) -> tuple[float, int, float, float]:
    """``(sharpe, n, skewness, kurtosis)`` of per-period returns.

    Sharpe = mean / std (ddof=1); skewness and kurtosis are the moment estimators
    ``m3 / m2^1.5`` and ``m4 / m2^2`` (kurtosis 3 for a normal sample). Constant returns
    (no risk taken) have no Sharpe ratio: ``InsufficientDataError``.
    """
    r = _returns(returns)
    n = r.size
    mu = float(r.mean())
    d = r - mu
    m2 = float(d @ d) / n
    if not m2 > 0.0 or math.sqrt(m2) <= 1e-14 * max(abs(mu), 1e-300):
        raise InsufficientDataError("returns: constant, so the Sharpe ratio is undefined "
                                    "(the strategy took no risk)")
    d2 = d * d
    m3 = float(d2 @ d) / n
    m4 = float(d2 @ d2) / n
    sd = math.sqrt(m2 * n / (n - 1))
    return mu / sd, n, m3 / m2 ** 1.5, m4 / (m2 * m2)


def psr_from_moments(sharpe: float, n: int, skew: float, kurtosis: float,
                     benchmark: float) -> float:
    """PSR of an observed per-period Sharpe over ``n`` returns against ``benchmark``."""
    var = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe
    if not var > 0.0:  # only a two-point distribution reaches 0 (kurtosis >= 1 + skew^2)
        raise ValueError(f"returns: skewness {skew:.3g} and kurtosis {kurtosis:.3g} leave "
                         "the Sharpe ratio with no sampling variance (a two-valued series?)")
    return float(ndtr((sharpe - benchmark) * math.sqrt(n - 1) / math.sqrt(var)))


def expected_max_from_variance(n_trials: int, variance: float) -> float:
    """Expected maximum Sharpe of ``n_trials`` unskilled trials with Sharpe variance V."""
    if n_trials <= 1:
        return 0.0
    z = ((1.0 - EULER_GAMMA) * ndtri(1.0 - 1.0 / n_trials)
         + EULER_GAMMA * ndtri(1.0 - 1.0 / (n_trials * math.e)))
    return float(math.sqrt(variance) * z)


def expected_max_sharpe(trial_sharpes: Any) -> float:
    """``SR0``: the largest per-period Sharpe expected from ``len(trial_sharpes)`` trials
    without skill, given the variance (ddof=1) of their Sharpe ratios; 0 for one trial."""
    s = _trial_sharpes(trial_sharpes)
    var = float(np.var(s, ddof=1)) if s.size > 1 else 0.0
    return expected_max_from_variance(s.size, var)


def probabilistic_sharpe(returns: Any, benchmark: float = 0.0) -> float:
    """Probability (0..1) that the true per-period Sharpe of ``returns`` exceeds
    ``benchmark``, corrected for the returns' skewness, kurtosis and length."""
    if not isinstance(benchmark, int | float) or not math.isfinite(benchmark):
        raise ValueError(f"benchmark: expected a finite per-period Sharpe ratio, got {benchmark!r}")
    sharpe, n, skew, kurt = moments(returns)
    return psr_from_moments(sharpe, n, skew, kurt, float(benchmark))


def deflated_sharpe(returns: Any, trial_sharpes: Any) -> float:
    """Deflated Sharpe ratio: the probability (0..1) that the true Sharpe of ``returns``
    exceeds the maximum expected from ``len(trial_sharpes)`` unskilled trials.

    Parameters
    ----------
    returns : 1-D Series/array of the chosen configuration's per-period returns
        (net of costs, in excess of the risk-free rate), no NaN, >= 3 periods.
    trial_sharpes : the per-period (NOT annualised) Sharpe ratios of every configuration
        tried, the chosen one included. Their number N and variance V set the benchmark
        ``SR0`` (:func:`expected_max_sharpe`).

    Returns
    -------
    float in [0, 1]: PSR(SR0). Above 0.95, the selected Sharpe is significant at 5% after
    accounting for the N trials, for non-normal returns and for the sample length.

    Example: 100 trials, 1,250 daily returns with Sharpe 0.158 (2.5 annualised), skewness
    -3, kurtosis 10 and a trial-Sharpe variance of 0.002 (0.5 annualised) give
    SR0 = 0.1132 and DSR = 0.9004 (the paper's numerical example).
    """
    s = _trial_sharpes(trial_sharpes)
    sharpe, n, skew, kurt = moments(returns)
    return psr_from_moments(sharpe, n, skew, kurt, expected_max_sharpe(s))
