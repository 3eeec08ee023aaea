"""The dashboard's panels, each usable alone in a notebook::

    from quantlab import Lab
    from quantlab.ui import Controls, MonitorPanel
    lab = Lab(["BTCUSDT", "ETHUSDT"], source="demo").start()
    controls = Controls(lab.symbols)
    monitor = MonitorPanel(lab, controls)
    display(controls, monitor); monitor.refresh()      # the Dashboard refreshes it 2x a second

Every panel is a :class:`~quantlab.ui.base.Panel` (a VBox with an error area): ``refresh()``
pulls the newest data from the ``Lab`` and updates its charts in one batch; long jobs
(backtests, sweeps, screens, CSV files) run on a thread and report back on the kernel loop.
"""

from __future__ import annotations

import collections
import html
import math
import os
import time
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pandas as pd

from quantlab.errors import InsufficientDataError
from quantlab.ui.base import (
    AMBER,
    GREEN,
    GREY,
    RED,
    Panel,
    Poster,
    fmt_bytes,
    fmt_num,
    fmt_pct,
    fmt_price,
    fmt_time,
    price_decimals,
    stats_table_html,
    table_html,
)
from quantlab.ui.charts import PVALUE_BINS, HeatMap, TimeChart
from quantlab.ui.compute import (
    HEDGE_LABELS,
    HEDGE_TIPS,
    analytics_frame,
    controls_spec,
    drawdown,
    pair_tests,
    pair_view,
)
from quantlab.ui.downloads import DownloadLink
from quantlab.ui.toast import AlertToast

TIMEFRAMES = ("1s", "1m", "5m")
_QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR")


def quote_of(symbol: str) -> str:
    """The quote currency (the unit of the price): ``ETHUSDT -> USDT``."""
    for q in _QUOTES:
        if symbol.endswith(q) and len(symbol) > len(q):
            return q
    return ""


def replace_child(box: widgets.Box, child: widgets.Widget) -> None:
    """Show ``child`` as the only content of ``box`` and close what it showed before."""
    old = list(box.children)
    box.children = [child]
    for w in old:
        w.close()


def _default_fee_bps() -> float:
    """The fee control's start value: Binance's spot taker fee, from the backtest's one cost
    model (``quantlab.backtest.costs``; importing it does not load numba)."""
    from quantlab.backtest.costs import DEFAULT_FEES_BPS

    return DEFAULT_FEES_BPS["spot"][1]


def _default_perp_fee_bps() -> float:
    """The perp fee control's start value: Binance's USD-M taker fee (the one cost model)."""
    from quantlab.backtest.costs import DEFAULT_FEES_BPS

    return DEFAULT_FEES_BPS["um"][1]


def is_perp(symbol: str) -> bool:
    """``um:BTCUSDT`` and ``cm:BTCUSD_PERP`` are perpetuals; ``BTCUSDT`` is spot."""
    return ":" in symbol


def store_funding(store, symbols) -> dict[str, pd.DataFrame | None]:
    """The realised funding the store holds for each perpetual of ``symbols`` (the recorder's
    ``funding`` table: ``time`` index, ``funding_rate``, ``mark_price``), None for a perp with
    no funding stored yet (its funding is then not counted, and the backtest says so)."""
    from quantlab.errors import UnknownSymbolError

    out: dict[str, pd.DataFrame | None] = {}
    for sym in symbols:
        if not is_perp(sym):
            continue
        try:
            table = store.read(sym, kind="funding")
        except (UnknownSymbolError, FileNotFoundError, KeyError):
            table = None
        out[sym] = table if table is not None and len(table) else None
    return out


def pair_costs(fee_bps: float, perp_fee_bps: float = 5.0, borrow_pct: float = 0.0,
               funding: dict[str, pd.DataFrame | None] | None = None) -> Any:
    """The left column's cost inputs as one :class:`~quantlab.backtest.Costs`: ``fee_bps`` on
    every spot fill, ``perp_fee_bps`` on every perpetual fill, ``borrow_pct`` %/yr on a short
    spot leg, and each perpetual leg's funding table (from :func:`store_funding`)."""
    from quantlab.backtest.costs import Costs

    if not 0 <= borrow_pct < 1000:
        raise ValueError(f"Borrow: an annual rate in percent in [0, 1000), got {borrow_pct!r}")
    fee, pf = float(fee_bps), float(perp_fee_bps)
    return Costs(fees={"spot": (fee, fee), "um": (pf, pf), "cm": (pf, pf)},
                 borrow_annual=float(borrow_pct) / 100, funding=funding or {})


def funding_note(funding: dict[str, pd.DataFrame | None]) -> str:
    """``funding um:BTCUSDT 900 events`` / ``funding of um:BTCUSDT not counted (none stored yet)``."""
    parts = [f"funding {sym}: {len(t):,} events stored" if t is not None
             else f"funding of {sym} not counted (none stored yet)" for sym, t in funding.items()]
    return " · ".join(parts)


def note_html(text: str, color: str = GREY) -> str:
    return f"<div style='color:{color};padding:4px 0'>{html.escape(text)}</div>"


# --------------------------------------------------------------------------- controls

