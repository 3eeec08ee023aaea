"""`quantlab export` never destroys (issue 18 item 2), sealed segments are read-only on disk,
and the smaller CLI items: klines-only export, info's missing ids vs gaps, `info | head`,
warnings on one line."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import warnings

import numpy as np
import pytest

from quantlab.cli import main
from quantlab.store import TickStore


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "quantlab", *args], capture_output=True, text=True, timeout=120)


def one_error_line(out) -> str:
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    return lines[0]


def ticks(ids):
    ids = np.asarray(ids, dtype="i8")
    return {"trade_id": ids, "time": 1_723_161_240_000_000_000 + ids * 200_000_000,
            "price": 2500 + ids * 0.25, "qty": np.full(len(ids), 0.1), "is_buyer_maker": ids % 3 == 0}


@pytest.fixture
def store(tmp_path, real_data):
    path = tmp_path / "store"
    with TickStore(path, mode="a") as st:
        st.append("ETHUSDT", ticks(np.r_[1:301, 401:601]))  # ids 301..400 absent
        st.add_gap("ETHUSDT", 351, 360, "backfill refused by the exchange")
    assert main(["import", "--no-progress", "--store", str(path),
                 str(real_data / "klines" / "SOLUSDT-1m-2025-07-13.csv")]) == 0
    return path


def contents(store):
    return {p: p.read_bytes() for p in store.rglob("*") if p.is_file() and p.name != "writer.lock"}


def test_export_into_the_store_is_refused_even_with_force(store):
    before = contents(store)
    seg = next((store / "trades" / "ETHUSDT").glob("seg-*.h5"))
    for target in (store / "store.json", seg, store / "new.csv", store / "trades" / "x.csv"):
        for force in ([], ["--force"]):
            line = one_error_line(run_cli("export", "--store", str(store), "--symbol", "ETHUSDT",
                                          "--out", str(target), *force))
            assert "inside the store" in line
    assert contents(store) == before
    assert run_cli("info", "--store", str(store)).returncode == 0


def test_export_onto_an_existing_file_needs_force(store, tmp_path):
    out = tmp_path / "eth.csv"
    out.write_text("precious\n")
    line = one_error_line(run_cli("export", "--store", str(store), "--symbol", "ETHUSDT", "--out", str(out)))
    assert "already exists" in line and "--force" in line
    assert out.read_text() == "precious\n"
    ok = run_cli("export", "--store", str(store), "--symbol", "ETHUSDT", "--out", str(out), "--force")
    assert ok.returncode == 0, ok.stderr
    assert out.read_text().count("\n") == 501 and "ETHUSDT: 500 rows written" in ok.stderr
    assert not list(tmp_path.glob(".eth.csv.*"))  # the temp file was renamed, not left behind


def test_sealed_segments_are_read_only_and_the_writer_still_merges(tmp_path):
    path = tmp_path / "s"
    with TickStore(path, mode="a") as st:
        st.append("ETHUSDT", ticks(np.arange(1, 101)))
    seg = next((path / "trades" / "ETHUSDT").glob("seg-*.h5"))
    assert stat.S_IMODE(seg.stat().st_mode) & 0o222 == 0
    with TickStore(path, mode="a") as st:  # rows inside the sealed segment: it is replaced whole
        assert st.append("ETHUSDT", ticks(np.r_[50, 150:160])) == 10
        st.append_klines("SOLUSDT", "1m", {
            "open_time": np.array([0], "i8"), "open": np.ones(1), "high": np.ones(1), "low": np.ones(1),
            "close": np.ones(1), "volume": np.ones(1), "close_time": np.array([59_999], "i8"),
            "quote_volume": np.ones(1), "trades": np.ones(1, "i8"), "taker_buy_base": np.ones(1),
            "taker_buy_quote": np.ones(1)})
    assert len(TickStore(path).read("ETHUSDT")) == 110
    for f in path.rglob("*.h5"):
        assert stat.S_IMODE(f.stat().st_mode) & 0o222 == 0, f


def test_klines_only_symbol_without_timeframe_says_so(store, tmp_path):
    line = one_error_line(run_cli("export", "--store", str(store), "--symbol", "SOLUSDT",
                                  "--out", str(tmp_path / "sol.csv")))
    assert "klines only: pass --timeframe" in line
    assert not (tmp_path / "sol.csv").exists()


def test_info_explains_missing_ids_versus_gaps(store):
    out = run_cli("info", "--store", str(store))
    assert out.returncode == 0, out.stderr
    assert "source binance (real Binance data)" in out.stdout
    line = next(ln for ln in out.stdout.splitlines() if ln.strip().startswith("ETHUSDT trades:"))
    assert "100 missing" in line and "10 in recorded gaps" in line and "90 in holes between imported files" in line
    js = run_cli("info", "--store", str(store), "--json").stdout.splitlines()
    assert json.loads(js[0]) == {"store": {"path": str(store), "source": "binance"}}


def test_info_into_a_closed_pipe_exits_quietly(store):
    with TickStore(store, mode="a") as st:  # enough output that `head -1` closes the pipe early
        for i in range(60):
            st.append(f"SYM{i}USDT", ticks([1, 2, 3]))
    proc = subprocess.run(f"{sys.executable} -m quantlab info --store {store} | head -1",
                          shell=True, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("store ")
    assert proc.stderr == "", proc.stderr


def test_warnings_are_one_line(monkeypatch, capsys, tmp_path):
    import quantlab.commands.info as info_verb

    def noisy(args):
        warnings.warn("a library said\n   something on two lines", UserWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(info_verb, "run", noisy)
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # restored after the test
    monkeypatch.delenv("QUANTLAB_DEBUG", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(["info", "--store", str(tmp_path)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["quantlab info: warning: a library said something on two lines"]
    assert os.path.basename(__file__) not in "\n".join(err)
