"""A store written in release 0.1's layout (no ``source``, no markets) opens unchanged as a
store of real spot data (issue 18 acceptance); ``tests/legacy_store.py`` writes it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from legacy_store import write_legacy_store

from quantlab.errors import StoreIdentityError
from quantlab.store import TickStore


@pytest.fixture
def legacy(tmp_path):
    path = tmp_path / "store"
    return path, write_legacy_store(path)


def test_a_01_store_reads_the_same(legacy):
    path, ref = legacy
    marker = (path / "store.json").read_bytes()
    st = TickStore(path)
    assert st.source == "binance"
    assert st.symbols() == ["BTCUSDT", "BTCUSD_PERP", "ETHUSDT", "SOLUSDT"]
    assert len(st.klines("BTCUSD_PERP", "1m")) == 1440  # mis-filed by 0.1, still readable
    btc = st.read("BTCUSDT")
    for name in ("trade_id", "price", "qty"):
        assert np.array_equal(btc[name].to_numpy(), ref["btc"][name])
    assert np.array_equal(btc.index.asi8, ref["btc"]["time"])
    assert np.array_equal(btc["is_buyer_maker"].to_numpy(), ref["btc"]["is_buyer_maker"].astype(bool))
    eth = st.read("ETHUSDT")  # a dead writer's active segment: committed rows only
    assert np.array_equal(eth["trade_id"].to_numpy(), ref["eth"]["trade_id"])
    assert np.array_equal(pd.DatetimeIndex(eth["recv_time"]).asi8, ref["eth"]["recv_time"])
    agg = st.read("ETHUSDT", kind="aggtrades")
    assert np.array_equal(agg["last_trade_id"].to_numpy(), ref["agg"]["last_trade_id"])
    k = st.klines("SOLUSDT", "1m")
    assert np.array_equal(k["close"].to_numpy(), ref["klines"]["close"]) and len(st.bars("SOLUSDT", "1h")) == 24
    info = st.info().set_index(["symbol", "kind"])
    assert info.loc[("BTCUSDT", "trades"), "rows"] == 210 and info.loc[("BTCUSDT", "trades"), "rejected"] == 2
    assert info.loc[("BTCUSDT", "trades"), "gap_ids"] == 10
    assert info.loc[("ETHUSDT", "trades"), "rows"] == 39
    assert info.loc[("SOLUSDT", "klines 1m"), "rows"] == 1440
    assert info.loc[("BTCUSD_PERP", "klines 1m"), "rows"] == 1440
    assert st.gaps()["count"].tolist() == [10]
    st.close()
    assert (path / "store.json").read_bytes() == marker  # reading never rewrites the marker


def test_a_01_store_takes_real_writers_and_refuses_demo_ones(legacy):
    path, ref = legacy
    marker = (path / "store.json").read_bytes()
    with pytest.raises(StoreIdentityError, match="real Binance data"):
        TickStore(path, mode="a", source="demo")
    with TickStore(path, mode="a", source="binance") as st:  # salvages the dead writer's rows
        last = int(ref["btc"]["trade_id"][-1])
        assert st.append("BTCUSDT", {"trade_id": [last + 1], "time": [int(ref["btc"]["time"][-1]) + 1],
                                     "price": [93_000.0], "qty": [0.001], "is_buyer_maker": [False]}) == 1
        st.append("um:BTCUSDT", {"trade_id": [1], "time": [pd.Timestamp("2025-01-01", tz="UTC").value],
                                 "price": [93_100.0], "qty": [0.002], "is_buyer_maker": [True]})
    assert (path / "store.json").read_bytes() == marker  # the source key is never added or changed
    assert json.loads(marker).get("source") is None
    st = TickStore(path)
    assert len(st.read("BTCUSDT")) == 211 and len(st.read("ETHUSDT")) == 39 and len(st.read("um:BTCUSDT")) == 1
    assert (path / "trades" / "BTCUSDT").is_dir() and (path / "um" / "trades" / "BTCUSDT").is_dir()
    assert not (path / "trades" / "ETHUSDT" / "active.h5").exists()