class Controls(widgets.VBox):
    """The left column: pair, timeframe, rolling window, hedge method, backtest thresholds."""

    def __init__(self, symbols: list[str], *, y: str | None = None, x: str | None = None,
                 timeframe: str = "1s", window: int = 300) -> None:
        if len(symbols) < 2:
            raise ValueError(f"symbols: a pair needs at least two symbols, got {symbols!r}")
        if timeframe not in TIMEFRAMES:
            raise ValueError(f"timeframe: {timeframe!r} is not one of {', '.join(TIMEFRAMES)}")
        wide = {"description_width": "70px"}
        lay = widgets.Layout(width="210px")
        self.y = widgets.Dropdown(options=symbols, value=y or symbols[1], description="Pair",
                                  style=wide, layout=lay)
        self.x = widgets.Dropdown(options=symbols, value=x or symbols[0], description="vs",
                                  style=wide, layout=lay)
        self.y.add_class("ql-pair-y")
        self.x.add_class("ql-pair-x")
        self.timeframe = widgets.ToggleButtons(options=list(TIMEFRAMES), value=timeframe,
                                               description="Timeframe", style={**wide, "button_width": "42px"})
        self.timeframe.add_class("ql-timeframe")
        self.window = widgets.BoundedIntText(value=window, min=10, max=20_000, step=10,
                                             description="Window", style=wide, layout=lay,
                                             tooltip="rolling window, in bars")
        self.window.add_class("ql-window")
        self.hedge = widgets.ToggleButtons(options=list(HEDGE_LABELS), value="OLS", description="Hedge",
                                           tooltips=list(HEDGE_TIPS),
                                           style={**wide, "button_width": "74px"})
        self.hedge.add_class("ql-hedge")
        self.entry = widgets.BoundedFloatText(value=2.0, min=0.1, max=20, step=0.1, description="Entry z",
                                              style=wide, layout=lay)
        self.exit = widgets.BoundedFloatText(value=0.5, min=0.0, max=20, step=0.1, description="Exit z",
                                             style=wide, layout=lay)
        self.stop = widgets.BoundedFloatText(value=4.0, min=0.2, max=50, step=0.1, description="Stop z",
                                             style=wide, layout=lay)
        self.fee = widgets.BoundedFloatText(value=_default_fee_bps(), min=0.0, max=500, step=0.5,
                                            description="Fee (bp)",
                                            style=wide, layout=lay)
        self.fee.add_class("ql-fee")
        # perpetual legs: their own fee; a short spot leg: borrow interest (see Costs)
        self.perp_fee = widgets.BoundedFloatText(value=_default_perp_fee_bps(), min=0.0, max=500, step=0.5,
                                                 description="Perp fee", style=wide, layout=lay)
        self.perp_fee.add_class("ql-perp-fee")
        self.borrow = widgets.BoundedFloatText(value=0.0, min=0.0, max=999, step=0.5,
                                               description="Borrow %", style=wide, layout=lay)
        self.borrow.add_class("ql-borrow")
        self.run_backtest = widgets.Button(description="Run backtest", button_style="primary",
                                           icon="play", layout=widgets.Layout(width="200px"))
        self.run_backtest.add_class("ql-run-backtest")
        unit = widgets.HTML(f"<span style='color:{GREY};font-size:12px'>window in bars of the timeframe; "
                            "fees per fill in basis points (spot, perp); borrow on a short spot leg, "
                            "%/yr; a perp leg pays its stored funding</span>")
        super().__init__([self.y, self.x, self.timeframe, self.window, self.hedge, self.entry,
                          self.exit, self.stop, self.fee, self.perp_fee, self.borrow, self.run_backtest, unit],
                         layout=widgets.Layout(width="240px", min_width="240px", padding="4px"))
        self.add_class("ql-controls")

    @property
    def pair(self) -> tuple[str, str]:
        y, x = self.y.value, self.x.value
        if y == x:
            raise ValueError(f"Pick two different symbols for the pair (both are {y})")
        return y, x

    @property
    def hedge_method(self) -> str:
        return HEDGE_LABELS[self.hedge.value]

    def spec(self):
        """The ``quantlab.PairSpec`` of these controls: what the Pair tab shows, the backtest
        trades, the alert form watches and the analytics CSV holds."""
        return controls_spec(int(self.window.value), self.hedge_method)

    def thresholds(self) -> dict[str, float]:
        entry, exit_, stop = float(self.entry.value), float(self.exit.value), float(self.stop.value)
        if not 0 <= exit_ < entry < stop:
            raise ValueError(f"Thresholds must satisfy 0 <= exit < entry < stop; got exit {exit_:g}, "
                             f"entry {entry:g}, stop {stop:g}")
        return {"entry": entry, "exit": exit_, "stop": stop}

    def bands(self) -> dict[str, float]:
        try:
            t = self.thresholds()
        except ValueError:
            return {}
        return {"+stop": t["stop"], "+entry": t["entry"], "+exit": t["exit"],
                "-exit": -t["exit"], "-entry": -t["entry"], "-stop": -t["stop"]}

    def observe_all(self, callback) -> None:
        for w in (self.y, self.x, self.timeframe, self.window, self.hedge, self.entry, self.exit, self.stop):
            w.observe(callback, "value")


# --------------------------------------------------------------------------- status bar

STATE_COLORS = {"live": GREEN, "connecting": AMBER, "reconnecting": AMBER, "unreachable": RED,
                "stopped": RED, "failed": RED}


def store_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


class StatusBar(Panel):
    """Source (LIVE Binance in green, DEMO in amber), connection state and reason, ticks/s,
    latency, last trade time (UTC), gaps repaired and store size. When Binance cannot be
    reached it says so and offers a one-click switch to the demo source."""

    def __init__(self, lab, *, on_switch_to_demo=None, poster: Poster | None = None) -> None:
        self.lab = lab
        self.html = widgets.HTML()
        self.html.add_class("ql-status")
        self.switch = widgets.Button(description="Switch to demo data", button_style="warning",
                                     icon="exchange", layout=widgets.Layout(display="none", width="200px"))
        self.switch.add_class("ql-switch-demo")
        self.message = widgets.HTML()
        self._on_switch = on_switch_to_demo
        self._size = (0.0, 0)
        super().__init__([widgets.HBox([self.html]), widgets.HBox([self.message, self.switch])],
                         poster=poster, css="ql-statusbar")
        self.switch.on_click(self.guarded("Switching to demo data", lambda _b: self._switch()))
        self.state = "connecting"

    def _switch(self) -> None:
        if self._on_switch is None:
            raise RuntimeError("no demo source is available in this view; start `quantlab app --demo`")
        self.message.value = note_html("Starting the demo source…", AMBER)
        self._on_switch()

    def _store_size(self) -> int:
        t, size = self._size
        if time.monotonic() - t > 10:
            size = store_size(self.lab.store_path)
            self._size = (time.monotonic(), size)
        return size

    def refresh(self) -> None:
        st = self.lab.status()
        state = str(st.get("state") or "connecting")
        self.state = state
        source = self.lab.source
        label = self.lab.source_label
        src_color = AMBER if source == "demo" else GREEN if source == "binance" else GREY
        prices = self.lab.prices()
        last_t = prices["time"].max() if len(prices) and prices["time"].notna().any() else None
        lat = (st.get("latency_ms") or {}).get("exchange_to_recv") or {}
        p99 = lat.get("p99")
        reason = st.get("reason") or ""
        color = STATE_COLORS.get(state, GREY)
        state_txt = state if not (reason and state in ("reconnecting", "unreachable", "failed")) \
            else f"{state}: {reason}"
        items = [
            "<b style='font-size:15px'>quantlab</b>",
            f"SOURCE: <b style='color:{src_color}'>{html.escape(label)}</b>",
            f"<b style='color:{color}'>● {html.escape(state_txt)}</b>",
            f"ticks/s <b>{fmt_num(st.get('ticks_per_s', 0), 0)}</b>",
            f"latency p99 <b>{fmt_num(p99, 0, 'ms') if p99 is not None else '–'}</b>",
            f"last trade <b class='ql-last-trade'>{fmt_time(last_t)}</b>",
            f"gaps repaired <b>{int(st.get('gaps_repaired') or 0)}</b>",
            f"store <b>{fmt_bytes(self._store_size())}</b>",
        ]
        err = st.get("follower_error")
        if err:
            items.append(f"<span style='color:{RED}'>{html.escape(str(err))}</span>")
        value = ("<div style='display:flex;flex-wrap:wrap;gap:6px 18px;align-items:baseline;"
                 "padding:4px 8px;border-bottom:1px solid #ddd'>"
                 + "".join(f"<span>{i}</span>" for i in items) + "</div>")
        if self.html.value != value:
            self.html.value = value
        down = source == "binance" and state in ("unreachable", "stopped", "failed")
        if down:
            msg = ("Live Binance cannot be reached"
                   + (f" ({reason})" if reason else "")
                   + ". The recorder keeps retrying; you can look at the simulated demo market meanwhile.")
            self.message.value = note_html(msg, RED)
            self.switch.layout.display = None
        elif self.switch.layout.display != "none":
            self.switch.layout.display = "none"
            self.message.value = ""


