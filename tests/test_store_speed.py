"""The store's fast paths return exactly what the plain path returns: zero-copy (memory-mapped)
range reads, compressed segments (lzf, gzip, Blosc2/zstd), seals written from memory,
``bar_closes`` (what ``quantlab.closes`` reads); segments written without the newer
attributes still read; the fsync policy syncs when it says it does."""

from __future__ import annotations

import mmap
import os

import h5py
import numpy as np
import pandas as pd
import pytest

from quantlab.importer import import_file
from quantlab.store import TickStore
from quantlab.store import segments as seg
from quantlab.store.schema import NAT, TRADES, to_frame

T0 = 1_735_689_600_000_000_000  # 2025-01-01 UTC


def real_ticks(real_data, repeat: int = 1) -> dict[str, np.ndarray]:
    """The real BTCUSDT trades of tests/data (210 rows), tiled ``repeat`` times with later ids
    and times so that segments and 64k-row chunks fill up."""
    raw = pd.read_csv(real_data / "trades" / "BTCUSDT-trades-2025-01-01.rows0-209.csv", header=None)
    ids, t = raw[0].to_numpy("i8"), raw[4].to_numpy("i8") * 1_000
    span_id, span_t = int(ids[-1] - ids[0] + 1), int(t[-1] - t[0] + 1_000)
    k = np.repeat(np.arange(repeat, dtype="i8"), len(ids))
    return {"trade_id": np.tile(ids, repeat) + k * span_id, "time": np.tile(t, repeat) + k * span_t,
            "price": np.tile(raw[1].to_numpy("f8"), repeat), "qty": np.tile(raw[2].to_numpy("f8"), repeat),
            "is_buyer_maker": np.tile(raw[5].to_numpy(bool), repeat)}


def plain_read(store: TickStore, symbol: str, start=None, end=None) -> pd.DataFrame:
    """The reference: every segment through h5py's own reader (``_read_range``), concatenated."""
    from quantlab.store.schema import concat
    from quantlab.store.tickstore import to_ns

    folder = store._impl.layout.folder("trades", symbol)
    s, e = to_ns(start, "start"), to_ns(end, "end")
    parts = []
    for info in store._impl._segment_infos(folder):
        with h5py.File(info.path, "r") as f:
            parts.append(seg._read_range(f, TRADES, info.rows, info.time_sorted, s, e))
    return to_frame(concat(parts), TRADES)


def mapped(arr: np.ndarray) -> bool:
    base = arr
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None) if not isinstance(base, memoryview) else base.obj
    return isinstance(base, mmap.mmap)


@pytest.fixture
def three_segments(real_data, tmp_path):
    ticks = real_ticks(real_data, 30)  # 6,300 rows
    path = tmp_path / "store"
    with TickStore(path, mode="a") as st:
        st.segment_rows = 2_100
        st.append("BTCUSDT", ticks)
    return path, ticks


def test_range_read_inside_one_segment_is_mapped_and_equal_to_the_plain_read(three_segments):
    path, ticks = three_segments
    st = TickStore(path)
    assert len(st._impl._segment_infos(st._impl.layout.folder("trades", "BTCUSDT"))) == 3
    t = ticks["time"]
    start, end = pd.Timestamp(int(t[2_300]), tz="UTC"), pd.Timestamp(int(t[4_000]), tz="UTC")
    got = st.read("BTCUSDT", start, end)
    want = plain_read(st, "BTCUSDT", start, end)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert list(got.columns) == ["trade_id", "price", "qty", "is_buyer_maker"]
    assert str(got.index.dtype) == "datetime64[ns, UTC]" and got.index.name == "time"
    assert got["is_buyer_maker"].dtype == bool
    assert mapped(got["price"].to_numpy()) and mapped(got.index.asi8)  # no copy was made
    # the map is private: writing to the frame changes neither the file nor the next read
    got.loc[got.index[0], "price"] = -1.0
    got["qty"] = 0.0
    again = st.read("BTCUSDT", start, end)
    pd.testing.assert_frame_equal(again, want, check_exact=True)


