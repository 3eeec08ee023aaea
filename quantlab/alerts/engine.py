"""Pure rule evaluation: batches of trades in, :class:`Trigger` events out (no I/O, no clock).

Every rule is a set of *legs*: a leg fires when its condition becomes true while armed,
then stays disarmed until its re-arm condition (the condition false by the hysteresis) has
been seen. A cooldown (trade time) suppresses a rule's firings that come too soon after
the previous one; a suppressed leg is disarmed as if it had fired, so it has to go back
past the hysteresis before it can fire again.

=================  ==================  ===================  ==================  =============
rule               leg (event)         fires when            re-arms when        starts armed
=================  ==================  ===================  ==================  =============
price above L      ``above``           p >= L               p < L - h           yes
price below L      ``below``           p <= L               p > L + h           yes
price cross L      ``cross_up``        p >= L               p < L - h           no
                   ``cross_down``      p <= L               p > L + h           no
move pct           ``move_up``         m >= pct             m < pct - h         yes
                   ``move_down``       m <= -pct            m > -pct + h        yes
zscore k           ``zscore_above``    z >= k               z < k - h           yes
                   ``zscore_below``    z <= -k              z > -k + h          yes
  with exit e      ``zscore_inside``   abs(z) <= e          abs(z) >= k         no
spread above L     ``spread_above``    s >= L               s < L - h           yes
spread below L     ``spread_below``    s <= L               s > L + h           yes
=================  ==================  ===================  ==================  =============

Price and move rules are evaluated on every trade (vectorised over the batch: two
comparisons and an ``any`` when nothing happens); pair rules on every closed bar of their
timeframe, once both legs have a later trade.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from quantlab.alerts.bars import BarBuilder, SecondCloses
from quantlab.alerts.rules import MoveRule, PriceRule, Rule, SpreadRule, ZScoreRule

#: ``loader(symbol, timeframe, n_bars) -> (bar_open_ns int64 array, close array) | None``
BarsLoader = Callable[[str, str, int], "tuple[np.ndarray, np.ndarray] | None"]


@dataclass(frozen=True)
class Trigger:
    """One firing, as the engine sees it (the service adds wall-clock time and a message)."""

    rule_id: str
    event: str
    symbols: tuple[str, ...]
    value: float
    threshold: float
    time_ns: int  # exchange time of the triggering trade
    recv_ns: int  # local receipt time of the triggering trade (-1 if unknown)
    trade_id: int  # id of the triggering trade (-1 if unknown)
    bar_time_ns: int | None = None  # open time of the closed bar (pair rules)


def scan(hit: np.ndarray, rearm: np.ndarray, armed: bool) -> tuple[list[int], bool]:
    """Indices where an armed leg fires, and whether it is armed after the batch.

    >>> p = np.array([99.0, 100.0, 100.05, 99.99, 100.0, 99.8, 100.1])
    >>> scan(p >= 100, p < 99.9, True)   # hovers at 100, dips to 99.8, comes back
    ([1, 6], False)
    """
    if armed:
        if not hit.any():
            return [], True
    elif not rearm.any():
        return [], False
    hit_idx = np.flatnonzero(hit)
    re_idx = np.flatnonzero(rearm)
    out: list[int] = []
    pos = 0
    while True:
        if armed:
            k = int(np.searchsorted(hit_idx, pos))
            if k == len(hit_idx):
                break
            i = int(hit_idx[k])
            out.append(i)
            armed, pos = False, i + 1
        else:
            k = int(np.searchsorted(re_idx, pos))
            if k == len(re_idx):
                break
            armed, pos = True, int(re_idx[k]) + 1
    return out, armed


def _ge(level: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda v: v >= level


def _le(level: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda v: v <= level


def _gt(level: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda v: v > level


def _lt(level: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda v: v < level


@dataclass
class Leg:
    event: str
    threshold: float
    hit: Callable[[np.ndarray], np.ndarray]
    rearm: Callable[[np.ndarray], np.ndarray]
    armed: bool


def legs_for(rule: Rule) -> list[Leg]:
    """The legs of a rule, in their initial state (see the table in the module docstring)."""
    h = rule.band
    if isinstance(rule, PriceRule):
        lv = rule.level
        if rule.op == "above":
            return [Leg("above", lv, _ge(lv), _lt(lv - h), True)]
        if rule.op == "below":
            return [Leg("below", lv, _le(lv), _gt(lv + h), True)]
        return [Leg("cross_up", lv, _ge(lv), _lt(lv - h), False),
                Leg("cross_down", lv, _le(lv), _gt(lv + h), False)]
    if isinstance(rule, MoveRule):
        up = Leg("move_up", rule.pct, _ge(rule.pct), _lt(rule.pct - h), True)
        down = Leg("move_down", -rule.pct, _le(-rule.pct), _gt(-rule.pct + h), True)
        return {"up": [up], "down": [down], "any": [up, down]}[rule.direction]
    if isinstance(rule, ZScoreRule):
        k = rule.k
        legs = [Leg("zscore_above", k, _ge(k), _lt(k - h), True),
                Leg("zscore_below", -k, _le(-k), _gt(-k + h), True)]
        if rule.exit is not None:
            e = rule.exit
            legs.append(Leg("zscore_inside", e, lambda v: np.abs(v) <= e,
                            lambda v: np.abs(v) >= k, False))
        return legs
    if isinstance(rule, SpreadRule):
        lv = rule.level
        if rule.op == "above":
            return [Leg("spread_above", lv, _ge(lv), _lt(lv - h), True)]
        return [Leg("spread_below", lv, _le(lv), _gt(lv + h), True)]
    raise TypeError(f"rule: {type(rule).__name__} is not a rule kind the engine knows")


class RuleEvaluator:
    """Legs + cooldown of one rule; turns a value series into triggers."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.legs = legs_for(rule)
        self.last_fire_ns: int | None = None
        self.suppressed = 0
        self.dirty = False  # state changed since the last state_dict()

    def fire(self, values: np.ndarray, time_ns: np.ndarray, recv_ns: np.ndarray,
             trade_id: np.ndarray, bar_time_ns: np.ndarray | None = None) -> list[Trigger]:
        events: list[tuple[int, Leg]] = []
        for leg in self.legs:
            before = leg.armed
            idx, leg.armed = scan(leg.hit(values), leg.rearm(values), leg.armed)
            if idx or leg.armed != before:
                self.dirty = True
            events.extend((i, leg) for i in idx)
        if not events:
            return []
        events.sort(key=lambda e: e[0])
        cooldown_ns = int(self.rule.cooldown * 1e9)
        out = []
        for i, leg in events:
            t = int(time_ns[i])
            if cooldown_ns and self.last_fire_ns is not None and t - self.last_fire_ns < cooldown_ns:
                self.suppressed += 1
                continue
            self.last_fire_ns = t
            out.append(Trigger(
                rule_id=self.rule.id, event=leg.event, symbols=self.rule.symbols,
                value=float(values[i]), threshold=leg.threshold, time_ns=t,
                recv_ns=int(recv_ns[i]), trade_id=int(trade_id[i]),
                bar_time_ns=None if bar_time_ns is None else int(bar_time_ns[i]),
            ))
        return out

    def state(self) -> dict[str, Any]:
        return {"fingerprint": self.rule.fingerprint(), "armed": [leg.armed for leg in self.legs],
                "last_fire_ns": self.last_fire_ns}

    def restore(self, state: dict[str, Any] | None) -> None:
        """Take a saved state if it belongs to this rule's current definition."""
        if not state or state.get("fingerprint") != self.rule.fingerprint():
            return
        armed = state.get("armed") or []
        if len(armed) == len(self.legs):
            for leg, a in zip(self.legs, armed, strict=True):
                leg.armed = bool(a)
        last = state.get("last_fire_ns")
        self.last_fire_ns = int(last) if last is not None else None


