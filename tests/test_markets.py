"""Markets (issue 18 item 3): spot, USD-M (``um:``) and COIN-M (``cm:``) symbols coexist in one
store without touching each other; futures files are never read as spot; COIN-M volumes are in
base-asset terms; ``.CHECKSUM`` files are verified."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

from quantlab.cli import main
from quantlab.config import parse_symbols as config_symbols
from quantlab.store import TickStore
from quantlab.symbols import MARKETS, Symbol, contract_size, parse_symbol, parse_symbols

SPOT_1M = "klines/BTCUSDT-1m-2025-07-13.csv"
UM_1M = "klines/BTCUSDT-1m-2022-09-05.zip"  # USD-M, header row
CM_1M = "klines/BTCUSD_PERP-1m-2022-10-24.zip"  # COIN-M, header row, volume in contracts


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "quantlab", *args], capture_output=True, text=True, timeout=120)


def one_error_line(out) -> str:
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    return lines[0]


def official_csv(path) -> pd.DataFrame:
    text = zipfile.ZipFile(path).read(zipfile.ZipFile(path).namelist()[0]).decode()
    from io import StringIO

    return pd.read_csv(StringIO(text))


def test_symbol_syntax():
    assert MARKETS == ("spot", "um", "cm")
    assert parse_symbol("btcusdt") == Symbol("spot", "BTCUSDT") and str(parse_symbol("spot:BTCUSDT")) == "BTCUSDT"
    assert str(parse_symbol(" UM:btcusdt ")) == "um:BTCUSDT"
    assert str(parse_symbol("cm:btcusd_perp")) == "cm:BTCUSD_PERP"
    assert [str(s) for s in parse_symbols("BTCUSDT, um:BTCUSDT,,BTCUSDT")] == ["BTCUSDT", "um:BTCUSDT"]
    assert config_symbols("ethusdt,cm:ETHUSD_PERP") == ["ETHUSDT", "cm:ETHUSD_PERP"]
    for bad, needle in (("xx:BTCUSDT", "market"), ("BTC-USDT", "symbol for spot"), ("BTCUSD_PERP", "symbol for spot"),
                        ("cm:BTCUSDT", "COIN-M"), ("um:", "USD-M")):
        with pytest.raises(ValueError, match=needle):
            parse_symbol(bad)
    assert contract_size("cm:BTCUSD_PERP") == 100 and contract_size("cm:TRXUSD_PERP") == 10
    with pytest.raises(ValueError, match="not a COIN-M"):
        contract_size("um:BTCUSDT")


def test_spot_and_usdm_klines_of_one_name_stay_apart(tmp_path, real_data):
    """Issue 18: BTCUSDT 1m held 2022 futures and 2025 spot in one table."""
    store = tmp_path / "s"
    assert main(["import", "--no-progress", "--store", str(store), str(real_data / SPOT_1M)]) == 0
    assert main(["import", "--no-progress", "--market", "um", "--store", str(store), str(real_data / UM_1M)]) == 0
    st = TickStore(store)
    spot, um = st.klines("BTCUSDT", "1m"), st.klines("um:BTCUSDT", "1m")
    assert len(spot) == len(um) == 1440
    assert spot.index[0] == pd.Timestamp("2025-07-13", tz="UTC") and um.index[0] == pd.Timestamp("2022-09-05", tz="UTC")
    ref = official_csv(real_data / UM_1M)
    assert np.array_equal(um["close"].to_numpy(), ref["close"].to_numpy())
    assert np.array_equal(um["volume"].to_numpy(), ref["volume"].to_numpy())  # USD-M: base units already
    assert st.symbols() == ["BTCUSDT", "um:BTCUSDT"]
    assert (store / "um" / "klines" / "BTCUSDT" / "1m.h5").exists()
    assert len(st.bars("BTCUSDT", "1h")) == 24 and st.bars("BTCUSDT", "1h").index[0].year == 2025
    out = run_cli("info", "--store", str(store))
    assert out.returncode == 0 and "um:BTCUSDT" in out.stdout
    csv = tmp_path / "um.csv"
    out = run_cli("export", "--store", str(store), "--symbol", "um:btcusdt", "--timeframe", "1h", "--out", str(csv))
    assert out.returncode == 0, out.stderr
    assert "um:BTCUSDT: 24 rows written" in out.stderr
    assert pd.read_csv(csv)["time"].iloc[0].startswith("2022-09-05")


@pytest.mark.parametrize("path, market, looks", [(UM_1M, None, "USD-M futures"), (CM_1M, None, "COIN-M futures"),
                                                 (UM_1M, "spot", "USD-M futures"), (UM_1M, "cm", "USD-M futures"),
                                                 (CM_1M, "um", "COIN-M futures"), (CM_1M, "spot", "COIN-M futures"),
                                                 (SPOT_1M, "cm", "COIN-M")])
def test_a_futures_layout_is_never_read_as_another_market(tmp_path, real_data, path, market, looks):
    args = ["import", "--no-progress", "--store", str(tmp_path / "s"), str(real_data / path)]
    line = one_error_line(run_cli(*args, *(["--market", market] if market else [])))
    assert looks in line and (real_data / path).name in line
    assert "--market" in line
    assert not (tmp_path / "s").exists()  # refused before anything was written


def test_coinm_volume_and_vwap_are_in_base_asset_terms(tmp_path, real_data):
    """Issue 18: COIN-M vwap was 0.0051 for a 19,560 USD price (contracts divided by coins)."""
    store = tmp_path / "s"
    assert main(["import", "--no-progress", "--market", "cm", "--store", str(store), str(real_data / CM_1M)]) == 0
    st = TickStore(store)
    ref = official_csv(real_data / CM_1M)
    k = st.klines("cm:BTCUSD_PERP", "1m")
    # the file's own base-asset volume column (named quote_volume in COIN-M files) is the volume
    assert np.array_equal(k["volume"].to_numpy(), ref["quote_volume"].to_numpy())
    assert np.allclose(k["quote_volume"].to_numpy(), ref["volume"].to_numpy() * 100.0)  # USD = contracts x 100
    bars = st.bars("cm:BTCUSD_PERP", "1m")
    live = bars["volume"] > 0
    assert live.sum() > 1000
    # the file rounds the base volume to 1e-8 BTC (1 contract = 0.0051 BTC): 1e-6 relative slack
    b = bars[live]
    assert ((b["vwap"] >= b["low"] * (1 - 1e-6)) & (b["vwap"] <= b["high"] * (1 + 1e-6))).all()
    # contracts x contract size / price = coins, checked against the file on every row
    approx_base = ref["volume"].to_numpy() * 100.0 / ref["close"].to_numpy()
    assert np.allclose(k["volume"].to_numpy(), approx_base, rtol=0.01)
    hour = st.bars("cm:BTCUSD_PERP", "1h")
    assert 19_000 < hour["vwap"].iloc[0] < 20_000


def _trx_rows(path) -> pd.DataFrame:
    df = pd.read_csv(path)
    return df.drop_duplicates("TradeId").sort_values("TradeId")


def test_spot_usdm_and_coinm_ticks_coexist_from_real_trx_streams(tmp_path, real_data):
    """The same day of TRX on three markets, written in the official layouts (real rows)."""
    trx = real_data / "trx"
    spot = _trx_rows(next(trx.glob("*spot_trxusdt*")))
    um = _trx_rows(next(trx.glob("*usd_m_futures*")))
    cm = _trx_rows(next(trx.glob("*coin_m_futures*")))
    files = tmp_path / "files"
    files.mkdir()
    quote = (spot["Price"] * spot["Quantity"]).round(8)
    pd.DataFrame({0: spot["TradeId"], 1: spot["Price"], 2: spot["Quantity"], 3: quote,
                  4: spot["TransactionTime"], 5: spot["IsBuyerMarketMaker"].astype(bool), 6: True}
                 ).to_csv(files / "TRXUSDT-trades-2025-03-04.csv", header=False, index=False)
    pd.DataFrame({"id": um["TradeId"], "price": um["Price"], "qty": um["Quantity"],
                  "quote_qty": (um["Price"] * um["Quantity"]).round(8), "time": um["TransactionTime"],
                  "is_buyer_maker": um["IsBuyerMarketMaker"].astype(bool)}
                 ).to_csv(files / "TRXUSDT-trades-2025-03-04.zip.csv", index=False)
    (files / "TRXUSDT-trades-2025-03-04.zip.csv").rename(files / "um-TRXUSDT.csv")
    um_path = files / "um" / "TRXUSDT-trades-2025-03-04.csv"
    um_path.parent.mkdir()
    (files / "um-TRXUSDT.csv").rename(um_path)
    # COIN-M aggTrades carry contracts only (no base column): the importer converts them
    cm_path = files / "TRXUSD_PERP-aggTrades-2025-03-04.csv"
    pd.DataFrame({"agg_trade_id": cm["TradeId"], "price": cm["Price"], "quantity": cm["Quantity"],
                  "first_trade_id": cm["TradeId"], "last_trade_id": cm["TradeId"],
                  "transact_time": cm["TransactionTime"], "is_buyer_maker": cm["IsBuyerMarketMaker"].astype(bool)}
                 ).to_csv(cm_path, index=False)
    store = tmp_path / "s"
    assert main(["import", "--no-progress", "--store", str(store), str(files / "TRXUSDT-trades-2025-03-04.csv")]) == 0
    assert main(["import", "--no-progress", "--market", "um", "--store", str(store), str(um_path)]) == 0
    assert main(["import", "--no-progress", "--market", "cm", "--store", str(store), str(cm_path)]) == 0
    st = TickStore(store)
    assert st.symbols() == ["TRXUSDT", "cm:TRXUSD_PERP", "um:TRXUSDT"]
    got_spot, got_um = st.read("TRXUSDT"), st.read("um:TRXUSDT")
    assert np.array_equal(got_spot["trade_id"].to_numpy(), spot["TradeId"].to_numpy())
    good = um[(um["Price"] > 0) & (um["Quantity"] > 0)]  # the real price-0 trade is rejected
    assert np.array_equal(got_um["trade_id"].to_numpy(), good["TradeId"].to_numpy())
    assert np.array_equal(got_um["qty"].to_numpy(), good["Quantity"].to_numpy())
    got_cm = st.read("cm:TRXUSD_PERP", kind="aggtrades")
    assert np.array_equal(got_cm["agg_id"].to_numpy(), cm["TradeId"].to_numpy())
    # 10 USD per TRXUSD_PERP contract: coins = contracts x 10 / price (about 43 TRX per contract)
    assert np.allclose(got_cm["qty"].to_numpy(), cm["Quantity"].to_numpy() * 10.0 / cm["Price"].to_numpy())
    with TickStore(store, mode="a") as w:  # appending to one market leaves the others alone
        before = (len(st.read("TRXUSDT")), len(st.read("um:TRXUSDT")))
        w.append("um:TRXUSDT", {"trade_id": [10**10], "time": [got_um.index[-1].value + 1], "price": [0.25],
                                "qty": [1.0], "is_buyer_maker": [True]})
    assert (len(st.read("TRXUSDT")), len(st.read("um:TRXUSDT"))) == (before[0], before[1] + 1)


def _write_checksum(path, digest=None):
    digest = digest or hashlib.sha256(path.read_bytes()).hexdigest()
    cs = path.with_name(path.name + ".CHECKSUM")
    cs.write_text(f"{digest}  {path.name}\n")
    return cs


def test_checksum_is_verified_when_present(tmp_path, real_data):
    import shutil

    good = tmp_path / "BTCUSDT-1h-2022-09-07.zip"
    shutil.copy(real_data / "klines" / good.name, good)
    _write_checksum(good)
    out = run_cli("import", "--no-progress", "--store", str(tmp_path / "s"), str(good))
    assert out.returncode == 0 and "(checksum ok)" in out.stdout, out.stderr
    bad = tmp_path / "BTCUSDT-1h-2022-09-08.zip"
    shutil.copy(real_data / "klines" / bad.name, bad)
    _write_checksum(bad, hashlib.sha256(b"something else").hexdigest())
    line = one_error_line(run_cli("import", "--no-progress", "--store", str(tmp_path / "t"), str(good), str(bad)))
    assert bad.name in line and "does not match" in line and "download it again" in line
    assert not (tmp_path / "t").exists()  # the whole command refused before writing anything


def test_screen_alerts_and_lab_take_market_symbols(tmp_path, real_data, monkeypatch):
    from quantlab import Lab
    from quantlab.alerts.rules import PriceRule, ZScoreRule
    from quantlab.screen.data import closes_from_store

    store = tmp_path / "s"
    assert main(["import", "--no-progress", "--store", str(store), str(real_data / SPOT_1M)]) == 0
    assert main(["import", "--no-progress", "--market", "um", "--store", str(store), str(real_data / UM_1M)]) == 0
    closes = closes_from_store(store, ["btcusdt", "UM:btcusdt"], "1h")
    assert list(closes.columns) == ["BTCUSDT", "um:BTCUSDT"]
    assert closes["BTCUSDT"].notna().sum() == closes["um:BTCUSDT"].notna().sum() == 24
    assert closes["um:BTCUSDT"].dropna().index[0].year == 2022 and closes["BTCUSDT"].dropna().index[0].year == 2025
    assert PriceRule(symbol="um:btcusdt", op="above", level=20_000).symbol == "um:BTCUSDT"
    assert ZScoreRule(y="cm:ethusd_perp", x="cm:BTCUSD_PERP", window=60).y == "cm:ETHUSD_PERP"
    with pytest.raises(ValueError, match="not a Binance symbol"):
        PriceRule(symbol="xx:BTCUSDT", op="above", level=1)
    monkeypatch.setenv("QUANTLAB_STORE", str(store))
    lab = Lab(["BTCUSDT", "um:btcusdt"])
    assert lab.symbols == ["BTCUSDT", "um:BTCUSDT"]
    assert lab._check_symbol("UM:btcusdt") == "um:BTCUSDT"


def test_recording_an_unknown_futures_symbol_is_refused_in_one_line(tmp_path):
    """Futures are recorded (tests/test_recorder_futures.py); a name the futures exchange does not
    list is refused before connecting, naming the market."""
    from quantlab.sim import Synthetic
    from quantlab.sim.futures import FuturesExchangeThread

    with FuturesExchangeThread(Synthetic(["BTCUSDT"], rate=10)) as ex:
        line = one_error_line(run_cli("record", "--store", str(tmp_path / "s"), "--market", "um", "--symbols",
                                      "NOPEUSDT", "--ws-url", ex.ws_url, "--rest-url", ex.rest_url, "--no-alerts"))
    assert "NOPEUSDT" in line and "um" in line and "exchangeInfo" in line


def test_coinm_contract_size_is_checked_against_the_file(tmp_path, real_data):
    """A USD-M file renamed to a COIN-M name: its volumes contradict 10 USD per contract."""
    fake = tmp_path / "ETHUSD_PERP-1m-2022-09-05.csv"
    fake.write_text(zipfile.ZipFile(real_data / UM_1M).read("BTCUSDT-1m-2022-09-05.csv").decode())
    line = one_error_line(run_cli("import", "--no-progress", "--market", "cm", "--store", str(tmp_path / "s"), str(fake)))
    assert fake.name in line and "contract is worth" in line