# --------------------------------------------------------------------------- monitor

def funding_cells(rate: float, next_time: pd.Timestamp | None) -> list[str]:
    """A perp's funding rate as Binance shows it (``0.0100 %``, per funding interval) and the
    next funding time, 24-hour UTC with the time left (``08:00:00 UTC (in 2 h 14 m)``)."""
    if not math.isfinite(rate):
        return ["waiting for mark price", "–"]
    if next_time is None:
        return [f"{rate * 100:.4f} %", "–"]
    left = (next_time - pd.Timestamp.now(tz="UTC")).total_seconds()
    span = (f"{int(left // 3600)} h {int(left % 3600 // 60)} m" if left >= 3600 else
            f"{int(left // 60)} m {int(left % 60)} s" if left >= 60 else f"{max(0, int(left))} s")
    return [f"{rate * 100:.4f} %", f"{next_time.tz_convert('UTC'):%H:%M:%S} UTC (in {span})"]


class MonitorPanel(Panel):
    """A price table (symbol, last, 24 h %, ticks/s, ticks) and a live chart per pair leg."""

    def __init__(self, lab, controls: Controls, *, poster: Poster | None = None,
                 max_points: int = 2_000) -> None:
        self.lab, self.controls = lab, controls
        self.table = widgets.HTML()
        self.table.add_class("ql-price-table")
        self.charts = [TimeChart("", ["close"], y_label="price", max_points=max_points),
                       TimeChart("", ["close"], y_label="price", max_points=max_points)]
        self._decimals: dict[str, int] = {}
        self._stats_at = 0.0
        self._stats: pd.DataFrame | None = None
        self._stat_rows: dict[str, dict] = {}
        self._funding: dict[str, tuple[float, pd.Timestamp | None]] = {}
        super().__init__([self.table, *self.charts], poster=poster, css="ql-monitor")

    def funding(self) -> dict[str, tuple[float, pd.Timestamp | None]]:
        """Per perpetual: ``(funding rate, next funding time UTC)`` from the newest row of the
        store's ``markprice`` table (the recorder writes one a second from ``@markPrice@1s``);
        ``(nan, None)`` while none is stored."""
        from quantlab.errors import UnknownSymbolError

        out = {}
        since = pd.Timestamp.now(tz="UTC") - pd.Timedelta(minutes=10)
        for sym in self.lab.symbols:
            if not is_perp(sym):
                continue
            try:
                marks = self.lab.store.read(sym, kind="markprice", start=since)
            except (UnknownSymbolError, FileNotFoundError, KeyError):
                marks = None
            if marks is None or not len(marks):
                out[sym] = (math.nan, None)
                continue
            last = marks.iloc[-1]
            nxt = last["next_funding_time"]
            out[sym] = (float(last["funding_rate"]), None if pd.isna(nxt) or pd.Timestamp(nxt).value <= 0
                        else pd.Timestamp(nxt))
        return out

    def decimals(self, sym: str) -> int:
        """The symbol's price decimals (its tick size), read once from its last trades."""
        if sym not in self._decimals:
            prices = self.lab.ticks(sym, last=500)["price"].to_numpy()
            if len(prices) < 50:
                return 2
            self._decimals[sym] = price_decimals(prices)
        return self._decimals[sym]

    def refresh(self, force: bool = False) -> None:
        for _ in self.refresh_steps(force):
            pass

    def refresh_steps(self, force: bool = False):
        """:meth:`refresh` in steps (the stats, the table, each chart): the dashboard lets the
        kernel's loop run between them, so no step holds it for a whole refresh."""
        now = time.monotonic()
        if self._stats is None or now - self._stats_at > 2.0 or force:
            self._stats = self.lab.stats()
            # plain dicts: a pandas lookup per cell was most of a refresh on the kernel's loop
            self._stat_rows = dict(zip(self._stats.index, self._stats.to_dict("records"), strict=True))
            self._funding = self.funding()
            self._stats_at = now
            yield
        stats = self._stat_rows
        prices = self.lab.prices()
        price, traded = prices["price"].to_dict(), prices["time"].to_dict()
        rows = []
        perps = any(map(is_perp, self.lab.symbols))
        for sym in self.lab.symbols:
            st = stats.get(sym, {})
            last = price.get(sym, float("nan"))
            d = self.decimals(sym)
            row = [sym, f"{fmt_price(last, d)} {quote_of(sym)}", fmt_pct(st.get("change_24h_pct")),
                   fmt_num(st.get("ticks_per_s"), 1), f"{int(st.get('ticks', 0) or 0):,}",
                   fmt_time(traded.get(sym))]
            if perps:
                row += funding_cells(*self._funding[sym]) if sym in self._funding else ["", ""]
            rows.append(row)
        head = ["symbol", "last", "24h", "ticks/s", "ticks in memory", "last trade"]
        value = table_html(rows, head + (["funding rate", "next funding"] if perps else []), css="ql-prices")
        if self.table.value != value:
            self.table.value = value
        tf = self.controls.timeframe.value
        for chart, sym in zip(self.charts, (self.controls.y.value, self.controls.x.value), strict=True):
            yield
            if getattr(chart, "shows", None) != sym:  # a read-out of another symbol would mislead
                chart.shows = sym
                chart.readout.value = ""
            times, close = self.lab.bar_closes(sym, tf)
            d = self.decimals(sym)
            q = quote_of(sym)
            if chart.y_format != f",.{d}f":
                chart.y_format = f",.{d}f"
                chart.axis_y.tick_format = chart.y_format
            last = fmt_price(close[-1], d) + f" {q}" if len(close) else "no trades yet"
            chart.title = f"{sym} · {tf} close · {last}"
            chart.axis_y.label = f"price ({q})" if q else "price"
            chart.update(times, [close], force=force)


