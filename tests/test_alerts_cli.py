"""``quantlab alerts add|list|rm|history``: parsing, one-line refusals, JSON output."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from quantlab.alerts import AlertService, list_rules
from quantlab.cli import main

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000


def frame(prices, start_ns=T0, first_id=1):
    p = np.asarray(prices, dtype=np.float64)
    t = start_ns + np.arange(len(p), dtype=np.int64) * S
    return pd.DataFrame({"trade_id": first_id + np.arange(len(p)), "price": p, "qty": 1.0,
                         "is_buyer_maker": False, "time": t})


@pytest.fixture
def store(tmp_path):
    from quantlab.store import TickStore

    path = tmp_path / "store"
    with TickStore(path, mode="a") as st:
        for sym in ("BTCUSDT", "ETHUSDT"):
            st.append(sym, frame([100.0, 101.0]))
    return str(path)


def cli(capsys, *argv):
    code = main(["alerts", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_add_list_rm(store, capsys):
    code, out, _ = cli(capsys, "add", "--store", store, "--symbol", "btcusdt", "--above", "70000",
                       "--cooldown", "30", "--webhook", "http://127.0.0.1:9999/hook")
    assert code == 0 and out.startswith("added r1: BTCUSDT price above 70000")
    assert cli(capsys, "add", "--store", store, "--symbol", "BTCUSDT", "--below", "60000")[0] == 0
    code, out, _ = cli(capsys, "add", "--store", store, "--pair", "ETHUSDT,BTCUSDT", "--zscore", "2.5",
                       "--window", "30", "--timeframe", "5m", "--exit", "0.5")
    assert code == 0 and "r3" in out
    assert cli(capsys, "add", "--store", store, "--symbol", "ETHUSDT", "--move", "2", "--over", "10m")[0] == 0
    assert cli(capsys, "add", "--store", store, "--pair", "ETHUSDT,BTCUSDT", "--spread-below", "-3",
               "--id", "sp")[0] == 0
    rules = {r.id: r for r in list_rules(store)}
    assert rules["r1"].cooldown == 30 and rules["r1"].webhook == "http://127.0.0.1:9999/hook"
    assert (rules["r3"].k, rules["r3"].window, rules["r3"].timeframe, rules["r3"].exit) == (2.5, 30, "5m", 0.5)
    assert rules["r4"].window == "10m" and rules["sp"].level == -3
    code, out, _ = cli(capsys, "list", "--store", store)
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == ["r1", "r2", "r3", "r4", "sp"]
    code, out, _ = cli(capsys, "list", "--store", store, "--json")
    assert [json.loads(line)["id"] for line in out.splitlines()] == ["r1", "r2", "r3", "r4", "sp"]
    code, out, _ = cli(capsys, "rm", "--store", store, "r2", "sp")
    assert code == 0 and out.splitlines() == ["removed r2", "removed sp"]
    assert [r.id for r in list_rules(store)] == ["r1", "r3", "r4"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--symbol", "DOGEUSDT", "--above", "1"], "DOGEUSDT is not in the store"),
    (["--symbol", "BTCUSDT", "--above", "abc"], "--above level: 'abc' is not a number"),
    (["--symbol", "BTCUSDT", "--below", "nan"], "must be a finite number"),
    (["--pair", "ETHUSDT,BTCUSDT", "--zscore", "2", "--window", "1"], "window: '1' must be at least 3 bars"),
    (["--pair", "ETHUSDT,BTCUSDT", "--zscore", "two"], "not a number"),
    (["--pair", "ETHUSDT,SOLUSDT", "--zscore", "2"], "SOLUSDT is not in the store"),
    (["--pair", "ETHUSDT", "--zscore", "2"], "expected two different symbols"),
    (["--symbol", "BTCUSDT"], "give exactly one condition"),
    (["--symbol", "BTCUSDT", "--above", "1", "--below", "2"], "give exactly one condition"),
    (["--symbol", "BTCUSDT", "--zscore", "2"], "needs --pair"),
    (["--symbol", "BTCUSDT", "--above", "1", "--window", "5"], "--window applies to --pair rules only"),
    (["--symbol", "BTCUSDT", "--above", "1", "--cooldown", "soon"], "cooldown"),
    (["--symbol", "BTCUSDT", "--above", "1", "--webhook", "nope"], "webhook"),
])
def test_bad_rules_are_refused_in_one_line(store, capsys, argv, message):
    code, out, err = cli(capsys, "add", "--store", store, *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("quantlab alerts: error: ") and message in err
    assert list_rules(store) == []


def test_rm_unknown_id_and_missing_store(store, tmp_path, capsys):
    code, _, err = cli(capsys, "rm", "--store", store, "r7")
    assert code == 2 and "no alert rule 'r7'" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli(capsys, "add", "--store", str(tmp_path / "none"), "--symbol", "BTCUSDT", "--above", "1")
    assert code == 2 and "not a directory" in err


def test_history_text_and_json(store, capsys):
    assert cli(capsys, "add", "--store", store, "--symbol", "BTCUSDT", "--cross", "100", "--hysteresis", "0.5")[0] == 0
    svc = AlertService(store, bars_loader=False)
    f = frame([99.0, 101.0, 99.0, 101.0])
    f["recv_time"] = f["time"] + 1_000_000
    svc.process_trades("BTCUSDT", f)
    svc.close()
    code, out, _ = cli(capsys, "history", "--store", store)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3 and "[r1] BTCUSDT 101 crossed up through 100" in lines[0]
    code, out, _ = cli(capsys, "history", "--store", store, "--json", "--last", "2")
    objs = [json.loads(line) for line in out.splitlines()]
    assert [o["event"] for o in objs] == ["cross_down", "cross_up"]
    assert {"rule_id", "symbols", "time", "value", "threshold", "message", "recv_ns", "latency_ms"} <= set(objs[0])
    assert cli(capsys, "history", "--store", store, "--rule", "r9")[1] == ""
    code, _, err = cli(capsys, "history", "--store", store, "--last", "x")
    assert code == 2 and "--last" in err


def test_console_script_refuses_without_traceback(store):
    """The real process: exit status 2 and a single stderr line."""
    proc = subprocess.run([sys.executable, "-m", "quantlab", "alerts", "add", "--store", store,
                           "--symbol", "BTCUSDT", "--above", "seventy"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "quantlab alerts: error: --above level: 'seventy' is not a number"]
