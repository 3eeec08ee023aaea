"""The store's write-ahead journal: records survive whole or not at all, a crash loses no row
it acknowledged, and replay stores every id exactly once."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd

from quantlab.sim import ExchangeThread, Synthetic
from quantlab.status import read_status
from quantlab.store import TickStore
from quantlab.store.journal import encode, journal_files, read_records


def _trades(first: int, n: int, price: float = 100.0) -> dict[str, np.ndarray]:
    ids = np.arange(first, first + n, dtype="i8")
    t = 1_700_000_000_000_000_000 + ids * 1_000_000
    return {"trade_id": ids, "time": t, "price": np.full(n, price) + ids * 1e-3, "qty": np.full(n, 0.5),
            "is_buyer_maker": (ids % 2).astype("u1"), "event_time": t + 5, "recv_time": t + 9}


def test_records_round_trip_and_a_torn_or_damaged_tail_is_ignored(tmp_path):
    a, b, c = _trades(1, 3), _trades(4, 2), _trades(6, 4)
    path = tmp_path / "journal-000000000001.qlj"
    recs = [encode("trades", "BTCUSDT", a), encode("trades", "ETHUSDT", b), encode("trades", "BTCUSDT", c)]
    path.write_bytes(b"".join(recs[:2]) + recs[2][:-7])  # the last write torn by a crash
    got, torn = read_records(path)
    assert [(k, s) for k, s, _ in got] == [("trades", "BTCUSDT"), ("trades", "ETHUSDT")]
    assert torn == len(recs[2]) - 7
    for (_, _, batch), want in zip(got, (a, b), strict=True):
        assert batch.keys() == want.keys()
        for k in want:
            assert batch[k].dtype == want[k].dtype and np.array_equal(batch[k], want[k]), k
    damaged = bytearray(b"".join(recs))
    damaged[len(recs[0]) + 30] ^= 0xFF  # a flipped byte in the second record's payload
    path.write_bytes(bytes(damaged))
    got, torn = read_records(path)
    assert len(got) == 1 and torn == len(recs[1]) + len(recs[2])


_CRASH = textwrap.dedent("""
    import os, sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    from test_store_journal import _trades
    from quantlab.store import TickStore
    from quantlab.store.journal import JournaledTables

    st = TickStore({store!r}, "a")
    st.append("BTCUSDT", _trades(1, 100))                       # in the table, flushed
    jt = JournaledTables(st, visible_after_s=3600)
    jt.journal([("BTCUSDT", _trades(101, 100)), ("ETHUSDT", _trades(1, 50))])
    jt.apply_all()                                              # in the tables and the journal
    print(jt.journal([("BTCUSDT", _trades(150, 71))]))        # overlaps 150..200: 201..220 new
    jt.journal([("BTCUSDT", _trades(221, 89)), ("ETHUSDT", _trades(51, 50))])  # journal only
    jt.apply(budget_s=0)                                        # nothing due, no budget: no-op
    os._exit(0)                                                 # a crash: no close, no seal
""")


def test_a_crash_loses_no_journaled_row_and_replay_stores_each_id_once(tmp_path):
    store = tmp_path / "s"
    code = _CRASH.format(tests=str(__import__("pathlib").Path(__file__).parent), store=str(store))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[20]"]
    assert len(journal_files(store)) == 1
    with TickStore(store) as r:  # readers see the tables only: what was applied
        assert r.read("BTCUSDT")["trade_id"].max() == 200 and len(r.read("ETHUSDT")) == 50
    with TickStore(store, "a"):  # the next writer replays the journal, then removes it
        pass
    assert journal_files(store) == []
    with TickStore(store) as r:
        btc, eth = r.read("BTCUSDT"), r.read("ETHUSDT")
    assert np.array_equal(btc["trade_id"].to_numpy(), np.arange(1, 310))
    assert np.array_equal(eth["trade_id"].to_numpy(), np.arange(1, 101))
    want = _trades(1, 309)
    assert np.array_equal(btc["price"].to_numpy(), want["price"])
    assert np.array_equal(pd.DatetimeIndex(btc["recv_time"]).asi8, want["recv_time"])


def test_a_torn_last_record_is_dropped_and_the_rest_replayed(tmp_path):
    store = tmp_path / "s"
    with TickStore(store, "a"):
        pass
    folder = store / "journal"
    folder.mkdir()
    recs = [encode("trades", "BTCUSDT", _trades(1, 10)), encode("trades", "BTCUSDT", _trades(11, 10))]
    (folder / "journal-000000000001.qlj").write_bytes(recs[0] + recs[1][:20])
    with TickStore(store, "a"):
        pass
    with TickStore(store) as r:
        assert np.array_equal(r.read("BTCUSDT")["trade_id"].to_numpy(), np.arange(1, 11))
    assert journal_files(store) == []


_RECORD = textwrap.dedent("""
    import asyncio
    from quantlab.recorder import Recorder, RecorderConfig
    cfg = RecorderConfig(store={store!r}, symbols=["BTCUSDT", "ETHUSDT"], ws_url={ws!r}, rest_url={rest!r},
                         alerts=False, visible_interval_s=3600, apply_budget_s=0)
    asyncio.run(Recorder(cfg).run())
