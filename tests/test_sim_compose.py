"""The demo source is composed by the ``record`` command, not by the recorder.

``quantlab.sim.compose`` reads the store once (its public reader, no lock), starts the spot
and USD-M simulators that continue its ids and prices, and yields their URLs; ``record``
gives the recorder a new config with them. The recorder never imports the simulator and
never changes its caller's config.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import subprocess
import sys
import time

import numpy as np
import pytest

from quantlab.commands.record import _record
from quantlab.errors import StoreIdentityError
from quantlab.recorder import Recorder, RecorderConfig
from quantlab.sim.compose import StoreTail, demo_exchanges, demo_market, store_tail
from quantlab.store import TickStore, writer_pid

BTC, ETH, PERP = 91_234.5, 3_100.25, 91_260.0  # far from the demo market's 100,000 and 3,500


def write_demo_store(path, n: int = 100) -> None:
    """A demo store that ends at known ids and prices: BTCUSDT 1001..1100, ETHUSDT 2001..2100
    and the perp's aggregates 501..600."""
    t0 = time.time_ns() - 60 * 10**9
    times = t0 + np.arange(n, dtype=np.int64) * 10**8
    with TickStore(path, mode="a", source="demo") as st:
        for sym, first, price in (("BTCUSDT", 1001, BTC), ("ETHUSDT", 2001, ETH)):
            st.append(sym, {"trade_id": np.arange(first, first + n), "time": times, "price": np.full(n, price),
                            "qty": np.full(n, 0.01), "is_buyer_maker": np.arange(n) % 2 == 0})
        ids = np.arange(501, 501 + n)
        st.append("um:BTCUSDT", {"agg_id": ids, "time": times, "price": np.full(n, PERP), "qty": np.full(n, 0.01),
                                 "is_buyer_maker": np.arange(n) % 2 == 0, "first_trade_id": ids * 3,
                                 "last_trade_id": ids * 3 + 2}, kind="aggtrades")


def test_the_recorder_does_not_import_the_simulator():
    code = ("import sys, quantlab.recorder, quantlab.recorder.futures, quantlab.commands.record; "
            "print(sorted(m for m in sys.modules if m.startswith('quantlab.sim')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_store_is_read_once_by_a_reader_while_its_writer_holds_the_lock(tmp_path):
    store = tmp_path / "store-demo"
    assert store_tail(store, ["BTCUSDT"]) == StoreTail()  # a new store: the simulators' defaults
    assert not store.exists()  # and reading it created nothing
    write_demo_store(store)
    with TickStore(store, mode="a", source="demo"):  # a writer holds the lock: a reader still reads
        tail = store_tail(store, ["BTCUSDT", "ETHUSDT", "um:BTCUSDT"])
        assert writer_pid(store) is not None
    assert tail.last_ids == {"BTCUSDT": 1100, "ETHUSDT": 2100}
    assert tail.prices == {"BTCUSDT": BTC, "ETHUSDT": ETH, "um:BTCUSDT": PERP}
    assert tail.next_agg_ids == {"um:BTCUSDT": 601}
    # only the symbols asked for continue (a store may hold more)
    assert store_tail(store, ["ETHUSDT"]).last_ids == {"ETHUSDT": 2100}


def test_a_real_store_is_refused_before_any_simulator_starts(tmp_path):
    real = tmp_path / "store"
    with TickStore(real, mode="a", source="binance"):
        pass

    async def start():
        async with demo_exchanges(real, ["BTCUSDT"], rate=10):
            pytest.fail("a simulator started on a real store")

    with pytest.raises(StoreIdentityError, match="holds real Binance data"):
        asyncio.run(start())


def test_the_demo_market_continues_ids_and_prices_and_a_perp_starts_at_its_spot():
    tail = StoreTail({"BTCUSDT": 1100, "ETHUSDT": 2100}, {"BTCUSDT": BTC, "ETHUSDT": ETH}, {"um:BTCUSDT": 601})
    spot = demo_market(["BTCUSDT", "ETHUSDT"], tail, rate=10, seed=1)
    assert spot.first_ids == {"BTCUSDT": 1101, "ETHUSDT": 2101}
    assert spot.start_prices == {"BTCUSDT": BTC, "ETHUSDT": ETH}
    tail = dataclasses.replace(tail, prices={**tail.prices, "um:BTCUSDT": PERP})
    mixed = demo_market(["BTCUSDT", "um:BTCUSDT"], tail, rate=10, seed=1)
    assert mixed.start_prices["um:BTCUSDT"] == BTC  # the basis restarts at zero
    alone = demo_market(["um:BTCUSDT"], tail, rate=10, seed=1)
    assert alone.start_prices == {"um:BTCUSDT": PERP}  # recorded without its spot: its own price
    # spot only: some prices stored but not all -> none used, the planted pairs keep their relation
    part = demo_market(["BTCUSDT", "ETHUSDT"], StoreTail({"BTCUSDT": 1100}, {"BTCUSDT": BTC}), rate=10, seed=1)
    assert part.start_prices["BTCUSDT"] != BTC and part.first_ids["BTCUSDT"] == 1101
    with pytest.raises(ValueError, match=r"^symbols: the demo source simulates spot and USD-M"):
        demo_market(["BTCUSDT", "cm:BTCUSD_PERP"], StoreTail(), rate=10)


def test_record_demo_continues_the_stores_ids_and_prices_and_leaves_its_config_alone(tmp_path):
    store = tmp_path / "store-demo"
    write_demo_store(store)
    config = RecorderConfig(store=store, symbols=["BTCUSDT", "ETHUSDT", "um:BTCUSDT"], store_source="demo",
                            ws_url="wss://stream.binance.com:9443", rest_url="https://api.binance.com",
                            label="demo", duration_s=2.5, alerts=False)
    before = copy.deepcopy(config)
    assert asyncio.run(_record(config, 60.0)) == 0  # the command's path
    assert config == before, "record changed its caller's config"

    async def by_hand() -> tuple[int, RecorderConfig]:  # the second run continues the first
        async with demo_exchanges(store, config.symbols, rate=60.0) as ep:
            given = dataclasses.replace(config, ws_url=ep.ws_url, rest_url=ep.rest_url, futures_urls=ep.futures_urls)
            snapshot = copy.deepcopy(given)
            code = await Recorder(given).run()
            assert given == snapshot, "the recorder changed its config"
            return code, given

    code, given = asyncio.run(by_hand())
    assert code == 0 and given.ws_url.startswith("ws://127.0.0.1:")

    status = json.loads((store / "status.json").read_text())
    assert status["ws_url"].startswith("ws://127.0.0.1:")  # recorded from the simulator
    assert status["futures"]["um"]["ws_url"].startswith("ws://127.0.0.1:")
    with TickStore(store) as st:
        assert st.gaps().empty
        for sym, first, price in (("BTCUSDT", 1001, BTC), ("ETHUSDT", 2001, ETH)):
            t = st.read(sym)
            ids = t["trade_id"].to_numpy()
            assert ids[0] == first and len(ids) > 120 and (np.diff(ids) == 1).all(), sym
            live = t["price"].to_numpy()[100]  # the first simulated trade: at the stored price
            assert abs(live / price - 1) < 0.002, (sym, live)
        aggs = st.read("um:BTCUSDT", kind="aggtrades")
        ids = aggs["agg_id"].to_numpy()
        assert ids[0] == 501 and len(ids) > 110 and (np.diff(ids) == 1).all()
        assert abs(aggs["price"].to_numpy()[100] / BTC - 1) < 0.002  # the perp restarts at its spot's price
