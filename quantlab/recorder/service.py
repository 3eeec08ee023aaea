"""The recorder: Binance trade stream -> gap repair -> the store, plus live counters and alerts.

One asyncio task reads the stream and sequences trades per symbol; a backfill task per open
gap fetches the missing ids over REST while the trades after the gap are held; a flush loop
appends what is ready every ``flush_interval_s`` (so at most that much is lost to a crash)
and hands each durable batch to the alert service; a status loop publishes the counters as
``<store>/status.json`` for ``quantlab info`` and every notebook.

When Binance says no (see :mod:`quantlab.recorder.backfill` and :mod:`quantlab.binance.rest`):
a gap whose ids the history does not serve yet is retried with delays for up to
``backfill_hold_s`` while its trades are held; after that — or at once during a 418 ban or a
403 firewall pause, when nothing may be sent — it becomes an *open* gap: recorded in the
store (``permanent: false``), the held trades are stored, and a repair task re-attempts it
when the pause ends or its back-off elapses, merges what it gets into the store and drops
the record. Only ids Binance provably no longer has are recorded as permanent gaps. HTTP 451
(restricted location) stops the recorder with one line saying so.

Many symbols: the symbols are split over as many connections as keep each stream URL short
(:func:`~quantlab.binance.protocol.connection_groups`: at most 1024 streams and ~4 kB of URL
each); every connection attempt of every connection goes through one
:class:`~quantlab.binance.stream.ConnectBudget` (Binance: 300 per 5 minutes per IP). Times
come in the unit of ``time_unit`` (µs by default) over both the stream and REST, and the store
notes it per symbol (``TickStore.time_units``).

One writer thread: every table write (appends, flushes, segment seals, gap records, repair
merges) and alert evaluation run in order on one thread fed by the loop
(:meth:`Recorder._submit`), so the loop keeps reading the sockets while HDF5 works. The loop
only drains the sequencers and hands the batches over; the store keeps one writer. Journal
appends run on a thread of their own (below), touching only the journal file.

Durable before visible: each flush cycle writes every symbol's new trades to the store's
write-ahead journal in one write (:mod:`quantlab.store.journal`; fsynced as the store's policy
says) -- from then on they survive a crash and count as stored -- and the HDF5 tables, which
readers see, are written after it within ``apply_budget_s`` of writer time per cycle: first
every table whose rows waited ``visible_interval_s`` (the longest wait), then the others,
oldest first, while the budget lasts. A few symbols are visible every flush; at 300 symbols
the per-table HDF5 cost, not the rows, dominates, and each table is written about once per
``visible_interval_s`` instead of once per flush. A crash loses nothing the journal holds: the next writer replays it.
Trades held behind a gap being backfilled are journaled when they arrive too (the tables take
them once the gap is settled), so a cut whose backfills wait for the REST weight minute does
not delay their durability.

Overflow policy: the stream's queue is bounded and applies back-pressure to the socket
(nothing is dropped in the process); if the exchange cuts a slow reader, the ids it skipped
come back through the normal gap repair.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from quantlab.binance.backoff import backoff_delays
from quantlab.binance.protocol import (
    DEFAULT_TIME_UNIT,
    MAX_URL_CHARS,
    Trade,
    connection_groups,
    trades_to_columns,
)
from quantlab.binance.rest import (
    BinanceRest,
    RestError,
    RestPaused,
    RestrictedLocation,
)
from quantlab.binance.stream import (
    BinanceStream,
    ConnectBudget,
    Connected,
    Disconnected,
    StreamError,
)
from quantlab.errors import UnknownSymbolError
from quantlab.recorder.backfill import GONE_REASON, fetch_gap, settle
from quantlab.recorder.metrics import LatencyWindow, RateMeter
from quantlab.recorder.sequencer import Sequencer
from quantlab.status import write_status
from quantlab.store import TickStore
from quantlab.store.journal import Applied, JournaledTables

if TYPE_CHECKING:
    from quantlab.alerts.service import AlertService

log = logging.getLogger("quantlab.recorder")

#: the ingest loop lets the other tasks run after this many events in a row
YIELD_EVERY = 200


@dataclass
class RecorderConfig:
    store: str | os.PathLike[str]
    symbols: list[str]
    ws_url: str
    rest_url: str
    label: str = "binance"  # what the status shows as the source: binance | demo | a URL
    duration_s: float | None = None
    flush_interval_s: float = 0.25
    status_interval_s: float = 1.0
    #: reconnect a connection that received no frame at all (pings included) for this long;
    #: None: 1.5 x the server's ping interval (Binance pings every 20 s -> 30 s)
    watchdog_s: float | None = None
    #: how long a gap may hold the trades after it while its ids are retried; then it is
    #: recorded as open, the trades are stored and the gap is repaired later
    backfill_hold_s: float = 10.0
    #: longest wait between re-attempts of an open gap
    repair_backoff_cap_s: float = 60.0
    #: larger gaps are recorded open but left to ``quantlab repair``
    max_backfill_ids: int = 5_000_000
    #: passed to BinanceRest (e.g. ``waf_pause_s``)
    rest_options: dict = field(default_factory=dict)
    alerts: bool = True
    #: for symbols with nothing stored yet: start at this trade id (backfilled over REST)
    #: instead of at the first live trade
    start_ids: dict[str, int] = field(default_factory=dict)
    #: extra BinanceStream keywords; a ``connect_budget`` given here is shared by every connection
    stream_options: dict = field(default_factory=dict)
    #: the one time-unit setting for the stream URL (timeUnit=) and REST (X-MBX-TIME-UNIT)
    time_unit: str | None = DEFAULT_TIME_UNIT
    #: longest stream URL of one connection; more symbols open more connections
    max_url_chars: int = MAX_URL_CHARS
    #: what the store must hold: 'binance' (real data), 'demo' (simulated), or
    #: None for another exchange's URL (not checked)
    store_source: str | None = "binance"
    #: futures endpoints per market, ``{"um": (ws route base, REST base)}``; a futures market
    #: missing here gets $QUANTLAB_FUTURES_WS_URL / _REST_URL or Binance's defaults
    futures_urls: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: a futures URL that connects but sends no market data for this long is a failure
    futures_silent_s: float = 5.0
    #: seconds after a funding time before its realised rate is fetched
    funding_delay_s: float = 1.0
    #: spot trades go through the store's write-ahead journal (:mod:`quantlab.store.journal`):
    #: durable after one write per flush for all symbols; False writes each table every flush
    journal: bool = True
    #: journal: a symbol's rows reach its table (and readers) after at most this long ...
    visible_interval_s: float = 1.0
    #: ... within this much writer time per flush cycle (due tables first, then the others
    #: while it lasts, oldest first: a few symbols are visible every flush)
    apply_budget_s: float = 0.2


class Recorder:
    """Run with ``await Recorder(config).run()``; ``stop()`` ends it cleanly (final flush)."""

    def __init__(self, config: RecorderConfig):
        self.cfg = config
        from quantlab.symbols import parse_symbols

        syms = parse_symbols(config.symbols)
        if not syms:
            raise ValueError("symbols: give at least one symbol, e.g. BTCUSDT,ETHUSDT")
        # one recorder, one store writer: spot on one connection, each futures market on its own
        self.symbols = [s.name for s in syms if s.is_spot]
        self.futures: dict[str, list[str]] = {}
        for s in syms:
            if not s.is_spot:
                self.futures.setdefault(s.market, []).append(s.name)
        self.feeds: list = []
        self.store_source = config.store_source
        self.state = "starting"
        self.reason = ""
        self.started_at = pd.Timestamp.now(tz="UTC")
        self._stop = asyncio.Event()
        self._backfills: dict[str, asyncio.Task] = {}
        self.seqs: dict[str, Sequencer] = {}
        self.rates = {s: RateMeter() for s in self.symbols}
        self.rate_all = RateMeter()
        self.lat_exchange = LatencyWindow()
        self.lat_durable = LatencyWindow()
        self.lat_visible = LatencyWindow()
        self.journal: JournaledTables | None = None
        self.last: dict[str, dict] = {}
        self.c = dict.fromkeys(
            ("gaps_repaired", "gaps_unrepaired", "gaps_deferred", "gaps_repaired_later", "backfill_retries",
             "backfilled", "stored", "rejected", "reconnects", "alerts_fired", "alert_errors",
             "journal_writes", "journal_cpu_us", "table_writes", "table_write_cpu_us", "durable"), 0)
        self._open: list[_OpenGap] = []  # open gaps the repair task re-attempts
        self._repair_wake = asyncio.Event()
        self._failure: BaseException | None = None
        self._pause_logged = 0.0  # the pause (its end) already announced in the log
        self.store: TickStore | None = None
        self.stream: BinanceStream | None = None  # the first connection's stream
        self.streams: list[BinanceStream] = []
        self._unit_noted: set[str] = set()
        self.alerts: AlertService | None = None
        #: the one thread that touches the store (and the alert service) while recording
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="quantlab-writer")
        self._inflight: tuple[_FlushJob, Future] | None = None
        #: journal mode: the thread that makes spot trades durable (journal writes only), and
        #: the flush jobs handed to the writer thread that it has not finished yet
        self._journaler = ThreadPoolExecutor(1, thread_name_prefix="quantlab-journal")
        self._queued: list[tuple[_FlushJob, Future]] = []
        self._journaling: _FlushJob | None = None
        #: journal mode: per symbol, the highest held trade id journaled, and the held ids
        #: journaled whose receipt-to-durable latency is counted already
        self._held_mark: dict[str, int] = {}
        self._held_counted: dict[str, set[int]] = {}

    def _open_store(self) -> TickStore:
        """The store ``run()`` opened (every caller runs inside it)."""
        if self.store is None:
            raise RuntimeError("the recorder's store is not open: call run() first")
        return self.store

    # ------------------------------------------------------------------ control
    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        """Record until ``stop()`` or ``duration_s``; returns 0 on a clean stop."""
        return await self._run()

    async def _run(self) -> int:
        cfg = self.cfg
        self.store = TickStore(cfg.store, mode="a", source=self.store_source)
        try:
            if cfg.journal and self.symbols:
                self.journal = JournaledTables(self.store, visible_after_s=cfg.visible_interval_s,
                                               last_ids={s: q.last_id for s, q in self.seqs.items()})
            for s in self.symbols:
                last = self.store.last_trade_id(s)
                if last is None and s in cfg.start_ids:
                    last = int(cfg.start_ids[s]) - 1
                self.seqs[s] = Sequencer(s, last)
            if cfg.alerts and (self.symbols or self.futures):
                from quantlab.alerts.service import AlertService, store_bars_loader

                # pair rules warm up through this writer: no second reader in this process
                self.alerts = AlertService(self.store.path, bars_loader=store_bars_loader(self.store))
            # the constructors validate their URLs: a bad one fails here, before any I/O
            options = dict(cfg.stream_options)
            options.setdefault("connect_budget", ConnectBudget())
            if cfg.watchdog_s is not None:
                options.setdefault("watchdog_s", cfg.watchdog_s)
            groups = connection_groups(cfg.ws_url, self.symbols, time_unit=cfg.time_unit,
                                       max_url_chars=cfg.max_url_chars) if self.symbols else []
            self.streams = [
                BinanceStream(cfg.ws_url, group, rest_url=cfg.rest_url, validate_symbols=False,
                              time_unit=cfg.time_unit, **options)
                for group in groups
            ]
            self.stream = self.streams[0] if self.streams else None
            if len(groups) > 1:
                log.info("%d symbols over %d connections", len(self.symbols), len(groups))
            if self.futures:
                from quantlab.binance.futures import futures_urls
                from quantlab.recorder.futures import FuturesFeed

                for market, names in self.futures.items():
                    ws, rest_base = cfg.futures_urls.get(market) or futures_urls(market)
                    self.feeds.append(FuturesFeed(self, market, names, ws, rest_base,
                                                  silent_s=cfg.futures_silent_s, funding_delay_s=cfg.funding_delay_s))
            if cfg.duration_s is not None:
                asyncio.get_running_loop().call_later(cfg.duration_s, self._stop.set)
            async with BinanceRest(cfg.rest_url, time_unit=cfg.time_unit, **cfg.rest_options) as rest:
                self.rest = rest
                if self.symbols and not await self._validate_symbols(rest):
                    return 0
                await self._check_history_host(rest)
                self._load_open_gaps()
                self.state = "connecting"
                workers = [asyncio.create_task(self._consume(st), name=f"recorder-consume-{i}")
                           for i, st in enumerate(self.streams)]
                workers += [asyncio.create_task(feed.run(self.store), name=f"recorder-{feed.market}")
                            for feed in self.feeds]
                tasks = [
                    *workers,
                    asyncio.create_task(self._flush_loop(), name="recorder-flush"),
                    asyncio.create_task(self._status_loop(), name="recorder-status"),
                    asyncio.create_task(self._repair_loop(), name="recorder-repair"),
                ]
                stop_wait = asyncio.create_task(self._stop.wait())
                done, _ = await asyncio.wait([stop_wait, *workers], return_when=asyncio.FIRST_COMPLETED)
                failure = self._failure
                for t in workers:
                    if t in done and t.exception() is not None:
                        failure = failure or t.exception()
                stop_wait.cancel()
                for st in self.streams:
                    await st.aclose()
                for t in [*tasks, *self._backfills.values()]:
                    t.cancel()
                await asyncio.gather(*tasks, *self._backfills.values(), return_exceptions=True)
                self._finish_inflight()
                self._writer.shutdown(wait=True)  # queued gap records and merges are written
                self._flush()  # the writer thread is done: the rest is written here
                held = sum(s.held for s in self.seqs.values()) + sum(
                    q.held for feed in self.feeds for q in feed.seqs.values())
                if held:
                    log.info("%d trade(s) behind an open gap were not stored; the next run backfills them", held)
                if self._open:
                    log.warning("%d open gap(s) left in %s/gaps.json: the next run or `quantlab repair` "
                                "re-attempts them", len(self._open), self.store.path)
                self.state = "failed" if failure else "stopped"
                for feed in self.feeds:
                    if feed.state != "failed":
                        feed.state = "stopped"
                if failure:
                    self.reason = str(failure)
                    raise failure
                return 0
        finally:
            self._writer.shutdown(wait=True)
            if self.journal is not None:
                try:  # every journaled row into its table now: the final status counts them
                    self.journal.apply_all()
                except Exception:  # noqa: BLE001 - the journal keeps them; the next writer replays it
                    log.exception("journaled trades could not be written to their tables; the next run replays them")
            if self.alerts is not None:
                try:
                    self.alerts.close()
                except Exception:  # noqa: BLE001 - the store must still close; say what failed
                    log.exception("alerts did not close cleanly (history or state may lack the last lines)")
            try:
                write_status(self.store.path, self.status())
            except OSError as exc:  # a full disk or a removed folder: the store must still close
                log.warning("could not write the final status to %s: %s", self.store.path, exc)
            self.store.close()  # journaled rows into their tables, sealed; then the journal goes

    async def _validate_symbols(self, rest: BinanceRest) -> bool:
        """exchangeInfo before connecting: unknown symbols are fatal; an unreachable
        endpoint is retried with backoff (never a busy loop) until it answers or we stop."""
        delays = backoff_delays()
        while not self._stop.is_set():
            try:
                await rest.exchange_info(self.symbols)
                return True
            except (UnknownSymbolError, RestrictedLocation):
                raise
            except RestPaused as exc:
                # a ban may last days: record the stream meanwhile (it is not the REST API)
                log.warning("symbols not checked (%s); recording anyway, gaps stay open until it ends", exc)
                return True
            except Exception as exc:  # noqa: BLE001 - any transport failure is retried
                delay = next(delays)
                self.state, self.reason = "unreachable", f"{self.cfg.rest_url}: {exc}"
                log.warning("cannot reach %s (%s); retrying in %.1fs", self.cfg.rest_url, exc, delay)
                write_status(self._open_store().path, self.status())
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
        return False

    # ------------------------------------------------------------------ ingest
    async def _consume(self, stream: BinanceStream) -> None:
        seqs = self.seqs
        n = 0
        try:
            async for ev in stream:
                n += 1
                if n % YIELD_EVERY == 0:
                    # frames already buffered are returned without a suspension point: after a
                    # backlog this loop would keep every other task waiting until it is read
                    await asyncio.sleep(0)
                if type(ev) is Trade:
                    seq = seqs.get(ev.symbol)
                    if seq is None:
                        continue
                    gap = seq.push(ev)
                    if gap is not None:
                        self._start_backfill(ev.symbol, gap)
                elif type(ev) is Connected:
                    if ev.attempt > 1 and not ev.rotation:
                        self.c["reconnects"] += 1
                    self.state, self.reason = "live", ""
                    log.debug("connected (%s%s)", "rotation" if ev.rotation else f"attempt {ev.attempt}",
                             "" if ev.attempt == 1 else "; gaps will be backfilled")
                elif type(ev) is Disconnected:
                    self.state, self.reason = "reconnecting", ev.reason
                    log.debug("disconnected: %s; reconnecting in %.1fs", ev.reason, ev.retry_in_s)
        except StreamError as exc:
            self.state, self.reason = "failed", str(exc)
            log.error("stream stopped: %s", exc)
            raise

    async def _check_history_host(self, rest: BinanceRest) -> None:
        """Refuse a REST host that does not serve ``historicalTrades`` (e.g. Binance's
        market-data host): gap repair needs it, and nothing else gives every trade by id —
        ``/api/v3/trades`` holds only the last 1000 and ``aggTrades`` merges trades of one
        taker order into one row (their separate quantities are lost)."""
        if not self.symbols:  # futures only: their repair path is /fapi/v1/aggTrades
            return
        if await rest.serves_history(self.symbols[0]) is False:
            raise RestError(
                f"--rest-url {self.cfg.rest_url}: this host does not serve /api/v3/historicalTrades, "
                "which gap repair needs (Binance's market-data host data-api.binance.vision serves only "
                "trades, aggTrades, klines and tickers); use --rest-url https://api.binance.com"
            )

    def _fail(self, exc: BaseException) -> None:
        self.state, self.reason = "failed", str(exc)
        log.error("%s", exc)
        self._failure = self._failure or exc
        self._stop.set()

    def _start_backfill(self, symbol: str, gap: tuple[int, int]) -> None:
        log.debug("%s: ids %d..%d missing (%d); backfilling over REST", symbol, gap[0], gap[1], gap[1] - gap[0] + 1)
        self._backfills[symbol] = asyncio.create_task(self._backfill(symbol, gap), name=f"backfill-{symbol}")

    async def _backfill(self, symbol: str, gap: tuple[int, int] | None) -> None:
        """Repair the open gap while holding the trades after it; see the module doc."""
        seq = self.seqs[symbol]
        hold = self.cfg.backfill_hold_s
        try:
            while gap is not None:
                first, last = gap
                hold_until = time.monotonic() + hold
                delays = backoff_delays(initial_s=0.25, cap_s=2.0)
                whole = True  # every id of this gap stored now
                while gap is not None and first <= gap[0] and gap[1] <= last:
                    a, b = gap
                    if b - a + 1 > self.cfg.max_backfill_ids:
                        gap, whole = self._defer(symbol, a, b, f"gap of {b - a + 1} ids exceeds max_backfill_ids="
                                                 f"{self.cfg.max_backfill_ids}; run `quantlab repair`", auto=False), False
                        continue
                    try:
                        fill = await fetch_gap(self.rest, symbol, a, b, head_id=seq.newest_held)
                    except RestPaused as exc:  # ban or firewall: send nothing, store what is held
                        gap, whole = self._defer(symbol, a, b, str(exc), paused=exc), False
                        continue
                    except RestrictedLocation as exc:
                        self._fail(exc)
                        return
                    except Exception as exc:  # noqa: BLE001 - an outage, a bad reply: retry, then keep it open
                        if time.monotonic() < hold_until:
                            await asyncio.sleep(next(delays))
                            continue
                        gap, whole = self._defer(symbol, a, b, f"REST unavailable: {exc}"), False
                        continue
                    self.c["backfilled"] += len(fill.trades)
                    gap = seq.fill(a, b, fill.trades)
                    while gap is not None and a <= gap[0] and gap[1] <= b and fill.is_gone(gap):
                        self._record_gap(symbol, gap[0], gap[1], GONE_REASON)
                        gap, whole = seq.give_up(*gap), False
                    if gap is not None and a <= gap[0] and gap[1] <= b:  # not served yet
                        if time.monotonic() < hold_until:
                            self.c["backfill_retries"] += 1
                            await asyncio.sleep(next(delays))
                        else:
                            gap, whole = self._defer(symbol, gap[0], gap[1],
                                                     "not served yet after "
                                                     f"{hold:g} s (Binance's trade history lags)"), False
                if whole:
                    self.c["gaps_repaired"] += 1
                    log.debug("%s: gap %d..%d repaired", symbol, first, last)
        finally:
            if self._backfills.get(symbol) is asyncio.current_task():
                self._backfills.pop(symbol, None)

    def _defer(self, symbol: str, first: int, last: int, reason: str, *, auto: bool = True,
               paused: RestPaused | None = None):
        """Record ``first..last`` as an open gap, store the held trades, repair it later."""
        self.c["gaps_deferred"] += 1
        if paused is not None and paused.until == self._pause_logged:
            log.debug("%s: ids %d..%d kept open (REST paused); repaired later", symbol, first, last)
        else:
            if paused is not None:  # once per ban or firewall pause, not once per gap
                self._pause_logged = paused.until
                reason_log = f"{reason}; every gap meanwhile stays open"
            else:
                reason_log = reason
            log.warning("%s: ids %d..%d kept open (%s); repaired later", symbol, first, last, reason_log)
        self._submit(self._open_store().add_gap, symbol, first, last, reason, permanent=False)
        if auto:
            self._open.append(_OpenGap(symbol, first, last, self._repair_delays()))
            self._repair_wake.set()
        return self.seqs[symbol].give_up(first, last)

    def _repair_delays(self):
        return backoff_delays(initial_s=0.5, cap_s=max(0.5, self.cfg.repair_backoff_cap_s))

    def _load_open_gaps(self) -> None:
        """Open gaps a previous run left (e.g. stopped during a ban) are re-attempted too."""
        gaps = self._open_store().gaps()
        for g in gaps[~gaps["permanent"]].itertuples():
            if g.symbol in self.seqs and g.count <= self.cfg.max_backfill_ids:
                self._open.append(_OpenGap(g.symbol, int(g.first_id), int(g.last_id), self._repair_delays()))
        if self._open:
            log.info("%d open gap(s) from an earlier run will be re-attempted", len(self._open))
            self._repair_wake.set()

    async def _repair_loop(self) -> None:
        """Re-attempt open gaps: never during a ban or firewall pause, each with its own
        back-off while the history does not serve it yet; merge what arrives into the store."""
        while True:
            if not self._open:
                self._repair_wake.clear()
                await self._repair_wake.wait()
                continue
            pause = self.rest.pause_left()
            if pause > 0:
                await asyncio.sleep(pause + 0.01)
                continue
            og = min(self._open, key=lambda g: g.next_at)
            wait = og.next_at - time.monotonic()
            if wait > 0:
                self._repair_wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._repair_wake.wait(), wait)
                continue
            seq = self.seqs[og.symbol]
            try:
                fill = await fetch_gap(self.rest, og.symbol, og.first, og.last, head_id=seq.last_id)
            except RestPaused:
                continue
            except RestrictedLocation as exc:
                self._fail(exc)
                return
            except Exception as exc:  # noqa: BLE001 - an outage, a bad reply: try again later
                og.next_at = time.monotonic() + next(og.delays)
                log.info("%s: open gap %d..%d not repaired yet (%s)", og.symbol, og.first, og.last, exc)
                continue
            self._open.remove(og)
            added = await asyncio.shield(asyncio.wrap_future(self._submit(
                self._settle, fill, pending_reason="not served yet (Binance's trade history lags)")))
            self.c["backfilled"] += added
            for a, b in fill.gone:
                self.c["gaps_unrepaired"] += 1
                log.error("%s: ids %d..%d are gone (%s); recorded as a gap", og.symbol, a, b, GONE_REASON)
            for a, b in fill.pending:
                nxt = _OpenGap(og.symbol, a, b, og.delays)
                nxt.next_at = time.monotonic() + next(og.delays)
                self._open.append(nxt)
            if fill.complete:
                self.c["gaps_repaired_later"] += 1
                log.info("%s: open gap %d..%d repaired (%d trades merged into the store)",
                         og.symbol, og.first, og.last, added)

    async def _fetch_range(self, symbol: str, first: int, last: int) -> list:
        """The ids ``first..last`` over REST (spot: trades by trade id)."""
        return await self.rest.fetch_trade_range(symbol, first, last)

    def _store_symbol(self, symbol: str) -> str:
        """The store's name of a stream symbol (spot: the same)."""
        return symbol

    def _record_gap(self, symbol: str, first: int, last: int, reason: str) -> None:
        self.c["gaps_unrepaired"] += 1
        log.error("%s: ids %d..%d could not be backfilled (%s); recorded as a gap",
                  self._store_symbol(symbol), first, last, reason)
        self._submit(self._open_store().add_gap, self._store_symbol(symbol), first, last, reason, permanent=True)

    def _settle(self, fill, **kwargs) -> int:
        """Writer thread: merge a repaired gap, after the symbol's journaled rows reached its
        table (a table takes its rows in order)."""
        if getattr(self, "owner", self) is self and self.journal is not None:
            self.journal.apply_table(fill.symbol)
        return settle(self._open_store(), fill, **kwargs)

    def _submit(self, fn, *args, **kwargs) -> Future:
        """Run ``fn`` on the writer thread, after every store write submitted before it (a gap
        is recorded before the trades it releases are appended); a failure is logged."""
        owner = getattr(self, "owner", self)  # a futures feed writes through its recorder's thread
        fut = owner._writer.submit(fn, *args, **kwargs)
        fut.add_done_callback(_log_failure)
        return fut

    # ------------------------------------------------------------------ storage
    async def _flush_loop(self) -> None:
        """Every ``flush_interval_s``, one flush step (journal mode or table mode); a step that
        took long eats into the wait, so receipt-to-durable stays near the interval."""
        loop = asyncio.get_running_loop()
        step = self._journal_step if self.journal is not None else self._table_step
        took = 0.0
        while True:
            await asyncio.sleep(max(0.01, self.cfg.flush_interval_s - took))
            t0 = loop.time()
            await step(loop)
            took = loop.time() - t0

    async def _table_step(self, loop: asyncio.AbstractEventLoop) -> None:
        """Table mode: the writer thread stores the drained trades in their tables; they are
        durable (and counted) when it returns."""
        job = self._prepare_flush()
        fut = self._writer.submit(job.write)
        self._inflight = (job, fut)
        # shielded: a stop while the writer works must not drop the drained trades
        result = await asyncio.shield(asyncio.wrap_future(fut))
        self._inflight = None
        self._account_flush(job, result)

    async def _journal_step(self, loop: asyncio.AbstractEventLoop) -> None:
        """Journal mode: the spot trades ready go to the journal on their own thread (durable
        and counted when it returns), then the rest of the flush (time-unit notes, futures
        rows, alerts, table writes) is queued for the writer thread without waiting for it: a
        slow table write or disk never delays durability."""
        job = self._prepare_flush()
        if job.batches or job.held:
            # shielded: a stop while the journal writes must not drop the drained trades
            self._journaling = job
            await asyncio.shield(asyncio.wrap_future(self._journaler.submit(job.make_durable)))
            self._journaling = None
            self._account_durable(job)
        if self.feeds or len(self._queued) < 2 or job.batches:
            fut = self._writer.submit(job.write)
            self._queued.append((job, fut))
            fut.add_done_callback(lambda _f: loop.call_soon_threadsafe(self._account_written))

    def _account_written(self, wait: bool = False) -> None:
        """On the loop: count the queued writer jobs that finished, in order (``wait``: all)."""
        while self._queued and (wait or self._queued[0][1].done()):
            job, fut = self._queued.pop(0)
            try:
                result = fut.result()
            except Exception:  # noqa: BLE001 - logged by the writer; the journal still holds the rows
                log.exception("a flush job failed on the writer thread")
                continue
            self._account_flush(job, result)

    def _finish_inflight(self) -> None:
        """At stop: wait for the flush the writer thread is doing and count what it stored."""
        if self.journal is not None:
            self._journaler.shutdown(wait=True)  # the journal write in progress, if any, ends
            job, self._journaling = self._journaling, None
            if job is not None:  # journaled, but the stop came before it was counted
                self._account_durable(job)
                self._queued.append((job, self._writer.submit(job.write)))
            self._account_written(wait=True)
        if self._inflight is None:
            return
        job, fut = self._inflight
        self._inflight = None
        try:
            self._account_flush(job, fut.result())
        except Exception:  # noqa: BLE001 - logged by _log_failure; the store closes anyway
            log.exception("the last flush failed")

    def _flush(self) -> None:
        """Flush synchronously on the calling thread (at stop, once the writer thread is done)."""
        job = self._prepare_flush()
        if self.journal is not None and (job.batches or job.held):
            job.make_durable()
            self._account_durable(job)
        self._account_flush(job, job.write())

    def _prepare_flush(self) -> _FlushJob:
        """On the loop: drain what every sequencer has ready (cheap; no I/O). Journal mode:
        also the trades held behind a gap that were not journaled yet (durable now, stored
        in their table once the gap is settled)."""
        batches, held = [], []
        for symbol, seq in self.seqs.items():
            ready = seq.drain()
            if ready:
                batches.append((symbol, trades_to_columns(ready)))
            if self.journal is not None and seq.held:
                new = seq.held_after(self._held_mark.get(symbol))
                if new:
                    held.append((symbol, trades_to_columns(new)))
                    self._held_mark[symbol] = max(t.trade_id for t in new)
        job = _FlushJob(self, batches, [feed.prepare_flush() for feed in self.feeds])
        job.held = held
        return job

    def _account_flush(self, job: _FlushJob, result: _FlushResult) -> None:
        """On the loop: counters, rates and latencies of a flush the writer finished."""
        for feed, prepared, added in zip(self.feeds, job.feeds, result.feeds, strict=True):
            feed.account_flush(prepared, added)
        if result.applied is not None and len(result.applied.visible_ns):
            self.lat_visible.add(result.applied.visible_ns)
        if self.journal is not None:
            self.c["stored"] = self.journal.rows_applied
        if result.applied is not None:
            self.c["table_writes"] += result.applied.tables
            self.c["table_write_cpu_us"] += int(result.applied.cpu_s * 1e6)
        self.c["alerts_fired"] += result.alerts_fired
        self.c["alert_errors"] += result.alert_errors
        if not job.batches or job.added is not None:  # journaled: counted when durable
            return
        self._account_durable(job, result.added, result.durable_ns)

    def _account_durable(self, job: _FlushJob, added: list[int] | None = None, durable_ns: int | None = None) -> None:
        """On the loop: counters, rates and receipt-to-durable latency of spot trades stored."""
        added = job.added if added is None else added
        if added is None:
            raise RuntimeError("a flush was counted before its trades were stored")
        durable_ns = job.durable_ns if durable_ns is None else durable_ns
        if job.added is not None:
            self.c["journal_writes"] += 1
            self.c["journal_cpu_us"] += int(job.journal_cpu_s * 1e6)
        for symbol, cols in job.held:  # durable from now on: their latency ends here
            self.lat_durable.add(durable_ns - cols["recv_time"])
            self._held_counted.setdefault(symbol, set()).update(cols["trade_id"].tolist())
        if not job.batches:
            return
        recv = []
        for symbol, cols in job.batches:
            counted = self._held_counted.get(symbol)
            if counted:  # journaled while held: counted then, not again
                ids = cols["trade_id"]
                done = np.isin(ids, np.fromiter(counted, dtype=np.int64, count=len(counted)))
                counted.difference_update(ids[done].tolist())
                recv.append(cols["recv_time"][~done])
            else:
                recv.append(cols["recv_time"])
        self.lat_durable.add(durable_ns - np.concatenate(recv))
        recv_all = np.concatenate([cols["recv_time"] for _, cols in job.batches])
        ev = np.concatenate([cols["event_time"] for _, cols in job.batches])
        live = ev != np.iinfo(np.int64).min
        self.lat_exchange.add(recv_all[live] - ev[live])
        for (symbol, cols), n in zip(job.batches, added, strict=True):
            self._account(symbol, cols, n)

    def _account(self, symbol: str, cols: dict[str, np.ndarray], added: int) -> None:
        # journal mode: durable now, "stored" (what readers see) once written to the table
        self.c["stored" if self.journal is None else "durable"] += added
        self.c["rejected"] += len(cols["trade_id"]) - added
        self.rates[symbol].add(added)
        self.rate_all.add(added)
        self.last[symbol] = {
            "last_price": float(cols["price"][-1]),
            "last_trade_time_ns": int(cols["time"][-1]),
            "last_id": int(cols["trade_id"][-1]),
        }

    # ------------------------------------------------------------------ status
    async def _status_loop(self) -> None:
        while True:
            write_status(self._open_store().path, self.status())
            await asyncio.sleep(self.cfg.status_interval_s)

    def _last_status(self, symbol: str) -> dict:
        last = self.last.get(symbol)
        if last is None:
            return {}
        return {"last_price": last["last_price"],
                "last_trade_time": pd.Timestamp(last["last_trade_time_ns"], tz="UTC").isoformat(),
                "last_id": last["last_id"]}

    def stream_counters(self) -> dict[str, int]:
        """The counters of every connection's stream, summed."""
        total: dict[str, int] = {}
        for st in self.streams:
            for k, v in st.counters.items():
                total[k] = total.get(k, 0) + v
        return total

    def status(self) -> dict:
        sc = self.stream_counters()
        now = pd.Timestamp.now(tz="UTC")
        if self.journal is not None:
            self.c["stored"] = self.journal.rows_applied
        return {
            "pid": os.getpid(),
            "source": self.cfg.label,
            "ws_url": self.cfg.ws_url,
            "rest_url": self.cfg.rest_url,
            "symbols": [*self.symbols, *(q for f in self.feeds for q in f.status()["symbols"])],
            "state": self._overall_state(),
            "reason": self.reason or next((f.reason for f in self.feeds if f.reason), ""),
            "started_at": self.started_at.isoformat(),
            "updated_at": now.isoformat(),
            "updated_ns": now.value,
            "ticks_total": self.c["stored"],  # in the tables: what readers see
            # journal mode: durable (journaled), some not in their tables yet
            "ticks_durable": self.c["durable"] if self.journal is not None else self.c["stored"],
            "ticks_per_s": self.rate_all.rate(),
            "per_symbol": {
                **{s: {"ticks": self.rates[s].total, "ticks_per_s": self.rates[s].rate(),
                       "held": self.seqs[s].held if s in self.seqs else 0, **self._last_status(s)}
                   for s in self.symbols},
                **{q: v for f in self.feeds for q, v in f.per_symbol().items()},
            },
            "futures": {f.market: f.status() for f in self.feeds},
            "marks_stored": self.c.get("marks_stored", 0),
            "funding_stored": self.c.get("funding_stored", 0),
            "reconnects": self.c["reconnects"],
            "gaps_repaired": self.c["gaps_repaired"],
            "gaps_unrepaired": self.c["gaps_unrepaired"],
            "gaps_open": len(self._open),
            "gaps_repaired_later": self.c["gaps_repaired_later"],
            "rest_paused_s": round(self.rest.pause_left(), 1) if getattr(self, "rest", None) else 0.0,
            "backfilled": self.c["backfilled"],
            "rejected": self.c["rejected"],
            "duplicates": sc.get("duplicates", 0) + sum(s.duplicates for s in self.seqs.values())
            + sum(f.status()["duplicates"] for f in self.feeds),
            "malformed": sc.get("malformed", 0) + sum(f.status()["malformed"] for f in self.feeds),
            "messages": sc.get("messages", 0) + sum(f.status()["messages"] for f in self.feeds),
            "latency_ms": {"exchange_to_recv": self.lat_exchange.percentiles_ms(),
                           "recv_to_durable": self.lat_durable.percentiles_ms(),
                           # journaled: durable first, visible to readers when the table is written
                           "recv_to_visible": (self.lat_visible if self.journal is not None
                                               else self.lat_durable).percentiles_ms()},
            "journal": self._journal_status(),
            "alerts_fired": self.c["alerts_fired"],
            "alert_errors": self.c["alert_errors"],
        }


    def _journal_status(self) -> dict:
        """Rows waiting for their tables, and the CPU (of its own thread) that one journal
        write (every symbol, one flush cycle) and one table write (one symbol) cost on average:
        figures a busy machine does not inflate the way it does wall times."""
        if self.journal is None:
            return {}
        c = self.c
        return {"pending_rows": self.journal.pending_rows(),
                "journal_write_cpu_ms": round(c["journal_cpu_us"] / max(c["journal_writes"], 1) / 1e3, 3),
                "table_write_cpu_ms": round(c["table_write_cpu_us"] / max(c["table_writes"], 1) / 1e3, 3),
                "table_writes": c["table_writes"], "journal_writes": c["journal_writes"]}

    def _overall_state(self) -> str:
        """The spot state, or the worst futures state when one failed or no spot is recorded."""
        states = ([self.state] if self.symbols or not self.feeds else []) + [f.state for f in self.feeds]
        for s in ("failed", "unreachable", "reconnecting", "connecting", "starting"):
            if s in states:
                return s
        return states[0] if states else self.state


