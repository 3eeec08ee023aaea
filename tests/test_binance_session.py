"""StreamSession without sockets, tasks or sleeps: events in with an explicit clock, actions out."""

from __future__ import annotations

import functools
import json

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus
from websockets.frames import Close as CloseFrame
from websockets.http11 import Response

from quantlab.binance.backoff import backoff_delays
from quantlab.binance.protocol import AggTrade, ErrorFrame, ServerShutdown, Trade
from quantlab.binance.session import (
    Close,
    Connected,
    ControlError,
    Disconnected,
    Fail,
    Open,
    Reply,
    Send,
    StreamError,
    StreamSession,
)

BASE = "wss://stream.binance.com:9443"
FAST = functools.partial(backoff_delays, initial_s=0.1, factor=2.0, cap_s=0.4, jitter=0.0)


def trade(symbol: str, tid: int) -> str:
    ms = 1_723_161_255_000 + tid
    return json.dumps({"stream": f"{symbol.lower()}@trade", "data": {
        "e": "trade", "E": ms + 1, "s": symbol, "t": tid, "p": "100.5", "q": "0.01",
        "T": ms, "m": False, "M": True}})


def agg(symbol: str, aid: int) -> str:
    return json.dumps({"stream": f"{symbol.lower()}@aggTrade", "data": {
        "e": "aggTrade", "E": 1_723_161_255_001, "s": symbol, "a": aid, "p": "100.5", "q": "0.01",
        "f": 10 * aid, "l": 10 * aid + 1, "T": 1_723_161_255_000, "m": True, "M": True}})


def cut() -> ConnectionClosedError:
    return ConnectionClosedError(None, None)  # TCP cut, no close frame (1006)


def closed(code: int, reason: str = "") -> ConnectionClosedOK | ConnectionClosedError:
    cls = ConnectionClosedOK if code in (1000, 1001) else ConnectionClosedError
    return cls(CloseFrame(code, reason), None)


class Run:
    """A session and what it said: ``acts`` and ``events`` since the last ``take()``."""

    def __init__(self, symbols=("BTCUSDT",), **kw):
        kw.setdefault("time_unit", None)
        kw.setdefault("backoff", FAST)
        self.s = StreamSession(BASE, list(symbols), **kw)

    def take(self):
        return self.s.actions(), self.s.events_received()

    def opened(self, now: float = 0.0) -> int:
        """start() (first call) and connect the link it asks for; returns the link id (its
        Connected event is taken; ``self.attempt`` is its attempt number)."""
        if not self.s._started:
            self.s.start(now)
        acts, _ = self.take()
        (op,) = [a for a in acts if isinstance(a, Open)]
        self.s.connected(op.link, now)
        (ev,) = self.s.events_received()
        assert ev == Connected(op.url, ev.attempt) and not op.rotation
        self.attempt = ev.attempt
        return op.link

    def overlapping(self) -> tuple[int, int]:
        """An open connection that delivered trade 1, and a rotation's new one open at 0.0
        (on standby); returns their link ids."""
        old = self.opened(0.0)
        self.frames(old, trade("BTCUSDT", 1))
        self.s.request_rotation()
        self.s.tick(0.0)
        (op,), _ = self.take()
        assert op.rotation
        self.s.connected(op.link, 0.0)
        return old, op.link

    def frames(self, link: int, *texts: str, now: float = 0.0) -> list:
        for text in texts:
            self.s.frame_received(link, text, 1, now)
        return self.s.events_received()


def ids(events) -> list[int]:
    return [e.trade_id for e in events if isinstance(e, Trade)]


# --------------------------------------------------------------------------- de-duplication


