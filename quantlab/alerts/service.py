"""The object the recorder runs: rules file -> engine -> history + webhooks.

    svc = AlertService(store_dir)               # loads rules, state and history paths
    fired = svc.process_trades("BTCUSDT", new_rows)   # after each durable append
    svc.poll_rules()                            # about every 0.5 s: reload rules if changed
    svc.close()                                 # flush history + state, stop webhook workers

``process_trades`` runs on the ingest path: a dict look-up for a symbol without rules, and
a few vectorised comparisons per rule otherwise. Firing appends one line to the history
(buffered write + flush, no fsync) and queues the webhook; the HTTP happens on worker
threads. Rule state (armed legs, cooldown) is saved by ``poll_rules``/``close`` when it
changed, so a restarted recorder neither repeats an alert nor misses a re-arm.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from quantlab.alerts.engine import AlertEngine, Trigger
from quantlab.alerts.persistence import (
    DELIVERIES_FILE,
    RULES_FILE,
    FiredAlert,
    HistoryWriter,
    alerts_dir,
    load_state,
    parse_rules,
    save_state,
)
from quantlab.alerts.rules import MoveRule, Rule, SpreadRule, ZScoreRule
from quantlab.alerts.webhook import DeliveryResult, WebhookDispatcher
from quantlab.errors import UnknownSymbolError
from quantlab.timeframes import Timeframe, parse_timeframe

if TYPE_CHECKING:
    from quantlab.store import TickStore

log = logging.getLogger(__name__)

_EVENT_WORDS = {
    "above": "at or above", "below": "at or below", "cross_up": "crossed up through",
    "cross_down": "crossed down through", "move_up": "moved up", "move_down": "moved down",
    "zscore_above": "z-score at or above", "zscore_below": "z-score at or below",
    "zscore_inside": "z-score back inside", "spread_above": "spread at or above",
    "spread_below": "spread at or below",
}


def format_message(rule: Rule, tr: Trigger) -> str:
    """``"BTCUSDT 70012.5 crossed up through 70000 (r1)"``-style one-liners."""
    word = _EVENT_WORDS.get(tr.event, tr.event)
    who = "/".join(tr.symbols)
    if tr.event.startswith("move") and isinstance(rule, MoveRule):
        text = f"{who} {word} {tr.value:+.2f}% (threshold {abs(tr.threshold):g}%) over {rule.window}"
    elif tr.event.startswith(("zscore", "spread")) and isinstance(rule, ZScoreRule | SpreadRule):
        bar = pd.Timestamp(tr.bar_time_ns, unit="ns", tz="UTC") if tr.bar_time_ns is not None else None
        sign = "±" if tr.event == "zscore_inside" else ""
        text = f"{who} {word} {sign}{tr.threshold:g}: {tr.value:.3f}"
        if bar is not None:
            text += f" on the {rule.timeframe} bar of {bar:%Y-%m-%d %H:%M:%S}"
    else:
        text = f"{who} {tr.value:g} {word} {tr.threshold:g}"
    text += f" ({rule.id})"
    return f"{text}: {rule.note}" if rule.note else text


def store_bars_loader(store: str | os.PathLike[str] | TickStore) -> Callable[..., Any]:
    """Warm-up for pair rules: ``load(symbol, timeframe, n_bars) -> (open time ns, close)`` of
    the stored bars in the ``n_bars`` bar spans up to the symbol's last stored trade (not the
    wall clock, so a replayed or imported store works too), or None when it has none.

    ``store``: an open :class:`~quantlab.store.TickStore` (the recorder passes its writer, so
    no second reader opens inside the writer process), or a store folder (a reader is opened
    per call). Only the symbol's own files are read, never the whole store.
    """
    def load(symbol: str, timeframe: str, n_bars: int) -> tuple[np.ndarray, np.ndarray] | None:
        from quantlab.store import TickStore

        st = store if isinstance(store, TickStore) else TickStore(store)
        try:
            bars = _last_bars(st, symbol, parse_timeframe(timeframe), int(n_bars))
        finally:
            if st is not store:
                st.close()
        if bars is None or len(bars) == 0:
            return None
        idx = pd.DatetimeIndex(bars.index)
        return idx.as_unit("ns").asi8, bars["close"].to_numpy(dtype=np.float64)
    load.store = store  # type: ignore[attr-defined]  # what the loader reads (tests, repr)
    return load


def _last_bars(st: TickStore, symbol: str, tf: Timeframe, n_bars: int) -> pd.DataFrame | None:
    """The bars of ``symbol`` in the ``n_bars`` spans of ``tf`` before its last stored trade
    (a perp's last aggregate trade: futures are recorded as ``aggtrades``)."""
    from quantlab.symbols import parse_symbol

    kind = "trades" if parse_symbol(symbol).is_spot else "aggtrades"
    last_id = st.last_trade_id(symbol, kind=kind)
    if last_id is not None:  # the last row only: the writer's own segment, or one file
        last = int(st.read_after(symbol, last_id - 1, kind=kind)["time"][-1])
        return st.bars(symbol, tf.text, start=last - n_bars * tf.nominal_ns)
    try:  # no ticks: imported klines only
        bars = st.bars(symbol, tf.text)
    except UnknownSymbolError:
        return None
    if len(bars) == 0:
        return None
    last = int(pd.DatetimeIndex(bars.index).as_unit("ns").asi8[-1])
    return bars[pd.DatetimeIndex(bars.index).as_unit("ns").asi8 > last - n_bars * tf.nominal_ns]


def _tick_arrays(ticks: pd.DataFrame, now_ns: int) -> tuple[np.ndarray, ...]:
    """(time_ns, price, recv_ns, trade_id) from a batch with ``time`` as a column (int64 ns or
    datetime) or as the index (the store's read layout)."""
    def ns(values: Any) -> np.ndarray:
        arr = np.asarray(values)
        if arr.dtype.kind == "M":
            return pd.DatetimeIndex(values).as_unit("ns").asi8
        if arr.dtype.kind == "O":
            return pd.to_datetime(values, utc=True).as_unit("ns").asi8
        return arr.astype(np.int64, copy=False)

    if "time" in ticks.columns:
        t = ns(ticks["time"])
    elif isinstance(ticks.index, pd.DatetimeIndex):
        t = ticks.index.as_unit("ns").asi8
    else:
        raise ValueError("ticks: expected a 'time' column (int64 ns or datetime) or a DatetimeIndex")
    if "price" not in ticks.columns:
        raise ValueError("ticks: expected a 'price' column")
    p = ticks["price"].to_numpy(dtype=np.float64)
    n = len(t)
    if "recv_time" in ticks.columns:
        col = ticks["recv_time"]
        if col.dtype.kind in "iu":  # the recorder's layout: int64 ns
            recv = col.to_numpy(dtype=np.int64)
        elif col.dtype.kind == "M" or isinstance(col.dtype, pd.DatetimeTZDtype):
            recv = np.where(col.isna().to_numpy(), -1, pd.DatetimeIndex(col).as_unit("ns").asi8)
        else:
            recv = col.fillna(-1).to_numpy(dtype=np.int64)
    else:
        recv = np.full(n, now_ns, dtype=np.int64)
    ids = (ticks["trade_id"].to_numpy(dtype=np.int64) if "trade_id" in ticks.columns
           else np.full(n, -1, dtype=np.int64))
    return t, p, recv, ids


class AlertService:
    """Alert evaluation for one store, as run by the recorder (see the module docstring).

    ``now_ns`` is the wall clock used for ``fired_ns`` (injectable for tests). Webhook policy
    (timeout, retries, backoff) is :class:`~quantlab.alerts.webhook.WebhookDispatcher`'s;
    pass ``webhook=`` to change it. ``bars_loader=None`` warms pair rules up from the store's
    ``bars()`` (:func:`store_bars_loader` of ``store_dir``; the recorder passes one bound to its
    writer); pass ``False`` to build their window from live trades only.
    """

    def __init__(self, store_dir: str | os.PathLike[str], *,
                 now_ns: Callable[[], int] = time.time_ns,
                 webhook: WebhookDispatcher | None = None,
                 bars_loader: Any = None,
                 on_alert: Callable[[FiredAlert], None] | None = None) -> None:
        self.store_dir = Path(store_dir)
        self.dir = alerts_dir(store_dir)
        self.now_ns = now_ns
        self.on_alert = on_alert
        self._rules_path = self.dir / RULES_FILE
        self._rules_sig: tuple[int, int, int] | None = None
        self._history = HistoryWriter(store_dir)
        self._deliveries = HistoryWriter(store_dir, DELIVERIES_FILE)
        self._deliveries_lock = threading.Lock()
        self.webhook = webhook or WebhookDispatcher()
        if self.webhook.on_result is None:
            self.webhook.on_result = self._delivery_done
        loader = store_bars_loader(store_dir) if bars_loader is None else (bars_loader or None)
        self.engine = AlertEngine((), bars_loader=loader)
        self._rules: dict[str, Rule] = {}
        self.fired = 0
        self.errors = 0
        self._closed = False
        # process_trades, poll_rules and close may be called from different threads
        self._lock = threading.RLock()
        self.poll_rules(state=load_state(store_dir))

    # -- rules ------------------------------------------------------------------------

    def _signature(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self._rules_path)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def poll_rules(self, *, state: dict[str, Any] | None = None) -> bool:
        """Reload the rules file if it changed (one ``stat`` otherwise); save rule state if it
        changed. Returns True when the rules were reloaded. Never raises on a bad file."""
        with self._lock:
            return self._poll_rules(state)

    def _poll_rules(self, state: dict[str, Any] | None) -> bool:
        try:
            if self.engine.dirty:
                self._save_state()
            sig = self._signature()
            if sig == self._rules_sig and state is None:
                return False
            self._rules_sig = sig
            rules: list[Rule] = []
            if sig is not None:
                import json

                doc = json.loads(self._rules_path.read_text())
                rules = parse_rules(doc, source=str(self._rules_path))
            first: dict[str, Rule] = {}  # the first rule of each non-empty id
            for r in rules:
                if r.id:
                    first.setdefault(r.id, r)
            rules = list(first.values())
            self.engine.set_rules(rules, state=state)
            self._rules = {r.id: r for r in rules}
            log.info("alert rules loaded: %d (%s)", len(rules), ", ".join(self._rules) or "none")
            return True
        except Exception as exc:  # a half-edited or invalid file must not stop the recorder
            self.errors += 1
            log.warning("alert rules not reloaded: %s", exc)
            return False

    @property
    def rules(self) -> list[Rule]:
        return list(self._rules.values())

    @property
    def symbols(self) -> set[str]:
        """Symbols some rule watches (``process_trades`` for others costs a dict look-up)."""
        return self.engine.symbols

    # -- evaluation -------------------------------------------------------------------

    def process_trades(self, symbol: str, ticks: pd.DataFrame) -> list[FiredAlert]:
        """Evaluate the rules of ``symbol`` on newly stored rows (in trade-id order).

        ``ticks`` columns: trade_id, price, qty, is_buyer_maker, time (int64 ns or datetime;
        or a DatetimeIndex), recv_time (int64 ns or datetime; the service's clock if absent).
        Returns the alerts fired (already in the history and queued for their webhooks).
        """
        if ticks is None or not self.engine.watches(symbol) or len(ticks) == 0:
            return []
        with self._lock:
            try:
                t, p, recv, ids = _tick_arrays(ticks, self.now_ns())
                triggers = self.engine.process(symbol, t, p, recv, ids)
            except Exception as exc:  # never break ingestion
                self.errors += 1
                log.exception("alert evaluation failed for %s: %s", symbol, exc)
                return []
            return [self._emit(tr) for tr in triggers] if triggers else []

    def _emit(self, tr: Trigger) -> FiredAlert:
        rule = self._rules[tr.rule_id]
        alert = FiredAlert(
            id=f"{tr.rule_id}-{tr.time_ns}-{tr.event}", rule_id=tr.rule_id, kind=rule.kind,
            event=tr.event, symbols=tr.symbols, value=tr.value, threshold=tr.threshold,
            message=format_message(rule, tr), time_ns=tr.time_ns, recv_ns=tr.recv_ns,
            fired_ns=int(self.now_ns()), trade_id=tr.trade_id, bar_time_ns=tr.bar_time_ns,
            webhook=rule.webhook,
        )
        self.fired += 1
        try:
            self._history.append(alert)
        except OSError as exc:
            self.errors += 1
            log.error("alert %s not written to the history: %s", alert.id, exc)
        log.info("ALERT %s", alert)
        if rule.webhook:
            self.webhook.submit(rule.webhook, alert, alert.id)
        if self.on_alert is not None:
            try:
                self.on_alert(alert)
            except Exception:
                log.exception("on_alert callback failed")
        return alert

    # -- bookkeeping ------------------------------------------------------------------

    def _delivery_done(self, res: DeliveryResult) -> None:
        import json

        with self._deliveries_lock:
            try:
                self._deliveries.write(json.dumps(res.to_dict()))
            except OSError as exc:
                log.warning("delivery outcome not recorded: %s", exc)

    def _save_state(self) -> None:
        try:
            save_state(self.store_dir, self.engine.state())
        except OSError as exc:
            self.errors += 1
            log.warning("alert rule state not saved: %s", exc)

    def stats(self) -> dict[str, int]:
        """Counters: fired, errors, suppressed (cooldown), pair_errors, rules and the webhook's
        submitted/delivered/failed/retried/dropped/pending."""
        return {"fired": self.fired, "errors": self.errors, **self.engine.stats(),
                **{f"webhook_{k}": v for k, v in self.webhook.stats().items()}}

    def close(self, drain: float = 2.0) -> None:
        """Save rule state, flush the history, give webhooks ``drain`` seconds, stop workers."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._save_state()
            self._history.close()
        self.webhook.close(drain)
        with self._deliveries_lock:
            self._deliveries.close()

    def __enter__(self) -> AlertService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
