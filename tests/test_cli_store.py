"""`quantlab info` and `quantlab export`, including bad input."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from quantlab.pandas_compat import EXACT_FLOATS
from quantlab.store import TickStore


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "quantlab", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "store"
    ids = np.arange(1, 601, dtype="i8")
    with TickStore(path, mode="a") as st:
        st.append("ETHUSDT", {"trade_id": ids, "time": 1_723_161_240_000_000_000 + ids * 200_000_000,
                              "price": 2500 + ids * 0.25, "qty": np.full(600, 0.1),
                              "is_buyer_maker": ids % 3 == 0})
        st.add_gap("ETHUSDT", 700, 705, "backfill refused by the exchange")
    return path


def test_info_lists_counts_and_gaps(store):
    out = run_cli("info", "--store", str(store))
    assert out.returncode == 0, out.stderr
    assert "ETHUSDT" in out.stdout and "600" in out.stdout and "2650.0" in out.stdout
    assert "backfill refused" in out.stdout


def test_export_ticks_and_bars(store, tmp_path):
    out = run_cli("export", "--store", str(store), "--symbol", "ethusdt", "--out", str(tmp_path / "t.csv"))
    assert out.returncode == 0, out.stderr
    ticks = pd.read_csv(tmp_path / "t.csv", **EXACT_FLOATS)
    assert list(ticks.columns) == ["time", "trade_id", "price", "qty", "is_buyer_maker"]
    assert len(ticks) == 600 and ticks["price"].iloc[-1] == 2650.0
    out = run_cli("export", "--store", str(store), "--symbol", "ETHUSDT", "--timeframe", "1m",
                  "--start", "2024-08-08T23:55", "--out", "-")
    bars = pd.read_csv(io.StringIO(out.stdout), **EXACT_FLOATS)
    assert list(bars.columns) == ["time", "open", "high", "low", "close", "volume", "vwap", "trades", "source"]
    assert bars["time"].iloc[0] == "2024-08-08T23:55:00.000000Z" and bars["trades"].sum() <= 600


@pytest.mark.parametrize("args, needle", [
    (("export", "--symbol", "NOPE", "--out", "-"), "unknown symbol 'NOPE'"),
    (("export", "--symbol", "ETHUSDT", "--timeframe", "fast", "--out", "-"), "timeframe"),
    (("export", "--symbol", "ETHUSDT", "--start", "yesterday-ish", "--out", "-"), "start"),
])
def test_export_bad_input(store, args, needle):
    out = run_cli(*args[:1], "--store", str(store), *args[1:])
    assert out.returncode == 2 and needle in out.stderr and "Traceback" not in out.stderr


def test_info_on_missing_store(tmp_path):
    out = run_cli("info", "--store", str(tmp_path / "none"))
    assert out.returncode == 2 and "does not exist" in out.stderr


def test_help_lists_the_verbs():
    out = run_cli("--help")
    for verb in ("import", "info", "export"):
        assert verb in out.stdout
