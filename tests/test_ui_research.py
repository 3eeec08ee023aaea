"""The Research tab over a small planted store (75 minutes of the demo market: ETHUSDT and
BTCUSDT cointegrated, the perpetual um:BTCUSDT tracking BTCUSDT with a mean-reverting basis,
XRPUSDT an independent walk), and walk-forward's ``on_fold`` progress.

What the panel shows must be walk-forward's own result; its work runs on a thread and its
widgets change on the kernel loop; Cancel stops the run; bad input is one line in the panel.
"""

from __future__ import annotations

import asyncio
import base64
import html
import re
import threading
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import quantlab
from quantlab.research import walk_forward
from quantlab.store import TickStore
from quantlab.ui import Controls, ResearchPanel
from quantlab.ui.demo import seed_demo_history
from quantlab.ui.panels import pair_costs, store_funding
from quantlab.ui.research import (
    MIN_FORMATION_BARS,
    bar_length,
    duration_text,
    history_span,
    suggest_windows,
)

SYMS = ["ETHUSDT", "BTCUSDT", "XRPUSDT", "um:BTCUSDT"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("research") / "store-demo"
    assert seed_demo_history(path, SYMS, hours=75 / 60, rate=30.0, seed=3) > 0
    return path


@pytest.fixture(scope="module")
def lab(store):
    # the panel needs of a Lab only its symbols and its store
    return SimpleNamespace(symbols=list(SYMS), store_path=store)


def wait_idle(panel, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while panel.jobs:
        assert time.monotonic() < deadline, "the panel's background work did not finish"
        time.sleep(0.02)


def text_of(html_value: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", html_value))


# --------------------------------------------------------------------------- defaults

@pytest.mark.parametrize("span, formation, trading, timeframe, folds", [
    ("2h", "30min", "10min", "1s", 9),        # the demo app's two hours
    ("2h20s", "30min", "10min", "1s", 10),    # ... 20 s later: 9 full folds and a short one
    ("2h20min", "1h", "20min", "1s", 4),
    ("40min", "10min", "5min", "1s", 6),
    ("90D", "30D", "7D", "5m", 9),            # the CLI's windows once there is the history
    ("10D", "3D", "1D", "5m", 7),
    ("1D", "6h", "2h", "1s", 9),             # 6h of 1m bars: fewer than 500
])
def test_suggested_windows_fit_the_history(span, formation, trading, timeframe, folds):
    w = suggest_windows(pd.Timedelta(span))
    assert (w.formation, w.trading, w.timeframe, w.folds) == (formation, trading, timeframe, folds)
    assert pd.Timedelta(w.formation) / bar_length(w.timeframe) >= MIN_FORMATION_BARS
    assert pd.Timedelta(w.formation) + pd.Timedelta(w.trading) <= pd.Timedelta(span)


def test_a_history_too_short_for_any_window_is_said_so():
    w = suggest_windows(pd.Timedelta("8min"))
    assert not w.fits and w.folds == 0


def test_the_panel_fills_in_windows_scaled_to_the_stores_history(lab, store):
    span = history_span(store, SYMS)
    assert pd.Timedelta("74min") < span <= pd.Timedelta("75min")
    panel = ResearchPanel(lab, Controls(SYMS))
    wait_idle(panel)
    w = suggest_windows(span)
    assert (panel.formation.value, panel.trading.value, panel.timeframe.value) == (
        w.formation, w.trading, w.timeframe) == ("30min", "10min", "1s")
    note = text_of(panel.defaults_note.value)
    assert duration_text(span) in note and f"({w.folds} folds)" in note
    assert panel.symbols.value == tuple(SYMS)  # the app's symbols by default


def test_windows_the_user_typed_are_not_replaced_by_the_defaults(lab):
    panel = ResearchPanel(lab, Controls(SYMS), suggest=False)
    panel.formation.value = "20min"
    panel.suggest_defaults()
    wait_idle(panel)
    assert panel.formation.value == "20min" and panel.suggested is not None


# --------------------------------------------------------------------------- a run

def test_the_run_shows_walk_forwards_own_result(lab, store):
    controls = Controls(SYMS)
    panel = ResearchPanel(lab, controls)
    wait_idle(panel)
    panel.n_trials.value = 5
    seen, disabled = [], []

    def on_progress(change):
        seen.append(change["new"])
        disabled.append(panel.run_button.disabled)

    panel.progress.observe(on_progress, "value")
    panel.run_button.click()
    wait_idle(panel)
    assert panel.error.value == ""
    res = panel.result
    n = len(res.schedule)
    assert n == 5 and panel.progress.max == n
    assert seen == list(range(1, n + 1))           # one step per fold, in order
    assert all(disabled)                             # Run stays disabled while it runs
    assert not panel.run_button.disabled and panel.cancel_button.disabled

    # the same walk-forward called directly on quantlab.closes of the store
    with TickStore(store) as st:  # the perpetual's funding, as the Backtest tab charges it
        funding = store_funding(st, SYMS)
    assert funding["um:BTCUSDT"] is not None
    costs = pair_costs(controls.fee.value, controls.perp_fee.value, controls.borrow.value, funding)
    direct = walk_forward(quantlab.closes(store, SYMS, "1s"), "30min", "10min", entry=2.0, exit=0.5,
                          stop=4.0, costs=costs, n_trials=5, progress=False)
    assert len(direct.trades) > 0  # the planted pairs are found and traded
    pd.testing.assert_series_equal(res.equity, direct.equity)
    pd.testing.assert_frame_equal(res.folds, direct.folds)
    assert res.stats["deflated_sharpe"] == direct.stats["deflated_sharpe"]

    # what the page shows is that result
    eq_y = np.atleast_2d(panel.equity_chart.lines.y)[0]
    assert len(eq_y) > 0 and eq_y[-1] == pytest.approx(direct.equity.iloc[-1])
    assert panel.equity_chart.axis_y.label == "equity (USDT)"
    dsr = text_of(panel.dsr.value)
    assert f"Deflated Sharpe {direct.stats['deflated_sharpe']:.3f}" in dsr
    assert "exceeds the best Sharpe expected from 5 configurations tried with no skill" in dsr
    table = panel.folds.value
    assert table.count("<tr>") - 1 >= len(direct.folds)   # + folds in cash, if any
    for r in direct.folds.itertuples():
        assert f">{r.y}<" in table and f">{r.x}<" in table
    stats = text_of(panel.stats.value)
    assert f"{len(direct.trades):,}" in stats and "final equity" in stats
    assert "5 folds" in text_of(panel.status.value)
    assert "funding um:BTCUSDT" in text_of(panel.status.value)

    # the self-contained report, as a one-click download
    link = panel.download.value
    assert 'download="walk_forward_' in link and "data:text/html;base64," in link
    payload = re.search(r'href="data:text/html;base64,([^"]+)"', link).group(1)
    report = base64.b64decode(payload).decode("utf-8")
    assert report == panel.report_html and "<h1>Walk-forward report</h1>" in report
    assert "http://" not in report and "https://" not in report


def test_widgets_change_on_the_kernel_loop_not_on_the_worker_thread(lab):
    async def main():
        panel = ResearchPanel(lab, Controls(SYMS), suggest=False)
        panel.formation.value, panel.trading.value, panel.timeframe.value = "30min", "10min", "1s"
        threads = set()
        panel.progress.observe(lambda _c: threads.add(threading.get_ident()), "value")
        panel.status.observe(lambda _c: threads.add(threading.get_ident()), "value")
        panel.run()
        await panel.idle(60)
        return panel, threads

    panel, threads = asyncio.run(main())
    assert panel.result is not None and panel.error.value == ""
    assert threads == {threading.get_ident()}  # the loop's thread (this one), never the worker's


def test_cancel_stops_the_run_after_the_fold_under_way(lab):
    panel = ResearchPanel(lab, Controls(SYMS), suggest=False)
    panel.formation.value, panel.trading.value, panel.timeframe.value = "30min", "10min", "1s"

    def on_progress(change):
        if change["new"] == 1:
            panel.cancel_button.click()   # what the user does while fold 2 runs

    panel.progress.observe(on_progress, "value")
    panel.run()
    wait_idle(panel)
    assert panel.result is None and panel.error.value == ""
    assert panel.progress.value == 1 and panel.progress.max == 5
    assert "Cancelled after fold 2 of 5" in text_of(panel.status.value)
    assert not panel.run_button.disabled and panel.cancel_button.disabled
    # and the next run goes through
    panel.progress.unobserve(on_progress, "value")
    panel.run()
    wait_idle(panel)
    assert panel.result is not None and panel.progress.value == 5


@pytest.mark.parametrize("field, value, message", [
    ("symbols", ("ETHUSDT",), "Symbols: select at least 2 symbols"),
    ("formation", "ten minutes", "Formation: expected a duration such as '30min', '4h' or '2D', "
                                 "got 'ten minutes"),
    ("formation", "5min", "Formation: 5min holds 300 bars of 1s; the screen needs at least 500"),
    ("trading", "-5min", "Trading: expected a positive duration"),
    ("entry", 0.3, "Exit must be below entry (0 <= exit < entry < stop), got exit=0.5, entry=0.3"),
    ("stop", 1.0, "Stop must be above entry (0 <= exit < entry < stop), got entry=2.0, stop=1.0"),
    ("n_trials", 0, "Configurations tried: the number of settings you tried in all"),
])
def test_bad_input_is_one_line_in_the_panel(lab, field, value, message):
    panel = ResearchPanel(lab, Controls(SYMS), suggest=False)
    panel.formation.value, panel.trading.value, panel.timeframe.value = "30min", "10min", "1s"
    getattr(panel, field).value = value
    panel.run_button.click()
    wait_idle(panel)
    shown = text_of(panel.error.value)
    assert message in shown, shown
    assert "Traceback" not in shown and "\n" not in shown and shown.startswith("Research:")
    assert panel.result is None and not panel.run_button.disabled


def test_history_too_short_for_the_windows_says_what_fits(lab):
    panel = ResearchPanel(lab, Controls(SYMS), suggest=False)
    panel.timeframe.value, panel.formation.value, panel.trading.value = "5m", "2D", "6h"
    panel.run()
    wait_idle(panel)
    shown = text_of(panel.error.value)
    assert "History too short: the store holds" in shown and "formation 2D + trading 6h need 2D6h" in shown
    assert "this history fits formation 30min, trading 10min on 1s bars" in shown
    assert panel.result is None and not panel.run_button.disabled


# --------------------------------------------------------------------------- walk_forward(on_fold=...)

@pytest.fixture(scope="module")
def closes(store):
    return quantlab.closes(store, SYMS, "1s")


#: fees as the backtest's defaults; the perpetual's funding left out on purpose
COSTS = pair_costs(10.0, 5.0, 0.0, {"um:BTCUSDT": None})


def test_on_fold_reports_each_fold_and_changes_nothing(closes):
    calls = []
    res = walk_forward(closes, "30min", "10min", costs=COSTS, progress=False,
                       on_fold=lambda d, t: calls.append((d, t)))
    plain = walk_forward(closes, "30min", "10min", costs=COSTS, progress=False)
    n = len(plain.schedule)
    assert calls == [(k, n) for k in range(n + 1)]
    pd.testing.assert_series_equal(res.equity, plain.equity)
    pd.testing.assert_frame_equal(res.folds, plain.folds)


def test_an_exception_from_on_fold_stops_the_run(closes):
    ran = []

    def stop_after_two(done, total):
        ran.append(done)
        if done == 2:
            raise KeyboardInterrupt  # anything the caller raises comes back to it

    with pytest.raises(KeyboardInterrupt):
        walk_forward(closes, "30min", "10min", costs=COSTS, progress=False, on_fold=stop_after_two)
    assert ran == [0, 1, 2]


def test_on_fold_must_be_a_function(closes):
    with pytest.raises(TypeError, match=r"on_fold: expected a function on_fold\(done, total\)"):
        walk_forward(closes, "30min", "10min", costs=COSTS, progress=False, on_fold=5)


def test_on_fold_on_dask_reports_every_fold_with_identical_results(closes):
    distributed = pytest.importorskip("distributed")
    calls = []
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2,
                            dashboard_address=None) as client:
        res = walk_forward(closes, "30min", "10min", costs=COSTS, progress=False, client=client,
                           on_fold=lambda d, t: calls.append((d, t)))
    plain = walk_forward(closes, "30min", "10min", costs=COSTS, progress=False)
    n = len(plain.schedule)
    assert calls == [(k, n) for k in range(n + 1)]
    pd.testing.assert_series_equal(res.equity, plain.equity)
    pd.testing.assert_frame_equal(res.folds, plain.folds)


def test_the_fold_table_lists_folds_in_cash_too(closes):
    from quantlab.ui.research import folds_html

    # ETHUSDT and XRPUSDT are independent walks in the demo market: most folds select nothing
    res = walk_forward(closes[["ETHUSDT", "XRPUSDT"]], "30min", "10min", costs=COSTS, progress=False)
    in_cash = set(res.schedule["fold"]) - set(res.folds["fold"])
    assert in_cash  # (with this seed: every fold)
    table = folds_html(res)
    assert table.count("no pair selected: in cash") == len(in_cash)
    assert table.count("<tr>") - 1 == len(res.folds) + len(in_cash)  # one row per fold at least