def test_reads_across_segments_equal_the_plain_read(three_segments):
    path, ticks = three_segments
    st = TickStore(path)
    t = ticks["time"]
    for lo, hi in ((0, 6_300), (1_000, 5_000), (2_099, 2_101), (4_200, 4_200)):
        start = pd.Timestamp(int(t[lo]), tz="UTC")
        end = pd.Timestamp(int(t[hi]) if hi < len(t) else int(t[-1]) + 1, tz="UTC")
        pd.testing.assert_frame_equal(st.read("BTCUSDT", start, end), plain_read(st, "BTCUSDT", start, end),
                                      check_exact=True)
    full = st.read("BTCUSDT")
    assert np.array_equal(full.index.asi8, ticks["time"]) and np.array_equal(full["trade_id"], ticks["trade_id"])


@pytest.mark.parametrize("compression", ["lzf", "gzip", "blosc2-zstd"])
def test_compressed_store_returns_exactly_what_the_plain_store_returns(real_data, tmp_path, compression):
    ticks = real_ticks(real_data, 700)  # 147,000 rows: three 64k-row chunks
    live = {k: v[:5_000] for k, v in ticks.items()}
    live["event_time"] = live["time"] + 2_000_000
    live["recv_time"] = live["time"] + 9_000_000  # recorded rows carry receipt times
    imported = {k: v[5_000:] for k, v in ticks.items()}
    stores = {}
    for comp in (None, compression):
        path = tmp_path / str(comp)
        with TickStore(path, mode="a", compression=comp) as st:
            st.append("BTCUSDT", live)
            st.append("BTCUSDT", imported)
        stores[comp] = TickStore(path)
    plain, packed = stores[None], stores[compression]
    infos = packed._impl._segment_infos(packed._impl.layout.folder("trades", "BTCUSDT"))
    with h5py.File(infos[0].path) as f:
        assert f["price"].chunks is not None  # really compressed
    t = ticks["time"]
    bounds = [(None, None), (t[0], t[65_536]), (t[65_535], t[65_537]), (t[4_999], t[5_001]),
              (t[100_000], t[-1] + 1), (t[70_000], t[70_000])]
    for lo, hi in bounds:
        a = plain.read("BTCUSDT", lo, hi)
        pd.testing.assert_frame_equal(packed.read("BTCUSDT", lo, hi), a, check_exact=True)
        pd.testing.assert_frame_equal(a, plain_read(plain, "BTCUSDT", lo, hi), check_exact=True)
    full = packed.read("BTCUSDT")
    assert full["recv_time"].isna().sum() == len(ticks["time"]) - 5_000  # NaT where imported
    assert str(full["recv_time"].dtype) == "datetime64[ns, UTC]"
    if compression == "blosc2-zstd":
        assert packed.path.joinpath("store.json").read_text().count("blosc2-zstd") == 1


def test_compressed_segment_without_a_chunk_index_still_reads(real_data, tmp_path):
    """Release 0.1 wrote lzf/gzip segments with 262,144-row chunks and no chunk_first_time."""
    ticks = real_ticks(real_data, 1_500)  # 315,000 rows
    path = tmp_path / "store"
    with TickStore(path, mode="a", compression="lzf"):
        pass
    folder = path / "trades" / "BTCUSDT"
    folder.mkdir(parents=True)
    with h5py.File(folder / seg.sealed_name(int(ticks["trade_id"][0])), "w", libver="latest") as f:
        for name, dt in TRADES.columns:
            if name in ticks:
                f.create_dataset(name, data=ticks[name].astype(dt), chunks=(262_144,), compression="lzf",
                                 shuffle=True)
        t = ticks["time"]
        f.attrs.update(rows=len(t), first_id=int(ticks["trade_id"][0]), last_id=int(ticks["trade_id"][-1]),
                       kind="trades", first_time=int(t.min()), last_time=int(t.max()), time_sorted=True)
    st = TickStore(path)
    lo, hi = int(t[262_000]), int(t[263_000])
    got = st.read("BTCUSDT", lo, hi)
    inside = (t >= lo) & (t < hi)  # real trades share microseconds: not just rows 262,000-263,000
    assert np.array_equal(got["trade_id"].to_numpy(), ticks["trade_id"][inside]) and inside.sum() >= 1_000
    pd.testing.assert_frame_equal(got, plain_read(st, "BTCUSDT", lo, hi), check_exact=True)