# --------------------------------------------------------------------------- pair

def _tests_html(t, y: str, x: str, tf: str) -> str:
    comp = t.comparison
    rows = []
    for method, r in comp.iterrows():
        name = {"ols": "OLS", "kalman": "Kalman (last)", "huber": "Huber", "theilsen": "Theil-Sen"}.get(method, method)
        p = (fmt_num(r["coint_pvalue"], 4) if method != "kalman"
             else f"n/a (z std {fmt_num(r['z_std'], 2)})")
        rows.append([name, fmt_num(r["beta"], 6), fmt_num(r["alpha"], 4), fmt_num(r["spread_std"], 4),
                     fmt_num(r["coint_stat"], 2), p, fmt_num(r["half_life"], 1, "bars")])
    table = table_html(rows, ["method", "beta (raw prices)", "alpha", "spread std", "EG stat",
                              "EG p (N=2)", "half-life"], css="ql-hedge-table")
    eg = t.eg
    lines = [
        f"Engle-Granger {eg.y_on_x.y_name} ~ {eg.y_on_x.x_name}: stat {fmt_num(eg.y_on_x.stat, 3)}, "
        f"p {fmt_num(eg.y_on_x.pvalue, 4)}",
        f"Engle-Granger {eg.x_on_y.y_name} ~ {eg.x_on_y.x_name}: stat {fmt_num(eg.x_on_y.stat, 3)}, "
        f"p {fmt_num(eg.x_on_y.pvalue, 4)}",
        f"Cointegrated, either direction: p {fmt_num(eg.pvalue, 4)} (min(1, 2·min p): corrected for "
        f"picking the better direction)",
        f"Half-life of mean reversion: {fmt_num(t.half_life, 1, 'bars')} of {tf}",
        "p-values: Engle-Granger (MacKinnon 2010, two series), which accounts for the estimated hedge; "
        "Kalman innovations are white by construction and are not tested",
    ]
    body = "".join(f"<li>{html.escape(s)}</li>" for s in lines)
    return (f"<div><b>{html.escape(y)} vs {html.escape(x)}</b> · last {t.nobs:,} bars of {tf}"
            f"{table}<ul style='margin:4px 0'>{body}</ul></div>")


class PairPanel(Panel):
    """z-score with entry/exit/stop bands, the spread, rolling correlation of returns, the
    hedge-ratio comparison (OLS, Kalman, Huber, Theil-Sen) and cointegration tests."""

    def __init__(self, lab, controls: Controls, *, poster: Poster | None = None,
                 max_points: int = 2_000, tests_every_s: float = 15.0) -> None:
        self.lab, self.controls = lab, controls
        self.headline = widgets.HTML()
        self.headline.add_class("ql-pair-headline")
        self.z_chart = TimeChart("z-score of the spread", ["z"], y_label="z (σ)", max_points=max_points,
                                 colors=["#6f42c1"], bands=controls.bands())
        self.spread_chart = TimeChart("spread", ["spread"], y_label="spread", max_points=max_points,
                                      height="200px", colors=["#1f77b4"])
        self.corr_chart = TimeChart("rolling correlation of 1-bar log returns", ["corr"], y_label="ρ",
                                    max_points=max_points, height="180px", colors=["#2ca02c"])
        self.tests = widgets.HTML(note_html("Cointegration tests appear once there are enough bars."))
        self.tests.add_class("ql-pair-tests")
        self.view = None
        self.tests_every_s = tests_every_s
        self._tests_at = -1e9
        self._tests_key = None
        self._tests_running = False
        super().__init__([self.headline, self.z_chart, self.spread_chart, self.corr_chart, self.tests],
                         poster=poster, css="ql-pair")

    def compute(self):
        y, x = self.controls.pair
        tf = self.controls.timeframe.value
        pair = self.lab.pair(y, x, tf)
        return pair_view(pair, self.controls.spec()), pair

    def refresh(self, force: bool = False) -> None:
        try:
            view, pair = self.compute()
        except InsufficientDataError as exc:
            self.headline.value = note_html(str(exc), AMBER)
            return
        self.view = view
        self.clear_error()
        f = view.frame
        last = view.last
        tf = self.controls.timeframe.value
        self.headline.value = (
            f"<div style='padding:4px 0'><b>{html.escape(view.y)}</b> − β·<b>{html.escape(view.x)}</b> · "
            f"{tf} bars · {html.escape(view.spec.label)} · "
            f"β = {fmt_num(last['beta'], 6)} ({'log-log' if view.spec.prices == 'log' else 'raw prices'}) · z = <b>{fmt_num(last['z'], 2)}</b> · "
            f"ρ = {fmt_num(last['corr'], 3)} · as of {fmt_time(f.index[-1])}</div>")
        self.z_chart.set_bands(self.controls.bands())
        self.z_chart.update(f.index, [f["z"].to_numpy()], force=force)
        self.spread_chart.axis_y.label = f"spread ({quote_of(view.y) or 'price units'})"
        self.spread_chart.update(f.index, [f["spread"].to_numpy()], force=force)
        self.corr_chart.update(f.index, [f["corr"].to_numpy()], force=force)
        key = (view.y, view.x, tf)
        if not self._tests_running and (key != self._tests_key
                                        or time.monotonic() - self._tests_at > self.tests_every_s):
            self._run_tests(pair, key)

    def _run_tests(self, pair: pd.DataFrame, key) -> None:
        self._tests_running = True
        self._tests_at = time.monotonic()
        self._tests_key = key

        def done(t) -> None:
            self.tests.value = _tests_html(t, key[0], key[1], key[2])

        def finish() -> None:
            self._tests_running = False

        self.in_background("Cointegration tests", lambda: pair_tests(pair), done, finish)


# --------------------------------------------------------------------------- backtest

_METRICS = (
    ("total_return", "total return", "pct"), ("cagr", "CAGR", "pct"), ("sharpe", "Sharpe (annual)", "num"),
    ("sortino", "Sortino (annual)", "num"), ("max_drawdown", "max drawdown", "pct"),
    ("max_drawdown_duration", "max drawdown duration", "bars"), ("calmar", "Calmar", "num"),
    ("n_trades", "trades", "int"), ("win_rate", "win rate", "pct"), ("profit_factor", "profit factor", "num"),
    ("expectancy", "expectancy per trade", "money"), ("avg_holding", "average holding", "bars"),
    ("exposure", "exposure", "pct"), ("fees", "fees paid", "money"), ("slippage", "slippage", "money"),
    ("borrow", "borrow paid", "money"), ("funding", "funding paid (− received)", "money"),
    ("final_equity", "final equity", "money"),
)