@dataclass
class _FlushResult:
    added: list[int]  # rows stored per spot batch
    durable_ns: int = 0
    feeds: list = field(default_factory=list)  # per futures feed: what it stored
    alerts_fired: int = 0
    alert_errors: int = 0
    applied: Applied | None = None  # journaled rows this cycle wrote to their tables


@dataclass
class _FlushJob:
    """What one flush writes: drained on the loop, written by :meth:`write` on the writer thread.

    Spot trades go to the store's journal with one write for every symbol: durable (and
    counted) on return. Futures rows are appended, then one store flush makes them durable and
    visible (only tables that received rows are flushed). Then the durable rows go to the alert
    rules, which never stop ingestion; last, the journal writes tables within
    ``apply_budget_s`` (what readers see): those whose rows waited ``visible_interval_s``
    first, then the others while the budget lasts. Without the journal
    (``RecorderConfig.journal=False``) spot trades are appended and flushed like futures rows.
    """

    rec: Recorder
    batches: list[tuple[str, dict[str, np.ndarray]]]
    feeds: list
    added: list[int] | None = None  # journal mode: new rows per batch, once journaled
    durable_ns: int = 0
    journal_cpu_s: float = 0.0
    held: list = field(default_factory=list)  # journal mode: held trades journaled, not stored

    def make_durable(self) -> None:
        """Journal mode, on the journal thread: the spot batches to the journal (durable)."""
        c0 = time.thread_time()
        journal = self.rec.journal
        if journal is None:
            raise RuntimeError("make_durable: the recorder has no journal (RecorderConfig.journal=False)")
        self.added = journal.journal(self.batches, self.held)
        self.durable_ns = time.time_ns()
        self.journal_cpu_s = time.thread_time() - c0

    def write(self) -> _FlushResult:
        rec, store = self.rec, self.rec._open_store()
        res = _FlushResult([], feeds=[feed.write_flush(p) for feed, p in zip(rec.feeds, self.feeds, strict=True)])
        for symbol, cols in self.batches:
            if symbol not in rec._unit_noted:
                store.note_time_unit(symbol, rec.cfg.time_unit or "MILLISECOND", int(cols["trade_id"][0]))
                rec._unit_noted.add(symbol)
        if self.added is not None:  # journaled already (durable); their tables are written below
            res.added, res.durable_ns = self.added, self.durable_ns
        else:
            res.added = [store.append(symbol, cols, flush=False) for symbol, cols in self.batches]
        if (self.batches and self.added is None) or any(res.feeds):
            store.flush()  # durable and visible on return
        if self.added is None:
            res.durable_ns = time.time_ns()
        if rec.alerts is not None:
            stored = [(symbol, cols) for (symbol, cols), added in zip(self.batches, res.added, strict=True)
                      if added]
            for feed, prepared, added in zip(rec.feeds, self.feeds, res.feeds, strict=True):
                stored += feed.stored_trades(prepared, added)  # perps: their aggregate trades
            for symbol, cols in stored:
                if not rec.alerts.engine.watches(symbol):
                    continue
                try:
                    res.alerts_fired += len(rec.alerts.process_trades(symbol, pd.DataFrame(cols)))
                except Exception:  # noqa: BLE001 - alerts never stop ingestion
                    res.alert_errors += 1
                    log.exception("alert evaluation failed for %s", symbol)
            try:
                rec.alerts.poll_rules()
            except Exception:  # noqa: BLE001 - alerts never stop ingestion
                res.alert_errors += 1
                log.exception("alert rules could not be reloaded")
        if rec.journal is not None:
            # behind (jobs queued): catch up on the queue first, tables get a short slice
            budget = rec.cfg.apply_budget_s if len(rec._queued) <= 1 else rec.cfg.apply_budget_s / 10
            res.applied = rec.journal.apply(budget)
        return res


def _log_failure(fut: Future) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.error("store write failed: %s", fut.exception(), exc_info=fut.exception())


@dataclass
class _OpenGap:
    """An open gap the repair task re-attempts, with its own back-off."""

    symbol: str
    first: int
    last: int
    delays: Iterator[float]
    next_at: float = 0.0


def recorder_alive(store_dir: str | os.PathLike[str]) -> int | None:
    """Pid of the recorder writing ``store_dir``, or None (the writer lock tells)."""
    from quantlab.store import writer_pid

    return writer_pid(Path(store_dir))
