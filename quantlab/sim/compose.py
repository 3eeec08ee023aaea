"""The demo source of ``quantlab record --source demo``: start the simulated exchanges that
continue a demo store's trade ids and prices, and hand back their URLs.

    async with demo_exchanges("data/store-demo", ["BTCUSDT", "um:BTCUSDT"], rate=50) as ep:
        ep.ws_url, ep.rest_url   # the spot simulator ("ws://127.0.0.1:PORT"), None without spot
        ep.futures_urls          # {"um": ("ws://127.0.0.1:PORT/market", "http://127.0.0.1:PORT")}
        ...                      # record from these URLs; the simulators stop on exit

The store is read once, through its public reader (:meth:`TickStore.info`), before anything
starts: no writer, no lock. :func:`store_tail` says what it read (last trade id and price per
spot symbol, next aggregate id per perp), :func:`demo_market` builds the one synthetic market
that continues it, so demo runs join without a gap or a price jump. With ``um:`` symbols one
:class:`~quantlab.sim.sources.Synthetic` feeds a spot and a USD-M simulator
(:func:`~quantlab.sim.demo.market_sources`), so a perp follows its spot with the demo basis;
a perp restarts at its spot's stored price (the basis restarts at zero).

The recorder knows none of this: it records from the URLs it is given.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from quantlab.sim.demo import DEMO_FUNDING_INTERVAL_S
from quantlab.sim.sources import Synthetic
from quantlab.symbols import parse_symbols

__all__ = ["DemoEndpoints", "StoreTail", "store_tail", "demo_market", "demo_exchanges"]

log = logging.getLogger("quantlab.sim.compose")


@dataclass(frozen=True)
class StoreTail:
    """Where a demo store ends: ``last_ids`` of the spot trades (``{"BTCUSDT": 123}``), the
    last ``prices`` of spot trades and perp aggregates (``{"BTCUSDT": 100012.5, "um:BTCUSDT":
    100020.0}``) and the next aggregate id of each perp (``{"um:BTCUSDT": 4567}``). Empty for
    a new or empty store."""

    last_ids: dict[str, int] = field(default_factory=dict)
    prices: dict[str, float] = field(default_factory=dict)
    next_agg_ids: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoEndpoints:
    """The URLs of the running simulators: spot (``ws_url``/``rest_url``, None when no spot
    symbol is simulated) and per futures market ``{"um": (ws route base, REST base)}``."""

    ws_url: str | None
    rest_url: str | None
    futures_urls: dict[str, tuple[str, str]]
    description: str


def store_tail(store: str | os.PathLike[str], symbols: Sequence[str]) -> StoreTail:
    """One read of ``store`` through its public reader (no lock, no writer): where the spot
    trades of ``symbols`` end and which aggregate id each stored perp takes next. A store
    holding real Binance data is refused (``StoreIdentityError``): demo ids never continue it."""
    from quantlab.store import TickStore
    from quantlab.store.tickstore import check_source

    if check_source(store, "demo") is None:  # a new store: the simulators' defaults
        return StoreTail()
    syms = parse_symbols(list(symbols))
    with TickStore(store, source="demo") as reader:
        info = reader.info()  # an empty store has no rows: the defaults too
    trades = info[info["kind"] == "trades"].set_index("symbol")
    aggs = info[info["kind"] == "aggtrades"].set_index("symbol")
    held = [s.name for s in syms if s.is_spot and s.name in trades.index]
    perps = [str(s) for s in syms if not s.is_spot and str(s) in aggs.index]
    return StoreTail(
        last_ids={s: int(trades.loc[s, "last_id"]) for s in held},
        prices={**{s: float(trades.loc[s, "last_price"]) for s in held},
                **{p: float(aggs.loc[p, "last_price"]) for p in perps}},
        next_agg_ids={s: int(aggs.loc[s, "last_id"]) + 1 for s in aggs.index},
    )


def demo_market(symbols: Sequence[str], tail: StoreTail, *, rate: float, seed: int | None = None) -> Synthetic:
    """The synthetic market that continues ``tail``: each spot symbol's ids at its last stored
    id + 1; prices at the stored ones (spot only: all of them or none, so the planted pairs keep
    their relation; a perp at its spot's stored price, or at its own without its spot).
    ``seed``: default the current time, so each run draws new paths."""
    syms = parse_symbols(list(symbols))
    if any(s.market not in ("spot", "um") for s in syms):
        raise ValueError("symbols: the demo source simulates spot and USD-M (um:) symbols only")
    spot = [s.name for s in syms if s.is_spot]
    perps = [str(s) for s in syms if not s.is_spot]
    stored = {s: tail.prices[s] for s in spot if s in tail.prices}
    if perps:
        # a perp restarts at its spot's stored price (the basis restarts at zero), recorded
        # without its spot at its own last price
        for p in perps:
            price = tail.prices.get(p.partition(":")[2] if p.partition(":")[2] in spot else p)
            if price is not None:
                stored[p] = price
        prices = stored or None
    else:
        prices = stored if len(stored) == len(spot) else None
    source = Synthetic([*spot, *perps], rate=rate, seed=int(time.time()) if seed is None else seed,
                       prices=prices)
    for s, last in tail.last_ids.items():
        if s in source.first_ids:
            source.first_ids[s] = last + 1
    return source


@contextlib.asynccontextmanager
async def demo_exchanges(store: str | os.PathLike[str], symbols: Sequence[str], *, rate: float,
                         funding_interval_s: float = DEMO_FUNDING_INTERVAL_S,
                         seed: int | None = None) -> AsyncIterator[DemoEndpoints]:
    """Start the simulators that continue ``store`` (see the module doc) on 127.0.0.1 and
    yield their :class:`DemoEndpoints`; they stop when the block ends. ``rate``: trades/s of
    the whole market; ``funding_interval_s``: seconds between simulated funding settlements."""
    from quantlab.sim.demo import market_sources
    from quantlab.sim.exchange import Exchange
    from quantlab.sim.futures import FuturesExchange

    if not rate > 0:
        raise ValueError(f"rate: {rate!r} must be a positive number of trades per second")
    tail = store_tail(Path(store), symbols)
    source = demo_market(symbols, tail, rate=rate, seed=seed)
    has_spot = any(":" not in s for s in source.symbols)
    has_perps = any(":" in s for s in source.symbols)
    async with contextlib.AsyncExitStack() as stack:
        ws_url = rest_url = None
        futures_urls: dict[str, tuple[str, str]] = {}
        views = market_sources(source) if has_perps else {"spot": source}
        if has_perps:
            fut = await stack.enter_async_context(FuturesExchange(
                views["um"], funding_interval=funding_interval_s,
                agg_first_ids={p.partition(":")[2]: n for p, n in tail.next_agg_ids.items()
                               if p in source.symbols}))
            futures_urls["um"] = (fut.ws_url, fut.rest_url)
        if has_spot:
            ex = await stack.enter_async_context(Exchange(views["spot"]))
            ws_url, rest_url = ex.ws_url, ex.rest_url
        description = source.describe()
        log.info("demo: %s on %s", description, ws_url or futures_urls["um"][0])
        yield DemoEndpoints(ws_url, rest_url, futures_urls, description)
