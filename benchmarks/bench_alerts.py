"""Alerts on the ingest path: what ``AlertService.process_trades`` costs the recorder.

Rows:
* price rules, vectorised over recorder-sized batches vs. a per-trade Python loop of the
  same state machine (the obvious implementation);
* the same batches with every alert posted to a webhook that never answers vs. no webhook
  (the goal: the same cost, since delivery is queued to worker threads);
* a symbol without rules (a dict look-up);
* in-process alert latency (receipt stamped just before ``process_trades`` to the alert
  written to the history), p99;
* a z-score rule's work per closed bar (hedge + z-score through ``quantlab.analytics``).
"""

from __future__ import annotations

import logging
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _table import Row, best_of

from quantlab.alerts import AlertService, PriceRule, WebhookDispatcher, ZScoreRule, add_rule
from quantlab.alerts.engine import legs_for

T0 = 1_723_161_255_000_000_000


def _frame(n: int, seed: int = 0, swing: float = 50.0) -> pd.DataFrame:
    """Trades 1 ms apart swinging slowly through the rules' levels (plus noise)."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    price = 60_000 + swing * np.sin(i / 3000) + rng.normal(0, 5, n)
    t = T0 + i * 1_000_000
    return pd.DataFrame({"trade_id": i + 1, "price": price, "qty": 0.01, "is_buyer_maker": False,
                         "time": t, "recv_time": t + 3_000_000})


def _python_loop(rules, frame) -> int:
    """Reference: the same legs evaluated trade by trade in Python."""
    states = [[[leg, leg.armed] for leg in legs_for(r)] for r in rules]
    fired = 0
    for p in frame["price"].tolist():
        for legs in states:
            for st in legs:
                leg = st[0]
                if st[1] and leg.hit(p):
                    st[1] = False
                    fired += 1
                elif not st[1] and leg.rearm(p):
                    st[1] = True
    return fired


class _BlackHole:
    """A TCP listener on 127.0.0.1 that accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.conns: list[socket.socket] = []
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                continue

    def close(self) -> None:
        self.stop.set()
        for c in self.conns:
            c.close()
        self.sock.close()


def _service(d: Path, rules, webhook: str | None = None) -> AlertService:
    d.mkdir(parents=True)
    for r in rules:
        add_rule(d, r.with_id("") if webhook is None else type(r)(**{**r._fields(), "webhook": webhook}),
                 check_symbols=False)
    return AlertService(d, bars_loader=False,
                        webhook=WebhookDispatcher(timeout=5.0, retries=3, max_queue=1000))


def run(quick: bool = False) -> list[Row]:
    n, batch = (50_000, 100) if quick else (200_000, 100)
    frame = _frame(n)
    batches = [frame.iloc[i:i + batch].copy() for i in range(0, n, batch)]
    levels = 60_000 + np.linspace(-40, 40, 10)
    # default hysteresis (0.1 % = 60): the noise around a level does not re-fire
    rules = [PriceRule(symbol="BTCUSDT", op="cross", level=float(lv)) for lv in levels]
    tmp = Path(tempfile.mkdtemp(prefix="qlbench-alerts-"))
    rows: list[Row] = []
    hole = _BlackHole()
    wlog = logging.getLogger("quantlab.alerts.webhook")
    level = wlog.level
    wlog.setLevel(logging.ERROR)  # the hung deliveries fail after the run, by design
    try:
        runs = iter(range(1000))

        def feed(webhook: str | None, symbol: str = "BTCUSDT") -> tuple[float, int, AlertService]:
            svc = _service(tmp / f"s{next(runs)}", rules, webhook)
            t0 = time.perf_counter()
            fired = 0
            for b in batches:
                fired += len(svc.process_trades(symbol, b))
            return time.perf_counter() - t0, fired, svc

        feed(None)[2].close(0)  # warm-up
        base = min(feed(None) for _ in range(2))
        base[2].close(0)
        t_loop = best_of(lambda: _python_loop(rules, frame.iloc[: n // 10]), repeat=1) * 10
        rows.append(Row("alerts", f"10 price rules, {batch}-trade batches ({base[1]} alerts; "
                        "per-trade Python loop = ref)", n / base[0], "trades/s",
                        reference=n / t_loop, ratio=t_loop / base[0], goal=">= 1x"))
        big = [frame.iloc[i:i + 2000].copy() for i in range(0, n, 2000)]
        svc = _service(tmp / "big", rules)
        t_big = best_of(lambda: [svc.process_trades("BTCUSDT", b) for b in big], repeat=2)
        svc.close(0)
        rows.append(Row("alerts", "10 price rules, 2000-trade batches (per-trade Python loop = ref)",
                        n / t_big, "trades/s", reference=n / t_loop, ratio=t_loop / t_big,
                        goal=">= 10x"))

        hung = feed(hole.url)
        stats = hung[2].stats()
        hung[2].close(0)
        rows.append(Row("alerts", f"same, every alert to a webhook that never answers "
                        f"({stats['webhook_pending']} pending; no webhook = ref)", hung[0] / len(batches) * 1e6,
                        "us/batch", reference=base[0] / len(batches) * 1e6, ratio=base[0] / hung[0],
                        goal="~1x (>= 0.7x)"))

        other = feed(None, symbol="ETHUSDT")
        other[2].close(0)
        rows.append(Row("alerts", "a batch of a symbol without rules", other[0] / len(batches) * 1e9,
                        "ns/batch", goal="< 5 us"))

        # in-process latency: receipt stamped just before the call; alert written to history
        svc = _service(tmp / "latency", rules)
        lat = []
        for b in batches[: len(batches) // 2]:
            b = b.copy()
            b["recv_time"] = time.time_ns()
            lat += [a.latency_s for a in svc.process_trades("BTCUSDT", b)]
        svc.close(0)
        p99 = float(np.percentile(lat, 99)) * 1e3
        rows.append(Row("alerts", f"alert latency inside the recorder, p99 of {len(lat)} alerts",
                        p99, "ms", goal="<< 1000 ms (issue: p99 < 1 s end to end)"))

        # a z-score rule's evaluation on each closed bar
        rng = np.random.default_rng(1)
        x = 100 + np.cumsum(rng.normal(0, 0.1, 2_000))
        y = 2 * x + rng.normal(0, 0.1, 2_000)
        rule = ZScoreRule(y="ETHUSDT", x="BTCUSDT", k=2, window=240)
        stream = rule.spec.incremental()
        for a, b in zip(y[:1_000], x[:1_000], strict=True):  # warm
            stream.update(a, b)
        t0 = time.perf_counter()
        for a, b in zip(y[1_000:], x[1_000:], strict=True):
            stream.update(a, b)
        t_bar = (time.perf_counter() - t0) / 1_000
        rows.append(Row("alerts", "z-score rule per closed bar (rolling OLS hedge + z, 240-bar "
                        "window, incremental)", t_bar * 1e3, "ms", goal="< 5 ms (once a bar)"))
    finally:
        wlog.setLevel(level)
        hole.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


if __name__ == "__main__":
    for r in run(quick=True):
        print(r)
