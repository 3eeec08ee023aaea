"""Alert rules: frozen dataclasses, validated at construction, stored as JSON.

Four kinds, each with an ``id``, a ``cooldown`` (seconds of trade time during which a
second firing of the same rule is suppressed) and a ``hysteresis`` (how far the value must
go back past the threshold before the rule re-arms, in the rule's own unit)::

    PriceRule(symbol="BTCUSDT", op="above", level=70_000)          # price >= 70000
    PriceRule(symbol="BTCUSDT", op="cross", level=70_000)          # either direction
    MoveRule(symbol="SOLUSDT", pct=2.0, window="5m")               # |move over 5 min| >= 2 %
    ZScoreRule(y="ETHUSDT", x="BTCUSDT", k=2.5, timeframe="1m",
               spec=PairSpec(hedge="rolling_ols", window=60))
    SpreadRule(y="ETHUSDT", x="BTCUSDT", op="above", level=0.0, window=60)

JSON form (one object per rule in ``<store>/alerts/rules.json``)::

    {"kind": "price", "id": "r1", "symbol": "BTCUSDT", "op": "above", "level": 70000.0,
     "cooldown": 0.0, "hysteresis": null, "webhook": null, "note": ""}

Unknown keys in a stored rule are ignored, so files written by a newer version still load.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from quantlab.checks import finite_number

#: default hysteresis of a price rule, as a fraction of the level (10 basis points)
PRICE_HYSTERESIS_FRACTION = 0.001
#: default hysteresis of a percent-move rule, as a fraction of ``pct``
MOVE_HYSTERESIS_FRACTION = 0.25
#: default hysteresis of a z-score rule, in z units
ZSCORE_HYSTERESIS = 0.5

_UNITS_NS = {"s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000,
             "d": 86_400_000_000_000}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def parse_duration_ns(value: str | float | int, *, name: str = "window") -> int:
    """``"5m"`` -> 300e9; ``"1h"``, ``"30s"``, ``"1d"``; a bare number means seconds."""
    if isinstance(value, bool):
        raise TypeError(f"{name}: expected a duration such as '5m' or seconds, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
        if not math.isfinite(seconds) or seconds <= 0:
            raise ValueError(f"{name}: {value!r} must be a positive number of seconds")
        return int(round(seconds * 1e9))
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(
            f"{name}: {value!r} is not a duration; use a number with s, m, h or d (e.g. 30s, 5m, 1h)"
        )
    ns = int(round(float(m.group(1)) * _UNITS_NS[m.group(2) or "s"]))
    if ns <= 0:
        raise ValueError(f"{name}: {value!r} must be longer than zero")
    return ns


def parse_timeframe(value: str) -> int:
    """A bar timeframe (``1s``, ``1m``, ``5m``, ``1h``, ``1d``...) in nanoseconds, read by the
    package's one parser (:func:`quantlab.timeframes.parse_timeframe`); alert bars have a
    fixed length of whole seconds under a week."""
    from quantlab.timeframes import parse_timeframe as _parse

    if not isinstance(value, str):
        raise TypeError(f"timeframe: expected a string such as '1m', got {type(value).__name__}")
    tf = _parse(value)
    if tf.is_calendar or tf.is_weekly:
        raise ValueError(f"timeframe: {value!r} ({tf}): alerts need a fixed length under a week (e.g. 1m, 1h, 1d)")
    if tf.step_ns % 1_000_000_000:
        raise ValueError(f"timeframe: {value!r} must be a whole number of seconds (e.g. 1s, 1m)")
    return tf.step_ns


def _symbol(value: Any, name: str) -> str:
    from quantlab.symbols import parse_symbol

    try:
        return str(parse_symbol(str(value)))  # BTCUSDT, um:BTCUSDT, cm:BTCUSD_PERP
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not a Binance symbol (e.g. BTCUSDT, um:BTCUSDT, "
                         "cm:BTCUSD_PERP)") from None


def _webhook(value: Any) -> str | None:
    if value in (None, ""):
        return None
    url = str(value).strip()
    if not re.match(r"^https?://[^\s/]+", url):
        raise ValueError(f"webhook: {value!r} is not an http(s) URL (e.g. http://127.0.0.1:9000/hook)")
    return url


@dataclass(frozen=True, kw_only=True)
class Rule:
    """Fields every rule has. Use a subclass; ``id`` is assigned by :func:`add_rule` if empty."""

    kind: ClassVar[str] = ""
    id: str = ""
    cooldown: float = 0.0
    hysteresis: float | None = None
    webhook: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.id and not _ID.match(self.id):
            raise ValueError(f"id: {self.id!r} may hold only letters, digits, '_', '-' and '.'")
        cd = finite_number(self.cooldown, "cooldown")
        if cd < 0:
            raise ValueError(f"cooldown: {self.cooldown!r} must be >= 0 seconds")
        object.__setattr__(self, "cooldown", cd)
        if self.hysteresis is not None:
            h = finite_number(self.hysteresis, "hysteresis")
            if h < 0:
                raise ValueError(f"hysteresis: {self.hysteresis!r} must be >= 0")
            object.__setattr__(self, "hysteresis", h)
        object.__setattr__(self, "webhook", _webhook(self.webhook))
        object.__setattr__(self, "note", str(self.note or ""))

    @property
    def symbols(self) -> tuple[str, ...]:
        raise NotImplementedError

    @property
    def band(self) -> float:
        """The hysteresis actually used (the default of the kind when ``hysteresis`` is None)."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def with_id(self, rule_id: str) -> Rule:
        return type(self)(**{**self._fields(), "id": rule_id})

    def _fields(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}

    def fingerprint(self) -> str:
        """What the evaluation depends on (not the id, webhook or note): state survives edits
        of those, and is reset when the condition itself changes."""
        d = self.to_dict()
        for k in ("id", "webhook", "note", "cooldown"):
            d.pop(k, None)
        return repr(sorted(d.items()))

    def _suffix(self) -> str:
        parts = []
        if self.cooldown:
            parts.append(f"cooldown {self.cooldown:g}s")
        if self.webhook:
            parts.append(f"webhook {self.webhook}")
        return f" ({', '.join(parts)})" if parts else ""