class TickEvaluator(RuleEvaluator):
    """Price and move rules: a value per trade."""

    def __init__(self, rule: PriceRule | MoveRule) -> None:
        super().__init__(rule)
        self._window_ns = rule.window_ns if isinstance(rule, MoveRule) else 0
        self._seconds = SecondCloses(rule.window_ns) if isinstance(rule, MoveRule) else None

    def on_ticks(self, t: np.ndarray, p: np.ndarray, recv: np.ndarray,
                 ids: np.ndarray) -> list[Trigger]:
        if self._seconds is None:
            return self.fire(p, t, recv, ids)
        self._seconds.extend(t, p)
        ref = self._seconds.before(t - self._window_ns)
        with np.errstate(divide="ignore", invalid="ignore"):
            move = (p / ref - 1.0) * 100.0
        return self.fire(move, t, recv, ids)


class PairEvaluator(RuleEvaluator):
    """Z-score and spread rules: a value per closed bar of the pair, where both legs have a
    close (forward-filled), from the rule's ``PairSpec`` fed one closed bar at a time
    (``spec.incremental``): the value equals ``spec.evaluate`` on the same bars."""

    def __init__(self, rule: ZScoreRule | SpreadRule, by: BarBuilder, bx: BarBuilder) -> None:
        super().__init__(rule)
        self.by, self.bx = by, bx
        self.stream = rule.spec.incremental(step=rule.timeframe_ns_td)
        self.fed: deque[tuple[int, float, float]] = deque(maxlen=8)  # the last bars fed
        self.last_bar: int | None = None
        self.started = False
        self.errors = 0
        self._start()

    def _watermark(self) -> int | None:
        if self.by.open_id is None or self.bx.open_id is None:
            return None
        return min(self.by.open_id, self.bx.open_id)

    def _aligned(self, bar_ids: Iterable[int]) -> list[tuple[int, float, float]]:
        rows = []
        for b in bar_ids:
            yv, xv = self.by.close_at(b), self.bx.close_at(b)
            if math.isfinite(yv) and math.isfinite(xv):
                rows.append((b, yv, xv))
        return rows

    def _new_bars(self, wm: int) -> list[int]:
        ids = set(self.by.closed_after(self.last_bar, wm)) | set(self.bx.closed_after(self.last_bar, wm))
        return sorted(ids)

    def _feed(self, row: tuple[int, float, float]) -> float:
        self.fed.append(row)
        try:
            out = self.stream.update(row[1], row[2])
        except Exception:  # a failing fit must never stop ingestion
            self.errors += 1
            return math.nan
        v = out["z"] if self.rule.kind == "zscore" else out["spread"]
        return v if math.isfinite(v) else math.nan

    def _start(self) -> None:
        """Once both legs have an open bar, everything closed before is history: it warms
        the signal up, and fires nothing."""
        wm = self._watermark()
        if wm is None:
            return
        for row in self._aligned(self._new_bars(wm)):
            self._feed(row)
        self.last_bar = wm - 1
        self.started = True

    def on_batch(self, bar_of_batch: np.ndarray, t: np.ndarray, recv: np.ndarray,
                 ids: np.ndarray) -> list[Trigger]:
        """Called after the builders took a batch of one leg (``bar_of_batch`` = its bar ids)."""
        if not self.started:
            self._start()
            return []
        wm = self._watermark()
        if wm is None or self.last_bar is None or wm - 1 <= self.last_bar:
            return []
        rows = self._aligned(self._new_bars(wm))
        self.last_bar = wm - 1
        if not rows:
            return []
        values = [self._feed(row) for row in rows]
        b = np.asarray([row[0] for row in rows], dtype=np.int64)
        # the trade that completed each bar: the first one of this batch in a later bar
        k = np.minimum(np.searchsorted(bar_of_batch, b, side="right"), len(t) - 1)
        tf = self.by.timeframe_ns
        return self.fire(np.asarray(values), t[k], recv[k], ids[k], bar_time_ns=b * tf)