def test_each_trade_id_once_per_symbol_and_ids_only_move_forward():
    r = Run(["BTCUSDT", "ETHUSDT"], kinds=("trade", "aggTrade"))
    link = r.opened()
    ev = r.frames(link, trade("BTCUSDT", 5), trade("ETHUSDT", 5), trade("BTCUSDT", 5),
                  trade("BTCUSDT", 4), trade("BTCUSDT", 6), agg("BTCUSDT", 5), agg("BTCUSDT", 5))
    got = [(type(e).__name__, e.symbol, e.trade_id if isinstance(e, Trade) else e.agg_id)
           for e in ev if isinstance(e, Trade | AggTrade)]
    # the ETH trade and the agg trade with the same number are other sequences: kept
    assert got == [("Trade", "BTCUSDT", 5), ("Trade", "ETHUSDT", 5), ("Trade", "BTCUSDT", 6),
                   ("AggTrade", "BTCUSDT", 5)]
    c = r.s.counters
    assert c["duplicates"] == 3 and c["trades"] == 3 and c["agg_trades"] == 1


def test_replays_after_a_reconnect_are_dropped_and_the_backoff_restarts():
    r = Run()
    link = r.opened(0.0)
    assert ids(r.frames(link, *(trade("BTCUSDT", t) for t in range(1, 6)))) == [1, 2, 3, 4, 5]
    r.s.connection_closed(link, cut(), 1.0)
    acts, ev = r.take()
    assert acts == [Close(link, graceful=False)]
    assert ev == [Disconnected("connection cut without a close frame (1006)", 0.1)]
    assert r.s.next_deadline(1.0) == pytest.approx(1.1)
    r.s.tick(1.05)
    assert r.take() == ([], [])  # not yet
    r.s.tick(1.1)
    (op,), _ = r.take()
    assert op == Open(2, BASE + "/stream?streams=btcusdt@trade", rotation=False)
    r.s.connected(2, 1.2)
    assert r.s.events_received() == [Connected(op.url, 2)]
    assert ids(r.frames(2, *(trade("BTCUSDT", t) for t in range(3, 9)))) == [6, 7, 8]
    assert r.s.counters["duplicates"] == 3 and r.s.counters["reconnects"] == 1
    # the first connection delivered data: the next cut waits the first delay again
    r.s.connection_closed(2, cut(), 2.0)
    assert r.take()[1][-1].retry_in_s == 0.1


def test_handover_delivers_each_id_once_and_keeps_order():
    r = Run(handover_s=(0.5, 5.0))
    old = r.opened(0.0)
    delivered = ids(r.frames(old, *(trade("BTCUSDT", t) for t in range(1, 6))))
    r.s.request_rotation()
    r.s.tick(1.0)
    (op,), _ = r.take()
    assert op.rotation and op.link == 2
    r.s.connected(2, 1.0)
    # the new connection starts 3 trades behind the old one's head; both carry on
    assert r.frames(2, *(trade("BTCUSDT", t) for t in range(3, 10)), now=1.1) == []  # buffered
    delivered += ids(r.frames(old, trade("BTCUSDT", 6), trade("BTCUSDT", 7), now=1.2))
    r.s.tick(1.3)
    assert r.take() == ([], [])  # caught up, but the minimum overlap has not passed
    r.s.tick(1.5)
    acts, ev = r.take()
    assert acts == [Close(old, graceful=True)]
    assert ev[0] == Connected(op.url, 2, rotation=True)
    delivered += ids(ev)
    delivered += ids(r.frames(old, trade("BTCUSDT", 8), now=1.6))  # retired: ignored
    delivered += ids(r.frames(2, trade("BTCUSDT", 10), now=1.6))
    assert delivered == list(range(1, 11))
    assert r.s.counters["rotations"] == 1 and r.s.counters["duplicates"] == 5


# --------------------------------------------------------------------------- make-before-break


def test_server_shutdown_rotates_make_before_break_without_a_disconnect():
    r = Run(handover_s=(0.1, 2.0))
    old = r.opened(0.0)
    ev = r.frames(old, trade("BTCUSDT", 1),
                  '{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}')
    assert isinstance(ev[-1], ServerShutdown) and r.s.counters["server_shutdowns"] == 1
    (op,) = r.s.actions()  # at once, not at the next timer: the server closes soon
    assert isinstance(op, Open) and op.rotation
    r.s.connected(op.link, 0.05)
    r.frames(op.link, trade("BTCUSDT", 3), now=0.06)  # the old one has not delivered 2 yet
    r.s.tick(0.2)
    assert r.take() == ([], [])  # not caught up: the old keeps delivering
    ev = r.frames(old, trade("BTCUSDT", 2), now=0.25)  # now it is: hand over on this frame
    assert r.s.actions() == [Close(old, graceful=True)]
    assert ids(ev) == [2, 3] and ev[1] == Connected(op.url, 2, rotation=True)
    assert not any(isinstance(e, Disconnected) for e in ev)
    assert r.s.active_link == op.link


