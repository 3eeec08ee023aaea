"""The Research tab: a walk-forward of a portfolio of pairs over the app's store, in the background.

    from quantlab import Lab
    from quantlab.ui import Controls, ResearchPanel
    lab = Lab(source="demo").start()
    panel = ResearchPanel(lab, Controls(lab.symbols))   # display(panel); click "Run walk-forward"
    await panel.idle(); panel.result                     # a quantlab.research.WalkForwardResult

What it runs: the store's closes of the chosen symbols on the chosen timeframe, read with
:func:`quantlab.closes` (the one alignment), then :func:`quantlab.research.walk_forward` with
the formation and trading windows, entry/exit/stop and the number of configurations tried
(for the deflated Sharpe). Costs are the left column's fee, perpetual fee and borrow, with
each perpetual's funding from the store (as the Backtest tab charges them). The spec is
walk-forward's default: a static log-log OLS hedge fitted on each formation window, the
z-score over 60 bars.

How it runs: on a thread (:meth:`~quantlab.ui.base.Panel.in_background`); walk-forward's
``on_fold(done, total)`` posts each fold's progress to the kernel loop, where every widget
changes. **Cancel** makes the next ``on_fold`` raise :class:`RunCancelled`: the run stops when
the fold under way is done. The Run button is disabled meanwhile.

Defaults scale to the history in the store (:func:`suggest_windows`): the largest of
:data:`LADDER`'s (formation, trading) pairs leaving :data:`MIN_FOLDS` trading windows after the
formation, on the coarsest timeframe that gives a formation window of at least
:data:`MIN_FORMATION_BARS` bars (the screen's fewest common bars). The two hours of the demo
store give formation 30min and trading 10min on 1 s bars (9 folds).
"""

from __future__ import annotations

import html
import math
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd

from quantlab.errors import InsufficientDataError
from quantlab.ui.base import (
    AMBER,
    GREEN,
    Panel,
    Poster,
    fmt_num,
    fmt_pct,
    stats_table_html,
    table_html,
)
from quantlab.ui.charts import TimeChart
from quantlab.ui.downloads import DownloadLink
from quantlab.ui.panels import (
    TIMEFRAMES,
    Controls,
    note_html,
    pair_costs,
    quote_of,
    store_funding,
)

#: (formation, trading) windows offered as defaults, shortest first (the issue's 30D/7D last)
LADDER = (("10min", "5min"), ("30min", "10min"), ("1h", "20min"), ("2h", "30min"),
          ("6h", "2h"), ("12h", "4h"), ("1D", "6h"), ("3D", "1D"), ("7D", "2D"), ("30D", "7D"))
#: trading windows the defaults leave after the formation window
MIN_FOLDS = 4
#: fewest bars in a formation window: the screen's fewest common bars per pair
MIN_FORMATION_BARS = 500
#: fold-table rows shown in the page (the HTML report holds them all)
MAX_FOLD_ROWS = 300


class RunCancelled(Exception):  # noqa: N818 - it is what the user asked for, not an error
    """Raised from walk-forward's ``on_fold`` when the user pressed Cancel."""

    def __init__(self, done: int, total: int) -> None:
        super().__init__(f"cancelled after fold {done} of {total}")
        self.done, self.total = done, total


# --------------------------------------------------------------------------- pure helpers

def duration_text(td: Any) -> str:
    """``pd.Timedelta('90min') -> '1h30min'``; ``'–'`` for NaT or None."""
    if td is None or pd.isna(td):
        return "–"
    s = int(round(pd.Timedelta(td).total_seconds()))
    days, s = divmod(s, 86_400)
    hours, s = divmod(s, 3_600)
    minutes, s = divmod(s, 60)
    parts = [f"{v}{u}" for v, u in ((days, "D"), (hours, "h"), (minutes, "min"), (s, "s")) if v]
    return "".join(parts) or "0s"


def parse_duration(value: str, name: str) -> pd.Timedelta:
    """A window typed in the panel (``30min``, ``4h``, ``7D``) as a Timedelta; the error names
    the field and shows what to type (walk-forward's own parser)."""
    from quantlab.research.selection import _timedelta

    td = _timedelta(str(value).strip(), name)
    if td is None:
        raise ValueError(f"{name}: give a duration such as '30min', '4h' or '7D'")
    return td


