"""The futures half of the recorder: one connection per futures market (USD-M ``um``, and
COIN-M ``cm`` on the same code), writing into the recorder's store.

What it records, per symbol (stored under ``um:BTCUSDT``, never under the spot name):

* ``aggtrades``: every aggregate trade id exactly once, in id order, through the same
  :class:`~quantlab.recorder.sequencer.Sequencer` and gap repair as spot trades (missing ids
  fetched over ``/fapi/v1/aggTrades?fromId=``, public, weight 20); a restart continues from
  the last stored id and backfills what it missed.
* ``markprice``: each ``@markPrice@1s`` update (mark, index, estimated settle price, funding
  rate, next funding time), keyed by event time.
* ``funding``: realised funding from ``/fapi/v1/fundingRate``, fetched at start (from the last
  stored funding time) and after each funding time the mark-price stream announces (the
  interval is read from the stream: 1 h, 4 h or 8 h per symbol); keyed by funding time, so
  each is stored once.

A market stream that stays silent after connecting is a failure, not an empty recording:
since 2026-04-23 Binance accepts connections and subscriptions on the unrouted
``wss://fstream.binance.com`` but sends market data only on ``/market`` (see
:mod:`quantlab.binance.futures`). With ``@markPrice@1s`` subscribed, a healthy connection
delivers a frame every second, so ``silent_s`` seconds without one on a URL that has never
delivered anything raise :class:`SilentStreamError` with :data:`SILENT_URL_REASON`. A URL that
has delivered before and goes quiet is a stall: the stream's watchdog reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import time
from operator import attrgetter
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from quantlab.binance.backoff import backoff_delays
from quantlab.binance.futures import (
    SILENT_URL_REASON,
    STREAM_KINDS,
    FundingEvent,
    FuturesRest,
    MarkPrice,
    agg_trades_to_batch,
    funding_to_batch,
    mark_price_from_payload,
    marks_to_batch,
)
from quantlab.binance.protocol import AggTrade, ProtocolError, Unknown
from quantlab.binance.rest import RateLimitBanned
from quantlab.binance.stream import BinanceStream, Connected, Disconnected, StreamError
from quantlab.errors import UnknownSymbolError
from quantlab.recorder.metrics import RateMeter
from quantlab.recorder.sequencer import Sequencer
from quantlab.recorder.service import Recorder
from quantlab.symbols import Symbol

if TYPE_CHECKING:
    from quantlab.store import TickStore

log = logging.getLogger("quantlab.recorder.futures")

__all__ = ["FuturesFeed", "SilentStreamError"]

#: Funding rows are looked up this far back when the store holds none for a symbol.
FIRST_FUNDING_LOOKBACK_NS = 8 * 3600 * 10**9


class SilentStreamError(StreamError):
    """Connected, subscribed, and no market data: the wrong (pre-2026) URL."""


class FuturesFeed(Recorder):
    """One futures market's stream, sequencers, gap repair, mark prices and funding.

    Owned by a :class:`~quantlab.recorder.service.Recorder` (shares its store, counters and
    configuration); ``await feed.run()`` until cancelled; ``feed.flush()`` from the owner's
    flush loop. ``names`` are the exchange's names (``BTCUSDT``), stored as ``market:name``.
    """

    rest: FuturesRest  # set by run()

    def __init__(self, owner: Recorder, market: str, names: list[str], ws_url: str, rest_url: str,
                 *, silent_s: float = 5.0, funding_delay_s: float = 1.0) -> None:
        # deliberately not Recorder.__init__: the owner holds the store and the counters
        self.owner = owner
        self.cfg = owner.cfg
        self.market = market
        self.symbols = list(names)
        self.ws_url, self.rest_url = ws_url, rest_url
        self.silent_s = float(silent_s)
        self.funding_delay_s = float(funding_delay_s)
        self.c = owner.c
        for key in ("marks_stored", "funding_stored"):
            self.c.setdefault(key, 0)
        self.state, self.reason = "starting", ""
        self.seqs: dict[str, Sequencer] = {}
        self._backfills: dict[str, asyncio.Task] = {}
        self._funding_tasks: dict[str, asyncio.Task] = {}
        self.rates = {s: RateMeter() for s in self.symbols}
        self.last: dict[str, dict] = {}
        self._marks: dict[str, list[MarkPrice]] = {s: [] for s in self.symbols}
        self._funding: dict[str, list[FundingEvent]] = {s: [] for s in self.symbols}
        self._next_funding: dict[str, int] = {}
        self.market_frames = 0
        self.stream: BinanceStream | None = None
        self.store: TickStore | None = None

    # ------------------------------------------------------------------ names
    def _store_symbol(self, symbol: str) -> str:
        return str(Symbol(self.market, symbol))

    async def _fetch_range(self, symbol: str, first: int, last: int) -> list:
        return await self.rest.fetch_agg_range(symbol, first, last)

    # ------------------------------------------------------------------ gap repair
    # Aggregate ids are served by the public /fapi/v1/aggTrades?fromId= (no lagging history
    # database as on spot): a range the exchange answers without is gone.
    BACKFILL_ATTEMPTS = 5

    def _start_backfill(self, symbol: str, gap: tuple[int, int]) -> None:
        log.debug("%s: ids %d..%d missing (%d); backfilling over REST", self._store_symbol(symbol),
                  gap[0], gap[1], gap[1] - gap[0] + 1)
        self._backfills[symbol] = asyncio.create_task(self._backfill(symbol, gap), name=f"backfill-{symbol}")

    async def _backfill(self, symbol: str, gap: tuple[int, int] | None) -> None:
        seq = self.seqs[symbol]
        while gap is not None:
            first, last = gap
            trades, reason = await self._fetch(symbol, first, last)
            if trades is None:
                self._record_gap(symbol, first, last, reason)
                gap = seq.give_up(first, last)
                continue
            self.c["backfilled"] += len(trades)
            gap = seq.fill(first, last, trades)
            if gap is not None and first <= gap[0] and gap[1] <= last:
                self._record_gap(symbol, gap[0], gap[1], "the exchange no longer has these trades")
                gap = seq.give_up(*gap)
            else:
                self.c["gaps_repaired"] += 1
                log.debug("%s: gap %d..%d repaired (%d trades)", symbol, first, last, len(trades))
        self._backfills.pop(symbol, None)

    async def _fetch(self, symbol: str, first: int, last: int):
        if last - first + 1 > self.cfg.max_backfill_ids:
            return None, f"gap of {last - first + 1} ids exceeds max_backfill_ids={self.cfg.max_backfill_ids}"
        delays = backoff_delays()
        reason = ""
        for attempt in range(1, self.BACKFILL_ATTEMPTS + 1):
            try:
                return await self._fetch_range(symbol, first, last), ""
            except RateLimitBanned as exc:
                return None, f"REST banned this IP (HTTP 418): {exc}"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - transport errors are retried
                reason = f"REST backfill failed {attempt}x: {exc}"
                delay = next(delays)
                log.warning("%s: backfill of %d..%d failed (%s); retry in %.1fs",
                            self._store_symbol(symbol), first, last, exc, delay)
                await asyncio.sleep(delay)
        return None, reason

    # ------------------------------------------------------------------ run
    # the owner's run() runs this on its store: a feed is not a stand-alone Recorder
    async def run(self, store: TickStore) -> None:  # type: ignore[override]
        """Validate the symbols, then record until cancelled; raises StreamError (including
        :class:`SilentStreamError`) or UnknownSymbolError on a fatal failure."""
        self.store = store
        for s in self.symbols:
            self.seqs[s] = Sequencer(s, store.last_trade_id(self._store_symbol(s), kind="aggtrades"),
                                     id_of=attrgetter("agg_id"))
        # USD-M/COIN-M streams document no timeUnit parameter: their times are ms (time_unit=None
        # tells the unit from the magnitude), unlike spot, which is asked for µs
        self.stream = stream = BinanceStream(self.ws_url, self.symbols, kinds=STREAM_KINDS,
                                             validate_symbols=False, watchdog_s=self.cfg.watchdog_s,
                                             time_unit=None, **self.cfg.stream_options)
        async with FuturesRest(self.rest_url, self.market) as rest:
            self.rest = rest
            await self._validate()
            for s in self.symbols:
                self._fetch_funding_later(s, None, delay=0.0)
            self.state = "connecting"
            consume = asyncio.create_task(self._consume(stream), name=f"futures-{self.market}-consume")
            watch = asyncio.create_task(self._watch_silence(), name=f"futures-{self.market}-silence")
            try:
                pending = {consume, watch}
                while consume in pending:  # the watch ends quietly once data has arrived
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for t in done:
                        if (exc := t.exception()) is not None:
                            raise exc
            finally:
                for t in (consume, watch, *self._backfills.values(), *self._funding_tasks.values()):
                    t.cancel()
                await asyncio.gather(consume, watch, *self._backfills.values(), *self._funding_tasks.values(),
                                     return_exceptions=True)
                await stream.aclose()

    async def _validate(self) -> None:
        delays = backoff_delays()
        while True:
            try:
                await self.rest.exchange_info(self.symbols)
                return
            except UnknownSymbolError:
                raise
            except Exception as exc:  # noqa: BLE001 - transport failures are retried
                delay = next(delays)
                self.state, self.reason = "unreachable", f"{self.rest_url}: {exc}"
                log.warning("cannot reach %s (%s); retrying in %.1fs", self.rest_url, exc, delay)
                await asyncio.sleep(delay)

    async def _watch_silence(self) -> None:
        """Fail when the URL never delivers market data within ``silent_s`` of connecting."""
        while self.state not in ("live", "reconnecting"):
            await asyncio.sleep(0.05)
        await asyncio.sleep(self.silent_s)
        if self.market_frames == 0:
            hint = ("; since 2026-04-23 Binance sends aggTrade and markPrice only on the /market route, "
                    "e.g. wss://fstream.binance.com/market") if self.market == "um" else ""
            self.state = "failed"
            self.reason = (f"{self.ws_url}: {SILENT_URL_REASON} (no aggTrade or markPrice frame "
                           f"within {self.silent_s:g} s of connecting{hint})")
            raise SilentStreamError(self.reason)

    async def _consume(self, stream: BinanceStream) -> None:
        seqs = self.seqs
        try:
            async for ev in stream:
                if type(ev) is AggTrade:
                    self.market_frames += 1
                    seq = seqs.get(ev.symbol)
                    if seq is not None:
                        gap = seq.push(ev)
                        if gap is not None:
                            self._start_backfill(ev.symbol, gap)
                elif type(ev) is Unknown:
                    try:
                        mark = mark_price_from_payload(ev.raw, time.time_ns())
                    except ProtocolError as exc:
                        log.debug("skipped a malformed markPriceUpdate: %s", exc)
                        continue
                    if mark is not None and mark.symbol in self._marks:
                        self.market_frames += 1
                        self._on_mark(mark)
                elif type(ev) is Connected:
                    if ev.attempt > 1 and not ev.rotation:
                        self.c["reconnects"] += 1
                    self.state, self.reason = "live", ""
                elif type(ev) is Disconnected:
                    self.state, self.reason = "reconnecting", ev.reason
        except StreamError as exc:
            self.state, self.reason = "failed", str(exc)
            raise

    def _on_mark(self, mark: MarkPrice) -> None:
        self._marks[mark.symbol].append(mark)
        prev = self._next_funding.get(mark.symbol)
        nxt = mark.next_funding_ns
        if nxt:
            if prev is not None and nxt > prev:
                # the funding at ``prev`` has just happened: fetch the realised rate shortly
                self._fetch_funding_later(mark.symbol, prev, delay=self.funding_delay_s)
            self._next_funding[mark.symbol] = nxt

    # ------------------------------------------------------------------ funding
    def _fetch_funding_later(self, symbol: str, due_ns: int | None, delay: float) -> None:
        old = self._funding_tasks.get(symbol)
        if old is not None and not old.done():
            return  # the running fetch starts after the last stored funding: it covers this one
        self._funding_tasks[symbol] = asyncio.create_task(
            self._fetch_funding(symbol, due_ns, delay), name=f"funding-{symbol}")

    def _funding_after(self, symbol: str) -> int | None:
        """Last funding time (ns) stored or pending for ``symbol``."""
        pending = self._funding[symbol]
        if pending:
            return pending[-1].funding_time_ns
        assert self.store is not None  # set by run(), which schedules the funding fetches
        return self.store.last_trade_id(self._store_symbol(symbol), kind="funding")

    async def _fetch_funding(self, symbol: str, due_ns: int | None, delay: float) -> None:
        """Fetch realised funding after the last stored one; retry until ``due_ns`` is in."""
        await asyncio.sleep(delay)
        delays = backoff_delays()
        for _attempt in range(8):
            last = self._funding_after(symbol)
            start_ns = last + 1_000_000 if last is not None else time.time_ns() - FIRST_FUNDING_LOOKBACK_NS
            try:
                events = await self.rest.funding_rate(symbol, start_ms=start_ns // 1_000_000)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - retried; the next funding time retries too
                log.warning("%s: funding fetch failed (%s)", self._store_symbol(symbol), exc)
                events = None
            if events:
                fresh = [e for e in events if last is None or e.funding_time_ns > last]
                self._funding[symbol].extend(fresh)
            got = self._funding_after(symbol)
            # funding times may carry a few ms (calc time): accept one within a second of due
            if due_ns is None or (got is not None and got >= due_ns - 1_000_000_000):
                return
            await asyncio.sleep(min(next(delays), 30.0))
        log.warning("%s: realised funding for %s not published yet; the next funding time retries",
                    self._store_symbol(symbol), pd.Timestamp(due_ns, tz="UTC"))

    # ------------------------------------------------------------------ storage
    def flush(self) -> None:
        """Append what is ready (aggregate trades in id order, marks, funding); durable on return."""
        if self.store is None:
            return
        prepared = self.prepare_flush()
        self.account_flush(prepared, self.write_flush(prepared))

    def prepare_flush(self) -> list:
        """On the loop: take what is ready per symbol (no I/O)."""
        out = []
        for s, seq in self.seqs.items():
            ready = seq.drain()
            marks, self._marks[s] = self._marks[s], []
            funding, self._funding[s] = self._funding[s], []
            if ready or marks or funding:
                out.append((s, ready, marks, funding))
        return out

    def write_flush(self, prepared: list) -> list[tuple[int, int, int]]:
        """On the writer thread: append ``prepared`` (rows added per symbol: trades, marks,
        funding); the caller flushes the store."""
        store, added = self.store, []
        for s, ready, marks, funding in prepared:
            assert store is not None  # what is prepared comes from sequencers run() made on it
            q = self._store_symbol(s)
            added.append((
                store.append(q, agg_trades_to_batch(ready), kind="aggtrades", flush=False) if ready else 0,
                store.append(q, marks_to_batch(marks), kind="markprice", flush=False) if marks else 0,
                store.append(q, funding_to_batch(funding), kind="funding", flush=False) if funding else 0,
            ))
        return added

    def stored_trades(self, prepared: list, added: list[tuple[int, int, int]]) -> list[tuple[str, dict]]:
        """On the writer thread, after :meth:`write_flush`: ``(um:NAME, columns)`` of the
        aggregate trades it stored, for the alert rules (``trade_id`` is the aggregate id,
        ``recv_time`` the local receipt). Rows already stored (``added`` 0) are left out."""
        out = []
        for (s, ready, _marks, _funding), (n_trades, _n_marks, _n_funding) in zip(prepared, added, strict=True):
            if ready and n_trades:
                n = len(ready)
                out.append((self._store_symbol(s), {
                    "trade_id": np.fromiter((a.agg_id for a in ready), np.int64, n),
                    "time": np.fromiter((a.time_ns for a in ready), np.int64, n),
                    "price": np.fromiter((a.price for a in ready), np.float64, n),
                    "recv_time": np.fromiter((a.recv_ns for a in ready), np.int64, n),
                }))
        return out

    def account_flush(self, prepared: list, added: list[tuple[int, int, int]]) -> None:
        """On the loop: counters and the last values of what :meth:`write_flush` stored."""
        for (s, ready, marks, _funding), (n_trades, n_marks, n_funding) in zip(prepared, added, strict=True):
            if ready:
                self.c["stored"] += n_trades
                self.c["rejected"] += len(ready) - n_trades
                self.rates[s].add(n_trades)
                self.owner.rate_all.add(n_trades)
                last = ready[-1]
                # update, not replace: the mark-price fields stay until the next mark
                self.last.setdefault(s, {}).update({
                    "last_price": last.price, "last_id": last.agg_id,
                    "last_trade_time": pd.Timestamp(last.time_ns, tz="UTC").isoformat()})
            if marks:
                self.c["marks_stored"] += n_marks
                m = marks[-1]
                self.last.setdefault(s, {}).update({
                    "mark_price": m.mark_price, "funding_rate": m.funding_rate,
                    "next_funding_time": pd.Timestamp(m.next_funding_ns, tz="UTC").isoformat() if m.next_funding_ns else None,
                })
            self.c["funding_stored"] += n_funding

    def per_symbol(self) -> dict:
        return {self._store_symbol(s): {"ticks": self.rates[s].total, "ticks_per_s": self.rates[s].rate(),
                                        "held": self.seqs[s].held if s in self.seqs else 0, **self.last.get(s, {})}
                for s in self.symbols}

    def status(self) -> dict:
        sc = self.stream.counters if self.stream is not None else {}
        return {"ws_url": self.ws_url, "rest_url": self.rest_url, "state": self.state, "reason": self.reason,
                "symbols": [self._store_symbol(s) for s in self.symbols],
                "duplicates": sc.get("duplicates", 0) + sum(q.duplicates for q in self.seqs.values()),
                "malformed": sc.get("malformed", 0), "messages": sc.get("messages", 0)}

