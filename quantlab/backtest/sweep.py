"""Parameter sweeps: one tidy row of statistics per combination, ready for a heatmap.

The hedge ratio and z-score (``PairSpec.evaluate``) are computed once per ``window``; each combination of thresholds then runs only the
per-bar state machine and the accounting kernel. So a sweep of E entries x X exits x S
stops x W windows costs W hedge estimations, not E*X*S*W.
"""

from __future__ import annotations

import itertools
import numbers
import warnings
from collections.abc import Iterable
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from quantlab.research.trials import TrialRecorder, trial_labels

from . import engine as _e
from .metrics import STAT_KEYS


def _as_list(name: str, v: Any) -> list[Any]:
    if v is None or isinstance(v, numbers.Number | str | pd.Timedelta):
        return [v]
    if isinstance(v, Iterable):
        out = list(v)
        if not out:
            raise ValueError(f"{name} must list at least one value")
        return out
    raise TypeError(f"{name} must be a number or a list of numbers, got {v!r}")


def sweep(y: pd.Series, x: pd.Series, entry: Any = (1.5, 2.0, 2.5),
          exit: Any = (0.0, 0.5, 1.0), window: Any = (60,), stop: Any = (4.0,), *,
          max_holding: Any = (None,), spec: Any = None, hedge: str | float = "rolling_ols",
          z_window: int | None = None, costs: Any = None, funding: Any = None,
          legs: Any = None, fee_bps: float | None = None, slippage_bps: float | None = None,
          capital: float = 10_000.0, notional: float | None = None, delta: float | None = None,
          obs_var: float | None = None, risk_free_annual: float = 0.0,
          periods_per_year: float | None = None, progress: bool = True) -> pd.DataFrame:
    """Statistics of :func:`quantlab.backtest.run` for every combination of parameters.

    ``entry``, ``exit``, ``window``, ``stop`` and ``max_holding`` each take one value or a
    list; the other arguments are those of ``run`` and are shared by every combination
    (``costs=``, a :class:`quantlab.backtest.Costs`, with ``funding`` and ``legs``: one
    cost model for the whole grid).
    With ``spec`` (a ``quantlab.PairSpec``), each window is ``spec.replace(window=w)``; every
    hedge of the spec vocabulary is swept as itself (no fallback to another method).
    Combinations that break ``0 <= exit < entry < stop`` are skipped with one warning.
    ``progress=False`` hides the tqdm progress bar.

    Returns one row per combination::

        window  entry  exit  stop  max_holding  total_return  cagr  sharpe ... final_equity
            60    1.5   0.0   4.0         None       0.0123   ...

    e.g. ``df.pivot_table(index="entry", columns="exit", values="sharpe")`` for a heatmap.
    Each row equals ``run(...).stats`` with the same parameters.

    ``df.attrs["overfitting"]`` (:class:`quantlab.research.SweepOverfitting`) says how much
    of the best row the search explains: the deflated Sharpe of the best configuration given
    all rows as trials, and the probability of backtest overfitting of the grid (CSCV).
    """
    index, yv, xv = _e._check_pair(y, x)
    _e._refuse_log_prices(yv, xv)
    costs_v = _e._costs_arg(costs, fee_bps, slippage_bps, funding)
    windows = _as_list("window", window)
    base = _e._spec_arg(spec, hedge, windows[0], z_window, delta, obs_var)
    if isinstance(base, float):
        specs = [base] * len(windows)
        zws = [_e._fixed_z_window(base, w, z_window) for w in windows]
    else:
        specs = [base if spec is None and w == windows[0] else base.replace(window=w)
                 for w in windows]
        zws = [None] * len(windows)
    for sp, zw in zip(specs, zws, strict=True):
        _e._check_length(len(yv), [sp], index, zw)
    ppy = _e._ppy(index, periods_per_year)
    rf_bar = _e._rf_bar(risk_free_annual, ppy)
    plan, _ = _e._plan(costs_v, y, x, legs, index, yv, xv, ppy, capital, notional)

    combos = []
    skipped = 0
    for en, ex, st, mh in itertools.product(_as_list("entry", entry), _as_list("exit", exit),
                                            _as_list("stop", stop),
                                            _as_list("max_holding", max_holding)):
        mh = _e._holding_bars(mh, index)
        try:
            rules = _e._check_rules(en, ex, st, mh)
        except ValueError:
            skipped += 1
            continue
        combos.append(((en, ex, st, mh), rules))
    if not combos:
        raise ValueError("no combination satisfies 0 <= exit < entry < stop; check the "
                         "entry, exit and stop lists")
    if skipped:
        warnings.warn(f"skipped {skipped} combination(s) that break 0 <= exit < entry < stop",
                      UserWarning, stacklevel=2)

    rows: list[dict[str, Any]] = []
    trials = TrialRecorder(risk_free=rf_bar)  # deflated Sharpe and PBO of the grid
    with tqdm(total=len(windows) * len(combos), disable=not progress,
              desc="backtest sweep", unit="run") as bar:
        for w, sp, zw in zip(windows, specs, zws, strict=True):
            if isinstance(sp, float):
                assert zw is not None  # _fixed_z_window gives a fixed hedge its z-score window
                beta, z, _ = _e._fixed_inputs(y, x, sp, zw)
            else:
                beta, z, _ = _e.signal_inputs(y, x, sp)
            for (en, ex, st, mh), rules in combos:
                raw = _e._simulate(yv, xv, z, beta, rules, plan)
                stats = _e._stats(raw, ppy, plan.capital, rf_bar)
                trials.add(raw[3])
                rows.append({"window": w, "entry": en, "exit": ex, "stop": st,
                             "max_holding": mh, **stats})
                bar.update(1)
    columns = ["window", "entry", "exit", "stop", "max_holding", *STAT_KEYS]
    frame = pd.DataFrame(rows, columns=columns)
    frame.attrs["overfitting"] = trials.report(trial_labels(frame))
    return frame
