"""One bar source: ticks where the store has a bar's trades, imported klines where it does
not, in one frame with a ``source`` column; whole bars whatever ``start`` is; coarser bars
(1h, 1d, 1M) aggregated from 1m klines; kline file names checked against the rows."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from quantlab.errors import LayoutError
from quantlab.importer import import_file
from quantlab.store import TickStore

KCOLS = ["open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
         "trades", "taker_buy_base", "taker_buy_quote", "ignore"]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "quantlab", *args], capture_output=True, text=True)


def kline_file(path) -> pd.DataFrame:
    k = pd.read_csv(path, header=None, names=KCOLS)
    k.index = pd.to_datetime(k["open_time"], unit="us", utc=True).rename("time")
    return k


@pytest.fixture
def store_with_day_behind_ticks(real_data, tmp_path):
    """BTCUSDT: real ticks of 2025-01-01 and the real 1m klines of 2025-07-13."""
    path = tmp_path / "store"
    with TickStore(path, mode="a") as st:
        import_file(st, real_data / "trades" / "BTCUSDT-trades-2025-01-01.rows0-209.csv", progress=False)
        import_file(st, real_data / "klines" / "BTCUSDT-1m-2025-07-13.csv", progress=False)
    return path


def test_imported_kline_day_behind_ticks_exports_its_1440_bars(store_with_day_behind_ticks, real_data):
    # issue 18 item 4: once a symbol had any ticks, bars() ignored its klines (0 rows, exit 0)
    out = run_cli("export", "--store", str(store_with_day_behind_ticks), "--symbol", "BTCUSDT",
                  "--timeframe", "1m", "--start", "2025-07-13", "--end", "2025-07-14", "--out", "-")
    assert out.returncode == 0, out.stderr
    got = pd.read_csv(io.StringIO(out.stdout))
    ref = kline_file(real_data / "klines" / "BTCUSDT-1m-2025-07-13.csv")
    assert len(got) == 1440 == len(ref)
    assert (got["source"] == "klines").all()
    assert pd.to_datetime(got["time"], utc=True).tolist() == ref.index.tolist()
    for col in ("open", "high", "low", "close", "volume", "trades"):
        assert np.array_equal(got[col].to_numpy(), ref[col].to_numpy()), col
    assert np.allclose(got["vwap"], ref["quote_volume"] / ref["volume"], rtol=1e-12)


def test_ticks_and_klines_in_one_frame(store_with_day_behind_ticks):
    st = TickStore(store_with_day_behind_ticks)
    bars = st.bars("BTCUSDT", "1m")
    assert set(bars["source"]) == {"ticks", "klines"}
    ticks = bars[bars["source"] == "ticks"]
    assert ticks.index.max() < pd.Timestamp("2025-01-02", tz="UTC") and ticks["trades"].sum() == 210
    assert (bars["source"] == "klines").sum() == 1440
    assert bars.index.is_monotonic_increasing and not bars.index.has_duplicates


def test_a_bar_the_ticks_hold_only_part_of_comes_from_the_klines(real_data, tmp_path):
    """A recording that starts inside a bar has fewer of its trades than the kline: the kline
    (which saw the whole bar) serves it; the next bar, all of whose trades are stored, is ticks."""
    k = kline_file(real_data / "klines" / "SOLUSDT-1m-2025-07-13.csv")
    t0 = int(k.index[600].value)  # 10:00
    n1, n2 = int(k["trades"].iloc[600]), int(k["trades"].iloc[601])
    ids = np.arange(n1 // 2 + n2)
    # the second half of minute 600 and every trade of minute 601, at the kline's prices
    times = np.r_[t0 + 30 * 10**9 + np.arange(n1 // 2) * 10**6, t0 + 60 * 10**9 + np.arange(n2) * 10**6]
    price = np.full(len(ids), float(k["close"].iloc[601]))
    with TickStore(tmp_path / "s", mode="a") as st:
        import_file(st, real_data / "klines" / "SOLUSDT-1m-2025-07-13.csv", progress=False)
        st.append("SOLUSDT", {"trade_id": ids, "time": times, "price": price, "qty": np.full(len(ids), 0.1),
                              "is_buyer_maker": ids % 2 == 0})
        bars = st.bars("SOLUSDT", "1m", "2025-07-13 10:00", "2025-07-13 10:02")
    assert bars["source"].tolist() == ["klines", "ticks"]
    assert bars["trades"].tolist() == [n1, n2]
    assert bars["open"].iloc[0] == k["open"].iloc[600]


def test_start_inside_a_bar_gives_the_whole_bar(store_with_day_behind_ticks, real_data):
    # issue 18 item 4: a start inside a bar returned a partial first bar labelled as full
    st = TickStore(store_with_day_behind_ticks)
    ref = kline_file(real_data / "klines" / "BTCUSDT-1m-2025-07-13.csv")
    bars = st.bars("BTCUSDT", "1h", start="2025-07-13 10:30", end="2025-07-13 12:00")
    assert bars.index.tolist() == [pd.Timestamp("2025-07-13 10:00", tz="UTC"), pd.Timestamp("2025-07-13 11:00", tz="UTC")]
    hour = ref.loc["2025-07-13 10:00":"2025-07-13 10:59"]
    assert bars["open"].iloc[0] == hour["open"].iloc[0] and bars["trades"].iloc[0] == hour["trades"].sum()


@pytest.mark.parametrize("tf, rule", [("1h", "1h"), ("4h", "4h"), ("1d", "1D")])
def test_coarser_bars_from_1m_klines_equal_pandas_resample(store_with_day_behind_ticks, real_data, tf, rule):
    st = TickStore(store_with_day_behind_ticks)
    ref = kline_file(real_data / "klines" / "BTCUSDT-1m-2025-07-13.csv")
    exp = ref.resample(rule).agg({"open": "first", "high": "max", "low": "min", "close": "last",
                                  "volume": "sum", "trades": "sum", "quote_volume": "sum"})
    got = st.bars("BTCUSDT", tf, "2025-07-13", "2025-07-14")
    assert len(got) == len(exp) and (got.index == exp.index).all()
    for col in ("open", "high", "low", "close", "trades"):
        assert np.array_equal(got[col].to_numpy(), exp[col].to_numpy()), col
    assert np.allclose(got["volume"], exp["volume"], rtol=1e-12)
    assert np.allclose(got["vwap"], exp["quote_volume"] / exp["volume"], rtol=1e-12)


def test_1M_bars_are_months(store_with_day_behind_ticks, real_data):
    # issue 18 item 5: '1M' was read as one minute
    st = TickStore(store_with_day_behind_ticks)
    bars = st.bars("BTCUSDT", "1M")
    assert bars.index.tolist() == [pd.Timestamp("2025-01-01", tz="UTC"), pd.Timestamp("2025-07-01", tz="UTC")]
    assert bars["source"].tolist() == ["ticks", "klines"]
    ref = kline_file(real_data / "klines" / "BTCUSDT-1m-2025-07-13.csv")
    assert bars["trades"].iloc[1] == ref["trades"].sum() and bars["high"].iloc[1] == ref["high"].max()
    week = st.bars("BTCUSDT", "1w")
    assert week.index[-1] == pd.Timestamp("2025-07-07", tz="UTC")  # Monday of the week of Sunday the 13th


def test_hourly_and_minute_kline_files_serve_one_frame(real_data, tmp_path):
    with TickStore(tmp_path / "s", mode="a") as st:
        # these two real zips are USD-M files (header row): they land as um:BTCUSDT
        for name in ("BTCUSDT-1m-2022-09-06.zip", "BTCUSDT-1h-2022-09-07.zip"):
            import_file(st, real_data / "klines" / name, market="um", progress=False)
        hours = st.bars("um:BTCUSDT", "1h")
        assert len(hours) == 48 and (hours["source"] == "klines").all()
        assert hours.index[0] == pd.Timestamp("2022-09-06", tz="UTC")
        with pytest.raises(ValueError, match="timeframe"):
            st.bars("um:BTCUSDT", "90s")


def test_kline_name_disagreeing_with_row_spacing_is_refused(real_data, tmp_path):
    # issue 18 item 5: SOLUSDT-1M-2025-07.csv held minute rows and was served as minute bars
    bad = tmp_path / "SOLUSDT-1M-2025-07.csv"
    shutil.copy(real_data / "klines" / "SOLUSDT-1m-2025-07-13.csv", bad)
    store = tmp_path / "store"
    out = run_cli("import", "--no-progress", "--store", str(store), str(bad))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    line = out.stderr.strip()
    assert "\n" not in line and "1M (one calendar month)" in line and "1m apart" in line, line
    with TickStore(store, mode="a") as st, pytest.raises(LayoutError, match="1h klines but the rows are 1m apart"):
        wrong = tmp_path / "SOLUSDT-1h-2025-07-13.csv"
        shutil.copy(real_data / "klines" / "SOLUSDT-1m-2025-07-13.csv", wrong)
        import_file(st, wrong, progress=False)
    assert "SOLUSDT" not in TickStore(store).symbols()


def test_monthly_1mo_archive_names_are_accepted(real_data, tmp_path):
    """A monthly kline file (Binance names the month ``1mo`` in archive names): one row per
    month, closing 1 ms before the next month. Its row is the real July day's aggregate."""
    day = kline_file(real_data / "klines" / "BTCUSDT-1m-2025-07-13.csv")
    t0 = pd.Timestamp("2025-07-01", tz="UTC")
    row = [t0.value // 1000, day["open"].iloc[0], day["high"].max(), day["low"].min(), day["close"].iloc[-1],
           day["volume"].sum(), pd.Timestamp("2025-08-01", tz="UTC").value // 1000 - 1, day["quote_volume"].sum(),
           day["trades"].sum(), day["taker_buy_base"].sum(), day["taker_buy_quote"].sum(), 0]
    path = tmp_path / "BTCUSDT-1mo-2025-07.csv"
    path.write_text(",".join(repr(float(v)) if isinstance(v, float) else str(int(v)) for v in row) + "\n")
    with TickStore(tmp_path / "s", mode="a") as st:
        assert import_file(st, path, progress=False).rows_added == 1
        bars = st.bars("BTCUSDT", "1M")
        assert bars.index.tolist() == [t0] and bars["trades"].iloc[0] == day["trades"].sum()
        assert st.klines("BTCUSDT", "1mo").index.tolist() == [t0]
        with pytest.raises(ValueError, match="cannot be built"):
            st.bars("BTCUSDT", "1d")


def test_screen_tests_the_imported_kline_bars_behind_ticks(store_with_day_behind_ticks, real_data, tmp_path):
    # issue 18 item 4: `screen` tested 0 bars once a symbol had ticks
    with TickStore(store_with_day_behind_ticks, mode="a") as st:
        import_file(st, real_data / "klines" / "SOLUSDT-1m-2025-07-13.csv", progress=False)
    out = run_cli("screen", "--store", str(store_with_day_behind_ticks), "--symbols", "BTCUSDT,SOLUSDT",
                  "--timeframe", "1m", "--since", "2025-07-13", "--no-progress",
                  "--out", str(tmp_path / "pairs.csv"))
    assert out.returncode == 0, out.stderr
    res = pd.read_csv(tmp_path / "pairs.csv")
    assert len(res) == 1 and res["n_obs"].iloc[0] == 1440
