"""``WalkForwardResult``: the frozen record of a walk-forward (:func:`walk_forward`)."""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

_PERCENT = {"total_return", "cagr", "max_drawdown", "win_rate", "exposure",
            "mean_is_return", "mean_oos_return"}
#: statistics shown first, in this order
STAT_ORDER = (
    "total_return", "sharpe", "deflated_sharpe", "n_trials", "max_drawdown", "exposure",
    "turnover", "fees", "n_trades", "n_folds", "mean_pairs_per_fold", "folds_without_pairs",
    "mean_is_return", "mean_oos_return", "final_equity",
)


def _fmt(key: str, value: Any) -> str:
    if isinstance(value, float | np.floating):
        value = float(value)
        if math.isnan(value):
            return "nan"
        if key in _PERCENT:
            return f"{value:.2%}"
        return f"{value:,.4f}" if abs(value) < 1e6 else f"{value:.4g}"
    return str(value)


@dataclass(frozen=True)
class WalkForwardResult:
    """Out-of-sample trading of the pairs selected fold by fold.

    Attributes
    ----------
    folds : DataFrame, one row per fold and selected pair::

        fold formation_start formation_end trading_start trading_end  y    x    pvalue  qvalue
        half_life crossings beta hedge_prices spread_vol weight capital traded n_trades pnl
        fees is_return oos_return

        ``pvalue``: the screen's pair p-value (MacKinnon, both directions, Bonferroni);
        ``qvalue``: its Benjamini-Hochberg q-value; ``half_life``: Timedelta; ``beta``: the
        fitted hedge (static) or the hedge at the first trading bar (adaptive), on
        ``hedge_prices``; ``is_return``: the same rules on the formation bars, in sample;
        ``oos_return``: the pair's P&L in the trading window over its capital.
    schedule : DataFrame, one row per fold (bar positions and times, candidates, selected).
    equity : Series, portfolio equity on the trading bars of every fold.
    pair_equity : DataFrame, each pair's cumulative P&L (one column ``Y/X``) on the same
        index; ``capital + pair_equity.sum(axis=1) == equity`` (to rounding).
    trades : DataFrame, :func:`quantlab.backtest.run`'s trade columns plus ``fold, y, x``.
    stats : dict, :func:`~quantlab.backtest.metrics.compute_stats` of the portfolio plus
        ``deflated_sharpe``, ``n_trials``, ``n_folds``, ``mean_pairs_per_fold``...
    params : the arguments; ``notes``: what was skipped and why.
    """

    folds: pd.DataFrame
    schedule: pd.DataFrame
    equity: pd.Series
    pair_equity: pd.DataFrame
    trades: pd.DataFrame
    stats: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(cls, acc: dict, *, schedule: pd.DataFrame, outputs: list, ppy: float,
              capital: float, n_trials: int, params: dict) -> WalkForwardResult:
        from quantlab.backtest import metrics as _m
        from quantlab.research.walkforward import deflated_sharpe_given_trials

        eq = acc["equity"]
        tr = acc["trades"]
        stats = _m.compute_stats(
            eq.to_numpy(), ppy, pnl=tr["pnl"].to_numpy(dtype=float),
            bars_held=tr["bars"].to_numpy(dtype=float), signal=acc["signal"],
            traded=acc["traded"], fees=float(acc["fees"].sum()), capital=capital)
        folds = acc["folds"]
        sched = schedule.copy()
        sched["candidates"] = [o["selection"].get("candidates", 0) for o in outputs]
        sched["selected"] = [o["selection"].get("selected", 0) for o in outputs]
        sched["traded"] = [sum(p["traded"] for p in o["pairs"]) for o in outputs]
        starts = np.cumsum([0] + [int(r.hi - r.mid) for r in schedule.itertuples()])
        e = eq.to_numpy()
        first = np.r_[capital, e[starts[1:-1] - 1]]
        sched["return"] = e[starts[1:] - 1] / first - 1.0
        stats.update(
            deflated_sharpe=deflated_sharpe_given_trials(_m.returns(e), n_trials),
            n_trials=n_trials, n_folds=len(schedule),
            mean_pairs_per_fold=float(sched["traded"].mean()),
            folds_without_pairs=int((sched["traded"] == 0).sum()),
            mean_is_return=float(folds["is_return"].mean()) if len(folds) else math.nan,
            mean_oos_return=float(folds["oos_return"].mean()) if len(folds) else math.nan,
        )
        notes = tuple(f"fold {k}: {n}" for k, o in enumerate(outputs) for n in o["notes"])
        return cls(folds=folds, schedule=sched, equity=eq, pair_equity=acc["pair_equity"],
                   trades=tr, stats=stats, params=params, notes=notes)

    # ------------------------------------------------------------------ text
    def _stat_rows(self) -> list[tuple[str, str]]:
        keys = [k for k in STAT_ORDER if k in self.stats]
        keys += [k for k in self.stats if k not in keys]
        return [(k, _fmt(k, self.stats[k])) for k in keys]

    def _title(self) -> str:
        p = self.params
        span = (f"{self.equity.index[0]} -> {self.equity.index[-1]}" if len(self.equity) else "")
        spec = p.get("spec")
        return (f"Walk-forward {span}\n  formation {p.get('formation')}, trading "
                f"{p.get('trading')}, step {p.get('step')}, {len(p.get('symbols', []))} symbols; "
                f"spec: {getattr(spec, 'label', spec)} (fitted on each formation window); entry={p.get('entry')}, "
                f"exit={p.get('exit')}, stop={p.get('stop')}, fee_bps={p.get('fee_bps')}, "
                f"slippage_bps={p.get('slippage_bps')}, weights={p.get('weights')}")

    def summary(self) -> str:
        """Parameters, statistics and the pairs most often selected."""
        rows = self._stat_rows()
        width = max(len(k) for k, _ in rows)
        lines = [self._title(), ""] + [f"  {k.ljust(width)}  {v}" for k, v in rows]
        lines.append(f"  (deflated_sharpe: P(true Sharpe of the out-of-sample bar returns > the "
                     f"best of {self.stats.get('n_trials')} unskilled trials))")
        top = self.pair_counts().head(10)
        if len(top):
            lines += ["", "  pairs selected most often (folds): " + ", ".join(
                f"{k} ({v})" for k, v in top.items())]
        if self.notes:
            lines += ["", f"  notes ({len(self.notes)}): " + self.notes[0]
                      + (" ..." if len(self.notes) > 1 else "")]
        return "\n".join(lines)

    def pair_counts(self) -> pd.Series:
        """Folds in which each pair (``Y/X``) was selected, most often first."""
        if not len(self.folds):
            return pd.Series(dtype=np.int64)
        labels = self.folds["y"].astype(str) + "/" + self.folds["x"].astype(str)
        return labels.value_counts()

    def __str__(self) -> str:
        return self.summary()

    def _fold_table_html(self, limit: int = 200) -> str:
        cols = ["fold", "trading_start", "y", "x", "pvalue", "qvalue", "half_life", "beta",
                "weight", "n_trades", "is_return", "oos_return"]
        shown = self.folds.loc[:, cols].head(limit)
        return shown.to_html(index=False, float_format=lambda v: f"{v:,.4g}", border=0)

    def _repr_html_(self) -> str:
        title = html.escape(self._title()).replace("\n", "<br>")
        stats = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                        f"<td>{html.escape(v)}</td></tr>" for k, v in self._stat_rows())
        return (f"<div><p><b>{title}</b></p><table>{stats}</table>"
                f"<p><b>folds</b> ({len(self.schedule)} folds, {len(self.folds)} pair rows; "
                f"first 20)</p>{self._fold_table_html(20)}</div>")

    # ------------------------------------------------------------------ pictures
    def plot(self) -> Any:
        """A static matplotlib figure: portfolio equity, its drawdown and the pairs traded per
        fold."""
        from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

        fig = Figure(figsize=(10, 7.5), layout="constrained")
        ax1, ax2, ax3 = fig.subplots(3, 1, height_ratios=(3, 1.5, 1.5))
        eq = self.equity
        ax1.plot(eq.index, eq.to_numpy(), lw=1.0, color="#1f77b4")
        ax1.set_ylabel("equity")
        ax1.set_title("Walk-forward portfolio (out of sample)")
        for t in self.schedule["trading_start"].iloc[1:]:
            ax1.axvline(t, color="#bbbbbb", lw=0.5)
        e = eq.to_numpy()
        dd = e / np.maximum.accumulate(e) - 1.0 if e.size else e
        ax2.fill_between(eq.index, dd, 0.0, color="#d62728", alpha=0.4, lw=0)
        ax2.set_ylabel("drawdown")
        ax3.bar(self.schedule["fold"], self.schedule["traded"], color="#2ca02c")
        ax3.set_xlabel("fold")
        ax3.set_ylabel("pairs traded")
        return fig

    def to_html(self, path: str | Path) -> Path:
        """Write a self-contained report (inline PNG and CSS, no external URL) to ``path``."""
        path = Path(path)
        buf = io.BytesIO()
        self.plot().savefig(buf, format="png", dpi=90)
        img = base64.b64encode(buf.getvalue()).decode("ascii")
        stats = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                        for k, v in self._stat_rows())
        sched = self.schedule.drop(columns=["lo", "mid", "hi"]).to_html(
            index=False, float_format=lambda v: f"{v:,.4g}", border=0)
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes[:200])
        css = ("body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;"
               "font-size:12px}td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}"
               "h2{margin-top:1.5em}")
        doc = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>quantlab walk-forward"
               f"</title><style>{css}</style></head><body><h1>Walk-forward report</h1>"
               f"<p>{html.escape(self._title()).replace(chr(10), '<br>')}</p>"
               f"<img alt='equity, drawdown, pairs per fold' src='data:image/png;base64,{img}'>"
               f"<h2>Statistics</h2><table>{stats}</table>"
               f"<p>deflated_sharpe: probability that the true Sharpe of the out-of-sample bar "
               f"returns exceeds the best of {self.stats.get('n_trials')} unskilled trials "
               f"(Bailey &amp; L&oacute;pez de Prado 2014).</p>"
               f"<h2>Folds</h2>{sched}<h2>Selected pairs</h2>{self._fold_table_html()}"
               + (f"<h2>Notes</h2><ul>{notes}</ul>" if notes else "")
               + "</body></html>")
        path.write_text(doc, encoding="utf-8")
        return path

