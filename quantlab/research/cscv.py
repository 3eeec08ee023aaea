"""Probability of backtest overfitting by combinatorially symmetric cross-validation (CSCV).

Bailey, Borwein, López de Prado & Zhu, "The Probability of Backtest Overfitting",
J. Computational Finance 20(4), 2017. The input is a T x N matrix of per-period returns,
one column per configuration (trial)::

                      entry=1.5  entry=2.0  ...      (N trials)
    2025-01-01 00:01    0.0001    -0.0002
    ...                                              (T periods)

1. Cut the T rows into ``S = n_splits`` consecutive blocks (``np.array_split``: sizes differ
   by at most one row; nothing is dropped).
2. For every one of the C(S, S/2) ways to pick S/2 blocks as the in-sample (IS) set, the
   other S/2 blocks form the out-of-sample (OOS) set. Both keep time order; the
   performance of a trial on a set is its per-period Sharpe ratio over the set's rows.
3. Take the trial ``n*`` with the best IS Sharpe (the first on ties), find its OOS rank
   ``r`` among the N trials (1 = worst, N = best; tied Sharpes share their average rank)
   and its relative rank ``w = r / (N + 1)``; the logit is ``lambda = ln(w / (1 - w))``.
4. PBO = the share of splits with ``lambda < 0`` (the IS-best is below the OOS median),
   a split exactly at the median (possible for odd N) counting one half, so that pure
   noise gives 0.5 in expectation for any N.

Also reported (the paper's "performance degradation"): the OLS line of the IS-best
trial's OOS Sharpe on its IS Sharpe over all splits, and the probability that its OOS
Sharpe is negative. A trial with zero variance on a set has Sharpe 0 when its mean is 0
and +-inf otherwise (for ranking only).
"""

from __future__ import annotations

import html
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from quantlab.errors import InsufficientDataError

DEFAULT_SPLITS = 16
MAX_SPLITS = 24  # C(24, 12) = 2.7 million splits; more is not a better estimate
MIN_BLOCK = 2  # periods per block
_CHUNK = 4096  # splits evaluated at once (bounds memory at ~_CHUNK x N x 8 bytes per array)


@dataclass(frozen=True)
class PBOResult:
    """Probability of backtest overfitting of a set of trials (CSCV).

    Attributes
    ----------
    pbo : share of splits where the in-sample best trial ranks below the out-of-sample
        median (0: the selection generalises; ~0.5: it is noise; -> 1: it picks losers).
    logits : (C,) lambda of every split (negative: overfit).
    splits : DataFrame, one row per split::

            is_blocks  best  is_sharpe  oos_sharpe  oos_rank  logit
            (0, 1, 2, 3, 4, 5, 6, 7)  entry=2.0  0.031  -0.004  0.42  -0.32

        ``is_blocks`` the in-sample block numbers, ``best`` the IS-best trial (column
        name), its IS and OOS per-period Sharpe, its relative OOS rank w in (0, 1).
    degradation_slope, degradation_intercept, degradation_r2 : OLS of ``oos_sharpe`` on
        ``is_sharpe`` over the splits (a negative slope: the better IS, the worse OOS).
    prob_oos_loss : share of splits where the IS-best trial has a negative OOS Sharpe.
    n_trials, n_periods, n_splits : the shape of the input and S.
    """

    pbo: float
    logits: np.ndarray = field(repr=False)
    splits: pd.DataFrame = field(repr=False)
    degradation_slope: float
    degradation_intercept: float
    degradation_r2: float
    prob_oos_loss: float
    n_trials: int
    n_periods: int
    n_splits: int

    def __deepcopy__(self, memo: dict) -> object:
        # A frozen result: pandas deep-copies DataFrame.attrs on every operation of a frame
        # that carries it (a sweep grid); sharing it instead of copying its split table
        # keeps those operations cheap.
        return self

    @property
    def n_combinations(self) -> int:
        return len(self.logits)

    def _rows(self) -> list[tuple[str, str]]:
        best = self.splits["best"].value_counts()
        top = ", ".join(f"{k} ({v})" for k, v in best.head(3).items())
        return [
            ("PBO", f"{self.pbo:.3f}"),
            ("trials x periods", f"{self.n_trials} x {self.n_periods:,}"),
            ("splits", f"S={self.n_splits}: {self.n_combinations:,} IS/OOS combinations"),
            ("median logit", f"{float(np.median(self.logits)):+.3f}"),
            ("OOS Sharpe of IS-best", f"mean {self.splits['oos_sharpe'].mean():+.4g} "
                                      f"(IS mean {self.splits['is_sharpe'].mean():+.4g})"),
            ("degradation", f"OOS = {self.degradation_intercept:+.4g} "
                            f"{self.degradation_slope:+.3f} x IS (R^2 {self.degradation_r2:.2f})"),
            ("P(OOS loss)", f"{self.prob_oos_loss:.3f}"),
            ("most often IS-best", top),
        ]

    def summary(self) -> str:
        """Plain-text report: PBO, split count, degradation line, most-chosen trials."""
        rows = self._rows()
        width = max(len(k) for k, _ in rows)
        head = "Probability of backtest overfitting (CSCV, per-period Sharpe)"
        return head + "\n" + "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        body = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                       f"<td>{html.escape(v)}</td></tr>" for k, v in self._rows())
        return ("<div><p><b>Probability of backtest overfitting</b> (CSCV, per-period "
                f"Sharpe)</p><table>{body}</table></div>")