@dataclass(frozen=True, kw_only=True)
class PriceRule(Rule):
    """Last trade price ``above`` (>=), ``below`` (<=) or ``cross`` (either way) ``level``.

    ``above``/``below`` fire when the condition becomes true (at once if it already is when the
    rule is added) and re-arm once the price is back past ``level`` by the hysteresis (default
    0.1 % of the level). ``cross`` fires on each crossing: it needs the price to have been on
    the other side by the hysteresis first, so hovering at the level fires nothing.
    """

    kind: ClassVar[str] = "price"
    symbol: str
    op: str
    level: float

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "symbol", _symbol(self.symbol, "symbol"))
        if self.op not in ("above", "below", "cross"):
            raise ValueError(f"op: {self.op!r} must be 'above', 'below' or 'cross'")
        level = finite_number(self.level, f"--{self.op} level")
        if level <= 0:
            raise ValueError(f"level: {self.level!r} must be a positive price")
        object.__setattr__(self, "level", level)

    @property
    def symbols(self) -> tuple[str, ...]:
        return (self.symbol,)

    @property
    def band(self) -> float:
        return self.hysteresis if self.hysteresis is not None else self.level * PRICE_HYSTERESIS_FRACTION

    def describe(self) -> str:
        return f"{self.symbol} price {self.op} {self.level:g}" + self._suffix()


