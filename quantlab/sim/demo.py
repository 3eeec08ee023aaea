"""The demo market: one definition of the simulated universe that ``quantlab app --demo``,
``Lab(source="demo")``, the demo history and ``quantlab sim`` share.

Seven symbols at realistic price levels, from BTC at 100,000 to SHIB at 0.00001 USDT. Three
pairs are truly cointegrated; every other symbol is an independent random walk::

    y          x          relation (raw prices)                  spread: half-life, sd
    ETHUSDT    BTCUSDT    ETH  = (3,500 / 100,000) * BTC + s      60 s, 0.08 % of ETH
    BNBUSDT    SOLUSDT    BNB  = (600 / 150) * SOL + s            60 s, 0.08 % of BNB
    SHIBUSDT   DOGEUSDT   SHIB = (0.00001 / 0.15) * DOGE + s      60 s, 0.08 % of SHIB
    XRPUSDT    (none)     independent

So of the 21 pairs of the seven symbols, 3 are cointegrated and 18 are not. A screen of two
hours of 1 s bars selects the three at q < 0.05; over 20 simulated histories (seeds 0-19) it
selected exactly those three in 18, and in 2 it also paired SHIB with 4-5 unrelated symbols:
SHIB's tick (0.00000001, 0.1 % of its price) makes its 1 s closes noisy enough to look
mean-reverting on its own. On 1 m bars two hours are only 120 bars: too few to find them.
A mean-reversion backtest of a true pair on 1 s bars (window 300, entry 2, exit 0.5) makes
about 1-2 % in two hours before costs, and loses at Binance's 10 bp taker fee: the spread is
real, and so are costs.

Each spread ``s`` is an Ornstein-Uhlenbeck process (the exact AR(1) at any sampling) of the
given half-life whose stationary standard deviation is the given fraction of y's start price;
the independent symbols are geometric random walks with their own annualised volatility (100-
150 %, a lively crypto day). Symbols outside this table start at 100 x their position and walk
independently.

Perpetuals (:data:`DEMO_PERPS`, USD-M): ``um:BTCUSDT`` and ``um:ETHUSDT`` track their spot
symbol with a small mean-reverting basis, cointegrated by construction (:data:`DEMO_BASIS`)::

    perp         spot       relation (raw prices)                  basis: half-life, sd
    um:BTCUSDT   BTCUSDT    perp = spot + b                        30 s, 0.02 % of the price
    um:ETHUSDT   ETHUSDT    perp = spot + b                        30 s, 0.02 % of the price

``b`` is an OU process like the spreads above (beta 1: both start at the same price). The
perp and its spot co-move only when one :class:`~quantlab.sim.sources.Synthetic` makes both:
:func:`market_sources` splits such a source into one per market (the spot and the USD-M
simulator of ``record --source demo``), and :func:`demo_history` writes both. Funding (the
rate and the settlement every few seconds) is the USD-M simulator's
(:class:`~quantlab.sim.futures.FuturesExchange`): drawn per symbol, not tied to the basis.
:func:`demo_universe` is what ``quantlab app --demo`` follows: the seven spot symbols and
the two perps.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DemoSymbol", "PlantedPair", "DEMO_SYMBOLS", "DEMO_PAIRS", "DEMO_PERPS", "DEMO_BASIS",
           "demo_symbols", "demo_perps", "demo_universe", "planted_pairs", "known_symbol", "demo_history",
           "market_sources", "DEMO_FUNDING_INTERVAL_S"]

import numpy as np

from quantlab.sim.sources import Source


@dataclass(frozen=True)
class DemoSymbol:
    """A symbol of the demo market: start ``price`` (quote units), price ``tick`` and lot
    ``step`` as Binance prints them, and annualised ``volatility`` of its log price."""

    name: str
    price: float
    tick: str
    step: str
    volatility: float


@dataclass(frozen=True)
class PlantedPair:
    """``y = beta * x + mu + s``: ``s`` an OU spread with ``half_life_s`` seconds and a
    stationary sd of ``spread_vol`` times y's start price (``beta`` defaults to y0 / x0)."""

    y: str
    x: str
    half_life_s: float
    spread_vol: float


DEMO_SYMBOLS: tuple[DemoSymbol, ...] = (
    DemoSymbol("BTCUSDT", 100_000.0, "0.01", "0.00001", 1.00),
    DemoSymbol("ETHUSDT", 3_500.0, "0.01", "0.0001", 1.10),
    DemoSymbol("SOLUSDT", 150.0, "0.01", "0.001", 1.20),
    DemoSymbol("BNBUSDT", 600.0, "0.01", "0.001", 1.00),
    DemoSymbol("XRPUSDT", 0.6, "0.0001", "0.1", 1.20),
    DemoSymbol("DOGEUSDT", 0.15, "0.00001", "1", 1.40),
    DemoSymbol("SHIBUSDT", 0.00001, "0.00000001", "1", 1.50),
)

DEMO_PAIRS: tuple[PlantedPair, ...] = (
    PlantedPair("ETHUSDT", "BTCUSDT", half_life_s=60.0, spread_vol=0.0008),
    PlantedPair("BNBUSDT", "SOLUSDT", half_life_s=60.0, spread_vol=0.0008),
    PlantedPair("SHIBUSDT", "DOGEUSDT", half_life_s=60.0, spread_vol=0.0008),
)