def test_handover_after_the_longest_overlap_even_when_not_caught_up():
    r = Run(handover_s=(0.1, 2.0))
    old, new = r.overlapping()
    r.frames(new, trade("BTCUSDT", 50), now=0.5)  # a hole the old one never fills
    r.s.tick(1.9)
    assert r.take() == ([], [])
    r.s.tick(2.0)
    acts, ev = r.take()
    assert acts == [Close(old, graceful=True)] and ids(ev) == [50]


def test_rotation_after_rotate_after_s_and_when_the_new_connection_fails():
    r = Run(rotate_after_s=100.0, handover_s=(0.1, 2.0))
    old = r.opened(0.0)
    r.s.frame_seen(old, 99.0)
    assert r.s.next_deadline(99.0) == 100.0
    r.s.tick(100.0)
    (op,), _ = r.take()
    assert op.rotation
    r.s.connect_failed(op.link, ConnectionRefusedError(111, "refused"), 100.5)
    assert r.take() == ([], [])  # keeps the old one: no Disconnected
    assert r.s.active_link == old and r.s.counters["connect_failures"] == 1
    r.s.frame_seen(old, 120.0)
    r.s.tick(120.0)
    assert r.take() == ([], [])
    r.s.frame_seen(old, 160.0)
    r.s.tick(160.5)  # retried a minute (at most rotate_after_s) later
    (op2,), _ = r.take()
    assert op2.rotation
    # the new connection ends during the overlap: the old one stays
    r.s.connected(op2.link, 160.6)
    r.s.connection_closed(op2.link, cut(), 160.7)
    assert r.take() == ([Close(op2.link, graceful=False)], [])
    assert r.s.active_link == old


def test_old_connection_ending_during_the_overlap_hands_over_at_once():
    r = Run(handover_s=(0.5, 5.0))
    old, new = r.overlapping()
    r.frames(new, trade("BTCUSDT", 2), now=0.1)
    r.s.connection_closed(old, cut(), 0.2)
    acts, ev = r.take()
    assert acts == [Close(old, graceful=False)]
    assert ev[0].rotation and ids(ev) == [2] and not any(isinstance(e, Disconnected) for e in ev)


# --------------------------------------------------------------------------- control replies


def sent(r: Run, now: float) -> list[Send]:
    """Report every Send as done at ``now``; returns them."""
    out = []
    while True:
        sends = [a for a in r.s.actions() if isinstance(a, Send)]
        if not sends:
            return out
        for a in sends:
            r.s.control_sent(a.req_id, now)
        out += sends


def test_reply_matched_by_id_and_subscribe_acknowledged():
    r = Run()
    link = r.opened()
    req = r.s.subscribe(["ethusdt"], 0.0)
    (snd,) = sent(r, 0.0)
    assert json.loads(snd.text) == {"method": "SUBSCRIBE", "params": ["ethusdt@trade"], "id": req}
    assert snd.link == link
    r.frames(link, json.dumps({"result": None, "id": 99}))  # someone else's id: ignored
    assert r.s.actions() == []
    r.frames(link, json.dumps({"result": None, "id": req}))
    assert r.s.actions() == [Reply(req, None)]
    assert r.s.symbols == ["BTCUSDT", "ETHUSDT"]
    r.s.tick(1.0)
    assert r.s.actions() == []  # the connection carries what is wanted: no rotation
    lst = r.s.list_subscriptions(1.0)
    sent(r, 1.0)
    r.frames(link, json.dumps({"result": ["btcusdt@trade", "ethusdt@trade"], "id": lst}))
    assert r.s.actions() == [Reply(lst, ["btcusdt@trade", "ethusdt@trade"])]


