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


def test_backtest_result_repr_is_its_summary_not_its_frames():
    import numpy as np
    import pandas as pd

    from quantlab.backtest.result import BacktestResult

    idx = pd.date_range("2025-01-01", periods=5_000, freq="1min", tz="UTC")
    equity = pd.Series(np.linspace(1.0, 1.1, len(idx)), index=idx)
    positions = pd.DataFrame({"z": 0.0, "signal": 0}, index=idx)
    res = BacktestResult(equity, positions, pd.DataFrame({"reason": ["exit"]}),
                         {"total_return": 0.1, "n_trades": 1}, {"hedge": "ols", "window": 60})
    assert repr(res) == res.summary() == str(res)
    assert len(repr(res).splitlines()) < 12 and "dtype" not in repr(res)


def test_lab_repr_says_starting_while_its_recorder_starts(tmp_path):
    from quantlab.live.lab import Lab
    from quantlab.status import write_status

    lab = Lab(["BTCUSDT", "ETHUSDT"], store=tmp_path / "store", source="demo")
    lab.store_path.mkdir(parents=True)
    write_status(lab.store_path, {"state": "stopped", "pid": 1})  # what an earlier run left
    lab.start()
    try:
        assert lab._proc is not None
        assert "state=starting" in repr(lab) and lab.status()["state"] == "starting"
    finally:
        lab.stop()
    assert "state=stopped" in repr(lab)


def test_every_json_file_is_replaced_atomically_and_fsynced(tmp_path, monkeypatch):
    import json
    import os

    import pytest

    from quantlab import atomic
    from quantlab.alerts.persistence import load_state, save_state
    from quantlab.status import read_status, write_status
    from quantlab.store import TickStore

    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))

    store = tmp_path / "store"
    with TickStore(store, mode="a", source="demo") as st:  # store.json
        n = len(synced)
        assert n >= 2  # the file and its folder
        st.add_gap("BTCUSDT", 10, 12, "test", permanent=False)  # gaps.json
        assert len(synced) >= n + 2
    assert json.loads((store / "store.json").read_text())["source"] == "demo"
    n = len(synced)
    write_status(store, {"state": "live", "at": tmp_path})  # status.json (default=str)
    assert len(synced) >= n + 2 and read_status(store)["at"] == str(tmp_path)
    n = len(synced)
    save_state(store, {"r1": {"armed": True}})  # alerts/state.json
    assert len(synced) >= n + 2 and load_state(store) == {"r1": {"armed": True}}

    before = (store / "status.json").read_text()
    with pytest.raises(TypeError):
        atomic.atomic_write_json(store / "status.json", {"x": object()})
    assert (store / "status.json").read_text() == before  # the old file stays whole
    assert not [p for p in store.rglob("*.tmp")]


def test_one_quote_list_splits_base_and_quote():
    from quantlab.sim.sources import SymbolInfo
    from quantlab.symbols import split_pair

    assert split_pair("ETHUSDT") == ("ETH", "USDT")
    assert split_pair("BTCFDUSD") == ("BTC", "FDUSD")  # not BTCFD/USD
    assert split_pair("BTCTUSD") == ("BTC", "TUSD")
    assert split_pair("um:SOLUSDC") == ("SOL", "USDC")
    assert split_pair("cm:BTCUSD_PERP") == ("BTC", "USD")
    assert split_pair("ETHBTC") == ("ETH", "BTC")
    assert split_pair("USDT") is None and split_pair("ABCXYZ") is None
    info = SymbolInfo.guess("BTCFDUSD")
    assert (info.base, info.quote) == ("BTC", "FDUSD")


