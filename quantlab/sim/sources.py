"""Trade sources for the exchange simulator: replays of real data and a synthetic market.

A source is sans-I/O and driven by a clock: ``start(t0_us)`` fixes the wall-clock start,
then ``advance(now_us)`` returns, per symbol, the trades whose (shifted) time has come,
as a structured numpy array of :data:`TRADE_DTYPE`::

    id          int64   trade id (contiguous per symbol, as on Binance)
    time        int64   trade time T, epoch microseconds (already shifted to "now")
    price       int64   price * 10**price_decimals  (exact: "61837.63000000" -> 6183763000000)
    qty         int64   qty * 10**qty_decimals
    buyer_maker bool    Binance's "m"

Prices and quantities are kept as scaled integers so that the decimal strings Binance
sends (``"61837.63000000"``) are reproduced exactly; :class:`SymbolInfo` carries the
number of decimals, the tick and the lot step.

* :class:`Replay` replays recorded captures (``binance_ws/spot/*.gz``: lines
  ``<recv_ns> <combined json>``, ``@trade`` messages only, deduplicated by id) and
  official trade CSVs (``id,price,qty,quoteQty,time,isBuyerMaker[,isBestMatch]``, ms or
  µs times), keeping each trade's id, price, qty and side, with times shifted to now,
  at ``speed`` times real time (``inf``: as fast as the clients read), optionally looping.
* :class:`Synthetic` makes a seeded market of independent random walks and cointegrated
  pairs ``y = hedge_ratio * x + mu + spread`` with an AR(1)/Ornstein-Uhlenbeck spread of a
  given half-life; by default the demo market of :mod:`quantlab.sim.demo`.
"""

from __future__ import annotations

import glob
import gzip
import json
import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from quantlab.config import parse_symbols
from quantlab.errors import LayoutError, UnknownSymbolError
from quantlab.symbols import parse_symbol, split_pair

#: simulated trade ids start here (one billion apart per symbol): real Binance trade ids are
#: below 10**11, so a simulated id is never mistaken for a real one (and stays exact in float64)
SIMULATED_FIRST_ID = 10**15

__all__ = [
    "TRADE_DTYPE",
    "SymbolInfo",
    "Source",
    "Replay",
    "Synthetic",
    "load_capture",
    "load_trades_csv",
    "source_from_spec",
    "format_scaled",
    "parse_decimal",
]

TRADE_DTYPE = np.dtype(
    [("id", "<i8"), ("time", "<i8"), ("price", "<i8"), ("qty", "<i8"), ("buyer_maker", "?")]
)

def format_scaled(value: int, decimals: int) -> str:
    """``format_scaled(6183763000000, 8) -> "61837.63000000"`` (exact, no float)."""
    if decimals == 0:
        return str(value)
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(int(value)), 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}"


def parse_decimal(text: str, decimals: int) -> int:
    """``parse_decimal("61837.63", 8) -> 6183763000000``; refuses more decimals than given."""
    s = text.strip()
    neg = s.startswith("-")
    whole, _, frac = s.lstrip("-").partition(".")
    if len(frac) > decimals:
        frac = frac.rstrip("0")
    if len(frac) > decimals or not (whole or frac) or not (whole or "0").isdigit() or (frac and not frac.isdigit()):
        raise ValueError(f"{text!r} is not a decimal number with at most {decimals} decimals")
    n = int(whole or "0") * 10**decimals + int((frac or "0").ljust(decimals, "0"))
    return -n if neg else n


def _decimals(text: str) -> int:
    return len(text.partition(".")[2])