def test_error_reply_raises_control_error_and_rolls_the_symbols_back():
    r = Run()
    link = r.opened()
    req = r.s.subscribe(["ETHUSDT"], 0.0)
    sent(r, 0.0)
    ev = r.frames(link, json.dumps({"error": {"code": 2, "msg": "Invalid request: bad stream"}, "id": req}))
    assert ev == [ErrorFrame(2, "Invalid request: bad stream", req)]  # the consumer sees it too
    (rep,) = r.s.actions()
    assert rep.req_id == req and isinstance(rep.error, ControlError)
    assert str(rep.error) == f"server refused request {req}: code 2 Invalid request: bad stream"
    assert r.s.symbols == ["BTCUSDT"] and r.s.counters["error_frames"] == 1


def test_no_reply_times_out_and_a_late_reply_is_ignored():
    r = Run(control_timeout_s=5.0)
    link = r.opened()
    req = r.s.subscribe(["ETHUSDT"], 0.0)
    sent(r, 0.25)
    assert r.s.next_deadline(1.0) == pytest.approx(5.25)  # the clock starts once sent
    r.s.frame_seen(link, 5.0)
    r.s.tick(5.2)
    assert r.s.actions() == []
    r.s.tick(5.25)
    (rep,) = r.s.actions()
    assert str(rep.error) == f"no reply to SUBSCRIBE (id {req}) within 5 s"
    assert r.s.symbols == ["BTCUSDT"]
    r.frames(link, json.dumps({"result": None, "id": req}), now=5.3)
    assert r.s.actions() == []


def test_control_frames_at_most_limit_per_window_one_in_flight():
    r = Run(["BTCUSDT"], control_limit=4, control_window_s=1.0)
    r.opened()
    reqs = [r.s.subscribe([s], 0.0) for s in ("ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT")]
    assert [type(a) for a in r.s.actions()] == [Send]  # one in flight until it is reported sent
    r.s._actions.clear()
    times = [0.0, 0.1, 0.2, 0.3]
    out = []
    for req, t in zip(reqs[:4], times, strict=True):
        r.s.control_sent(req, t)
        out += r.s.actions()
    sends = [a for a in out if isinstance(a, Send)]
    assert [a.req_id for a in sends] == reqs[1:4]  # the fifth waits for the window
    assert r.s.next_deadline(0.3) == pytest.approx(1.0)
    r.s.tick(0.99)
    assert not [a for a in r.s.actions() if isinstance(a, Send)]
    r.s.tick(1.0)
    assert [a.req_id for a in r.s.actions() if isinstance(a, Send)] == [reqs[4]]
    assert list(r.s.control_sent_at) == times and r.s.counters["control_frames_sent"] == 4


def test_send_on_a_closed_connection_answers_none():
    r = Run()
    r.opened()
    req = r.s.subscribe(["ETHUSDT"], 0.0)
    r.s.actions()
    r.s.control_sent(req, 0.0, ok=False)
    assert r.s.actions() == [Reply(req, None)]
    assert r.s.symbols == ["BTCUSDT", "ETHUSDT"]  # the next connection's URL carries it


# --------------------------------------------------------------------------- reconciliation


def test_subscribe_while_connecting_is_applied_by_a_rotation():
    r = Run(handover_s=(0.05, 0.5))
    r.s.start(0.0)
    (op,), _ = r.take()
    req = r.s.subscribe(["ETHUSDT"], 0.1)
    assert r.s.actions() == [Reply(req, None)]  # nothing open to take it
    r.s.connected(op.link, 0.3)  # the first handshake was slow: its URL lacks ETH
    assert "ethusdt" not in op.url
    r.s.tick(0.3)
    (rot,), _ = r.take()
    assert rot == Open(2, BASE + "/stream?streams=btcusdt@trade/ethusdt@trade", rotation=True)
    r.s.connected(2, 0.4)
    r.frames(2, trade("ETHUSDT", 7), now=0.45)
    r.s.tick(0.9)
    acts, ev = r.take()
    assert acts == [Close(op.link, graceful=True)]
    assert [(e.symbol, e.trade_id) for e in ev if isinstance(e, Trade)] == [("ETHUSDT", 7)]
    r.s.tick(1.0)
    assert r.take() == ([], [])  # reconciled: no further rotation


