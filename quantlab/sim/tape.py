"""The simulator's memory of every trade it made: one compact columnar tape per symbol.

Rows are :data:`~quantlab.sim.sources.TRADE_DTYPE` records (33 bytes a trade) kept in
fixed-size numpy chunks, so hours at 10k trades/s fit in memory without reallocating
and copying. Aggregate trades (for ``/api/v3/aggTrades``) are derived on append:
consecutive trades with the same time, price and side form one aggregate, whose first
trade index is kept in a second chunked column (8 bytes an aggregate).

Appends happen on the event loop; readers in other threads (``Exchange.trades()``)
see a consistent prefix because the row count is published after the rows are written.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from quantlab.sim.sources import TRADE_DTYPE

__all__ = ["Tape"]

CHUNK = 1 << 18  # rows per chunk (8.6 MB of trades)


class _Chunked:
    """An append-only column (or record array) stored in fixed-size chunks."""

    def __init__(self, dtype: npt.DTypeLike, chunk: int = CHUNK) -> None:
        self.dtype = np.dtype(dtype)
        self.chunk = chunk
        self.chunks: list[np.ndarray] = []
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def append(self, values: np.ndarray) -> None:
        values = np.asarray(values, self.dtype)
        i, total = 0, len(values)
        n = self.n
        while i < total:
            ci, off = divmod(n, self.chunk)
            if ci == len(self.chunks):
                self.chunks.append(np.empty(self.chunk, self.dtype))
            k = min(self.chunk - off, total - i)
            self.chunks[ci][off : off + k] = values[i : i + k]
            i += k
            n += k
        self.n = n  # publish after writing

    def slice(self, lo: int, hi: int) -> np.ndarray:
        """Rows ``lo..hi-1`` as one array (a view when inside one chunk)."""
        hi = min(hi, self.n)
        lo = max(0, min(lo, hi))
        if lo == hi:
            return np.empty(0, self.dtype)
        c0, o0 = divmod(lo, self.chunk)
        c1, o1 = divmod(hi - 1, self.chunk)
        if c0 == c1:
            return self.chunks[c0][o0 : o1 + 1]
        parts = [self.chunks[c0][o0:]]
        parts.extend(self.chunks[c] for c in range(c0 + 1, c1))
        parts.append(self.chunks[c1][: o1 + 1])
        return np.concatenate(parts)

    def item(self, i: int):
        c, o = divmod(i, self.chunk)
        return self.chunks[c][o]

    def searchsorted(self, value: int, field: str | None = None, side: Literal["left", "right"] = "left") -> int:
        """Index of ``value`` in a column sorted ascending (over the committed rows)."""
        n = self.n
        if n == 0:
            return 0
        nchunks = (n - 1) // self.chunk + 1
        firsts = [self._col(self.chunks[c], field)[0] for c in range(nchunks)]
        c = int(np.searchsorted(np.asarray(firsts), value, side=side)) - 1
        if c < 0:
            return 0
        end = min(self.chunk, n - c * self.chunk)
        return c * self.chunk + int(np.searchsorted(self._col(self.chunks[c], field)[:end], value, side=side))

    @staticmethod
    def _col(arr: np.ndarray, field: str | None) -> np.ndarray:
        return arr if field is None else arr[field]


class Tape:
    """Every trade of one symbol, in id order, with its aggregate-trade index.

    >>> t = Tape(agg_first_id=1)
    >>> t.append(batch)            # TRADE_DTYPE array, ids increasing
    >>> t.from_id(3000000100, 1000) # up to 1000 trades with id >= 3000000100
    """

    def __init__(self, agg_first_id: int = 1, chunk: int = CHUNK) -> None:
        self.rows = _Chunked(TRADE_DTYPE, chunk)
        self.agg_start = _Chunked(np.int64, chunk)  # row index of each aggregate's first trade
        self.agg_first_id = int(agg_first_id)
        self._last: tuple[int, int, bool] | None = None  # time, price, side, of the last row

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def first_id(self) -> int | None:
        return int(self.rows.item(0)["id"]) if len(self.rows) else None

    @property
    def last_id(self) -> int | None:
        return int(self.rows.item(len(self.rows) - 1)["id"]) if len(self.rows) else None

    def append(self, batch: np.ndarray) -> None:
        if len(batch) == 0:
            return
        last_id = self.last_id
        if last_id is not None and int(batch["id"][0]) <= last_id:
            raise ValueError(f"tape: trade id {int(batch['id'][0])} is not after {last_id}")
        base = len(self.rows)
        t, p, m = batch["time"], batch["price"], batch["buyer_maker"]
        new = np.ones(len(batch), bool)
        new[1:] = (t[1:] != t[:-1]) | (p[1:] != p[:-1]) | (m[1:] != m[:-1])
        if self._last is not None:
            lt, lp, lm = self._last
            new[0] = not (int(t[0]) == lt and int(p[0]) == lp and bool(m[0]) == lm)
        starts = np.flatnonzero(new) + base
        self.rows.append(batch)
        self.agg_start.append(starts)
        self._last = (int(t[-1]), int(p[-1]), bool(m[-1]))

    # ------------------------------------------------------------------ reads

    def index_of_id(self, trade_id: int) -> int:
        """Row index of the first trade with id >= ``trade_id`` (``len`` if none)."""
        n = len(self.rows)
        if n == 0:
            return 0
        first = int(self.rows.item(0)["id"])
        guess = trade_id - first
        if 0 <= guess < n and int(self.rows.item(guess)["id"]) == trade_id:
            return guess  # contiguous ids: O(1)
        if trade_id <= first:
            return 0
        return self.rows.searchsorted(trade_id, "id")

    def slice(self, lo: int, hi: int) -> np.ndarray:
        return self.rows.slice(lo, hi)

    def from_id(self, trade_id: int, limit: int) -> np.ndarray:
        i = self.index_of_id(trade_id)
        return self.rows.slice(i, i + limit)

    def last(self, limit: int) -> np.ndarray:
        n = len(self.rows)
        return self.rows.slice(max(0, n - limit), n)

    def all(self) -> np.ndarray:
        return self.rows.slice(0, len(self.rows))

    # ------------------------------------------------------------------ aggregates

    def n_aggs(self) -> int:
        return len(self.agg_start)

    def aggs(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Aggregates ``lo..hi-1``: ``(agg_ids, first_rows, last_rows, qty_sums)``.

        Only complete aggregates are returned (the last one may still grow), except that
        an aggregate is complete once a later trade exists.
        """
        n_rows = len(self.rows)
        committed = len(self.agg_start)
        hi = min(hi, committed)
        lo = max(0, min(lo, hi))
        if lo == hi:
            empty = np.empty(0, np.int64)
            return empty, empty, empty, empty
        starts = self.agg_start.slice(lo, hi + 1 if hi < committed else hi)
        first = starts[: hi - lo]
        last = np.empty(hi - lo, np.int64)
        last[:-1] = first[1:] - 1
        last[-1] = (int(starts[hi - lo]) - 1) if len(starts) > hi - lo else n_rows - 1
        rows = self.rows.slice(int(first[0]), int(last[-1]) + 1)
        csum = np.concatenate(([0], np.cumsum(rows["qty"], dtype=np.int64)))
        base = int(first[0])
        qty = csum[last - base + 1] - csum[first - base]
        ids = self.agg_first_id + np.arange(lo, hi, dtype=np.int64)
        return ids, first, last, qty

    def agg_index_of_id(self, agg_id: int) -> int:
        return max(0, agg_id - self.agg_first_id)

    def agg_index_of_time(self, time_us: int) -> int:
        """First aggregate whose trade time is >= ``time_us``."""
        row = self.rows.searchsorted(time_us, "time")
        if row >= len(self.rows):
            return len(self.agg_start)
        return self.agg_start.searchsorted(row, None, side="left") if row else 0
