"""``BacktestResult``: the frozen record of one backtest."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .metrics import STAT_KEYS, short_sample

_PERCENT = {"total_return", "cagr", "max_drawdown", "win_rate", "exposure"}


def _fmt(key: str, value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if key in _PERCENT:
            return f"{value:.2%}"
        if abs(value) >= 1e6:
            return f"{value:.4g}"
        return f"{value:,.4f}"
    return str(value)


@dataclass(frozen=True, repr=False)
class BacktestResult:
    """A mean-reversion backtest of the spread ``y - beta * x``.

    Attributes
    ----------
    equity : Series
        Account value at each bar's price, after that bar's fills (index of the inputs).
    positions : DataFrame
        One row per bar: ``z`` (z-score known at the bar's close), ``beta`` (hedge ratio
        estimated at the bar), ``signal`` in {-1, 0, 1} (position held from this bar's
        price to the next bar's: +1 long spread = long y, short beta*units of x),
        ``units_y``, ``units_x`` (units of each leg held) and the costs booked at the bar:
        ``fees``, ``slippage``, ``borrow`` (short spot legs), ``funding`` (perpetual legs;
        negative when received).
    trades : DataFrame
        One row per round trip: ``entry_time``, ``exit_time`` (fill bars), ``side`` (+1
        long spread, -1 short), ``entry_z``, ``exit_z`` (z at the deciding bars),
        ``reason`` in {"exit", "stop", "time", "end"}, ``pnl`` (net of every cost),
        each cost of the trade (``fees``, ``slippage``, ``borrow``, ``funding``), ``return`` (pnl over the gross notional of both legs at
        entry), ``bars`` held, ``beta`` (frozen), the units and the fill prices.
    stats : dict
        The statistics of :func:`quantlab.backtest.metrics.compute_stats`.
    params : dict
        The arguments the backtest ran with.
    """

    equity: pd.Series
    positions: pd.DataFrame
    trades: pd.DataFrame
    stats: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    signal: Any = None

    @property
    def z(self) -> pd.Series:
        """The z-score the backtest traded on (``positions["z"]``, the spec's signal)."""
        return self.positions["z"]

    def _stat_rows(self) -> list[tuple[str, str]]:
        return [(k, _fmt(k, self.stats[k])) for k in STAT_KEYS if k in self.stats]

    def _title(self) -> str:
        p = self.params
        hedge = p.get("hedge", "?")
        bits = [f"hedge={hedge}"]
        if p.get("spec") is not None:
            bits = [f"spec: {p['spec'].label}"]
        keys = ("entry", "exit", "stop", "max_holding")
        for k in (keys if p.get("spec") is not None else ("window", *keys)):
            if k in p and p[k] is not None:
                bits.append(f"{k}={p[k]}")
        costs = ""
        if p.get("costs") is not None:
            legs = p.get("legs")
            costs = "\n  costs: " + p["costs"].label + (
                f" (legs: y = {legs[0]}, x = {legs[1]})" if legs else "")
        span = ""
        if len(self.equity):
            span = f" {self.equity.index[0]} -> {self.equity.index[-1]} ({len(self.equity)} bars)"
        return "Backtest" + span + "\n  " + ", ".join(bits) + costs

    def summary(self) -> str:
        """A plain-text report: parameters, statistics and a count of trades by reason."""
        rows = self._stat_rows()
        width = max(len(k) for k, _ in rows)
        lines = [self._title(), ""]
        lines += [f"  {k.ljust(width)}  {v}" for k, v in rows]
        why = short_sample(self.equity.index, int(self.stats.get("n_trades", 0)))
        if why is not None:
            lines.append(f"  note: sample of {why}: annualised figures (cagr, sharpe, sortino, "
                         "calmar) mean little; read trade_sharpe and trade_t_stat")
        if len(self.trades):
            counts = self.trades["reason"].value_counts()
            lines.append("")
            lines.append("  trades by reason: " + ", ".join(
                f"{r}={int(counts.get(r, 0))}" for r in ("exit", "stop", "time", "end")))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:  # the frames are attributes to look at, not to dump
        return self.summary()

    def _repr_html_(self) -> str:
        title = html.escape(self._title()).replace("\n", "<br>")
        stats = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in self._stat_rows())
        trades = ""
        if len(self.trades):
            shown = self.trades.head(10)[["entry_time", "exit_time", "side", "entry_z",
                                          "exit_z", "reason", "pnl", "fees", "slippage",
                                          "borrow", "funding", "bars"]]
            trades = (f"<p><b>trades</b> (first {len(shown)} of {len(self.trades)})</p>"
                      + shown.to_html(index=False, float_format=lambda v: f"{v:,.4f}"))
        return (f"<div><p><b>{title}</b></p><table>{stats}</table>{trades}</div>")