""")


def test_recorder_killed_with_rows_only_in_its_journal_loses_none(tmp_path):
    """SIGKILL while every stored trade is still only in the journal (tables due hourly, no
    budget for the others):
    the next writer replays them; each id the recorder counted is stored once, none missing."""
    store = tmp_path / "s"
    with ExchangeThread(Synthetic(["BTCUSDT", "ETHUSDT"], rate=400, seed=7)) as ex:
        proc = subprocess.Popen([sys.executable, "-c", _RECORD.format(store=str(store), ws=ex.ws_url,
                                                                       rest=ex.rest_url)],
                                stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.time() + 60
            while time.time() < deadline and read_status(store).get("ticks_durable", 0) < 600:
                time.sleep(0.2)
            status = read_status(store)
            counted = status.get("ticks_durable", 0)
            assert status["ticks_total"] == 0  # durable, but no table written yet: readers see none
            assert counted >= 600, proc.stderr.read() if proc.poll() is not None else "too slow"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        made = {s: ex.trades(s).set_index("trade_id") for s in ("BTCUSDT", "ETHUSDT")}
    with TickStore(store) as r:  # nothing had reached a table before the kill: all in the journal
        assert r.symbols("trades") == []
    assert journal_files(store)
    with TickStore(store, "a"):
        pass
    total = 0
    with TickStore(store) as r:
        for s, m in made.items():
            got = r.read(s)
            ids = got["trade_id"].to_numpy()
            assert np.all(np.diff(ids) == 1), s
            assert np.array_equal(m.loc[ids, "price"].to_numpy(), got["price"].to_numpy()), s
            total += len(ids)
    assert total >= counted  # the status is written after the journal: it never over-counts


def test_a_clean_close_seals_every_journaled_row_and_drops_the_journal(tmp_path):
    from quantlab.store.journal import JournaledTables

    st = TickStore(tmp_path / "s", "a")
    jt = JournaledTables(st, visible_after_s=3600)
    assert jt.journal([("BTCUSDT", _trades(1, 40))]) == [40]
    jt.apply(budget_s=0)  # not due and no budget: still only in the journal
    assert jt.pending_rows() == 40 and len(journal_files(st.path)) == 1
    st.close()
    assert journal_files(tmp_path / "s") == []
    assert not list((tmp_path / "s").rglob("active.h5"))
    with TickStore(tmp_path / "s") as r:
        assert np.array_equal(r.read("BTCUSDT")["trade_id"].to_numpy(), np.arange(1, 41))


_CRASH_HELD = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {tests!r})
    from test_store_journal import _trades
    from quantlab.store import TickStore
    from quantlab.store.journal import JournaledTables

    st = TickStore({store!r}, "a")
    jt = JournaledTables(st, visible_after_s=0)
    jt.journal([("BTCUSDT", _trades(1, 100)), ("ETHUSDT", _trades(1, 10))])
    jt.apply(budget_s=10)
    st.add_gap("ETHUSDT", 11, 14, "being repaired", permanent=False)   # already on record
    # ids 101..110 (BTC) and 11..14 (ETH) are being backfilled: the trades after them are held
    jt.journal([], held=[("BTCUSDT", _trades(111, 10)), ("ETHUSDT", _trades(15, 5))])
    os._exit(0)
""")


