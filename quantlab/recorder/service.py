"""The recorder: Binance trade stream -> gap repair -> the store, plus live counters and alerts.

One asyncio task reads the stream and sequences trades per symbol; a backfill task per open
gap fetches the missing ids over REST while the trades after the gap are held; a flush loop
appends what is ready every ``flush_interval_s`` (so at most that much is lost to a crash)
and hands each durable batch to the alert service; a status loop publishes the counters as
``<store>/status.json`` for ``quantlab info`` and every notebook.

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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from quantlab.binance.backoff import backoff_delays
from quantlab.binance.protocol import Trade, trades_to_frame
from quantlab.binance.rest import BinanceRest, RateLimitBanned
from quantlab.binance.stream import BinanceStream, Connected, Disconnected, StreamError
from quantlab.errors import UnknownSymbolError
from quantlab.recorder.metrics import LatencyWindow, RateMeter
from quantlab.recorder.sequencer import Sequencer
from quantlab.status import write_status
from quantlab.store import TickStore

log = logging.getLogger("quantlab.recorder")


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
    watchdog_s: float = 10.0
    backfill_attempts: int = 6
    max_backfill_ids: int = 5_000_000
    alerts: bool = True
    #: for symbols with nothing stored yet: start at this trade id (backfilled over REST)
    #: instead of at the first live trade
    start_ids: dict[str, int] = field(default_factory=dict)
    stream_options: dict = field(default_factory=dict)
    #: run the exchange simulator inside this process and record from it ("demo" source);
    #: the value is its synthetic trade rate in trades/s
    demo_rate: float | None = None
    #: what the store must hold: 'binance' (real data), 'demo' (forced with demo_rate), or
    #: None for another exchange's URL (not checked)
    store_source: str | None = "binance"
    #: futures endpoints per market, ``{"um": (ws route base, REST base)}``; a futures market
    #: missing here gets $QUANTLAB_FUTURES_WS_URL / _REST_URL or Binance's defaults
    futures_urls: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: a futures URL that connects but sends no market data for this long is a failure
    futures_silent_s: float = 5.0
    #: seconds after a funding time before its realised rate is fetched
    funding_delay_s: float = 1.0
    #: demo mode: seconds between simulated funding settlements
    demo_funding_interval_s: float = 8.0


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
        self.store_source = "demo" if config.demo_rate is not None else config.store_source
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
        self.last: dict[str, dict] = {}
        self.c = dict.fromkeys(
            ("gaps_repaired", "gaps_unrepaired", "backfilled", "stored", "rejected",
             "reconnects", "alerts_fired", "alert_errors"), 0)
        self.store: TickStore | None = None
        self.stream: BinanceStream | None = None
        self.alerts = None

    # ------------------------------------------------------------------ control
    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        """Record until ``stop()`` or ``duration_s``; returns 0 on a clean stop."""
        if self.cfg.demo_rate is None:
            return await self._run()
        from quantlab.sim import Exchange, Synthetic
        from quantlab.store.tickstore import check_source

        check_source(self.cfg.store, "demo")  # never continue a real store's ids with simulated trades
        last_ids, prices, agg_ids = {}, {}, {}
        with contextlib.suppress(Exception):  # a new or empty store: start from the defaults
            probe = TickStore(self.cfg.store)
            info = probe.info()
            aggs = info[info["kind"] == "aggtrades"].set_index("symbol")
            info = info[info["kind"] == "trades"].set_index("symbol")
            last_ids = {s: int(info.loc[s, "last_id"]) for s in self.symbols if s in info.index}
            prices = {s: float(info.loc[s, "last_price"]) for s in self.symbols if s in info.index}
            agg_ids = {s: int(aggs.loc[s, "last_id"]) + 1 for s in aggs.index}
            probe.close()
        if self.futures:
            return await self._run_futures_demo(agg_ids)
        # continue the store's ids and prices: no gap or jump between demo runs
        source = Synthetic(self.symbols, rate=self.cfg.demo_rate, seed=int(time.time()),
                           prices=prices if len(prices) == len(self.symbols) else None)
        for s, last in last_ids.items():
            source.first_ids[s] = last + 1
        async with Exchange(source) as ex:
            self.cfg.ws_url, self.cfg.rest_url = ex.ws_url, ex.rest_url
            log.info("demo: %s on %s", source.describe(), ex.ws_url)
            return await self._run()

    async def _run_futures_demo(self, agg_ids: dict[str, int]) -> int:
        """Demo mode with futures symbols: a spot and a USD-M simulator in this process."""
        from quantlab.sim import Exchange, Synthetic
        from quantlab.sim.futures import FuturesExchange

        if set(self.futures) != {"um"}:
            raise ValueError("symbols: the demo source simulates spot and USD-M (um:) symbols only")
        seed = int(time.time())
        names = self.futures["um"]
        fut = FuturesExchange(
            Synthetic(names, rate=self.cfg.demo_rate, seed=seed + 1),
            funding_interval=self.cfg.demo_funding_interval_s,
            agg_first_ids={n: agg_ids[f"um:{n}"] for n in names if f"um:{n}" in agg_ids})
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(fut)
            self.cfg.futures_urls = {"um": (fut.ws_url, fut.rest_url)}
            if self.symbols:
                ex = await stack.enter_async_context(Exchange(Synthetic(self.symbols, rate=self.cfg.demo_rate, seed=seed)))
                self.cfg.ws_url, self.cfg.rest_url = ex.ws_url, ex.rest_url
            return await self._run()

    async def _run(self) -> int:
        cfg = self.cfg
        self.store = TickStore(cfg.store, mode="a", source=self.store_source)
        try:
            for s in self.symbols:
                last = self.store.last_trade_id(s)
                if last is None and s in cfg.start_ids:
                    last = int(cfg.start_ids[s]) - 1
                self.seqs[s] = Sequencer(s, last)
            if cfg.alerts and self.symbols:
                from quantlab.alerts import AlertService

                self.alerts = AlertService(self.store.path)
            # the constructors validate their URLs: a bad one fails here, before any I/O
            if self.symbols:
                self.stream = BinanceStream(
                    cfg.ws_url, self.symbols, rest_url=cfg.rest_url, validate_symbols=False,
                    watchdog_s=cfg.watchdog_s, **cfg.stream_options,
                )
            if self.futures:
                from quantlab.binance.futures import futures_urls
                from quantlab.recorder.futures import FuturesFeed

                for market, names in self.futures.items():
                    ws, rest_base = cfg.futures_urls.get(market) or futures_urls(market)
                    self.feeds.append(FuturesFeed(self, market, names, ws, rest_base,
                                                  silent_s=cfg.futures_silent_s, funding_delay_s=cfg.funding_delay_s))
            if cfg.duration_s is not None:
                asyncio.get_running_loop().call_later(cfg.duration_s, self._stop.set)
            async with BinanceRest(cfg.rest_url) as rest:
                self.rest = rest
                if self.symbols and not await self._validate_symbols(rest):
                    return 0
                self.state = "connecting"
                workers = [asyncio.create_task(feed.run(self.store), name=f"recorder-{feed.market}")
                           for feed in self.feeds]
                if self.symbols:
                    workers.insert(0, asyncio.create_task(self._consume(), name="recorder-consume"))
                tasks = [
                    *workers,
                    asyncio.create_task(self._flush_loop(), name="recorder-flush"),
                    asyncio.create_task(self._status_loop(), name="recorder-status"),
                ]
                stop_wait = asyncio.create_task(self._stop.wait())
                done, _ = await asyncio.wait([stop_wait, *workers], return_when=asyncio.FIRST_COMPLETED)
                failure = None
                for t in workers:
                    if t in done and t.exception() is not None:
                        failure = failure or t.exception()
                stop_wait.cancel()
                if self.stream is not None:
                    await self.stream.aclose()
                for t in [*tasks, *self._backfills.values()]:
                    t.cancel()
                await asyncio.gather(*tasks, *self._backfills.values(), return_exceptions=True)
                self._flush()
                held = sum(s.held for s in self.seqs.values()) + sum(
                    q.held for feed in self.feeds for q in feed.seqs.values())
                if held:
                    log.info("%d trade(s) behind an open gap were not stored; the next run backfills them", held)
                self.state = "failed" if failure else "stopped"
                for feed in self.feeds:
                    if feed.state != "failed":
                        feed.state = "stopped"
                if failure:
                    self.reason = str(failure)
                    raise failure
                return 0
        finally:
            if self.alerts is not None:
                with contextlib.suppress(Exception):
                    self.alerts.close()
            with contextlib.suppress(Exception):
                write_status(self.store.path, self.status())
            self.store.close()

    async def _validate_symbols(self, rest: BinanceRest) -> bool:
        """exchangeInfo before connecting: unknown symbols are fatal; an unreachable
        endpoint is retried with backoff (never a busy loop) until it answers or we stop."""
        delays = backoff_delays()
        while not self._stop.is_set():
            try:
                await rest.exchange_info(self.symbols)
                return True
            except UnknownSymbolError:
                raise
            except Exception as exc:  # noqa: BLE001 - any transport failure is retried
                delay = next(delays)
                self.state, self.reason = "unreachable", f"{self.cfg.rest_url}: {exc}"
                log.warning("cannot reach %s (%s); retrying in %.1fs", self.cfg.rest_url, exc, delay)
                write_status(self.store.path, self.status())
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
        return False

    # ------------------------------------------------------------------ ingest
    async def _consume(self) -> None:
        seqs = self.seqs
        try:
            async for ev in self.stream:
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

    def _start_backfill(self, symbol: str, gap: tuple[int, int]) -> None:
        log.debug("%s: ids %d..%d missing (%d); backfilling over REST", symbol, gap[0], gap[1], gap[1] - gap[0] + 1)
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
        for attempt in range(1, self.cfg.backfill_attempts + 1):
            try:
                return await self._fetch_range(symbol, first, last), ""
            except RateLimitBanned as exc:
                return None, f"REST banned this IP (HTTP 418): {exc}"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - transport errors are retried
                reason = f"REST backfill failed {attempt}x: {exc}"
                delay = next(delays)
                log.warning("%s: backfill of %d..%d failed (%s); retry in %.1fs", symbol, first, last, exc, delay)
                await asyncio.sleep(delay)
        return None, reason

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
        self.store.add_gap(self._store_symbol(symbol), first, last, reason)

    # ------------------------------------------------------------------ storage
    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.flush_interval_s)
            self._flush()
            if self.alerts is not None:
                try:
                    self.alerts.poll_rules()
                except Exception:  # noqa: BLE001 - alerts never stop ingestion
                    self.c["alert_errors"] += 1
                    log.exception("alert rules could not be reloaded")

    def _flush(self) -> None:
        for symbol, seq in self.seqs.items():
            ready = seq.drain()
            if not ready:
                continue
            frame = trades_to_frame(ready)
            added = self.store.append(symbol, frame)  # durable and visible on return
            durable = time.time_ns()
            recv = frame["recv_time"].to_numpy()
            self.lat_durable.add(durable - recv)
            ev = frame["event_time"].to_numpy()
            live = ev != np.iinfo(np.int64).min
            self.lat_exchange.add(recv[live] - ev[live])
            self.c["stored"] += added
            self.c["rejected"] += len(frame) - added
            self.rates[symbol].add(added)
            self.rate_all.add(added)
            self.last[symbol] = {
                "last_price": float(frame["price"].iloc[-1]),
                "last_trade_time": pd.Timestamp(int(frame["time"].iloc[-1]), tz="UTC").isoformat(),
                "last_id": int(frame["trade_id"].iloc[-1]),
            }
            if self.alerts is not None:
                try:
                    self.c["alerts_fired"] += len(self.alerts.process_trades(symbol, frame))
                except Exception:  # noqa: BLE001 - alerts never stop ingestion
                    self.c["alert_errors"] += 1
                    log.exception("alert evaluation failed for %s", symbol)
        for feed in self.feeds:
            feed.flush()

    # ------------------------------------------------------------------ status
    async def _status_loop(self) -> None:
        while True:
            write_status(self.store.path, self.status())
            await asyncio.sleep(self.cfg.status_interval_s)

    def status(self) -> dict:
        sc = self.stream.counters if self.stream is not None else {}
        now = pd.Timestamp.now(tz="UTC")
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
            "ticks_total": self.c["stored"],
            "ticks_per_s": self.rate_all.rate(),
            "per_symbol": {
                **{s: {"ticks": self.rates[s].total, "ticks_per_s": self.rates[s].rate(),
                       "held": self.seqs[s].held if s in self.seqs else 0, **self.last.get(s, {})}
                   for s in self.symbols},
                **{q: v for f in self.feeds for q, v in f.per_symbol().items()},
            },
            "futures": {f.market: f.status() for f in self.feeds},
            "marks_stored": self.c.get("marks_stored", 0),
            "funding_stored": self.c.get("funding_stored", 0),
            "reconnects": self.c["reconnects"],
            "gaps_repaired": self.c["gaps_repaired"],
            "gaps_unrepaired": self.c["gaps_unrepaired"],
            "backfilled": self.c["backfilled"],
            "rejected": self.c["rejected"],
            "duplicates": sc.get("duplicates", 0) + sum(s.duplicates for s in self.seqs.values())
            + sum(f.status()["duplicates"] for f in self.feeds),
            "malformed": sc.get("malformed", 0) + sum(f.status()["malformed"] for f in self.feeds),
            "messages": sc.get("messages", 0) + sum(f.status()["messages"] for f in self.feeds),
            "latency_ms": {"exchange_to_recv": self.lat_exchange.percentiles_ms(),
                           "recv_to_durable": self.lat_durable.percentiles_ms()},
            "alerts_fired": self.c["alerts_fired"],
            "alert_errors": self.c["alert_errors"],
        }


    def _overall_state(self) -> str:
        """The spot state, or the worst futures state when one failed or no spot is recorded."""
        states = ([self.state] if self.symbols or not self.feeds else []) + [f.state for f in self.feeds]
        for s in ("failed", "unreachable", "reconnecting", "connecting", "starting"):
            if s in states:
                return s
        return states[0] if states else self.state


def recorder_alive(store_dir: str | os.PathLike[str]) -> int | None:
    """Pid of the recorder writing ``store_dir``, or None (the writer lock tells)."""
    from quantlab.store import writer_pid

    return writer_pid(Path(store_dir))
