"""Rows that fill a segment are written once, straight into the sealed segment.

Before, every row went into the active (SWMR) segment and was written again when the segment
was sealed. Rows that complete a segment now go with the active rows into the sealed segment
directly (``TickStore.direct_seal``). These tests check that the store then holds exactly
what the two-step path gives, and that a writer killed anywhere in that write leaves readers
seeing whole segments only, and the next writer losing nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantlab.store import TickStore

ROOT = Path(__file__).resolve().parents[1]
SEG = 1_000  # rows per segment in these tests


def _batches(seed: int = 3, n_batches: int = 60) -> list[dict[str, np.ndarray]]:
    """Consecutive ids in batches of 1..900 rows; every third batch without receipt times
    (imported rows), the others with them; one batch re-sends ids already given."""
    rng = np.random.default_rng(seed)
    out, next_id, t = [], 1, 1_700_000_000 * 10**9
    for i in range(n_batches):
        n = int(rng.integers(1, 900))
        ids = np.arange(next_id, next_id + n)
        times = t + np.cumsum(rng.integers(0, 5_000_000, n))
        b = {"trade_id": ids, "time": times, "price": 100 + rng.standard_normal(n).cumsum(),
             "qty": rng.exponential(1.0, n), "is_buyer_maker": rng.integers(0, 2, n).astype("u1")}
        if i % 3:
            b["event_time"] = times + 1_000
            b["recv_time"] = times + 2_000
        out.append(b)
        next_id, t = next_id + n, int(times[-1])
        if i == 20:  # a reconnect re-sends the last 50 ids: stored once
            out.append({k: v[-50:] for k, v in b.items()})
    return out


def _fill(path: Path, direct: bool, batches) -> None:
    with TickStore(path, mode="a") as st:
        st.segment_rows = SEG
        st.direct_seal = direct
        for b in batches:
            st.append("BTCUSDT", b)


def _segments(path: Path) -> list[tuple[str, int]]:
    folder = path / "trades" / "BTCUSDT"
    return [(p.name, os.path.getsize(p) > 0) for p in sorted(folder.glob("*.h5"))]


def test_direct_seal_stores_exactly_what_the_two_step_path_stores(tmp_path):
    batches = _batches()
    _fill(tmp_path / "direct", True, batches)
    _fill(tmp_path / "plain", False, batches)
    assert _segments(tmp_path / "direct") == _segments(tmp_path / "plain")
    with TickStore(tmp_path / "direct") as d, TickStore(tmp_path / "plain") as p:
        full = d.read("BTCUSDT")
        pd.testing.assert_frame_equal(full, p.read("BTCUSDT"))
        ids = full["trade_id"].to_numpy()
        assert len(ids) == sum(len(b["trade_id"]) for b in batches) - 50
        assert np.array_equal(ids, np.arange(1, len(ids) + 1))  # every id once, in order
        mid = full.index[len(full) // 3], full.index[2 * len(full) // 3]
        pd.testing.assert_frame_equal(d.read("BTCUSDT", start=mid[0], end=mid[1]),
                                      p.read("BTCUSDT", start=mid[0], end=mid[1]))
        a, b = d.read_after("BTCUSDT", 1234).arrays, p.read_after("BTCUSDT", 1234).arrays
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
        # receipt times of recorded rows survive; imported rows have none (NaT)
        recorded = full["recv_time"].notna().to_numpy()
        assert 0 < recorded.sum() < len(full)


def test_direct_seal_while_the_writer_is_open_is_seen_by_a_reader(tmp_path):
    batches = _batches(seed=5, n_batches=12)
    path = tmp_path / "s"
    st = TickStore(path, mode="a")
    st.segment_rows = SEG
    try:
        reader = TickStore(path)
        total = 0
        for b in batches:
            total += st.append("BTCUSDT", b)
            got = reader.read("BTCUSDT")["trade_id"].to_numpy()
            assert np.array_equal(got, np.arange(1, total + 1))  # flushed rows, whole segments
        reader.close()
    finally:
        st.close()


CHILD = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {root!r})
    import numpy as np
    from quantlab.store import TickStore, segments as seg
    from quantlab.store import tickstore

    batches = np.load({data!r}, allow_pickle=True)["batches"]
    st = TickStore({path!r}, mode="a")
    st.segment_rows = {seg_rows}
    for b in batches[:-1]:
        st.append("BTCUSDT", b)          # flushed: these must survive
    print("committed", flush=True)
    where = {where!r}
    if where == "mid-file":              # inside the sealed file's column writes
        real, calls = seg.h5s.create_simple, [0]
        class H5S:
            ALL = seg.h5s.ALL
            @staticmethod
            def create_simple(*a):
                calls[0] += 1
                if calls[0] == 4:
                    os._exit(9)
                return real(*a)
        seg.h5s = H5S
    elif where == "before-rename":       # the file is complete, its name not yet a segment's
        real_replace = seg.os.replace
        def replace(src, dst):
            if os.path.basename(dst).startswith("seg-"):
                os._exit(9)
            real_replace(src, dst)
        seg.os.replace = replace
    elif where == "after-rename":        # the segment counts; the active file is still there
        seg.ActiveWriter.close = lambda self: os._exit(9)
    st.append("BTCUSDT", batches[-1])
    print("not killed", flush=True)
""")


