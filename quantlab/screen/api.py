"""``screen()``: all-pairs Engle-Granger screen of a universe, ranked with FDR control."""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from quantlab.aligned import DEFAULT_MAX_FILL
from quantlab.errors import InsufficientDataError
from quantlab.screen.core import DEFAULT_LAG, HAVE_NUMBA, eg_block
from quantlab.screen.data import (
    Aligned,
    ScreenWarning,
    align,
    closes_from_frame,
    closes_from_store,
)
from quantlab.screen.executors import DEFAULT_CONNECT_TIMEOUT, executor, run_blocks
from quantlab.screen.fdr import bh_qvalues

log = logging.getLogger(__name__)

DEFAULT_MIN_OVERLAP = 500
DEFAULT_ALPHA = 0.05
# Bars x pairs per block for the block-numpy kernel (no numba): ~5 MB per temporary array.
# Smaller blocks stay in cache but cost a Dask task each (~4 ms of scheduling on 2 shared
# cores); at 10k bars 64 pairs a block ran 1.9 s serial / 1.5 s on LocalCluster(2), 16 a
# block 1.9 s / 2.2 s, 256 a block 2.6 s / 1.6 s.
_BLOCK_CELLS = 640_000
# The fused kernel keeps no temporaries, so its blocks only trade scheduling hops against
# load balance: ~4M bar-cells (400 pairs at 10k bars, ~50 ms of CPU) and at least ~16 blocks
# when there are enough pairs. On a loaded 2-core machine, 4,950 pairs x 10k bars in blocks
# of 64 ran 0.53-0.98x serial on LocalCluster(2), blocks of 320: 0.73-1.13x, of 640: 0.80-1.40x.
_BLOCK_CELLS_FUSED = 4_000_000

COLUMNS = (
    "rank", "y", "x", "stat", "pvalue", "stat_rev", "pvalue_rev", "pvalue_pair", "qvalue",
    "selected", "hedge_ratio", "hedge_prices", "intercept", "half_life", "ret_corr", "spread_vol", "n_obs",
    "start", "end",
)
OOS_COLUMNS = (
    "oos_stat", "oos_pvalue", "oos_qvalue", "oos_confirmed", "oos_hedge_ratio",
    "oos_half_life", "oos_n_obs",
)