@dataclass(frozen=True)
class SymbolInfo:
    """What ``/api/v3/exchangeInfo`` says about a symbol, and how to print its numbers."""

    symbol: str
    base: str
    quote: str
    price_decimals: int = 8
    qty_decimals: int = 8
    tick: int = 1  # price tick, in units of 10**-price_decimals
    step: int = 1  # lot step, in units of 10**-qty_decimals

    @property
    def tick_size(self) -> str:
        return format_scaled(self.tick, self.price_decimals)

    @property
    def step_size(self) -> str:
        return format_scaled(self.step, self.qty_decimals)

    @classmethod
    def guess(cls, symbol: str, **kw) -> SymbolInfo:
        """Split ``BTCUSDT`` into base ``BTC`` and quote ``USDT`` by known quote assets."""
        pair = split_pair(symbol)
        if pair is not None:
            return cls(symbol, *pair, **kw)
        return cls(symbol, symbol[:-3] or symbol, symbol[-3:], **kw)


class Source:
    """Base class: a clock-driven producer of trades for a fixed set of symbols."""

    symbols: tuple[str, ...] = ()
    #: True when the source may be paced by the slowest client (no real-time schedule).
    throttleable: bool = False

    def info(self, symbol: str) -> SymbolInfo:
        raise NotImplementedError

    def start(self, t0_us: int) -> None:
        raise NotImplementedError

    def advance(self, now_us: int) -> dict[str, np.ndarray]:
        """Trades made up to ``now_us`` since the last call, per symbol (absent if none)."""
        raise NotImplementedError

    @property
    def exhausted(self) -> bool:
        """True when the source will never make another trade."""
        return False

    def describe(self) -> str:
        return type(self).__name__


# --------------------------------------------------------------------------- replay


Row = tuple[int, int, str, str, bool]  # (id, time_us, price_str, qty_str, buyer_maker)


def load_capture(path: str | os.PathLike[str]) -> dict[str, list[Row]]:
    """Read a recorded WebSocket capture (gzip or text), returning ``@trade`` rows per symbol.

    Lines are ``<local_receive_ns> <combined-stream JSON>``, e.g.::

        1723161254087896568 {"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,
            "s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000",
            "T":1723161255342,"m":true,"M":true}}

    Other streams (depth, bookTicker) and REST snapshots are skipped. Rows are
    ``(id, time_us, price_str, qty_str, buyer_maker)`` in file order (not deduplicated).
    """
    p = Path(path)
    out: dict[str, list[Row]] = {}
    fh = gzip.open(p, "rt", encoding="utf-8") if p.suffix == ".gz" else open(p, encoding="utf-8")
    with fh:
        for n, line in enumerate(fh, 1):
            if '@trade"' not in line:
                continue
            payload = line.partition(" ")[2]
            try:
                d = json.loads(payload)["data"]
                if d.get("e") != "trade":
                    continue
                t = int(d["T"])
                out.setdefault(d["s"].upper(), []).append(
                    (int(d["t"]), t if t > 10**14 else t * 1000, str(d["p"]), str(d["q"]), bool(d["m"]))
                )
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise LayoutError(f"{p}: line {n} is not a '<ns> <combined trade json>' line ({exc})") from None
    return out


