"""Trade sources of the exchange simulator: replay of real captures/CSVs, synthetic market."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from quantlab.errors import LayoutError, UnknownSymbolError
from quantlab.sim.sources import (
    TRADE_DTYPE,
    Replay,
    Synthetic,
    format_scaled,
    load_trades_csv,
    parse_decimal,
    source_from_spec,
)

SPOT_COUNTS = {"BTCUSDT": 19_904, "ETHUSDT": 14_515}


def _csv_rows(path: Path) -> list[list[str]]:
    return [line.strip().split(",") for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def spot_replay(real_data: Path) -> Replay:
    return Replay.from_paths(real_data / "binance_ws" / "spot")


def test_decimal_strings_round_trip_exactly():
    assert parse_decimal("61837.63000000", 8) == 6_183_763_000_000
    assert format_scaled(6_183_763_000_000, 8) == "61837.63000000"
    assert parse_decimal("0.00009", 8) == 9_000
    assert format_scaled(9_000, 8) == "0.00009000"
    assert parse_decimal("12", 2) == 1200 and format_scaled(1200, 0) == "1200"
    assert parse_decimal("1.2300", 2) == 123  # trailing zeros beyond the scale are fine
    for bad in ("abc", "1.2.3", "", "1.234"):
        with pytest.raises(ValueError):
            parse_decimal(bad, 2)


def test_replay_of_spot_captures_equals_the_official_csv(spot_replay: Replay, real_data: Path):
    assert spot_replay.symbols == ("BTCUSDT", "ETHUSDT")
    for sym, count in SPOT_COUNTS.items():
        csv = next((real_data / "trades").glob(f"{sym}-spot-trades-*.csv"))
        rows = _csv_rows(csv)
        rec = spot_replay.recorded(sym)
        info = spot_replay.info(sym)
        assert len(rec) == len(rows) == count
        assert rec["id"].tolist() == [int(r[0]) for r in rows]
        assert [format_scaled(p, info.price_decimals) for p in rec["price"].tolist()] == [r[1] for r in rows]
        assert [format_scaled(q, info.qty_decimals) for q in rec["qty"].tolist()] == [r[2] for r in rows]
        assert (rec["time"] // 1000).tolist() == [int(r[4]) for r in rows]
        assert rec["buyer_maker"].tolist() == [r[5] == "True" for r in rows]
        assert np.all(np.diff(rec["id"]) == 1)  # contiguous across the midnight split
    assert spot_replay.info("BTCUSDT").tick_size == "0.01000000"


def test_replay_shifts_times_by_whole_ms_and_releases_by_the_clock(spot_replay: Replay):
    rec = spot_replay.recorded("BTCUSDT")
    t0 = 1_900_000_000_123_456
    spot_replay.start(t0)
    first = spot_replay.advance(t0)  # the first trade happens at start
    assert first["BTCUSDT"]["id"][0] == rec["id"][0]
    got = [first["BTCUSDT"]]
    for k in range(1, 200):
        got.extend(b for s, b in spot_replay.advance(t0 + k * 5_000_000).items() if s == "BTCUSDT")
    out = np.concatenate(got)
    assert len(out) == len(rec) and spot_replay.exhausted
    shift = out["time"] - rec["time"][: len(out)]
    assert np.all(shift == shift[0]) and shift[0] % 1000 == 0
    assert abs(int(out["time"][0]) - t0) < 2000


def test_replay_loops_with_new_contiguous_ids_and_max_speed_bursts(real_data: Path):
    csv = real_data / "trades" / "BTCUSDT-trades-2023-03-24.rows587331-587545.csv"
    r = Replay.from_paths(csv, speed=math.inf, loop=True, burst=100)
    rec = r.recorded("BTCUSDT")
    n = len(rec)
    r.start(10**15)
    ids, prices = [], []
    for k in range(7):
        b = r.advance(10**15 + k)["BTCUSDT"]
        assert len(b) == 100 and np.all(b["time"] == 10**15 + k)
        ids.extend(b["id"].tolist())
        prices.extend(b["price"].tolist())
    assert ids[:n] == rec["id"].tolist()
    assert np.all(np.diff(ids) == 1)  # the loop continues the sequence without a gap
    assert prices[n : 2 * n] == rec["price"].tolist()  # same prices on the second pass
    assert not r.exhausted


def test_trades_csv_in_ms_and_microseconds(real_data: Path):
    ms = load_trades_csv(real_data / "trades" / "BTCUSDT-trades-2023-03-24.rows587331-587545.csv")
    us = load_trades_csv(real_data / "trades" / "BTCUSDT-trades-2025-01-01.rows0-209.csv")
    assert ms["BTCUSDT"][0] == (3055467955, 1679657162637_000, "28060.40000000", "0.00053000", True)
    assert us["BTCUSDT"][0] == (4359935386, 1735689600010866, "93576.00000000", "0.00136000", True)


def test_bad_replay_inputs_are_named(tmp_path: Path, real_data: Path):
    with pytest.raises(UnknownSymbolError, match="SOLUSDT.*hold BTCUSDT, ETHUSDT"):
        Replay.from_paths(real_data / "binance_ws" / "spot", ["SOLUSDT"])
    with pytest.raises(FileNotFoundError, match="no such file"):
        Replay.from_paths(tmp_path / "missing.gz")
    bad = tmp_path / "XYZUSDT-trades.csv"
    bad.write_text("1,2,3\n")
    with pytest.raises(LayoutError, match="3 columns"):
        Replay.from_paths(bad)
    zero = tmp_path / "ABCUSDT-trades.csv"
    zero.write_text("1,1.0,1.0,1.0,1700000000000,True,True\n2,0.0,0.0,0.0,1700000000001,True,True\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = Replay.from_paths(zero)
    assert len(r.recorded("ABCUSDT")) == 1 and "zero or negative" in str(caught[0].message)
    with pytest.raises(ValueError, match="must be > 0"):
        Replay(r._trades, speed=0)
    with pytest.raises(ValueError, match="synthetic' or 'replay:PATH"):
        source_from_spec("live")


def test_synthetic_is_seeded_and_independent_of_the_pace_of_calls():
    a, b = Synthetic(rate=500, seed=7), Synthetic(rate=500, seed=7)
    a.start(0)
    b.start(0)
    whole = a.advance(20_000_000)
    parts: dict[str, list] = {}
    for k in range(1, 401):
        for s, arr in b.advance(k * 50_000).items():
            parts.setdefault(s, []).append(arr)
    for s in ("BTCUSDT", "ETHUSDT"):
        joined = np.concatenate(parts[s])
        assert np.array_equal(joined, whole[s])
        assert np.all(np.diff(joined["id"]) == 1) and np.all(np.diff(joined["time"]) >= 0)
        info = a.info(s)
        assert np.all(joined["price"] % info.tick == 0) and np.all(joined["qty"] % info.step == 0)
        assert np.all(joined["qty"] > 0) and joined.dtype == TRADE_DTYPE
    total = sum(len(v) for v in whole.values())
    assert 0.9 * 10_000 < total < 1.1 * 10_000  # 500 trades/s for 20 s
    c = Synthetic(rate=500, seed=8)
    c.start(0)
    assert not np.array_equal(c.advance(20_000_000)["BTCUSDT"][:100], whole["BTCUSDT"][:100])


def _last_price_on_grid(arr: np.ndarray, grid: np.ndarray, decimals: int) -> np.ndarray:
    idx = np.searchsorted(arr["time"], grid, side="right") - 1
    return arr["price"][idx] / 10.0**decimals


def test_synthetic_pair_has_its_hedge_ratio_and_half_life():
    beta, half_life = 0.05, 20.0
    src = Synthetic(["BTCUSDT", "ETHUSDT"], rate=200, hedge_ratio=beta, half_life=half_life,
                    volatility=2.0, spread_vol=0.0005, seed=3)
    src.start(0)
    out = src.advance(3600 * 1_000_000)  # one hour, generated without waiting
    grid = np.arange(10, 3600) * 1_000_000
    x = _last_price_on_grid(out["BTCUSDT"], grid, 8)
    y = _last_price_on_grid(out["ETHUSDT"], grid, 8)
    slope, intercept = np.polyfit(x, y, 1)
    assert slope == pytest.approx(beta, rel=0.05)
    resid = y - (beta * x + src._mu["ETHUSDT"])
    phi = np.polyfit(resid[:-1], resid[1:], 1)[0]  # AR(1) at 1 s sampling
    # last-trade sampling of two symbols at different instants adds a little white noise,
    # which biases the estimate low (15-19 s over seeds 3..7): hence the loose tolerance
    est = -math.log(2) / math.log(phi)
    assert est == pytest.approx(half_life, rel=0.35)


def test_synthetic_validates_its_parameters():
    with pytest.raises(ValueError, match="rate"):
        Synthetic(rate=0)
    with pytest.raises(ValueError, match="half_life"):
        Synthetic(half_life=-1)
    with pytest.raises(ValueError, match="not among the y symbols"):
        Synthetic(["BTCUSDT", "ETHUSDT"], hedge_ratio={"BTCUSDT": 1.0})
    with pytest.raises(ValueError, match="Binance symbol"):
        Synthetic(["BTC-USDT"])
    s = source_from_spec("synthetic", symbols="solusdt,xrpusdt", rate=10, seed=1)
    assert s.symbols == ("SOLUSDT", "XRPUSDT") and s.info("XRPUSDT").tick_size == "0.00010000"
