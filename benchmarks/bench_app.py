"""The app in a browser: time to the first chart and chart updates per second under load.

Starts ``quantlab app --demo --demo-rate 1000`` (1,000 ticks/s into the store), opens the page
in headless Chromium and measures

* time from navigation to the first price chart drawn with data (goal < 5 s);
* how often the price chart's line is redrawn in the page while 1,000 ticks/s stream in
  (goal >= 2 updates/s), counted with a MutationObserver on the line's path;
* the page kernel's CPU over the same window (goal: under one core);
* min/max decimation of a day of 1 s bars for display, against a per-bucket Python loop.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _table import Row, best_of

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
CHROMIUM = "/usr/bin/chromium"

OBSERVE = """
() => {
  const path = document.querySelector('.ql-monitor .bqplot.figure path.line');
  window.__qlUpdates = [];
  const obs = new MutationObserver(() => window.__qlUpdates.push(performance.now()));
  obs.observe(path, {attributes: true, attributeFilter: ['d']});
  return true;
}
"""


def _decimation_rows(quick: bool) -> list[Row]:
    from quantlab.ui.charts import minmax_indices

    y = np.random.default_rng(1).normal(size=86_400).cumsum()

    def naive():
        edges = np.linspace(0, y.size, 1_001).astype(int)
        keep = []
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            seg = y[a:b]
            keep += [a + int(np.argmin(seg)), a + int(np.argmax(seg))]
        return np.unique(keep)

    assert np.array_equal(np.setdiff1d(naive(), minmax_indices(y, 2_000)), [])
    ours = best_of(lambda: minmax_indices(y, 2_000), 5) * 1e3
    ref = best_of(naive, 3) * 1e3
    return [Row("app", "min/max decimation 86,400 -> 2,000 pts", ours, "ms", ref, ref / ours,
                "< 10 ms (ref: per-bucket Python loop)")]


def _browser_rows(quick: bool) -> list[Row]:
    import psutil
    from playwright.sync_api import sync_playwright

    from quantlab.commands.app import free_port, port_open

    if not Path(CHROMIUM).exists():
        return [Row("app", "browser benchmark skipped: no /usr/bin/chromium", float("nan"), "")]
    tmp = Path(tempfile.mkdtemp(prefix="quantlab-bench-app-"))
    port = free_port()
    log = open(tmp / "app.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "quantlab", "app", "--demo", "--demo-rate", "1000", "--no-browser",
                             "--port", str(port), "--store", str(tmp / "store"), "--symbols",
                             "BTCUSDT,ETHUSDT,SOLUSDT"], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "QUANTLAB_SOURCE": "demo"})
    window = 5.0 if quick else 15.0
    try:
        deadline = time.monotonic() + 90
        while not port_open("127.0.0.1", port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp / "app.log").read_text()[-2000:])
            time.sleep(0.2)
        time.sleep(3)  # let the recorder reach its rate
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 950})
            # warm-up view: imports and numba caches are shared by later kernels through the OS
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector(".ql-monitor .bqplot.figure path.line", timeout=90_000)
            page.close(run_before_unload=True)
            page = browser.new_page(viewport={"width": 1400, "height": 950})
            t0 = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_function(
                "() => { const p = document.querySelector('.ql-monitor .bqplot.figure path.line');"
                " return p && (p.getAttribute('d') || '').length > 200; }", timeout=90_000)
            first = time.perf_counter() - t0
            kernels = [k for k in psutil.Process(proc.pid).children(recursive=True)
                       if "ipykernel" in " ".join(k.cmdline())]
            kernel = max(kernels, key=lambda k: k.create_time())
            page.evaluate(OBSERVE)
            kernel.cpu_percent(None)
            c0 = time.perf_counter()
            time.sleep(window)
            cpu = kernel.cpu_percent(None)
            stamps = page.evaluate("() => window.__qlUpdates")
            elapsed = time.perf_counter() - c0
            fed = json.loads((tmp / "store" / "status.json").read_text()).get("ticks_per_s", float("nan"))
            page.close(run_before_unload=True)
            browser.close()
        # one update may touch the path more than once (data, then the rescaled axis): count
    # redraws at least 100 ms apart
        redraws = 0
        last = -1e9
        for s in stamps:
            if s - last > 100:
                redraws += 1
                last = s
        rate = redraws / elapsed
        return [
            Row("app", "time to first chart after page load", first, "s", None, None, "< 5 s"),
            Row("app", "price chart updates at 1,000 ticks/s", rate, "updates/s", None, None, ">= 2 updates/s"),
            Row("app", "page kernel CPU at 1,000 ticks/s", cpu / 100, "cores", None, None, "< 1 core"),
            Row("app", "ticks/s recorded meanwhile (the load)", fed, "ticks/s", 1000.0, fed / 1000, "~1,000"),
        ]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(40)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def run(quick: bool) -> list[Row]:
    return _decimation_rows(quick) + _browser_rows(quick)


if __name__ == "__main__":
    for r in run("--quick" in sys.argv):
        print(r)
