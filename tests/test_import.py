"""`quantlab import`: every official file lands exactly; ms/µs detection; idempotence; bad input."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

from quantlab.binance.archive import identify
from quantlab.cli import main
from quantlab.errors import LayoutError
from quantlab.pandas_compat import EXACT_FLOATS
from quantlab.store import TickStore


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "quantlab", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def imported(real_data, tmp_path_factory):
    store = tmp_path_factory.mktemp("imp") / "store"
    files = sorted((real_data / "trades").glob("*.csv")) + sorted((real_data / "klines").iterdir())
    by_market = {m: [p for p in files if _file_market(p) == m] for m in ("spot", "um", "cm")}
    assert main(["import", "--no-progress", "--store", str(store), *map(str, by_market["spot"])]) == 0
    for m in ("um", "cm"):
        assert main(["import", "--no-progress", "--market", m, "--store", str(store), *map(str, by_market[m])]) == 0
    return store, by_market["spot"]


def _file_market(path) -> str:
    """What the official layout says: futures files carry a header row, COIN-M names end _PERP."""
    if "_PERP" in path.name:
        return "cm"
    first = (zipfile.ZipFile(path).read(zipfile.ZipFile(path).namelist()[0]).decode()
             if path.suffix == ".zip" else path.read_text()).split("\n", 1)[0]
    return "spot" if first.split(",")[0].isdigit() else "um"


def test_every_trade_file_lands_exactly(imported, real_data):
    store, _ = imported
    st = TickStore(store)
    for sym in ("BTCUSDT", "ETHUSDT"):
        ref = pd.concat(
            pd.read_csv(p, header=None, **EXACT_FLOATS)
            for p in sorted((real_data / "trades").glob(f"{sym}-*.csv"))
        ).sort_values(0)
        got = st.read(sym)
        assert len(got) == len(ref)
        assert np.array_equal(got["trade_id"].to_numpy(), ref[0].to_numpy())
        assert np.array_equal(got["price"].to_numpy(), ref[1].to_numpy())  # exact float64
        assert np.array_equal(got["qty"].to_numpy(), ref[2].to_numpy())
        assert np.array_equal(got["is_buyer_maker"].to_numpy(), ref[5].to_numpy(bool))


def test_ms_and_us_files_land_on_their_dates_with_exact_times(imported, real_data):
    st = TickStore(imported[0])
    ms = pd.read_csv(real_data / "trades/BTCUSDT-trades-2023-03-24.rows587331-587545.csv", header=None, **EXACT_FLOATS)
    us = pd.read_csv(real_data / "trades/BTCUSDT-trades-2025-01-01.rows0-209.csv", header=None, **EXACT_FLOATS)
    got_ms = st.read("BTCUSDT", "2023-03-24", "2023-03-25")
    got_us = st.read("BTCUSDT", "2025-01-01", "2025-01-02")
    assert len(got_ms) == len(ms) == 215 and len(got_us) == len(us) == 210
    assert np.array_equal(got_ms.index.asi8, ms[4].to_numpy() * 1_000_000)
    assert np.array_equal(got_us.index.asi8, us[4].to_numpy() * 1_000)  # µs kept exactly
    assert got_us.index[0] == pd.Timestamp("2025-01-01 00:00:00.010866", tz="UTC")


def test_every_kline_file_lands_exactly(imported, real_data):
    st = TickStore(imported[0])
    for path in sorted((real_data / "klines").iterdir()):
        af = identify(path)
        raw = pd.read_csv(path, header=None, **EXACT_FLOATS)
        if not str(raw.iloc[0, 0]).isdigit():  # futures files carry a header row
            raw = pd.read_csv(path, **EXACT_FLOATS)
            raw.columns = range(raw.shape[1])
        market = _file_market(path)
        k = st.klines(af.symbol if market == "spot" else f"{market}:{af.symbol}", af.interval)
        factor = 1_000 if raw[0].iloc[0] > 1e14 else 1_000_000
        sel = k.loc[pd.DatetimeIndex(raw[0].to_numpy() * factor, tz="UTC")]
        assert len(sel) == len(raw)
        assert np.array_equal(sel["close"].to_numpy(), raw[4].to_numpy(float))
        assert np.array_equal(sel["trades"].to_numpy(), raw[8].to_numpy())
    assert len(st.klines("SOLBTC", "1m")) == 1440
    bars = st.bars("SOLUSDT", "5m")
    assert len(bars) == 288 and bars["trades"].sum() == st.klines("SOLUSDT", "1m")["trades"].sum()


def test_second_import_adds_nothing(imported):
    store, files = imported
    out = run_cli("import", "--no-progress", "--store", str(store), *map(str, files))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1].startswith("0 rows added")


def test_unknown_layout_is_refused_in_one_line(tmp_path, real_data):
    trx = next((real_data / "trx").glob("*spot*"))
    bad = tmp_path / "BTCUSDT-trades-2024-01-01.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    zipped = tmp_path / "BTCUSDT-trades-2024-01-02.zip"
    zipped.write_bytes(b"PK\x03\x04 not really a zip")
    for path in (trx, bad, zipped):
        out = run_cli("import", "--store", str(tmp_path / "s"), str(path))
        assert out.returncode == 2
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and path.name in lines[0] and "Traceback" not in out.stderr, out.stderr
    assert not (tmp_path / "s" / "trades").exists()  # nothing written


def test_missing_path_is_refused(tmp_path):
    out = run_cli("import", "--store", str(tmp_path / "s"), str(tmp_path / "nope.csv"))
    assert out.returncode == 2 and "no such file" in out.stderr and "Traceback" not in out.stderr


def test_zip_with_header_and_identify(tmp_path):
    csv = "id,price,qty,quote_qty,time,is_buyer_maker\n7,1.5,2,3,1735689600010866,true\n8,1.25,1,1.25,1735689600010867,false\n"
    path = tmp_path / "TRXUSDT-trades-2025-01-01.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("TRXUSDT-trades-2025-01-01.csv", csv)
    assert main(["import", "--no-progress", "--market", "um", "--store", str(tmp_path / "s"), str(path)]) == 0
    df = TickStore(tmp_path / "s").read("um:TRXUSDT")
    assert df["trade_id"].tolist() == [7, 8] and df.index[1].value == 1735689600010867000
    with pytest.raises(LayoutError):
        identify(tmp_path / "notes.txt")