def test_unsubscribe_and_its_limits():
    r = Run(["BTCUSDT", "ETHUSDT"])
    link = r.opened()
    assert r.s.unsubscribe(["DOGEUSDT"], 0.0) is None  # not subscribed: nothing to send
    with pytest.raises(ValueError, match="cannot unsubscribe every symbol"):
        r.s.unsubscribe(["BTCUSDT", "ETHUSDT"], 0.0)
    req = r.s.unsubscribe("ETHUSDT", 0.0)
    sent(r, 0.0)
    r.frames(link, json.dumps({"result": None, "id": req}))
    assert r.s.actions() == [Reply(req, None)] and r.s.symbols == ["BTCUSDT"]
    r.s.tick(0.1)
    assert r.s.actions() == []  # the connection no longer carries ETH: nothing to reconcile


# --------------------------------------------------------------------------- liveness


def test_pings_keep_a_quiet_connection_alive_and_silence_ends_it():
    r = Run(watchdog_s=30.0)
    link = r.opened(0.0)
    for t in (20.0, 40.0):
        r.s.ping_received(link, t)
    assert r.s.next_deadline(40.0) == 70.0
    r.s.tick(69.9)
    assert r.take() == ([], [])
    r.s.tick(70.0)
    acts, ev = r.take()
    assert acts == [Close(link, graceful=False)]
    assert ev == [Disconnected("no frame at all (not even a ping) for 30 s", 0.1)]
    c = r.s.counters
    assert c["pings"] == 2 and c["watchdog_timeouts"] == 1 and c["reconnects"] == 1
    r.s.connection_closed(link, cut(), 70.0)  # the shell's close arrives after: ignored
    assert r.take() == ([], [])


def test_a_consumer_that_is_behind_is_not_a_dead_connection():
    r = Run(watchdog_s=30.0)
    link = r.opened(0.0)
    r.s.tick(31.0, consumer_behind=True)
    r.s.tick(60.0)
    assert r.take() == ([], []) and r.s.active_link == link


def test_garbage_frames_counted_and_skipped():
    r = Run()
    link = r.opened()
    junk = ("garbage{", b"\xff\x00\x01", '{"stream":"btcusdt@trade","data":{"e":"trade","t":"x"}}', "42",
            '{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":2,'
            '"p":"1","q":"1","T":1,"m":"yes"}}')
    ev = r.frames(link, trade("BTCUSDT", 1), *junk, trade("BTCUSDT", 2))
    assert ids(ev) == [1, 2]
    assert r.s.counters["malformed"] == 5 and r.s.counters["messages"] == 7
    assert r.s.actions() == []


def test_microsecond_streams_ask_for_and_parse_microseconds():
    r = Run(["ETHUSDT"], time_unit="microsecond")
    r.s.start(0.0)
    (op,), _ = r.take()
    assert op.url == BASE + "/stream?streams=ethusdt@trade&timeUnit=MICROSECOND"
    r.s.connected(op.link, 0.0)
    (t,) = [e for e in r.frames(op.link, json.dumps({"stream": "ethusdt@trade", "data": {
        "e": "trade", "E": 1735689600074100, "s": "ETHUSDT", "t": 7, "p": "3337.78000000",
        "q": "0.00150000", "T": 1735689600074095, "m": False, "M": True}})) if isinstance(e, Trade)]
    assert t.time_ns == 1735689600074095000 and t.event_time_ns == 1735689600074100000


# --------------------------------------------------------------------------- reconnect policy


def refused():
    return ConnectionRefusedError(111, "Connect call failed")


