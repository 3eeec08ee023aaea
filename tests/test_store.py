"""TickStore: ordering, dedupe, rejects, range reads, bars, locking, readers, crash recovery."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pandas as pd
import pytest

from quantlab.errors import StoreCorruptError, StoreLockedError, UnknownSymbolError
from quantlab.pandas_compat import EXACT_FLOATS
from quantlab.store import TickStore

T0 = 1_723_161_255_000_000_000  # 2024-08-08T23:54:15Z in ns


def ticks(ids, t0=T0, step_ns=1_000_000, price=None):
    ids = np.asarray(ids, dtype="i8")
    return {
        "trade_id": ids,
        "time": t0 + (ids - ids.min()) * step_ns if len(ids) else ids,
        "price": np.asarray(price, float) if price is not None else 100.0 + (ids % 97) * 0.01,
        "qty": np.full(len(ids), 0.5),
        "is_buyer_maker": (ids % 2).astype(bool),
    }


@pytest.fixture
def store(tmp_path):
    st = TickStore(tmp_path / "store", mode="a")
    yield st
    st.close()


def test_append_read_roundtrip_and_schema(store):
    assert store.append("btcusdt", ticks(range(1000, 1010))) == 10
    df = store.read("BTCUSDT")
    assert list(df.columns) == ["trade_id", "price", "qty", "is_buyer_maker", "event_time", "recv_time"]
    assert isinstance(df.index, pd.DatetimeIndex) and str(df.index.tz) == "UTC" and df.index.name == "time"
    assert df["trade_id"].dtype == np.int64 and df["price"].dtype == np.float64
    assert df["is_buyer_maker"].dtype == bool
    assert df["trade_id"].tolist() == list(range(1000, 1010))
    assert df.index[0] == pd.Timestamp(T0, tz="UTC")


def test_duplicate_ids_are_a_noop_and_order_is_by_id(store):
    store.append("BTCUSDT", ticks([5, 3, 4, 3]))
    assert store.append("BTCUSDT", ticks([3, 4, 5])) == 0
    assert store.append("BTCUSDT", ticks([1, 2, 6])) == 3  # older and newer at once
    assert store.read("BTCUSDT")["trade_id"].tolist() == [1, 2, 3, 4, 5, 6]


def test_rows_between_sealed_segments_merge_in_order(tmp_path):
    st = TickStore(tmp_path / "s", mode="a")
    st.segment_rows = 100
    st.append("X", ticks(range(0, 1000, 2)))  # several sealed segments (500 rows)
    st.append("X", ticks(range(1, 1000, 2)))  # every odd id falls inside existing segments
    st.append("X", ticks(range(2000, 2010)))
    st.append("X", ticks(range(1500, 1505)))  # between segments
    st.close()
    ids = TickStore(tmp_path / "s").read("X")["trade_id"].to_numpy()
    assert np.array_equal(ids, np.r_[np.arange(1000), np.arange(1500, 1505), np.arange(2000, 2010)])


def test_bad_prices_are_rejected_counted_and_never_stored(store, caplog):
    b = ticks([1, 2, 3, 4, 5])
    b["price"][1] = 0.0
    b["qty"][3] = -1.0
    b["price"][4] = np.nan
    assert store.append("TRXUSDT", b) == 2
    assert store.read("TRXUSDT")["trade_id"].tolist() == [1, 3]
    assert store.counters()["TRXUSDT"]["rejected"] == 3
    assert store.info().set_index("symbol").loc["TRXUSDT", "rejected"] == 3
    assert "rejected 3" in caplog.text


def test_real_zero_price_trade_from_usdm_stream_is_rejected(store, real_data):
    path = next((real_data / "trx").glob("*usd_m_futures*"))
    raw = pd.read_csv(path, **EXACT_FLOATS)
    batch = {
        "trade_id": raw["TradeId"].to_numpy(), "price": raw["Price"].to_numpy(float),
        "qty": raw["Quantity"].to_numpy(float), "time": raw["TransactionTime"].to_numpy("i8") * 1_000_000,
        "is_buyer_maker": raw["IsBuyerMarketMaker"].astype(bool).to_numpy(),
    }
    assert store.append("TRXUSDT", batch) == len(raw) - 1
    stored = store.read("TRXUSDT")
    assert 548331095 not in set(stored["trade_id"]) and (stored["price"] > 0).all()


def test_time_range_read(store):
    store.append("A", ticks(range(100), step_ns=1_000_000_000))
    df = store.read("A", start=pd.Timestamp(T0 + 10 * 10**9, tz="UTC"), end=T0 + 20 * 10**9)
    assert df["trade_id"].tolist() == list(range(10, 20))
    naive = store.read("A", start=pd.Timestamp(T0 + 95 * 10**9).tz_localize(None).isoformat())
    assert naive["trade_id"].tolist() == list(range(95, 100))
    with pytest.raises(ValueError, match="start"):
        store.read("A", start="not a time")
    with pytest.raises(ValueError, match="before start"):
        store.read("A", start=T0 + 5, end=T0)


def test_bars_from_trade_time(store):
    b = ticks([1, 2, 3, 4], price=[10.0, 12.0, 9.0, 11.0])
    b["time"] = np.array([0, 30, 59_999, 60_000]) * 1_000_000 + 1_699_999_980_000_000_000  # a minute boundary
    b["qty"] = np.array([1.0, 2.0, 1.0, 4.0])
    store.append("P", b)
    bars = store.bars("P", "1m")
    assert list(bars.columns) == ["open", "high", "low", "close", "volume", "vwap", "trades", "source"]
    assert (bars["source"] == "ticks").all()
    first = bars.iloc[0]
    assert (first.open, first.high, first.low, first.close, first.volume, first.trades) == (10, 12, 9, 9, 4, 3)
    assert first.vwap == pytest.approx((10 + 24 + 9) / 4)
    assert bars.index[1] - bars.index[0] == pd.Timedelta("1min") and bars.iloc[1].trades == 1
    with pytest.raises(ValueError, match="timeframe"):
        store.bars("P", "soon")


def test_unknown_symbol_names_known_ones(store):
    store.append("ETHUSDT", ticks([1]))
    with pytest.raises(UnknownSymbolError, match="known: ETHUSDT"):
        store.read("DOGEUSDT")
    with pytest.raises(UnknownSymbolError):
        store.bars("DOGEUSDT", "1m")


def test_second_writer_gets_a_clear_error(tmp_path, store):
    with pytest.raises(StoreLockedError, match=f"pid {os.getpid()}"):
        TickStore(store.path, mode="a")
    code = f"from quantlab.store import TickStore\nTickStore({str(store.path)!r}, mode='a')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0 and "already being written by pid" in out.stderr


def test_reader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TickStore(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(StoreCorruptError, match="not a quantlab store"):
        TickStore(tmp_path / "plain")
    with pytest.raises(ValueError, match="mode"):
        TickStore(tmp_path, mode="w")


def test_corrupt_segment_file_is_named(tmp_path):
    with TickStore(tmp_path / "s", mode="a") as st:
        st.append("A", ticks(range(10)))
    seg = next((tmp_path / "s" / "trades" / "A").glob("seg-*.h5"))
    seg.write_bytes(b"this is not hdf5" * 100)
    with pytest.raises(StoreCorruptError, match=seg.name):
        TickStore(tmp_path / "s").read("A")


def test_readonly_store_refuses_writes(tmp_path):
    with TickStore(tmp_path / "s", mode="a") as st:
        st.append("A", ticks([1]))
    with pytest.raises(PermissionError, match="read-only"):
        TickStore(tmp_path / "s").append("A", ticks([2]))


# ---------------------------------------------------------------- processes

WRITER = textwrap.dedent("""
    import sys, time, numpy as np
    from quantlab.store import TickStore
    st = TickStore(sys.argv[1], mode="a")
    batch, n = 0, 200
    T0 = 1_723_161_255_000_000_000
    while True:
        ids = np.arange(batch * n, (batch + 1) * n, dtype="i8")
        st.append("BTCUSDT", {"trade_id": ids, "time": T0 + ids * 1000, "price": 100 + ids * 1e-3,
                              "qty": np.ones(n), "is_buyer_maker": np.zeros(n, bool)})
        print(batch, flush=True)   # acknowledged: append() returned after a flush
        batch += 1
        time.sleep(0.002)
