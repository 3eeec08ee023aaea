"""Walk-forward research: select pairs on a formation window, trade them on the next window.

    import quantlab as ql
    res = ql.research.walk_forward(closes, formation="30D", trading="7D",
                                   spec=ql.PairSpec(hedge="ols", prices="log", window=60),
                                   select=ql.research.Selection(max_pairs=10), n_trials=12)
    res.summary(); res.folds; res.equity; res.plot(); res.to_html("report.html")

``closes``: one column per symbol on a UTC ``DatetimeIndex`` (:func:`quantlab.closes`)::

    time                        BTCUSDT   ETHUSDT   SOLUSDT ...
    2025-01-01 00:00:00+00:00  94419.6   3353.1    189.3
    2025-01-01 00:01:00+00:00  94431.2   3353.9    189.4

Meaning (Gatev, Goetzmann & Rouwenhorst 2006: formation and trading periods):

* **Folds.** Fold k's formation window is ``[t0 + k*step, t0 + k*step + formation)`` and
  its trading window the ``trading`` that follows (``t0`` the first bar; ``step`` defaults
  to ``trading``, so the trading windows tile the data; the last one may be shorter).
  ``step < trading`` is refused: overlapping trading windows would trade one capital twice.
* **Formation, on its bars only.** The all-pairs Engle-Granger screen
  (:func:`quantlab.screen`, Benjamini-Hochberg q-values), then ``select``
  (:class:`~quantlab.research.Selection`), then ``spec.fit`` of each chosen pair on the
  formation bars where both legs have a close.
* **Trading.** The fitted state is carried in (:meth:`FittedPair.evaluate`): a static hedge
  stays fixed, the rolling/expanding regressions and the Kalman filter keep adapting as
  they do by definition; nothing is refitted. A trading bar where a symbol has no close
  keeps its previous close (from the formation if need be); a pair still without a price
  is not traded in that fold (``folds.traded`` False). The per-bar state machine, fills,
  costs and accounting are :func:`quantlab.backtest.run`'s (its engine functions): the
  decision at bar t's close fills at bar t+1's price. **A position still open at a fold's
  last bar is closed at that bar's price** (reason ``end``), so every fold starts flat.
* **Portfolio.** The equity at a fold's first trading bar is split across the pairs traded
  in that fold: ``weights="equal"`` or ``"inverse_vol"`` (inversely to the formation
  spread's standard deviation, the screen's ``spread_vol``); each pair trades its share as
  the capital and per-trade notional of ``backtest.run``. Portfolio equity is the sum of
  the pairs' accounts (the whole equity when no pair was selected): final equity minus
  ``capital`` is the sum of all trade P&Ls, net of fees and slippage.
* **Statistics.** ``backtest.metrics.compute_stats`` of the portfolio equity over the
  trading bars (exposure: share of bars with any position; turnover: traded notional over
  the initial capital), and the deflated Sharpe ratio of its per-bar returns given
  ``n_trials`` configurations tried (:func:`deflated_sharpe_given_trials`).

Folds run as tasks (serially, on a ``LocalCluster(workers)``, on a scheduler address or a
given client: :mod:`quantlab.screen.executors`); each task screens, selects, fits and
evaluates one fold. Capital compounds from fold to fold, so the accounting then runs in
order in the caller's process. Results are identical whatever runs them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from quantlab.errors import InsufficientDataError
from quantlab.research.selection import Selection, _timedelta
from quantlab.research.sharpe import expected_max_from_variance, moments, psr_from_moments

WEIGHTS = ("equal", "inverse_vol")
FOLD_COLUMNS = (
    "fold", "formation_start", "formation_end", "trading_start", "trading_end", "y", "x",
    "pvalue", "qvalue", "half_life", "crossings", "beta", "hedge_prices", "spread_vol",
    "weight", "capital", "traded", "n_trades", "pnl", "fees", "is_return", "oos_return",
)


def default_spec() -> Any:
    """``PairSpec(hedge="ols", prices="log", window=60)``: the screen's own model (a static
    log-log OLS hedge fitted on the formation window), z-scored over the last 60 bars."""
    from quantlab.analytics.pair import PairSpec

    return PairSpec(hedge="ols", prices="log", window=60)


# --------------------------------------------------------------------------- arguments

def _check_closes(closes: Any) -> pd.DataFrame:
    if not isinstance(closes, pd.DataFrame):
        raise TypeError("closes: expected a DataFrame of closing prices, one column per "
                        f"symbol (quantlab.closes(store, symbols, '1m')), got {type(closes).__name__}")
    if not isinstance(closes.index, pd.DatetimeIndex):
        raise TypeError("closes: the index must be a DatetimeIndex of bar times")
    if closes.shape[1] < 2:
        raise ValueError(f"closes: {closes.shape[1]} symbol(s); a pair needs at least 2 columns")
    if not closes.index.is_monotonic_increasing or not closes.index.is_unique:
        raise ValueError("closes: the index must be strictly increasing (sort it and drop "
                         "duplicate timestamps)")
    try:
        values = closes.to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise TypeError("closes: expected numeric prices") from None
    bad = ~np.isnan(values) & ~(np.isfinite(values) & (values > 0))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"closes: prices must be positive and finite (NaN where a symbol has "
                         f"no bar); {closes.columns[c]} at {closes.index[r]} is {values[r, c]!r}")
    return closes.astype(float)


def fold_schedule(index: pd.DatetimeIndex, formation: Any = "30D", trading: Any = "7D",
                  step: Any = None) -> pd.DataFrame:
    """The folds over ``index``: one row per fold with the bar positions ``lo`` (first
    formation bar), ``mid`` (first trading bar), ``hi`` (one past the last trading bar) and
    the times ``formation_start, formation_end, trading_start, trading_end`` (bars, inclusive).
    A fold needs at least two trading bars (a decision and a fill)."""
    form = _timedelta(formation, "formation")
    trade = _timedelta(trading, "trading")
    st = _timedelta(step, "step") if step is not None else trade
    if form is None or trade is None or st is None:  # st is None only when trading is
        raise ValueError("formation, trading: give durations such as '30D' and '7D'")
    if st < trade:
        raise ValueError(f"step: {step!r} is shorter than trading={trading!r}; overlapping "
                         "trading windows would trade the same capital twice (step >= trading)")
    rows = []
    t0 = index[0]
    k = 0
    while True:
        f0 = t0 + k * st
        fe = f0 + form
        lo, mid, hi = (int(index.searchsorted(t)) for t in (f0, fe, fe + trade))
        if hi - mid < 2 or mid - lo < 3:
            break
        rows.append({"fold": k, "lo": lo, "mid": mid, "hi": hi,
                     "formation_start": index[lo], "formation_end": index[mid - 1],
                     "trading_start": index[mid], "trading_end": index[hi - 1]})
        k += 1
    if not rows:
        span = index[-1] - index[0]
        raise InsufficientDataError(
            f"formation, trading: the data span {span} holds no fold of formation {form} "
            f"followed by at least two trading bars; shorten formation= or load more bars")
    return pd.DataFrame(rows)


def resolve_costs(costs: Any) -> Any:
    """The :class:`~quantlab.backtest.Costs` a walk-forward charges (one definition of a cost,
    the backtest's): ``None`` -> ``Costs()`` (what :func:`quantlab.backtest.run` charges by
    default); a ``Costs`` as it is; an object or mapping with ``fee_bps`` and
    ``slippage_bps`` -> ``Costs.flat(fee_bps, slippage_bps)``."""
    from quantlab.backtest.costs import Costs

    if costs is None:
        return Costs()
    if isinstance(costs, Costs):
        return costs
    get = costs.get if isinstance(costs, dict) else (lambda k, d=None: getattr(costs, k, d))
    fee, slip = get("fee_bps", None), get("slippage_bps", None)
    if fee is None or slip is None:
        raise TypeError(f"costs: expected None (the backtest's defaults), a "
                        f"quantlab.backtest.Costs or costs with fee_bps and slippage_bps, "
                        f"got {type(costs).__name__}")
    return Costs.flat(float(fee), float(slip))


def _pair_plan(costs: Any, y_name: str, x_name: str, index: pd.Index, yv: np.ndarray,
               xv: np.ndarray, ppy: float, amount: float) -> Any:
    """The engine's cost plan for one pair on these bars: fee per leg's market, borrow on a
    short spot leg, funding on perpetual legs (from ``costs.funding``, keyed by symbol)."""
    from quantlab.backtest import engine

    y = pd.Series(yv, index=index, name=y_name)
    x = pd.Series(xv, index=index, name=x_name)
    if costs.funding:  # only this pair's legs: funding for other symbols is not an error here
        from dataclasses import replace

        costs = replace(costs, funding={k: v for k, v in costs.funding.items()
                                        if k in (y_name, x_name)})
    plan, _ = engine._plan(costs, y, x, None, index, yv, xv, ppy, amount, amount)
    return plan


# --------------------------------------------------------------------------- one fold

def _fold_task(closes: pd.DataFrame, lo: int, mid: int, hi: int, spec: Any, select: Selection,
               rules: tuple, costs: Any, weights: str, lag: int,
               min_overlap: int) -> dict:
    """Screen, select and fit on bars [lo, mid); the fitted signal on [mid, hi).

    Capital-free (weights, not amounts), so it can run anywhere; the caller does the
    accounting. Returns ``{"pairs": [...], "selection": counts, "notes": [...]}``.

    Runs with one BLAS thread wherever it runs: Dask's workers already do, and a
    multi-threaded ``dx @ dx`` of a long formation window sums in another order (the fitted
    hedges then differed in their last bits between a serial run and workers).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _fold_work(closes, lo, mid, hi, spec, select, rules, costs, weights, lag,
                          min_overlap)


