"""The recorder: Binance trade stream -> gap repair -> the store, plus live counters and alerts.

One asyncio task reads the stream and sequences trades per symbol; a backfill task per open
gap fetches the missing ids over REST while the trades after the gap are held; a flush loop
appends what is ready every ``flush_interval_s`` (so at most that much is lost to a crash)
and hands each durable batch to the alert service; a status loop publishes the counters as
``<store>/status.json`` for ``quantlab info`` and every notebook.

Many symbols: the symbols are split over as many connections as keep each stream URL short
(:func:`~quantlab.binance.protocol.connection_groups`: at most 1024 streams and ~4 kB of URL
each); every connection attempt of every connection goes through one
:class:`~quantlab.binance.stream.ConnectBudget` (Binance: 300 per 5 minutes per IP). Times
come in the unit of ``time_unit`` (µs by default) over both the stream and REST, and the store
notes it per symbol (``TickStore.time_units``).

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
from quantlab.binance.protocol import (
    DEFAULT_TIME_UNIT,
    MAX_URL_CHARS,
    Trade,
    connection_groups,
    trades_to_columns,
)
from quantlab.binance.rest import BinanceRest, RateLimitBanned
from quantlab.binance.stream import (
    BinanceStream,
    ConnectBudget,
    Connected,
    Disconnected,
    StreamError,
)
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
    #: reconnect a connection that received no frame at all (pings included) for this long;
    #: None: 1.5 x the server's ping interval (Binance pings every 20 s -> 30 s)
    watchdog_s: float | None = None
    backfill_attempts: int = 6
    max_backfill_ids: int = 5_000_000
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
    #: run the exchange simulator inside this process and record from it ("demo" source);
    #: the value is its synthetic trade rate in trades/s
    demo_rate: float | None = None


class Recorder:
    """Run with ``await Recorder(config).run()``; ``stop()`` ends it cleanly (final flush)."""

    def __init__(self, config: RecorderConfig):
        self.cfg = config
        self.symbols = [s.upper() for s in config.symbols]
        if not self.symbols:
            raise ValueError("symbols: give at least one symbol, e.g. BTCUSDT,ETHUSDT")
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
        self.stream: BinanceStream | None = None  # the first connection's stream
        self.streams: list[BinanceStream] = []
        self._unit_noted: set[str] = set()
        self.alerts = None

    # ------------------------------------------------------------------ control
    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        """Record until ``stop()`` or ``duration_s``; returns 0 on a clean stop."""
        if self.cfg.demo_rate is None:
            return await self._run()
        from quantlab.sim import Exchange, Synthetic

        last_ids, prices = {}, {}
        with contextlib.suppress(Exception):  # a new or empty store: start from the defaults
            probe = TickStore(self.cfg.store)
            info = probe.info()
            info = info[info["kind"] == "trades"].set_index("symbol")
            last_ids = {s: int(info.loc[s, "last_id"]) for s in self.symbols if s in info.index}
            prices = {s: float(info.loc[s, "last_price"]) for s in self.symbols if s in info.index}
            probe.close()
        # continue the store's ids and prices: no gap or jump between demo runs
        source = Synthetic(self.symbols, rate=self.cfg.demo_rate, seed=int(time.time()),
                           prices=prices if len(prices) == len(self.symbols) else None)
        for s, last in last_ids.items():
            source.first_ids[s] = last + 1
        async with Exchange(source) as ex:
            self.cfg.ws_url, self.cfg.rest_url = ex.ws_url, ex.rest_url
            log.info("demo: %s on %s", source.describe(), ex.ws_url)
            return await self._run()

    async def _run(self) -> int:
        cfg = self.cfg
        self.store = TickStore(cfg.store, mode="a")
        try:
            for s in self.symbols:
                last = self.store.last_trade_id(s)
                if last is None and s in cfg.start_ids:
                    last = int(cfg.start_ids[s]) - 1
                self.seqs[s] = Sequencer(s, last)
            if cfg.alerts:
                from quantlab.alerts import AlertService

                self.alerts = AlertService(self.store.path)
            # both constructors validate their URL: a bad one fails here, before any I/O
            options = dict(cfg.stream_options)
            options.setdefault("connect_budget", ConnectBudget())
            if cfg.watchdog_s is not None:
                options.setdefault("watchdog_s", cfg.watchdog_s)
            groups = connection_groups(cfg.ws_url, self.symbols, time_unit=cfg.time_unit,
                                       max_url_chars=cfg.max_url_chars)
            self.streams = [
                BinanceStream(cfg.ws_url, group, rest_url=cfg.rest_url, validate_symbols=False,
                              time_unit=cfg.time_unit, **options)
                for group in groups
            ]
            self.stream = self.streams[0]
            if len(groups) > 1:
                log.info("%d symbols over %d connections", len(self.symbols), len(groups))
            if cfg.duration_s is not None:
                asyncio.get_running_loop().call_later(cfg.duration_s, self._stop.set)
            async with BinanceRest(cfg.rest_url, time_unit=cfg.time_unit) as rest:
                self.rest = rest
                if not await self._validate_symbols(rest):
                    return 0
                self.state = "connecting"
                consumers = [asyncio.create_task(self._consume(st), name=f"recorder-consume-{i}")
                             for i, st in enumerate(self.streams)]
                tasks = [
                    *consumers,
                    asyncio.create_task(self._flush_loop(), name="recorder-flush"),
                    asyncio.create_task(self._status_loop(), name="recorder-status"),
                ]
                stop_wait = asyncio.create_task(self._stop.wait())
                done, _ = await asyncio.wait([stop_wait, *consumers], return_when=asyncio.FIRST_COMPLETED)
                failure = None
                for t in consumers:
                    if t in done and t.exception() is not None:
                        failure = t.exception()
                        break
                stop_wait.cancel()
                for st in self.streams:
                    await st.aclose()
                for t in [*tasks, *self._backfills.values()]:
                    t.cancel()
                await asyncio.gather(*tasks, *self._backfills.values(), return_exceptions=True)
                self._flush()
                held = sum(s.held for s in self.seqs.values())
                if held:
                    log.info("%d trade(s) behind an open gap were not stored; the next run backfills them", held)
                self.state = "failed" if failure else "stopped"
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
    async def _consume(self, stream: BinanceStream) -> None:
        seqs = self.seqs
        try:
            async for ev in stream:
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
                return await self.rest.fetch_trade_range(symbol, first, last), ""
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

    def _record_gap(self, symbol: str, first: int, last: int, reason: str) -> None:
        self.c["gaps_unrepaired"] += 1
        log.error("%s: ids %d..%d could not be backfilled (%s); recorded as a gap", symbol, first, last, reason)
        self.store.add_gap(symbol, first, last, reason)

    # ------------------------------------------------------------------ storage
    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        took = 0.0
        while True:
            # a flush that took long eats into the wait: receipt-to-durable stays near the interval
            await asyncio.sleep(max(0.01, self.cfg.flush_interval_s - took))
            t0 = loop.time()
            self._flush()
            took = loop.time() - t0
            if self.alerts is not None:
                try:
                    self.alerts.poll_rules()
                except Exception:  # noqa: BLE001 - alerts never stop ingestion
                    self.c["alert_errors"] += 1
                    log.exception("alert rules could not be reloaded")

    def _flush(self) -> None:
        # Append every symbol, then make them durable with one store flush: a flush per
        # append re-flushed every open table, O(symbols^2) per cycle (~2 s at 300 symbols).
        batches = []
        for symbol, seq in self.seqs.items():
            ready = seq.drain()
            if not ready:
                continue
            cols = trades_to_columns(ready)
            if symbol not in self._unit_noted:
                self.store.note_time_unit(symbol, self.cfg.time_unit or "MILLISECOND",
                                          int(cols["trade_id"][0]))
                self._unit_noted.add(symbol)
            batches.append((symbol, cols, self.store.append(symbol, cols, flush=False)))
        if not batches:
            return
        self.store.flush()  # durable and visible on return
        durable = time.time_ns()
        recv = np.concatenate([cols["recv_time"] for _, cols, _ in batches])
        self.lat_durable.add(durable - recv)
        ev = np.concatenate([cols["event_time"] for _, cols, _ in batches])
        live = ev != np.iinfo(np.int64).min
        self.lat_exchange.add(recv[live] - ev[live])
        for symbol, cols, added in batches:
            self._account(symbol, cols, added)

    def _account(self, symbol: str, cols: dict[str, np.ndarray], added: int) -> None:
        self.c["stored"] += added
        self.c["rejected"] += len(cols["trade_id"]) - added
        self.rates[symbol].add(added)
        self.rate_all.add(added)
        self.last[symbol] = {
            "last_price": float(cols["price"][-1]),
            "last_trade_time_ns": int(cols["time"][-1]),
            "last_id": int(cols["trade_id"][-1]),
        }
        if self.alerts is not None:
            try:
                frame = pd.DataFrame(cols)
                self.c["alerts_fired"] += len(self.alerts.process_trades(symbol, frame))
            except Exception:  # noqa: BLE001 - alerts never stop ingestion
                self.c["alert_errors"] += 1
                log.exception("alert evaluation failed for %s", symbol)

    # ------------------------------------------------------------------ status
    async def _status_loop(self) -> None:
        while True:
            write_status(self.store.path, self.status())
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
        return {
            "pid": os.getpid(),
            "source": self.cfg.label,
            "ws_url": self.cfg.ws_url,
            "rest_url": self.cfg.rest_url,
            "symbols": self.symbols,
            "state": self.state,
            "reason": self.reason,
            "started_at": self.started_at.isoformat(),
            "updated_at": now.isoformat(),
            "updated_ns": now.value,
            "ticks_total": self.c["stored"],
            "ticks_per_s": self.rate_all.rate(),
            "per_symbol": {
                s: {"ticks": self.rates[s].total, "ticks_per_s": self.rates[s].rate(),
                    "held": self.seqs[s].held if s in self.seqs else 0, **self._last_status(s)}
                for s in self.symbols
            },
            "reconnects": self.c["reconnects"],
            "gaps_repaired": self.c["gaps_repaired"],
            "gaps_unrepaired": self.c["gaps_unrepaired"],
            "backfilled": self.c["backfilled"],
            "rejected": self.c["rejected"],
            "duplicates": sc.get("duplicates", 0) + sum(s.duplicates for s in self.seqs.values()),
            "malformed": sc.get("malformed", 0),
            "messages": sc.get("messages", 0),
            "latency_ms": {"exchange_to_recv": self.lat_exchange.percentiles_ms(),
                           "recv_to_durable": self.lat_durable.percentiles_ms()},
            "alerts_fired": self.c["alerts_fired"],
            "alert_errors": self.c["alert_errors"],
        }


def recorder_alive(store_dir: str | os.PathLike[str]) -> int | None:
    """Pid of the recorder writing ``store_dir``, or None (the writer lock tells)."""
    from quantlab.store import writer_pid

    return writer_pid(Path(store_dir))