""")


def test_sigkill_writer_loses_no_acknowledged_batch(tmp_path):
    path = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    acked = -1
    deadline = time.time() + 60
    while acked < 150 and time.time() < deadline:
        acked = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for line in proc.stdout:  # acknowledgements already in the pipe count too
        acked = max(acked, int(line))
    assert acked >= 150
    # the next open needs no manual step (no h5clear) and holds every acknowledged batch
    with TickStore(path, mode="a") as st:
        ids = st.read("BTCUSDT")["trade_id"].to_numpy()
        assert len(ids) >= (acked + 1) * 200
        assert np.array_equal(ids, np.arange(len(ids)))
        st.append("BTCUSDT", ticks([len(ids)]))
    assert TickStore(path).last_trade_id("BTCUSDT") == len(ids)
    # plain (non-SWMR) opens of every file work again after recovery
    for f in path.rglob("*.h5"):
        h5py.File(f, "r").close()


def _reader(path, q):
    st = TickStore(path)
    seen = []
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            n = len(st.read("A"))
        except UnknownSymbolError:
            n = 0
        if not seen or n != seen[-1]:
            seen.append(n)
            if len(seen) == 1:
                q.put("ready")  # the writer starts appending once the reader is reading
        if n >= 3000:
            break
        time.sleep(0.005)
    q.put(seen)


def test_reader_process_sees_rows_while_writer_appends(tmp_path):
    path = tmp_path / "store"
    st = TickStore(path, mode="a")
    st.append("A", ticks(range(0, 100)))
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    reader = ctx.Process(target=_reader, args=(str(path), q))
    reader.start()
    assert q.get(timeout=60) == "ready"  # process start-up is slow on a loaded machine
    for k in range(1, 30):
        st.append("A", ticks(range(k * 100, (k + 1) * 100)))
        time.sleep(0.02)
    seen = q.get(timeout=40)
    reader.join(10)
    st.close()
    assert seen[-1] == 3000
    assert len(seen) >= 3, f"the reader saw only {seen}"  # grew while the writer appended
    assert seen == sorted(seen)


def test_compressed_store_reads_the_same(tmp_path):
    data = ticks(range(5000), step_ns=1_000_000)
    for comp in (None, "lzf", "gzip"):
        with TickStore(tmp_path / str(comp), mode="a", compression=comp) as st:
            st.append("A", data)
        df = TickStore(tmp_path / str(comp)).read("A", start=T0 + 1000 * 1_000_000, end=T0 + 4000 * 1_000_000)
        assert df["trade_id"].tolist() == list(range(1000, 4000))
        assert np.array_equal(df["price"].to_numpy(), data["price"][1000:4000])
    with pytest.raises(ValueError, match="compression"):
        TickStore(tmp_path / "x", mode="a", compression="zstd")


def test_truncated_segment_is_reported(tmp_path):
    with TickStore(tmp_path / "s", mode="a") as st:
        st.append("A", ticks(range(1000)))
    seg = next((tmp_path / "s" / "trades" / "A").glob("seg-*.h5"))
    seg.write_bytes(seg.read_bytes()[: seg.stat().st_size - 4000])
    with pytest.raises(StoreCorruptError):
        TickStore(tmp_path / "s").read("A")


LEAVE_ACTIVE = textwrap.dedent("""
    import os, sys, numpy as np
    from quantlab.store import TickStore
    st = TickStore(sys.argv[1], mode="a")
    ids = np.arange(1, 1001, dtype="i8")
    st.append("BTCUSDT", {"trade_id": ids, "time": 1_723_161_255_000_000_000 + ids * 1000,
                          "price": 100 + ids * 1e-3, "qty": np.ones(1000), "is_buyer_maker": np.zeros(1000, bool)})
    os._exit(9)   # killed: the flushed rows are only in the active segment
""")

CRASH_WHILE_RECOVERING = textwrap.dedent("""
    import os, sys
    from quantlab.store import writer
    # the recovering writer dies after re-appending the salvaged rows, before they are sealed
    writer.StoreWriter._seal_active = lambda self, table, also=None: os._exit(9)
    writer.StoreWriter(__import__("pathlib").Path(sys.argv[1]))
""")


def test_a_writer_killed_while_recovering_the_previous_active_segment_loses_nothing(tmp_path):
    path = tmp_path / "store"
    for script in (LEAVE_ACTIVE, CRASH_WHILE_RECOVERING):
        proc = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True)
        assert proc.returncode == 9, proc.stderr
    with TickStore(path, mode="a") as st:  # the third writer recovers again
        ids = st.read("BTCUSDT")["trade_id"].to_numpy()
    assert np.array_equal(ids, np.arange(1, 1001))
    assert not list(path.rglob("*.h5x"))  # nothing left aside once sealed
