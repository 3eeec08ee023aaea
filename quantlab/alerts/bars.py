"""Incremental closes from trades: closed bars of a timeframe, and 1-second closes.

Both are fed the batches the recorder appends (arrays of trade time in int64 ns and
price, in trade-id order) and cost O(batch) numpy work; the common case (no bar closes in
the batch) is one comparison.

A bar is identified by ``bar_id = time_ns // timeframe_ns`` (its open time is
``bar_id * timeframe_ns``, trade time, never wall-clock time). It is closed when a trade of
a later bar arrives; its close is the price of its last trade. Bars without trades do not
exist (as in the store's ``bars()``); readers forward-fill.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

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
        self.timeframe_ns = int(timeframe_ns)
        self.keep = max(int(keep), 2)
        self.ids: list[int] = []
        self.closes: list[float] = []
        self.open_id: int | None = None
        self.open_close: float = math.nan

    def seed(self, bar_open_ns: np.ndarray, closes: np.ndarray) -> int:
        """Prefill from stored bars (open time in ns, close), oldest first. The last stored
        bar may still be in progress, so it becomes the open bar; live trades then update it.
        Bars at or after what live trades already built are ignored. Returns bars taken."""
        ids = np.asarray(bar_open_ns, dtype=np.int64) // self.timeframe_ns
        c = np.asarray(closes, dtype=np.float64)
        ok = np.isfinite(c)
        ids, c = ids[ok], c[ok]
        if len(ids) == 0:
            return 0
        limit = self.ids[0] if self.ids else self.open_id
        if limit is not None:
            keep = ids < limit
            ids, c = ids[keep], c[keep]
            if len(ids) == 0:
                return 0
            self.ids[:0] = ids.tolist()
            self.closes[:0] = c.tolist()
        else:
            self.ids = ids[:-1].tolist()
            self.closes = c[:-1].tolist()
            self.open_id, self.open_close = int(ids[-1]), float(c[-1])
        self._trim()
        return len(ids)

    def update(self, time_ns: np.ndarray, price: np.ndarray) -> ClosedBars:
        """Feed one batch; returns the bars it closed (usually none)."""
        n = len(time_ns)
        if n == 0:
            return _EMPTY
        tf = self.timeframe_ns
        last = int(time_ns[-1]) // tf
        if last == self.open_id:  # the common case: still inside the open bar
            self.open_close = float(price[-1])
            return _EMPTY
        b = np.asarray(time_ns, dtype=np.int64) // tf
        b = np.maximum.accumulate(b)  # a late trade belongs to the open bar
        index = np.arange(n)
        if self.open_id is None:
            self.open_id, self.open_close = int(b[0]), float(price[0])
        elif b[0] < self.open_id:  # trades already covered by seeded bars
            keep = b >= self.open_id
            b, index = b[keep], index[keep]
            if len(b) == 0:
                return _EMPTY
        prev = np.empty_like(b)
        prev[0] = self.open_id
        prev[1:] = b[:-1]
        starts = np.flatnonzero(b != prev)
        closed_ids = prev[starts]
        p = np.asarray(price, dtype=np.float64)
        before = index[np.maximum(starts - 1, 0)]
        closes = np.where(starts == 0, self.open_close, p[before])
        trigger = index[starts]
        self.ids.extend(closed_ids.tolist())
        self.closes.extend(closes.tolist())
        self.open_id, self.open_close = int(b[-1]), float(p[index[-1]])
        self._trim()
        return ClosedBars(closed_ids, closes, trigger)

    def close_at(self, bar_id: int) -> float:
        """Close of the last closed bar at or before ``bar_id`` (forward fill); NaN if none."""
        i = bisect.bisect_right(self.ids, bar_id) - 1
        return self.closes[i] if i >= 0 else math.nan

    def closed_after(self, bar_id: int | None, below: int) -> list[int]:
        """Closed bar ids in ``(bar_id, below)``, oldest first (scans from the newest)."""
        out = []
        for b in reversed(self.ids):
            if bar_id is not None and b <= bar_id:
                break
            if b < below:
                out.append(b)
        out.reverse()
        return out

    def _trim(self) -> None:
        extra = len(self.ids) - self.keep
        if extra > self.keep // 2:
            del self.ids[:extra]
            del self.closes[:extra]


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
