"""Webhook delivery in the background: HTTP POST of a JSON body, timeout, retries, backoff.

``submit()`` only puts the alert on a bounded queue (never blocks, never raises); worker
threads do the HTTP. Policy (documented, and what the tests check):

* each attempt has ``timeout`` seconds (default 5) to connect and answer;
* a connection error, a timeout, HTTP 5xx or 429 is retried, up to ``retries`` more attempts
  (default 3, so 4 in all), after the package's one backoff rule
  (:func:`quantlab.binance.backoff.backoff_delays`): 0.5 s, 1 s, 2 s ... doubling, capped at
  ``max_delay`` (default 30 s), each shortened by up to 10 % at random (never lengthened, so
  ``max_delay`` is a true maximum);
* any other answer >= 300 (a 4xx: the request itself is wrong) fails at once;
* a failure is logged (WARNING) and counted in ``stats()["failed"]``; every outcome is handed
  to ``on_result`` (the service appends it to ``deliveries.jsonl``);
* a full queue (``max_queue``, default 1000) drops the alert, logged and counted ``dropped``.

Body: the fired alert's JSON (:meth:`FiredAlert.to_dict`), ``Content-Type: application/json``.
"""

from __future__ import annotations

import itertools
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from quantlab.binance.backoff import backoff_delays

log = logging.getLogger(__name__)

#: ``post(url, body, timeout) -> HTTP status``; raises OSError on connection errors/timeouts
PostFn = Callable[[str, bytes, float], int]


def is_retryable(status: int | None) -> bool:
    """None (no answer: connection error or timeout), 5xx and 429 are worth retrying."""
    return status is None or status >= 500 or status == 429


def post_json(url: str, body: bytes, timeout: float) -> int:
    """POST ``body`` with the standard library; returns the HTTP status (4xx/5xx included)."""
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json",
                                          "User-Agent": "quantlab-alerts"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (http(s) only)
            resp.read(65536)
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@dataclass(frozen=True)
class DeliveryResult:
    alert_id: str
    url: str
    ok: bool
    attempts: int
    status: int | None
    error: str
    elapsed_s: float
    finished_ns: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Job:
    alert_id: str
    url: str
    payload: Any  # a dict, or an object with ``to_dict()`` (serialised on the worker thread)

    def body(self) -> bytes:
        data = self.payload.to_dict() if hasattr(self.payload, "to_dict") else self.payload
        return json.dumps(data).encode()


_STOP = object()
JITTER = 0.1  # each retry delay is shortened by up to 10 % so that many alerts do not retry in step


class WebhookDispatcher:
    """Bounded queue + ``workers`` daemon threads (started on the first ``submit``)."""

    def __init__(self, *, timeout: float = 5.0, retries: int = 3, base_delay: float = 0.5,
                 max_delay: float = 30.0, workers: int = 2, max_queue: int = 1000,
                 on_result: Callable[[DeliveryResult], None] | None = None,
                 post: PostFn = post_json) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout: {timeout!r} must be > 0 seconds")
        if retries < 0:
            raise ValueError(f"retries: {retries!r} must be >= 0")
        if workers < 1:
            raise ValueError(f"workers: {workers!r} must be >= 1")
        if not base_delay > 0:
            raise ValueError(f"base_delay: {base_delay!r} must be > 0 seconds")
        if not max_delay >= base_delay:
            raise ValueError(f"max_delay: {max_delay!r} must be >= base_delay ({base_delay})")
        self.timeout, self.retries = float(timeout), int(retries)
        self.base_delay, self.max_delay = float(base_delay), float(max_delay)
        self.n_workers = int(workers)
        self.on_result = on_result
        self.post = post
        self._q: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._in_flight = 0
        self._counts = {"submitted": 0, "delivered": 0, "failed": 0, "retried": 0, "dropped": 0}

    def submit(self, url: str, payload: Any, alert_id: str = "") -> bool:
        """Queue one delivery of ``payload`` (a JSON-able dict, or an object with
        ``to_dict()``, serialised on the worker thread); False (logged, counted) if the queue
        is full or closed. Never blocks."""
        if self._stop.is_set():
            self._count("dropped")
            return False
        if not self._threads:
            self._start()
        try:
            self._q.put_nowait(_Job(alert_id, url, payload))
        except queue.Full:
            self._count("dropped")
            n = self._counts["dropped"]
            if n & (n - 1) == 0:  # 1st, 2nd, 4th, 8th ... drop: logged without flooding
                log.warning("webhook queue full: alert %s to %s dropped (%d dropped so far)",
                            alert_id, url, n)
            return False
        self._count("submitted")
        return True

    def _start(self) -> None:
        with self._lock:
            if self._threads:
                return
            for i in range(self.n_workers):
                th = threading.Thread(target=self._work, name=f"alerts-webhook-{i}", daemon=True)
                th.start()
                self._threads.append(th)

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {**self._counts, "pending": self._q.qsize() + self._in_flight}

    def _work(self) -> None:
        while True:
            job = self._q.get()
            if job is _STOP:
                self._q.task_done()
                return
            with self._lock:
                self._in_flight += 1
            try:
                self._deliver(job)
            except Exception:  # never let a worker die
                log.exception("webhook worker error")
            finally:
                with self._lock:
                    self._in_flight -= 1
                self._q.task_done()

    def retry_delays(self) -> list[float]:
        """Seconds to wait before each retry of one delivery (``retries`` of them)."""
        return list(itertools.islice(
            backoff_delays(self.base_delay, 2.0, self.max_delay, jitter=JITTER), self.retries))

    def _deliver(self, job: _Job) -> None:
        t0 = time.monotonic()
        body = job.body()
        delays = self.retry_delays()
        attempts, status, error = 0, None, ""
        while True:
            attempts += 1
            try:
                status = self.post(job.url, body, self.timeout)
                error = "" if status < 300 else f"HTTP {status}"
            except Exception as exc:  # timeouts, refused connections, DNS ...
                status, error = None, f"{type(exc).__name__}: {exc}"
            ok = status is not None and status < 300
            if ok or not is_retryable(status) or attempts > len(delays) or self._stop.is_set():
                break
            self._count("retried")
            if self._stop.wait(delays[attempts - 1]):
                error += " (abandoned at shutdown)"
                break
        self._count("delivered" if ok else "failed")
        if not ok:
            log.warning("webhook %s for alert %s failed after %d attempt(s): %s",
                        job.url, job.alert_id, attempts, error)
        if self.on_result is not None:
            try:
                self.on_result(DeliveryResult(job.alert_id, job.url, ok, attempts, status, error,
                                              round(time.monotonic() - t0, 6), time.time_ns()))
            except Exception:
                log.exception("webhook result callback failed")

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every queued delivery is finished (True) or ``timeout`` passes."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.stats()["pending"]:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, drain: float = 2.0) -> None:
        """Give queued deliveries up to ``drain`` seconds, then stop the workers: what is still
        queued is counted failed (one warning), a request in flight finishes its current
        attempt in the background, with no more retries."""
        if self._threads:
            self.join(drain)
        self._stop.set()
        abandoned = 0
        while True:  # what is still queued is not attempted any more
            try:
                job = self._q.get_nowait()
            except queue.Empty:
                break
            self._q.task_done()
            if job is not _STOP:
                abandoned += 1
        if abandoned:
            self._count("failed", abandoned)
            log.warning("%d webhook deliveries abandoned at shutdown", abandoned)
        for _ in self._threads:
            try:
                self._q.put_nowait(_STOP)
            except queue.Full:
                break
        for th in self._threads:
            th.join(0.05)
