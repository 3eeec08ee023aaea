"""quantlab.screen(): ranking with FDR control on planted and real pairs, splits, bad input."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import quantlab as ql
from quantlab.cli import main as cli_main
from quantlab.errors import InsufficientDataError, UnknownSymbolError
from quantlab.pandas_compat import EXACT_FLOATS
from quantlab.screen import COLUMNS, OOS_COLUMNS, ScreenWarning, panel_data, pvalue_matrix, screen
from quantlab.screen.synthetic import planted_universe

TRIANGLE = ("BTCUSDT", "SOLUSDT", "SOLBTC")


@pytest.fixture(scope="module")
def universe():
    return planted_universe(n_symbols=60, n_bars=3000, n_pairs=5, seed=1)


@pytest.fixture(scope="module")
def screened(universe):
    return screen(universe[0])


def _kline_closes(folder: Path, names=TRIANGLE, day="2025-07-13") -> pd.DataFrame:
    cols = {}
    for s in names:
        k = pd.read_csv(folder / f"{s}-1m-{day}.csv", header=None, **EXACT_FLOATS)
        cols[s] = pd.Series(k[4].to_numpy(), index=pd.to_datetime(k[0], unit="us", utc=True))
    return pd.DataFrame(cols)


def test_planted_pairs_rank_first_and_few_false_survivors(universe, screened):
    closes, planted = universe
    r = screened
    assert list(r.columns) == list(COLUMNS) and len(r) == 60 * 59 // 2
    assert r["rank"].tolist() == list(range(1, len(r) + 1))
    top = {frozenset(p) for p in zip(r["y"][:5], r["x"][:5], strict=True)}
    assert top == {frozenset(p) for p in planted}
    assert (r["qvalue"][:5] < 1e-6).all() and r["selected"][:5].all()
    false_survivors = int(r["selected"][5:].sum())
    assert false_survivors <= 2, r[r["selected"]].head(10)
    # without FDR control, ~5% of 1,765 unrelated pairs would pass at 5%
    assert int((r["pvalue_pair"][5:] < 0.05).sum()) > 40
    # planted spreads: AR(0.95) -> half-life ~13.5 bars; the sampling spread is wide
    assert ((r["half_life"][:5] > 5) & (r["half_life"][:5] < 40)).all()
    assert r["pvalue_pair"].is_monotonic_increasing
    assert (r["n_obs"] == 3000).all() and r.attrs["n_tests"] == len(r)


def test_callable_through_the_package_and_block_size_invariance(universe, screened):
    closes, _ = universe
    few = closes.iloc[:, :12]
    a = ql.screen(few)
    b = screen(few, block_size=5)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    table, heat = panel_data(screened, top=7)
    assert len(table) == 7 and heat.shape == (60, 60)
    y, x, p = screened.loc[0, ["y", "x", "pvalue_pair"]]
    assert heat.loc[y, x] == heat.loc[x, y] == p and np.isnan(heat.loc[y, y])
    with pytest.raises(ValueError, match="value"):
        pvalue_matrix(screened, "nope")


def test_real_triangle_from_klines(real_data):
    closes = _kline_closes(real_data / "klines")
    closes["SOLBTC_IMPLIED"] = closes["SOLUSDT"] / closes["BTCUSDT"]
    r = screen(closes, min_overlap=500)
    first = r.iloc[0]
    assert {first["y"], first["x"]} == {"SOLBTC", "SOLBTC_IMPLIED"}
    assert first["qvalue"] < 1e-6 and first["n_obs"] == 1440
    assert 0.95 < first["hedge_ratio"] < 1.05  # the traded cross tracks the implied one
    assert first["hedge_prices"] == "log"  # a log-log slope, and the table says so
    assert first["half_life"] < 5  # deviations close within minutes
    assert int(r["selected"].sum()) == 1  # no unrelated pair survives
    # the three traded markets alone: no pair is cointegrated over one day
    assert not screen(closes[list(TRIANGLE)])["selected"].any()


def test_store_path_equals_frame_path(real_data, tmp_path):
    from quantlab.importer import import_file
    from quantlab.store import TickStore

    with TickStore(tmp_path / "st", mode="a") as st:
        for s in TRIANGLE:
            import_file(st, real_data / "klines" / f"{s}-1m-2025-07-13.csv", progress=False)
    from_store = screen(tmp_path / "st", symbols=list(TRIANGLE), timeframe="1m")
    from_frame = screen(_kline_closes(real_data / "klines"))
    cols = [c for c in COLUMNS if c not in ("rank",)]
    pd.testing.assert_frame_equal(from_store[cols], from_frame[cols], check_exact=False,
                                  rtol=1e-12, check_dtype=False)
    five = screen(tmp_path / "st", timeframe="5m", min_overlap=200)
    assert (five["n_obs"] == 288).all()
    with pytest.raises(UnknownSymbolError, match="ETHUSDT.*known: BTCUSDT"):
        screen(tmp_path / "st", symbols=["BTCUSDT", "ETHUSDT"])
    with pytest.raises(InsufficientDataError, match="at least two symbols"):
        screen(tmp_path / "st", symbols=["BTCUSDT"])


def test_too_little_overlap_on_real_files(real_data, tmp_path):
    """Official kline zips of different days: USD-M BTCUSDT in September, spot ETHUSDT in August 2022."""
    from quantlab.importer import import_file
    from quantlab.store import TickStore

    with TickStore(tmp_path / "st", mode="a") as st:
        for name, market in (("BTCUSDT-1m-2022-09-05.zip", "um"), ("ETHUSDT-1m-2022-08-14.zip", None)):
            import_file(st, real_data / "klines" / name, market=market, progress=False)
    with pytest.raises(InsufficientDataError, match="min_overlap.*longest overlap is 0 bars"):
        screen(tmp_path / "st")


def test_partial_overlap_warns_and_leaves_pairs_untested(universe):
    closes = universe[0].iloc[:, :6].copy()
    closes.iloc[:2700, 5] = np.nan  # S05 listed late: 300 bars only
    with pytest.warns(ScreenWarning, match="5 of 15 pairs overlap by fewer than min_overlap=500"):
        r = screen(closes)
    late = (r["y"] == "S05") | (r["x"] == "S05")
    assert r.loc[late, "pvalue_pair"].isna().all() and (r.loc[late, "n_obs"] == 300).all()
    assert r.loc[~late, "qvalue"].notna().all() and r["rank"].iloc[-5:].tolist() == [11, 12, 13, 14, 15]
    assert r.attrs["n_tests"] == 10


def test_out_of_sample_retest(universe):
    closes, planted = universe
    sub = closes[[s for p in planted[:3] for s in p] + ["S40", "S41", "S42", "S43"]]
    r = screen(sub, oos=0.4)
    assert list(r.columns) == list(COLUMNS) + list(OOS_COLUMNS)
    assert (r["n_obs"] == 1800).all()
    sel = r[r["selected"]]
    assert {frozenset(p) for p in planted[:3]} <= {frozenset(p) for p in zip(sel["y"], sel["x"], strict=True)}
    planted_rows = r.iloc[:3]
    assert planted_rows["oos_confirmed"].all() and (planted_rows["oos_n_obs"] == 1200).all()
    assert r.loc[~r["selected"], "oos_pvalue"].isna().all()
    with pytest.raises(ValueError, match="oos"):
        screen(sub, oos=1.5)
    r2 = screen(sub, oos=str(sub.index[1800]))
    pd.testing.assert_frame_equal(r.drop(columns=[]), r2, check_exact=True)


def test_bad_arguments(universe):
    closes = universe[0].iloc[:, :4]
    with pytest.raises(InsufficientDataError, match="at least two symbols"):
        screen(closes[["S00"]])
    with pytest.raises(UnknownSymbolError, match="NOPE"):
        screen(closes, symbols=["S00", "NOPE"])
    with pytest.raises(InsufficientDataError, match="min_overlap"):
        screen(closes.iloc[:100])
    with pytest.raises(ValueError, match="lag"):
        screen(closes, lag=-1)
    with pytest.raises(ValueError, match="alpha"):
        screen(closes, alpha=5)
    with pytest.raises(ValueError, match="scheduler"):
        screen(closes, scheduler="not an address")
    with pytest.raises(ValueError, match="workers and scheduler"):
        screen(closes, workers=2, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(TypeError, match="data"):
        screen([1, 2, 3])
    neg = closes.copy()
    neg.iloc[5, 1] = -1.0
    with pytest.raises(ValueError, match="positive.*S01"):
        screen(neg)
    with pytest.raises(ValueError, match="sorted"):
        screen(closes.iloc[::-1])
    dup = closes.copy()
    dup["S00"] = closes["S00"] * 2  # a duplicated symbol: collinear, warned
    dup.columns = ["S00", "S01", "S02", "S03"]
    dup["COPY"] = closes["S00"] * 3
    with pytest.warns(ScreenWarning, match="collinear"):
        r = screen(dup)
    assert {r.iloc[0]["y"], r.iloc[0]["x"]} == {"S00", "COPY"} and r.iloc[0]["stat"] == -np.inf


def test_cli_serial_with_closes_csv(universe, tmp_path, capsys):
    closes = universe[0].iloc[:, :10]
    closes.to_csv(tmp_path / "closes.csv")
    out = tmp_path / "pairs.csv"
    assert cli_main(["screen", "--closes", str(tmp_path / "closes.csv"), "--out", str(out),
                     "--no-progress", "--top", "5"]) == 0
    text = capsys.readouterr().out
    assert "45 pairs of 10 symbols, 45 tested (lag 4)" in text
    got = pd.read_csv(out, **EXACT_FLOATS)
    want = screen(closes)
    np.testing.assert_array_equal(got["pvalue_pair"].to_numpy(), want["pvalue_pair"].to_numpy())
    assert cli_main(["screen", "--closes", str(tmp_path / "closes.csv"), "--symbols", "S00"]) == 2
    assert "at least two symbols" in capsys.readouterr().err
    assert cli_main(["screen", "--store", str(tmp_path / "missing")]) == 2
    assert "no store directory" in capsys.readouterr().err


def test_parse_since():
    from quantlab.commands.screen import parse_since

    now = pd.Timestamp("2025-07-13 12:00", tz="UTC")
    assert parse_since("30d", now) == now - pd.Timedelta(days=30)
    assert parse_since("90m", now) == now - pd.Timedelta(minutes=90)
    assert parse_since("1M", now) == pd.Timestamp("2025-06-13 12:00", tz="UTC")  # a month, not a minute
    assert parse_since("2025-07-13T01:00") == pd.Timestamp("2025-07-13 01:00", tz="UTC")
    with pytest.raises(ValueError, match="--since"):
        parse_since("yesterday-ish")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert parse_since(None) is None