def _fold_work(closes: pd.DataFrame, lo: int, mid: int, hi: int, spec: Any, select: Selection,
               rules: tuple, costs: Any, weights: str, lag: int,
               min_overlap: int) -> dict:
    from quantlab.backtest import engine
    from quantlab.screen import screen
    from quantlab.screen.data import ScreenWarning

    form = closes.iloc[lo:mid]
    trade = closes.iloc[mid:hi]
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ScreenWarning)
        try:
            table = screen(form, lag=lag, min_overlap=min_overlap, progress=False)
        except InsufficientDataError as exc:
            return {"pairs": [], "selection": {"candidates": 0, "selected": 0}, "notes": [str(exc)]}
        chosen = select.apply(table, form)
    notes += sorted({str(w.message) for w in caught if issubclass(w.category, ScreenWarning)})
    last_form = form.ffill().iloc[-1]
    pairs = []
    for row in chosen.itertuples(index=False):
        y, x = row.y, row.x
        both = form[[y, x]].dropna()
        rec = dict(y=y, x=x, pvalue=float(row.pvalue_pair), qvalue=float(row.qvalue),
                   half_life=row.half_life_time, crossings=int(row.crossings),
                   spread_vol=float(row.spread_vol), traded=False, beta=math.nan,
                   is_return=math.nan)
        tp = trade[[y, x]].copy()
        tp.iloc[0] = tp.iloc[0].fillna(last_form[[y, x]])
        tp = tp.ffill()
        if tp.isna().any().any() or len(both) < 3:
            notes.append(f"{y}/{x}: no price on some trading bar; not traded")
            pairs.append(rec)
            continue
        try:
            fitted = spec.fit(both[y], both[x])
            beta_u, z, sig = engine.signal_inputs(tp[y], tp[x], fitted)
        except (ValueError, InsufficientDataError) as exc:
            notes.append(f"{y}/{x}: the spec could not be fitted ({exc}); not traded")
            pairs.append(rec)
            continue
        rec["beta"] = float(fitted.beta) if spec.is_static else float(sig.frame["beta"].iloc[0])
        rec["is_return"] = _in_sample_return(spec, fitted, both[y], both[x], rules, costs)
        rec.update(traded=True, yv=tp[y].to_numpy(dtype=float), xv=tp[x].to_numpy(dtype=float),
                   z=z, beta_units=beta_u)
        pairs.append(rec)
    traded = [p for p in pairs if p["traded"]]
    if traded:
        if weights == "equal":
            w = np.full(len(traded), 1.0 / len(traded))
        else:
            inv = np.array([1.0 / p["spread_vol"] if p["spread_vol"] > 0 else 0.0 for p in traded])
            w = inv / inv.sum() if inv.sum() > 0 else np.full(len(traded), 1.0 / len(traded))
        for p, wi in zip(traded, w, strict=True):
            p["weight"] = float(wi)
    for p in pairs:
        p.setdefault("weight", 0.0)
    return {"pairs": pairs, "selection": chosen.attrs.get("selection", {}), "notes": notes}