#: USD-M perpetuals of the demo market (Binance's ticks and lot steps for these contracts)
DEMO_PERPS: tuple[DemoSymbol, ...] = (
    DemoSymbol("um:BTCUSDT", 100_000.0, "0.10", "0.001", 1.00),
    DemoSymbol("um:ETHUSDT", 3_500.0, "0.01", "0.001", 1.10),
)

#: each perp's basis to its spot: ``perp = spot + b``, ``b`` an OU of 30 s half-life
DEMO_BASIS: tuple[PlantedPair, ...] = (
    PlantedPair("um:BTCUSDT", "BTCUSDT", half_life_s=30.0, spread_vol=0.0002),
    PlantedPair("um:ETHUSDT", "ETHUSDT", half_life_s=30.0, spread_vol=0.0002),
)

#: seconds between funding settlements of the demo perps (Binance: 1, 4 or 8 hours)
DEMO_FUNDING_INTERVAL_S = 8.0

_BY_NAME = {s.name: s for s in DEMO_SYMBOLS + DEMO_PERPS}


def demo_symbols() -> list[str]:
    """The demo market's symbols (what ``quantlab app --demo`` follows when none are given)."""
    return [s.name for s in DEMO_SYMBOLS]


def demo_perps() -> list[str]:
    """The demo market's perpetuals (``um:BTCUSDT``, ``um:ETHUSDT``)."""
    return [s.name for s in DEMO_PERPS]


def demo_universe() -> list[str]:
    """Everything ``quantlab app --demo`` follows: the spot symbols, then the perps."""
    return demo_symbols() + demo_perps()


def known_symbol(name: str) -> DemoSymbol | None:
    return _BY_NAME.get(name)


def planted_pairs(symbols) -> list[PlantedPair]:
    """The cointegrated pairs of :data:`DEMO_PAIRS` and :data:`DEMO_BASIS` whose two legs are
    both in ``symbols`` (an x always comes before a y that follows it: ETH, then um:ETH)."""
    have = set(symbols)
    return [p for p in DEMO_PAIRS + DEMO_BASIS if p.y in have and p.x in have]


def demo_history(symbols, start_us: int, end_us: int, *, rate: float = 50.0, seed: int = 7) -> dict:
    """The demo market's trades between ``start_us`` and ``end_us`` (epoch microseconds):
    ``{symbol: TRADE_DTYPE array}`` (scaled integer prices, see :mod:`quantlab.sim.sources`).
    ``rate`` trades/s over all symbols; the same seed gives the same trades."""
    from quantlab.sim.sources import Synthetic

    if not end_us > start_us:
        raise ValueError(f"demo history: end {end_us} must be after start {start_us}")
    src = Synthetic(symbols, rate=rate, seed=seed)
    src.start(int(start_us))
    return src.advance(int(end_us))


class _MarketView(Source):
    """One market's symbols of a shared source, under their exchange names (``um:BTCUSDT`` ->
    ``BTCUSDT``); both views draw from the same price paths. See :func:`market_sources`."""

    throttleable = False
    exhausted = False

    def __init__(self, shared: _Shared, market: str) -> None:
        self._shared, self.market = shared, market
        self._names = {full: full.partition(":")[2] if ":" in full else full
                       for full in shared.source.symbols if shared.market_of(full) == market}
        self.symbols = tuple(self._names.values())
        self._full = {v: k for k, v in self._names.items()}

    def info(self, symbol: str):
        from dataclasses import replace

        return replace(self._shared.source.info(self._full[symbol]), symbol=symbol)

    def start(self, t0_us: int) -> None:
        self._shared.start(t0_us)

    def advance(self, now_us: int) -> dict:
        out = self._shared.take(self._names, now_us)
        return {self._names[k]: v for k, v in out.items()}

    def describe(self) -> str:
        return f"{self.market} side of {self._shared.source.describe()}"


class _Shared:
    def __init__(self, source) -> None:
        self.source = source
        self._started = False
        self._buf: dict[str, list[np.ndarray]] = {s: [] for s in source.symbols}

    @staticmethod
    def market_of(full: str) -> str:
        return full.partition(":")[0] if ":" in full else "spot"

    def start(self, t0_us: int) -> None:
        if not self._started:  # the first view starts the market; the other joins it
            self._started = True
            self.source.start(int(t0_us))

    def take(self, names, now_us: int) -> dict:
        for sym, arr in self.source.advance(int(now_us)).items():
            self._buf[sym].append(arr)
        out = {}
        for sym in names:
            chunks = self._buf[sym]
            if not chunks:
                continue
            arr = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
            k = int(np.searchsorted(arr["time"], now_us, side="right"))  # the other view may be ahead
            if k:
                out[sym] = arr[:k]
            self._buf[sym] = [arr[k:]] if k < len(arr) else []
        return out


def market_sources(source: Source) -> dict[str, Source]:
    """Split a source of spot and ``um:`` symbols into one source per market, ``{"spot": ...,
    "um": ...}``, each naming its symbols as that market's exchange does (``BTCUSDT``). Both
    draw the same price paths, so a perp follows its spot as the source defines (the demo
    basis); each view returns only trades up to the time it asks for."""
    shared = _Shared(source)
    markets = dict.fromkeys(shared.market_of(s) for s in source.symbols)
    return {m: _MarketView(shared, m) for m in markets}