def screen(
    data: Any,
    symbols: str | Sequence[str] | None = None,
    timeframe: str = "1m",
    start: Any = None,
    end: Any = None,
    *,
    min_overlap: int = DEFAULT_MIN_OVERLAP,
    lag: int = DEFAULT_LAG,
    alpha: float = DEFAULT_ALPHA,
    oos: float | Any = None,
    client: Any = None,
    workers: int | None = None,
    scheduler: str | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    block_size: int | None = None,
    progress: bool | None = None,
    max_fill: int = DEFAULT_MAX_FILL,
) -> pd.DataFrame:
    """Engle-Granger test of every pair of a universe, ranked, with Benjamini-Hochberg q-values.

    Parameters
    ----------
    data : DataFrame | TickStore | path
        Closing prices (index: bar times, one column per symbol, NaN where a symbol has no
        bar), or a store (``store.bars(symbol, timeframe, start, end)["close"]``).
    symbols : the symbols to screen (default: every column / every symbol of the store).
    timeframe, start, end : bar size and time range (``start``/``end`` also slice a frame).
    min_overlap : pairs with fewer common bars are reported untested (NaN), with a warning.
    lag : the FIXED number of lagged differences in the ADF step (see
        :mod:`quantlab.screen.core`; statsmodels ``coint(maxlag=lag, autolag=None)``).
    alpha : false-discovery rate for ``selected`` (``qvalue <= alpha``).
    oos : optional out-of-sample split: a fraction in (0, 1) (the last ``oos`` of the bars)
        or a timestamp; the screen runs on the bars before it and the selected pairs are
        re-tested, in the same direction, on the bars from it on (``oos_*`` columns).
    client / workers / scheduler : default serial. ``workers=N``: N threads of this
        process; the kernel is compiled numba that releases the GIL, so the threads run
        blocks in parallel on the caller's matrix with nothing to copy or start, and a
        script needs no ``if __name__ == "__main__":`` guard. At 100 symbols x 10k bars
        the serial part is ~3 % of the CPU: 2 threads ran 1.7x faster than serial on 2
        cores (1.9x from CPU time), a LocalCluster of 2 processes 1.35x (it pickles the
        matrix to each worker; ``benchmarks/bench_screen.py``). To use
        worker processes or other machines, pass ``client=`` (a ``distributed.Client``,
        e.g. of ``LocalCluster(n_workers=N, threads_per_worker=1)``) or ``scheduler=``
        (``tcp://HOST:PORT`` of a running ``dask scheduler``). Results are identical
        whatever runs them.
    connect_timeout : seconds to reach a scheduler (and find a worker) before failing.
    block_size : pairs per task (default: about a million bar-cells per block).
    progress : show a progress bar (None: only on a terminal or in a notebook).
    max_fill : a bar where a symbol did not trade keeps its previous close for at most this
        many bars (:func:`quantlab.closes`), then the symbol has no value there; a pair is
        tested on its longest stretch where both have one.

    Returns
    -------
    DataFrame, one row per pair, best first (``rank`` 1..P)::

        y, x          the symbols, oriented so that y regressed on x is the better direction
        stat, pvalue  Engle-Granger statistic and MacKinnon p-value of y on x
        stat_rev, pvalue_rev   the same for x on y
        pvalue_pair   min(1, 2 * min(pvalue, pvalue_rev)): a valid p-value for the pair
                      although the better of two directions was picked (Bonferroni)
        qvalue        Benjamini-Hochberg q-value of pvalue_pair over all tested pairs
        selected      qvalue <= alpha
        hedge_ratio, intercept   OLS  log y = intercept + hedge_ratio * log x + spread
        hedge_prices  "log": the prices hedge_ratio is on (a log-log slope; the package's
                      raw-price convention is PairSpec(prices="raw"), so trade this ratio
                      with PairSpec(prices="log"))
        half_life     of the spread, in bars;  ret_corr: correlation of 1-bar log returns
        spread_vol    standard deviation of the spread (log units)
        n_obs         the bars of that stretch in which both symbols traded (filled bars
                      are not counted); start, end: the stretch the pair was tested on

    Without FDR control, screening 5,000 pairs at 5% flags ~250 unrelated pairs by chance;
    ``selected`` keeps the expected share of false discoveries among selected pairs <= alpha.
    ``result.attrs`` records the parameters (lag, alpha, min_overlap, timeframe, n_tests...).
    """
    lag = _int_arg(lag, "lag", 0)
    min_overlap = _int_arg(min_overlap, "min_overlap", max(20, 2 * lag + 10))
    if not (isinstance(alpha, (int, float)) and 0.0 < float(alpha) < 1.0):
        raise ValueError(f"alpha: expected a false-discovery rate in (0, 1), got {alpha!r}")
    if block_size is not None:
        block_size = _int_arg(block_size, "block_size", 1)
    if isinstance(data, pd.DataFrame):
        closes = closes_from_frame(data, symbols, start, end)
        aligned = align(closes, None, max_fill)  # a user's rows: fill by rows
    else:
        closes = closes_from_store(data, symbols, timeframe, start, end)
        aligned = align(closes, timeframe, max_fill)
    n = aligned.logp.shape[1]
    split = _split_column(oos, aligned.index, n)
    with executor(client, workers, scheduler, connect_timeout, threads=True) as c:
        table = _screen_part(aligned, 0, split, lag, min_overlap, block_size, c, progress, "screen")
        table["qvalue"] = bh_qvalues(table["pvalue_pair"].to_numpy())
        table["selected"] = (table["qvalue"] <= alpha).fillna(False).astype(bool)
        if split < n:
            table = _out_of_sample(table, aligned, split, n, lag, min_overlap, alpha,
                                   block_size, c, progress)
    table = _rank(table)
    table.attrs.update({
        "lag": lag, "alpha": float(alpha), "min_overlap": min_overlap, "timeframe": timeframe,
        "symbols": list(aligned.symbols), "n_pairs": len(table),
        "n_tests": int(table["pvalue_pair"].notna().sum()),
        "n_selected": int(table["selected"].sum()),
        "split": None if split >= n else aligned.index[split],
    })
    return table