def _in_sample_return(spec: Any, fitted: Any, y: pd.Series, x: pd.Series, rules: tuple,
                      costs: Any) -> float:
    """Return on capital of the same rules traded on the formation bars themselves, with the
    hedge fitted on them (a static hedge: that fit, z-scored from the first bar; an adaptive
    one: the spec evaluated over the formation, its warm-up included). In sample by design:
    compare it with ``oos_return``."""
    import dataclasses

    from quantlab.backtest import engine

    try:
        if spec.is_static:
            source: Any = dataclasses.replace(fitted, spread_tail=())
        else:
            source = spec
        beta_u, z, _ = engine.signal_inputs(y, x, source)
    except (ValueError, InsufficientDataError):
        return math.nan
    if np.isnan(z).all():
        return math.nan
    yv, xv = y.to_numpy(dtype=float), x.to_numpy(dtype=float)
    plan = _pair_plan(costs, str(y.name), str(x.name), y.index, yv, xv,
                      engine._ppy(y.index, None), 1.0)
    raw = engine._simulate(yv, xv, z, beta_u, rules, plan)
    return float(raw[3][-1] - 1.0)


# --------------------------------------------------------------------------- public

def walk_forward(
    closes: pd.DataFrame,
    formation: Any = "30D",
    trading: Any = "7D",
    step: Any = None,
    spec: Any = None,
    entry: float = 2.0,
    exit: float = 0.5,
    stop: float | None = 4.0,
    select: Selection | None = None,
    costs: Any = None,
    capital: float = 10_000.0,
    n_trials: int = 1,
    *,
    weights: str = "equal",
    max_holding: Any = None,
    lag: int | None = None,
    min_overlap: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    client: Any = None,
    connect_timeout: float | None = None,
    progress: bool | None = None,
    on_fold: Callable[[int, int], None] | None = None,
) -> Any:
    """Walk-forward selection and trading of a portfolio of pairs (see the module docstring).

    Parameters
    ----------
    closes : DataFrame of closes, one column per symbol, UTC ``DatetimeIndex`` (NaN where a
        symbol has no bar), e.g. ``quantlab.closes(store, symbols, "1m")``.
    formation, trading, step : durations ("30D", "7D", "12h"); ``step`` defaults to ``trading``.
    spec : the :class:`~quantlab.PairSpec` fitted per pair on each formation window
        (default :func:`default_spec`: static log-log OLS, z over 60 bars).
    entry, exit, stop, max_holding : the rules of :func:`quantlab.backtest.run`.
    select : :class:`~quantlab.research.Selection` (default: its permissive defaults).
    costs : None (the backtest's fee and slippage defaults: 10 bps taker fee per fill) or an
        object with ``fee_bps`` and ``slippage_bps``.
    capital : starting equity; ``weights``: "equal" or "inverse_vol" split per fold.
    n_trials : how many configurations you tried before this one (all of them, this one
        included): the deflated Sharpe of the out-of-sample returns accounts for them.
    lag, min_overlap : the screen's ADF lag and fewest common bars (its defaults).
    workers / scheduler / client : run the folds on a LocalCluster of ``workers``
        single-threaded worker processes (a script needs ``if __name__ == "__main__":``),
        a scheduler address or a dask Client (default serial); identical results.
    progress : a tqdm bar over the folds (None: on a terminal or in a notebook).
    on_fold : optional ``on_fold(done, total)``, called in the caller's thread with
        ``done = 0`` once the folds are known, then after each fold completes (on Dask, in
        the order they finish); it replaces the tqdm bar. An exception it raises stops the
        run and propagates (folds not yet run are not started; on Dask the pending tasks
        are cancelled): that is how a caller cancels.

    Returns
    -------
    :class:`~quantlab.research.wf_result.WalkForwardResult`
    """
    from quantlab.analytics.pair import PairSpec
    from quantlab.backtest import engine
    from quantlab.backtest import metrics as _m
    from quantlab.research.wf_result import WalkForwardResult
    from quantlab.screen.api import DEFAULT_MIN_OVERLAP
    from quantlab.screen.core import DEFAULT_LAG
    from quantlab.screen.executors import DEFAULT_CONNECT_TIMEOUT, executor, run_blocks

    closes = _check_closes(closes)
    spec = default_spec() if spec is None else spec
    if not isinstance(spec, PairSpec):
        raise TypeError(f"spec: expected a quantlab.PairSpec, got {type(spec).__name__}")
    select = Selection() if select is None else select
    if not isinstance(select, Selection):
        raise TypeError(f"select: expected a quantlab.research.Selection, got {type(select).__name__}")
    if weights not in WEIGHTS:
        raise ValueError(f"weights: expected one of {', '.join(WEIGHTS)}, got {weights!r}")
    if isinstance(n_trials, bool) or not isinstance(n_trials, int | np.integer) or n_trials < 1:
        raise ValueError(f"n_trials: expected the number of configurations tried (an integer "
                         f">= 1), got {n_trials!r}")
    max_holding = engine._holding_bars(max_holding, closes.index)
    rules = engine._check_rules(entry, exit, stop, max_holding)
    costs = resolve_costs(costs)
    cap, _ = engine._check_capital(capital, None)
    ppy = engine._ppy(closes.index, None)
    schedule = fold_schedule(closes.index, formation, trading, step)
    lag = DEFAULT_LAG if lag is None else lag
    min_overlap = DEFAULT_MIN_OVERLAP if min_overlap is None else min_overlap
    args = [(int(r.lo), int(r.mid), int(r.hi), spec, select, rules, costs,
             weights, lag, min_overlap) for r in schedule.itertuples()]
    if on_fold is not None and not callable(on_fold):
        raise TypeError(f"on_fold: expected a function on_fold(done, total) or None, got "
                        f"{type(on_fold).__name__}")
    # workers=N: processes, not the screen's threads. A fold is mostly pandas, which holds
    # the GIL (18 % of its CPU is in the compiled kernels at 30 symbols x 3-day formations),
    # and _fold_task pins BLAS to one thread for the whole process.
    with executor(client, workers, scheduler,
                  connect_timeout or DEFAULT_CONNECT_TIMEOUT, threads=False) as c:
        if on_fold is None:
            outputs = run_blocks(_fold_task, closes, args, client=c, progress=progress,
                                 desc="folds")
        else:
            outputs = _run_reporting(closes, args, c, on_fold)

    return WalkForwardResult.build(
        _account(closes.index, schedule, outputs, rules, costs, cap, ppy),
        schedule=schedule, outputs=outputs, ppy=_m.periods_per_year(closes.index),
        capital=cap, n_trials=int(n_trials),
        params=dict(formation=str(formation), trading=str(trading),
                    step=str(step if step is not None else trading), spec=spec, entry=rules[0],
                    exit=rules[1], stop=stop, max_holding=max_holding, fee_bps=costs.fee_bps("spot"),
                    slippage_bps=costs.slippage_bps, costs=costs, capital=cap, weights=weights, n_trials=int(n_trials),
                    selection=select, lag=lag, min_overlap=min_overlap,
                    symbols=[str(s) for s in closes.columns]))


