"""The app in a real browser: ``quantlab app --demo`` driven by Playwright (headless Chromium).

Marked ``browser``; needs /usr/bin/chromium (the ``chromium`` fixture skips on a laptop without
it and fails in CI). Budget: about 3 minutes for the module, most of it waiting for a tab
closed without its shutdown request to be reclaimed.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse

import psutil
import pytest

from quantlab.commands.app import free_port, port_open
from quantlab.store import writer_pid

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
# the README's screenshot is refreshed only on request, so that running the suite leaves the
# checkout clean: QUANTLAB_UPDATE_SCREENSHOT=1 make test ARGS="-m browser"
SCREENSHOT = (ROOT / "docs" / "app.png" if os.environ.get("QUANTLAB_UPDATE_SCREENSHOT")
              else ROOT / "artifacts" / "app.png")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
SYMBOLS = "BTCUSDT,ETHUSDT,SOLUSDT"
# the demo app also follows a USD-M perp of BTC: a spot-vs-perp (basis) pair and its funding
DEMO_SYMBOLS = SYMBOLS + ",um:BTCUSDT"


@pytest.fixture(scope="module")
def app(tmp_path_factory, chromium):
    base = tmp_path_factory.mktemp("app")
    store = base / "store"
    port = free_port()
    log = open(base / "app.log", "wb")  # noqa: SIM115 - closed below
    env = {**os.environ, "QUANTLAB_SOURCE": "demo", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "quantlab", "app", "--demo", "--no-browser", "--port", str(port),
                             "--store", str(store), "--symbols", DEMO_SYMBOLS],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=base)
    deadline = time.monotonic() + 90
    while not port_open("127.0.0.1", port):
        if proc.poll() is not None or time.monotonic() > deadline:
            log.close()
            pytest.fail(f"quantlab app did not serve on {port}:\n{(base / 'app.log').read_text()[-3000:]}")
        time.sleep(0.2)
    yield SimpleNamespace(url=f"http://127.0.0.1:{port}/", proc=proc, store=store, port=port, log=base / "app.log")
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(40)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    log.close()
    assert writer_pid(store) is None, "the recorder outlived `quantlab app`"


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(chromium), args=ARGS)
        yield b
        b.close()


def kernels(app) -> list[psutil.Process]:
    out = []
    for p in psutil.Process(app.proc.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "ipykernel" in " ".join(p.cmdline()):
                out.append(p)
    return out


def wait_for(predicate, timeout: float, what: str, every: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def open_app(context, url: str):
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector(".bqplot.figure", timeout=90_000)
    page.wait_for_selector(".ql-prices td", timeout=30_000)
    return page


def test_dashboard_live_pair_backtest_alert_csv_and_screenshot(app, browser, tmp_path):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    context = browser.new_context(viewport={"width": 1400, "height": 950}, accept_downloads=True)
    page = open_app(context, app.url)
    status = page.inner_text(".ql-status")
    assert "DEMO (simulated)" in status

    # the price table and the last-trade time change by themselves
    before = page.inner_text(".ql-prices") + page.inner_text(".ql-last-trade")
    wait_for(lambda: page.inner_text(".ql-prices") + page.inner_text(".ql-last-trade") != before, 20,
             "the prices to change")
    wait_for(lambda: "● live" in page.inner_text(".ql-status"), 30, "the live state")

    # hovering the chart reads out the time (UTC) and price under the mouse. The live chart
    # moves under a resting mouse and the read-out is re-rendered as points pass: wait on its
    # text, and hover again if the kernel (slow on a loaded machine) has not answered in 10 s
    readout = "() => [...document.querySelectorAll('.ql-readout')].map(e => e.textContent).join(' ')"
    for attempt in range(4):
        page.query_selector_all(".ql-monitor .bqplot.figure .dot")[100 + 50 * attempt].hover(force=True)
        try:
            page.wait_for_function(f"() => ({readout})().includes('UTC')", timeout=10_000)
            break
        except PlaywrightTimeout:
            page.mouse.move(5, 5)
    else:
        (ROOT / "artifacts").mkdir(exist_ok=True)
        page.screenshot(path=str(ROOT / "artifacts" / "hover-failed.png"))
    assert "price (USDT)" in page.evaluate(readout), f"no hover read-out after {attempt + 1} tries"

    # in pan/zoom mode a drag moves the view, which stops following the live edge
    follow = page.query_selector_all(".ql-follow")[0]
    assert "mod-active" in (follow.get_attribute("class") or "")
    page.query_selector_all(".ql-chart-mode")[0].query_selector("button:has-text('pan/zoom')").click()
    box = page.query_selector_all(".ql-monitor .bqplot.figure")[0].bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    # the pan/zoom layer is in place once it, not a mark, is under the mouse
    page.wait_for_function(f"() => document.elementFromPoint({cx}, {cy}).style.cursor === 'move'",
                           timeout=10_000)
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 200, cy, steps=8)
    page.mouse.up()
    wait_for(lambda: "mod-active" not in (follow.get_attribute("class") or ""), 10, "follow-live to switch off")
    follow.click()
    wait_for(lambda: "mod-active" in (follow.get_attribute("class") or ""), 10, "follow-live to switch on")

    # switch the pair and the timeframe: the charts follow
    page.select_option(".ql-pair-y select", "SOLUSDT")
    page.click(".ql-timeframe button:has-text('1m')")
    page.wait_for_selector("text=SOLUSDT · 1m close", timeout=15_000)
    page.click(".ql-timeframe button:has-text('1s')")
    page.wait_for_selector("text=SOLUSDT · 1s close", timeout=15_000)

    page.click(".lm-TabBar-tab:has-text('Pair')")
    page.wait_for_selector(".ql-pair-headline >> text=SOLUSDT", timeout=20_000)
    page.wait_for_selector(".ql-hedge-table", timeout=30_000)
    table = page.inner_text(".ql-hedge-table")
    for method in ("OLS", "Kalman", "Huber", "Theil-Sen"):
        assert method in table
    # no chart repeats a tick label (a SHIB-sized spread was labelled 0.00, 0.00, 0.00)
    page.wait_for_timeout(500)
    for labels in page.eval_on_selector_all(
            ".ql-pair .bqplot.figure",
            "figs => figs.map(f => [...f.querySelectorAll('.axis .tick text')].map(e => e.textContent))"):
        assert len(labels) == len(set(labels)), labels

    # a backtest runs in the background and shows its metrics and trades
    page.click(".lm-TabBar-tab:has-text('Backtest')")
    page.click(".ql-run-backtest")
    page.wait_for_selector(".ql-backtest-metrics table", timeout=60_000)
    metrics = page.inner_text(".ql-backtest-metrics")
    for label in ("total return", "Sharpe (annual)", "max drawdown", "trades", "final equity"):
        assert label in metrics
    assert "USDT" in metrics and "%" in metrics
    assert "SOLUSDT vs BTCUSDT" in page.inner_text(".ql-backtest-status")
    # every time axis reads 24-hour UTC (the drawdown chart used to say "06 PM")
    page.wait_for_timeout(500)
    ticks = page.eval_on_selector_all(".ql-backtest .bqplot.figure .axis .tick text",
                                      "els => els.map(e => e.textContent)")
    assert ticks and not [t for t in ticks if "AM" in t or "PM" in t], ticks

    # the demo market's true relations (ETHUSDT ~ BTCUSDT, the perp's basis um:BTCUSDT ~ BTCUSDT,
    # and so ETHUSDT ~ um:BTCUSDT) are selected; SOLUSDT is an independent walk (with six pairs,
    # BH may also pass a chance p of ~0.03: not asserted)
    page.click(".lm-TabBar-tab:has-text('Screener')")
    page.click(".ql-run-screen")
    page.wait_for_selector(".ql-screen-table table", timeout=60_000)
    rows = [r.split("\t") for r in page.inner_text(".ql-screen-table tbody").splitlines()]
    selected = {frozenset(r[1:3]): float(r[5]) for r in rows if "yes" in r}
    assert {"ETHUSDT", "BTCUSDT"} not in [frozenset(r[1:3]) for r in rows[3:]], rows  # among the top 3
    assert selected[frozenset({"ETHUSDT", "BTCUSDT"})] < 0.05, rows  # its q-value
    assert frozenset({"um:BTCUSDT", "BTCUSDT"}) in selected, rows
    page.wait_for_selector(".ql-screener .ql-heat-legend >> text=q-value", timeout=30_000)
    assert "< 0.001" in page.inner_text(".ql-screener .ql-heat-legend")

    # an alert rule is added, listed, fires (its level is below the price) and toasts
    page.click(".lm-TabBar-tab:has-text('Alerts')")
    wait_for(lambda: page.input_value(".ql-alert-level input") not in ("", "0"), 15, "the level to be prefilled")
    page.fill(".ql-alert-level input", "1")
    page.press(".ql-alert-level input", "Tab")
    page.click(".ql-add-alert")
    page.wait_for_selector(".ql-rules .ql-rule", timeout=15_000)
    assert "price above 1" in page.inner_text(".ql-rules")
    page.wait_for_selector(".ql-toast div", timeout=30_000)
    assert "(r1)" in page.inner_text(".ql-toast")
    page.wait_for_selector(".ql-fired-table", timeout=15_000)

    # one click on each Export button downloads its CSV file: header and rows checked
    page.click(".lm-TabBar-tab:has-text('Export')")
    heads = {"ticks": ["time", "trade_id", "price", "qty", "is_buyer_maker"],
             "bars": ["time", "open", "high", "low", "close", "volume", "vwap", "trades", "partial"],
             "analytics": ["time", "SOLUSDT", "BTCUSDT", "beta_raw", "alpha", "spread", "zscore", "corr"],
             "trades": None}
    for kind, head in heads.items():
        with page.expect_download(timeout=60_000) as dl:
            page.click(f".ql-export-{kind}")
        download = dl.value
        name = download.suggested_filename
        assert name.startswith(f"{kind}_") and name.endswith(".csv"), name
        rows = list(csv.reader(io.StringIO(Path(download.path()).read_text())))
        if head is not None:
            assert rows[0][:len(head)] == head, (kind, rows[0])
            assert len(rows) > 1000, (kind, len(rows))  # 2 h of demo history
            assert rows[1][0].endswith("Z")
        else:
            assert rows[0][0] == "trade" and "entry_time" in rows[0] and "pnl" in rows[0], rows[0]
        if kind == "bars":
            assert name.startswith("bars_SOLUSDT_1s_") and float(rows[1][4]) > 0
    # the link beside the button saves the file again; after a moment it no longer clicks itself
    page.wait_for_selector(".ql-link-bars a.ql-download", timeout=10_000)
    wait_for(lambda: not page.query_selector(".ql-export .ql-autoclick"), 20, "the links to settle")

    assert "Traceback" not in page.content()
    page.click(".lm-TabBar-tab:has-text('Monitor')")
    page.wait_for_timeout(1500)
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 10_000
    page.close(run_before_unload=True)
    context.close()


def test_demo_perp_shows_its_funding_and_pairs_with_its_spot(app, browser):
    """The Monitor lists um:BTCUSDT with its funding rate and next funding time (24-hour UTC);
    the Pair tab takes the spot-vs-perp pair, and its backtest pays the stored funding."""
    import re

    context = browser.new_context(viewport={"width": 1400, "height": 950})
    page = open_app(context, app.url)

    def perp_row() -> str:
        return next((r for r in page.inner_text(".ql-prices").splitlines() if r.startswith("um:BTCUSDT")), "")

    # the recorder stores a mark price a second; the demo settles funding every few seconds
    row = wait_for(lambda: re.search(r"-?\d\.\d{4} %\s+\d\d:\d\d:\d\d UTC \(in \d+ [ms]", perp_row())
                   and perp_row(), 30, "the perp's funding rate and next funding time")
    assert "USDT" in row and "AM" not in row and "PM" not in row
    spot = next(r for r in page.inner_text(".ql-prices").splitlines() if r.startswith("BTCUSDT"))
    assert "UTC (in" not in spot  # a spot symbol has no funding

    page.select_option(".ql-pair-y select", "um:BTCUSDT")
    page.select_option(".ql-pair-x select", "BTCUSDT")
    page.click(".lm-TabBar-tab:has-text('Pair')")
    page.wait_for_selector(".ql-pair-headline >> text=um:BTCUSDT", timeout=20_000)
    page.wait_for_selector(".ql-hedge-table", timeout=30_000)
    assert "BTCUSDT" in page.inner_text(".ql-pair-headline")

    page.click(".lm-TabBar-tab:has-text('Backtest')")
    page.click(".ql-run-backtest")
    page.wait_for_selector(".ql-backtest-status >> text=events stored", timeout=60_000)
    status = page.inner_text(".ql-backtest-status")
    assert re.search(r"funding um:BTCUSDT: [\d,]+ events stored", status), status
    metrics = page.inner_text(".ql-backtest-metrics")
    for label in ("fees paid", "slippage", "borrow paid", "funding paid"):
        assert label in metrics
    assert "Traceback" not in page.content()
    page.close(run_before_unload=True)
    context.close()


def test_three_tabs_one_recorder_one_connection_and_kernels_freed(app, browser):
    # a tab closed by the previous test frees its kernel within seconds
    wait_for(lambda: not kernels(app), 60, "no kernel before opening the tabs", every=1)
    base = 0
    contexts = [browser.new_context(viewport={"width": 1200, "height": 800}) for _ in range(3)]
    pages = [c.new_page() for c in contexts]
    for p in pages:
        p.goto(app.url, wait_until="commit")
    for p in pages:
        p.wait_for_selector(".bqplot.figure", timeout=120_000)
        p.wait_for_selector(".ql-prices td", timeout=30_000)
    firsts = [p.inner_text(".ql-last-trade") for p in pages]
    for p, first in zip(pages, firsts, strict=True):  # every tab is live on its own
        wait_for(lambda p=p, first=first: p.inner_text(".ql-last-trade") != first, 20, "a tab to update")
    assert len(kernels(app)) == base + 3

    # one recorder for the store, and it holds the only connection to the exchange
    status = json.loads((app.store / "status.json").read_text())
    recorders = [p for p in psutil.process_iter(["cmdline"])
                 if p.info["cmdline"] and "record" in p.info["cmdline"] and str(app.store) in p.info["cmdline"]]
    assert [p.pid for p in recorders] == [status["pid"]] == [writer_pid(app.store)]
    assert status["state"] == "live" and status["reconnects"] == 0
    sim_port = urlparse(status["ws_url"]).port
    clients = [c for c in psutil.Process(status["pid"]).net_connections("tcp")
               if c.raddr and c.raddr.port == sim_port and c.status == psutil.CONN_ESTABLISHED]
    assert len(clients) == 1
    for k in kernels(app):
        assert not [c for c in k.net_connections("tcp") if c.raddr and c.raddr.port == sim_port]

    # two tabs close normally (the page asks Voilà to shut its kernel down); the third vanishes
    # without that request and is reclaimed by the heartbeat watchdog and the culler
    pages[0].close(run_before_unload=True)
    pages[1].close(run_before_unload=True)
    contexts[2].close()
    t0 = time.monotonic()
    wait_for(lambda: len(kernels(app)) <= base, 120, "the three kernels to be gone", every=2)
    print(f"kernels freed in {time.monotonic() - t0:.0f} s")
    for c in contexts[:2]:
        c.close()


def test_research_tab_runs_a_walk_forward_in_the_background(app, browser):
    """The Research tab on the demo app: windows scaled to the two hours of history, Run ->
    the progress bar, then the out-of-sample equity chart, the fold table, the deflated Sharpe
    in words and the HTML report as a download. (After the kernel-freeing test: with this
    test before it, that test's closed tabs kept their kernels past its 120 s in 2 of 3 runs
    on a loaded machine; the cause was not found in the page or the server logs.)"""
    import re

    context = browser.new_context(viewport={"width": 1400, "height": 950})
    page = open_app(context, app.url)
    page.click(".lm-TabBar-tab:has-text('Research')")
    page.wait_for_selector(".ql-research-defaults >> text=Defaults scaled to it", timeout=30_000)
    note = page.inner_text(".ql-research-defaults")
    windows = re.search(r"formation (\S+), trading (\S+) on 1s bars \((\d+) folds\)", note)
    assert windows and int(windows[3]) >= 4, note  # two hours: 30min and 10min, 9 folds
    assert page.input_value(".ql-research-formation input") == windows[1]
    assert page.input_value(".ql-research-trading input") == windows[2]
    page.fill(".ql-research-trials input", "4")
    page.press(".ql-research-trials input", "Tab")
    page.click(".ql-run-research")
    # Run is disabled while the folds run on a thread (the live charts keep moving meanwhile)
    page.wait_for_selector(".ql-run-research:disabled", timeout=10_000)
    page.wait_for_selector(".ql-research-fold-table", timeout=90_000)
    page.wait_for_selector(".ql-run-research:not(:disabled)", timeout=10_000)

    path = page.wait_for_selector(".ql-research-equity .bqplot.figure path.line", timeout=20_000)
    wait_for(lambda: (path.get_attribute("d") or "").count("L") > 100, 20, "the equity line to be drawn")
    rows = page.inner_text(".ql-research-fold-table tbody").splitlines()
    assert len(rows) >= 4, rows  # two hours: at least one row per fold of 30min + 10min windows
    assert any("um:BTCUSDT" in r and "BTCUSDT\t" in r for r in rows), rows  # the planted basis pair
    assert "folds" in page.inner_text(".ql-research-status")
    dsr = page.inner_text(".ql-research-dsr")
    assert "Deflated Sharpe" in dsr and "the best Sharpe expected from 4 configurations tried" in dsr
    href = page.get_attribute(".ql-research-report a.ql-download", "href")
    assert href.startswith("data:text/html;base64,")
    assert "Traceback" not in page.content()
    page.close(run_before_unload=True)
    context.close()


def test_unreachable_binance_says_so_and_switches_to_demo_in_one_click(browser, tmp_path):
    """Live Binance down (here: its endpoints point at a closed local port, never the
    internet): the page says so in words and one click follows the simulated market instead."""
    closed = free_port()
    port = free_port()
    store = tmp_path / "store"
    log = open(tmp_path / "app.log", "wb")  # noqa: SIM115 - closed below
    env = {**os.environ, "QUANTLAB_SOURCE": "binance", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "quantlab", "app", "--no-browser", "--port", str(port),
                             "--store", str(store), "--symbols", SYMBOLS,
                             "--ws-url", f"ws://127.0.0.1:{closed}", "--rest-url", f"http://127.0.0.1:{closed}"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    demo = store.with_name("store-demo")
    try:
        wait_for(lambda: port_open("127.0.0.1", port) or proc.poll() is not None, 90, "the app to serve")
        assert proc.poll() is None, (tmp_path / "app.log").read_text()[-2000:]
        context = browser.new_context(viewport={"width": 1300, "height": 900})
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector(".ql-status", timeout=90_000)
        page.wait_for_selector("text=Live Binance cannot be reached", timeout=30_000)
        assert "LIVE Binance" in page.inner_text(".ql-status")
        assert "unreachable" in page.inner_text(".ql-status")
        page.click(".ql-switch-demo")
        page.wait_for_selector(".ql-status >> text=DEMO (simulated)", timeout=60_000)
        page.wait_for_selector(".ql-monitor .bqplot.figure path.line", timeout=60_000)
        wait_for(lambda: "● live" in page.inner_text(".ql-status"), 30, "the demo feed to be live")
        assert writer_pid(demo) is not None  # the demo recorder writes its own store
        assert "Traceback" not in page.content()
        page.close(run_before_unload=True)
        context.close()
        # the kernel that started the demo recorder ended, and took it along
        wait_for(lambda: writer_pid(demo) is None, 60, "the demo recorder to stop with its kernel", every=1)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
    assert writer_pid(store) is None