@dataclass(frozen=True, kw_only=True)
class MoveRule(Rule):
    """Percent move of the last price against the price ``window`` earlier (1 s resolution).

    ``direction`` is ``up``, ``down`` or ``any``; fires when ``|move| >= pct`` and re-arms when
    it is back under ``pct - hysteresis`` (default a quarter of ``pct``).
    """

    kind: ClassVar[str] = "move"
    symbol: str
    pct: float
    window: str = "5m"
    direction: str = "any"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "symbol", _symbol(self.symbol, "symbol"))
        pct = finite_number(self.pct, "--move percent")
        if pct <= 0:
            raise ValueError(f"pct: {self.pct!r} must be a positive percentage (e.g. 2.5)")
        object.__setattr__(self, "pct", pct)
        if parse_duration_ns(self.window, name="window") < 2_000_000_000:
            raise ValueError(f"window: {self.window!r} must be at least 2 seconds")
        if self.direction not in ("up", "down", "any"):
            raise ValueError(f"direction: {self.direction!r} must be 'up', 'down' or 'any'")
        if self.band >= pct:
            raise ValueError(f"hysteresis: {self.hysteresis!r} must be smaller than pct ({pct:g})")

    @property
    def window_ns(self) -> int:
        return parse_duration_ns(self.window, name="window")

    @property
    def symbols(self) -> tuple[str, ...]:
        return (self.symbol,)

    @property
    def band(self) -> float:
        return self.hysteresis if self.hysteresis is not None else self.pct * MOVE_HYSTERESIS_FRACTION

    def describe(self) -> str:
        sign = {"up": "+", "down": "-", "any": "±"}[self.direction]
        return f"{self.symbol} move {sign}{self.pct:g}% over {self.window}" + self._suffix()


def _pair_spec(value: Any, window: Any, method: str) -> Any:
    """The rule's :class:`~quantlab.analytics.pair.PairSpec`: given, from its JSON form, or
    built from ``window`` and ``method`` (older rules: ``"ols"`` was a fit on the last
    ``window`` bars, i.e. the rolling regression)."""
    from quantlab.analytics.pair import PairSpec

    if isinstance(value, PairSpec):
        return value
    if isinstance(value, dict):
        return PairSpec.from_dict(value)
    if value is not None:
        raise TypeError(f"spec: expected a quantlab.PairSpec, got {type(value).__name__}")
    from quantlab.analytics.pair import HEDGES

    if method not in HEDGES:
        raise ValueError(f"method: {method!r} must be one of {', '.join(HEDGES)}")
    hedge = "rolling_ols" if method == "ols" else method
    return PairSpec(hedge=hedge, window=window)


@dataclass(frozen=True, kw_only=True)
class _PairRule(Rule):
    y: str
    x: str
    window: int = 60
    timeframe: str = "1m"
    method: str = "rolling_ols"
    spec: Any = None  # quantlab.PairSpec; None: PairSpec(hedge=method, window=window)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "y", _symbol(self.y, "pair"))
        object.__setattr__(self, "x", _symbol(self.x, "pair"))
        if self.y == self.x:
            raise ValueError(f"pair: the two legs must differ, got {self.y},{self.x}")
        if self.spec is None:
            if isinstance(self.window, bool) or not isinstance(self.window, int | float | str):
                raise TypeError(f"window: expected a whole number of bars, got {self.window!r}")
            w = finite_number(self.window, "window")
            if w != int(w):
                raise ValueError(f"window: {self.window!r} must be a whole number of bars")
            if w < 3:
                raise ValueError(f"window: {self.window!r} must be at least 3 bars")
            if w > 100_000:
                raise ValueError(f"window: {self.window!r} is too long (at most 100000 bars)")
            object.__setattr__(self, "window", int(w))
        parse_timeframe(self.timeframe)
        spec = _pair_spec(self.spec, self.window, self.method)
        object.__setattr__(self, "spec", spec)
        object.__setattr__(self, "method", spec.hedge)
        object.__setattr__(self, "window", spec.window)
        if spec.warmup_bars(self.timeframe_ns_td) > 100_000:
            raise ValueError("spec: the signal needs more than 100000 bars of warm-up")

    @property
    def symbols(self) -> tuple[str, ...]:
        return (self.y, self.x)

    @property
    def timeframe_ns(self) -> int:
        return parse_timeframe(self.timeframe)

    @property
    def timeframe_ns_td(self) -> Any:
        import pandas as pd

        return pd.Timedelta(self.timeframe_ns, unit="ns")

    @property
    def warmup_bars(self) -> int:
        """Closed bars of both legs before the rule has a value."""
        return self.spec.warmup_bars(self.timeframe_ns_td)

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["spec"] = self.spec.to_dict()
        return d

    def _pair(self) -> str:
        return f"{self.y}/{self.x} {self.timeframe} {self.spec.label}"