def _int_arg(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def _split_column(oos: Any, index: pd.Index, n: int) -> int:
    """Column where the out-of-sample part starts (``n``: no split)."""
    if oos is None:
        return n
    if isinstance(oos, float) and not isinstance(oos, bool):
        if not 0.0 < oos < 1.0:
            raise ValueError(f"oos: a fraction must lie in (0, 1), got {oos!r}")
        return n - int(round(n * oos))
    try:
        ts = pd.Timestamp(oos)
        if isinstance(index, pd.DatetimeIndex) and index.tz is not None and ts.tzinfo is None:
            ts = ts.tz_localize(index.tz)
        col = int(index.searchsorted(ts))
    except (TypeError, ValueError):
        raise ValueError(
            f"oos: expected a fraction in (0, 1) or a timestamp inside the data, got {oos!r}"
        ) from None
    if not 0 < col < n:
        raise ValueError(f"oos: {oos!r} is outside the bars ({index[0]} .. {index[-1]})")
    return col


def _block_size(span: int, n_pairs: int) -> int:
    """Pairs per block for pairs of ``span`` bars, out of ``n_pairs`` to compute."""
    if HAVE_NUMBA:
        cap = max(16, -(-n_pairs // 16))
        return max(2, min(cap, _BLOCK_CELLS_FUSED // max(span, 1)))
    return max(2, min(512, _BLOCK_CELLS // max(span, 1)))


def _blocks(ii, jj, lo, hi, todo, block_size):
    """Deterministic blocks: pairs sharing one bar range, chunked (independent of executors)."""
    order = np.lexsort((np.arange(len(ii)), hi, lo))
    order = order[todo[order]]
    blocks, members = [], []
    start = 0
    while start < len(order):
        p0 = order[start]
        same = (lo[order] == lo[p0]) & (hi[order] == hi[p0])
        stop = start + int(np.argmin(same[start:])) if not same[start:].all() else len(order)
        span = int(hi[p0] - lo[p0])
        size = block_size or _block_size(span, len(order))
        for s in range(start, stop, size):
            sel = order[s:min(s + size, stop)]
            blocks.append((int(lo[p0]), int(hi[p0]), ii[sel], jj[sel]))
            members.append(sel)
        start = stop
    return blocks, members


_MALLOC_TUNED = False


def _keep_temporaries_on_heap() -> None:
    """Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also pins
    glibc's mmap threshold at 128 KB: every block temporary then becomes a fresh mmap and
    its page faults made the kernel 4.8x slower (8.6 s vs 1.8 s for 4,950 pairs x 10k bars,
    measured with the variable set in a plain process). Raise both thresholds to 64 MB, once
    per process; no-op where glibc's ``mallopt`` is unavailable."""
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return
    _MALLOC_TUNED = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 64 << 20)
        libc.mallopt(m_trim_threshold, 128 << 20)
    except (OSError, AttributeError):
        pass


def _run_block(logp: np.ndarray, lo: int, hi: int, ii: np.ndarray, jj: np.ndarray, lag: int) -> dict:
    _keep_temporaries_on_heap()
    return eg_block(logp[:, lo:hi], ii, jj, lag)


def _compute(aligned, ii, jj, lo, hi, todo, lag, block_size, client, progress, desc):
    """Per-pair kernel outputs (P,) for the ``todo`` pairs; NaN elsewhere."""
    blocks, members = _blocks(ii, jj, lo, hi, todo, block_size)
    args = [b + (lag,) for b in blocks]
    results = run_blocks(_run_block, aligned.logp, args, client=client, progress=progress,
                         desc=desc, weights=[len(m) for m in members])
    P = len(ii)
    out = {k: np.full(P, np.nan) for k in (results[0] if results else {})}
    for sel, res in zip(members, results, strict=True):
        for k, v in res.items():
            out[k][sel] = v
    return out


def _screen_part(aligned: Aligned, c0, c1, lag, min_overlap, block_size, client, progress, desc):
    k = len(aligned.symbols)
    ii, jj = np.triu_indices(k, 1)
    lo, hi = aligned.overlap(ii, jj, c0, c1)
    n_obs = aligned.real_overlap(ii, jj, lo, hi)  # bars where both traded: filled ones are not observations
    todo = n_obs >= min_overlap
    if not todo.any():
        raise InsufficientDataError(
            f"min_overlap: no pair has {min_overlap} overlapping bars (the longest overlap is "
            f"{int(n_obs.max())} bars); widen the time range or lower min_overlap"
        )
    if not todo.all():
        short = [f"{aligned.symbols[a]}/{aligned.symbols[b]}" for a, b in zip(ii[~todo], jj[~todo], strict=True)]
        warnings.warn(
            f"{len(short)} of {len(ii)} pairs overlap by fewer than min_overlap={min_overlap} "
            f"bars and are left untested (NaN), e.g. {', '.join(short[:5])}",
            ScreenWarning, stacklevel=3,
        )
    r = _compute(aligned, ii, jj, lo, hi, todo, lag, block_size, client, progress, desc)
    if np.any(r["collinear"] == 1):
        warnings.warn(
            f"{int(np.sum(r['collinear'] == 1))} pairs are (almost) perfectly collinear "
            "(a duplicated symbol?): stat -inf, p-value 0 as in statsmodels",
            ScreenWarning, stacklevel=3,
        )
    untestable = todo & np.isnan(r["stat_a"]) & np.isnan(r["stat_b"])
    if untestable.any():
        warnings.warn(f"{int(untestable.sum())} pairs involve a constant price and are left "
                      "untested (NaN)", ScreenWarning, stacklevel=3)
    # better direction: smaller p-value, then more negative statistic; a on ties
    pa, pb = r["pvalue_a"], r["pvalue_b"]
    sa, sb = r["stat_a"], r["stat_b"]
    use_b = (pb < pa) | ((pb == pa) & (sb < sa))
    sym = np.array(aligned.symbols, dtype=object)

    def pick(name):
        return np.where(use_b, r[f"{name}_b"], r[f"{name}_a"])

    pmin = np.fmin(pa, pb)
    index = aligned.index
    has = n_obs > 0
    table = pd.DataFrame({
        "y": np.where(use_b, sym[jj], sym[ii]),
        "x": np.where(use_b, sym[ii], sym[jj]),
        "stat": pick("stat"),
        "pvalue": pick("pvalue"),
        "stat_rev": np.where(use_b, sa, sb),
        "pvalue_rev": np.where(use_b, pa, pb),
        "pvalue_pair": np.minimum(1.0, 2.0 * pmin),
        "qvalue": np.nan,
        "selected": False,
        "hedge_ratio": pick("beta"),
        "hedge_prices": "log",
        "intercept": pick("alpha"),
        "half_life": pick("half_life"),
        "ret_corr": r["ret_corr"],
        "spread_vol": pick("spread_vol"),
        "n_obs": n_obs.astype(np.int64),
        "start": _bar_times(index, np.minimum(lo, len(index) - 1), has),
        "end": _bar_times(index, np.maximum(hi - 1, 0), has),
        "_i": np.where(use_b, jj, ii),
        "_j": np.where(use_b, ii, jj),
    })
    return table


def _bar_times(index: pd.Index, columns: np.ndarray, has: np.ndarray) -> Any:
    """``index[columns]``, missing where not ``has``, in the index's own dtype (a
    DatetimeIndex keeps its unit and zone without a trip through Timestamp objects)."""
    if isinstance(index, pd.DatetimeIndex):
        return index[columns].where(has)
    return pd.Series(index[columns]).where(has).to_numpy()


def _out_of_sample(table, aligned, c0, c1, lag, min_overlap, alpha, block_size, client, progress):
    """Re-test the selected pairs, in their in-sample direction, on columns [c0, c1)."""
    for col in OOS_COLUMNS:
        table[col] = np.nan
    table["oos_confirmed"] = False
    sel = table["selected"].to_numpy()
    if not sel.any():
        return table
    ii = table["_i"].to_numpy()[sel]
    jj = table["_j"].to_numpy()[sel]
    lo, hi = aligned.overlap(ii, jj, c0, c1)
    n_real = aligned.real_overlap(ii, jj, lo, hi)
    todo = n_real >= min_overlap
    if not todo.all():
        warnings.warn(
            f"{int((~todo).sum())} selected pairs have fewer than min_overlap={min_overlap} "
            "out-of-sample bars and are not re-tested", ScreenWarning, stacklevel=3)
    if todo.any():
        r = _compute(aligned, ii, jj, lo, hi, todo, lag, block_size, client, progress, "re-test")
        rows = np.nonzero(sel)[0]
        table.loc[rows, "oos_stat"] = r["stat_a"]
        table.loc[rows, "oos_pvalue"] = r["pvalue_a"]
        table.loc[rows, "oos_hedge_ratio"] = r["beta_a"]
        table.loc[rows, "oos_half_life"] = r["half_life_a"]
        table.loc[rows, "oos_n_obs"] = np.where(todo, n_real, np.nan)
        q = bh_qvalues(table["oos_pvalue"].to_numpy())
        table["oos_qvalue"] = q
        table["oos_confirmed"] = np.where(np.isnan(q), False, q <= alpha)
    return table


def _rank(table: pd.DataFrame) -> pd.DataFrame:
    key_p = table["pvalue_pair"].fillna(math.inf).to_numpy()
    key_s = table["stat"].fillna(math.inf).to_numpy()
    order = np.lexsort((np.arange(len(table)), key_s, key_p))
    out = table.iloc[order].drop(columns=["_i", "_j"]).reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    extra = [c for c in OOS_COLUMNS if c in out.columns]
    return out[list(COLUMNS) + extra]


def pvalue_matrix(result: pd.DataFrame, value: str = "pvalue_pair") -> pd.DataFrame:
    """Symmetric symbols x symbols matrix of ``value`` (diagonal NaN): the heatmap's data."""
    if value not in result.columns:
        raise ValueError(f"value: {value!r} is not a column of the screen result")
    syms = result.attrs.get("symbols") or sorted(set(result["y"]) | set(result["x"]))
    m = pd.DataFrame(np.nan, index=pd.Index(syms, name="y"), columns=pd.Index(syms, name="x"))
    for y, x, v in zip(result["y"], result["x"], result[value], strict=True):
        m.loc[y, x] = v
        m.loc[x, y] = v
    return m


def panel_data(result: pd.DataFrame, top: int = 20) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What a notebook panel shows: the ``top`` ranked pairs and the p-value heatmap matrix."""
    cols = ["rank", "y", "x", "stat", "pvalue_pair", "qvalue", "selected", "hedge_ratio",
            "hedge_prices", "half_life", "ret_corr", "n_obs"]
    cols += [c for c in ("oos_pvalue", "oos_confirmed") if c in result.columns]
    return result.loc[:, cols].head(int(top)).reset_index(drop=True), pvalue_matrix(result)
