"""The Lab's follower thread and the caller's thread never share HDF5 handles.

With 300 symbols a poll of the store takes longer than ``stop()`` waited for the follower,
and ``stop()`` then closed the store the follower was reading: the follower logged
``Unable to synchronously open object (invalid identifier type to function)``.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from quantlab import Lab
from quantlab.store import TickStore
from quantlab.store import segments as seg

SYMBOLS = ["AAAUSDT", "BBBUSDT", "CCCUSDT"]


def _rows(first: int, n: int) -> dict[str, np.ndarray]:
    t = time.time_ns() - 60 * 10**9 + np.arange(n) * 10**6
    return {"trade_id": np.arange(first, first + n), "time": t, "price": np.full(n, 100.0),
            "qty": np.full(n, 0.5), "is_buyer_maker": np.zeros(n, "u1"), "event_time": t, "recv_time": t}


def test_stop_during_a_slow_poll_does_not_close_the_followers_handles(tmp_path, monkeypatch):
    path = tmp_path / "store"
    writer = TickStore(path, mode="a")  # a live writer: the Lab follows it and starts no recorder
    for s in SYMBOLS:
        writer.append(s, _rows(1, 10))
    lab = Lab(SYMBOLS, store=path, source="binance", progress=False)
    lab.STOP_JOIN_S = 0.2  # the poll below outlasts stop()'s wait, as 300 symbols did
    entered, release = threading.Event(), threading.Event()
    real = seg.read_active_tail

    def slow_tail(f, schema, lo):  # the follower is inside a read of an open handle
        if threading.current_thread().name == "quantlab-follower" and lab._loaded.is_set():
            entered.set()
            release.wait(10)
        return real(f, schema, lo)

    monkeypatch.setattr(seg, "read_active_tail", slow_tail)
    try:
        lab.start()
        follower = lab._thread
        for s in SYMBOLS:
            writer.append(s, _rows(11, 5))
        assert entered.wait(30), "the follower never polled"
        lab.ticks(SYMBOLS[0], since=time.time_ns() - 3_600 * 10**9)  # the caller reads meanwhile
        lab.stop()
        release.set()
        follower.join(10)
        assert not follower.is_alive()
        assert lab.last_error == ""
    finally:
        release.set()
        lab.stop()
        writer.close()


def test_the_follower_keeps_following_new_rows(tmp_path):
    path = tmp_path / "store"
    writer = TickStore(path, mode="a")
    for s in SYMBOLS:
        writer.append(s, _rows(1, 10))
    lab = Lab(SYMBOLS, store=path, source="binance", progress=False, poll_s=0.05)
    try:
        lab.start().wait_ready(timeout=30, min_ticks=10)
        for s in SYMBOLS:
            writer.append(s, _rows(11, 7))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not all(len(lab.ticks(s)) == 17 for s in SYMBOLS):
            time.sleep(0.05)
        for s in SYMBOLS:
            assert lab.ticks(s)["trade_id"].tolist() == list(range(1, 18))
        assert lab.last_error == ""
    finally:
        lab.stop()
        writer.close()
