"""Fetching a gap of trade ids over REST, and telling "gone for good" from "not served yet".

Binance serves ``/api/v3/historicalTrades`` from its database and ``/api/v3/trades`` (the
last <= 1000 trades) from memory; the database is the source "most prone to delays"
(spot ``rest-api.md``, "Data Sources"). So a short page from ``historicalTrades`` does not
mean the trades are gone: they may simply not be in the database yet. :func:`fetch_gap`
takes what the database serves, then what memory serves near the head, and sorts every id
still missing into one of two kinds:

* **gone** — Binance *provably* no longer has it. Proof is one of:

  1. *the database moved past it*: a ``historicalTrades`` page requested from an id at or
     below the missing run returned a higher id. The database fills in id order, so a lag
     cannot skip an id and serve a later one; the run is missing from history.
  2. *memory moved past it*: ``/api/v3/trades`` returned the contiguous window of the newest
     trades, that window covers the run, and the run is not in it.

  (Binance does not publish how far back ``historicalTrades`` reaches, so "older than what
  the exchange keeps" is only ever learned through proof 1.)
* **pending** — anything else: newer than everything the database served, not in memory.
  It is retried later (with delays, after a ban ends, or by ``quantlab repair``) and never
  recorded as permanent.

:func:`settle` writes one result into the store: trades merged in, ``gone`` runs recorded as
permanent gaps, ``pending`` runs as open gaps, and the original gap entry removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from quantlab.binance.protocol import Trade, trades_to_frame
from quantlab.binance.rest import MAX_LIMIT, BinanceRest

__all__ = ["Fill", "fetch_gap", "missing_runs", "settle", "GONE_REASON", "PENDING_REASON"]

Gap = tuple[int, int]

GONE_REASON = "Binance no longer has these trades (its history served later ids but not these)"
PENDING_REASON = "not served yet (Binance's trade history lags); re-attempted later"


@dataclass(frozen=True)
class Fill:
    """One attempt at the ids ``first..last`` of ``symbol``.

    ``trades``: the trades got, sorted by id, unique, inside the range; ``gone`` and
    ``pending``: the runs ``(first_id, last_id)`` still missing, by kind (see module doc).
    """

    symbol: str
    first: int
    last: int
    trades: list[Trade] = field(repr=False)
    gone: list[Gap]
    pending: list[Gap]

    @property
    def complete(self) -> bool:
        return not self.gone and not self.pending

    def is_gone(self, run: Gap) -> bool:
        return any(a <= run[0] and run[1] <= b for a, b in self.gone)

    def summary(self) -> str:
        n = self.last - self.first + 1
        gone = sum(b - a + 1 for a, b in self.gone)
        pending = sum(b - a + 1 for a, b in self.pending)
        return (f"{self.symbol} {self.first}..{self.last}: got {len(self.trades)} of {n}; "
                f"{gone} gone, {pending} pending")


def missing_runs(first: int, last: int, ids: Sequence[int]) -> list[Gap]:
    """Runs of ids in ``first..last`` absent from the sorted, unique ``ids``.

    >>> missing_runs(1, 10, [1, 2, 5, 6, 9])
    [(3, 4), (7, 8), (10, 10)]
    """
    runs: list[Gap] = []
    expect = first
    for i in ids:
        if i > expect:
            runs.append((expect, min(i - 1, last)))
        expect = max(expect, i + 1)
    if expect <= last:
        runs.append((expect, last))
    return runs


async def fetch_gap(rest: BinanceRest, symbol: str, first: int, last: int, *, head_id: int | None = None) -> Fill:
    """Every trade of ``first..last`` Binance serves now, and what is still missing, by kind.

    ``head_id``: the newest trade id the caller knows of (e.g. the first held live trade);
    memory (``/api/v3/trades``, the last <= 1000 trades) is asked only when it can hold a
    missing id. Raises what :class:`~quantlab.binance.rest.BinanceRest` raises (a ban, a
    firewall pause, an outage): the caller keeps the gap open.
    """
    got, seen = await rest.history_range(symbol, first, last)
    by_id = {t.trade_id: t for t in got}
    runs = missing_runs(first, last, sorted(by_id))
    unproven = [r for r in runs if seen is None or r[1] >= seen]
    mem: tuple[int, int] | None = None
    if unproven and (head_id is None or head_id - unproven[-1][1] < MAX_LIMIT):
        recent = await rest.recent_trades(symbol, MAX_LIMIT)
        if recent:
            ids = [t.trade_id for t in recent]
            mem = (min(ids), max(ids))
            for t in recent:
                if first <= t.trade_id <= last:
                    by_id.setdefault(t.trade_id, t)
            runs = missing_runs(first, last, sorted(by_id))
    gone: list[Gap] = []
    pending: list[Gap] = []
    for a, b in runs:
        database_passed = seen is not None and seen > b
        memory_passed = mem is not None and mem[0] <= a and b <= mem[1]
        (gone if database_passed or memory_passed else pending).append((a, b))
    trades = [by_id[i] for i in sorted(by_id)]
    return Fill(symbol, first, last, trades, gone, pending)


def settle(store, fill: Fill, *, pending_reason: str = PENDING_REASON) -> int:
    """Write ``fill`` for a gap recorded in ``store`` as ``(fill.first, fill.last)``:
    merge its trades in, record its ``gone`` runs as permanent gaps and its ``pending`` runs
    as open ones, then drop the original entry (added before removed: a crash in between
    leaves an overlap, never a hole without a record). Returns the rows added."""
    sym = fill.symbol
    added = store.append(sym, trades_to_frame(fill.trades)) if fill.trades else 0
    if not fill.trades and not fill.gone and fill.pending == [(fill.first, fill.last)]:
        return 0  # nothing learned: leave the entry as it is
    for a, b in fill.gone:
        store.add_gap(sym, a, b, GONE_REASON, permanent=True)
    for a, b in fill.pending:
        store.add_gap(sym, a, b, pending_reason, permanent=False)
    store.remove_gap(sym, fill.first, fill.last)
    return added