def test_reconnect_delays_grow_then_the_attempt_budget_gives_up():
    r = Run(max_attempts=4)
    r.s.start(0.0)
    now, delays = 0.0, []
    for _ in range(3):
        (op,), _ = r.take()
        r.s.connect_failed(op.link, refused(), now)
        _, (disc,) = r.take()
        delays.append(disc.retry_in_s)
        assert disc.reason.startswith("cannot connect to " + BASE) and "refused" in disc.reason
        now = r.s.next_deadline(now)
        r.s.tick(now)
    assert delays == [0.1, 0.2, 0.4]
    (op,), _ = r.take()
    assert op.link == 4
    r.s.connect_failed(op.link, refused(), now)
    acts, _ = r.take()
    (fail,) = [a for a in acts if isinstance(a, Fail)]
    assert isinstance(fail.error, StreamError) and "gave up after 4 attempts" in str(fail.error)
    assert isinstance(fail.error.__cause__, ConnectionRefusedError)
    assert r.s.done and r.s.next_deadline(now) is None and r.s.counters["connect_failures"] == 4


def test_a_connection_resets_the_failure_count():
    r = Run(max_attempts=2)
    r.s.start(0.0)
    for now in (0.0, 1.0):
        (op,) = [a for a in r.take()[0] if isinstance(a, Open)]
        if now:
            r.s.connected(op.link, now)  # success between two failures
            r.s.connection_closed(op.link, cut(), now)
        else:
            r.s.connect_failed(op.link, refused(), now)
        r.s.tick(r.s.next_deadline(now))
    (op,) = [a for a in r.take()[0] if isinstance(a, Open)]
    r.s.connect_failed(op.link, refused(), 5.0)
    assert not any(isinstance(a, Fail) for a in r.take()[0])


def test_fatal_failures_stop_at_once():
    for exc, text in ((closed(1003, "unsupported data"), "1003"),
                      (InvalidStatus(Response(404, "Not Found", Headers(), b"Not Found")), "HTTP 404")):
        r = Run()
        r.s.start(0.0)
        (op,), _ = r.take()
        if isinstance(exc, InvalidStatus):
            r.s.connect_failed(op.link, exc, 0.0)
        else:
            r.s.connected(op.link, 0.0)
            r.s.connection_closed(op.link, exc, 0.0)
        acts, ev = r.take()
        (fail,) = [a for a in acts if isinstance(a, Fail)]
        assert text in str(fail.error) and "fatal" in str(fail.error)
        assert not any(isinstance(e, Disconnected) for e in ev)


def test_retry_after_and_the_1008_floor_lengthen_the_delay():
    r = Run(after_1008_s=10.0)
    r.s.start(0.0)
    (op,), _ = r.take()
    busy = Response(429, "Too Many Requests", Headers({"Retry-After": "0.5"}), b"")
    r.s.connect_failed(op.link, InvalidStatus(busy), 0.0)
    (disc,) = r.take()[1]
    assert "HTTP 429" in disc.reason and disc.retry_in_s == 0.5  # beats the 0.1 s backoff
    r.s.tick(0.5)
    (op,), _ = r.take()
    r.s.connected(op.link, 0.6)
    assert r.take()[1] == [Connected(op.url, 2)]
    r.s.connection_closed(op.link, closed(1008, "too many messages"), 1.0)
    (disc,) = r.take()[1]
    assert disc.retry_in_s == 10.0 and "1008" in disc.reason


def test_attempts_are_numbered_across_reconnects_and_rotations():
    r = Run(handover_s=(0.0, 1.0))
    link = r.opened(0.0)
    r.s.connection_closed(link, cut(), 1.0)
    r.take()
    r.s.tick(1.1)
    r.opened(1.1)
    assert r.attempt == 2
    r.s.request_rotation()
    r.s.tick(2.0)
    (op,), _ = r.take()
    r.s.connected(op.link, 2.0)
    r.s.tick(3.0)
    assert r.take()[1] == [Connected(op.url, 3, rotation=True)]
    assert r.s.counters["connect_attempts"] == 3 and r.s.counters["connects"] == 3


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_interrupts_propagate_from_the_session(interrupt):
    def backoff():
        raise interrupt()
        yield 0.1  # pragma: no cover

    r = Run(backoff=backoff)
    r.s.start(0.0)
    (op,), _ = r.take()
    with pytest.raises(interrupt):
        r.s.connect_failed(op.link, refused(), 0.0)  # Ctrl-C while it picks the next delay