def metrics_html(stats: dict, quote: str) -> str:
    """The Backtest tab's metrics table."""
    return stats_table_html(stats, _METRICS, quote, css="ql-metrics")


def trades_html(trades: pd.DataFrame, quote: str, limit: int = 20) -> str:
    if not len(trades):
        return note_html("No trades: the z-score never crossed the entry band.")
    shown = trades.tail(limit).iloc[::-1]
    rows = [[fmt_time(r.entry_time).replace(" UTC", ""), fmt_time(r.exit_time).replace(" UTC", ""),
             "long spread" if r.side > 0 else "short spread", fmt_num(r.entry_z, 2), fmt_num(r.exit_z, 2),
             r.reason, fmt_num(r.pnl, 2), fmt_num(r.fees, 2)] for r in shown.itertuples()]
    head = f"<div style='padding:4px 0'><b>Trades</b> (newest {len(shown)} of {len(trades):,}; times UTC)</div>"
    return head + table_html(rows, ["entry", "exit", "side", "entry z", "exit z", "reason",
                                    f"P&L ({quote})", f"fees ({quote})"], css="ql-trades", align_right_from=3)


def _float_list(text: str, name: str) -> list[float]:
    try:
        vals = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{name}: write numbers separated by commas, e.g. 1.5, 2, 2.5 (got {text!r})") from None
    if not vals:
        raise ValueError(f"{name}: give at least one number")
    return vals


