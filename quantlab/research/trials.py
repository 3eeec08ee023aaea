"""Deflated Sharpe and PBO of a parameter sweep, collected one configuration at a time.

A sweep over 132 settings of 129,600 one-minute bars would need 137 MB to keep every
configuration's returns; the statistics need far less. :class:`TrialRecorder` keeps, per
configuration, its per-period Sharpe, skewness, kurtosis and the per-block moments that
:func:`quantlab.research.cscv.pbo_from_moments` needs (O(configurations x n_splits))::

    rec = TrialRecorder(risk_free=rf_per_bar)
    for each configuration:  rec.add(equity)          # account value per bar
    report = rec.report(labels)                        # SweepOverfitting

The trials are the configurations in the order they were added. A configuration that
never takes risk (constant equity) has no Sharpe ratio; it counts as a trial with Sharpe 0.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from quantlab.errors import InsufficientDataError
from quantlab.research import cscv as _pbo
from quantlab.research import sharpe as _sh


@dataclass(frozen=True)
class SweepOverfitting:
    """How much of a sweep's best result the search itself explains.

    Attributes
    ----------
    best : label of the configuration with the highest per-period Sharpe ratio.
    best_position : its position among the trials (the sweep's row number).
    best_sharpe : its per-period Sharpe ratio (excess of the risk-free rate).
    expected_max_sharpe : SR0, the best per-period Sharpe expected from ``n_trials``
        unskilled configurations with the observed spread of Sharpe ratios.
    deflated_sharpe : P(true Sharpe of ``best`` > SR0), in [0, 1]; >= 0.95 is significant.
    pbo : :class:`~quantlab.research.PBOResult` of the grid (CSCV), or None (see ``note``).
    n_trials, n_periods : configurations and returns per configuration.
    note : why a statistic is missing, else "".
    """

    best: str
    best_position: int
    best_sharpe: float
    expected_max_sharpe: float
    deflated_sharpe: float
    pbo: _pbo.PBOResult | None
    n_trials: int
    n_periods: int
    note: str = ""

    def __deepcopy__(self, memo: dict) -> object:
        # A frozen result: pandas deep-copies DataFrame.attrs on every operation of a frame
        # that carries it (a sweep grid); sharing it instead of copying its split table
        # keeps those operations cheap.
        return self

    def _rows(self) -> list[tuple[str, str]]:
        rows = [
            ("best configuration", self.best),
            ("its Sharpe (per period)", f"{self.best_sharpe:.4g}"),
            (f"expected max of {self.n_trials} unskilled", f"{self.expected_max_sharpe:.4g}"),
            ("deflated Sharpe", "nan" if math.isnan(self.deflated_sharpe)
             else f"{self.deflated_sharpe:.3f} (P[true Sharpe > expected max])"),
            ("PBO", "n/a" if self.pbo is None else
             f"{self.pbo.pbo:.3f} (CSCV, S={self.pbo.n_splits})"),
            ("periods", f"{self.n_periods:,}"),
        ]
        if self.note:
            rows.append(("note", self.note))
        return rows

    def summary(self) -> str:
        """Plain-text report of the deflated Sharpe and the PBO of the sweep."""
        rows = self._rows()
        width = max(len(k) for k, _ in rows)
        return ("Overfitting of the sweep's best configuration\n"
                + "\n".join(f"  {k:<{width}}  {v}" for k, v in rows))

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        body = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                       f"<td>{html.escape(v)}</td></tr>" for k, v in self._rows())
        return f"<div><p><b>Overfitting of the sweep's best configuration</b></p><table>{body}</table></div>"


class TrialRecorder:
    """Collect configurations' statistics for :class:`SweepOverfitting` (see module doc)."""

    def __init__(self, risk_free: float = 0.0, n_splits: int = _pbo.DEFAULT_SPLITS) -> None:
        self.risk_free = float(risk_free)
        self.n_splits = int(n_splits)
        self._stats: list[tuple[float, int, float, float]] = []
        self._blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray, float] | None] = []
        self._notes: set[str] = set()

    def __len__(self) -> int:
        return len(self._stats)

    def add(self, equity: np.ndarray) -> None:
        """Record one configuration from its account value per bar (1-D, >= 2 bars)."""
        e = np.asarray(equity, dtype=np.float64)
        prev = e[:-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            r = e[1:] / prev - 1.0 - self.risk_free
        r[~(prev > 0)] = np.nan
        if np.isnan(r).any():
            self._notes.add("a configuration's equity reached 0 (returns undefined after it): "
                            "no PBO")
            self._stats.append((math.nan, int(np.isfinite(r).sum()), math.nan, math.nan))
            self._blocks.append(None)
            return
        try:
            self._stats.append(_sh.moments(r))
        except InsufficientDataError:  # constant returns: no risk taken
            self._stats.append((math.nan, r.size, math.nan, math.nan))
        if r.size >= _pbo.MIN_BLOCK * self.n_splits:
            shift = float(r.mean())
            count, sums, m2 = _pbo.block_moments((r - shift)[:, None], self.n_splits)
            self._blocks.append((count, sums[:, 0], m2[:, 0], shift))
        else:
            self._blocks.append(None)
            self._notes.add(f"{r.size} returns are too few for {self.n_splits} CSCV blocks: no PBO")

    def report(self, labels: Sequence[str] | None = None) -> SweepOverfitting:
        """Deflated Sharpe of the best configuration and PBO of all of them."""
        n = len(self._stats)
        if n == 0:
            raise ValueError("TrialRecorder.report: no configuration was added")
        labels = [str(i) for i in range(n)] if labels is None else [str(s) for s in labels]
        sharpes = np.array([s[0] for s in self._stats])
        trial = np.where(np.isnan(sharpes), 0.0, sharpes)
        pos = int(np.argmax(trial))
        sr0 = _sh.expected_max_sharpe(trial)
        notes = set(self._notes)
        best_sr, n_obs, skew, kurt = self._stats[pos]
        if math.isnan(best_sr):
            dsr = math.nan
            notes.add("no configuration took risk: no deflated Sharpe")
        else:
            dsr = _sh.psr_from_moments(best_sr, n_obs, skew, kurt, sr0)
        pbo_result = None
        if n < 2:
            notes.add("one configuration: no PBO")
        elif len(blocks := [b for b in self._blocks if b is not None]) == n:
            count = blocks[0][0]
            sums = np.column_stack([b[1] for b in blocks])
            m2 = np.column_stack([b[2] for b in blocks])
            shift = np.array([b[3] for b in blocks])
            pbo_result = _pbo.pbo_from_moments(count, sums, m2, shift, labels, n_obs)
        return SweepOverfitting(
            best=labels[pos], best_position=pos, best_sharpe=float(trial[pos]),
            expected_max_sharpe=sr0, deflated_sharpe=dsr, pbo=pbo_result, n_trials=n,
            n_periods=int(n_obs), note="; ".join(sorted(notes)))


def trial_labels(frame: Any, columns: Sequence[str] = ("window", "entry", "exit", "stop",
                                                        "max_holding")) -> list[str]:
    """``"window=60 entry=2.0 exit=0.5 ..."`` for each row of a sweep frame."""
    cols = [c for c in columns if c in frame.columns]
    return [" ".join(f"{c}={v}" for c, v in zip(cols, row, strict=True))
            for row in frame[cols].itertuples(index=False, name=None)]
