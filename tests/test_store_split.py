"""The store's reader and writer are separate classes behind ``TickStore``: a reader has no
write method and never takes the writer lock, the writer has the write path, and
``read_after`` returns the public ``TickRows``."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import quantlab.live.lab as lab_module
from quantlab.errors import StoreLockedError
from quantlab.store import TickRows, TickStore
from quantlab.store.lock import WriterLock
from quantlab.store.reader import StoreReader
from quantlab.store.writer import StoreWriter
from quantlab.timestamps import in_window

WRITE_METHODS = ("append", "flush", "sync", "append_klines", "note_time_unit", "add_gap", "remove_gap")
READ_METHODS = ("read", "read_after", "bars", "bar_closes", "klines", "last_trade_id", "symbols",
                "time_units", "gaps", "counters", "info", "writer_pid", "refresh", "close")


def real_ticks(real_data: Path) -> dict[str, np.ndarray]:
    """The real BTCUSDT trades of tests/data (210 rows; times in µs on file)."""
    raw = pd.read_csv(real_data / "trades" / "BTCUSDT-trades-2025-01-01.rows0-209.csv", header=None)
    return {"trade_id": raw[0].to_numpy("i8"), "time": raw[4].to_numpy("i8") * 1_000,
            "price": raw[1].to_numpy("f8"), "qty": raw[2].to_numpy("f8"),
            "is_buyer_maker": raw[5].to_numpy(bool)}


def later(ticks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The same trades again, with the ids and times that follow the last ones."""
    ids, t = ticks["trade_id"], ticks["time"]
    return {**ticks, "trade_id": ids + int(ids[-1] - ids[0] + 1), "time": t + int(t[-1] - t[0] + 1)}


@pytest.fixture
def stored(real_data, tmp_path):
    """A store holding the real rows, its writer closed; returns (path, ticks)."""
    ticks = real_ticks(real_data)
    path = tmp_path / "store"
    with TickStore(path, mode="a") as st:
        st.append("BTCUSDT", ticks)
    return path, ticks


def test_the_reader_class_has_no_write_method_and_the_writer_has_the_write_path():
    for name in WRITE_METHODS:
        assert not hasattr(StoreReader, name), f"StoreReader.{name} exists"
        assert callable(getattr(StoreWriter, name)), f"StoreWriter.{name} is missing"
    for name in ("_lock", "_tables", "_recover"):
        assert not hasattr(StoreReader, name)
    for name in READ_METHODS:  # both read: the writer reads its own open segments
        assert callable(getattr(StoreReader, name)) and callable(getattr(StoreWriter, name))
    for name in WRITE_METHODS + READ_METHODS:  # the facade keeps the whole API
        assert callable(getattr(TickStore, name))


def test_tickstore_opens_a_reader_or_the_writer_and_a_reader_refuses_writes_as_before(stored):
    path, ticks = stored
    reader = TickStore(path)
    assert isinstance(reader._impl, StoreReader) and not reader.writable
    with pytest.raises(PermissionError, match="read-only"):
        reader.add_gap("BTCUSDT", 1, 2, "test")
    with TickStore(path, mode="a") as writer:
        assert isinstance(writer._impl, StoreWriter) and writer.writable
    with pytest.raises(PermissionError, match="read-only"):  # a closed writer writes no more
        writer.append("BTCUSDT", ticks)


def test_opening_a_reader_never_takes_the_writer_lock(stored, monkeypatch):
    path, ticks = stored
    (path / "writer.lock").unlink(missing_ok=True)

    def refuse(self):
        raise AssertionError("a reader took the writer lock")

    monkeypatch.setattr(WriterLock, "acquire", refuse)
    for reader in (TickStore(path), StoreReader(path)):
        assert len(reader.read("BTCUSDT")) == len(ticks["trade_id"])
        assert len(reader.read_after("BTCUSDT", None)) == len(ticks["trade_id"])
        reader.info()
        reader.close()
    assert not (path / "writer.lock").exists()  # and created no lock file


def test_readers_open_beside_the_writer_that_holds_the_lock(stored):
    path, ticks = stored
    writer = TickStore(path, mode="a")
    try:
        assert writer.writer_pid() == os.getpid()
        with pytest.raises(StoreLockedError):
            TickStore(path, mode="a")  # one writer at a time ...
        reader = TickStore(path)  # ... and any number of readers beside it
        more = later(ticks)
        writer.append("BTCUSDT", more)
        rows = reader.read_after("BTCUSDT", int(ticks["trade_id"][-1]))
        np.testing.assert_array_equal(rows["trade_id"], more["trade_id"])
        mine = writer.read_after("BTCUSDT", int(ticks["trade_id"][-1]))  # the writer's own segment
        np.testing.assert_array_equal(mine["trade_id"], more["trade_id"])
        reader.close()
        assert writer.writer_pid() == os.getpid()  # closing a reader leaves the lock alone
    finally:
        writer.close()
    assert TickStore(path).writer_pid() is None