class BacktestPanel(Panel):
    """Runs :func:`quantlab.backtest.run` on the current pair in a thread: equity and drawdown
    charts, metrics and the trade list; a parameter sweep draws a heatmap (entry x window)."""

    def __init__(self, lab, controls: Controls, *, poster: Poster | None = None,
                 bind_run_button: bool = True) -> None:
        self.lab, self.controls = lab, controls
        self.result = None
        self.progress = widgets.IntProgress(value=0, min=0, max=1, bar_style="info",
                                            layout=widgets.Layout(width="300px", visibility="hidden"))
        self.status = widgets.HTML(note_html("Press “Run backtest” in the left column."))
        self.status.add_class("ql-backtest-status")
        self.metrics = widgets.HTML(layout=widgets.Layout(min_width="300px"))
        self.metrics.add_class("ql-backtest-metrics")
        self.equity_chart = TimeChart("equity", ["equity"], y_label="equity", height="220px",
                                      colors=["#1a7f37"], live=False)
        self.dd_chart = TimeChart("drawdown", ["drawdown"], y_label="drawdown (%)", height="180px",
                                  colors=["#b42318"], fill=True, live=False)
        self.trades = widgets.HTML()
        self.trades.add_class("ql-trades")
        self.sweep_entries = widgets.Text(value="1.0, 1.5, 2.0, 2.5, 3.0", description="entries",
                                          layout=widgets.Layout(width="260px"))
        self.sweep_windows = widgets.Text(value="60, 120, 300, 600", description="windows",
                                          layout=widgets.Layout(width="260px"))
        self.sweep_metric = widgets.Dropdown(options=[("Sharpe", "sharpe"), ("total return", "total_return"),
                                                      ("max drawdown", "max_drawdown"), ("trades", "n_trades")],
                                             value="sharpe", description="colour", layout=widgets.Layout(width="220px"))
        self.sweep_button = widgets.Button(description="Run sweep", icon="th", layout=widgets.Layout(width="140px"))
        self.sweep_button.add_class("ql-run-sweep")
        self.sweep_progress = widgets.IntProgress(value=0, min=0, max=1, layout=widgets.Layout(width="300px",
                                                                                             visibility="hidden"))
        self.sweep_status = widgets.HTML()
        self.heatmap: HeatMap | None = None   # drawn when a sweep is done (a figure first laid
        self.heat_box = widgets.VBox(layout=widgets.Layout(width="100%"))  # out in a hidden tab keeps a zero size)
        self.sweep_frame: pd.DataFrame | None = None
        self._running = False
        self._sweeping = False
        sweep_box = widgets.VBox([
            widgets.HTML("<b>Parameter sweep</b> (exit, stop, fee and hedge from the left column)"),
            widgets.HBox([self.sweep_entries, self.sweep_windows, self.sweep_metric, self.sweep_button]),
            widgets.HBox([self.sweep_progress, self.sweep_status]), self.heat_box])
        super().__init__([widgets.HBox([self.progress, self.status]),
                          widgets.HBox([self.metrics, widgets.VBox(
                              [self.equity_chart, self.dd_chart],
                              layout=widgets.Layout(flex="1 1 auto", min_width="420px", width="100%"))],
                              layout=widgets.Layout(width="100%")),
                          sweep_box, self.trades], poster=poster, css="ql-backtest")
        if bind_run_button:  # the dashboard binds it itself (it first opens this tab)
            controls.run_backtest.on_click(self.guarded("Backtest", lambda _b: self.run()))
        self.sweep_button.on_click(self.guarded("Sweep", lambda _b: self.sweep()))
        self.sweep_metric.observe(self.guarded("Sweep", lambda _c: self._draw_sweep()), "value")

    def _inputs(self) -> dict[str, Any]:
        y, x = self.controls.pair
        hedge = self.controls.hedge_method
        return {"y": y, "x": x, "tf": self.controls.timeframe.value, "window": int(self.controls.window.value),
                "hedge": hedge, "spec": self.controls.spec(), "fee": float(self.controls.fee.value),
                "perp_fee": float(self.controls.perp_fee.value), "borrow": float(self.controls.borrow.value),
                **self.controls.thresholds()}

    def _costs(self, p: dict[str, Any]):
        """``(Costs, note)`` of the inputs, with each perpetual leg's funding from the store."""
        legs = (p["y"], p["x"])
        funding = store_funding(self.lab.store, legs) if any(map(is_perp, legs)) else {}
        return pair_costs(p["fee"], p["perp_fee"], p["borrow"], funding), funding_note(funding)

    def run(self) -> None:
        """Start a backtest of the current pair and settings (returns at once)."""
        if self._running:
            return
        p = self._inputs()
        self.clear_error()
        self._running = True
        self.controls.run_backtest.disabled = True
        self.progress.layout.visibility = "visible"
        self.progress.bar_style = "info"
        self.progress.value, self.progress.max = 0, 1
        self.status.value = note_html(f"Running the backtest of {p['y']} vs {p['x']} on {p['tf']} bars…")
        t0 = time.monotonic()

        def work():
            from quantlab import backtest

            pair = self.lab.pair(p["y"], p["x"], p["tf"]).dropna()
            if len(pair) < p["window"] + 10:
                raise InsufficientDataError(
                    f"the backtest needs more than {p['window'] + 10} bars of {p['tf']}; {len(pair)} so far "
                    f"(wait, or pick a shorter window or timeframe)")
            yv, xv = pair[p["y"]], pair[p["x"]]
            costs, fund_txt = self._costs(p)
            res = backtest.run(yv, xv, entry=p["entry"], exit=p["exit"], stop=p["stop"], spec=p["spec"],
                               costs=costs)
            return res, p["spec"].label, fund_txt

        def done(out) -> None:
            res, hedge_txt, fund_txt = out
            self.result = res
            q = quote_of(p["y"]) or "quote units"
            eq = res.equity
            self.metrics.value = metrics_html(res.stats, q)
            self.equity_chart.axis_y.label = f"equity ({q})"
            self.equity_chart.update(eq.index, [eq.to_numpy()], force=True)
            dd = drawdown(eq)
            self.dd_chart.update(dd.index, [dd.to_numpy()], force=True)
            self.trades.value = trades_html(res.trades, q)
            self.status.value = note_html(
                f"{p['y']} vs {p['x']} · {p['tf']} bars {fmt_time(eq.index[0])} → {fmt_time(eq.index[-1])} "
                f"({len(eq):,} bars) · hedge {hedge_txt} · entry {p['entry']:g} exit {p['exit']:g} "
                f"stop {p['stop']:g} · {self._fee_text(p)}{' · ' + fund_txt if fund_txt else ''} · "
                f"ran in {time.monotonic() - t0:.2f} s", GREEN)

        def finish() -> None:
            self._running = False
            self.controls.run_backtest.disabled = False
            self.progress.layout.visibility = "hidden"

        self.in_background("Backtest", work, done, finish)

    @staticmethod
    def _fee_text(p: dict[str, Any]) -> str:
        legs = (p["y"], p["x"])
        fees = [f"fee {p['fee']:g} bp"] if not all(map(is_perp, legs)) else []
        if any(map(is_perp, legs)):
            fees.append(f"perp fee {p['perp_fee']:g} bp")
        if not all(map(is_perp, legs)):
            fees.append(f"borrow {p['borrow']:g} %/yr")
        return " · ".join(fees)

    def sweep(self) -> None:
        """Sweep entry x window (in a thread, one window at a time, with progress)."""
        if self._sweeping:
            return
        p = self._inputs()
        entries = _float_list(self.sweep_entries.value, "entries")
        windows = [int(w) for w in _float_list(self.sweep_windows.value, "windows")]
        self.clear_error()
        self._sweeping = True
        self.sweep_button.disabled = True
        self.sweep_progress.max, self.sweep_progress.value = len(windows), 0
        self.sweep_progress.layout.visibility = "visible"
        self.sweep_status.value = note_html(f"Sweeping {len(entries)} entries × {len(windows)} windows…")

        def work():
            import warnings

            from quantlab import backtest

            pair = self.lab.pair(p["y"], p["x"], p["tf"]).dropna()
            yv, xv = pair[p["y"]], pair[p["x"]]
            hedge = p["spec"].label
            costs, _ = self._costs(p)
            frames, skipped = [], []
            for i, w in enumerate(windows):
                if len(pair) < w + 10:
                    skipped.append(w)
                else:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", UserWarning)
                        frames.append(backtest.sweep(yv, xv, entry=entries, exit=[p["exit"]], window=[w],
                                                     stop=[p["stop"]], spec=p["spec"],
                                                     costs=costs,
                                                     progress=False))
                self.post(setattr, self.sweep_progress, "value", i + 1)
            if not frames:
                raise InsufficientDataError(f"every window is longer than the {len(pair)} bars available")
            return pd.concat(frames, ignore_index=True), skipped, hedge

        def done(out) -> None:
            frame, skipped, hedge = out
            self.sweep_frame = frame
            self._draw_sweep()
            extra = f" · skipped windows {skipped} (not enough bars)" if skipped else ""
            self.sweep_status.value = note_html(f"{len(frame)} runs · hedge {hedge}{extra}", GREEN)

        def finish() -> None:
            self._sweeping = False
            self.sweep_button.disabled = False
            self.sweep_progress.layout.visibility = "hidden"

        self.in_background("Sweep", work, done, finish)

    def _draw_sweep(self) -> None:
        if self.sweep_frame is None:
            return
        metric = self.sweep_metric.value
        m = self.sweep_frame.pivot_table(index="entry", columns="window", values=metric, aggfunc="first")
        label = self.sweep_metric.label
        hm = HeatMap(f"{label} by entry z and window", row_label="entry z", column_label="window (bars)",
                     value_label=label, scheme="RdYlGn_r" if metric == "max_drawdown" else "RdYlGn")
        hm.update(m.sort_index())
        replace_child(self.heat_box, hm)
        self.heatmap = hm


# --------------------------------------------------------------------------- alerts

