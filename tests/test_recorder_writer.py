"""The recorder's loop never does store work: appends, flushes, seals and gap records run on
its one writer thread, in order; a stop waits for the flush in progress and counts it."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np

from quantlab.recorder import Recorder, RecorderConfig
from quantlab.sim import Exchange, Synthetic
from quantlab.status import read_status
from quantlab.store import TickStore

FAST_BACKOFF = {"backoff": lambda: iter([0.01] * 1_000_000)}


def test_store_writes_run_on_the_writer_thread_and_a_stop_counts_the_last_flush(tmp_path, monkeypatch):
    calls: list[tuple[str, str]] = []
    for name in ("append", "flush", "add_gap"):
        real = getattr(TickStore, name)

        def spy(self, *a, _real=real, _name=name, **k):
            calls.append((_name, threading.current_thread().name))
            return _real(self, *a, **k)

        monkeypatch.setattr(TickStore, name, spy)
    syms = ["AAAUSDT", "BBBUSDT", "CCCUSDT"]

    async def main():
        loop_thread = threading.current_thread().name
        async with Exchange(Synthetic(syms, rate=400, seed=2), faults="drop=0.02,seed=5") as ex:
            rec = Recorder(RecorderConfig(store=tmp_path / "s", symbols=syms, ws_url=ex.ws_url,
                                          rest_url=ex.rest_url, stream_options=FAST_BACKOFF, alerts=False))
            task = asyncio.create_task(rec.run())
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and rec.c["stored"] < 1_000:
                await asyncio.sleep(0.05)
            n_running = len(calls)
            rec.stop()
            await task
        return rec, loop_thread, n_running

    rec, loop_thread, n_running = asyncio.run(main())
    assert rec.c["stored"] >= 1_000 and rec.c["gaps_repaired"] > 0  # drops were repaired meanwhile
    while_running = calls[:n_running]
    assert {"append", "flush"} <= {name for name, _ in while_running}
    assert all(t.startswith("quantlab-writer") for _, t in while_running), \
        sorted({t for _, t in while_running})
    assert loop_thread not in {t for _, t in while_running}
    # everything the recorder counted is stored, and nothing stored went uncounted
    st = TickStore(tmp_path / "s")
    stored = sum(len(st.read(s)) for s in st.symbols())
    assert stored == rec.c["stored"] == read_status(tmp_path / "s")["ticks_total"]
    for s in st.symbols():
        ids = st.read(s)["trade_id"].to_numpy()
        assert np.all(np.diff(ids) == 1), s
