"""Frozen result types of the pair analytics.

Every result has ``summary()`` (plain text) and ``_repr_html_()`` (a small table for
notebooks). Fields are plain Python/numpy values so results can be compared and pickled.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np


def _fmt(v: Any) -> str:
    if isinstance(v, float | np.floating):
        if math.isnan(v) or math.isinf(v):
            return str(float(v))
        return f"{float(v):.6g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items())
    if isinstance(v, np.ndarray):
        return np.array2string(v, precision=5, suppress_small=True, max_line_width=200)
    return str(v)


class _Result:
    """Mixin: text and HTML views built from the dataclass fields."""

    _title = "Result"
    _hidden: tuple[str, ...] = ()

    def _rows(self) -> list[tuple[str, str]]:
        return [(f.name, _fmt(getattr(self, f.name))) for f in fields(self)  # type: ignore[arg-type]
                if f.name not in self._hidden]

    def summary(self) -> str:
        rows = self._rows()
        width = max(len(k) for k, _ in rows)
        lines = [self._title, "=" * max(len(self._title), 20)]
        lines += [f"{k.ljust(width)}  {v}" for k, v in rows]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'><pre style='margin:0'>{html.escape(v)}</pre></td></tr>"
            for k, v in self._rows()
        )
        return f"<table><caption>{html.escape(self._title)}</caption>{body}</table>"

    def __str__(self) -> str:
        return self.summary()


@dataclass(frozen=True)
class HedgeResult(_Result):
    """A static hedge ratio: ``y ~ alpha + beta * x`` on ``prices`` (``"raw"`` or ``"log"``).

    ``beta_se``, ``alpha_se``, ``beta_t``, ``alpha_t`` and ``rsquared`` equal statsmodels
    ``OLS(y, add_constant(x))`` for ``method="ols"`` (iid errors: on two random walks the
    regression is spurious and these say nothing; test cointegration with
    :func:`engle_granger`); other methods give ``rsquared`` = 1 - SSR/SST of their fit and
    NaN standard errors.
    """

    beta: float
    alpha: float
    method: str
    nobs: int
    beta_se: float = float("nan")
    alpha_se: float = float("nan")
    beta_t: float = float("nan")
    alpha_t: float = float("nan")
    rsquared: float = float("nan")
    prices: str = "raw"
    _title = "Hedge ratio"


@dataclass(frozen=True)
class ADFResult(_Result):
    """Augmented Dickey-Fuller test, the fields of statsmodels ``adfuller``.

    ``lags`` is the number of lagged differences used, ``nobs`` the observations in the
    test regression, ``icbest`` the best information criterion (None without autolag).
    """

    stat: float
    pvalue: float
    lags: int
    nobs: int
    critical_values: dict[str, float]
    regression: str = "c"
    autolag: str | None = None
    icbest: float | None = None
    _title = "Augmented Dickey-Fuller test"

    def is_stationary(self, level: str = "5%") -> bool:
        """True when the unit root is rejected at ``level`` ("1%", "5%" or "10%")."""
        return bool(self.stat < self.critical_values[level])


@dataclass(frozen=True)
class CointResult(_Result):
    """Engle-Granger two-step cointegration test of ``y ~ alpha + beta * x`` (statsmodels ``coint``).

    ``critical_values`` come from MacKinnon's cointegration table for two series, not the
    one-series ADF table. ``stat`` is ``-inf`` (and ``pvalue`` 0) when y and x are
    (almost) perfectly collinear, as statsmodels does.
    """

    stat: float
    pvalue: float
    critical_values: dict[str, float]
    beta: float
    alpha: float
    lags: int
    nobs: int
    trend: str = "c"
    y_name: str = "y"
    x_name: str = "x"
    _title = "Engle-Granger cointegration test"

    def is_cointegrated(self, level: str = "5%") -> bool:
        return bool(self.stat < self.critical_values[level])


@dataclass(frozen=True)
class CointBothResult(_Result):
    """Engle-Granger in both directions; ``best`` is the one with the lower statistic."""

    y_on_x: CointResult
    x_on_y: CointResult
    _title = "Engle-Granger cointegration test, both directions"

    @property
    def best(self) -> CointResult:
        """The direction with the lower statistic (its own ``pvalue`` is not corrected for
        the choice: use :attr:`pvalue`)."""
        return self.y_on_x if self.y_on_x.stat <= self.x_on_y.stat else self.x_on_y

    @property
    def pvalue(self) -> float:
        """P-value of "the pair is cointegrated" after picking the better of the two
        directions: ``min(1, 2 * min(p_y_on_x, p_x_on_y))`` (Bonferroni over the two tests,
        valid whatever their dependence; the screener's ``pvalue_pair``)."""
        p = min(self.y_on_x.pvalue, self.x_on_y.pvalue)
        return float(min(1.0, 2.0 * p)) if p == p else float("nan")

    def _rows(self) -> list[tuple[str, str]]:
        rows = []
        for name, r in (("y_on_x", self.y_on_x), ("x_on_y", self.x_on_y)):
            rows.append((name, f"{r.y_name} ~ {r.x_name}: stat {_fmt(r.stat)}, p {_fmt(r.pvalue)}, "
                               f"beta {_fmt(r.beta)}, lags {r.lags}"))
        rows.append(("best", f"{self.best.y_name} ~ {self.best.x_name}"))
        rows.append(("pvalue", f"{_fmt(self.pvalue)} (direction-corrected: min(1, 2 min p), "
                               "Engle-Granger / MacKinnon N=2)"))
        return rows


@dataclass(frozen=True)
class JohansenResult(_Result):
    """Johansen cointegration test (statsmodels ``coint_johansen``).

    ``trace_stat[r]`` tests rank <= r; ``trace_crit[r]`` holds the 90/95/99% critical values
    (likewise for the maximum-eigenvalue statistic). Columns of ``eigenvectors`` are the
    cointegrating vectors, ordered by decreasing eigenvalue.
    """

    trace_stat: np.ndarray
    trace_crit: np.ndarray
    max_eig_stat: np.ndarray
    max_eig_crit: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    names: tuple[str, ...] = field(default=())
    det_order: int = 0
    k_ar_diff: int = 1
    _title = "Johansen cointegration test"

    def rank(self, level: str = "95%", stat: str = "trace") -> int:
        """Cointegration rank selected by sequential testing at ``level``."""
        col = {"90%": 0, "95%": 1, "99%": 2}[level]
        s, c = ((self.trace_stat, self.trace_crit) if stat == "trace"
                else (self.max_eig_stat, self.max_eig_crit))
        for r in range(len(s)):
            if s[r] < c[r, col]:
                return r
        return len(s)

    def __eq__(self, other: object) -> bool:  # arrays: compare by value
        if not isinstance(other, JohansenResult):
            return NotImplemented
        return all(np.array_equal(getattr(self, f.name), getattr(other, f.name))
                   for f in fields(self))

    __hash__ = None  # type: ignore[assignment]