def bar_length(timeframe: str) -> pd.Timedelta:
    from quantlab.timeframes import parse_timeframe

    return parse_timeframe(timeframe).nominal


@dataclass(frozen=True)
class Windows:
    """Default windows for a history ``span``: formation and trading durations (as typed in
    the panel), the timeframe, and ``folds``: walk-forward's folds over ``span`` (the last
    trading window may be shorter), 0 when even the shortest windows do not fit."""

    formation: str
    trading: str
    timeframe: str
    folds: int
    span: pd.Timedelta

    @property
    def fits(self) -> bool:
        return self.folds >= 1


def suggest_windows(span: pd.Timedelta) -> Windows:
    """The largest :data:`LADDER` windows leaving :data:`MIN_FOLDS` full trading windows in
    ``span`` (else the largest leaving one; else the shortest, with ``folds`` 0), on the
    coarsest of
    the app's timeframes giving at least :data:`MIN_FORMATION_BARS` formation bars."""
    span = pd.Timedelta(span)

    def left(f: str) -> pd.Timedelta:
        return max(pd.Timedelta(0), span - pd.Timedelta(f))

    def full(f: str, t: str) -> int:
        return int(left(f) // pd.Timedelta(t))

    fitting = [w for w in LADDER if full(*w) >= MIN_FOLDS] or [w for w in LADDER if full(*w) >= 1]
    f, t = fitting[-1] if fitting else LADDER[0]
    tf = [x for x in TIMEFRAMES if pd.Timedelta(f) / bar_length(x) >= MIN_FORMATION_BARS]
    # walk-forward's folds: the last trading window may be shorter
    folds = math.ceil(left(f) / pd.Timedelta(t)) if fitting else 0
    return Windows(f, t, tf[-1] if tf else TIMEFRAMES[0], folds, span)


def history_span(store: Any, symbols: list[str]) -> pd.Timedelta:
    """How long the store's trades (spot), aggregate trades (perpetuals) or klines cover ALL
    of ``symbols``: the latest first time to the earliest last time (0 when they do not
    overlap or a symbol has none). ``store``: a TickStore or its directory."""
    from quantlab.store import TickStore

    own = not isinstance(store, TickStore)
    st = TickStore(store) if own else store
    try:
        info = st.info()
    finally:
        if own:
            st.close()
    kinds = info["kind"].astype(str)
    info = info[kinds.isin(["trades", "aggtrades"]) | kinds.str.startswith("klines")]
    firsts, lasts = [], []
    for sym in symbols:
        rows = info[info["symbol"] == sym]
        if not len(rows):
            return pd.Timedelta(0)
        firsts.append(rows["first_time"].min())
        lasts.append(rows["last_time"].max())
    return max(pd.Timedelta(0), min(lasts) - max(firsts))


@dataclass(frozen=True)
class ResearchInputs:
    """What the panel's controls say, checked (see :meth:`ResearchPanel.inputs`)."""

    symbols: tuple[str, ...]
    timeframe: str
    formation: str
    trading: str
    entry: float
    exit: float
    stop: float
    n_trials: int


def check_inputs(symbols, timeframe: str, formation: str, trading: str, entry: float,
                 exit: float, stop: float, n_trials: Any) -> ResearchInputs:
    """The controls' values checked, each problem as one line naming the control."""
    from quantlab.backtest.engine import _check_rules  # the backtest's one rule check

    symbols = tuple(symbols)
    if len(symbols) < 2:
        raise ValueError(f"Symbols: select at least 2 symbols (a pair needs two), got "
                         f"{len(symbols)}")
    if timeframe not in TIMEFRAMES:
        raise ValueError(f"Timeframe: one of {', '.join(TIMEFRAMES)}, got {timeframe!r}")
    form = parse_duration(formation, "Formation")
    trade = parse_duration(trading, "Trading")
    bars = int(form / bar_length(timeframe))
    if bars < MIN_FORMATION_BARS:
        need = duration_text(bar_length(timeframe) * MIN_FORMATION_BARS)
        raise ValueError(f"Formation: {formation} holds {bars} bars of {timeframe}; the screen needs at "
                         f"least {MIN_FORMATION_BARS} per formation window: make it at least {need} "
                         f"or pick a shorter timeframe")
    if trade < 2 * bar_length(timeframe):
        raise ValueError(f"Trading: {trading} is shorter than two {timeframe} bars (a decision and "
                         f"a fill); make it longer")
    try:
        entry_f, exit_f, stop_f, _ = _check_rules(entry, exit, stop, None)
    except ValueError as exc:  # the panel has no "no stop": drop the API's hint
        raise ValueError(str(exc).split("; use stop=None")[0]) from None
    if isinstance(n_trials, bool) or not isinstance(n_trials, int | np.integer) or n_trials < 1:
        raise ValueError(f"Configurations tried: the number of settings you tried in all, this one "
                         f"included (a whole number >= 1), got {n_trials!r}")
    return ResearchInputs(symbols, timeframe, duration_text(form), duration_text(trade),
                          entry_f, exit_f, stop_f, int(n_trials))


def deflated_sharpe_html(value: float, n_trials: int) -> str:
    """The deflated Sharpe and what it means, in words."""
    tried = f"{n_trials} configuration{'s' if n_trials != 1 else ''}"
    if value is None or not math.isfinite(value):
        return note_html(f"Deflated Sharpe: not defined (the out-of-sample returns are constant: "
                         f"nothing was traded). {tried.capitalize()} tried.")
    verdict = ("unlikely to be the luck of the search" if value >= 0.95 else
               "no evidence of skill beyond the luck of the search (0.95 or more would be)")
    return (f"<div style='padding:4px 0'><b>Deflated Sharpe {value:.3f}</b>: the probability that "
            f"the true Sharpe ratio of these out-of-sample bar returns exceeds the best Sharpe "
            f"expected from {html.escape(tried)} tried with no skill (Bailey &amp; López de Prado "
            f"2014, corrected for skewness and kurtosis): {html.escape(verdict)}.</div>")


_STATS = (("total_return", "total return", "ret"), ("sharpe", "Sharpe (annualised)", "num"),
          ("max_drawdown", "max drawdown", "pct"), ("exposure", "exposure", "pct"),
          ("n_trades", "trades", "int"), ("fees", "fees paid", "money"),
          ("n_folds", "folds", "int"), ("mean_pairs_per_fold", "pairs traded per fold", "num"),
          ("folds_without_pairs", "folds in cash (no pair)", "int"),
          ("mean_is_return", "mean in-sample return per pair", "ret"),
          ("mean_oos_return", "mean out-of-sample return per pair", "ret"),
          ("final_equity", "final equity", "money"))


def stats_html(stats: dict, quote: str) -> str:
    """The Research tab's statistics table."""
    return stats_table_html(stats, _STATS, quote, digits=2, header="statistic", css="ql-research-stats")


def _utc(t: Any) -> str:
    return "–" if t is None or pd.isna(t) else f"{pd.Timestamp(t):%Y-%m-%d %H:%M:%S}"


def fold_rows(res: Any) -> list[list[str]]:
    """One row per fold and selected pair (``res.folds``), plus one for each fold in cash."""
    rows: list[tuple[int, list[str]]] = []
    for r in res.folds.itertuples(index=False):
        rows.append((int(r.fold), [
            str(int(r.fold)), _utc(r.trading_start), _utc(r.trading_end), str(r.y), str(r.x),
            fmt_num(r.qvalue, 4), duration_text(r.half_life), fmt_num(r.beta, 4),
            fmt_num(r.weight, 3), str(int(r.n_trades)), fmt_pct(r.is_return * 100),
            fmt_pct(r.oos_return * 100) if r.traded else "not traded"]))
    chosen = set(res.folds["fold"].astype(int)) if len(res.folds) else set()
    for s in res.schedule.itertuples(index=False):
        if int(s.fold) not in chosen:
            rows.append((int(s.fold), [str(int(s.fold)), _utc(s.trading_start), _utc(s.trading_end),
                                       "—", "—", "no pair selected: in cash", "", "", "", "0", "", ""]))
    rows.sort(key=lambda fr: fr[0])
    return [r for _, r in rows]


FOLD_HEADER = ["fold", "trading from (UTC)", "to (UTC)", "y", "x", "q-value", "half-life",
               "hedge β", "weight", "trades", "in-sample", "out-of-sample"]


def folds_html(res: Any, limit: int = MAX_FOLD_ROWS) -> str:
    rows = fold_rows(res)
    shown = rows[:limit]
    more = f" (first {len(shown)} of {len(rows)}; the report holds all)" if len(rows) > len(shown) else ""
    head = (f"<div style='padding:4px 0'><b>Folds</b>: one row per fold and selected pair{more}; "
            "returns on the pair's capital</div>")
    return head + table_html(shown, FOLD_HEADER, css="ql-research-fold-table", align_right_from=5)


def common_quote(symbols) -> str:
    quotes = {quote_of(s.partition(":")[2] or s) for s in symbols}
    return quotes.pop() if len(quotes) == 1 and "" not in quotes else "quote units"


# --------------------------------------------------------------------------- the panel

class ResearchPanel(Panel):
    """Walk-forward over the store's closes, run on a thread; see the module docstring."""

    def __init__(self, lab, controls: Controls, *, poster: Poster | None = None,
                 suggest: bool = True) -> None:
        """``suggest``: look at the store's history (on a thread) and fill in default windows."""
        self.lab, self.controls = lab, controls
        self.result = None
        self.report_html = ""
        self.warnings: list[str] = []
        self.suggested: Windows | None = None
        syms = list(lab.symbols)
        self.symbols = widgets.SelectMultiple(options=syms, value=tuple(syms), rows=min(6, max(2, len(syms))),
                                              description="symbols", layout=widgets.Layout(width="260px"))
        self.symbols.add_class("ql-research-symbols")
        w = widgets.Layout(width="190px")
        self.timeframe = widgets.Dropdown(options=list(TIMEFRAMES), value="5m", description="timeframe", layout=w)
        self.formation = widgets.Text(value="30D", description="formation", layout=w)
        self.formation.add_class("ql-research-formation")
        self.trading = widgets.Text(value="7D", description="trading", layout=w)
        self.trading.add_class("ql-research-trading")
        self.entry = widgets.FloatText(value=2.0, step=0.1, description="entry |z|", layout=w)
        self.exit = widgets.FloatText(value=0.5, step=0.1, description="exit |z|", layout=w)
        self.stop = widgets.FloatText(value=4.0, step=0.1, description="stop |z|", layout=w)
        self.n_trials = widgets.IntText(value=1, description="configs tried", layout=w,
                                        style={"description_width": "initial"})
        self.n_trials.add_class("ql-research-trials")
        self.run_button = widgets.Button(description="Run walk-forward", icon="play", button_style="primary",
                                         layout=widgets.Layout(width="170px"))
        self.run_button.add_class("ql-run-research")
        self.cancel_button = widgets.Button(description="Cancel", icon="stop", disabled=True,
                                            layout=widgets.Layout(width="100px"))
        self.cancel_button.add_class("ql-cancel-research")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, bar_style="info",
                                            layout=widgets.Layout(width="300px", display="none"))
        self.progress.add_class("ql-research-progress")
        self.defaults_note = widgets.HTML(note_html("Looking at the history in the store…" if suggest else ""))
        self.defaults_note.add_class("ql-research-defaults")
        self.status = widgets.HTML(note_html("Press “Run walk-forward”: each fold screens every pair on its "
                                             "formation window, trades the selected ones on the next "
                                             "window, out of sample."))
        self.status.add_class("ql-research-status")
        self.dsr = widgets.HTML()
        self.dsr.add_class("ql-research-dsr")
        self.stats = widgets.HTML(layout=widgets.Layout(min_width="300px"))
        self.stats.add_class("ql-research-stats")
        self.equity_chart = TimeChart("walk-forward portfolio equity (out of sample)", ["equity"],
                                      y_label="equity", height="240px", colors=["#1a7f37"], live=False)
        self.equity_chart.add_class("ql-research-equity")
        self.folds = widgets.HTML()
        self.folds.add_class("ql-research-folds")
        self.download = DownloadLink()
        self.download.add_class("ql-research-report")
        self._running = False
        self._cancel = threading.Event()
        self._touched = False   # the user changed a window: defaults no longer replace it
        self._setting = False
        form = widgets.HBox([
            self.symbols,
            widgets.VBox([self.timeframe, self.formation, self.trading]),
            widgets.VBox([self.entry, self.exit, self.stop]),
            widgets.VBox([self.n_trials, widgets.HBox([self.run_button, self.cancel_button])]),
        ])
        spec_note = note_html("Hedge: static log-log OLS fitted on each formation window, z over 60 bars; "
                              "fees, perpetual fee and borrow from the left column, funding from the store; "
                              "capital 10,000 split equally across a fold's pairs.")
        super().__init__([form, self.defaults_note, widgets.HTML(spec_note),
                          widgets.HBox([self.progress, self.status]), self.dsr,
                          widgets.HBox([self.stats, widgets.VBox([self.equity_chart],
                                                                 layout=widgets.Layout(flex="1 1 auto",
                                                                                       min_width="420px"))],
                                       layout=widgets.Layout(width="100%")),
                          self.download, self.folds], poster=poster, css="ql-research")
        self.run_button.on_click(self.guarded("Research", lambda _b: self.run()))
        self.cancel_button.on_click(self.guarded("Research", lambda _b: self.cancel()))
        for wdg in (self.timeframe, self.formation, self.trading):
            wdg.observe(self._on_touch, "value")
        if suggest:
            self.suggest_defaults()

    # ---------------------------------------------------------------- defaults
    def _on_touch(self, _change) -> None:
        if not self._setting:
            self._touched = True

    def suggest_defaults(self) -> None:
        """Measure the history of the selected symbols in the store (on a thread) and, unless
        the user has changed a window already, fill in :func:`suggest_windows`' defaults."""
        syms = list(self.symbols.value)

        def done(span: pd.Timedelta) -> None:
            w = suggest_windows(span)
            self.suggested = w
            if not self._touched:
                self._setting = True
                try:
                    self.timeframe.value, self.formation.value, self.trading.value = w.timeframe, w.formation, w.trading
                finally:
                    self._setting = False
            if w.fits:
                text = (f"History in the store common to the {len(syms)} symbols: {duration_text(span)}. "
                        f"Defaults scaled to it: formation {w.formation}, trading {w.trading} on "
                        f"{w.timeframe} bars ({w.folds} folds). Longer windows need more history.")
                self.defaults_note.value = note_html(text)
            else:
                self.defaults_note.value = note_html(
                    f"History in the store common to the {len(syms)} symbols: {duration_text(span)}: too "
                    f"short for a walk-forward yet (the shortest windows, formation {w.formation} and "
                    f"trading {w.trading}, need {duration_text(pd.Timedelta(w.formation) + pd.Timedelta(w.trading))}). "
                    "Wait for more history.", AMBER)

        self.in_background("Looking at the history", lambda: history_span(self.lab.store_path, syms), done)

    # ---------------------------------------------------------------- run
    def inputs(self) -> ResearchInputs:
        """The controls' values, checked (a ValueError naming the control otherwise)."""
        return check_inputs(self.symbols.value, self.timeframe.value, self.formation.value,
                            self.trading.value, self.entry.value, self.exit.value, self.stop.value,
                            self.n_trials.value)

    def fee_inputs(self) -> tuple[float, float, float]:
        """The left column's (fee bp, perp fee bp, borrow %/yr), read on the loop."""
        c = self.controls
        return float(c.fee.value), float(c.perp_fee.value), float(c.borrow.value)

    def _costs(self, symbols, fees: tuple[float, float, float]) -> tuple[Any, str]:
        """The left column's costs with each perpetual's funding from the store."""
        from quantlab.store import TickStore
        from quantlab.ui.panels import funding_note, is_perp

        funding: dict = {}
        if any(map(is_perp, symbols)):
            with TickStore(self.lab.store_path) as st:
                funding = store_funding(st, symbols)
        return pair_costs(*fees, funding), funding_note(funding)

    def compute(self, p: ResearchInputs, on_fold=None,
                fees: tuple[float, float, float] | None = None) -> tuple[Any, str, list[str], str]:
        """(WalkForwardResult, HTML report, warnings in words, costs note) for ``p`` and
        ``fees`` (default :meth:`fee_inputs`); runs on the calling thread. Raises
        InsufficientDataError when the history is too short for the windows."""
        import quantlab
        from quantlab.research import walk_forward

        closes = quantlab.closes(self.lab.store_path, list(p.symbols), p.timeframe)
        full = closes.dropna()
        span = full.index[-1] - full.index[0] if len(full) > 1 else pd.Timedelta(0)
        need = pd.Timedelta(p.formation) + pd.Timedelta(p.trading)
        if span < need:
            w = suggest_windows(span)
            hint = (f"shorten the windows (this history fits formation {w.formation}, trading "
                    f"{w.trading} on {w.timeframe} bars) or wait for more history" if w.fits
                    else "wait for more history")
            raise InsufficientDataError(
                f"History too short: the store holds {duration_text(span)} of {p.timeframe} bars with "
                f"every one of {', '.join(p.symbols)}; formation {p.formation} + trading {p.trading} "
                f"need {duration_text(need)}: {hint}")
        costs, cost_note = self._costs(p.symbols, self.fee_inputs() if fees is None else fees)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = walk_forward(closes, p.formation, p.trading, entry=p.entry, exit=p.exit, stop=p.stop,
                               costs=costs, n_trials=p.n_trials, progress=False, on_fold=on_fold)
        said = list(dict.fromkeys(str(w.message) for w in caught
                                  if not issubclass(w.category, DeprecationWarning)))
        with tempfile.TemporaryDirectory() as d:
            report = res.to_html(Path(d) / "report.html").read_text(encoding="utf-8")
        return res, report, said, cost_note

    def run(self) -> None:
        """Start a walk-forward with the controls' settings (returns at once)."""
        if self._running:
            return
        p = self.inputs()
        fees = self.fee_inputs()  # widgets are read here, on the loop, not on the worker
        self.clear_error()
        self._running = True
        cancel = self._cancel = threading.Event()
        self.run_button.disabled = True
        self.cancel_button.disabled = False
        self.progress.layout.display = None
        self.progress.bar_style = "info"
        self.progress.value, self.progress.max = 0, 1
        self.status.value = note_html(f"Reading the {p.timeframe} closes of {', '.join(p.symbols)} from the store…")
        t0 = time.monotonic()

        def on_fold(done: int, total: int) -> None:  # on the worker thread
            if cancel.is_set():
                raise RunCancelled(done, total)
            self.post(self._show_progress, done, total)

        def work():
            try:
                return self.compute(p, on_fold, fees)
            except RunCancelled as stopped:
                return stopped

        def done(out) -> None:
            if isinstance(out, RunCancelled):
                self.progress.bar_style = "warning"
                self.status.value = note_html(f"Cancelled after fold {out.done} of {out.total}: "
                                              "nothing is shown for a partial run.", AMBER)
                return
            self._show(p, *out, seconds=time.monotonic() - t0)

        def finish() -> None:
            self._running = False
            self.run_button.disabled = False
            self.cancel_button.disabled = True
            if self.progress.bar_style != "warning":  # a cancelled run leaves it where it stopped
                self.progress.layout.display = "none"

        self.in_background("Research", work, done, finish)

    def cancel(self) -> None:
        """Stop the run under way when its current fold is done."""
        if not self._running:
            return
        self._cancel.set()
        self.cancel_button.disabled = True
        self.status.value = note_html("Cancelling: the run stops when the fold under way is done…", AMBER)

    def _show_progress(self, done: int, total: int) -> None:
        if self._cancel.is_set():
            return
        self.progress.max = max(1, total)
        self.progress.value = done
        self.status.value = note_html(f"Fold {done} of {total} done…" if done else
                                      f"{total} folds to run…")

    def _show(self, p: ResearchInputs, res, report: str, said: list[str], cost_note: str, *,
              seconds: float) -> None:
        self.result, self.report_html, self.warnings = res, report, said
        q = common_quote(p.symbols)
        eq = res.equity
        self.equity_chart.axis_y.label = f"equity ({q})"
        self.equity_chart.update(eq.index, [eq.to_numpy()], force=True)
        self.stats.value = stats_html(res.stats, q)
        self.dsr.value = deflated_sharpe_html(res.stats.get("deflated_sharpe"), p.n_trials)
        self.folds.value = folds_html(res)
        stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%SZ")
        self.download.set_csv(f"walk_forward_{stamp}.html", report, None, mime="text/html")
        notes = [*said, *res.notes]
        extra = (f" · {len(notes)} note{'s' if len(notes) != 1 else ''}: " + "; ".join(notes[:3])
                 + (" …" if len(notes) > 3 else "")) if notes else ""
        self.status.value = note_html(
            f"{len(res.schedule)} folds · {', '.join(p.symbols)} · {p.timeframe} bars "
            f"{_utc(eq.index[0])} → {_utc(eq.index[-1])} UTC · formation {p.formation}, trading "
            f"{p.trading} · entry {p.entry:g} exit {p.exit:g} stop {p.stop:g}"
            f"{' · ' + cost_note if cost_note else ''} · ran in {seconds:.1f} s{extra}", GREEN)