def _matrix(returns_by_trial: Any) -> tuple[np.ndarray, list[str]]:
    if isinstance(returns_by_trial, pd.DataFrame):
        names = [str(c) for c in returns_by_trial.columns]
        try:
            m = returns_by_trial.to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError("returns_by_trial: every column must hold numbers (per-period "
                            "returns)") from None
    else:
        try:
            m = np.asarray(returns_by_trial, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError("returns_by_trial: expected a DataFrame of per-period returns, "
                            "one column per configuration") from None
        if m.ndim != 2:
            raise TypeError("returns_by_trial: expected a DataFrame (periods x configurations), "
                            f"got shape {m.shape}")
        names = [str(i) for i in range(m.shape[1])]
    if m.shape[1] < 2:
        raise ValueError(f"returns_by_trial: {m.shape[1]} configuration(s); overfitting is "
                         "measured across >= 2 configurations (one column each)")
    bad = ~np.isfinite(m)
    if bad.any():
        cols = [names[j] for j in np.nonzero(bad.any(axis=0))[0]]
        raise ValueError(f"returns_by_trial: {int(bad.sum())} NaN/inf value(s) in column(s) "
                         f"{', '.join(cols[:5])}; fill them (e.g. .fillna(0.0) for periods "
                         "without a position) or drop those rows for every column")
    return m, names


def _check_splits(n_splits: Any, n_periods: int) -> int:
    if (isinstance(n_splits, bool) or not isinstance(n_splits, int | np.integer)
            or n_splits < 2 or n_splits % 2):
        raise ValueError(f"n_splits: expected an even number >= 2 (e.g. 16), got {n_splits!r}")
    if n_splits > MAX_SPLITS:
        raise ValueError(f"n_splits: {n_splits} gives {math.comb(int(n_splits), int(n_splits) // 2):,} "
                         f"combinations; use at most {MAX_SPLITS}")
    if n_periods < MIN_BLOCK * n_splits:
        raise InsufficientDataError(
            f"n_splits: {n_periods} periods are too few for {n_splits} blocks of >= {MIN_BLOCK}; "
            f"lower n_splits (even, <= {max(2, (n_periods // MIN_BLOCK) // 2 * 2)}) or use more periods")
    return int(n_splits)


def block_moments(m: np.ndarray, n_splits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per block and trial: ``count (S,)``, ``sum (S, N)`` and ``centred sum of squares
    (S, N)`` of the returns, each trial first centred on its overall mean (kept separately)."""
    parts = np.array_split(np.arange(m.shape[0]), n_splits)
    count = np.array([len(p) for p in parts], dtype=np.float64)
    sums = np.empty((n_splits, m.shape[1]))
    m2 = np.empty((n_splits, m.shape[1]))
    for b, p in enumerate(parts):
        block = m[p[0]:p[-1] + 1]
        mu = block.mean(axis=0)
        d = block - mu
        sums[b] = mu * len(p)
        m2[b] = np.einsum("ij,ij->j", d, d)
    return count, sums, m2


def _sharpe_of_sets(w: np.ndarray, count, sums, m2, shift) -> np.ndarray:
    """Per-period Sharpe (C, N) of the union of the blocks marked 1 in ``w`` (C, S)."""
    n = w @ count  # (C,)
    s = w @ sums  # (C, N), centred data
    mean_c = s / n[:, None]
    # pooled centred sum of squares: within-block + between-block terms
    block_mean = sums / count[:, None]
    between = w @ (count[:, None] * block_mean * block_mean) - n[:, None] * mean_c * mean_c
    ss = np.maximum(w @ m2 + between, 0.0)
    sd = np.sqrt(ss / (n[:, None] - 1.0))
    mean = mean_c + shift[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = mean / sd
    flat = sd <= 1e-14 * np.abs(mean)  # includes sd == 0 == mean (no position at all)
    out[flat] = np.where(mean[flat] > 0, np.inf, np.where(mean[flat] < 0, -np.inf, 0.0))
    return out


def pbo_from_moments(count: np.ndarray, sums: np.ndarray, m2: np.ndarray, shift: np.ndarray,
                     names: list[str], n_periods: int) -> PBOResult:
    """CSCV on block moments (see :func:`block_moments`); :func:`pbo` is the public form."""
    S, N = sums.shape
    combos = np.array(list(itertools.combinations(range(S), S // 2)), dtype=np.intp)
    C = len(combos)
    is_sr = np.empty(C)
    oos_sr = np.empty(C)
    rank = np.empty(C)
    best = np.empty(C, dtype=np.intp)
    for c0 in range(0, C, _CHUNK):
        cc = combos[c0:c0 + _CHUNK]
        w = np.zeros((len(cc), S))
        np.put_along_axis(w, cc, 1.0, axis=1)
        r_is = _sharpe_of_sets(w, count, sums, m2, shift)
        r_oos = _sharpe_of_sets(1.0 - w, count, sums, m2, shift)
        k = np.argmax(np.where(np.isnan(r_is), -np.inf, r_is), axis=1)
        rows = np.arange(len(cc))
        v = r_oos[rows, k]
        below = (r_oos < v[:, None]).sum(axis=1)
        equal = (r_oos == v[:, None]).sum(axis=1)
        sl = slice(c0, c0 + len(cc))
        best[sl] = k
        is_sr[sl] = r_is[rows, k]
        oos_sr[sl] = v
        rank[sl] = below + (equal + 1) / 2.0
    w_rel = rank / (N + 1.0)
    logits = np.log(w_rel / (1.0 - w_rel))
    pbo_value = float(np.mean(np.where(logits < 0, 1.0, np.where(logits == 0, 0.5, 0.0))))
    slope, intercept, r2 = _ols(is_sr, oos_sr)
    splits = pd.DataFrame({
        "is_blocks": [tuple(int(b) for b in c) for c in combos],
        "best": np.asarray(names, dtype=object)[best],
        "is_sharpe": is_sr,
        "oos_sharpe": oos_sr,
        "oos_rank": w_rel,
        "logit": logits,
    })
    return PBOResult(
        pbo=pbo_value, logits=logits, splits=splits, degradation_slope=slope,
        degradation_intercept=intercept, degradation_r2=r2,
        prob_oos_loss=float(np.mean(oos_sr < 0.0)), n_trials=N, n_periods=int(n_periods),
        n_splits=S)


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 2:
        return math.nan, math.nan, math.nan
    dx, dy = x - x.mean(), y - y.mean()
    sxx, syy = float(dx @ dx), float(dy @ dy)
    if sxx == 0.0:
        return math.nan, float(y.mean()), math.nan
    slope = float(dx @ dy) / sxx
    r2 = (float(dx @ dy) ** 2 / (sxx * syy)) if syy > 0 else math.nan
    return slope, float(y.mean() - slope * x.mean()), r2


def pbo(returns_by_trial: Any, n_splits: int = DEFAULT_SPLITS) -> PBOResult:
    """Probability of backtest overfitting of choosing the best of several configurations.

    Parameters
    ----------
    returns_by_trial : DataFrame (periods x configurations) of per-period returns, one
        column per configuration tried, on the same periods, no NaN (fill periods without a
        position with 0).
    n_splits : S, the even number of time blocks (default 16: C(16, 8) = 12,870 splits).
        Each block needs >= 2 periods.

    Returns
    -------
    :class:`PBOResult` (``.pbo``, ``.logits``, ``.splits``, degradation statistics,
    ``summary()``). See the module docstring for the procedure.
    """
    m, names = _matrix(returns_by_trial)
    S = _check_splits(n_splits, m.shape[0])
    shift = m.mean(axis=0)
    count, sums, m2 = block_moments(m - shift, S)
    return pbo_from_moments(count, sums, m2, shift, names, m.shape[0])
