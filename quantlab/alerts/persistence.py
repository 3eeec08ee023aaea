"""Files of the alerts subsystem, in ``<store>/alerts/``.

=================  ==========================================================  ===========
file               content                                                     written by
=================  ==========================================================  ===========
rules.json         ``{"version": 1, "next_id": 4, "rules": [{rule}, ...]}``    CLI, app
history.jsonl      one fired alert per line (:meth:`FiredAlert.to_dict`)      recorder
state.json         per rule: armed legs and last firing, to resume on restart  recorder
deliveries.jsonl   one webhook outcome per line (ok, attempts, error)          recorder
=================  ==========================================================  ===========

``rules.json`` and ``state.json`` are replaced atomically (temp file + ``os.replace``), so a
reader never sees half a file; edits of the rules take an exclusive ``flock`` on
``.rules.lock`` so that two editors (CLI and app) never lose each other's rule. The history
is append-only; readers keep a byte offset (``new_since``) and read only complete lines.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from quantlab.alerts.rules import Rule, rule_from_dict
from quantlab.atomic import atomic_write_json
from quantlab.errors import UnknownSymbolError

log = logging.getLogger(__name__)

ALERTS_DIR = "alerts"
RULES_FILE = "rules.json"
HISTORY_FILE = "history.jsonl"
STATE_FILE = "state.json"
DELIVERIES_FILE = "deliveries.jsonl"


def alerts_dir(store_dir: str | os.PathLike[str]) -> Path:
    return Path(store_dir) / ALERTS_DIR


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); fix or delete it") from None


# ---------------------------------------------------------------------------- rules


def _rules_doc(store_dir: str | os.PathLike[str]) -> dict[str, Any]:
    doc = _read_json(alerts_dir(store_dir) / RULES_FILE)
    if doc is None:
        return {"version": 1, "next_id": 1, "rules": []}
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        raise ValueError(f"{alerts_dir(store_dir) / RULES_FILE}: expected an object with a 'rules' list")
    return doc


def parse_rules(doc: dict[str, Any], *, source: str = "rules.json") -> list[Rule]:
    """Rules of a rules document; a rule that does not validate is logged and skipped, so
    one bad entry never disables the others."""
    out = []
    for i, item in enumerate(doc.get("rules", [])):
        try:
            out.append(rule_from_dict(item))
        except (TypeError, ValueError) as exc:
            log.warning("%s: rule #%d skipped: %s", source, i, exc)
    return out


def list_rules(store_dir: str | os.PathLike[str]) -> list[Rule]:
    """The rules stored for ``store_dir`` (none if the file does not exist yet)."""
    return parse_rules(_rules_doc(store_dir), source=str(alerts_dir(store_dir) / RULES_FILE))


@contextlib.contextmanager
def _rules_lock(store_dir: str | os.PathLike[str]) -> Iterator[None]:
    d = alerts_dir(store_dir)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / ".rules.lock", "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def known_symbols(store_dir: str | os.PathLike[str]) -> list[str]:
    """Symbols of the store (``TickStore(store_dir).symbols()``)."""
    from quantlab.store import TickStore

    with TickStore(store_dir) as st:
        return list(st.symbols())


def add_rule(store_dir: str | os.PathLike[str], rule: Rule, *,
             symbols: list[str] | None = None, check_symbols: bool = True) -> Rule:
    """Store ``rule`` (assigning an id ``r<N>`` if it has none) and return it.

    Its symbols must be in the store (``symbols`` if given, else the store's ``symbols()``);
    otherwise :class:`~quantlab.errors.UnknownSymbolError` names the known ones. A duplicate id
    raises ValueError. Safe while the recorder reads the file and while another process edits.
    """
    if not isinstance(rule, Rule):
        raise TypeError(f"rule: expected a PriceRule, MoveRule, ZScoreRule or SpreadRule, "
                        f"got {type(rule).__name__}")
    store = Path(store_dir)
    if not store.is_dir():
        raise ValueError(f"store: {store} is not a directory; record or import into it first")
    if check_symbols:
        known = symbols if symbols is not None else known_symbols(store)
        if known is not None:
            missing = [s for s in rule.symbols if s not in known]
            if missing:
                have = ", ".join(sorted(known)) or "none"
                raise UnknownSymbolError(
                    f"symbol {', '.join(missing)} is not in the store {store} (known: {have})")
    with _rules_lock(store):
        doc = _rules_doc(store)
        existing = {r.get("id") for r in doc["rules"] if isinstance(r, dict)}
        if rule.id:
            if rule.id in existing:
                raise ValueError(f"id: a rule {rule.id!r} already exists; remove it first or pick another id")
        else:
            n = int(doc.get("next_id", 1))
            while f"r{n}" in existing:
                n += 1
            rule = rule.with_id(f"r{n}")
            doc["next_id"] = n + 1
        doc["rules"].append(rule.to_dict())
        atomic_write_json(alerts_dir(store) / RULES_FILE, doc)
    return rule


def remove_rule(store_dir: str | os.PathLike[str], rule_id: str) -> Rule | None:
    """Delete rule ``rule_id``; returns it (None if the stored entry was not a valid rule).
    An unknown id raises ValueError naming the existing ones."""
    with _rules_lock(store_dir):
        doc = _rules_doc(store_dir)
        keep, gone = [], None
        for item in doc["rules"]:
            if isinstance(item, dict) and item.get("id") == rule_id and gone is None:
                gone = item
            else:
                keep.append(item)
        if gone is None:
            ids = ", ".join(str(r.get("id")) for r in doc["rules"] if isinstance(r, dict)) or "none"
            raise ValueError(f"no alert rule {rule_id!r} (rules: {ids})")
        doc["rules"] = keep
        atomic_write_json(alerts_dir(store_dir) / RULES_FILE, doc)
    try:
        return rule_from_dict(gone)
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------- state


def load_state(store_dir: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        doc = _read_json(alerts_dir(store_dir) / STATE_FILE)
    except ValueError as exc:
        log.warning("%s; starting with fresh rule state", exc)
        return {}
    return doc.get("rules", {}) if isinstance(doc, dict) else {}


def save_state(store_dir: str | os.PathLike[str], state: dict[str, Any]) -> None:
    atomic_write_json(alerts_dir(store_dir) / STATE_FILE, {"version": 1, "rules": state})


# ---------------------------------------------------------------------------- history


@dataclass(frozen=True)
class FiredAlert:
    """One fired alert, as stored in ``history.jsonl``.

    Times are int64 ns since the epoch: ``time_ns`` is the exchange time of the triggering
    trade, ``recv_ns`` its local receipt (-1 if unknown), ``fired_ns`` when the alert was
    recorded; ``latency_s = (fired_ns - recv_ns) / 1e9``. Pair rules also give the open time
    of the bar whose close triggered them (``bar_time_ns``).
    """

    id: str
    rule_id: str
    kind: str
    event: str
    symbols: tuple[str, ...]
    value: float
    threshold: float
    message: str
    time_ns: int
    recv_ns: int
    fired_ns: int
    trade_id: int = -1
    bar_time_ns: int | None = None
    webhook: str | None = None

    @property
    def latency_s(self) -> float | None:
        return (self.fired_ns - self.recv_ns) / 1e9 if self.recv_ns > 0 else None

    @property
    def time(self) -> pd.Timestamp:
        return pd.Timestamp(self.time_ns, unit="ns", tz="UTC")

    def to_dict(self) -> dict[str, Any]:
        lat = self.latency_s
        return {
            "id": self.id, "rule_id": self.rule_id, "kind": self.kind, "event": self.event,
            "symbols": list(self.symbols), "value": self.value, "threshold": self.threshold,
            "message": self.message, "time": self.time.isoformat(), "time_ns": self.time_ns,
            "recv_ns": self.recv_ns, "fired_ns": self.fired_ns, "trade_id": self.trade_id,
            "bar_time_ns": self.bar_time_ns, "webhook": self.webhook,
            "latency_ms": None if lat is None else round(lat * 1e3, 3),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FiredAlert:
        bar = d.get("bar_time_ns")
        return cls(
            id=str(d["id"]), rule_id=str(d["rule_id"]), kind=str(d.get("kind", "")),
            event=str(d.get("event", "")), symbols=tuple(d.get("symbols") or ()),
            value=float(d["value"]), threshold=float(d["threshold"]),
            message=str(d.get("message", "")), time_ns=int(d["time_ns"]),
            recv_ns=int(d.get("recv_ns", -1)), fired_ns=int(d["fired_ns"]),
            trade_id=int(d.get("trade_id", -1)), bar_time_ns=None if bar is None else int(bar),
            webhook=d.get("webhook"),
        )

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S.%f} UTC [{self.rule_id}] {self.message}"


class HistoryWriter:
    """Appends fired alerts to ``history.jsonl`` (one writer: the recorder's AlertService).
    Each line is written with one ``write`` call and flushed, so readers see whole lines."""

    def __init__(self, store_dir: str | os.PathLike[str], name: str = HISTORY_FILE) -> None:
        self.path = alerts_dir(store_dir) / name
        self._f: Any = None

    def write(self, line: str) -> None:
        if self._f is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        self._f.write(line + "\n")
        self._f.flush()

    def append(self, alert: FiredAlert) -> None:
        self.write(alert.to_json())

    def close(self) -> None:
        if self._f is not None:
            with contextlib.suppress(OSError):
                self._f.flush()
                os.fsync(self._f.fileno())
            self._f.close()
            self._f = None


HISTORY_COLUMNS = ["id", "rule_id", "kind", "event", "symbols", "value", "threshold", "message",
                   "trade_id", "recv_time", "fired_at", "latency_ms", "bar_time", "webhook"]


class AlertHistory:
    """Reader of the fired alerts of a store, for notebooks, the app and the CLI.

        h = AlertHistory("data/store")
        h.read()                      # DataFrame of every alert, index "time" (trade time, UTC)
        for a in h.poll(): ...        # alerts fired since the previous poll (not older ones)
        alerts, cursor = h.new_since(cursor)   # the same with an explicit byte cursor
    """

    def __init__(self, store_dir: str | os.PathLike[str]) -> None:
        self.path = alerts_dir(store_dir) / HISTORY_FILE
        self._cursor = self.end()

    def end(self) -> int:
        """A cursor at the end of the history: ``new_since(end())`` returns only newer alerts."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def new_since(self, cursor: int = 0) -> tuple[list[FiredAlert], int]:
        """Alerts written after byte offset ``cursor``, and the cursor to pass next time.
        Only complete lines are read; a history shorter than the cursor (recreated) is read
        from the start."""
        if isinstance(cursor, bool) or not isinstance(cursor, int) or cursor < 0:
            raise ValueError(f"cursor: expected a byte offset (int >= 0) from new_since, got {cursor!r}")
        try:
            with open(self.path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                if size < cursor:
                    cursor = 0
                f.seek(cursor)
                data = f.read(size - cursor)
        except FileNotFoundError:
            return [], 0
        cut = data.rfind(b"\n") + 1
        out = []
        for raw in data[:cut].splitlines():
            if not raw.strip():
                continue
            try:
                out.append(FiredAlert.from_dict(json.loads(raw)))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("%s: unreadable line skipped (%s)", self.path, exc)
        return out, cursor + cut

    def poll(self) -> list[FiredAlert]:
        """Alerts fired since the previous ``poll`` (or since this reader was made)."""
        out, self._cursor = self.new_since(self._cursor)
        return out

    def follow(self, interval: float = 0.5, timeout: float | None = None) -> Iterator[FiredAlert]:
        """Yield new alerts as they are written (blocking), until ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while deadline is None or time.monotonic() < deadline:
            yield from self.poll()
            time.sleep(interval)

    def watch(self, callback: Callable[[FiredAlert], None], interval: float = 0.5) -> AlertWatcher:
        """Call ``callback(alert)`` on a background thread for each alert fired from now on
        (what ``Lab.on_alert`` and the app's toasts use); ``.stop()`` ends it."""
        return AlertWatcher(self, callback, interval)

    def alerts(self) -> list[FiredAlert]:
        return self.new_since(0)[0]

    def read(self, rule_id: str | None = None) -> pd.DataFrame:
        """Every fired alert (optionally of one rule), oldest first::

            index: time (UTC, trade time of the triggering trade)
            columns: id rule_id kind event symbols ("ETHUSDT,BTCUSDT") value threshold
                     message trade_id recv_time fired_at latency_ms bar_time webhook
        """
        return alerts_frame([a for a in self.alerts() if rule_id is None or a.rule_id == rule_id])


class AlertWatcher:
    """A daemon thread polling an :class:`AlertHistory` every ``interval`` seconds."""

    def __init__(self, history: AlertHistory, callback: Callable[[FiredAlert], None],
                 interval: float = 0.5) -> None:
        if not callable(callback):
            raise TypeError(f"callback: expected a function of one FiredAlert, got {callback!r}")
        if not interval > 0:
            raise ValueError(f"interval: {interval!r} must be > 0 seconds")
        self.history, self.callback, self.interval = history, callback, float(interval)
        self._stop = threading.Event()
        self.errors = 0
        self._thread = threading.Thread(target=self._run, name="alerts-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                alerts = self.history.poll()
            except OSError as exc:
                log.warning("alert history not readable: %s", exc)
                continue
            for a in alerts:
                try:
                    self.callback(a)
                except Exception:
                    self.errors += 1
                    log.exception("alert callback failed")

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)


def alerts_frame(alerts: list[FiredAlert]) -> pd.DataFrame:
    """A DataFrame of alerts (the layout of :meth:`AlertHistory.read`)."""
    def ts(ns: list[int | None]) -> pd.Series:
        return pd.to_datetime(pd.Series([n if n is not None and n > 0 else None for n in ns],
                                        dtype="Int64"), unit="ns", utc=True)

    rows = {
        "id": [a.id for a in alerts],
        "rule_id": [a.rule_id for a in alerts],
        "kind": [a.kind for a in alerts],
        "event": [a.event for a in alerts],
        "symbols": [",".join(a.symbols) for a in alerts],
        "value": pd.Series([a.value for a in alerts], dtype="float64"),
        "threshold": pd.Series([a.threshold for a in alerts], dtype="float64"),
        "message": [a.message for a in alerts],
        "trade_id": pd.Series([a.trade_id for a in alerts], dtype="int64"),
        "recv_time": ts([a.recv_ns for a in alerts]).to_numpy(),
        "fired_at": ts([a.fired_ns for a in alerts]).to_numpy(),
        "latency_ms": pd.Series([None if a.latency_s is None else a.latency_s * 1e3
                                 for a in alerts], dtype="float64"),
        "bar_time": ts([a.bar_time_ns for a in alerts]).to_numpy(),
        "webhook": [a.webhook for a in alerts],
    }
    index = pd.DatetimeIndex(pd.to_datetime([a.time_ns for a in alerts], unit="ns", utc=True),
                             name="time")
    frame = pd.DataFrame({k: (v.to_numpy() if isinstance(v, pd.Series) else v)
                          for k, v in rows.items()}, index=index)
    return frame[HISTORY_COLUMNS]
