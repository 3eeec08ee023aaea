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
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DemoSymbol", "PlantedPair", "DEMO_SYMBOLS", "DEMO_PAIRS", "demo_symbols", "planted_pairs",
           "known_symbol", "demo_history"]


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

_BY_NAME = {s.name: s for s in DEMO_SYMBOLS}


def demo_symbols() -> list[str]:
    """The demo market's symbols (what ``quantlab app --demo`` follows when none are given)."""
    return [s.name for s in DEMO_SYMBOLS]


def known_symbol(name: str) -> DemoSymbol | None:
    return _BY_NAME.get(name)


def planted_pairs(symbols) -> list[PlantedPair]:
    """The cointegrated pairs of :data:`DEMO_PAIRS` whose two legs are both in ``symbols``."""
    have = set(symbols)
    return [p for p in DEMO_PAIRS if p.y in have and p.x in have]


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
