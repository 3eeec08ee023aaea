"""Lab: returns at once in a kernel, frames grow, two kernels share one recorder,
live bars equal bars from the store, bad input."""

from __future__ import annotations

import textwrap

import nbformat
import numpy as np
import pandas as pd
import pytest
from nbclient import NotebookClient

from quantlab import Lab
from quantlab.errors import UnknownSymbolError
from quantlab.live import IncrementalBars, TickRing, align_closes
from quantlab.store import TickStore, bars_from_arrays, timeframe_ns, writer_pid


def _kernel(cells: list[str]):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(textwrap.dedent(c)) for c in cells])
    return nb, NotebookClient(nb, timeout=90, kernel_name="python3")


def _run(client, nb, i):
    client.execute_cell(nb.cells[i], i)
    errors = [o for o in nb.cells[i].outputs if o.output_type == "error"]
    assert not errors, "\n".join(errors[0].traceback)
    return "".join(o.get("text", "") for o in nb.cells[i].outputs if o.output_type == "stream")


def test_two_kernels_follow_one_recorder_and_frames_grow(tmp_path):
    store = str(tmp_path / "store")
    start = f"""
        import time, asyncio, quantlab
        lab = quantlab.Lab(["BTCUSDT", "ETHUSDT"], store={store!r}, source="demo")
        t0 = time.perf_counter(); lab.start(); took = time.perf_counter() - t0
        print(f"start took {{took:.3f}}s"); assert took < 1.0, took
    """
    grow = """
        lab.wait_ready(60)
        n1, b1 = len(lab.ticks("BTCUSDT")), len(lab.bars("BTCUSDT", "1s"))
        await asyncio.sleep(3)   # the kernel's loop is free: nothing blocks
        n2, b2 = len(lab.ticks("BTCUSDT")), len(lab.bars("BTCUSDT", "1s"))
        print(n1, n2, b1, b2); assert n2 > n1 and b2 > b1
    """
    owner = "print('owner' if lab._proc is not None else 'follower', lab.status()['pid'])"
    nb_a, a = _kernel([start, grow, owner, "lab.stop()"])
    nb_b, b = _kernel([start, grow, owner, "lab.stop()"])
    with a.setup_kernel():
        _run(a, nb_a, 0)
        _run(a, nb_a, 1)
        pid_a = _run(a, nb_a, 2).split()
        with b.setup_kernel():
            _run(b, nb_b, 0)
            _run(b, nb_b, 1)
            pid_b = _run(b, nb_b, 2).split()
            _run(b, nb_b, 3)
        assert pid_a[0] == "owner" and pid_b[0] == "follower"
        assert pid_a[1] == pid_b[1]  # one recorder, one exchange connection
        assert writer_pid(store) == int(pid_a[1])  # the follower's stop() left it running
        _run(a, nb_a, 3)
    assert writer_pid(store) is None


def test_live_bars_equal_bars_from_stored_ticks(tmp_path):
    lab = Lab(["BTCUSDT", "ETHUSDT"], store=tmp_path / "s", source="demo").start()
    try:
        lab.wait_ready(60, min_ticks=300)
    finally:
        lab.stop()
    st = TickStore(tmp_path / "s")
    for sym in lab.symbols:
        last_id = lab._last_id[sym]
        ticks = st.read(sym)
        ticks = ticks[ticks["trade_id"] <= last_id]
        for tf in ("1s", "1m"):
            live = lab.bars(sym, tf)
            ref = bars_from_arrays(ticks.index.asi8, ticks["price"].to_numpy(), ticks["qty"].to_numpy(), timeframe_ns(tf))
            assert live.index.equals(ref.index)
            for col in ("open", "high", "low", "close", "trades"):
                assert np.array_equal(live[col].to_numpy(), ref[col].to_numpy()), (sym, tf, col)
            np.testing.assert_allclose(live["volume"], ref["volume"], rtol=1e-12)
            np.testing.assert_allclose(live["vwap"], ref["vwap"], rtol=1e-12)
            assert live["partial"].tolist() == [False] * (len(live) - 1) + [True]
        assert len(lab.ticks(sym)) == len(ticks)
    # start() after stop() continues where it left off: no tick twice
    lab.start()
    try:
        lab.wait_ready(60)
        for sym in lab.symbols:
            ids = lab.ticks(sym)["trade_id"].to_numpy()
            assert np.all(np.diff(ids) == 1), sym
    finally:
        lab.stop()


