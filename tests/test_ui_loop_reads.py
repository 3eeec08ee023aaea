"""The app's periodic refresh reads no large slice of the store on the kernel's loop.

The dashboard refreshes the status bar and the visible panel a few times a second on the
kernel's event loop; while a refresh runs, no widget message, no other cell's callback and no
alert toast can run. ``Lab.stats()`` (the Monitor's 24 h change, every 2 s) read up to an
hour of ticks per symbol there, later a minute per symbol once a minute: with a busy symbol
that is thousands of rows per symbol on the loop. The follower thread now looks the
reference prices up with its own reader; this test counts the rows every store read returns
on the caller's thread during refreshes (no timing asserts).
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from quantlab import Lab
from quantlab.store import TickStore

SYMBOLS = ["AAAUSDT", "BBBUSDT"]
MAX_ROWS_ON_LOOP = 1_000
S = 10**9


def _rows(first_id: int, t: np.ndarray, price: float) -> dict[str, np.ndarray]:
    n = len(t)
    return {"trade_id": np.arange(first_id, first_id + n), "time": t, "price": np.full(n, price),
            "qty": np.full(n, 0.5), "is_buyer_maker": np.zeros(n, "u1")}


@pytest.fixture
def busy_store(tmp_path):
    """A live writer (so the Lab starts no recorder); per symbol a busy ten minutes around
    "24 h ago" (a trade every 10 ms at 100.0: 6,000 rows a minute) and the last ten minutes
    at a trade a second at 110.0."""
    path = tmp_path / "store"
    writer = TickStore(path, mode="a")
    now = time.time_ns()
    old = np.arange(now - 86_400 * S - 300 * S, now - 86_400 * S + 300 * S, 10**7, dtype=np.int64)
    recent = now - 600 * S + np.arange(600, dtype=np.int64) * S
    for s in SYMBOLS:
        writer.append(s, _rows(1, old, 100.0))
        writer.append(s, _rows(len(old) + 1, recent, 110.0))
    yield path
    writer.close()


def test_dashboard_refreshes_read_no_large_slice_on_the_callers_thread(busy_store, monkeypatch):
    from quantlab.ui import Dashboard

    lab = Lab(SYMBOLS, store=busy_store, source="binance", progress=False, history="10min")
    try:
        lab.start().wait_ready(timeout=60, min_ticks=600)
        # the follower looks the 24 h references up: the change appears without a read here
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not lab.stats()["change_24h_pct"].notna().all():
            time.sleep(0.05)
        np.testing.assert_allclose(lab.stats()["change_24h_pct"].to_numpy(), 10.0, rtol=1e-12)

        caller = threading.get_ident()
        reads: list[tuple[str, int]] = []
        for name in ("read", "read_after", "bars"):
            real = getattr(TickStore, name)

            def counted(self, *a, _real=real, _name=name, **kw):
                out = _real(self, *a, **kw)
                if threading.get_ident() == caller:
                    reads.append((_name, len(out) if hasattr(out, "index") else len(out.get("trade_id", ()))))
                return out

            monkeypatch.setattr(TickStore, name, counted)
        monkeypatch.setattr(Lab, "REF_PRICE_TTL_S", 0.01)  # every reference is always due again

        dash = Dashboard(lab, autostart=False)  # no running loop here: refresh() runs at once
        for _ in range(5):
            dash.refresh()
            dash.monitor.refresh(force=True)  # the 2-s stats reload, now
            dash.status.refresh()
            dash.alerts.refresh_fired(force=True)
            time.sleep(0.05)
        dash.stop()
        assert dash.refresh_errors == 0
        assert dash.monitor.error.value == ""
        big = [r for r in reads if r[1] > MAX_ROWS_ON_LOOP]
        assert not big, f"store reads of more than {MAX_ROWS_ON_LOOP} rows on the loop: {big}"
        assert "+10.00 %" in dash.monitor.table.value
    finally:
        lab.stop()


def test_a_lab_that_does_not_follow_still_reads_its_reference_itself(busy_store):
    lab = Lab(SYMBOLS, store=busy_store, source="binance", progress=False)
    try:
        # not started: no follower, so stats() looks the reference up on the caller's thread
        assert lab.stats()["change_24h_pct"].isna().all()  # no last price in memory yet
        assert lab._price_at(SYMBOLS[0], time.time_ns() - 86_400 * S) == 100.0
    finally:
        lab.stop()
