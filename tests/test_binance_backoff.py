"""Pure reconnect and pacing policy: delays, failure classification, sliding window."""

from __future__ import annotations

import itertools
import random
import socket

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import (
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidMessage,
    InvalidStatus,
    InvalidUpgrade,
    InvalidURI,
)
from websockets.frames import Close
from websockets.http11 import Response

from quantlab.binance.backoff import (
    SlidingWindow,
    WatchdogTimeout,
    backoff_delays,
    classify,
    classify_close_code,
    classify_http_status,
)


def test_delays_grow_exponentially_to_the_cap_without_jitter():
    d = backoff_delays(0.5, 2.0, 5.0, jitter=0.0)
    assert list(itertools.islice(d, 7)) == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_jitter_stays_in_bounds_and_is_never_zero():
    rng = random.Random(7)
    d = list(itertools.islice(backoff_delays(0.1, 3.0, 2.0, jitter=0.5, rng=rng), 2000))
    bases = [min(2.0, 0.1 * 3.0 ** min(i, 10)) for i in range(2000)]
    assert all(b * 0.5 <= x <= b for x, b in zip(d, bases, strict=True))
    assert min(d) >= 0.05  # the floor: no busy loop
    tail = d[10:]
    assert max(tail) - min(tail) > 0.5  # jitter actually spreads the delays
    # seeded generators are reproducible
    again = list(itertools.islice(backoff_delays(0.1, 3.0, 2.0, jitter=0.5, rng=random.Random(7)), 2000))
    assert again == d


@pytest.mark.parametrize(
    "kwargs, match",
    [({"initial_s": 0}, "initial_s"), ({"factor": 0.5}, "factor"),
     ({"initial_s": 2, "cap_s": 1}, "cap_s"), ({"jitter": 1.0}, "jitter")],
)
def test_bad_backoff_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        backoff_delays(**kwargs)


def test_close_codes():
    for code in (1000, 1001, 1006, 1008, 1011, 1012, 1013, 4000, 4999, None):
        assert classify_close_code(code), code
    for code in (1002, 1003, 1007, 1009, 1010, 1015, 3000, 3003):
        assert not classify_close_code(code), code


def test_http_statuses():
    for status in (408, 425, 429, 500, 502, 503, 504):
        assert classify_http_status(status), status
    for status in (301, 400, 401, 403, 404, 418):
        assert not classify_http_status(status), status


def _status(code, headers=(), body=b""):
    return InvalidStatus(Response(code, "x", Headers(list(headers)), body))


def test_classify_exceptions():
    assert classify(ConnectionRefusedError(111, "Connection refused")).retryable
    assert classify(socket.gaierror(-2, "Name or service not known")).retryable
    assert classify(TimeoutError()).retryable
    assert classify(WatchdogTimeout("no data for 10 s")).reason == "no data for 10 s"
    assert classify(InvalidMessage("did not receive a valid HTTP response")).retryable
    cut = classify(ConnectionClosedError(None, None))
    assert cut.retryable and "1006" in cut.reason
    assert classify(ConnectionClosedOK(Close(1000, ""), Close(1000, ""), True)).retryable
    bad = classify(ConnectionClosedError(Close(1002, "protocol error"), None))
    assert not bad.retryable and "1002" in bad.reason
    assert not classify(InvalidURI("foo://bar", "scheme isn't ws or wss")).retryable
    assert not classify(InvalidUpgrade("Upgrade", "h2")).retryable
    nf = classify(_status(404, body=b"Not Found"))
    assert not nf.retryable and "HTTP 404" in nf.reason and "Not Found" in nf.reason
    busy = classify(_status(429, [("Retry-After", "7")]))
    assert busy.retryable and busy.retry_after_s == 7.0
    ban = classify(_status(418, [("Retry-After", "120")]))
    assert not ban.retryable and "banned" in ban.reason
    assert classify(_status(503)).retryable
    assert not classify(KeyError("bug")).retryable  # unknown exceptions surface


def test_sliding_window_is_strict():
    w = SlidingWindow(4, 1.0)
    t, sent = 0.0, []
    for _ in range(20):
        t += w.delay(t)
        sent.append(t)
        w.record(t)
    # never more than 4 events in any window of 1 s (closed at both ends minus epsilon)
    for i in range(len(sent) - 4):
        assert sent[i + 4] - sent[i] >= 1.0 - 1e-12
    assert w.count(sent[-1]) <= 4
    with pytest.raises(ValueError, match="limit"):
        SlidingWindow(0, 1.0)
    with pytest.raises(ValueError, match="window_s"):
        SlidingWindow(4, 0)