def test_incremental_bars_match_batch_bars_for_any_split():
    rng = np.random.default_rng(1)
    t = np.sort(rng.integers(0, 600 * 10**9, 5000))
    p = 100 + rng.standard_normal(5000).cumsum() * 0.01
    q = rng.exponential(1.0, 5000)
    ref = bars_from_arrays(t, p, q, 10**10)
    inc = IncrementalBars(10**10)
    closed = 0
    for lo, hi in zip([0, 1, 7, 500, 2000, 4999], [1, 7, 500, 2000, 4999, 5000], strict=True):
        closed += len(inc.update(t[lo:hi], p[lo:hi], q[lo:hi]))
    got = inc.frame()
    assert closed == len(ref) - 1
    assert got.index.equals(ref.index)
    np.testing.assert_allclose(got[["open", "high", "low", "close", "volume", "vwap"]], ref[["open", "high", "low", "close", "volume", "vwap"]], rtol=1e-12)


def test_ring_keeps_the_newest_rows_and_bounded_memory():
    ring = TickRing(100)
    for k in range(50):
        ids = np.arange(k * 7, (k + 1) * 7)
        ring.append({"trade_id": ids, "time": ids, "price": ids * 1.0, "qty": np.ones(7), "is_buyer_maker": np.zeros(7, "u1")})
    snap = ring.snapshot()
    assert len(ring) == 100 and ring.total == 350
    assert snap["trade_id"].tolist() == list(range(250, 350))
    assert ring._cols["trade_id"].nbytes == 2 * 100 * 8
    with pytest.raises(ValueError, match="ring_size"):
        TickRing(0)


def test_align_never_uses_a_future_value():
    idx = pd.date_range("2024-01-01", periods=6, freq="1s", tz="UTC", name="time")
    y = pd.Series([1.0, 2, 3, 4, 5, 6], idx)
    x = pd.Series([10.0, 30], idx[[0, 2]])
    out = align_closes(y, x, "1s", max_ffill=2)
    assert out["x"].tolist() == [10, 10, 30, 30, 30]  # bounded: the 6th second has no x
    assert out.index[-1] == idx[4]


def test_bad_input(tmp_path):
    with TickStore(tmp_path / "s", mode="a", source="demo"):
        pass
    lab = Lab(["BTCUSDT", "ETHUSDT"], store=tmp_path / "s", source="demo")
    with pytest.raises(UnknownSymbolError, match="DOGEUSDT"):
        lab.ticks("DOGEUSDT")
    with pytest.raises(ValueError, match="timeframe"):
        lab.bars("BTCUSDT", "2x")
    with pytest.raises(ValueError, match="live timeframe"):
        lab.on_bar(print, "4h")  # live bars are 1s..1h; history at any timeframe
    with pytest.raises(ValueError, match="two symbols"):
        lab.pair("BTCUSDT", "btcusdt")
    with pytest.raises(ValueError, match="window"):
        lab.pair("ETHUSDT", "BTCUSDT", "1s", window=1)
    with pytest.raises(ValueError, match="source"):
        Lab(["BTCUSDT"], store=tmp_path / "s", source="kraken")
    # window larger than the data: legal, degenerate -> a warning and what there is
    idx = pd.date_range("2024-01-01", periods=3, freq="1min", tz="UTC", name="time")
    with pytest.warns(UserWarning, match="larger than"):
        out = align_closes(pd.Series([1.0, 2, 3], idx), pd.Series([1.0, 2, 3], idx), "1min", window=50)
    assert len(out) == 3
