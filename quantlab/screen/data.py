"""Closing prices in, one aligned log-price matrix out (the screener's only input).

Two sources give the same frame of closes: a user's DataFrame, or a store's bars::

    closes : DataFrame, index = bar open times (sorted, unique), one float column per symbol,
             NaN where a symbol has no bar (not listed yet, delisted, no trade that minute)

:func:`align` turns it into :class:`Aligned`: ``logp`` (k_symbols, n_bars) of natural-log
closes. Inside each symbol's own life (its first to its last bar) a bar without a close
keeps the previous close (a minute without trades did not move the price); outside it the
matrix is NaN. A pair is therefore tested on one contiguous stretch of bars,
``[max(first), min(last)]``, whose length is the pair's ``n_obs``.
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

from quantlab.errors import InsufficientDataError, UnknownSymbolError
from quantlab.symbols import parse_symbol


class ScreenWarning(UserWarning):
    """Degenerate but legal screener input (a symbol dropped, pairs left untested)."""


@dataclass(frozen=True)
class Aligned:
    """Log closes of ``k`` symbols on one bar grid of length ``n``.

    ``logp[s, first[s]:last[s] + 1]`` holds no NaN; ``index[t]`` is the bar of column ``t``.
    """

    index: pd.Index
    symbols: tuple[str, ...]
    logp: np.ndarray
    first: np.ndarray
    last: np.ndarray

    def overlap(self, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Column range ``[lo, hi)`` both symbols of each pair cover (``hi <= lo``: none)."""
        lo = np.maximum(self.first[i], self.first[j])
        hi = np.minimum(self.last[i], self.last[j]) + 1
        return lo, np.maximum(hi, lo)


def _symbol_list(symbols: str | Sequence[str] | None) -> list[str] | None:
    if symbols is None:
        return None
    if isinstance(symbols, str):
        items = symbols.split(",")
    elif isinstance(symbols, Sequence) or isinstance(symbols, pd.Index):
        items = list(symbols)
    else:
        raise TypeError(f"symbols: expected a list of names or 'A,B,C', got {type(symbols).__name__}")
    out: list[str] = []
    for s in items:
        name = str(s).strip()
        if name and name not in out:
            out.append(name)
    return out


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
    frame = closes.copy()
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
        frame = frame.apply(pd.to_numeric).astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"closes: every column must hold numeric prices ({exc})") from None
    values = frame.to_numpy()
    bad = ~np.isnan(values) & ~(np.isfinite(values) & (values > 0))
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
    """Closes of ``symbols`` (default: every symbol of the store) from ``store.bars()``."""
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
        cols = {s: st.bars(s, timeframe, start, end)["close"] for s in wanted}
    finally:
        if opened:
            st.close()
    frame = pd.concat(cols, axis=1, join="outer", sort=True)
    frame.index.name = "time"
    return frame.astype(np.float64)


def align(closes: pd.DataFrame) -> Aligned:
    """Aligned log closes of a validated frame; symbols with < 2 bars are dropped (warned)."""
    values = closes.to_numpy(dtype=np.float64, copy=True).T  # (k, n)
    valid = ~np.isnan(values)
    counts = valid.sum(axis=1)
    keep = counts >= 2
    if not keep.all():
        dropped = [closes.columns[i] for i in np.nonzero(~keep)[0]]
        warnings.warn(f"dropping symbols with fewer than 2 bars in range: {dropped}",
                      ScreenWarning, stacklevel=3)
    symbols = tuple(str(c) for c, k in zip(closes.columns, keep, strict=True) if k)
    _need_two(symbols, "with at least 2 bars in the requested range")
    values, valid = values[keep], valid[keep]
    n = values.shape[1]
    first = valid.argmax(axis=1)
    last = n - 1 - valid[:, ::-1].argmax(axis=1)
    # forward fill inside each symbol's life: index of the last valid column so far
    pos = np.where(valid, np.arange(n), 0)
    np.maximum.accumulate(pos, axis=1, out=pos)
    filled = np.take_along_axis(values, pos, axis=1)
    cols = np.arange(n)
    inside = (cols >= first[:, None]) & (cols <= last[:, None])
    logp = np.full(values.shape, np.nan)
    logp[inside] = np.log(filled[inside])
    return Aligned(closes.index, symbols, np.ascontiguousarray(logp), first, last)
