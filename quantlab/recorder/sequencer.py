"""Per-symbol trade sequencing (pure, no I/O): contiguous ids in, gaps out.

Binance trade ids are contiguous per symbol. The sequencer passes trades on in id order
and, when an id jumps, asks for the missing range to be backfilled while it *holds* the
trades after the jump, so the store only ever receives rows in order (no rewrite of
stored segments)::

    seq = Sequencer("BTCUSDT", last_id=store.last_trade_id("BTCUSDT"))
    gap = seq.push(trade)            # None, or (first_missing, last_missing) to fetch
    ready = seq.drain()              # trades ready to store, in id order
    gap = seq.fill(first, last, fetched)   # backfill arrived: releases the held trades
    gap = seq.give_up(first, last)         # not backfilled now: move past it (caller records it,
                                           # as gone for good or as an open gap to re-attempt)

A fresh store (``last_id=None``) starts at the first trade it sees; a resumed one treats the
first live trade after ``last_id`` like any other jump, so a restart backfills what it missed.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter

Gap = tuple[int, int]


class Sequencer:
    """``id_of`` reads the contiguous id of an event: ``trade_id`` (spot trades) by default,
    ``attrgetter("agg_id")`` for futures aggregate trades."""

    def __init__(self, symbol: str, last_id: int | None = None,
                 id_of: Callable[[object], int] = attrgetter("trade_id")):
        self.symbol = symbol
        self._id = id_of
        self.last_id = last_id
        self.gap: Gap | None = None
        self._ready: list = []
        self._held: list = []
        self.duplicates = 0

    @property
    def held(self) -> int:
        """Trades waiting for a backfill to complete."""
        return len(self._held)

    @property
    def newest_held(self) -> int | None:
        """Highest trade id held behind the open gap (the exchange has reached at least it)."""
        return max(t.trade_id for t in self._held) if self._held else None

    def held_after(self, trade_id: int | None) -> list:
        """The held trades with an id above ``trade_id`` (all of them for None), in arrival order."""
        if trade_id is None:
            return list(self._held)
        return [t for t in self._held if self._id(t) > trade_id]

    def push(self, trade) -> Gap | None:
        """Take one trade; returns a newly opened gap to backfill, else None."""
        tid = self._id(trade)
        if self.last_id is not None and tid <= self.last_id:
            self.duplicates += 1
            return None
        if self.gap is not None:
            self._held.append(trade)
            return None
        if self.last_id is None or tid == self.last_id + 1:
            self._ready.append(trade)
            self.last_id = tid
            return None
        self.gap = (self.last_id + 1, tid - 1)
        self._held.append(trade)
        return self.gap

    def drain(self) -> list:
        """Trades ready to store, in id order (and forget them)."""
        ready, self._ready = self._ready, []
        return ready

    def fill(self, first: int, last: int, trades) -> Gap | None:
        """Backfilled trades for the open gap arrived (possibly fewer than asked: ids the
        exchange no longer has open a new, smaller gap). Returns the next gap, if any."""
        if self.gap != (first, last):
            raise ValueError(f"{self.symbol}: fill({first}, {last}) does not match the open gap {self.gap}")
        self.gap = None
        return self._replay([t for t in trades if first <= self._id(t) <= last] + self._held)

    def give_up(self, first: int, last: int) -> Gap | None:
        """Move past the open gap without its trades (the caller records it: as a permanent
        gap, or as an open one that is repaired later and merged into the store)."""
        if self.gap != (first, last):
            raise ValueError(f"{self.symbol}: give_up({first}, {last}) does not match the open gap {self.gap}")
        self.gap = None
        self.last_id = last
        return self._replay(self._held)

    def _replay(self, trades: list) -> Gap | None:
        self._held = []
        seen: set[int] = set()
        ordered = []
        for t in sorted(trades, key=self._id):
            tid = self._id(t)
            if tid not in seen:
                seen.add(tid)
                ordered.append(t)
        gap = None
        for t in ordered:
            new = self.push(t)
            gap = gap or new
        return gap