def test_close_closes_every_connection_and_ends_the_timers():
    r = Run(handover_s=(0.5, 5.0))
    old = r.opened(0.0)
    r.s.request_rotation()
    r.s.tick(0.0)
    r.take()
    r.s.connected(2, 0.1)
    req = r.s.list_subscriptions(0.1)
    r.s.close()
    acts = r.s.actions()
    assert Reply(req, None) in acts  # nobody is left waiting for an answer
    assert sorted((a for a in acts if isinstance(a, Close)), key=lambda a: a.link) == [
        Close(old, True), Close(2, True)]
    assert r.s.next_deadline(1.0) is None
    r.s.tick(100.0)
    assert r.take() == ([], [])


def test_bad_arguments():
    with pytest.raises(ValueError, match="symbols"):
        StreamSession(BASE, [])
    with pytest.raises(ValueError, match="watchdog_s"):
        StreamSession(BASE, ["BTCUSDT"], watchdog_s=0)
    with pytest.raises(ValueError, match="max_attempts"):
        StreamSession(BASE, ["BTCUSDT"], max_attempts=0)
    with pytest.raises(ValueError, match="handover_s"):
        StreamSession(BASE, ["BTCUSDT"], handover_s=(2.0, 1.0))
    with pytest.raises(ValueError, match="time_unit"):
        StreamSession(BASE, ["BTCUSDT"], time_unit="SECOND")
    with pytest.raises(TypeError, match="backoff"):
        StreamSession(BASE, ["BTCUSDT"], backoff=3)


@pytest.mark.parametrize("new_opens", [True, False])
def test_old_connection_ending_while_the_new_one_is_opening(new_opens):
    r = Run(handover_s=(0.5, 5.0))
    old = r.opened(0.0)
    r.frames(old, trade("BTCUSDT", 1))
    r.s.request_rotation()
    r.s.tick(0.0)
    (op,), _ = r.take()
    r.s.connection_closed(old, cut(), 0.1)
    assert r.take() == ([Close(old, graceful=False)], [])  # no Disconnected: one is on its way
    if new_opens:
        r.s.connected(op.link, 0.2)
        assert r.take() == ([], [Connected(op.url, 2, rotation=True)])
        assert ids(r.frames(op.link, trade("BTCUSDT", 1), trade("BTCUSDT", 2))) == [2]
    else:
        r.s.connect_failed(op.link, refused(), 0.2)
        (disc,) = r.take()[1]
        assert isinstance(disc, Disconnected) and r.s.next_deadline(0.2) == pytest.approx(0.3)
        r.s.tick(r.s.next_deadline(0.2))
        (op2,), _ = r.take()
        assert isinstance(op2, Open) and not op2.rotation


def test_connect_budget_counts_attempts_in_a_sliding_window_with_a_margin():
    from quantlab.binance.stream import ConnectBudget

    b = ConnectBudget(limit=3, window_s=10.0, margin_s=1.0)
    for t in (0.0, 1.0, 2.0):
        assert b.wait_s(t) == 0.0
        b.record(t)
    assert b.wait_s(2.0) == 9.0  # the first attempt leaves the window (10 s + 1 s margin) at 11
    assert b.wait_s(11.0) == 0.0
    b.record(11.0)
    assert b.wait_s(11.0) == 1.0  # the attempt at 1.0 is the oldest now
    assert b.most_in_window() == 3 and list(b.attempts) == [0.0, 1.0, 2.0, 11.0]
    for name, kw in (("after_1008_s", {"after_1008_s": -1}), ("margin_s", {"margin_s": "1"}),
                     ("limit", {"limit": 0}), ("window_s", {"window_s": 0})):
        with pytest.raises(ValueError, match=name):
            ConnectBudget(**kw)
