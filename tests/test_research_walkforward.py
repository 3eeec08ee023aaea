"""Walk-forward selection and trading (issue 13): planted universe, no look-ahead, the
backtest's own accounting, the report."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

import quantlab as ql
from quantlab import backtest
from quantlab.research import Selection, WalkForwardResult, walk_forward
from quantlab.research.sharpe import probabilistic_sharpe
from quantlab.research.walkforward import FOLD_COLUMNS, deflated_sharpe_given_trials, fold_schedule
from quantlab.screen.synthetic import regime_universe

FORMATION, TRADING = "1D", "6h"   # 1,440 and 360 one-minute bars; 12 folds over 4 days


@pytest.fixture(scope="module")
def universe():
    return regime_universe(n_symbols=20, n_bars=5_760, n_throughout=2, n_first_half=3, seed=7)


@pytest.fixture(scope="module")
def result(universe):
    closes, _, _ = universe
    return walk_forward(closes, formation=FORMATION, trading=TRADING)


def _pairs(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return {tuple(sorted(p)) for p in zip(frame["y"], frame["x"], strict=True)}


# ------------------------------------------------------------------ acceptance: planted universe

def test_planted_universe_selection(universe, result, capsys):
    closes, throughout, first_half = universe
    folds = result.folds
    n_folds = len(result.schedule)
    assert n_folds == 12
    by_fold = {k: _pairs(g) for k, g in folds.groupby("fold")}
    # pairs cointegrated throughout: selected in most folds
    for pair in throughout:
        hits = sum(tuple(sorted(pair)) in by_fold.get(k, set()) for k in range(n_folds))
        assert hits >= 0.75 * n_folds, (pair, hits)
    # first-half pairs: never selected once the formation lies entirely in the second half
    half = closes.index[len(closes) // 2]
    late = result.schedule.loc[result.schedule["formation_start"] >= half, "fold"].tolist()
    assert len(late) >= 3
    for k in late:
        assert not by_fold.get(k, set()) & {tuple(sorted(p)) for p in first_half}, k
    # ...and they are found while their relationship holds
    early = result.schedule.loc[result.schedule["trading_end"] < half, "fold"].tolist()
    found = sum(tuple(sorted(p)) in by_fold.get(k, set()) for k in early for p in first_half)
    assert found >= 0.75 * len(early) * len(first_half)
    # independent walks: rarely selected (reported)
    planted = {tuple(sorted(p)) for p in throughout + first_half}
    spurious = sum(len(s - planted) for s in by_fold.values())
    null_tests = n_folds * (190 - len(planted))
    with capsys.disabled():
        print(f"\n  planted universe: {spurious} selections of unrelated pairs in "
              f"{null_tests} pair-folds ({spurious / null_tests:.2%})")
    assert spurious / null_tests < 0.02


def test_folds_frame_has_the_documented_columns(result):
    need = ["fold", "formation_start", "formation_end", "trading_start", "trading_end", "y", "x",
            "pvalue", "qvalue", "half_life", "beta", "is_return", "oos_return"]
    assert list(result.folds.columns) == list(FOLD_COLUMNS)
    assert set(need) <= set(result.folds.columns)
    f = result.folds
    assert (f["formation_end"] < f["trading_start"]).all()
    assert (f["qvalue"] <= 0.05).all()
    assert pd.api.types.is_timedelta64_dtype(f["half_life"])
    assert np.isfinite(f["is_return"]).all() and np.isfinite(f["oos_return"]).all()
    # trading windows tile the data after the first formation
    s = result.schedule
    assert (s["mid"].iloc[1:].to_numpy() == s["hi"].iloc[:-1].to_numpy()).all()


# ------------------------------------------------------------------ accounting

def test_accounting_identities(result):
    eq = result.equity
    cap = result.params["capital"]
    assert eq.iloc[0] == pytest.approx(cap)
    assert eq.iloc[-1] - cap == pytest.approx(result.trades["pnl"].sum(), rel=1e-9, abs=1e-6)
    rebuilt = cap + result.pair_equity.sum(axis=1)
    np.testing.assert_allclose(rebuilt.to_numpy(), eq.to_numpy(), rtol=1e-10)
    f = result.folds
    np.testing.assert_allclose(f["oos_return"], f["pnl"] / f["capital"])
    assert result.stats["fees"] == pytest.approx(result.trades["fees"].sum())
    assert result.stats["n_trades"] == len(result.trades)
    # each fold's capital is the equity at its start, split equally
    for r in result.schedule.itertuples():
        rows = f[(f["fold"] == r.fold) & f["traded"]]
        start_equity = cap if r.fold == 0 else eq.iloc[r.mid - result.schedule["mid"].iloc[0] - 1]
        assert rows["capital"].sum() == pytest.approx(start_equity, rel=1e-12)
        assert rows["weight"].to_numpy() == pytest.approx(1.0 / len(rows))
    # fold returns compound to the total return
    assert np.prod(1.0 + result.schedule["return"]) - 1.0 == pytest.approx(
        result.stats["total_return"], rel=1e-9)
    # every position is closed at its fold's last bar
    ends = result.trades.groupby("fold")["exit_time"].max()
    last = result.schedule.set_index("fold")["trading_end"]
    assert (ends <= last.loc[ends.index]).all()
    assert result.trades.loc[result.trades["reason"] == "end", "exit_time"].isin(last).all()


def test_a_pair_trades_exactly_as_backtest_run(universe, result):
    """One fold's pair through walk_forward equals backtest.run on formation + trading bars
    with the same spec fitted on the formation (its formation= the formation bars)."""
    closes, _, _ = universe
    row = result.folds[result.folds["traded"]].iloc[3]
    sched = result.schedule.set_index("fold").loc[row["fold"]]
    # x1000: the synthetic prices are off any tick grid and small, which backtest.run takes
    # for log prices; a log-log hedge and the z-score do not see the scale
    y = closes[row["y"]].iloc[sched["lo"]:sched["hi"]] * 1000
    x = closes[row["x"]].iloc[sched["lo"]:sched["hi"]] * 1000
    spec = result.params["spec"].replace(formation=int(sched["mid"] - sched["lo"]))
    with pytest.warns(backtest.ShortSampleWarning):
        want = backtest.run(y, x, spec=spec, capital=row["capital"], entry=2.0, exit=0.5, stop=4.0)
    got = result.trades[(result.trades["fold"] == row["fold"]) & (result.trades["y"] == row["y"])
                        & (result.trades["x"] == row["x"])].reset_index(drop=True)
    cols = ["entry_time", "exit_time", "side", "reason", "pnl", "fees", "beta"]
    assert len(got) >= 3
    pd.testing.assert_frame_equal(got[cols], want.trades[cols], check_exact=False, rtol=1e-9)
    np.testing.assert_allclose(got["units_y"], want.trades["units_y"] * 1000, rtol=1e-9)
    assert row["pnl"] == pytest.approx(want.equity.iloc[-1] - row["capital"], rel=1e-9)
    assert row["beta"] == pytest.approx(want.signal.fitted.beta)


def test_inverse_vol_weights(universe):
    closes, _, _ = universe
    res = walk_forward(closes.iloc[:2500], formation=FORMATION, trading=TRADING,
                       weights="inverse_vol")
    for _, g in res.folds[res.folds["traded"]].groupby("fold"):
        w = (1.0 / g["spread_vol"]) / (1.0 / g["spread_vol"]).sum()
        np.testing.assert_allclose(g["weight"], w)


def test_costs_none_is_the_backtest_default_and_an_object_plugs_in(universe):
    closes, _, _ = universe
    part = closes.iloc[:2200]
    paid = walk_forward(part, formation=FORMATION, trading=TRADING)
    assert paid.params["fee_bps"] == 10.0 and paid.stats["fees"] > 0

    class Costs:
        fee_bps = 0.0
        slippage_bps = 0.0

    free = walk_forward(part, formation=FORMATION, trading=TRADING, costs=Costs())
    assert free.stats["fees"] == 0.0
    assert free.equity.iloc[-1] > paid.equity.iloc[-1]


# ------------------------------------------------------------------ no look-ahead

def test_bars_after_a_formation_do_not_change_its_selection_or_hedges(universe, result):
    closes, _, _ = universe
    k = 5
    mid = int(result.schedule.loc[k, "mid"])
    rng = np.random.default_rng(0)
    changed = closes.copy()
    changed.iloc[mid:] *= np.exp(rng.normal(0.0, 0.05, changed.iloc[mid:].shape))
    other = walk_forward(changed, formation=FORMATION, trading=TRADING)
    cols = ["y", "x", "pvalue", "qvalue", "half_life", "beta", "is_return", "weight"]
    for j in range(k + 1):
        a = result.folds[result.folds["fold"] == j][cols].reset_index(drop=True)
        b = other.folds[other.folds["fold"] == j][cols].reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert not result.folds[result.folds["fold"] > k][cols].reset_index(drop=True).equals(
        other.folds[other.folds["fold"] > k][cols].reset_index(drop=True))


def test_bars_after_t_do_not_change_pnl_up_to_t(universe, result):
    closes, _, _ = universe
    first = int(result.schedule["mid"].iloc[0])
    t = first + 3 * 360 + 133          # inside fold 3's trading window
    changed = closes.copy()
    changed.iloc[t + 1:] *= 1.07       # every symbol jumps after bar t
    other = walk_forward(changed, formation=FORMATION, trading=TRADING)
    upto = closes.index[t]
    pd.testing.assert_series_equal(result.equity[:upto], other.equity[:upto], check_exact=True)
    assert not result.equity.equals(other.equity)


# ------------------------------------------------------------------ statistics

def test_deflated_sharpe_given_trials_by_hand():
    rng = np.random.default_rng(3)
    r = rng.normal(0.001, 0.01, 500)
    # one trial: no selection, PSR against 0
    assert deflated_sharpe_given_trials(r, 1) == pytest.approx(probabilistic_sharpe(r, 0.0))
    # N trials: SR0 = sqrt(1/(T-1)) * ((1-g) Phi^-1(1-1/N) + g Phi^-1(1-1/(N e)))
    n, t = 20, r.size
    g = 0.5772156649015329
    sr0 = math.sqrt(1.0 / (t - 1)) * ((1 - g) * norm.ppf(1 - 1 / n) + g * norm.ppf(1 - 1 / (n * math.e)))
    sr = r.mean() / r.std(ddof=1)
    d = r - r.mean()
    skew = (d ** 3).mean() / (d ** 2).mean() ** 1.5
    kurt = (d ** 4).mean() / (d ** 2).mean() ** 2
    want = norm.cdf((sr - sr0) * math.sqrt(t - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr ** 2))
    assert deflated_sharpe_given_trials(r, n) == pytest.approx(want, rel=1e-9)
    assert deflated_sharpe_given_trials(r, n) < deflated_sharpe_given_trials(r, 1)
    assert math.isnan(deflated_sharpe_given_trials(np.zeros(50), 5))


def test_stats_report_the_deflated_sharpe_of_the_oos_returns(universe, result):
    closes, _, _ = universe
    s = result.stats
    assert s["n_trials"] == 1 and 0.0 <= s["deflated_sharpe"] <= 1.0
    rets = result.equity.pct_change().dropna().to_numpy()
    assert s["deflated_sharpe"] == pytest.approx(probabilistic_sharpe(rets, 0.0), rel=1e-9)
    more = walk_forward(closes.iloc[:2200], formation=FORMATION, trading=TRADING, n_trials=50)
    fewer = walk_forward(closes.iloc[:2200], formation=FORMATION, trading=TRADING, n_trials=1)
    assert more.stats["deflated_sharpe"] < fewer.stats["deflated_sharpe"]
    assert 0.0 <= s["exposure"] <= 1.0 and s["turnover"] > 0


# ------------------------------------------------------------------ report

def test_summary_html_and_self_contained_report(result, tmp_path):
    assert isinstance(result, WalkForwardResult)
    text = result.summary()
    assert "deflated_sharpe" in text and "pairs selected most often" in text
    assert "<table>" in result._repr_html_()
    fig = result.plot()
    assert len(fig.axes) == 3
    path = result.to_html(tmp_path / "report.html")
    doc = path.read_text()
    assert doc.startswith("<!DOCTYPE html>") and "data:image/png;base64," in doc
    assert "http://" not in doc and "https://" not in doc and "<script" not in doc
    assert "<link" not in doc
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.stats = {}


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize("kwargs, match", [
    (dict(step="2h"), "step: .* shorter than trading"),
    (dict(formation="soon"), "formation: expected a duration"),
    (dict(n_trials=0), "n_trials: expected the number of configurations"),
    (dict(weights="cap"), "weights: expected one of equal, inverse_vol"),
    (dict(formation="30D"), "formation, trading: the data span"),
    (dict(spec="ols"), "spec: expected a quantlab.PairSpec"),
    (dict(select={"max_pairs": 3}), "select: expected a quantlab.research.Selection"),
    (dict(costs=object()), "costs: expected None"),
])
def test_bad_arguments_get_one_clear_line(universe, kwargs, match):
    closes, _, _ = universe
    with pytest.raises((ValueError, TypeError, ql.errors.QuantlabError), match=match):
        walk_forward(closes.iloc[:4000], **{"formation": FORMATION, "trading": TRADING, **kwargs})


def test_bad_closes():
    with pytest.raises(TypeError, match="closes: expected a DataFrame"):
        walk_forward([1, 2, 3])
    idx = pd.date_range("2025-01-01", periods=10, freq="1min", tz="UTC")
    with pytest.raises(ValueError, match="closes: prices must be positive"):
        walk_forward(pd.DataFrame({"A": -1.0, "B": 1.0}, index=idx))


def test_fold_schedule_with_a_gap_step():
    idx = pd.date_range("2025-01-01", periods=10 * 1440, freq="1min", tz="UTC")
    s = fold_schedule(idx, "2D", "1D", step="2D")
    assert (s["trading_start"] - s["formation_start"] == pd.Timedelta("2D")).all()
    assert (s["formation_start"].diff().dropna() == pd.Timedelta("2D")).all()
    assert len(s) == 4


def test_a_stationary_universe_selects_little_and_still_accounts(universe):
    """Selection rules pass through: max_pairs caps every fold."""
    closes, _, _ = universe
    res = walk_forward(closes.iloc[:3000], formation=FORMATION, trading=TRADING,
                       select=Selection(max_pairs=1))
    assert res.folds.groupby("fold").size().max() == 1
    assert res.equity.iloc[-1] - 10_000 == pytest.approx(res.trades["pnl"].sum(), abs=1e-6)


def test_screen_real_overlap_counts_the_bars_both_traded():
    """The screen's per-pair count of real (not filled) common bars, against its definition:
    the (pairs x bars) cumulative sum it replaced."""
    from quantlab.screen.data import Aligned

    rng = np.random.default_rng(5)
    k, n = 7, 400
    real = rng.random((k, n)) > 0.2
    real[:, :30] = False                      # late starts
    aligned = Aligned(pd.RangeIndex(n), tuple(f"S{s}" for s in range(k)), np.zeros((k, n)),
                      np.zeros(k, dtype=np.int64), np.full(k, n - 1), real)
    ii, jj = np.triu_indices(k, 1)
    lo = rng.integers(0, n // 2, ii.size)
    hi = lo + rng.integers(-5, n // 2, ii.size)
    hi = np.maximum(hi, lo)
    both = np.zeros((ii.size, n + 1), dtype=np.int64)
    np.cumsum(real[ii] & real[jj], axis=1, out=both[:, 1:])
    want = both[np.arange(ii.size), hi] - both[np.arange(ii.size), lo]
    np.testing.assert_array_equal(aligned.real_overlap(ii, jj, lo, hi), want)
