"""Aligned closes of many symbols: the one alignment of the package (``quantlab.closes``).

::

    closes(store, ["BTCUSDT", "ETHUSDT"], "1m", start, end, max_fill=5) -> DataFrame
        index   bar open times (UTC) on the timeframe's grid: every bar in which at least
                one of the symbols traded
        columns one per symbol (names as given), the bar's close; a bar in which a symbol did
                not trade takes its previous close for at most ``max_fill`` bars of the grid
                (never a later value: no look-ahead), then NaN

A missing stretch therefore stays missing: forward-filling it without limit would invent a
flat price path, and a flat path next to a random walk looks cointegrated (on unrelated
random walks, one symbol missing 400 of 600 bars, filled without limit, made 12.7 % of its
pairs "cointegrated" at 5 % against 4.3 % for the other pairs; ``tests/test_closes.py``). ``DEFAULT_MAX_FILL = 5`` bars covers the quiet minutes of
a liquid symbol and no real outage. ``Lab.pair``, the screener and the app use
:func:`align_closes`; :func:`closes` is the same over a store's bars
(:meth:`quantlab.store.TickStore.bars`: ticks where the store has them, klines elsewhere).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quantlab.symbols import symbol_names
from quantlab.timeframes import Timeframe, parse_timeframe

DEFAULT_MAX_FILL = 5

__all__ = ["DEFAULT_MAX_FILL", "align_closes", "closes", "bounded_fill", "bounded_fill_rows",
           "grid_bars"]


def _check_max_fill(max_fill: Any) -> int:
    if isinstance(max_fill, bool) or not isinstance(max_fill, int | np.integer) or max_fill < 0:
        raise ValueError(f"max_fill: expected a whole number of bars >= 0, got {max_fill!r}")
    return int(max_fill)


def bounded_fill(raw: pd.DataFrame, max_fill: int, tf: Timeframe | None = None) -> pd.DataFrame:
    """Forward-fill each column of ``raw`` (NaN = no bar) by at most ``max_fill`` bars:
    bars of ``tf``'s grid when given (the index holds bar opens), else rows."""
    max_fill = _check_max_fill(max_fill)
    if len(raw) == 0 or raw.shape[1] == 0:
        return raw.astype(np.float64)
    rows = raw.to_numpy(dtype=np.float64).T  # (symbols, bars): a frame's own block, no copy
    filled = bounded_fill_rows(rows, grid_bars(raw.index, tf), max_fill)
    return pd.DataFrame(filled.T, index=raw.index, columns=raw.columns, copy=False)


def grid_bars(index: pd.Index, tf: Timeframe | None = None) -> np.ndarray:
    """(n,) int64 bar number of each row: its bar on ``tf``'s grid when ``tf`` is given and
    ``index`` holds times, else the row number (what :func:`bounded_fill` counts in)."""
    if tf is not None and isinstance(index, pd.DatetimeIndex):
        return np.ascontiguousarray(tf.bucket(pd.DatetimeIndex(index).as_unit("ns").asi8), dtype=np.int64)
    return np.arange(len(index), dtype=np.int64)


def bounded_fill_rows(rows: np.ndarray, bars: np.ndarray, max_fill: int) -> np.ndarray:
    """The fill of :func:`bounded_fill` on arrays, one symbol per ROW.

    ``rows`` (k, n) float64, NaN = no bar; ``bars`` (n,) int64 increasing bar numbers of the
    columns (:func:`grid_bars`). Returns a new C-contiguous (k, n) array: each value where
    the row has one, else its previous value while it is at most ``max_fill`` bars old,
    else NaN. One pass per row (numba; a vectorised numpy form without it): 0.6 ms of
    CPU for 100 symbols x 10k bars, where the numpy form takes 23 ms."""
    max_fill = _check_max_fill(max_fill)
    rows = np.asarray(rows, dtype=np.float64)
    bars = np.ascontiguousarray(bars, dtype=np.int64)
    if rows.ndim != 2 or bars.shape != (rows.shape[1],):
        raise ValueError(f"rows: expected (symbols, bars) with {bars.shape[0]} bars, got {rows.shape}")
    kernel = _fill_kernel()
    if kernel is None:
        return _bounded_fill_rows_numpy(rows, bars, max_fill)
    out = np.empty(rows.shape, dtype=np.float64)
    kernel(rows, bars, max_fill, out)
    return out


