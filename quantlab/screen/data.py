"""Closing prices in, one aligned log-price matrix out (the screener's only input).

Two sources give the same frame of closes: a user's DataFrame, or a store's bars::

    closes : DataFrame, index = bar open times (sorted, unique), one float column per symbol,
             NaN where a symbol has no bar (not listed yet, delisted, no trade that minute)

:func:`align` turns it into :class:`Aligned`: ``logp`` (k_symbols, n_bars) of natural-log
closes, by the package's one alignment (:mod:`quantlab.aligned`): a bar without a close keeps
the previous close for at most ``max_fill`` bars (a quiet minute did not move the price),
then NaN (a hole stays a hole: filled without limit it would be a flat path, and a flat path
next to a random walk looks cointegrated). A pair is tested on the longest contiguous
stretch of bars where both symbols have a close; its ``n_obs`` counts the bars of that
stretch where both symbols really traded (filled bars are not observations).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quantlab.aligned import DEFAULT_MAX_FILL, bar_closes, bounded_fill_rows, grid_bars
from quantlab.analytics.kernels import _jit
from quantlab.errors import InsufficientDataError, UnknownSymbolError
from quantlab.symbols import parse_symbol, symbol_names
from quantlab.timeframes import parse_timeframe


class ScreenWarning(UserWarning):
    """Degenerate but legal screener input (a symbol dropped, pairs left untested)."""


@dataclass(frozen=True)
class Aligned:
    """Log closes of ``k`` symbols on one bar grid of length ``n``.

    ``logp[s, t]`` is NaN where symbol ``s`` has no close (before its first bar, after its
    last, or more than ``max_fill`` bars after its previous one); ``real[s, t]`` is True where
    it traded in bar ``t``; ``index[t]`` is the bar of column ``t``.
    """

    index: pd.Index
    symbols: tuple[str, ...]
    logp: np.ndarray
    first: np.ndarray
    last: np.ndarray
    real: np.ndarray | None = None

    def overlap(self, i: np.ndarray, j: np.ndarray, c0: int = 0, c1: int | None = None,
                ) -> tuple[np.ndarray, np.ndarray]:
        """Column range ``[lo, hi)``: the longest stretch inside ``[c0, c1)`` where both
        symbols of each pair have a close (``hi <= lo``: none; the first of equally long
        ones). Each symbol's stretches are found once, then each pair walks the two sorted
        lists (numba: ~1 ms of CPU for 100 symbols x 10k bars, 4,950 pairs; the Python loop it
        replaces took ~15 ms)."""
        c1 = self.logp.shape[1] if c1 is None else c1
        i = np.ascontiguousarray(i, dtype=np.int64)
        j = np.ascontiguousarray(j, dtype=np.int64)
        k = self.logp.shape[0]
        most = k * ((max(c1 - c0, 0) + 1) // 2)  # a stretch, a hole, a stretch ...
        starts = np.empty(most, dtype=np.int64)
        ends = np.empty(most, dtype=np.int64)
        offsets = np.empty(k + 1, dtype=np.int64)
        _stretches(self.logp, int(c0), int(c1), starts, ends, offsets)
        lo = np.empty(len(i), dtype=np.int64)
        hi = np.empty(len(i), dtype=np.int64)
        _longest_overlap(starts, ends, offsets, i, j, lo, hi)
        return lo, hi

    def real_overlap(self, i: np.ndarray, j: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Bars in ``[lo, hi)`` where both symbols of each pair really traded.

        The real-bar flags packed 64 to a word, then per pair the AND of the two rows'
        words in its range, counted (numba; 0.4 ms for 4,950 pairs x 10k bars, a byte loop
        took 7 ms; a (pairs x bars) cumulative-sum matrix was 1.7 GB at 43,200 bars)."""
        if self.real is None:
            return np.maximum(hi - lo, 0)
        k, n = self.real.shape
        packed = np.zeros((k, 8 * ((n + 63) // 64)), dtype=np.uint8)
        packed[:, : (n + 7) // 8] = np.packbits(self.real, axis=1, bitorder="little")
        words = packed.view("<u8").astype(np.uint64, copy=False)  # bar t: bit t % 64 of word t // 64
        out = np.empty(len(i), dtype=np.int64)
        _count_both(words, np.ascontiguousarray(i, dtype=np.int64),
                    np.ascontiguousarray(j, dtype=np.int64), np.ascontiguousarray(lo, dtype=np.int64),
                    np.ascontiguousarray(hi, dtype=np.int64), out)
        return out


def _stretches_py(logp, c0, c1, starts, ends, offsets):
    """The stretches ``[starts[r], ends[r])`` of columns in ``[c0, c1)`` where row ``s`` of
    ``logp`` is not NaN, for r in ``offsets[s]:offsets[s+1]``, in column order."""
    m = 0
    for s in range(logp.shape[0]):
        offsets[s] = m
        inside = False
        for t in range(c0, c1):
            if logp[s, t] == logp[s, t]:
                if not inside:
                    starts[m] = t
                    inside = True
            elif inside:
                ends[m] = t
                m += 1
                inside = False
        if inside:
            ends[m] = c1
            m += 1
    offsets[logp.shape[0]] = m


def _longest_overlap_py(starts, ends, offsets, ii, jj, lo, hi):
    """For each pair ``(ii[p], jj[p])``: ``[lo[p], hi[p])`` the longest intersection of
    the two symbols' stretches (``starts``/``ends`` of symbol ``s`` at
    ``offsets[s]:offsets[s+1]``, sorted, disjoint); ``(0, 0)`` when they never meet. A
    symbol with one stretch each: their common life, ``hi = lo`` if it is empty."""
    for p in range(ii.shape[0]):
        x, x_end = offsets[ii[p]], offsets[ii[p] + 1]
        y, y_end = offsets[jj[p]], offsets[jj[p] + 1]
        if x_end - x == 1 and y_end - y == 1:
            s0 = max(starts[x], starts[y])
            lo[p] = s0
            hi[p] = max(min(ends[x], ends[y]), s0)
            continue
        best0 = 0
        best1 = 0
        while x < x_end and y < y_end:  # the intersections in order, leftmost first
            s0 = max(starts[x], starts[y])
            s1 = min(ends[x], ends[y])
            if s1 - s0 > best1 - best0:
                best0 = s0
                best1 = s1
            if ends[x] < ends[y]:
                x += 1
            else:
                y += 1
        lo[p] = best0
        hi[p] = best1


_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_M1, _M2 = np.uint64(0x5555555555555555), np.uint64(0x3333333333333333)
_M4, _H01 = np.uint64(0x0F0F0F0F0F0F0F0F), np.uint64(0x0101010101010101)


def _bits_py(x):
    """Number of set bits of a uint64 (the classic SWAR count; LLVM emits popcnt)."""
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return (x * _H01) >> np.uint64(56)


def _count_both_py(words, ii, jj, lo, hi, out):
    """``out[p]``: bars in ``[lo[p], hi[p])`` whose bit is set in both rows ``ii[p]`` and
    ``jj[p]`` of ``words`` (bar t is bit t % 64 of word t // 64)."""
    for p in range(ii.shape[0]):
        a = words[ii[p]]
        b = words[jj[p]]
        s0 = lo[p]
        s1 = hi[p]
        c = np.uint64(0)
        if s1 > s0:
            w0 = s0 >> 6
            w1 = (s1 - 1) >> 6
            for w in range(w0, w1 + 1):
                x = a[w] & b[w]
                if w == w0:  # drop the bars before lo
                    x &= _ALL << np.uint64(s0 & 63)
                if w == w1:  # and from hi on
                    x &= _ALL >> np.uint64(63 - ((s1 - 1) & 63))
                c += _bits(x)
        out[p] = c


_bits = _jit(_bits_py)
_stretches = _jit(_stretches_py)
_longest_overlap = _jit(_longest_overlap_py)
_count_both = _jit(_count_both_py)


def _symbol_list(symbols: str | Sequence[str] | None) -> list[str] | None:
    return None if symbols is None else symbol_names(symbols)


def _need_two(symbols: Sequence[str], where: str) -> None:
    if len(symbols) < 2:
        raise InsufficientDataError(
            f"symbols: a pair screen needs at least two symbols, got {list(symbols)} {where}".rstrip()
        )


def closes_from_frame(
    closes: pd.DataFrame, symbols: str | Sequence[str] | None = None, start: Any = None,
    end: Any = None,
) -> pd.DataFrame:
    """Validate a user's frame of closes and select ``symbols`` and ``[start, end]``."""
    if not isinstance(closes, pd.DataFrame):
        raise TypeError(
            f"closes: expected a DataFrame of closing prices (one column per symbol), "
            f"got {type(closes).__name__}"
        )
    frame = closes.copy(deep=False)  # new labels on the caller's data, never changed in place
    frame.columns = [str(c) for c in frame.columns]
    dup = frame.columns[frame.columns.duplicated()].unique().tolist()
    if dup:
        raise ValueError(f"closes: duplicate columns {dup}; give each symbol one column")
    wanted = _symbol_list(symbols)
    if wanted is not None:
        missing = [s for s in wanted if s not in frame.columns]
        if missing:
            raise UnknownSymbolError(
                f"unknown symbol(s) {missing}; the closes have: {', '.join(frame.columns)}"
            )
        frame = frame[wanted]
    _need_two(frame.columns, "in the closes")
    if frame.index.has_duplicates:
        raise ValueError("closes: the index has duplicate times; aggregate them first")
    if not frame.index.is_monotonic_increasing:
        raise ValueError("closes: the index must be sorted in time (use closes.sort_index())")
    if start is not None or end is not None:
        frame = frame.loc[_bound(start, frame.index, "start"):_bound(end, frame.index, "end")]
    try:
        if not all(pd.api.types.is_numeric_dtype(t) for t in frame.dtypes):
            frame = frame.apply(pd.to_numeric)  # prices as text (a CSV read without dtypes)
        frame = frame.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"closes: every column must hold numeric prices ({exc})") from None
    values = frame.to_numpy()
    bad = (values <= 0.0) | (values == np.inf)  # NaN (no bar) is neither
    if bad.any():
        cols = sorted({frame.columns[c] for c in np.nonzero(bad)[1]})
        raise ValueError(f"closes: prices must be positive and finite; bad values in {cols}")
    return frame


def _bound(value: Any, index: pd.Index, name: str) -> Any:
    if value is None:
        return None
    if isinstance(index, pd.DatetimeIndex):
        ts = pd.Timestamp(value)
        if index.tz is not None:
            ts = ts.tz_localize(index.tz) if ts.tzinfo is None else ts.tz_convert(index.tz)
        return ts
    return value


def open_store(store: Any) -> tuple[Any, bool]:
    """``(TickStore, opened_here)`` for a store object or a store directory path."""
    if isinstance(store, (str, os.PathLike)):
        from quantlab.store import TickStore

        path = Path(store)
        if not path.is_dir():
            raise FileNotFoundError(f"store: no store directory at {path}")
        return TickStore(path), True
    if not (hasattr(store, "bars") and hasattr(store, "symbols")):
        raise TypeError(
            "data: expected a DataFrame of closes, a TickStore or a store directory, "
            f"got {type(store).__name__}"
        )
    return store, False


def closes_from_store(
    store: Any, symbols: str | Sequence[str] | None = None, timeframe: str = "1m",
    start: Any = None, end: Any = None,
) -> pd.DataFrame:
    """Closes of ``symbols`` (default: every symbol of the store) from ``store.bars()``,
    NaN where a symbol has no bar (:func:`align` fills boundedly)."""
    st, opened = open_store(store)
    try:
        known = list(st.symbols())
        wanted = [str(parse_symbol(s)) for s in _symbol_list(symbols) or known]  # BTCUSDT, um:BTCUSDT
        missing = [s for s in wanted if s not in known]
        if missing:
            raise UnknownSymbolError(
                f"unknown symbol(s) {missing} in store {getattr(st, 'path', '')}; "
                f"known: {', '.join(known) or 'none yet'}"
            )
        _need_two(wanted, f"(the store has {known})" if symbols is None else "")
        cols = bar_closes(st, wanted, timeframe, start, end)
    finally:
        if opened:
            st.close()
    frame = pd.concat(cols, axis=1, join="outer", sort=True)
    frame.index.name = "time"
    return frame.astype(np.float64)


def align(closes: pd.DataFrame, timeframe: Any = None, max_fill: int = DEFAULT_MAX_FILL) -> Aligned:
    """Aligned log closes of a validated frame (NaN = no bar), filled forward by at most
    ``max_fill`` bars of ``timeframe`` (rows when None); symbols with < 2 bars are dropped
    (warned)."""
    rows = closes.to_numpy(dtype=np.float64).T  # (k, n); a frame's own block, no copy
    real = ~np.isnan(rows)
    tf = parse_timeframe(timeframe) if timeframe is not None and isinstance(closes.index, pd.DatetimeIndex) else None
    values = bounded_fill_rows(rows, grid_bars(closes.index, tf), max_fill)  # (k, n) C-contiguous
    counts = real.sum(axis=1)
    keep = counts >= 2
    if not keep.all():
        dropped = [closes.columns[i] for i in np.nonzero(~keep)[0]]
        warnings.warn(f"dropping symbols with fewer than 2 bars in range: {dropped}",
                      ScreenWarning, stacklevel=3)
        values, real = values[keep], real[keep]
    symbols = tuple(str(c) for c, k in zip(closes.columns, keep, strict=True) if k)
    _need_two(symbols, "with at least 2 bars in the requested range")
    n = values.shape[1]
    real = np.ascontiguousarray(real)
    first = real.argmax(axis=1)
    last = n - 1 - real[:, ::-1].argmax(axis=1)
    with np.errstate(invalid="ignore"):
        logp = np.log(values)
    return Aligned(closes.index, symbols, logp, first, last, real)