def test_read_after_returns_tickrows_equal_to_read(stored):
    path, ticks = stored
    st = TickStore(path)
    after = int(ticks["trade_id"][99])
    rows = st.read_after("BTCUSDT", after)
    assert isinstance(rows, TickRows) and rows.kind == "trades"
    assert len(rows) == 110 and rows.last_id == int(ticks["trade_id"][-1])
    np.testing.assert_array_equal(rows["price"], ticks["price"][100:])
    want = st.read("BTCUSDT")
    pd.testing.assert_frame_equal(rows.to_frame(), want[want["trade_id"] > after], check_exact=True)
    assert str(rows).startswith("TickRows(trades: 110 row(s)") and "TickRows" in rows._repr_html_()


def test_read_after_with_nothing_new_is_an_empty_tickrows_with_every_column(stored):
    path, ticks = stored
    st = TickStore(path)
    for rows in (st.read_after("BTCUSDT", int(ticks["trade_id"][-1])), st.read_after("ETHUSDT", None)):
        assert isinstance(rows, TickRows) and len(rows) == 0 and not rows and rows.last_id is None
        assert rows.columns == ("trade_id", "time", "price", "qty", "is_buyer_maker", "event_time", "recv_time")
        none = st.read("BTCUSDT", end=int(ticks["time"][0]))  # what read() gives for no rows
        pd.testing.assert_frame_equal(rows.to_frame(), none)


def test_tickrows_is_frozen_and_names_a_missing_column():
    rows = TickRows({"trade_id": np.array([1]), "time": np.array([5]), "price": np.array([1.0]),
                     "qty": np.array([2.0]), "is_buyer_maker": np.array([0], "u1")})
    with pytest.raises(dataclasses.FrozenInstanceError):
        rows.kind = "aggtrades"  # type: ignore[misc]
    with pytest.raises(TypeError):
        rows.arrays["price"] = np.array([3.0])  # type: ignore[index]
    with pytest.raises(ValueError, match="price"):
        TickRows({"trade_id": np.array([1]), "time": np.array([5])})
    with pytest.raises(ValueError, match="kind"):
        TickRows({}, "candles")


def test_aggtrades_read_after_is_keyed_by_agg_id(tmp_path):
    agg = {"agg_id": np.array([7, 8, 9]), "time": np.array([1, 2, 3]) * 10**9 + 1_735_689_600 * 10**9,
           "price": np.array([1.0, 2.0, 3.0]), "qty": np.ones(3), "is_buyer_maker": np.zeros(3, bool),
           "first_trade_id": np.array([70, 80, 90]), "last_trade_id": np.array([71, 80, 92])}
    with TickStore(tmp_path / "s", mode="a") as st:
        st.append("um:BTCUSDT", agg, kind="aggtrades")
    rows = TickStore(tmp_path / "s").read_after("um:BTCUSDT", 7, kind="aggtrades")
    assert rows.kind == "aggtrades" and rows.last_id == 9
    np.testing.assert_array_equal(rows["last_trade_id"], [80, 92])


def test_lab_uses_the_public_store_api_only():
    """Lab read the store's private ``schema.to_frame`` because ``read_after`` returned a dict."""
    tree = ast.parse(inspect.getsource(lab_module))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {m for m in imported if m and m.startswith("quantlab.store.")}, imported


def test_in_window_is_the_half_open_window_of_searchsorted():
    rng = np.random.default_rng(7)
    t = np.sort(rng.integers(0, 1_000, 500))
    for lo, hi in [(None, None), (100, 900), (t[10], t[10]), (t[3], None), (None, t[-1]), (950, 50)]:
        a = 0 if lo is None else np.searchsorted(t, lo, "left")
        b = len(t) if hi is None else np.searchsorted(t, hi, "left")
        want = np.zeros(len(t), bool)
        want[a:max(a, b)] = True
        np.testing.assert_array_equal(in_window(t, lo, hi), want)
        shuffled = rng.permutation(len(t))
        np.testing.assert_array_equal(in_window(t[shuffled], lo, hi), want[shuffled])