def test_one_trades_csv_parser_for_import_and_replay(real_data, tmp_path):
    import numpy as np
    import pytest

    from quantlab.binance.archive import identify, read_chunks
    from quantlab.errors import LayoutError
    from quantlab.sim.sources import load_trades_csv

    for name in ("BTCUSDT-trades-2023-03-24.rows587331-587545.csv",  # milliseconds
                 "BTCUSDT-trades-2025-01-01.rows0-209.csv"):  # microseconds
        path = real_data / "trades" / name
        imported = next(read_chunks(identify(path)))[0]
        replayed = load_trades_csv(path)["BTCUSDT"]
        ids, t_us, price, qty, maker = map(np.array, zip(*replayed, strict=True))
        assert (ids == imported["trade_id"]).all() and (t_us * 1_000 == imported["time"]).all()
        assert (price.astype(float) == imported["price"]).all() and (maker == imported["is_buyer_maker"]).all()
        assert (qty.astype(float) == imported["qty"]).all()
    # the unit is the file's, not each row's: a microsecond file with one millisecond row is refused
    mixed = tmp_path / "BTCUSDT-trades-2025-01-01.csv"
    mixed.write_text("1,93576.00,0.001,93.576,1735689600010866,True,True\n"
                     "2,93576.00,0.001,93.576,1735689600011,True,True\n"
                     "3,93576.00,0.001,93.576,1735689600012866,True,True\n")
    with pytest.raises(LayoutError, match="in µs but one reads 1735689600011"):
        load_trades_csv(mixed)
    with pytest.raises(LayoutError, match="in µs but one reads 1735689600011"):
        next(read_chunks(identify(mixed)))


def test_one_time_converter_and_one_nat_sentinel():
    import datetime as dt

    import numpy as np
    import pandas as pd
    import pytest

    from quantlab.binance import protocol
    from quantlab.store import schema
    from quantlab.store import to_ns as store_to_ns
    from quantlab.timestamps import NAT_NS, to_ns

    assert store_to_ns is to_ns
    # one "time not known": numpy's NaT; the older names are the same number until they go
    assert NAT_NS == np.datetime64("NaT").view("i8") == schema.NAT
    assert not hasattr(protocol, "UNKNOWN_TIME") and getattr(protocol, "to_ns", to_ns) is to_ns
    # user times: text, datetimes and int ns; naive is UTC
    ns = 1723161600000000000
    assert to_ns("2024-08-09 00:00", "start") == ns == to_ns(ns) == to_ns(np.int64(ns))
    assert to_ns(dt.datetime(2024, 8, 9, 2, tzinfo=dt.timezone(dt.timedelta(hours=2)))) == ns
    assert to_ns(pd.Timestamp("2024-08-09", tz="UTC")) == ns and to_ns(None) is None
    for bad in ("yesterday-ish", pd.NaT, True):
        with pytest.raises(ValueError, match="since: "):
            to_ns(bad, "since")
    # wire epochs: exactly the numbers Binance's own parser gives, ms and µs, auto or named
    for v, unit in ((1723161255342, None), (1735689600010866, None),
                    (1735689600010866, "MICROSECOND"), (1723161255342, "millisecond")):
        frame = {"e": "serverShutdown", "E": v}
        assert to_ns(v, unit=unit or "auto") == protocol.parse_payload(frame, 0, time_unit=unit)[0].event_time_ns
    big = 9_000_000_000_000_001  # exact beyond float precision
    assert to_ns(big, unit="MICROSECOND") == big * 1000
    with pytest.raises(ValueError, match="time: unit 'NANO'"):
        to_ns(1, unit="NANO")
    with pytest.raises(ValueError, match="integer epoch"):
        to_ns("1723161255342", unit="auto")


