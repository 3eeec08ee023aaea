"""The one alert toast: it follows a store's alert history, and every widget change happens on
the kernel's event loop (never on the watcher thread); the alerts package has no widgets."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantlab.alerts import AlertHistory, AlertService, PriceRule, add_rule
from quantlab.ui import AlertToast, AlertToasts
from quantlab.ui.base import Poster

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000


def ticks_frame(prices, *, start_ns=T0, first_id=1):
    p = np.asarray(prices, dtype=np.float64)
    t = start_ns + np.arange(len(p), dtype=np.int64) * S
    return pd.DataFrame({"trade_id": first_id + np.arange(len(p), dtype=np.int64), "price": p,
                         "qty": np.full(len(p), 0.01), "is_buyer_maker": np.zeros(len(p), bool),
                         "time": t, "recv_time": t + 5_000_000})


@pytest.fixture
def store(tmp_path):
    from quantlab.store import TickStore

    path = tmp_path / "store"
    with TickStore(path, mode="a") as st:
        for sym in ("BTCUSDT", "ETHUSDT"):
            st.append(sym, {"trade_id": np.array([1]), "time": np.array([T0]), "price": np.array([100.0]),
                            "qty": np.array([1.0]), "is_buyer_maker": np.array([False])})
    return path


class KernelLoop:
    """An asyncio loop on its own thread, standing in for the kernel's."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, fn):
        done = threading.Event()
        out = {}

        def run():
            out["value"] = fn()
            done.set()
        self.loop.call_soon_threadsafe(run)
        assert done.wait(10)
        return out["value"]

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def wait_until(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


def test_toasts_follow_the_history_and_change_widgets_only_on_the_loop(store):
    add_rule(store, PriceRule(symbol="BTCUSDT", op="cross", level=100, hysteresis=0.5))
    svc = AlertService(store, bars_loader=False)
    svc.process_trades("BTCUSDT", ticks_frame([99, 101]))  # an alert before the panel opens
    kernel = KernelLoop()
    try:
        panel = kernel.call(lambda: AlertToasts(store, interval=0.05, toast_s=0.3,
                                                poster=Poster(asyncio.get_running_loop())))
        threads = []
        for w in (panel.toast, panel.list):
            w.observe(lambda _c: threads.append(threading.get_ident()), "value")
        assert "crossed up" in panel.list.value and panel.toast.value == ""
        svc.process_trades("BTCUSDT", ticks_frame([99], start_ns=T0 + 5 * S, first_id=5))
        wait_until(lambda: "crossed down" in panel.toast.value)
        assert "ALERT" in panel.toast.value and "UTC" in panel.toast.value
        assert panel.list.value.index("crossed down") < panel.list.value.index("crossed up")
        wait_until(lambda: panel.toast.value == "")  # the toast goes away (loop.call_later)
        assert threads and set(threads) == {kernel.thread.ident}  # never the watcher's thread
        panel.stop()
        assert not panel.watcher.running
    finally:
        kernel.close()
        svc.close()


def test_a_newer_alert_keeps_the_toast_up_for_its_own_time():
    kernel = KernelLoop()
    try:
        toast = kernel.call(lambda: AlertToast(poster=Poster(asyncio.get_running_loop()), toast_s=0.4))
        toast.show({"message": "first", "time": pd.Timestamp("2024-08-09 12:00:00", tz="UTC")})
        time.sleep(0.25)
        toast.show({"message": "second", "time": pd.Timestamp("2024-08-09 12:00:01", tz="UTC")})
        wait_until(lambda: "second" in toast.value)
        assert "12:00:01.000 UTC" in toast.value
        time.sleep(0.25)  # the first alert's time is up, the second's is not
        assert "second" in toast.value
        wait_until(lambda: toast.value == "")
    finally:
        kernel.close()
    with pytest.raises(ValueError, match="toast_s"):
        AlertToast(toast_s=0)


def test_the_alerts_package_has_no_widgets():
    """`quantlab.alerts` runs inside the recorder: no ipywidgets, not even in a submodule."""
    pkg = Path(__file__).resolve().parents[1] / "quantlab" / "alerts"
    assert not [p.name for p in pkg.glob("*.py") if "ipywidgets" in p.read_text()]
    code = ("import sys, pkgutil, importlib, quantlab.alerts as a\n"
            "[importlib.import_module('quantlab.alerts.' + m.name) for m in pkgutil.iter_modules(a.__path__)]\n"
            "print('ipywidgets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert AlertHistory  # the reader notebooks use stays in the domain package