def load_trades_csv(path: str | os.PathLike[str], symbol: str | None = None) -> dict[str, list[Row]]:
    """Read an official trades file (``.csv`` or ``.zip``):
    ``id,price,qty,quoteQty,time,isBuyerMaker[,isBestMatch]``, header row optional.

    Parsed by :func:`quantlab.binance.archive.read_trades_exact`, the importer's reader: times
    in ms or µs, told once per file. The symbol comes from the file name
    (``BTCUSDT-trades-2024-08-09.csv``) unless given.
    """
    from quantlab.binance.archive import read_trades_exact

    name, cols = read_trades_exact(path)
    sym = (symbol or name).upper()
    rows: list[Row] = list(zip(cols["trade_id"].tolist(), (cols["time"] // 1_000).tolist(),
                               cols["price"].tolist(), cols["qty"].tolist(),
                               cols["is_buyer_maker"].tolist(), strict=True))
    return {sym: rows}


def _expand_paths(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    out: list[Path] = []
    for item in items:
        for part in str(item).split(os.pathsep):
            if not part:
                continue
            p = Path(part).expanduser()
            if p.is_dir():
                found = sorted(q for q in p.iterdir() if q.suffix in (".gz", ".csv", ".zip") and q.is_file())
                if not found:
                    raise FileNotFoundError(f"replay: no .gz captures or .csv/.zip trade files in {p}")
                out.extend(found)
            elif any(c in part for c in "*?["):
                found = sorted(Path(q) for q in glob.glob(part))
                if not found:
                    raise FileNotFoundError(f"replay: nothing matches {part}")
                out.extend(found)
            elif p.is_file():
                out.append(p)
            else:
                raise FileNotFoundError(f"replay: no such file or directory: {p}")
    if not out:
        raise ValueError("replay: give at least one capture (.gz) or trades CSV path")
    return out


def _common_pow10(values: np.ndarray, decimals: int) -> int:
    unit = 1
    for _ in range(decimals):
        if len(values) and np.all(values % (unit * 10) == 0):
            unit *= 10
        else:
            break
    return unit


def trades_from_rows(rows: Sequence[Row], symbol: str) -> tuple[np.ndarray, SymbolInfo]:
    """Rows to a :data:`TRADE_DTYPE` array sorted and deduplicated by id, plus its SymbolInfo.

    Zero or negative prices/quantities are skipped with a warning.
    """
    pdec = min(max((_decimals(r[2]) for r in rows), default=8), 12)
    qdec = min(max((_decimals(r[3]) for r in rows), default=8), 12)
    arr = np.empty(len(rows), TRADE_DTYPE)
    arr["id"] = [r[0] for r in rows]
    arr["time"] = [r[1] for r in rows]
    arr["price"] = [parse_decimal(r[2], pdec) for r in rows]
    arr["qty"] = [parse_decimal(r[3], qdec) for r in rows]
    arr["buyer_maker"] = [r[4] for r in rows]
    _, first = np.unique(arr["id"], return_index=True)  # sorted by id, first occurrence kept
    arr = arr[first]
    bad = (arr["price"] <= 0) | (arr["qty"] <= 0)
    if bad.any():
        warnings.warn(
            f"replay: {int(bad.sum())} {symbol} trades with zero or negative price/qty skipped "
            f"(first id {int(arr['id'][bad][0])})",
            stacklevel=3,
        )
        arr = arr[~bad]
    if len(arr):
        arr["time"] = np.maximum.accumulate(arr["time"])
    info = SymbolInfo.guess(
        symbol, price_decimals=pdec, qty_decimals=qdec,
        tick=_common_pow10(arr["price"], pdec), step=_common_pow10(arr["qty"], qdec),
    )
    return arr, info


class Replay(Source):
    """Replays recorded trades with their exact ids, prices, quantities and sides.

    Times are shifted so the first trade happens at ``start()`` (by a whole number of
    milliseconds, so at speed 1 the spacing of ms trade times is kept exactly);
    ``speed`` compresses time (2.0 = twice real time; ``math.inf`` = as fast as the
    slowest client reads, ``burst`` trades per symbol per step). With ``loop=True`` the
    recording restarts after its end; looped trades keep prices, quantities and sides
    but take new ids that continue each symbol's sequence without a gap.
    """

    def __init__(
        self,
        trades: Mapping[str, np.ndarray],
        infos: Mapping[str, SymbolInfo] | None = None,
        *,
        speed: float = 1.0,
        loop: bool = False,
        burst: int = 2000,
        paths: Sequence[Path] = (),
    ) -> None:
        speed = float(speed)
        if not speed > 0:
            raise ValueError(f"replay speed (--rate): {speed} must be > 0 (inf: as fast as possible)")
        self._trades = {s.upper(): np.asarray(a, TRADE_DTYPE) for s, a in trades.items() if len(a)}
        if not self._trades:
            raise ValueError("replay: no trades to replay")
        self.symbols = tuple(sorted(self._trades))
        self._infos = {s: (infos or {}).get(s) or SymbolInfo.guess(s) for s in self.symbols}
        self.speed = speed
        self.loop = bool(loop)
        self.burst = int(burst)
        self.throttleable = math.isinf(speed)
        self.paths = tuple(paths)
        self._t_first = min(int(a["time"][0]) for a in self._trades.values())
        self._span = max(int(a["time"][-1]) for a in self._trades.values()) - self._t_first
        self._t0: int | None = None

    @classmethod
    def from_paths(
        cls,
        paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
        symbols: Sequence[str] | str | None = None,
        *,
        speed: float = 1.0,
        loop: bool = False,
        burst: int = 2000,
    ) -> Replay:
        """Load captures (``.gz``/text) and official trade files (``.csv``/``.zip``); a directory
        means all of them.

        Files of one symbol (e.g. split at midnight) are concatenated, and trades seen in
        several files are kept once (by id).
        """
        files = _expand_paths(paths)
        rows: dict[str, list[Row]] = {}
        for f in files:
            loaded = load_trades_csv(f) if f.suffix.lower() in (".csv", ".zip") else load_capture(f)
            for sym, r in loaded.items():
                rows.setdefault(sym, []).extend(r)
        wanted = parse_symbols(symbols) if symbols else sorted(rows)
        missing = [s for s in wanted if s not in rows]
        if missing:
            raise UnknownSymbolError(
                f"replay: no trades for {', '.join(missing)} in {', '.join(str(f) for f in files)}; "
                f"the files hold {', '.join(sorted(rows)) or 'no trades'}"
            )
        trades, infos = {}, {}
        for sym in wanted:
            trades[sym], infos[sym] = trades_from_rows(rows[sym], sym)
        return cls(trades, infos, speed=speed, loop=loop, burst=burst, paths=files)

    def info(self, symbol: str) -> SymbolInfo:
        return self._infos[symbol]

    def recorded(self, symbol: str) -> np.ndarray:
        """The recording of ``symbol`` as loaded (original ids and times)."""
        return self._trades[symbol]

    def describe(self) -> str:
        parents = {p.parent for p in self.paths}
        if len(self.paths) > 1 and len(parents) == 1:
            where = f"{len(self.paths)} files in {parents.pop()}"
        else:
            where = ", ".join(str(p) for p in self.paths) or "memory"
        speed = "max speed" if math.isinf(self.speed) else f"x{self.speed:g}"
        counts = ", ".join(f"{s} {len(a):,}" for s, a in self._trades.items())
        return f"replay of {where} ({counts} trades) at {speed}{', looping' if self.loop else ''}"

    def start(self, t0_us: int) -> None:
        self._t0 = int(t0_us)
        self._shift = ((self._t0 - self._t_first) // 1000) * 1000
        self._cursor = {s: 0 for s in self.symbols}
        self._cycle = {s: 0 for s in self.symbols}
        gaps = [np.diff(a["time"]) for a in self._trades.values() if len(a) > 1]
        mean_gap = float(np.mean(np.concatenate(gaps))) if gaps else 1000.0
        self._cycle_len = self._span + max(int(mean_gap), 1000)
        self._next_id = {s: int(a["id"][-1]) + 1 for s, a in self._trades.items()}
        self._last_time = {s: 0 for s in self.symbols}
        self._sched_cache: dict[str, tuple[int, np.ndarray]] = {}

    def _sched(self, symbol: str, cycle: int) -> np.ndarray:
        cached = self._sched_cache.get(symbol)
        if cached is not None and cached[0] == cycle:
            return cached[1]
        assert self._t0 is not None  # set by start(), which advance() requires
        rel = self._trades[symbol]["time"] - self._t_first + cycle * self._cycle_len
        if self.speed == 1.0:
            sched = rel + self._t_first + self._shift
        else:
            sched = self._t0 + (rel / self.speed).astype(np.int64)
        self._sched_cache[symbol] = (cycle, sched)
        return sched

    @property
    def exhausted(self) -> bool:
        if self._t0 is None or self.loop:
            return False
        return all(self._cursor[s] >= len(self._trades[s]) for s in self.symbols)

    def advance(self, now_us: int) -> dict[str, np.ndarray]:
        if self._t0 is None:
            raise RuntimeError("replay: call start() before advance()")
        out: dict[str, np.ndarray] = {}
        for sym in self.symbols:
            src = self._trades[sym]
            parts = []
            budget = self.burst if math.isinf(self.speed) else -1
            while True:
                lo = self._cursor[sym]
                if lo >= len(src):
                    if not self.loop:
                        break
                    self._cycle[sym] += 1
                    self._cursor[sym] = lo = 0
                if budget < 0:
                    sched = self._sched(sym, self._cycle[sym])
                    hi = int(np.searchsorted(sched, now_us, side="right"))
                    if hi <= lo:
                        break
                    chunk = src[lo:hi].copy()
                    chunk["time"] = sched[lo:hi]
                else:
                    if budget == 0:
                        break
                    hi = min(len(src), lo + budget)
                    budget -= hi - lo
                    chunk = src[lo:hi].copy()
                    chunk["time"] = now_us
                if self._cycle[sym] > 0:
                    chunk["id"] = self._next_id[sym] + np.arange(len(chunk), dtype=np.int64)
                    self._next_id[sym] += len(chunk)
                self._cursor[sym] = hi
                parts.append(chunk)
                if hi < len(src):
                    break
            if parts:
                batch = parts[0] if len(parts) == 1 else np.concatenate(parts)
                # trade time never goes backwards within a symbol
                batch["time"] = np.maximum(np.maximum.accumulate(batch["time"]), self._last_time[sym])
                self._last_time[sym] = int(batch["time"][-1])
                out[sym] = batch
        return out


# --------------------------------------------------------------------------- synthetic

def _default_tick(price: float) -> str:
    exp = max(math.floor(math.log10(price)) - 4, -8)
    return format_scaled(10 ** (exp + 8), 8) if exp < 0 else "0.01"


@dataclass(frozen=True)
class _Tie:
    """How a cointegrated ``y`` follows its ``x``: ``y = beta * x + mu + s`` (raw prices)."""

    x: str
    beta: float
    mu: float
    half_life: float
    spread_sd: float  # stationary sd of s, quote units


class Synthetic(Source):
    """A seeded market of independent random walks and cointegrated pairs.

    By default the market is the demo market of :mod:`quantlab.sim.demo`: its symbols get their
    realistic start prices, ticks and volatilities, the pairs of ``DEMO_PAIRS`` whose two legs
    are both present are cointegrated, and every other symbol is an independent geometric random
    walk. ``pairs`` (``{y: x}``) plants other pairs; ``hedge_ratio`` (a number or ``{y: beta}``)
    ties every symbol after the first to the first, as in ``quantlab sim --hedge-ratio``.

    A cointegrated ``y = beta * x + mu + s``: ``s`` an Ornstein-Uhlenbeck spread (AR(1) at any
    sampling) with half-life ``half_life`` seconds and stationary sd ``spread_vol * y0``; ``mu``
    makes ``y`` start at its start price ``y0`` (by default ``beta = y0 / x0``, ``mu = 0``).
    ``half_life``, ``spread_vol`` and ``volatility`` (annualised, of log prices) default to the
    demo market's values per pair and symbol (60 s, 0.001 and 0.6 elsewhere).
    Trades arrive as a Poisson process of ``rate`` trades/s in total, spread evenly over
    the symbols; each prints at the tick-rounded price (one tick higher for a buyer-taker)
    with a lognormal quantity rounded to the lot step. Ids are contiguous per symbol and
    start above 2**31. The same seed gives the same trades whatever the pace of
    ``advance()`` calls.
    """

    def __init__(
        self,
        symbols: Sequence[str] | str = ("BTCUSDT", "ETHUSDT"),
        *,
        rate: float = 50.0,
        pairs: Mapping[str, str] | None = None,
        hedge_ratio: float | Mapping[str, float] | None = None,
        half_life: float | None = None,
        volatility: float | None = None,
        spread_vol: float | None = None,
        prices: Mapping[str, float] | None = None,
        seed: int = 0,
        first_id: int = SIMULATED_FIRST_ID,
        block: int = 4096,
    ) -> None:
        from quantlab.sim.demo import known_symbol, planted_pairs

        syms = parse_symbols(symbols)
        if not syms:
            raise ValueError("synthetic: give at least one symbol, e.g. symbols=['BTCUSDT', 'ETHUSDT']")
        for name, v in (("rate", rate), ("half_life", half_life)):
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"synthetic: {name}={v!r} must be a finite number > 0")
        for name, v in (("volatility", volatility), ("spread_vol", spread_vol)):
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"synthetic: {name}={v!r} must be a finite number >= 0")
        if pairs is not None and hedge_ratio is not None:
            raise ValueError("synthetic: give pairs= ({y: x}) or hedge_ratio= (every symbol tied to the "
                             "first), not both")
        self.symbols = tuple(syms)
        self.rate = float(rate)
        self.seed = int(seed)
        self._block = int(block)
        given = {str(parse_symbol(k)): float(v) for k, v in (prices or {}).items()}  # um:BTCUSDT stays
        self.start_prices: dict[str, float] = {}
        self.volatilities: dict[str, float] = {}
        self._infos: dict[str, SymbolInfo] = {}
        for i, s in enumerate(self.symbols):
            known = known_symbol(s)
            p0 = given.get(s, known.price if known else 100.0 * (i + 1))
            if not (math.isfinite(p0) and p0 > 0):
                raise ValueError(f"synthetic: start price of {s} must be > 0, got {p0}")
            tick_s, step_s = (known.tick, known.step) if known else (_default_tick(p0), "0.001")
            self.start_prices[s] = p0
            self.volatilities[s] = float(volatility if volatility is not None
                                         else known.volatility if known else 0.6)
            self._infos[s] = SymbolInfo.guess(
                s, price_decimals=8, qty_decimals=8,
                tick=parse_decimal(tick_s, 8), step=parse_decimal(step_s, 8),
            )
        # which y follows which x, and how
        demo = {p.y: p for p in planted_pairs(self.symbols)}
        if hedge_ratio is not None:
            ties = {s: self.symbols[0] for s in self.symbols[1:]}
            if isinstance(hedge_ratio, (int, float)):
                ratios = {s: float(hedge_ratio) for s in ties}
            else:
                hr = {k.upper(): float(v) for k, v in hedge_ratio.items()}
                unknown = sorted(set(hr) - set(ties))
                if unknown:
                    raise ValueError(
                        f"synthetic: hedge_ratio given for {unknown}, which are not among the "
                        f"y symbols {list(ties)} (the first symbol is the anchor x)"
                    )
                ratios = hr
        elif pairs is not None:
            ties = {k.upper(): v.upper() for k, v in pairs.items()}
            ratios = {}
            for y, x in ties.items():
                if y not in self.symbols or x not in self.symbols or y == x:
                    raise ValueError(f"synthetic: pairs: {y} ~ {x} needs two different symbols of "
                                     f"{', '.join(self.symbols)}")
                if x in ties:
                    raise ValueError(f"synthetic: pairs: {x} is the x of {y} and also follows {ties[x]}; "
                                     "an x must be an independent symbol")
        else:
            ties, ratios = {y: p.x for y, p in demo.items()}, {}
        self._ties: dict[str, _Tie] = {}
        for y, x in ties.items():
            y0, x0 = self.start_prices[y], self.start_prices[x]
            beta = ratios.get(y, y0 / x0)
            if not math.isfinite(beta):
                raise ValueError(f"synthetic: hedge_ratio of {y} must be finite, got {beta}")
            d = demo.get(y) if demo.get(y) is not None and demo[y].x == x else None
            hl = half_life if half_life is not None else d.half_life_s if d else 60.0
            sv = spread_vol if spread_vol is not None else d.spread_vol if d else 0.001
            self._ties[y] = _Tie(x=x, beta=float(beta), mu=y0 - beta * x0, half_life=float(hl),
                                 spread_sd=float(sv) * y0)
        self.hedge_ratios = {y: t.beta for y, t in self._ties.items()}
        self._mu = {y: t.mu for y, t in self._ties.items()}
        self.independent = tuple(s for s in self.symbols if s not in self._ties)
        self.first_ids = {s: int(first_id) + i * 1_000_000_000 for i, s in enumerate(self.symbols)}
        self._t0: int | None = None

    @property
    def pairs(self) -> dict[str, str]:
        """The cointegrated pairs, ``{y: x}``."""
        return {y: t.x for y, t in self._ties.items()}

    @property
    def half_life(self) -> dict[str, float]:
        """Spread half-life in seconds, per cointegrated ``y``."""
        return {y: t.half_life for y, t in self._ties.items()}

    def info(self, symbol: str) -> SymbolInfo:
        return self._infos[symbol]

    def describe(self) -> str:
        ties = "; ".join(f"{y} = {t.beta:.6g}*{t.x} + spread (half-life {t.half_life:g}s)"
                         for y, t in self._ties.items())
        alone = ", ".join(self.independent)
        return (f"synthetic market {', '.join(self.symbols)} at {self.rate:g} trades/s "
                f"(cointegrated: {ties or 'none'}; independent random walks: {alone or 'none'}; "
                f"seed {self.seed})")

    def start(self, t0_us: int) -> None:
        self._t0 = int(t0_us)
        self._rng = np.random.default_rng(self.seed)
        self._t_rel = 0.0  # seconds from start to the last generated event
        self._logp = {s: math.log(self.start_prices[s]) for s in self.independent}
        self._spread = {s: 0.0 for s in self._ties}
        self._next_id = dict(self.first_ids)
        self._pending: dict[str, list[np.ndarray]] = {s: [] for s in self.symbols}
        self._horizon_us = self._t0  # events are generated up to this time

    def _generate_block(self) -> None:
        assert self._t0 is not None  # set by start(), which advance() requires
        rng, n = self._rng, self._block
        dt = rng.exponential(1.0 / self.rate, n)
        t = self._t_rel + np.cumsum(dt)
        self._t_rel = float(t[-1])
        which = rng.integers(0, len(self.symbols), n)
        mids: dict[str, np.ndarray] = {}
        for s in self.independent:
            sig = self.volatilities[s] / math.sqrt(365.25 * 86400.0)
            logp = self._logp[s] + np.cumsum(sig * np.sqrt(dt) * rng.standard_normal(n))
            self._logp[s] = float(logp[-1])
            mids[s] = np.exp(logp)
        for s, tie in self._ties.items():
            lam = math.log(2.0) / tie.half_life
            path = _ou_path(self._spread[s], dt, lam, tie.spread_sd, rng.standard_normal(n))
            self._spread[s] = float(path[-1])
            mids[s] = tie.beta * mids[tie.x] + tie.mu + path
        maker = rng.random(n) < 0.5
        notional = np.exp(rng.normal(math.log(200.0), 1.2, n))
        times = self._t0 + np.floor(t * 1e6).astype(np.int64)
        for k, s in enumerate(self.symbols):
            sel = which == k
            m = int(sel.sum())
            if m == 0:
                continue
            info = self._infos[s]
            mid = mids[s][sel]
            ticks = np.maximum(np.round(mid * 10.0**info.price_decimals / info.tick), 1.0).astype(np.int64)
            bm = maker[sel]
            steps = np.round(notional[sel] / mid * 10.0**info.qty_decimals / info.step)
            arr = np.empty(m, TRADE_DTYPE)
            arr["id"] = self._next_id[s] + np.arange(m, dtype=np.int64)
            self._next_id[s] += m
            arr["time"] = times[sel]
            arr["price"] = (ticks + np.where(bm, 0, 1)) * info.tick
            arr["qty"] = np.clip(steps, 1.0, 1e12).astype(np.int64) * info.step
            arr["buyer_maker"] = bm
            self._pending[s].append(arr)
        self._horizon_us = int(times[-1])

    def advance(self, now_us: int) -> dict[str, np.ndarray]:
        if self._t0 is None:
            raise RuntimeError("synthetic: call start() before advance()")
        while self._horizon_us <= now_us:
            self._generate_block()
        out: dict[str, np.ndarray] = {}
        for s, chunks in self._pending.items():
            if not chunks:
                continue
            arr = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
            k = int(np.searchsorted(arr["time"], now_us, side="right"))
            if k:
                out[s] = arr[:k]
            self._pending[s] = [arr[k:]] if k < len(arr) else []
        return out


def _ou_path(s0: float, dt: np.ndarray, lam: float, sd: float, z: np.ndarray) -> np.ndarray:
    """Exact OU/AR(1) path ``s_k = a_k s_{k-1} + sd*sqrt(1-a_k^2) z_k``, ``a_k = exp(-lam dt_k)``.

    Vectorized as ``s_k = e^{-D_k} s_0 + e^{-D_k} sum_j e^{D_j} eps_j`` (``D`` the cumulative
    decay), restarted every ~30 units of decay so the exponentials stay finite.
    """
    n = len(dt)
    out = np.empty(n)
    eps = sd * np.sqrt(-np.expm1(-2.0 * lam * dt)) * z
    c = np.cumsum(lam * dt)
    i = 0
    s = s0
    while i < n:
        j = max(int(np.searchsorted(c, c[i] + 30.0, side="right")), i + 1)
        decay = c[i:j] - (c[i] - lam * dt[i])  # decay from the value before event i
        w = np.exp(decay - decay[0])  # bounded by e^30
        out[i:j] = s * np.exp(-decay) + np.cumsum(w * eps[i:j]) / w
        s = float(out[j - 1])
        i = j
    return out


# --------------------------------------------------------------------------- spec


def source_from_spec(
    spec: str | Source | None,
    *,
    symbols: Sequence[str] | str | None = None,
    rate: float | None = None,
    loop: bool = False,
    **synthetic: object,
) -> Source:
    """``"synthetic"`` or ``"replay:PATH"`` into a source.

    PATH is a file, a directory or a glob (several joined by ``os.pathsep``). ``rate`` is
    trades/s for synthetic (default 50) and the speed factor for replay (default 1;
    ``inf`` = as fast as the clients read). Extra keywords go to :class:`Synthetic`.
    """
    if isinstance(spec, Source):
        return spec
    text = (spec or "synthetic").strip()
    kind, _, arg = text.partition(":")
    kind = kind.lower()
    if kind == "synthetic":
        if arg:
            raise ValueError(f"--source {text!r}: 'synthetic' takes no path; use --rate, --seed, --hedge-ratio")
        syms = parse_symbols(symbols) or ["BTCUSDT", "ETHUSDT"]
        kw = {k: v for k, v in synthetic.items() if v is not None}
        return Synthetic(syms, rate=50.0 if rate is None else float(rate), **kw)  # type: ignore[arg-type]
    if kind == "replay":
        if not arg:
            raise ValueError("--source replay:PATH needs a path, e.g. replay:../shared/data/binance_ws/spot")
        return Replay.from_paths(arg, symbols or None, speed=1.0 if rate is None else float(rate), loop=loop)
    raise ValueError(f"--source {text!r}: use 'synthetic' or 'replay:PATH'")
