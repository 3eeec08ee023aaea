"""One definition of each thing: the merged helpers, and the bugs found while merging them."""

from __future__ import annotations

import time

from quantlab.sim import ExchangeThread, Synthetic


def test_exchange_thread_pause_stops_the_market():
    with ExchangeThread(Synthetic(["BTCUSDT"], rate=500, seed=3)) as ex:
        deadline = time.monotonic() + 10
        while len(ex.trades("BTCUSDT")) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        ex.pause()
        time.sleep(0.2)  # let a tick already under way finish
        held = len(ex.trades("BTCUSDT"))
        time.sleep(0.5)  # 250 trades at 500/s if the market kept running
        assert len(ex.trades("BTCUSDT")) == held
        ex.resume()
        deadline = time.monotonic() + 10
        while len(ex.trades("BTCUSDT")) == held and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(ex.trades("BTCUSDT")) > held