def test_seal_from_memory_keeps_what_was_appended_even_if_the_caller_reuses_its_arrays(tmp_path):
    buf = {"trade_id": np.zeros(100, "i8"), "time": np.zeros(100, "i8"), "price": np.zeros(100),
           "qty": np.ones(100), "is_buyer_maker": np.zeros(100, bool)}
    path = tmp_path / "store"
    with TickStore(path, mode="a") as st:
        for k in range(5):  # one buffer, refilled for each batch (as a feed handler would)
            buf["trade_id"][:] = np.arange(k * 100, (k + 1) * 100)
            buf["time"][:] = T0 + buf["trade_id"] * 1_000_000
            buf["price"][:] = 100.0 + k
            st.append("BTCUSDT", buf)
    got = TickStore(path).read("BTCUSDT")
    assert np.array_equal(got["trade_id"].to_numpy(), np.arange(500))
    assert np.array_equal(got["price"].to_numpy(), np.repeat(100.0 + np.arange(5), 100))
    assert "recv_time" not in got  # imported-style rows: the seal stores no empty receipt columns


def test_seal_without_the_memory_cache_reads_the_file_back(tmp_path, monkeypatch):
    monkeypatch.setattr(seg, "SEAL_CACHE_BYTES", 0)
    path = tmp_path / "store"
    rows = {"trade_id": np.arange(300), "time": T0 + np.arange(300) * 10**6, "price": np.full(300, 2.0),
            "qty": np.full(300, 0.1), "is_buyer_maker": np.ones(300, bool),
            "event_time": np.full(300, NAT), "recv_time": T0 + np.arange(300) * 10**6 + 5}
    with TickStore(path, mode="a") as st:
        st.append("BTCUSDT", {k: v[:150] for k, v in rows.items()})
        st.append("BTCUSDT", {k: v[150:] for k, v in rows.items()})
    got = TickStore(path).read("BTCUSDT")
    assert np.array_equal(pd.DatetimeIndex(got["recv_time"]).asi8, rows["recv_time"])
    assert "event_time" not in got and seg._seal_cache_used == 0  # all NaT: not stored