def _tail_cursor(path: Path, nbytes: int = 64_000) -> int:
    """A byte offset at a line start within the last ``nbytes`` of ``path`` (0 for a short or
    missing file): the newest alerts without parsing a long history."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            if size <= nbytes:
                return 0
            f.seek(size - nbytes)
            cut = f.read(nbytes).find(b"\n")
    except OSError:
        return 0
    return 0 if cut < 0 else size - nbytes + cut + 1


class AlertsPanel(Panel):
    """Add and remove alert rules (price above/below, z-score beyond ±k), the fired-alert
    history, and a toast (``toast``, placed by the dashboard) for each new alert."""

    SHOWN = 30  # fired alerts listed
    KINDS = (("price above", "above"), ("price below", "below"), ("z-score of the pair beyond ±k", "zscore"))

    def __init__(self, lab, controls: Controls, *, poster: Poster | None = None, toast_s: float = 8.0) -> None:
        from quantlab.alerts import AlertHistory

        self.lab, self.controls = lab, controls
        self.history = AlertHistory(lab.store_path)
        self.toast_s = toast_s
        self.kind = widgets.Dropdown(options=self.KINDS, value="above", description="when",
                                     layout=widgets.Layout(width="330px"))
        # price rules fire on spot trades and on a perpetual's aggregate trades alike
        syms = list(lab.symbols)
        self.symbol = widgets.Dropdown(options=syms, value=controls.y.value if controls.y.value in syms else syms[0],
                                       description="symbol", layout=widgets.Layout(width="220px"))
        self.level = widgets.FloatText(value=0.0, description="level", layout=widgets.Layout(width="220px"))
        self.level.add_class("ql-alert-level")
        self.k = widgets.BoundedFloatText(value=2.0, min=0.1, max=20, step=0.1, description="k (σ)",
                                          layout=widgets.Layout(width="160px", display="none"))
        self.add = widgets.Button(description="Add alert", button_style="success", icon="bell")
        self.add.add_class("ql-add-alert")
        self.rules_box = widgets.VBox()
        self.rules_box.add_class("ql-rules")
        self.fired = widgets.HTML()
        self.fired.add_class("ql-fired")
        self._fired_sig = False  # the fired table is drawn
        self._fired_cursor = _tail_cursor(self.history.path)
        self._recent: collections.deque = collections.deque(maxlen=self.SHOWN)
        super().__init__([
            widgets.HTML("<b>New rule</b> (evaluated by the recorder, even with no page open)"),
            widgets.HBox([self.kind, self.symbol, self.level, self.k, self.add]),
            widgets.HTML("<b>Rules</b>"), self.rules_box,
            widgets.HTML("<b>Fired alerts</b> (newest first, times UTC)"), self.fired,
        ], poster=poster, css="ql-alerts")
        self.toast = AlertToast(poster=self.poster, toast_s=toast_s)  # the dashboard shows it above the tabs
        self.kind.observe(self.guarded("Alert form", lambda _c: self._on_kind()), "value")
        self.symbol.observe(self.guarded("Alert form", lambda _c: self._prefill()), "value")
        self.add.on_click(self.guarded("Adding the alert", lambda _b: self.add_rule()))
        self._callback = lab.on_alert(self.guarded("New alert", self.on_alert))

    def _on_kind(self) -> None:
        z = self.kind.value == "zscore"
        self.symbol.layout.display = "none" if z else None
        self.level.layout.display = "none" if z else None
        self.k.layout.display = None if z else "none"
        self._prefill()

    def _prefill(self) -> None:
        prices = self.lab.prices()
        sym = self.symbol.value
        if sym in prices.index and math.isfinite(prices.loc[sym, "price"]):
            self.level.value = float(prices.loc[sym, "price"])

    def make_rule(self):
        from quantlab.alerts import PriceRule, ZScoreRule

        kind = self.kind.value
        if kind == "zscore":
            y, x = self.controls.pair
            perps = [s for s in (y, x) if is_perp(s)]
            if perps:
                raise ValueError(f"z-score alerts with a perpetual leg ({', '.join(perps)}) are not evaluated "
                                 "yet (price alerts on a perpetual are); pick a spot pair for a z-score alert")
            tf = self.controls.timeframe.value
            return ZScoreRule(y=y, x=x, k=float(self.k.value), timeframe=tf, spec=self.controls.spec())
        level = float(self.level.value)
        if not level > 0:
            raise ValueError(f"Level must be a positive price in {quote_of(self.symbol.value) or 'quote units'}, "
                             f"got {level:g}")
        return PriceRule(symbol=self.symbol.value, op=kind, level=level)

    def add_rule(self):
        from quantlab.alerts import add_rule

        rule = add_rule(self.lab.store_path, self.make_rule(), symbols=self.lab.symbols)
        self.clear_error()
        self.refresh_rules()
        return rule

    def remove(self, rule_id: str) -> None:
        from quantlab.alerts import remove_rule

        remove_rule(self.lab.store_path, rule_id)
        self.refresh_rules()

    def refresh_rules(self) -> None:
        from quantlab.alerts import list_rules

        rules = list_rules(self.lab.store_path)
        rows = []
        for r in rules:
            b = widgets.Button(description="Remove", icon="trash", layout=widgets.Layout(width="100px"))
            b.add_class("ql-remove-rule")
            b.on_click(self.guarded("Removing the alert", lambda _b, rid=r.id: self.remove(rid)))
            label = widgets.HTML(f"<code>{html.escape(r.id)}</code> {html.escape(r.describe())}")
            label.add_class("ql-rule")
            rows.append(widgets.HBox([b, label]))
        if not rows:
            rows = [widgets.HTML(note_html("No rules yet."))]
        self.rules_box.children = rows

    def refresh(self, force: bool = False) -> None:
        if not self.rules_box.children or force:
            self.refresh_rules()
            if not self.level.value:
                self._prefill()
        self.refresh_fired(force)

    def refresh_fired(self, force: bool = False) -> None:
        """The newest alerts first: only the history's lines written since the last look are
        read (re-reading the whole history at each alert held the kernel's loop)."""
        new, self._fired_cursor = self.history.new_since(self._fired_cursor)
        self._recent.extend(new)
        if not new and self._fired_sig and not force:
            return
        self._fired_sig = True
        if not self._recent:
            self.fired.value = note_html("No alert has fired yet.")
            return
        rows = [[fmt_time(a.time), a.rule_id, a.message, fmt_num(a.value, 4),
                 fmt_num(None if a.latency_s is None else a.latency_s * 1e3, 1, "ms")]
                for a in reversed(self._recent)]
        self.fired.value = table_html(rows, ["time", "rule", "message", "value", "latency"],
                                      css="ql-fired-table", align_right_from=3)

    def on_alert(self, alert: dict) -> None:
        """A new alert (on the loop: ``Lab.on_alert`` is wrapped by :meth:`guarded`): the toast
        and the fired list; the rules list is built when the panel is shown."""
        self.toast.show(alert)
        self.refresh_fired()

    def close_feed(self) -> None:
        self._callback.remove()


# --------------------------------------------------------------------------- screener

class ScreenerPanel(Panel):
    """All-pairs Engle-Granger screen of the Lab's symbols (ranked, BH q-values, heatmap)."""

    def __init__(self, lab, controls: Controls, *, poster: Poster | None = None) -> None:
        self.lab, self.controls = lab, controls
        self.button = widgets.Button(description="Run screen", icon="search", button_style="primary")
        self.button.add_class("ql-run-screen")
        self.status = widgets.HTML(note_html("Screens every pair of the followed symbols on the selected timeframe."))
        self.table = widgets.HTML()
        self.table.add_class("ql-screen-table")
        self.heatmap: HeatMap | None = None
        self.heat_box = widgets.VBox(layout=widgets.Layout(width="100%"))
        self.result: pd.DataFrame | None = None
        self._running = False
        super().__init__([widgets.HBox([self.button, self.status]), self.table, self.heat_box],
                         poster=poster, css="ql-screener")
        self.button.on_click(self.guarded("Screen", lambda _b: self.run()))

    def run(self) -> None:
        if self._running:
            return
        tf = self.controls.timeframe.value
        self._running = True
        self.button.disabled = True
        self.clear_error()
        self.status.value = note_html(f"Screening {len(self.lab.symbols)} symbols on {tf} bars…")
        t0 = time.monotonic()

        def work():
            import warnings

            from quantlab.screen import panel_data, screen

            closes = pd.DataFrame({s: self.lab.bars(s, tf)["close"] for s in self.lab.symbols})
            n = int(closes.notna().sum().min())
            if n < 40:
                raise InsufficientDataError(f"the screen needs at least 40 bars of {tf} for every symbol; "
                                            f"{n} so far")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = screen(closes, timeframe=tf, min_overlap=min(500, max(30, n // 2)), progress=False)
            return res, panel_data(res)

        def done(out) -> None:
            res, (table, heat) = out
            self.result = res
            rows = [[int(r["rank"]), r["y"], r["x"], fmt_num(r["stat"], 2), fmt_num(r["pvalue_pair"], 4),
                     fmt_num(r["qvalue"], 4), "yes" if r["selected"] else "no", fmt_num(r["hedge_ratio"], 4),
                     fmt_num(r["half_life"], 1, "bars"), fmt_num(r["ret_corr"], 3), f"{int(r['n_obs']):,}"]
                    for _, r in table.iterrows()]
            self.table.value = table_html(rows, ["rank", "y", "x", "EG stat", "p (pair)", "q (BH)",
                                                 "selected", "hedge ratio (log)", "half-life", "ret ρ", "bars"],
                                          css="ql-screen", align_right_from=3)
            if min(heat.shape) >= 2:
                from quantlab.screen import pvalue_matrix

                hm = HeatMap("pair q-value (Benjamini-Hochberg over all pairs of Engle-Granger p, "
                             "better direction ×2)", row_label="y", column_label="x",
                             value_label="q-value", bins=PVALUE_BINS)
                hm.update(pvalue_matrix(res, value="qvalue"))
                replace_child(self.heat_box, hm)
                self.heatmap = hm
            self.status.value = note_html(
                f"{len(res)} pairs on {tf} bars · {int(res['selected'].sum())} selected at FDR "
                f"{res.attrs.get('alpha', 0.05):g} · {time.monotonic() - t0:.1f} s", GREEN)

        def finish() -> None:
            self._running = False
            self.button.disabled = False

        self.in_background("Screen", work, done, finish)


# --------------------------------------------------------------------------- export

def _stamp() -> str:
    return pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%SZ")


class ExportPanel(Panel):
    """“Ticks CSV”, “Bars CSV”, “Analytics CSV” and “Trades CSV”: one click makes the file on a
    thread and the browser saves it (times ISO-8601 UTC); a link beside the button saves it again."""

    def __init__(self, lab, controls: Controls, *, backtest_panel=None, poster: Poster | None = None,
                 max_ticks: int = 200_000) -> None:
        """``backtest_panel``: the BacktestPanel whose trades "Trades CSV" exports, or a function
        returning it (or None while there is none)."""
        self.lab, self.controls = lab, controls
        self._backtest_panel = backtest_panel
        self.max_ticks = max_ticks
        self.settle_s = 5.0
        self.buttons: dict[str, widgets.Button] = {}
        self.links: dict[str, DownloadLink] = {}
        rows = []
        for kind, label, what in (("ticks", "Ticks CSV", "trades of the pair's first leg"),
                                  ("bars", "Bars CSV", "OHLCV bars of the first leg, selected timeframe"),
                                  ("analytics", "Analytics CSV", "prices, hedge ratio, spread, z-score, correlation"),
                                  ("trades", "Trades CSV", "the last backtest's trade list")):
            b = widgets.Button(description=label, icon="download", layout=widgets.Layout(width="150px"))
            b.add_class(f"ql-export-{kind}")
            link = DownloadLink()
            link.add_class(f"ql-link-{kind}")
            b.on_click(self.guarded(label, lambda _b, k=kind: self.prepare(k)))
            self.buttons[kind], self.links[kind] = b, link
            rows.append(widgets.HBox([b, widgets.HTML(f"<span style='color:{GREY}'>{html.escape(what)}</span>",
                                                      layout=widgets.Layout(width="330px")), link]))
        super().__init__([widgets.HTML("<b>Export</b> — click a button: the browser saves the CSV file"),
                          *rows], poster=poster, css="ql-export")

    def make(self, kind: str) -> tuple[str, str, int]:
        """(filename, CSV text, rows) for ``kind`` in ticks | bars | analytics | trades."""
        from quantlab.export import bars_csv, frame_csv, ticks_csv

        y, x = self.controls.pair
        tf = self.controls.timeframe.value
        if kind == "ticks":
            f = self.lab.ticks(y, last=self.max_ticks)
            return f"ticks_{y}_{_stamp()}.csv", ticks_csv(f), len(f)
        if kind == "bars":
            f = self.lab.bars(y, tf)
            return f"bars_{y}_{tf}_{_stamp()}.csv", bars_csv(f), len(f)
        if kind == "analytics":
            view = pair_view(self.lab.pair(y, x, tf), self.controls.spec())
            f = analytics_frame(view)
            return f"analytics_{y}_{x}_{tf}_{_stamp()}.csv", frame_csv(f, "time"), len(f)
        if kind == "trades":
            bp = self._backtest_panel() if callable(self._backtest_panel) else self._backtest_panel
            res = bp.result if bp is not None else None
            if res is None:
                raise ValueError("Run a backtest first: the trades CSV holds the last backtest's trades")
            return f"trades_{_stamp()}.csv", frame_csv(res.trades, "trade"), len(res.trades)
        raise ValueError(f"kind: {kind!r} is not ticks, bars, analytics or trades")

    def prepare(self, kind: str) -> None:
        button, link = self.buttons[kind], self.links[kind]
        button.disabled = True
        link.value = note_html("preparing…")
        self.clear_error()

        def done(out) -> None:
            name, text, rows = out
            link.save(name, text, rows)
            loop = self.poster.loop
            if loop is not None and loop.is_running():  # the page has rendered (and clicked) it by then
                loop.call_later(self.settle_s, link.settle)

        def finish() -> None:
            button.disabled = False
            if "preparing" in link.value:
                link.clear()

        self.in_background(button.description, lambda: self.make(kind), done, finish)
