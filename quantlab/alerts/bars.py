"""Incremental closes from trades: closed bars of a timeframe, and 1-second closes.

Both are fed the batches the recorder appends (arrays of trade time in int64 ns and
price, in trade-id order) and cost O(batch) numpy work; the common case (no bar closes in
the batch) is one comparison.

A bar is identified by ``bar_id = time_ns // timeframe_ns`` (its open time is
``bar_id * timeframe_ns``, trade time, never wall-clock time). It is closed when a trade of
a later bar arrives; its close is the price of its latest trade by trade time, by the one
bar rule of :mod:`quantlab.store.bars` (a late trade amends its own bar). Bars without
trades do not exist (as in the store's ``bars()``); readers forward-fill.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from quantlab.store.bars import (
    Partials,
    as_timeframe,
    concat_partials,
    merge_partials,
    reduce_partials,
    take_partials,
)

NS = 1_000_000_000


@dataclass(frozen=True)
class ClosedBars:
    """Bars closed by one batch: ``bar_id[i]`` closed at ``close[i]``; the trade that closed
    it (the first trade of a later bar) is ``trigger[i]``, an index into the batch."""

    bar_id: np.ndarray
    close: np.ndarray
    trigger: np.ndarray

    def __len__(self) -> int:
        return len(self.bar_id)


_EMPTY = ClosedBars(np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64))


class BarBuilder:
    """Closed-bar closes of one symbol at one timeframe, kept for the last ``keep`` bars.

    The bar rule is :mod:`quantlab.store.bars`'s (one kernel, :func:`reduce_partials`): a
    bar's close is its latest trade by trade time, and a trade arriving after its bar closed
    amends that bar's close (it is not folded into the open bar), so the closes equal those of
    the store's bars over the same trades.

    >>> b = BarBuilder(60 * NS)
    >>> t = np.array([0, 30, 61, 125], dtype=np.int64) * NS
    >>> closed = b.update(t, np.array([1.0, 2.0, 3.0, 4.0]))
    >>> closed.bar_id.tolist(), closed.close.tolist(), closed.trigger.tolist()
    ([0, 1], [2.0, 3.0], [2, 3])
    >>> b.open_id, b.open_close
    (2, 4.0)
    """

    def __init__(self, timeframe_ns: int, keep: int = 1000) -> None:
        if timeframe_ns <= 0:
            raise ValueError(f"timeframe_ns: {timeframe_ns!r} must be positive")
        tf = as_timeframe(int(timeframe_ns))
        if tf.is_calendar or tf.is_weekly:
            raise ValueError(f"timeframe_ns: alerts need bars of a fixed length under a week, not {tf}")
        self.timeframe_ns = int(timeframe_ns)
        self.keep = max(int(keep), 2)
        # one row per bar, the open bar last: bar id, close, time of the closing trade
        self._p: Partials = {"bucket": np.empty(0, np.int64), "close": np.empty(0), "close_t": np.empty(0, np.int64)}

    @property
    def open_id(self) -> int | None:
        b = self._p["bucket"]
        return int(b[-1]) if len(b) else None

    @property
    def open_close(self) -> float:
        c = self._p["close"]
        return float(c[-1]) if len(c) else math.nan

    @property
    def ids(self) -> list[int]:
        """Closed bar ids, oldest first."""
        return self._p["bucket"][:-1].tolist()

    @property
    def closes(self) -> list[float]:
        return self._p["close"][:-1].tolist()

    def seed(self, bar_open_ns: np.ndarray, closes: np.ndarray) -> int:
        """Prefill from stored bars (open time in ns, close), oldest first. The last stored
        bar may still be in progress, so it becomes the open bar; live trades then update it.
        Bars at or after what live trades already built are ignored. Returns bars taken."""
        tf = self.timeframe_ns
        ids = np.asarray(bar_open_ns, dtype=np.int64) // tf
        c = np.asarray(closes, dtype=np.float64)
        ok = np.isfinite(c)
        ids, c = ids[ok], c[ok]
        if len(ids) == 0:
            return 0
        held = self._p["bucket"]
        # a stored closed bar is final as stored (its closing time: the bar's last ns); the
        # stored open bar takes any live trade of it (its closing time: the bar's open)
        close_t = ids * tf + tf - 1
        if len(held):
            keep = ids < held[0]
            ids, c, close_t = ids[keep], c[keep], close_t[keep]
            if len(ids) == 0:
                return 0
        else:
            close_t[-1] = ids[-1] * tf
        seeded = {"bucket": ids, "close": c, "close_t": close_t}
        self._p = reduce_partials(concat_partials(seeded, self._p))
        self._trim()
        return len(ids)

    def update(self, time_ns: np.ndarray, price: np.ndarray) -> ClosedBars:
        """Feed one batch (trade-id order); returns the bars it closed (usually none)."""
        n = len(time_ns)
        if n == 0:
            return _EMPTY
        tf = self.timeframe_ns
        t = np.asarray(time_ns, dtype=np.int64)
        p = np.asarray(price, dtype=np.float64)
        before = self.open_id
        if (before is not None and int(t[0]) // tf == before and int(t[-1]) // tf == before
                and int(t[-1]) >= int(self._p["close_t"][-1]) and (n == 1 or bool(np.all(t[1:] >= t[:-1])))):
            self._p["close"][-1], self._p["close_t"][-1] = p[-1], t[-1]  # the common case
            return _EMPTY
        b = t // tf
        self._p = merge_partials(self._p, reduce_partials({"bucket": b, "close": p, "close_t": t}))
        newest = self.open_id
        assert newest is not None  # the batch just merged holds at least one bar
        held = self._p["bucket"]
        if before is None:
            sel = held < newest
        elif newest > before:
            sel = (held >= before) & (held < newest)
        else:
            sel = np.zeros(len(held), dtype=bool)
        closed_ids = held[sel]
        closes = self._p["close"][sel]
        # the trade that closed each bar: the first one of this batch in a later bar
        trigger = np.searchsorted(np.maximum.accumulate(b), closed_ids, side="right").astype(np.int64)
        self._trim()
        if not len(closed_ids):
            return _EMPTY
        return ClosedBars(closed_ids, closes, trigger)

    def close_at(self, bar_id: int) -> float:
        """Close of the last closed bar at or before ``bar_id`` (forward fill); NaN if none."""
        ids = self._p["bucket"][:-1]
        i = int(np.searchsorted(ids, bar_id, side="right")) - 1
        return float(self._p["close"][i]) if i >= 0 else math.nan

    def closed_after(self, bar_id: int | None, below: int) -> list[int]:
        """Closed bar ids in ``(bar_id, below)``, oldest first."""
        ids = self._p["bucket"][:-1]
        lo = 0 if bar_id is None else int(np.searchsorted(ids, bar_id, side="right"))
        hi = int(np.searchsorted(ids, below, side="left"))
        return ids[lo:max(lo, hi)].tolist()

    def _trim(self) -> None:
        extra = len(self._p["bucket"]) - 1 - self.keep
        if extra > self.keep // 2:
            self._p = take_partials(self._p, slice(extra, None))


class SecondCloses:
    """Last price of each second with trades, for "price ``window`` ago" look-ups.

    >>> s = SecondCloses(keep_ns=60 * NS)
    >>> s.extend(np.array([0, 0.5, 1.2, 3.0]) * NS // 1, np.array([10.0, 11.0, 12.0, 13.0]))
    >>> s.before(np.array([1, 2, 3, 4]) * NS).tolist()   # last close of seconds < floor(q)
    [11.0, 12.0, 12.0, 13.0]
    """

    def __init__(self, keep_ns: int) -> None:
        self.keep_s = int(keep_ns // NS) + 2
        self.sec = np.empty(0, np.int64)
        self.close = np.empty(0, np.float64)

    def extend(self, time_ns: np.ndarray, price: np.ndarray) -> None:
        if len(time_ns) == 0:
            return
        s = np.maximum.accumulate(np.asarray(time_ns, dtype=np.int64) // NS)
        p = np.asarray(price, dtype=np.float64)
        ends = np.flatnonzero(s[1:] != s[:-1])
        ends = np.append(ends, len(s) - 1)
        new_s, new_c = s[ends], p[ends]
        if len(self.sec) and new_s[0] <= self.sec[-1]:
            self.close[-1] = new_c[0]
            new_s, new_c = new_s[1:], new_c[1:]
        if len(new_s):
            if len(self.sec) > 2 * self.keep_s + 16:  # drop what no trade of this batch needs
                cut = np.searchsorted(self.sec, s[0] - self.keep_s)
                self.sec, self.close = self.sec[cut:], self.close[cut:]
            self.sec = np.concatenate([self.sec, new_s])
            self.close = np.concatenate([self.close, new_c])

    def before(self, query_ns: np.ndarray) -> np.ndarray:
        """Price as of each query time: the close of the last second that ended by it
        (so never a trade after the query time); NaN before the first second."""
        q = np.asarray(query_ns, dtype=np.int64) // NS
        i = np.searchsorted(self.sec, q, side="left") - 1
        out = self.close[np.maximum(i, 0)] if len(self.close) else np.full(len(q), np.nan)
        return np.where(i >= 0, out, np.nan)