def test_fsync_policies(tmp_path, monkeypatch):
    calls = []
    real = os.fsync
    monkeypatch.setattr(seg.os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    batch = {"trade_id": [1], "time": [T0], "price": [1.0], "qty": [1.0], "is_buyer_maker": [True]}

    def appends(policy, n=3):
        st = TickStore(tmp_path / policy, mode="a", fsync=policy)
        calls.clear()  # creating the store writes store.json durably, whatever the policy
        for k in range(n):
            st.append("BTCUSDT", {**batch, "trade_id": [k + 1], "time": [T0 + k]})
        during = len(calls)
        st.close()  # seals the active segment
        return during, len(calls) - during

    assert appends("never") == (0, 0)
    during, at_close = appends("seal")
    assert during == 0 and at_close >= 2  # the sealed file and its folder
    during, at_close = appends("always")
    assert during >= 3 and at_close >= 2
    during, _ = appends("interval")
    assert 1 <= during < 3  # the first flush syncs; the next ones, within a second, do not
    assert TickStore.__init__.__kwdefaults__["fsync"] == "interval"
    st = TickStore(tmp_path / "sync", mode="a", fsync="interval")
    st.append("BTCUSDT", batch)
    calls.clear()
    st.append("BTCUSDT", {**batch, "trade_id": [2]})
    assert calls == []
    st.sync()
    assert calls  # an explicit sync always reaches the disk
    st.close()
    with pytest.raises(ValueError, match="fsync: 'sometimes' is not one of"):
        TickStore(tmp_path / "bad", mode="a", fsync="sometimes")


@pytest.mark.parametrize("timeframe", ["1m", "5m", "1h", "1d"])
def test_bar_closes_equal_the_close_of_bars(real_data, tmp_path, timeframe):
    path = tmp_path / "store"
    sol = tmp_path / "SOLUSDT-1m-2025-07-13.csv"  # the real BTC minutes as a klines-only spot symbol
    sol.write_bytes((real_data / "klines" / "BTCUSDT-1m-2025-07-13.csv").read_bytes())
    with TickStore(path, mode="a") as st:
        import_file(st, sol, progress=False)
        import_file(st, real_data / "klines" / "BTCUSDT-1m-2025-07-13.csv", progress=False)
        import_file(st, real_data / "trades" / "BTCUSDT-trades-2025-01-01.rows0-209.csv", progress=False)
        import_file(st, real_data / "klines" / "ETHUSDT-1h-2022-08-24.zip", market="um", progress=False)
    st = TickStore(path)
    for symbol in ("BTCUSDT", "SOLUSDT", "um:ETHUSDT"):  # ticks + klines (the general path) | klines only
        for start, end in ((None, None), ("2022-08-24 05:30", "2022-08-24 17:10"),
                           ("2025-07-13 05:07:30", "2025-07-13 17:03"), ("2022-08-24 10:00", "2025-07-13 00:03")):
            if symbol == "um:ETHUSDT" and timeframe in ("1m", "5m"):
                continue  # 1h klines make no minute bars
            want = st.bars(symbol, timeframe, start, end)["close"]
            got = st.bar_closes(symbol, timeframe, start, end)
            pd.testing.assert_series_equal(got, want, check_exact=True)
            assert len(want) or start is not None


def test_bar_closes_of_a_klines_only_symbol_do_not_build_bars(real_data, tmp_path, monkeypatch):
    path = tmp_path / "store"
    with TickStore(path, mode="a") as st:
        import_file(st, real_data / "klines" / "BTCUSDT-1m-2025-07-13.csv", progress=False)
    st = TickStore(path)
    want = st.bars("BTCUSDT", "15m")["close"]
    monkeypatch.setattr(TickStore, "bars", lambda *a, **k: pytest.fail("the fast path built bars"))
    pd.testing.assert_series_equal(st.bar_closes("BTCUSDT", "15m"), want, check_exact=True)
    assert len(want) == 96


def test_pooled_result_memory_is_reused_only_once_nothing_uses_it(three_segments, monkeypatch):
    from quantlab.store import pool

    monkeypatch.setattr(pool, "MIN_BYTES", 1_000)  # the fixture's reads are small
    path, ticks = three_segments
    st = TickStore(path)
    first = st.read("BTCUSDT")  # three segments: read into pooled buffers
    price = first["price"].to_numpy()
    keep = price[100:200]  # a view of the first result outlives the frame
    ptr = first["trade_id"].to_numpy().ctypes.data
    del first, price
    second = st.read("BTCUSDT")
    assert not np.shares_memory(second["price"].to_numpy(), keep)  # pinned by the view
    assert np.array_equal(keep, ticks["price"][100:200])
    assert second["trade_id"].to_numpy().ctypes.data == ptr  # free: reused
    pd.testing.assert_frame_equal(second, plain_read(st, "BTCUSDT"), check_exact=True)
    second.loc[second.index[0], "qty"] = -1.0
    assert np.array_equal(keep, ticks["price"][100:200])
