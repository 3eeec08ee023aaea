"""``quantlab research`` on a store of the real 1m klines of 2025-07-13 (BTCUSDT, SOLUSDT,
SOLBTC): a self-contained report, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from quantlab.importer import import_file
from quantlab.store import TickStore

SYMBOLS = ("BTCUSDT", "SOLUSDT", "SOLBTC")


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "quantlab", "research", *args],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def kline_store(real_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("research") / "store"
    with TickStore(path, mode="a") as st:
        for s in SYMBOLS:
            import_file(st, real_data / "klines" / f"{s}-1m-2025-07-13.csv", progress=False)
    return path


def test_report_from_a_store_of_real_klines(kline_store, tmp_path):
    out = tmp_path / "report.html"
    folds = tmp_path / "folds.csv"
    r = run_cli("--store", str(kline_store), "--symbols", ",".join(SYMBOLS), "--timeframe", "1m",
                "--formation", "12h", "--trading", "3h", "--out", str(out),
                "--folds-csv", str(folds), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "Walk-forward 2025-07-13 12:00:00+00:00 -> 2025-07-13 23:59:00+00:00" in r.stdout
    assert "deflated_sharpe" in r.stdout and "n_folds                4" in r.stdout
    doc = out.read_text()
    assert "data:image/png;base64," in doc and "https://" not in doc and "http://" not in doc
    assert folds.read_text().startswith("fold,formation_start,formation_end,trading_start")
    # never overwrites a report it did not write in this call
    again = run_cli("--store", str(kline_store), "--symbols", ",".join(SYMBOLS),
                    "--formation", "12h", "--trading", "3h", "--out", str(out), "--no-progress")
    assert again.returncode == 2
    assert again.stderr.strip().splitlines()[-1].startswith("quantlab research: error: --out:")
    assert "Traceback" not in again.stderr


@pytest.mark.parametrize("args, message", [
    (("--formation", "soon"), "formation: expected a duration"),
    (("--formation", "2D"), "formation, trading: the data span"),
    (("--symbols", "BTCUSDT,DOGEUSDT"), "unknown symbol"),
])
def test_bad_arguments_one_line(kline_store, args, message):
    base = {"--symbols": ",".join(SYMBOLS), "--formation": "12h", "--trading": "3h"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    flat = [a for kv in base.items() for a in kv]
    r = run_cli("--store", str(kline_store), *flat, "--no-progress")
    assert r.returncode == 2
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("quantlab research: error:") and message in last, r.stderr
    assert "Traceback" not in r.stderr
