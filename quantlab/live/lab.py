"""``Lab``: live pandas frames in a notebook kernel, following the store a recorder writes.

    lab = Lab(["BTCUSDT", "ETHUSDT"], store="data/store", source="demo").start()
    lab.ticks("BTCUSDT").tail()          # stored history + newest ticks, one frame
    lab.bars("ETHUSDT", "1m")            # OHLCV, VWAP, trades; the last bar partial
    lab.pair("ETHUSDT", "BTCUSDT", "1s", window=600)

    hist = Lab.from_store("data/store")      # history only: no recorder, no feed
    hist.bars("BTCUSDT", "1h", start="2025-06-01", end="2025-07-01")   # ticks or klines
    hist.pair("ETHUSDT", "BTCUSDT", "1d", start="2025-01-01")           # quantlab.closes

``start()`` returns at once: a follower thread loads recent history, then polls the store
for new rows (every ``poll_s``) into bounded ring buffers and incremental bars. There is one
recorder per store (the single writer); a Lab starts one only if none is alive, and
``stop()`` ends only what this Lab started. Callbacks (``on_tick``, ``on_bar``,
``on_alert``) run on the kernel's event loop when ``start()`` was called inside one, else on
the follower thread; an exception in a callback is logged and counted, never fatal.

Live and history: once the Lab has followed the store, ``bars``/``pair`` at a live timeframe
(:data:`TIMEFRAMES`) without ``start``/``end`` are the in-memory live bars (the last one
partial). Anything else — any timeframe of :func:`quantlab.timeframes.parse_timeframe`
(``4h``, ``1d``, ``1w``, ``1M``...), a ``start``/``end``, or a Lab that never started
(:meth:`Lab.from_store`) — is read from the store: ``TickStore.bars`` (ticks where the store
has them, imported klines elsewhere, with a ``source`` column) and :func:`quantlab.closes`.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from quantlab.aligned import DEFAULT_MAX_FILL
from quantlab.config import parse_symbols, resolve_store, settings
from quantlab.errors import QuantlabError, UnknownSymbolError
from quantlab.live.align import align_closes
from quantlab.live.bars import IncrementalBars
from quantlab.live.process import spawn_recorder, stop_process
from quantlab.live.ring import TickRing
from quantlab.meters import LatencyWindow
from quantlab.status import read_status
from quantlab.store import TickRows, TickStore, writer_pid
from quantlab.symbols import parse_symbol
from quantlab.timeframes import parse_timeframe
from quantlab.timestamps import NAT_NS, to_ns

log = logging.getLogger(__name__)

TIMEFRAMES = ("1s", "1m", "5m", "15m", "1h")
SOURCE_LABELS = {"binance": "LIVE Binance", "demo": "DEMO (simulated)"}


@dataclass
class _Callback:
    fn: Callable
    kind: str
    throttle_s: float = 0.0
    timeframe: str | None = None
    last_call: float = 0.0
    pending: set | None = None
    lab: Lab | None = None

    def remove(self) -> None:
        if self.lab is not None:
            with self.lab._lock:
                if self in self.lab._callbacks:
                    self.lab._callbacks.remove(self)


class Lab:
    """Live research session over one store; see the module docstring."""

    #: how long ``stop()`` waits for the follower thread (it closes its own store handles)
    STOP_JOIN_S = 10.0
    #: the 24 h reference price of ``stats()`` is looked up again after this many seconds
    REF_PRICE_TTL_S = 60.0

    def __init__(self, symbols=None, store: str | Path | None = None, source: str | None = None, *,
                 ring_size: int = 200_000, history: str = "2h", poll_s: float = 0.1,
                 max_bars: int = 20_000, progress: bool | None = None):
        """``history``: how much stored history to load at start (a pandas duration);
        ``progress``: a progress bar while loading it (default: when ``history`` >= 6h)."""
        cfg = settings(symbols=symbols if symbols else None, store=str(store) if store else None,
                       source=source)
        self._symbols = list(parse_symbols(symbols) if symbols else cfg.symbols)
        if not self._symbols:
            raise ValueError("symbols: give at least one symbol, e.g. ['BTCUSDT', 'ETHUSDT']")
        self.source = (source or cfg.source or "binance").strip()
        if self.source not in ("binance", "demo") and not self.source.startswith(("ws://", "wss://")):
            raise ValueError(f"source: {self.source!r} is not 'binance', 'demo' or a ws:// URL")
        # demo data lives in its own store (<store>-demo unless given one); a store holding the
        # other kind of data is refused here, before any recorder starts
        self.store_path = resolve_store(store, self.source)
        if not (isinstance(poll_s, int | float) and 0 < poll_s <= 5):
            raise ValueError(f"poll_s: must be in (0, 5] seconds, got {poll_s!r}")
        self.ring_size = ring_size
        self.history_ns = int(pd.Timedelta(history).value)
        self.poll_s = float(poll_s)
        self.max_bars = max_bars
        self.progress = progress
        self._rings = {s: TickRing(ring_size) for s in self._symbols}
        self._bars = {s: {tf: IncrementalBars(tf, max_bars) for tf in TIMEFRAMES}
                      for s in self._symbols}
        self._last_id: dict[str, int | None] = dict.fromkeys(self._symbols)
        self._lock = threading.RLock()
        self._callbacks: list[_Callback] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._loaded = threading.Event()
        self._proc: subprocess.Popen | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._store: TickStore | None = None  # the caller's reader (frames, stats)
        self._ref_prices: dict[str, tuple[float, int, float | None]] = {}  # stats(): 24 h reference
        self.follow_latency = LatencyWindow(5_000)
        self.callback_errors = 0
        self.last_error: str = ""
        self._alert_cursor: int | None = None  # byte offset in the alert history
        self._history_only = False

    @classmethod
    def from_store(cls, store: str | Path, symbols=None) -> Lab:
        """A Lab over a store's history only (imported ticks and klines, or what a recorder
        wrote): ``bars``, ``pair``, ``ticks(since=...)`` at any timeframe, no recorder and no
        feed (``start()`` is refused). ``symbols``: default every symbol of the store."""
        path = Path(store).expanduser()
        if not (path / "store.json").exists():
            raise FileNotFoundError(f"store: no store at {path} (import files with `quantlab import` first)")
        if symbols is None:
            with TickStore(path) as st:
                symbols = st.symbols()
            if not symbols:
                raise ValueError(f"store: {path} holds no symbols yet")
        lab = cls(symbols, store=path, source="binance")
        lab._history_only = True
        return lab

    # ------------------------------------------------------------------ lifecycle
    @property
    def symbols(self) -> list[str]:
        return list(self._symbols)

    @property
    def source_label(self) -> str:
        return SOURCE_LABELS.get(self.source, self.source)

    @property
    def store(self) -> TickStore:
        if self._store is None:
            self._store = TickStore(self.store_path)
        return self._store

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, wait: float | None = None) -> Lab:
        """Start (or join) the recorder and follow the store.

        Returns at once; with ``wait`` (seconds) it first waits until history is loaded and
        every symbol has a tick, or ``wait`` seconds pass (then ``status()`` says what is
        missing). A recorder this Lab started that exits meanwhile raises ``QuantlabError``
        naming its log: it is never mistaken for a slow start.
        """
        if self._history_only:
            raise QuantlabError("this Lab reads history only (Lab.from_store); for a live feed use "
                                "Lab(symbols, store=..., source=...).start()")
        if wait is not None and not (isinstance(wait, int | float) and 0 <= wait < float("inf")):
            raise ValueError(f"wait: seconds to wait for data, e.g. 20, got {wait!r}")
        if not self.running:
            self._start()
        if wait is not None:
            with contextlib.suppress(TimeoutError):
                self.wait_ready(timeout=wait)
        return self

    def _start(self) -> None:
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._proc = spawn_recorder(self.store_path, self._symbols, self.source)
        if self._proc is not None:
            atexit.register(self.stop)
        self._stop.clear()
        self._thread = threading.Thread(target=self._follow, name="quantlab-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop following; stop the recorder only if this Lab started it."""
        self._stop.set()
        if self._thread is not None:
            # the follower closes its own reader when it ends: closing a reader here while the
            # thread is inside an HDF5 call gave "invalid identifier type" errors (300 symbols)
            self._thread.join(self.STOP_JOIN_S)
            self._thread = None
        if self._proc is not None:
            stop_process(self._proc)
            self._proc = None
        if self._store is not None:
            self._store.close()
            self._store = None

    def wait_ready(self, timeout: float = 30.0, min_ticks: int = 1) -> Lab:
        """Block (scripts, tests) until history is loaded and each symbol has ``min_ticks``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._loaded.is_set() and all(len(r) >= min_ticks for r in self._rings.values()):
                return self
            if self._proc is not None and self._proc.poll() is not None and writer_pid(self.store_path) is None:
                raise QuantlabError(
                    f"the recorder exited with code {self._proc.returncode}; see {self.store_path / 'recorder.log'}"
                )
            time.sleep(0.05)
        raise TimeoutError(f"no data for {self._symbols} within {timeout:.0f}s; lab.status(): {self.status()}")

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ follower thread
    def _follow(self) -> None:
        """The follower thread: its own store reader (HDF5 handles are not shared with the
        caller's thread), closed when it ends."""
        store = None
        try:
            self._wait_for_store()
            store = TickStore(self.store_path)
            self._load_history(store)
        except Exception as exc:  # noqa: BLE001 - shown in status, never raised in a thread
            self.last_error = f"loading history failed: {exc}"
            log.exception("loading history failed")
        self._loaded.set()
        try:
            self._poll_forever(store)
        finally:
            if store is not None:
                store.close()

    def _poll_forever(self, store: TickStore | None) -> None:
        alerts_next = 0.0
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                if store is None:
                    store = TickStore(self.store_path)
                self._poll_once(store)
                self._refresh_ref_prices(store)
                if self._callbacks and t0 >= alerts_next:
                    self._poll_alerts()
                    alerts_next = t0 + 0.5
                self._flush_throttled()
            except Exception as exc:  # noqa: BLE001 - keep following
                self.last_error = str(exc)
                log.warning("follower: %s", exc)
            self._stop.wait(max(0.0, self.poll_s - (time.monotonic() - t0)))

    def _wait_for_store(self) -> None:
        while not self._stop.is_set() and not (self.store_path / "store.json").exists():
            if self._proc is not None and self._proc.poll() is not None:
                raise QuantlabError(f"the recorder exited with code {self._proc.returncode}; "
                                    f"see {self.store_path / 'recorder.log'}")
            time.sleep(0.05)

    def _load_history(self, store: TickStore) -> None:
        from tqdm.auto import tqdm

        # whole bars: start at an hour boundary, so that no live bar begins half-loaded
        since = int(parse_timeframe(TIMEFRAMES[-1]).floor_ns(time.time_ns() - self.history_ns))
        show = self.progress if self.progress is not None else self.history_ns >= 6 * 3_600 * 10**9
        for sym in tqdm(self._symbols, desc="loading history", disable=not show):
            if self._stop.is_set():
                return
            if self._last_id[sym] is not None:
                continue  # restarted: the poll continues from the last id this Lab holds
            try:
                hist = _read_ticks(store, sym, start=since)
            except UnknownSymbolError:
                continue
            if len(hist):
                self._ingest(sym, _frame_to_batch(hist), callbacks=False)

    def _poll_once(self, store: TickStore) -> None:
        for sym in self._symbols:
            if self._stop.is_set():
                return
            batch = _read_ticks_after(store, sym, self._last_id[sym])
            if batch and len(batch["trade_id"]):
                self._ingest(sym, batch, callbacks=True)

    def _ingest(self, sym: str, batch: dict, callbacks: bool) -> None:
        now = time.time_ns()
        with self._lock:
            self._rings[sym].append(batch)
            self._last_id[sym] = int(batch["trade_id"][-1])
        # outside the lock: only this thread updates bars, and each update replaces a bar set
        # whole (one attribute), so a reader sees the bars before or after it; the lock held
        # over five timeframes' merges kept the kernel's loop waiting for it
        closed = {tf: b.add(batch["time"], batch["price"], batch["qty"]) for tf, b in self._bars[sym].items()}
        if not callbacks:
            return
        recv = batch.get("recv_time")
        if recv is not None:
            self.follow_latency.add(now - recv[recv != NAT_NS])
        for cb in list(self._callbacks):
            if cb.kind == "tick" and cb.pending is not None:
                cb.pending.add(sym)
            elif cb.kind == "bar" and cb.timeframe is not None and closed[cb.timeframe]:
                self._dispatch(cb, sym, self.bars(sym, cb.timeframe))

    def _flush_throttled(self) -> None:
        now = time.monotonic()
        for cb in list(self._callbacks):
            if cb.kind == "tick" and cb.pending and now - cb.last_call >= cb.throttle_s:
                syms, cb.pending = sorted(cb.pending), set()
                cb.last_call = now
                self._dispatch(cb, syms)

    def _poll_alerts(self) -> None:
        subs = [cb for cb in self._callbacks if cb.kind == "alert"]
        if not subs:
            return
        from quantlab.alerts import AlertHistory

        hist = AlertHistory(self.store_path)
        if self._alert_cursor is None:
            self._alert_cursor = hist.end()  # only alerts fired from now on
            return
        alerts, self._alert_cursor = hist.new_since(self._alert_cursor)
        for alert in alerts:
            payload = alert.to_dict() if hasattr(alert, "to_dict") else alert
            for cb in subs:
                self._dispatch(cb, payload)

    def _dispatch(self, cb: _Callback, *args) -> None:
        def call() -> None:
            try:
                cb.fn(*args)
            except Exception as exc:  # noqa: BLE001 - a callback never kills the feed
                self.callback_errors += 1
                self.last_error = f"{getattr(cb.fn, '__name__', 'callback')}: {exc!r}"
                log.exception("callback %r failed", cb.fn)

        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(call)
                return
            except RuntimeError:
                pass
        call()

    # ------------------------------------------------------------------ observers
    def on_tick(self, callback: Callable[[list[str]], None], throttle_s: float = 0.2) -> _Callback:
        """``callback(symbols)`` with the symbols that got new ticks, at most every ``throttle_s``."""
        cb = _Callback(callback, "tick", float(throttle_s), pending=set(), lab=self)
        with self._lock:
            self._callbacks.append(cb)
        return cb

    def on_bar(self, callback: Callable[[str, pd.DataFrame], None], timeframe: str = "1m") -> _Callback:
        """``callback(symbol, bars)`` each time a ``timeframe`` bar closes."""
        cb = _Callback(callback, "bar", timeframe=self._check_timeframe(timeframe), lab=self)
        with self._lock:
            self._callbacks.append(cb)
        return cb

    def on_alert(self, callback: Callable[[dict], None]) -> _Callback:
        """``callback(alert)`` for each alert the recorder fires from now on."""
        cb = _Callback(callback, "alert", lab=self)
        with self._lock:
            self._callbacks.append(cb)
        return cb

    # ------------------------------------------------------------------ frames
    def _check_symbol(self, sym: str) -> str:
        if not isinstance(sym, str):
            raise TypeError(f"symbol: expected a name like 'BTCUSDT', got {sym!r}")
        try:
            s = str(parse_symbol(sym))  # BTCUSDT, um:BTCUSDT
        except ValueError:
            s = sym
        if s not in self._rings:
            raise UnknownSymbolError(f"unknown symbol {sym!r}; this Lab follows {', '.join(self._symbols)}")
        return s

    @staticmethod
    def _check_timeframe(tf: str) -> str:
        """A live timeframe's name (one of :data:`TIMEFRAMES`, by the one parser)."""
        name = parse_timeframe(tf).text
        if name not in TIMEFRAMES:
            raise ValueError(f"timeframe: {tf!r} is not a live timeframe ({', '.join(TIMEFRAMES)}); "
                             "history at any timeframe: lab.bars(sym, tf, start=...)")
        return name

    def _live(self, timeframe, start, end) -> str | None:
        """The live timeframe to serve from memory, or None to read the store."""
        if self._history_only or start is not None or end is not None or not self._loaded.is_set():
            return None
        name = parse_timeframe(timeframe).text
        return name if name in TIMEFRAMES else None

    def ticks(self, sym: str, last: int | None = None, since=None) -> pd.DataFrame:
        """Ticks of ``sym``: the ring (newest ``ring_size``), joined with stored history when
        ``since`` reaches further back. Frame as :meth:`TickStore.read`."""
        s = self._check_symbol(sym)
        if last is not None and (not isinstance(last, int) or last < 1):
            raise ValueError(f"last: must be a positive int, got {last!r}")
        with self._lock:
            ring = self._rings[s]
            batch = ring.snapshot(last)
            first = ring.first_time
        frame = TickRows(batch).to_frame()
        if since is not None:
            since_ns = to_ns(since, "since")
            assert since_ns is not None  # since is not None
            if first is None or since_ns < first:
                try:
                    older = _read_ticks(self.store, s, start=since_ns, end=first)
                except UnknownSymbolError:
                    older = frame.iloc[0:0]
                frame = pd.concat([older, frame]) if len(older) else frame
            frame = frame[frame.index >= pd.Timestamp(since_ns, tz="UTC")]
        if "event_time" in frame and frame["event_time"].isna().all() and frame["recv_time"].isna().all():
            frame = frame.drop(columns=["event_time", "recv_time"])
        return frame

    def bars(self, sym: str, timeframe: str = "1m", last: int | None = None, *,
             start=None, end=None) -> pd.DataFrame:
        """Bars of ``sym`` (``open high low close volume vwap trades`` and ``partial`` live, the
        last one partial; ``source`` from the store). Live or history: see the module docstring."""
        s = self._check_symbol(sym)
        if last is not None and (not isinstance(last, int) or last < 1):
            raise ValueError(f"last: must be a positive int, got {last!r}")
        live = self._live(timeframe, start, end)
        if live is not None:
            return self._bars[s][live].frame(last)
        frame = self.store.bars(s, timeframe, start, end)
        return frame if last is None else frame.iloc[-last:]

    def bar_closes(self, sym: str, timeframe: str = "1m") -> tuple[np.ndarray, np.ndarray]:
        """``(bar open times as datetime64[ns] UTC, closes)`` of :meth:`bars` without a frame:
        what a live chart redrawn a few times a second on the kernel's loop needs (a 20,000-bar
        frame per chart and refresh held the loop)."""
        s = self._check_symbol(sym)
        live = self._live(timeframe, None, None)
        if live is not None:
            t, close = self._bars[s][live].closes()
            return t.view("M8[ns]"), close
        frame = self.bars(s, timeframe)
        return frame.index.tz_convert("UTC").tz_localize(None).to_numpy(), frame["close"].to_numpy()

    def prices(self) -> pd.DataFrame:
        """Latest price and trade time per symbol."""
        n = len(self._symbols)
        price, t = np.full(n, np.nan), np.full(n, NAT_NS, dtype=np.int64)
        with self._lock:
            for i, ring in enumerate(self._rings.values()):
                if len(ring):
                    price[i], t[i] = ring.last("price"), ring.last("time")
        # built from arrays: a frame from a dict of rows took most of a Monitor refresh
        return pd.DataFrame({"price": price, "time": pd.DatetimeIndex(t.view("M8[ns]")).tz_localize("UTC")},
                            index=pd.Index(list(self._rings), name="symbol"))

    def status(self) -> dict:
        """The recorder's published status plus ``alive`` and this Lab's own view."""
        st = read_status(self.store_path)
        pid = writer_pid(self.store_path)
        alive = pid is not None
        # our recorder is starting (not holding the store yet), or the status file is an
        # earlier run's: neither says stopped while a recorder comes up
        starting = self._proc is not None and self._proc.poll() is None and not alive
        if starting or (alive and st.get("pid") not in (None, pid)):
            st["state"] = "starting"
        st.setdefault("state", "connecting" if alive else "stopped")
        if not alive and not starting and st.get("state") not in ("stopped", "failed"):
            st["state"] = "stopped"
        st["alive"] = alive
        st["source_label"] = self.source_label
        st["follow_latency_ms"] = self.follow_latency.percentiles_ms()
        st["follower_error"] = self.last_error
        return st

    def stats(self) -> pd.DataFrame:
        """Per symbol: last price, 24 h change, ticks/s, counts, latency, gaps, reconnects, state."""
        st = self.status()
        per = st.get("per_symbol", {})
        lat = st.get("latency_ms", {}).get("exchange_to_recv", {})
        rows = {}
        day_ago = time.time_ns() - 86_400 * 10**9
        # while the follower runs it keeps the reference prices fresh with its own reader:
        # stats() (the Monitor's 2-s refresh, on the kernel's loop) then reads nothing
        followed = self.running
        for s in self._symbols:
            ring = self._rings[s]
            last = float(ring.last("price")) if len(ring) else np.nan
            ref = self._cached_ref_price(s) if followed else self._price_at(s, day_ago)
            rows[s] = {
                "last": last,
                "change_24h_pct": (last / ref - 1) * 100 if ref and np.isfinite(last) else np.nan,
                "ticks_per_s": per.get(s, {}).get("ticks_per_s", 0.0),
                "ticks": ring.total,
                "latency_p50_ms": lat.get("p50"), "latency_p99_ms": lat.get("p99"),
                "gaps_repaired": st.get("gaps_repaired", 0), "reconnects": st.get("reconnects", 0),
                "state": st.get("state", "stopped"),
            }
        frame = pd.DataFrame.from_dict(rows, orient="index")
        frame.index.name = "symbol"
        return frame

    def _price_at(self, sym: str, t_ns: int, store: TickStore | None = None) -> float | None:
        """Price of the first stored trade at or after ``t_ns`` (None if nothing stored),
        read through ``store`` (default the caller's reader).

        Looked up at most every :attr:`REF_PRICE_TTL_S` per symbol, and in a one-minute window
        first: reading up to an hour of ticks per symbol each time stalled the loop for seconds
        with many symbols."""
        now = time.monotonic()
        cached = self._ref_prices.get(sym)
        # the same reference for at most a TTL, and only for a time within a TTL of the one it
        # was looked up for (stats() asks for "24 h ago", which moves 2 s a call)
        if (cached is not None and now - cached[0] < self.REF_PRICE_TTL_S
                and abs(t_ns - cached[1]) <= self.REF_PRICE_TTL_S * 10**9):
            return cached[2]
        return self._lookup_ref_price(sym, t_ns, store)

    def _lookup_ref_price(self, sym: str, t_ns: int, store: TickStore | None = None) -> float | None:
        now = time.monotonic()
        price = None
        try:
            for span_s in (60, 3_600):
                first = _read_ticks(store or self.store, sym, start=t_ns, end=t_ns + span_s * 10**9)
                if len(first):
                    price = float(first["price"].iloc[0])
                    break
        except (UnknownSymbolError, FileNotFoundError):  # nothing stored yet (or no store yet)
            price = None
        self._ref_prices[sym] = (now, t_ns, price)
        return price

    def _cached_ref_price(self, sym: str) -> float | None:
        """The 24 h reference the follower looked up last (None until it has)."""
        cached = self._ref_prices.get(sym)
        return None if cached is None else cached[2]

    def _refresh_ref_prices(self, store: TickStore, per_poll: int = 4) -> None:
        """On the follower thread: look up again the 24 h reference of at most ``per_poll``
        symbols whose lookup is older than half a TTL (the oldest first), so the lookups spread
        over the polls and no reader on the kernel's loop ever waits for them."""
        now = time.monotonic()
        day_ago = time.time_ns() - 86_400 * 10**9
        due = sorted((self._ref_prices.get(s, (-np.inf,))[0], s) for s in self._symbols)
        for at, sym in due[:per_poll]:
            if now - at < self.REF_PRICE_TTL_S / 2 or self._stop.is_set():
                return
            self._lookup_ref_price(sym, day_ago, store)

    def pair(self, y: str, x: str, timeframe: str = "1m", window: int | None = None,
             max_ffill: int = DEFAULT_MAX_FILL, *, start=None, end=None) -> pd.DataFrame:
        """Closes of ``y`` and ``x`` on the bars where either traded (the one alignment,
        :func:`quantlab.closes`: forward fill for at most ``max_ffill`` bars, never a future
        value; rows where either is still missing dropped), the last ``window`` rows; columns
        ``[y, x]``. Live or history: see the module docstring."""
        ys, xs = self._check_symbol(y), self._check_symbol(x)
        if ys == xs:
            raise ValueError(f"y and x are both {ys}; a pair needs two symbols")
        if window is not None and (not isinstance(window, int) or window < 2):
            raise ValueError(f"window: must be an int >= 2 (bars), got {window!r}")
        live = self._live(timeframe, start, end)
        if live is not None:
            by, bx = self.bars(ys, live), self.bars(xs, live)
            return align_closes(by["close"], bx["close"], live, max_ffill=max_ffill, window=window,
                                names=(ys, xs))
        tf = parse_timeframe(timeframe)
        by, bx = self.store.bars(ys, tf, start, end), self.store.bars(xs, tf, start, end)
        return align_closes(by["close"], bx["close"], tf, max_ffill=max_ffill, window=window, names=(ys, xs))

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        st = self.status()
        counts = ", ".join(f"{s}={len(r):,}" for s, r in self._rings.items())
        return (f"Lab({self.source_label}, state={st.get('state')}, store={str(self.store_path)!r}, "
                f"following={'yes' if self.running else 'no'}, ticks: {counts})")

    def _repr_html_(self) -> str:
        st = self.status()
        rows = "".join(
            f"<tr><td>{s}</td><td>{len(r):,}</td><td>{r.last('price') if len(r) else '–'}</td></tr>"
            for s, r in self._rings.items())
        color = "#b26a00" if self.source == "demo" else "#1a7f37"
        return (f"<div><b>quantlab Lab</b> · <span style='color:{color}'>{self.source_label}</span> · "
                f"state <b>{st.get('state')}</b> · store <code>{self.store_path}</code></div>"
                f"<table><tr><th>symbol</th><th>ticks in memory</th><th>last price</th></tr>{rows}</table>")


def _read_ticks(store, sym: str, **kw) -> pd.DataFrame:
    """A spot symbol's trades, or a perpetual's (``um:BTCUSDT``) aggregate trades, the ticks
    the recorder stores for it, with the aggregate id as ``trade_id``."""
    if ":" not in sym:
        return store.read(sym, **kw)
    frame = store.read(sym, kind="aggtrades", **kw)
    return frame.rename(columns={"agg_id": "trade_id"})[["trade_id", "price", "qty", "is_buyer_maker"]]


def _read_ticks_after(store, sym: str, after_id: int | None) -> dict:
    if ":" not in sym:
        return dict(store.read_after(sym, after_id).arrays)
    rows = store.read_after(sym, after_id, kind="aggtrades")
    return {"trade_id" if k == "agg_id" else k: v for k, v in rows.arrays.items()
            if k not in ("first_trade_id", "last_trade_id")}


def _frame_to_batch(frame: pd.DataFrame) -> dict:
    batch = {
        "trade_id": frame["trade_id"].to_numpy(), "time": frame.index.asi8,
        "price": frame["price"].to_numpy(), "qty": frame["qty"].to_numpy(),
        "is_buyer_maker": frame["is_buyer_maker"].to_numpy().astype("u1"),
    }
    for col in ("event_time", "recv_time"):
        if col in frame:
            batch[col] = pd.DatetimeIndex(frame[col]).asi8
    return batch