def test_lab_does_not_import_the_recorder():
    import subprocess
    import sys

    code = ("import sys, quantlab.live.lab; "
            "print(sorted(m for m in sys.modules if m.startswith('quantlab.recorder')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_latency_window_percentiles():
    import numpy as np

    from quantlab.meters import LatencyWindow

    w = LatencyWindow(100)
    w.add(np.arange(1, 201) * 1_000_000)  # 1..200 ms; only the last 100 are kept
    p = w.percentiles_ms()
    assert p["p50"] == np.percentile(np.arange(101, 201), 50)


def test_alert_warm_up_reads_through_the_writer_and_one_symbol_only(tmp_path, monkeypatch):
    import numpy as np
    import pandas as pd

    from quantlab.alerts.service import store_bars_loader
    from quantlab.store import TickStore

    t0 = pd.Timestamp("2025-01-01", tz="UTC").value
    writer = TickStore(tmp_path / "store", mode="a")
    try:
        for sym, first in (("BTCUSDT", 1), ("ETHUSDT", 10_000)):
            ids = np.arange(first, first + 3_600)
            writer.append(sym, {"trade_id": ids, "time": t0 + (ids - first) * 1_000_000_000,
                                "price": 100.0 + np.sin(ids / 50.0), "qty": np.full(len(ids), 0.5),
                                "is_buyer_maker": (ids % 2).astype(bool)})
        from_path = store_bars_loader(tmp_path / "store")("ETHUSDT", "1m", 10)
        expected = writer.bars("ETHUSDT", "1m", start=t0 + 3_599 * 10**9 - 10 * 60 * 10**9)

        def refuse(*_a, **_k):
            raise AssertionError("the warm-up opened a reader or scanned the whole store")

        monkeypatch.setattr(TickStore, "__init__", refuse)
        monkeypatch.setattr(TickStore, "info", refuse)
        loader = store_bars_loader(writer)
        t, close = loader("ETHUSDT", "1m", 10)
        assert loader.store is writer
        assert len(t) == 11  # the 10 spans before the last trade touch 11 minute bars
        assert (t == expected.index.as_unit("ns").asi8).all() and (close == expected["close"].to_numpy()).all()
        assert (t == from_path[0]).all() and (close == from_path[1]).all()  # same bars as a reader's
        assert loader("SOLUSDT", "1m", 10) is None
    finally:
        monkeypatch.undo()
        writer.close()


def test_lab_price_lookup_knows_what_can_be_missing(tmp_path):
    import numpy as np
    import pandas as pd

    from quantlab.live.lab import Lab
    from quantlab.store import TickStore

    t0 = pd.Timestamp("2025-01-01", tz="UTC").value
    with TickStore(tmp_path / "store", mode="a") as st:
        ids = np.arange(1, 11)
        st.append("BTCUSDT", {"trade_id": ids, "time": t0 + ids * 10**9, "price": 100.0 + ids,
                              "qty": np.full(10, 0.5), "is_buyer_maker": np.zeros(10, bool)})
    lab = Lab(["BTCUSDT", "ETHUSDT"], store=tmp_path / "store", source="binance")
    try:
        assert lab._price_at("BTCUSDT", t0) == 101.0
        assert lab._price_at("ETHUSDT", t0) is None  # not stored: no price, no exception
        assert lab._price_at("BTCUSDT", t0 + 7_200 * 10**9) is None  # nothing in that hour
    finally:
        lab.stop()
    missing = Lab(["BTCUSDT"], store=tmp_path / "nowhere", source="binance")
    assert missing._price_at("BTCUSDT", t0) is None  # no store yet


def test_one_reader_of_symbol_lists():
    import pandas as pd
    import pytest

    from quantlab.aligned import _symbols
    from quantlab.screen.data import _symbol_list
    from quantlab.symbols import symbol_names

    for given in ("BTCUSDT, ETHUSDT,,BTCUSDT", ["BTCUSDT", " ETHUSDT", "", "BTCUSDT"],
                  pd.Index(["BTCUSDT", "ETHUSDT"]), ("BTCUSDT", "ETHUSDT")):
        assert symbol_names(given) == _symbols(given) == _symbol_list(given) == ["BTCUSDT", "ETHUSDT"]
    assert _symbol_list(None) is None and _symbol_list("") == []
    with pytest.raises(ValueError, match="at least one symbol"):
        _symbols(" , ")
    for bad in (3, {"BTCUSDT": 1}):
        with pytest.raises(TypeError, match="symbols: expected a list"):
            symbol_names(bad)


def test_replay_reads_an_official_zip(real_data, tmp_path):
    import zipfile

    from quantlab.sim import Replay

    csv = real_data / "trades" / "BTCUSDT-trades-2025-01-01.rows0-209.csv"
    zipped = tmp_path / "BTCUSDT-trades-2025-01-01.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.write(csv, "BTCUSDT-trades-2025-01-01.csv")
    a = Replay.from_paths(csv).recorded("BTCUSDT")
    b = Replay.from_paths(zipped).recorded("BTCUSDT")
    assert len(a) == 210 and (a == b).all()