def test_held_trades_survive_a_crash_and_the_gap_before_them_stays_open(tmp_path):
    """Trades held behind a gap are journaled (durable) but kept out of their table; after a
    crash the replay stores them and records the ids before them as an open gap (once)."""
    store = tmp_path / "s"
    code = _CRASH_HELD.format(tests=str(__import__("pathlib").Path(__file__).parent), store=str(store))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    with TickStore(store) as r:  # held rows never reached the table
        assert r.read("BTCUSDT")["trade_id"].max() == 100
    with TickStore(store, "a"):
        pass
    with TickStore(store) as r:
        btc = r.read("BTCUSDT")["trade_id"].to_numpy()
        eth = r.read("ETHUSDT")["trade_id"].to_numpy()
        gaps = r.gaps()
    assert np.array_equal(btc, np.r_[1:101, 111:121])
    assert np.array_equal(eth, np.r_[1:11, 15:20])
    open_gaps = gaps[~gaps["permanent"]]
    assert sorted(zip(open_gaps["symbol"], open_gaps["first_id"], open_gaps["last_id"], strict=True)) == \
        [("BTCUSDT", 101, 110), ("ETHUSDT", 11, 14)]


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _table_ids(st, symbol):
    return st.read(symbol)["trade_id"].to_numpy() if symbol in st.symbols() else np.empty(0, "i8")


def test_a_few_symbols_are_visible_every_cycle_not_after_visible_after_s(tmp_path):
    """visible_after_s is the longest wait: with budget to spare one apply writes every pending
    table at once, however recently journaled (2-20 symbols: visible every flush)."""
    from quantlab.store.journal import JournaledTables

    clock = _Clock()
    st = TickStore(tmp_path / "s", "a")
    jt = JournaledTables(st, visible_after_s=1.0, clock=clock)
    syms = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT"]
    jt.journal([(s, _trades(1, 10)) for s in syms])
    clock.t += 0.25  # one flush interval: none of them is due
    applied = jt.apply(budget_s=10)
    assert applied.tables == 5 and applied.rows == 50 and jt.pending_rows() == 0
    for s in syms:
        assert np.array_equal(_table_ids(st, s), np.arange(1, 11)), s
    st.close()


def test_due_tables_go_first_then_the_others_oldest_first_while_the_budget_lasts(tmp_path):
    from quantlab.store.journal import JournaledTables

    clock = _Clock()
    st = TickStore(tmp_path / "s", "a")
    jt = JournaledTables(st, visible_after_s=1.0, clock=clock)
    jt.journal([("AAAUSDT", _trades(1, 5))])           # t=1000.0
    clock.t += 0.3
    jt.journal([("BBBUSDT", _trades(1, 5))])           # t=1000.3
    clock.t += 0.3
    jt.journal([("CCCUSDT", _trades(1, 5))])           # t=1000.6
    clock.t += 0.5                                     # 1001.1: only AAA waited 1 s
    # no budget: the due table is still written (visible_after_s bounds the wait), no other
    applied = jt.apply(budget_s=0)
    assert applied.tables == 1
    assert len(_table_ids(st, "AAAUSDT")) == 5 and len(_table_ids(st, "BBBUSDT")) == 0
    jt.journal([("AAAUSDT", _trades(6, 5))])           # AAA pending again, newest now
    clock.t += 0.1                                     # 1001.2: BBB (0.9 s), CCC, AAA: none due
    assert jt.apply(budget_s=0).tables == 0           # nothing due and no budget: nothing
    clock.t += 0.2                                     # 1001.4: BBB due (1.1 s)
    applied = jt.apply(budget_s=10)                    # BBB, then CCC and AAA with the budget left
    assert applied.tables == 3 and jt.pending_rows() == 0
    assert len(_table_ids(st, "AAAUSDT")) == 10 and len(_table_ids(st, "CCCUSDT")) == 5
    st.close()
