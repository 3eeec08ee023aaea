"""Bars updated incrementally from ticks (pure), by the one bar rule of :mod:`quantlab.store.bars`.

``IncrementalBars(timeframe).update(time, price, qty)`` returns the bars that closed (a bar
closes when a trade of a later bar arrives); ``frame()`` is the bars held plus the current
one, marked ``partial``. A trade arriving late for a bar that already closed amends that
bar, so ``frame()`` equals :meth:`quantlab.store.TickStore.bars` over the same ticks (VWAP
and volume to float rounding), whatever order they arrived in.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from quantlab.store.bars import (
    as_timeframe,
    empty_partials,
    merge_partials,
    partials_to_bars,
    take_partials,
    trade_partials,
)


class IncrementalBars:
    """Bars of one symbol at one timeframe (a :class:`~quantlab.timeframes.Timeframe`, a name
    such as ``'1m'``, or a fixed length in ns), the newest ``max_bars`` kept."""

    def __init__(self, timeframe: Any, max_bars: int = 20_000):
        self.tf = as_timeframe(timeframe)
        self.max_bars = int(max_bars)
        self._p = empty_partials()

    @property
    def tf_ns(self) -> int:
        return self.tf.nominal_ns

    def update(self, time_ns: np.ndarray, price: np.ndarray, qty: np.ndarray) -> pd.DataFrame:
        """Add ticks (in trade-id order); returns the bars that closed because of them."""
        closed = self._add(time_ns, price, qty)  # replaces self._p: take from the new one
        return self._frame(take_partials(self._p, closed), partial=False)

    def add(self, time_ns: np.ndarray, price: np.ndarray, qty: np.ndarray) -> int:
        """:meth:`update` without building a frame: how many bars closed (what a follower that
        holds a lock needs; a frame per call and timeframe cost it most of its time)."""
        return int(np.count_nonzero(self._add(time_ns, price, qty)))

    def _add(self, time_ns: np.ndarray, price: np.ndarray, qty: np.ndarray) -> np.ndarray:
        """Merge the ticks; a mask of the held bars they closed."""
        before = int(self._p["bucket"][-1]) if len(self._p["bucket"]) else None
        if len(time_ns):
            self._p = merge_partials(self._p, trade_partials(time_ns, price, qty, self.tf))
            extra = len(self._p["bucket"]) - self.max_bars
            if extra > 0:
                self._p = take_partials(self._p, slice(extra, None))
        b = self._p["bucket"]
        if not len(b):
            return np.zeros(0, bool)
        newest = int(b[-1])
        lo = before if before is not None else int(b[0])
        return (b >= lo) & (b < newest) if before is None or newest > before else np.zeros(len(b), bool)

    def closes(self, last: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(bar open times as int ns UTC, closes)`` of :meth:`frame`, without a frame: what a
        live chart redrawn a few times a second needs."""
        p = self._p if last is None else take_partials(self._p, slice(-int(last), None))
        return self.tf.bucket_open(p["bucket"]).astype(np.int64, copy=True), p["close"].copy()

    def _frame(self, p: dict, partial: bool) -> pd.DataFrame:
        frame = partials_to_bars(p, self.tf)
        frame["partial"] = np.full(len(frame), partial)
        if partial and len(frame):
            frame.iloc[:-1, frame.columns.get_loc("partial")] = False
        return frame

    def frame(self, last: int | None = None) -> pd.DataFrame:
        """Bars held and the open one (``partial=True``), oldest first."""
        frame = self._frame(self._p, partial=True)
        return frame if last is None else frame.iloc[-int(last):]
