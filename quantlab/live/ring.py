"""A bounded columnar ring of ticks (the newest ``capacity`` rows), O(1) amortised append."""

from __future__ import annotations

import numpy as np

from quantlab.store.schema import TRADES, Batch
from quantlab.timestamps import NAT_NS

COLUMNS = TRADES.columns  # trade_id time price qty is_buyer_maker event_time recv_time


class TickRing:
    """Holds the newest ``capacity`` ticks of one symbol as contiguous numpy columns.

    Storage is ``2 * capacity`` rows so that appends shift memory only once per
    ``capacity`` rows; ``snapshot()`` returns copies (safe to hand to another thread).
    """

    def __init__(self, capacity: int):
        if not (isinstance(capacity, int) and capacity >= 1):
            raise ValueError(f"ring_size: must be a positive int, got {capacity!r}")
        self.capacity = capacity
        self._cols = {name: np.empty(2 * capacity, dtype=dt) for name, dt in COLUMNS}
        self._lo = 0
        self._hi = 0
        self.total = 0  # rows ever appended

    def __len__(self) -> int:
        return self._hi - self._lo

    def append(self, batch: Batch) -> None:
        n = len(batch["trade_id"])
        if not n:
            return
        self.total += n
        if n >= self.capacity:
            for name, _ in COLUMNS:
                self._cols[name][: self.capacity] = self._column(batch, name, n)[-self.capacity:]
            self._lo, self._hi = 0, self.capacity
            return
        if self._hi + n > len(self._cols["trade_id"]):
            keep = min(len(self), self.capacity - n)
            for col in self._cols.values():
                col[:keep] = col[self._hi - keep: self._hi]
            self._lo, self._hi = 0, keep
        for name, _ in COLUMNS:
            self._cols[name][self._hi: self._hi + n] = self._column(batch, name, n)
        self._hi += n
        if len(self) > self.capacity:
            self._lo = self._hi - self.capacity

    @staticmethod
    def _column(batch: Batch, name: str, n: int) -> np.ndarray:
        col = batch.get(name)
        return np.full(n, NAT_NS, dtype="i8") if col is None else col

    def snapshot(self, last: int | None = None) -> Batch:
        lo = self._lo if last is None else max(self._lo, self._hi - int(last))
        return {name: col[lo: self._hi].copy() for name, col in self._cols.items()}

    @property
    def first_time(self) -> int | None:
        return int(self._cols["time"][self._lo]) if len(self) else None

    @property
    def last_id(self) -> int | None:
        return int(self._cols["trade_id"][self._hi - 1]) if len(self) else None

    def last(self, name: str):
        return self._cols[name][self._hi - 1] if len(self) else None
