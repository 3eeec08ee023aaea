"""Store identity: real (binance) and simulated (demo) data never share a store.

Reproduces issue 18 item 1: `record --source demo --store X`, `Lab(source="demo")` with the
default store and `app --demo --store X` continued a real store's trade ids with synthetic
trades, and a later import of the real file reported "0 added".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from quantlab import Lab
from quantlab.errors import StoreIdentityError
from quantlab.sim import Synthetic
from quantlab.store import TickStore
from quantlab.store.tickstore import store_source
from quantlab.ui import seed_demo_history

REAL_FILE = "trades/BTCUSDT-trades-2025-01-01.rows0-209.csv"  # 210 real trades


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "quantlab", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def one_error_line(out) -> str:
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    return lines[0]


def snapshot(store: Path) -> dict[str, bytes]:
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file()
            and p.name != "writer.lock"}


@pytest.fixture
def real_store(tmp_path, real_data):
    store = tmp_path / "store"
    out = run_cli("import", "--no-progress", "--store", str(store), str(real_data / REAL_FILE))
    assert out.returncode == 0, out.stderr
    return store


def test_new_stores_record_their_source_and_never_change_it(tmp_path):
    with TickStore(tmp_path / "real", mode="a"):
        pass
    with TickStore(tmp_path / "sim", mode="a", source="demo"):
        pass
    assert json.loads((tmp_path / "real" / "store.json").read_text())["source"] == "binance"
    assert json.loads((tmp_path / "sim" / "store.json").read_text())["source"] == "demo"
    before = (tmp_path / "sim" / "store.json").read_bytes()
    with TickStore(tmp_path / "sim", mode="a") as st:  # a writer that does not say: still demo
        assert st.source == "demo"
    assert (tmp_path / "sim" / "store.json").read_bytes() == before
    with pytest.raises(StoreIdentityError, match="holds simulated demo data"):
        TickStore(tmp_path / "sim", mode="a", source="binance")
    with pytest.raises(StoreIdentityError, match="holds real Binance data"):
        TickStore(tmp_path / "real", mode="a", source="demo")
    with pytest.raises(ValueError, match="source"):
        TickStore(tmp_path / "x", mode="a", source="paper")


def test_record_demo_into_a_real_store_is_refused_and_the_real_trades_stay(real_store, real_data):
    before = snapshot(real_store)
    line = one_error_line(run_cli("record", "--source", "demo", "--store", str(real_store),
                                  "--symbols", "BTCUSDT,ETHUSDT", "--duration", "1"))
    assert line.startswith("quantlab record: error:")
    assert "real Binance data" in line and f"{real_store}-demo" in line
    assert snapshot(real_store) == before  # nothing touched
    out = run_cli("import", "--no-progress", "--store", str(real_store), str(real_data / REAL_FILE))
    assert out.returncode == 0 and "210 rows read, 0 added" in out.stdout  # every real row still there
    assert len(TickStore(real_store).read("BTCUSDT")) == 210


def test_record_demo_with_the_default_store_goes_to_the_demo_sibling(real_store):
    out = run_cli("record", "--source", "demo", "--symbols", "BTCUSDT,ETHUSDT", "--duration", "2",
                  "--no-alerts", env={"QUANTLAB_STORE": str(real_store)})
    assert out.returncode == 0, out.stderr
    demo = real_store.with_name("store-demo")
    assert store_source(demo) == "demo" and store_source(real_store) == "binance"
    with TickStore(demo) as st:
        ids = st.read("BTCUSDT")["trade_id"].to_numpy()
    assert len(ids) and ids.min() >= 10**15  # simulated ids: never mistaken for real ones
    real = TickStore(real_store).read("BTCUSDT")["trade_id"].to_numpy()
    assert len(real) == 210 and real.max() < 10**11


def test_import_into_a_demo_store_is_refused(tmp_path, real_data):
    demo = tmp_path / "lab-demo"
    assert seed_demo_history(demo, ["BTCUSDT", "ETHUSDT"], hours=0.05) > 0
    before = snapshot(demo)
    line = one_error_line(run_cli("import", "--no-progress", "--store", str(demo), str(real_data / REAL_FILE)))
    assert "simulated demo data" in line and "real Binance data never goes into it" in line
    assert snapshot(demo) == before


def test_live_record_into_a_demo_store_is_refused_before_connecting(tmp_path):
    demo = tmp_path / "lab-demo"
    seed_demo_history(demo, ["BTCUSDT", "ETHUSDT"], hours=0.05)
    line = one_error_line(run_cli("record", "--source", "binance", "--store", str(demo), "--symbols", "BTCUSDT",
                                  "--rest-url", "http://127.0.0.1:9", "--ws-url", "ws://127.0.0.1:9",
                                  "--duration", "1"))
    assert "simulated demo data" in line


def test_seed_demo_history_refuses_a_real_store(real_store):
    with pytest.raises(StoreIdentityError, match="real Binance data"):
        seed_demo_history(real_store, ["BTCUSDT", "ETHUSDT"], hours=0.05)


def test_app_demo_with_a_real_store_is_refused(real_store):
    before = snapshot(real_store)
    line = one_error_line(run_cli("app", "--demo", "--store", str(real_store), "--no-browser", "--port", "0"))
    assert line.startswith("quantlab app: error:") and f"{real_store}-demo" in line
    assert snapshot(real_store) == before


def test_lab_demo_resolves_to_the_demo_sibling_of_the_default_store(real_store, monkeypatch):
    monkeypatch.setenv("QUANTLAB_STORE", str(real_store))
    lab = Lab(["BTCUSDT", "ETHUSDT"], source="demo")
    assert lab.store_path == real_store.with_name("store-demo")
    assert Lab(["BTCUSDT", "ETHUSDT"]).store_path == real_store  # the real source keeps the store
    with pytest.raises(StoreIdentityError, match="real Binance data"):
        Lab(["BTCUSDT", "ETHUSDT"], store=real_store, source="demo")
    seed_demo_history(lab.store_path, ["BTCUSDT", "ETHUSDT"], hours=0.05)
    with pytest.raises(StoreIdentityError, match="simulated demo data"):
        Lab(["BTCUSDT", "ETHUSDT"], store=lab.store_path, source="binance")
    # an explicit demo store not named -demo is used as given (the app passes its store this way)
    other = real_store.with_name("mine")
    seed_demo_history(other, ["BTCUSDT", "ETHUSDT"], hours=0.05)
    monkeypatch.setenv("QUANTLAB_STORE", str(other))
    assert Lab(["BTCUSDT", "ETHUSDT"], source="demo").store_path == other


def test_simulated_ids_are_out_of_the_real_range():
    src = Synthetic(["BTCUSDT", "ETHUSDT"], rate=100, seed=1)
    src.start(1_700_000_000_000_000)
    batches = src.advance(1_700_000_010_000_000)
    for arr in batches.values():
        assert len(arr) and arr["id"].min() >= 10**15
        assert np.all(arr["id"].astype("f8").astype("i8") == arr["id"])  # exact even as float64


def test_a_second_record_names_the_pid_holding_the_store(tmp_path):
    store = tmp_path / "store"
    with TickStore(store, mode="a"):
        line = one_error_line(run_cli("record", "--store", str(store), "--symbols", "BTCUSDT",
                                      "--rest-url", "http://127.0.0.1:9", "--ws-url", "ws://127.0.0.1:9"))
    assert f"pid {os.getpid()}" in line


def test_record_with_an_empty_symbol_list_is_refused(tmp_path):
    line = one_error_line(run_cli("record", "--store", str(tmp_path / "s"), "--symbols", ""))
    assert "--symbols" in line and "no symbol" in line
    assert not (tmp_path / "s").exists()
