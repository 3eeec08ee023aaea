"""AlertService as the recorder runs it: rules file, history, restart, webhooks on loopback."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest

from quantlab.alerts import (
    AlertHistory,
    AlertService,
    PriceRule,
    WebhookDispatcher,
    ZScoreRule,
    add_rule,
    remove_rule,
)
from quantlab.alerts.webhook import is_retryable

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000
MS = 1_000_000


def ticks_frame(prices, *, start_ns=T0, step_ns=S, first_id=1, recv_delay_ns=5 * MS):
    """A batch as the recorder hands it over (time/recv_time as int64 ns columns)."""
    p = np.asarray(prices, dtype=np.float64)
    t = start_ns + np.arange(len(p), dtype=np.int64) * step_ns
    return pd.DataFrame({
        "trade_id": first_id + np.arange(len(p), dtype=np.int64), "price": p,
        "qty": np.full(len(p), 0.01), "is_buyer_maker": np.zeros(len(p), bool),
        "time": t, "recv_time": t + recv_delay_ns,
    })


class Clock:
    """Wall clock of a replay: 2 ms after the receipt of the batch being processed."""

    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


def run_batches(svc, symbol, frame, batch=50, clock=None):
    out = []
    for i in range(0, len(frame), batch):
        b = frame.iloc[i:i + batch]
        if clock is not None:
            clock.now = int(b["recv_time"].max()) + 2 * MS
        out += svc.process_trades(symbol, b)
    return out


def crossing_prices(level=70_000.0, crossings=3, seed=0):
    """Cross ``level`` upwards ``crossings`` times, hovering at the level after each crossing
    (noise inside the default hysteresis) and falling well below in between."""
    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(crossings):
        parts += [np.linspace(level - 500, level, 50), level + rng.uniform(-60, 60, 400),
                  np.linspace(level, level - 500, 50)]
    return np.concatenate(parts)


class Receiver:
    """A webhook receiver on 127.0.0.1: answers each POST with the next of ``script``
    (an HTTP status, or "hang" to answer only after ``hang_s``), then 200."""

    def __init__(self, script=(), hang_s=3.0):
        self.script = list(script)
        self.bodies: list[dict] = []
        self.release = threading.Event()
        self.hang_s = hang_s
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(n))
                outer.bodies.append(body)
                action = outer.script.pop(0) if outer.script else 200
                if action == "hang":
                    outer.release.wait(outer.hang_s)
                    action = 200
                try:
                    self.send_response(action)
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(script=(), hang_s=3.0):
        r = Receiver(script, hang_s)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


@pytest.fixture
def store(tmp_path):
    """A real tick store holding BTCUSDT and ETHUSDT (so rule symbols are checked)."""
    from quantlab.store import TickStore

    path = tmp_path / "store"
    with TickStore(path, mode="a") as st:
        for sym in ("BTCUSDT", "ETHUSDT"):
            st.append(sym, ticks_frame([100.0, 100.5], start_ns=T0 - 3600 * S).drop(columns="recv_time"))
        st.flush()
    return path


def test_price_crossing_fires_once_per_crossing_and_reaches_the_webhook(store, receiver):
    rcv = receiver()
    rule = add_rule(store, PriceRule(symbol="BTCUSDT", op="above", level=70_000, webhook=rcv.url))
    clock = Clock()
    svc = AlertService(store, now_ns=clock, bars_loader=False)
    prices = crossing_prices(crossings=3)
    fired = run_batches(svc, "BTCUSDT", ticks_frame(prices), batch=37, clock=clock)
    assert svc.process_trades("ETHUSDT", ticks_frame(prices)) == []  # no rule for it
    assert len(fired) == 3 and {a.event for a in fired} == {"above"}
    assert all(a.rule_id == rule.id and a.symbols == ("BTCUSDT",) for a in fired)
    assert all(a.value >= 70_000 and a.threshold == 70_000 for a in fired)
    assert all(a.recv_ns == a.time_ns + 5 * MS and a.latency_s is not None for a in fired)
    assert svc.webhook.join(5)
    assert sorted(b["id"] for b in rcv.bodies) == sorted(a.id for a in fired)
    body = next(b for b in rcv.bodies if b["id"] == fired[0].id)
    assert body["rule_id"] == rule.id and body["value"] == fired[0].value
    assert body["symbols"] == ["BTCUSDT"] and "70000" in body["message"]
    svc.close()
    hist = AlertHistory(store).read()
    assert list(hist["id"]) == [a.id for a in fired]
    assert hist.index.name == "time" and str(hist.index.tz) == "UTC"
    # fired 2 ms after the last receipt of its batch, triggered by a trade of that batch
    assert (hist["latency_ms"] >= 2).all() and (hist["latency_ms"] <= 2 + 36 * 1000).all()
    deliveries = [json.loads(line) for line in (store / "alerts" / "deliveries.jsonl").read_text().splitlines()]
    assert len(deliveries) == 3 and all(d["ok"] and d["attempts"] == 1 for d in deliveries)


def test_history_and_state_survive_a_restart(store):
    add_rule(store, PriceRule(symbol="BTCUSDT", op="above", level=70_000))
    prices = crossing_prices(crossings=1)
    frame = ticks_frame(prices)
    svc = AlertService(store, bars_loader=False)
    first = run_batches(svc, "BTCUSDT", frame.iloc[:300])  # crossed, now hovering
    assert len(first) == 1
    svc.close()
    svc2 = AlertService(store, bars_loader=False)
    # still hovering above the level after the restart: no repeat
    assert run_batches(svc2, "BTCUSDT", frame.iloc[300:]) == []
    again = run_batches(svc2, "BTCUSDT", ticks_frame(crossing_prices(crossings=1, seed=1),
                                                     start_ns=T0 + 10_000 * S, first_id=10_000))
    assert len(again) == 1
    svc2.close()
    hist = AlertHistory(store).read()
    assert list(hist["id"]) == [first[0].id, again[0].id]


def test_rules_added_while_running_are_picked_up(store):
    svc = AlertService(store, bars_loader=False)
    assert svc.process_trades("BTCUSDT", ticks_frame([71_000.0])) == []
    assert not svc.poll_rules()  # nothing changed: one stat
    rule = add_rule(store, PriceRule(symbol="BTCUSDT", op="below", level=70_000))
    assert svc.poll_rules()
    fired = svc.process_trades("BTCUSDT", ticks_frame([69_000.0], start_ns=T0 + S, first_id=2))
    assert [a.rule_id for a in fired] == [rule.id]
    remove_rule(store, rule.id)
    assert svc.poll_rules() and svc.rules == []
    (store / "alerts" / "rules.json").write_text("{not json")  # a broken file never raises
    assert not svc.poll_rules()
    svc.close()


def test_history_reader_cursor(store):
    add_rule(store, PriceRule(symbol="BTCUSDT", op="cross", level=100, hysteresis=0.5))
    reader = AlertHistory(store)
    assert reader.poll() == [] and reader.read().empty
    svc = AlertService(store, bars_loader=False)
    svc.process_trades("BTCUSDT", ticks_frame([99, 101, 99]))
    got = reader.poll()
    assert [a.event for a in got] == ["cross_up", "cross_down"]
    assert reader.poll() == []
    svc.process_trades("BTCUSDT", ticks_frame([101], start_ns=T0 + 10 * S, first_id=10))
    alerts, cursor = reader.new_since(0)
    assert len(alerts) == 3
    assert reader.new_since(cursor) == ([], cursor)
    with open(store / "alerts" / "history.jsonl", "a") as f:
        f.write('{"id": "half a line')  # a line being written is not read yet
    assert reader.new_since(cursor) == ([], cursor)
    assert [a.event for a in reader.poll()] == ["cross_up"]
    svc.close()
    with pytest.raises(ValueError, match="cursor"):
        reader.new_since(-1)


def test_zscore_rule_through_the_service_with_store_warm_up(store):
    """Stored 1m bars fill the window at start; the first live bar after a shock fires."""
    from quantlab.store import TickStore

    rng = np.random.default_rng(5)
    from quantlab.analytics import PairSpec

    n_bars, window = 40, 10
    start = T0 - T0 % (60 * S) + 100_000 * S
    t = start + np.arange(n_bars * 6) * 10 * S
    x = 100 + np.cumsum(rng.normal(0, 0.05, t.size))
    y = 2 * x + 5 + rng.normal(0, 0.02, t.size)
    cut = (n_bars - 5) * 6  # the last 5 bars arrive live
    with TickStore(store, mode="a") as st:
        st.append("ETHUSDT", ticks_frame(y[:cut], start_ns=start, step_ns=10 * S, first_id=10).drop(columns="recv_time"))
        st.append("BTCUSDT", ticks_frame(x[:cut], start_ns=start + 3 * S, step_ns=10 * S, first_id=10).drop(columns="recv_time"))
    rule = add_rule(store, ZScoreRule(y="ETHUSDT", x="BTCUSDT", k=3,
                                      spec=PairSpec(window=window, z_window=20)))
    svc = AlertService(store)
    y_live = y[cut:].copy()
    y_live[6:] += 0.3  # a shock in the second live bar
    fired = []
    for i in range(0, t.size - cut, 3):
        sl = slice(i, i + 3)
        fired += svc.process_trades("ETHUSDT", ticks_frame(y_live[sl], start_ns=int(t[cut + i]), step_ns=10 * S,
                                                           first_id=10 + cut + i))
        fired += svc.process_trades("BTCUSDT", ticks_frame(x[cut:][sl], start_ns=int(t[cut + i]) + 3 * S,
                                                           step_ns=10 * S, first_id=10 + cut + i))
    svc.close()
    assert [a.rule_id for a in fired] == [rule.id]
    a = fired[0]
    assert a.event == "zscore_above" and a.value >= 3
    assert a.bar_time_ns == (t[cut + 6] // (60 * S)) * 60 * S  # no wait for a live window
    assert "ETHUSDT/BTCUSDT" in a.message and a.symbols == ("ETHUSDT", "BTCUSDT")
    assert AlertHistory(store).read()["kind"].tolist() == ["zscore"]


# ---------------------------------------------------------------------------- webhooks


def test_backoff_policy():
    d = WebhookDispatcher(retries=8, base_delay=0.5, max_delay=5.0).retry_delays()
    nominal = [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0]  # doubling, capped at max_delay
    assert len(d) == 8 and all(0.9 * n <= x <= n for x, n in zip(d, nominal, strict=True))
    assert WebhookDispatcher(retries=0).retry_delays() == []
    with pytest.raises(ValueError, match="base_delay"):
        WebhookDispatcher(base_delay=0)
    assert is_retryable(None) and is_retryable(500) and is_retryable(429)
    assert not is_retryable(404) and not is_retryable(400)


def test_webhook_retries_500_then_succeeds(receiver):
    rcv = receiver([500, 503])
    results = []
    wh = WebhookDispatcher(retries=3, base_delay=0.05, on_result=results.append)
    assert wh.submit(rcv.url, {"id": "a1"}, "a1")
    assert wh.join(5)
    wh.close()
    assert len(rcv.bodies) == 3 and results[0].ok and results[0].attempts == 3
    assert wh.stats()["delivered"] == 1 and wh.stats()["retried"] == 2


def test_webhook_gives_up_logs_and_counts(receiver, caplog):
    rcv = receiver([500] * 10)
    results = []
    wh = WebhookDispatcher(retries=2, base_delay=0.02, on_result=results.append)
    with caplog.at_level(logging.WARNING, logger="quantlab.alerts.webhook"):
        wh.submit(rcv.url, {"id": "a1"}, "a1")
        assert wh.join(5)
    assert len(rcv.bodies) == 3  # 1 + 2 retries
    assert not results[0].ok and results[0].error == "HTTP 500" and wh.stats()["failed"] == 1
    assert "failed after 3 attempt(s): HTTP 500" in caplog.text
    rcv404 = receiver([404])
    wh.submit(rcv404.url, {"id": "a2"}, "a2")
    assert wh.join(5)
    wh.close()
    assert len(rcv404.bodies) == 1 and results[1].attempts == 1  # a 4xx is not retried


def test_webhook_timeout_is_retried_and_close_does_not_hang(receiver):
    rcv = receiver(["hang", "hang"], hang_s=3.0)
    results = []
    wh = WebhookDispatcher(timeout=0.2, retries=2, base_delay=0.05, on_result=results.append)
    t0 = time.monotonic()
    wh.submit(rcv.url, {"id": "a1"}, "a1")
    assert wh.join(5)
    assert results[0].ok and results[0].attempts == 3 and time.monotonic() - t0 < 2.5
    wh2 = WebhookDispatcher(timeout=2.0, retries=5, base_delay=0.05)
    rcv2 = receiver(["hang"] * 10, hang_s=3.0)
    wh2.submit(rcv2.url, {"id": "a2"}, "a2")
    t0 = time.monotonic()
    wh2.close(drain=0.1)
    wh.close()
    assert time.monotonic() - t0 < 1.0


def test_dead_webhook_does_not_slow_ingestion(store, receiver):
    """Same batches, a rule firing on most of them: webhook hung vs. no webhook."""
    rcv = receiver(["hang"] * 10_000, hang_s=3.0)
    rng = np.random.default_rng(0)
    prices = 100 + np.where(np.arange(20_000) % 40 < 20, 1.0, -1.0) + rng.normal(0, 0.01, 20_000)
    frame = ticks_frame(prices)
    batches = [frame.iloc[i:i + 100] for i in range(0, len(frame), 100)]

    runs = iter(range(100))

    def timed(webhook):
        d = store / f"copy-{next(runs)}"
        d.mkdir()
        add_rule(d, PriceRule(symbol="BTCUSDT", op="cross", level=100, hysteresis=0.5, webhook=webhook),
                 check_symbols=False)
        svc = AlertService(d, bars_loader=False,
                           webhook=WebhookDispatcher(timeout=2.0, retries=3, max_queue=100))
        t0 = time.perf_counter()
        n = sum(len(svc.process_trades("BTCUSDT", b)) for b in batches)
        dt = time.perf_counter() - t0
        stats = svc.stats()
        svc.close(drain=0.0)
        return dt, n, stats

    timed(None)  # warm-up
    base, n0, _ = timed(None)
    hung, n1, stats = timed(rcv.url)
    assert n0 == n1 and n0 > 900
    assert stats["webhook_dropped"] > 0  # the bounded queue filled up: dropped, not blocked
    assert hung < 2.5 * base + 0.05, (hung, base)


# ---------------------------------------------------------------------------- notebooks


def test_watch_follows_the_history(store):
    """(The toast that shows these alerts is tested in tests/test_ui_toast.py.)"""
    add_rule(store, PriceRule(symbol="BTCUSDT", op="cross", level=100, hysteresis=0.5))
    svc = AlertService(store, bars_loader=False)
    svc.process_trades("BTCUSDT", ticks_frame([99, 101]))  # an alert before watching begins
    seen = []
    watcher = AlertHistory(store).watch(seen.append, interval=0.05)
    svc.process_trades("BTCUSDT", ticks_frame([99], start_ns=T0 + 5 * S, first_id=5))
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.02)
    watcher.stop()
    assert [a.event for a in seen] == ["cross_down"]  # only alerts fired after watching began
    svc.close()
    assert not watcher.running


def test_store_read_layout_and_bad_batches(store, caplog):
    """Ticks as ``TickStore.read`` returns them (DatetimeIndex, recv_time NaT) work too;
    a batch the service cannot read is logged and counted, never raised."""
    from quantlab.store import TickStore

    add_rule(store, PriceRule(symbol="BTCUSDT", op="above", level=100.2))
    svc = AlertService(store, bars_loader=False)
    with TickStore(store) as st:
        stored = st.read("BTCUSDT")
    assert isinstance(stored.index, pd.DatetimeIndex)
    stored["recv_time"] = pd.Series([pd.NaT, pd.Timestamp(T0, tz="UTC")], index=stored.index)
    fired = svc.process_trades("BTCUSDT", stored)
    assert [a.value for a in fired] == [100.5] and fired[0].recv_ns == T0
    assert fired[0].time_ns == T0 - 3600 * S + S
    svc.process_trades("BTCUSDT", ticks_frame([100.0], start_ns=T0, first_id=3))  # re-arm
    nat = ticks_frame([101.0], start_ns=T0 + S, first_id=4)
    nat["recv_time"] = pd.Series([pd.NaT], dtype="datetime64[ns, UTC]")
    fired = svc.process_trades("BTCUSDT", nat)  # receipt unknown: no latency
    assert fired[0].recv_ns == -1 and fired[0].latency_s is None
    assert svc.process_trades("BTCUSDT", pd.DataFrame({"price": [1.0]})) == []
    assert svc.stats()["errors"] == 1 and "alert evaluation failed" in caplog.text
    svc.close()
    assert np.isnan(AlertHistory(store).read()["latency_ms"].iloc[-1])