@pytest.mark.parametrize("where", ["mid-file", "before-rename", "after-rename"])
def test_a_writer_killed_during_a_direct_seal_loses_nothing_and_shows_no_half_segment(tmp_path, where):
    # 700 + 200 rows in the active segment, then 500: 100 of them fill the segment directly
    rng = np.random.default_rng(7)
    sizes, batches, first = [700, 200, 500], [], 1
    for n in sizes:
        ids = np.arange(first, first + n)
        batches.append({"trade_id": ids, "time": 1_700_000_000 * 10**9 + ids * 1_000_000,
                        "price": 100 + rng.random(n), "qty": rng.random(n) + 0.1,
                        "is_buyer_maker": np.zeros(n, "u1"), "event_time": ids, "recv_time": ids})
        first += n
    data = tmp_path / "batches.npz"
    arr = np.empty(len(batches), dtype=object)
    arr[:] = batches
    np.savez(data, batches=arr)
    path = tmp_path / "store"
    code = CHILD.format(root=str(ROOT), data=str(data), path=str(path), seg_rows=SEG, where=where)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stdout + proc.stderr
    assert "committed" in proc.stdout and "not killed" not in proc.stdout

    committed = np.arange(1, 901)
    with TickStore(path) as reader:  # no writer: what a reader sees after the crash
        ids = reader.read("BTCUSDT")["trade_id"].to_numpy()
    if where == "after-rename":  # the sealed segment (900 + 100 rows) counts whole
        assert np.array_equal(ids, np.arange(1, 1_001))
    else:  # the half-written or unnamed file is invisible; the flushed rows all there
        assert np.array_equal(ids, committed)

    with TickStore(path, mode="a") as st:  # the next writer salvages, then the batch again
        st.segment_rows = SEG
        assert st.read("BTCUSDT")["trade_id"].to_numpy()[:900].tolist() == committed.tolist()
        st.append("BTCUSDT", batches[-1])
    with TickStore(path) as reader:
        frame = reader.read("BTCUSDT")
    assert np.array_equal(frame["trade_id"].to_numpy(), np.arange(1, 1_401))  # each id once, in order
    assert np.array_equal(pd.DatetimeIndex(frame["recv_time"]).asi8, np.arange(1, 1_401))
    assert not list((path / "trades" / "BTCUSDT").glob(".*.tmp"))


def test_a_bulk_writers_active_segment_has_large_chunks_a_live_writers_small(tmp_path):
    import h5py

    from quantlab.store import segments as seg

    rng = np.random.default_rng(1)
    path = tmp_path / "s"
    with TickStore(path, mode="a") as st:
        for sym, n in (("BULKUSDT", 100_000), ("LIVEUSDT", 1_000)):
            ids = np.arange(1, n + 1)
            st.append(sym, {"trade_id": ids, "time": ids * 10**6, "price": 1 + rng.random(n),
                            "qty": rng.random(n) + 0.1, "is_buyer_maker": np.zeros(n, "u1")})
        chunks = {}
        for sym in ("BULKUSDT", "LIVEUSDT"):
            with h5py.File(path / "trades" / sym / seg.ACTIVE, "r", swmr=True) as f:
                chunks[sym] = f["price"].chunks[0]
        assert chunks == {"BULKUSDT": seg.CHUNK_ROWS, "LIVEUSDT": seg.ACTIVE_CHUNK_ROWS}
        with TickStore(path) as reader:  # what a reader sees of the open active segments
            assert reader.read("BULKUSDT")["trade_id"].tolist() == list(range(1, 100_001))
            assert reader.read("LIVEUSDT")["trade_id"].tolist() == list(range(1, 1_001))