@dataclass(frozen=True, kw_only=True)
class ZScoreRule(_PairRule):
    """z-score of the pair signal ``spec`` (a ``quantlab.PairSpec``; default
    ``PairSpec(hedge=method, window=window)``) on the closed bars of ``timeframe``, evaluated
    on each closed bar with the spec's incremental form: the z of ``spec.evaluate`` on the
    same bars.

    Fires ``zscore_above`` when z >= k and ``zscore_below`` when z <= -k; each side re-arms
    when |z| is back under ``k - hysteresis`` (default 0.5). With ``exit`` set, also fires
    ``zscore_inside`` when |z| comes back to ``exit`` or less after having been beyond k.
    """

    kind: ClassVar[str] = "zscore"
    k: float = 2.0
    exit: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        k = finite_number(self.k, "--zscore k")
        if k <= 0:
            raise ValueError(f"k: {self.k!r} must be a positive number of standard deviations")
        object.__setattr__(self, "k", k)
        if self.exit is not None:
            e = finite_number(self.exit, "exit")
            if not 0 <= e < k:
                raise ValueError(f"exit: {self.exit!r} must be >= 0 and smaller than k ({k:g})")
            object.__setattr__(self, "exit", e)

    @property
    def band(self) -> float:
        h = self.hysteresis if self.hysteresis is not None else ZSCORE_HYSTERESIS
        return min(h, self.k)

    def describe(self) -> str:
        inside = f", back inside {self.exit:g}" if self.exit is not None else ""
        return f"{self.y}/{self.x} zscore beyond ±{self.k:g}{inside} ({self._pair()})" + self._suffix()


@dataclass(frozen=True, kw_only=True)
class SpreadRule(_PairRule):
    """The spread ``y - (beta*x + alpha)`` of the pair signal ``spec`` (as :class:`ZScoreRule`)
    ``above``/``below`` ``level``, evaluated on each closed bar;
    re-arms after going back past the level by ``hysteresis`` (default 0)."""

    kind: ClassVar[str] = "spread"
    op: str = "above"
    level: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.op not in ("above", "below"):
            raise ValueError(f"op: {self.op!r} must be 'above' or 'below'")
        object.__setattr__(self, "level", finite_number(self.level, "spread level"))

    @property
    def band(self) -> float:
        return self.hysteresis if self.hysteresis is not None else 0.0

    def describe(self) -> str:
        return f"{self.y}/{self.x} spread {self.op} {self.level:g} ({self._pair()})" + self._suffix()


def __getattr__(name: str) -> Any:
    if name == "HEDGE_METHODS":  # the pair signal's one vocabulary, imported on first use
        from quantlab.analytics.pair import HEDGES

        return HEDGES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


RULE_KINDS: dict[str, type[Rule]] = {
    cls.kind: cls for cls in (PriceRule, MoveRule, ZScoreRule, SpreadRule)
}


def rule_from_dict(data: dict[str, Any]) -> Rule:
    """Inverse of :meth:`Rule.to_dict`; unknown keys are ignored, bad values raise ValueError."""
    if not isinstance(data, dict):
        raise TypeError(f"rule: expected a JSON object, got {type(data).__name__}")
    kind = data.get("kind")
    cls = RULE_KINDS.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"rule kind {kind!r} is not one of {', '.join(RULE_KINDS)}")
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


__all__ = [
    "MoveRule",
    "PriceRule",
    "RULE_KINDS",
    "Rule",
    "SpreadRule",
    "ZScoreRule",
    "parse_duration_ns",
    "parse_timeframe",
    "rule_from_dict",
]
