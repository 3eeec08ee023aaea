"""Futures archives: fundingRate files import and export exactly; mark/index/premium-index
klines are refused; USD-M and COIN-M files land under um:/cm: with spot untouched; futures
ticks, bars, funding and mark prices export from the CLI."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from decimal import Decimal

import numpy as np
import pandas as pd

from quantlab.binance.futures import (
    FundingEvent,
    MarkPrice,
    agg_trades_to_batch,
    funding_to_batch,
    mark_price_from_payload,
    marks_to_batch,
)
from quantlab.binance.protocol import parse_frame
from quantlab.store import TickStore

FUNDING = "futures/BTCUSDT-fundingRate-2024-01.csv"  # hand-written in the documented layout
SPOT_1M = "klines/BTCUSDT-1m-2025-07-13.csv"
UM_1M = "klines/BTCUSDT-1m-2022-09-05.zip"
CM_1M = "klines/BTCUSD_PERP-1m-2022-10-24.zip"
UM_TRADES = "trx/test_positive_binance_trade_stream_usd_m_futures_trxusdt_04-03-2025.csv"


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "quantlab", *args], capture_output=True, text=True, timeout=120)


def one_error_line(out) -> str:
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    return lines[0]


def test_funding_archive_imports_and_exports_exactly(tmp_path, real_data):
    store, out = tmp_path / "s", tmp_path / "funding.csv"
    src = real_data / FUNDING
    r = run_cli("import", "--no-progress", "--market", "um", "--store", str(store), str(src))
    assert r.returncode == 0, r.stderr
    assert "um:BTCUSDT funding: 7 rows read, 7 added" in r.stdout
    again = run_cli("import", "--no-progress", "--market", "um", "--store", str(store), str(src))
    assert "7 rows read, 0 added" in again.stdout  # each funding time once
    r = run_cli("export", "--store", str(store), "--symbol", "um:BTCUSDT", "--kind", "funding", "--out", str(out))
    assert r.returncode == 0, r.stderr
    want = pd.read_csv(src, dtype=str)
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(got["calc_time"]) == list(want["calc_time"])  # ms, including the odd +1/+2 ms
    assert list(got["funding_interval_hours"]) == list(want["funding_interval_hours"])
    assert [Decimal(x) for x in got["last_funding_rate"]] == [Decimal(x) for x in want["last_funding_rate"]]
    assert "e-" not in out.read_text()  # positional digits, as Binance writes rates
    assert (got["mark_price"] == "").all()  # archives carry no mark price: empty, not invented
    assert [pd.Timestamp(t).value // 10**6 for t in got["time"]] == [int(x) for x in want["calc_time"]]


def test_mark_index_and_premium_klines_are_refused(tmp_path, real_data):
    body = zipfile.ZipFile(real_data / UM_1M).read("BTCUSDT-1m-2022-09-05.csv").decode()
    for folder in ("markPriceKlines", "indexPriceKlines", "premiumIndexKlines"):
        f = tmp_path / "futures" / "um" / "daily" / folder / "BTCUSDT" / "1m" / "BTCUSDT-1m-2022-09-05.csv"
        f.parent.mkdir(parents=True)
        f.write_text(body)
        line = one_error_line(run_cli("import", "--no-progress", "--market", "um", "--store", str(tmp_path / "s"), str(f)))
        assert folder in line and "not trades" in line
    # renamed out of its folder, a mark-price file still tells itself apart: no volume, a count
    frame = pd.read_csv(io.StringIO(body))
    for col in ("volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume"):
        frame[col] = 0
    loose = tmp_path / "BTCUSDT-1m-2022-09-05.csv"
    frame.to_csv(loose, index=False)
    line = one_error_line(run_cli("import", "--no-progress", "--market", "um", "--store", str(tmp_path / "s"), str(loose)))
    assert "mark-price" in line and "not imported" in line
    assert not (tmp_path / "s").exists()  # refused before anything was written


def test_usdm_and_coinm_files_land_under_their_markets_spot_untouched(tmp_path, real_data):
    store = tmp_path / "s"
    r = run_cli("import", "--no-progress", "--store", str(store), str(real_data / SPOT_1M))
    assert r.returncode == 0, r.stderr
    before = TickStore(store).klines("BTCUSDT", "1m")
    for market, path in (("um", UM_1M), ("cm", CM_1M), ("um", FUNDING)):
        r = run_cli("import", "--no-progress", "--market", market, "--store", str(store), str(real_data / path))
        assert r.returncode == 0, r.stderr
    st = TickStore(store)
    assert st.symbols() == ["BTCUSDT", "cm:BTCUSD_PERP", "um:BTCUSDT"]
    assert st.symbols("funding") == ["um:BTCUSDT"]
    pd.testing.assert_frame_equal(st.klines("BTCUSDT", "1m"), before)  # spot untouched
    assert st.klines("um:BTCUSDT", "1m").index[0] == pd.Timestamp("2022-09-05", tz="UTC")
    assert st.klines("cm:BTCUSD_PERP", "1m").index[0] == pd.Timestamp("2022-10-24", tz="UTC")


def test_live_futures_ticks_bars_marks_and_funding_export(tmp_path, real_data):
    """Aggregate trades parsed from the real 2021 USD-M capture, stored as the recorder stores
    them, export as ticks and as bars; mark prices and funding export by kind."""
    frames = [line.split(": ", 1)[1] for line in (real_data / "fixtures/BINANCE_FUTURES.ws.1.0").read_text().splitlines()[1:]
              if '"e":"aggTrade"' in line]
    aggs = [ev for f in frames for ev in parse_frame(f, 0)]
    sym = max({a.symbol for a in aggs}, key=lambda s: sum(a.symbol == s for a in aggs))
    mine = sorted({a.agg_id: a for a in aggs if a.symbol == sym}.values(), key=lambda a: a.agg_id)
    assert len(mine) >= 5
    store = tmp_path / "s"
    with TickStore(store, mode="a") as st:
        st.append(f"um:{sym}", agg_trades_to_batch(mine), kind="aggtrades")
        t0 = mine[0].time_ns
        st.append(f"um:{sym}", marks_to_batch([MarkPrice(sym, t0 + k * 10**9, 7.5 + k, 7.4, 7.45, 1e-4, t0 + 3600 * 10**9,
                                                         t0) for k in range(3)]), kind="markprice")
        st.append(f"um:{sym}", funding_to_batch([FundingEvent(sym, t0, -0.00012345, 7.5)]), kind="funding")
    out = tmp_path / "ticks.csv"
    r = run_cli("export", "--store", str(store), "--symbol", f"um:{sym}", "--out", str(out))
    assert r.returncode == 0, r.stderr
    ticks = pd.read_csv(out)
    assert list(ticks["agg_id"]) == [a.agg_id for a in mine]
    assert list(ticks["price"]) == [a.price for a in mine] and list(ticks["qty"]) == [a.qty for a in mine]
    r = run_cli("export", "--store", str(store), "--symbol", f"um:{sym}", "--timeframe", "1m", "--out", "-")
    assert r.returncode == 0, r.stderr
    bars = pd.read_csv(io.StringIO(r.stdout))
    assert np.isclose(bars["volume"].sum(), sum(a.qty for a in mine), rtol=1e-12)
    assert bars["high"].max() == max(a.price for a in mine) and bars["low"].min() == min(a.price for a in mine)
    r = run_cli("export", "--store", str(store), "--symbol", f"um:{sym}", "--kind", "markprice", "--out", "-")
    assert r.returncode == 0 and list(pd.read_csv(io.StringIO(r.stdout))["mark_price"]) == [7.5, 8.5, 9.5]
    r = run_cli("export", "--store", str(store), "--symbol", f"um:{sym}", "--kind", "funding", "--out", "-")
    assert r.returncode == 0 and "-0.00012345" in r.stdout


def test_mark_price_payload_as_documented():
    """The documented USD-M example payload, and COIN-M's delivery-contract form."""
    um = ('{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT",'
          '"p":"11794.15000000","i":"11784.62659091","P":"11784.25641265","r":"0.00038167","T":1562306400000}}')
    import json

    m = mark_price_from_payload(json.loads(um), 5)
    assert m == MarkPrice("BTCUSDT", 1562305380000 * 10**6, 11794.15, 11784.62659091, 11784.25641265, 0.00038167,
                          1562306400000 * 10**6, 5)
    cm = {"e": "markPriceUpdate", "E": 1596095725000, "s": "BTCUSD_201225", "p": "10934.62615417",
          "P": "10962.17178236", "i": "10933.62615417", "r": "", "T": 0}
    d = mark_price_from_payload(cm, 0)
    assert np.isnan(d.funding_rate) and d.next_funding_ns == 0
    assert mark_price_from_payload({"e": "aggTrade"}, 0) is None