def _run_reporting(closes: pd.DataFrame, args: list[tuple], client: Any,
                   on_fold: Callable[[int, int], None]) -> list[dict]:
    """The fold tasks, serially or on ``client``, calling ``on_fold(done, total)`` in this
    thread before the first and after each one completes; outputs in fold order."""
    total = len(args)
    on_fold(0, total)
    if client is None:
        outputs = []
        for a in args:
            outputs.append(_fold_task(closes, *a))
            on_fold(len(outputs), total)
        return outputs
    from distributed import as_completed

    data = client.scatter(closes, broadcast=True, hash=False)
    futures = [client.submit(_fold_task, data, *a, pure=False) for a in args]
    try:
        for done, _ in enumerate(as_completed(futures), start=1):
            on_fold(done, total)
        return client.gather(futures)
    finally:
        client.cancel(futures + [data])


def _account(index: pd.DatetimeIndex, schedule: pd.DataFrame, outputs: Sequence[dict],
             rules: tuple, costs: Any, capital: float, ppy: float) -> dict:
    """The capital-dependent part, fold after fold: each traded pair runs the backtest's
    state machine and fill/accounting kernels on its share of the fold's starting equity."""
    from quantlab.backtest import engine

    eq_parts, sig_parts, traded_parts, fee_parts, idx_parts = [], [], [], [], []
    pair_inc: dict[str, list[tuple[int, np.ndarray]]] = {}
    trade_frames, fold_rows = [], []
    equity_now = capital
    pos = 0
    for f, out in zip(schedule.itertuples(), outputs, strict=True):
        n = int(f.hi - f.mid)
        idx = index[f.mid:f.hi]
        fold_eq = np.zeros(n)
        any_pos = np.zeros(n, dtype=np.int8)
        traded = np.zeros(n)
        fees_bar = np.zeros(n)
        live = [i for i, p in enumerate(out["pairs"]) if p["traded"]]
        amounts = {i: equity_now * out["pairs"][i]["weight"] for i in live}
        if live:  # the last pair takes the rounding remainder: the shares sum to the equity
            amounts[live[-1]] = equity_now - sum(amounts[i] for i in live[:-1])
        for i, p in enumerate(out["pairs"]):
            row = {k: p[k] for k in ("y", "x", "pvalue", "qvalue", "half_life", "crossings",
                                     "beta", "spread_vol", "weight", "traded", "is_return")}
            row.update(fold=int(f.fold), formation_start=f.formation_start,
                       formation_end=f.formation_end, trading_start=f.trading_start,
                       trading_end=f.trading_end, capital=0.0, n_trades=0, pnl=0.0, fees=0.0,
                       oos_return=math.nan)
            fold_rows.append(row)
            if not p["traded"]:
                continue
            amount = amounts[i]
            plan = _pair_plan(costs, p["y"], p["x"], idx, p["yv"], p["xv"], ppy, amount)
            raw = engine._simulate(p["yv"], p["xv"], p["z"], p["beta_units"], rules, plan)
            signal, _uy, _ux, eq, fees, trd, tr, _per_bar = raw
            fold_eq += eq
            any_pos |= (signal != 0).astype(np.int8)
            traded += trd
            fees_bar += fees
            label = f"{p['y']}/{p['x']}"
            inc = np.diff(eq - amount, prepend=0.0)
            pair_inc.setdefault(label, []).append((pos, inc))
            tf = engine._trades_frame(tr, idx, p["z"])
            tf.insert(0, "x", p["x"])
            tf.insert(0, "y", p["y"])
            tf.insert(0, "fold", int(f.fold))
            trade_frames.append(tf)
            pnl = float(eq[-1] - amount)
            row.update(capital=amount, n_trades=len(tf), pnl=pnl, fees=float(fees.sum()),
                       oos_return=pnl / amount)
        if not live:
            fold_eq[:] = equity_now
        eq_parts.append(fold_eq)
        sig_parts.append(any_pos)
        traded_parts.append(traded)
        fee_parts.append(fees_bar)
        idx_parts.append(idx)
        equity_now = float(fold_eq[-1])
        pos += n
    full_index = idx_parts[0].append(idx_parts[1:]) if len(idx_parts) > 1 else idx_parts[0]
    full_index.name = "time"
    total = pos
    pair_equity = {}
    for label, parts in pair_inc.items():
        inc = np.zeros(total)
        for start, v in parts:
            inc[start:start + v.size] = v
        pair_equity[label] = np.cumsum(inc)
    from quantlab.backtest.engine import _COL  # the trade table's columns

    trades = (pd.concat(trade_frames, ignore_index=True) if trade_frames
              else engine._trades_frame(np.empty((0, len(_COL))), full_index, np.empty(0))
              .assign(fold=[], y=[], x=[]))
    folds = pd.DataFrame(fold_rows, columns=list(FOLD_COLUMNS)) if fold_rows else pd.DataFrame(
        columns=list(FOLD_COLUMNS))
    return dict(
        equity=pd.Series(np.concatenate(eq_parts), index=full_index, name="equity"),
        pair_equity=pd.DataFrame(pair_equity, index=full_index),
        signal=np.concatenate(sig_parts), traded=np.concatenate(traded_parts),
        fees=np.concatenate(fee_parts), trades=trades, folds=folds)


def deflated_sharpe_given_trials(returns: Any, n_trials: int) -> float:
    """Deflated Sharpe of per-period ``returns`` when only the NUMBER of configurations
    tried is known: the trials' Sharpe variance V is taken as the sampling variance of a
    per-period Sharpe estimated over the same T periods with no skill, ``1 / (T - 1)``
    (Bailey & López de Prado 2014, eq. for SR0 with independent unskilled trials), so
    ``SR0 = expected_max_from_variance(N, 1 / (T - 1))``; ``N = 1``: PSR(0). NaN when the
    returns are constant (nothing traded)."""
    try:
        sharpe, n, skew, kurt = moments(returns)
    except InsufficientDataError:
        return math.nan
    sr0 = expected_max_from_variance(int(n_trials), 1.0 / (n - 1))
    try:
        return psr_from_moments(sharpe, n, skew, kurt, sr0)
    except ValueError:
        return math.nan