class AlertEngine:
    """All rules of a store; ``process(symbol, ...)`` costs nothing for unwatched symbols.

    Arrays per batch: ``time_ns`` int64 (trade time), ``price`` float64, ``recv_ns`` int64
    (local receipt, -1 if unknown), ``trade_id`` int64, all in trade-id order.
    """

    def __init__(self, rules: Iterable[Rule] = (), *, state: dict[str, Any] | None = None,
                 bars_loader: BarsLoader | None = None) -> None:
        self.bars_loader = bars_loader
        self.evaluators: dict[str, RuleEvaluator] = {}
        self._builders: dict[tuple[str, int], BarBuilder] = {}
        self._plan: dict[str, tuple[list[TickEvaluator], list[BarBuilder], list[PairEvaluator]]] = {}
        self.set_rules(rules, state=state)

    @property
    def rules(self) -> list[Rule]:
        return [ev.rule for ev in self.evaluators.values()]

    def set_rules(self, rules: Iterable[Rule], *, state: dict[str, Any] | None = None) -> None:
        """Replace the rule set. A rule whose id and definition are unchanged keeps its state
        (armed legs, cooldown); otherwise ``state[id]`` is restored when it matches."""
        rules = list(rules)
        ids = [r.id for r in rules]
        if len(set(ids)) != len(ids) or not all(ids):
            raise ValueError("rules: every rule needs a distinct, non-empty id")
        old = self.evaluators
        new: dict[str, RuleEvaluator] = {}
        need_keep: dict[tuple[str, int], int] = {}
        tf_name: dict[int, str] = {}
        for r in rules:
            if isinstance(r, ZScoreRule | SpreadRule):
                tf_name.setdefault(r.timeframe_ns, r.timeframe)
                for s in r.symbols:
                    key = (s, r.timeframe_ns)
                    need_keep[key] = max(need_keep.get(key, 0), 2 * r.warmup_bars + 10)
        builders = {}
        for key, keep in need_keep.items():
            b = self._builders.get(key)
            if b is None:
                b = BarBuilder(key[1], keep)
                self._seed(b, key[0], tf_name[key[1]])
            elif keep > b.keep:  # a longer window: prepend older stored bars
                b.keep = keep
                self._seed(b, key[0], tf_name[key[1]])
            builders[key] = b
        self._builders = builders
        for r in rules:
            prev = old.get(r.id)
            if prev is not None and prev.rule == r:
                new[r.id] = prev
                continue
            if isinstance(r, PriceRule | MoveRule):
                ev: RuleEvaluator = TickEvaluator(r)
            elif isinstance(r, ZScoreRule | SpreadRule):
                tf = r.timeframe_ns
                ev = PairEvaluator(r, builders[(r.y, tf)], builders[(r.x, tf)])
            else:
                raise TypeError(f"rules: {r.id!r} is a {type(r).__name__}, not a price, move, "
                                "zscore or spread rule")
            if prev is not None and prev.rule.fingerprint() == r.fingerprint():
                ev.restore(prev.state())
            else:
                ev.restore((state or {}).get(r.id))
            new[r.id] = ev
        self.evaluators = new
        plan: dict[str, tuple[list[TickEvaluator], list[BarBuilder], list[PairEvaluator]]] = {}
        for ev in new.values():
            for s in ev.rule.symbols:
                plan.setdefault(s, ([], [], []))
                if isinstance(ev, TickEvaluator):
                    plan[s][0].append(ev)
                else:
                    assert isinstance(ev, PairEvaluator)
                    plan[s][2].append(ev)
        for (s, _tf), b in builders.items():
            plan[s][1].append(b)
        self._plan = plan

    def _seed(self, builder: BarBuilder, symbol: str, timeframe: str) -> None:
        if self.bars_loader is None:
            return
        try:
            loaded = self.bars_loader(symbol, timeframe, builder.keep)
        except Exception:  # warm-up is best effort: live bars fill the window anyway
            loaded = None
        if loaded is not None:
            builder.seed(*loaded)

    @property
    def symbols(self) -> set[str]:
        return set(self._plan)

    def watches(self, symbol: str) -> bool:
        return symbol in self._plan

    def process(self, symbol: str, time_ns: np.ndarray, price: np.ndarray,
                recv_ns: np.ndarray, trade_id: np.ndarray) -> list[Trigger]:
        plan = self._plan.get(symbol)
        if plan is None or len(time_ns) == 0:
            return []
        ticks, builders, pairs = plan
        out: list[Trigger] = []
        for ev in ticks:
            out.extend(ev.on_ticks(time_ns, price, recv_ns, trade_id))
        if builders:
            closed_any = False
            bar_of: dict[int, np.ndarray] = {}
            for b in builders:
                closed_any |= len(b.update(time_ns, price)) > 0
            if closed_any or any(not pe.started for pe in pairs):
                for pe in pairs:
                    tf = pe.by.timeframe_ns
                    if tf not in bar_of:
                        bar_of[tf] = np.maximum.accumulate(time_ns // tf)
                    out.extend(pe.on_batch(bar_of[tf], time_ns, recv_ns, trade_id))
        if len(out) > 1:
            out.sort(key=lambda tr: tr.time_ns)
        return out

    def state(self) -> dict[str, Any]:
        """Per rule id: armed legs and last firing (JSON-able), for a restart to resume."""
        for ev in self.evaluators.values():
            ev.dirty = False
        return {rid: ev.state() for rid, ev in self.evaluators.items()}

    @property
    def dirty(self) -> bool:
        return any(ev.dirty for ev in self.evaluators.values())

    def stats(self) -> dict[str, int]:
        return {
            "rules": len(self.evaluators),
            "suppressed": sum(ev.suppressed for ev in self.evaluators.values()),
            "pair_errors": sum(getattr(ev, "errors", 0) for ev in self.evaluators.values()),
        }