def _bounded_fill_rows_py(rows, bars, max_fill, out):
    """Loop form of :func:`bounded_fill_rows` (compiled by numba): ``out[s, t]`` is the
    last value of row ``s`` at or before column ``t`` if it is at most ``max_fill`` bars
    old, else NaN."""
    k, n = rows.shape
    for s in range(k):
        have = False
        last = np.nan
        last_bar = 0
        for t in range(n):
            v = rows[s, t]
            if v == v:  # not NaN (an infinite value is a value, as in the numpy form)
                have = True
                last = v
                last_bar = bars[t]
                out[s, t] = v
            elif have and bars[t] - last_bar <= max_fill:
                out[s, t] = last
            else:
                out[s, t] = np.nan


def _bounded_fill_rows_numpy(rows: np.ndarray, bars: np.ndarray, max_fill: int) -> np.ndarray:
    """Vectorised form of :func:`bounded_fill_rows` (without numba), tested equal to it."""
    n = rows.shape[1]
    pos = np.where(~np.isnan(rows), np.arange(n)[None, :], -1)
    np.maximum.accumulate(pos, axis=1, out=pos)
    seen = pos >= 0
    src = np.maximum(pos, 0)
    filled = np.ascontiguousarray(np.take_along_axis(rows, src, axis=1))
    filled[~seen | (bars[None, :] - bars[src] > max_fill)] = np.nan
    return filled


_FILL_KERNEL: Any = False  # False: not looked up yet; None: no numba


def _fill_kernel() -> Any:
    """The compiled fill, or None without numba (imported on first use: ``import quantlab``
    and ``import quantlab.aligned`` stay free of numba)."""
    global _FILL_KERNEL
    if _FILL_KERNEL is False:
        from quantlab.analytics.kernels import HAVE_NUMBA, _jit

        _FILL_KERNEL = _jit(_bounded_fill_rows_py) if HAVE_NUMBA else None
    return _FILL_KERNEL


def align_closes(series: Mapping[str, pd.Series], timeframe: Any = None, *,
                 max_fill: int = DEFAULT_MAX_FILL) -> pd.DataFrame:
    """Closes of several bar series (each indexed by bar open time, NaN or absent = no bar)
    on one index: the union of their bars, forward-filled by at most ``max_fill`` bars of
    ``timeframe`` (rows when None). Columns in the order of ``series``."""
    tf = None if timeframe is None else parse_timeframe(timeframe)
    cols = {name: pd.Series(s, dtype=np.float64).dropna() for name, s in series.items()}
    if cols:
        raw = pd.concat(cols, axis=1, join="outer", sort=True)
    else:
        raw = pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC"))
    raw = raw.reindex(columns=list(cols))
    if isinstance(raw.index, pd.DatetimeIndex):
        raw.index.name = "time"
    return bounded_fill(raw, max_fill, tf)


def _symbols(symbols: Any) -> list[str]:
    out = symbol_names(symbols)
    if not out:
        raise ValueError("symbols: give at least one symbol, e.g. ['BTCUSDT', 'ETHUSDT']")
    return out


def _open(store: Any) -> tuple[Any, bool]:
    if isinstance(store, str | os.PathLike):
        from quantlab.store import TickStore

        path = Path(store)
        if not path.is_dir():
            raise FileNotFoundError(f"store: no store directory at {path}")
        return TickStore(path), True
    if not hasattr(store, "bars"):
        raise TypeError(f"store: expected a TickStore or a store directory, got {type(store).__name__}")
    return store, False


def bar_closes(store: Any, symbols: Any, timeframe: Any = "1m", start: Any = None,
               end: Any = None) -> dict[str, pd.Series]:
    """``{symbol: close of each of its bars}`` from ``store.bars()`` (no fill)."""
    tf = parse_timeframe(timeframe)
    names = _symbols(symbols)
    st, opened = _open(store)
    try:
        if hasattr(st, "bar_closes"):  # the same closes, reading only what they need
            return {s: st.bar_closes(s, tf, start, end) for s in names}
        return {s: st.bars(s, tf, start, end)["close"] for s in names}
    finally:
        if opened:
            st.close()


def closes(store: Any, symbols: Any, timeframe: Any = "1m", start: Any = None, end: Any = None,
           max_fill: int = DEFAULT_MAX_FILL) -> pd.DataFrame:
    """Aligned closes of ``symbols`` from a store (a :class:`~quantlab.store.TickStore` or its
    directory): UTC index of bar opens on ``timeframe``'s grid, one column per symbol (names
    as given, market-qualified ones like ``um:BTCUSDT`` included), a symbol's close carried
    forward for at most ``max_fill`` bars where it did not trade, then NaN. See the module
    docstring."""
    max_fill = _check_max_fill(max_fill)
    tf = parse_timeframe(timeframe)
    return align_closes(bar_closes(store, symbols, tf, start, end), tf, max_fill=max_fill)
