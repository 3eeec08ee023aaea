"""``quantlab repair --store DIR [--rest-url URL]``: re-attempt every gap recorded in a store.

Run it after an outage or a ban: each gap in ``<store>/gaps.json`` (open or permanent) is
fetched again from Binance; the trades it still has are merged into the store, ids it
provably no longer has stay recorded as permanent gaps, ids not served yet stay open. One
line per symbol says what was filled; exit 0.

It takes the store's writer lock, so it refuses (naming the pid) to run while a recorder
writes the store: a running recorder re-attempts its own open gaps; stop it first to repair
the others.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from quantlab.config import settings

NAME = "repair"
HELP = "re-attempt every gap recorded in a store (after an outage or a ban) and report what was filled"

#: gaps longer than this are split first, so a repair holds at most this many trades at once
CHUNK_IDS = 100_000


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=None, help="store directory (default: $QUANTLAB_STORE or ./data/store)")
    p.add_argument("--rest-url", default=None,
                   help="REST base (default: $QUANTLAB_REST_URL or https://api.binance.com)")


@dataclass
class _Tally:
    gaps: int = 0
    missing: int = 0
    filled: int = 0
    gone: int = 0
    open: int = 0
    notes: list[str] = field(default_factory=list)

    def line(self, symbol: str) -> str:
        text = (f"{symbol}: filled {self.filled:,} of {self.missing:,} missing ids in {self.gaps} gap"
                f"{'s' if self.gaps != 1 else ''}; {self.gone:,} gone for good; {self.open:,} not yet available")
        return text + (f" ({'; '.join(dict.fromkeys(self.notes))})" if self.notes else "")


def run(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from quantlab.errors import StoreLockedError
    from quantlab.store import TickStore, writer_pid

    cfg = settings(store=args.store, rest_url=args.rest_url)
    path = Path(cfg.store)
    if not (path / "store.json").is_file():
        raise FileNotFoundError(f"--store {path}: no quantlab store there (store.json missing)")
    pid = writer_pid(path)
    if pid is not None:
        raise StoreLockedError(
            f"--store {path}: a recorder (pid {pid}) is writing this store; it re-attempts its own "
            "open gaps — stop it first to repair every gap"
        )
    store = TickStore(path, mode="a")
    try:
        if store.gaps().empty:
            print(f"{path}: no recorded gaps")
            return 0
        _split_long_gaps(store)
        tallies, stopped = asyncio.run(_repair(store, cfg.rest_url))
    finally:
        store.close()
    for symbol, tally in tallies.items():
        print(tally.line(symbol))
    if stopped:
        print(f"stopped early: {stopped}; run `quantlab repair` again once it has passed")
    return 0


def _split_long_gaps(store) -> None:
    gaps = store.gaps()
    for g in gaps[gaps["count"] > CHUNK_IDS].itertuples():
        for lo in range(int(g.first_id), int(g.last_id) + 1, CHUNK_IDS):
            store.add_gap(g.symbol, lo, min(lo + CHUNK_IDS - 1, int(g.last_id)), g.reason, permanent=bool(g.permanent))
        store.remove_gap(g.symbol, int(g.first_id), int(g.last_id))


async def _repair(store, rest_url: str) -> tuple[dict[str, _Tally], str]:
    from quantlab.binance.rest import BinanceRest, RestError, RestPaused, RestrictedLocation
    from quantlab.recorder.backfill import fetch_gap, settle

    gaps = store.gaps().sort_values(["symbol", "first_id"])
    tallies: dict[str, _Tally] = {}
    stopped = ""
    async with BinanceRest(rest_url) as rest:
        if await rest.serves_history(str(gaps["symbol"].iloc[0])) is False:
            raise RestError(f"--rest-url {rest_url}: this host does not serve /api/v3/historicalTrades, which "
                            "repair needs; use --rest-url https://api.binance.com")
        for g in gaps.itertuples():
            t = tallies.setdefault(g.symbol, _Tally())
            first, last = int(g.first_id), int(g.last_id)
            t.gaps += 1
            t.missing += last - first + 1
            if stopped:
                t.open += last - first + 1
                continue
            try:
                fill = await fetch_gap(rest, g.symbol, first, last)
            except RestrictedLocation:
                raise
            except RestPaused as exc:
                stopped = str(exc)
                t.open += last - first + 1
                continue
            except (RestError, OSError, ValueError) as exc:
                t.open += last - first + 1
                if isinstance(exc, RestError) and exc.status is None:  # unreachable: stop asking
                    stopped = f"REST unreachable ({exc})"
                else:
                    t.notes.append(str(exc).split(";")[0])
                continue
            t.filled += settle(store, fill)
            t.gone += sum(b - a + 1 for a, b in fill.gone)
            t.open += sum(b - a + 1 for a, b in fill.pending)
    return tallies, stopped
