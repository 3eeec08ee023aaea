"""Market-qualified symbols: ``BTCUSDT`` (spot), ``um:BTCUSDT`` (USD-M futures),
``cm:BTCUSD_PERP`` (COIN-M futures).

One symbol names one instrument on one market, so spot and futures never share a name::

    >>> parse_symbol("um:btcusdt")
    Symbol(market='um', name='BTCUSDT')
    >>> str(parse_symbol("spot:ETHUSDT")), str(parse_symbol("cm:BTCUSD_PERP"))
    ('ETHUSDT', 'cm:BTCUSD_PERP')

Everywhere else in the package a symbol travels as that string (``str(Symbol)``). COIN-M
contracts are quoted in USD per contract (:func:`contract_size`), so their volumes are
converted to base-asset terms before they reach the store.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MARKETS = ("spot", "um", "cm")
MARKET_NAMES = {"spot": "spot", "um": "USD-M futures", "cm": "COIN-M futures"}

_SPOT_NAME = re.compile(r"^[A-Z0-9]+$")
_FUTURES_NAME = re.compile(r"^[A-Z0-9]+(_[A-Z0-9]+)?$")
_COINM_NAME = re.compile(r"^[A-Z0-9]+USD_(PERP|\d{6})$")


@dataclass(frozen=True, order=True)
class Symbol:
    """One instrument: ``market`` in :data:`MARKETS`, ``name`` as Binance writes it."""

    market: str
    name: str

    def __post_init__(self) -> None:
        if self.market not in MARKETS:
            raise ValueError(f"symbol: market {self.market!r} is not one of {', '.join(MARKETS)}")

    def __str__(self) -> str:
        return self.name if self.market == "spot" else f"{self.market}:{self.name}"

    @property
    def is_spot(self) -> bool:
        return self.market == "spot"


def parse_symbol(text: str | Symbol) -> Symbol:
    """``"BTCUSDT"`` / ``"um:BTCUSDT"`` / ``"cm:BTCUSD_PERP"`` (any case) -> :class:`Symbol`.

    Raises ``ValueError`` naming the text and the syntax when it is not a symbol.
    """
    if isinstance(text, Symbol):
        return text
    if not isinstance(text, str):
        raise TypeError(f"symbol: expected a symbol like 'BTCUSDT' or 'um:BTCUSDT', got {text!r}")
    raw = text.strip()
    market, sep, name = raw.partition(":")
    if not sep:
        market, name = "spot", raw
    market, name = market.strip().lower(), name.strip().upper()
    if market not in MARKETS:
        raise ValueError(
            f"symbol: {text!r} has market {market!r}; use BTCUSDT (spot), um:BTCUSDT (USD-M) "
            "or cm:BTCUSD_PERP (COIN-M)"
        )
    pattern = _SPOT_NAME if market == "spot" else _FUTURES_NAME
    if not name or not pattern.match(name):
        hint = ("letters and digits only, e.g. BTCUSDT" if market == "spot"
                else "letters and digits with an optional _SUFFIX, e.g. BTCUSD_PERP")
        raise ValueError(f"symbol: {text!r} is not a Binance symbol for {MARKET_NAMES[market]} ({hint})")
    if market == "cm" and not _COINM_NAME.match(name):
        raise ValueError(
            f"symbol: {text!r} is not a COIN-M symbol; COIN-M contracts are named like "
            "BTCUSD_PERP or BTCUSD_250328"
        )
    return Symbol(market, name)


def parse_symbols(value: str | Symbol | Sequence[str | Symbol] | None) -> list[Symbol]:
    """``"btcusdt, um:BTCUSDT"`` or a list of them -> unique :class:`Symbol` s, in order.

    Empty items are skipped; an empty result is the caller's to refuse.
    """
    if value is None:
        return []
    if isinstance(value, Symbol):
        return [value]
    items = value.split(",") if isinstance(value, str) else list(value)
    out: list[Symbol] = []
    for item in items:
        if isinstance(item, str) and not item.strip():
            continue
        sym = parse_symbol(item)
        if sym not in out:
            out.append(sym)
    return out


def looks_coinm(name: str) -> bool:
    """True for names only COIN-M uses (``BTCUSD_PERP``, ``ETHUSD_250328``)."""
    return bool(_COINM_NAME.match(name.upper()))


def contract_size(symbol: str | Symbol) -> float:
    """USD value of one COIN-M contract: 100 for BTCUSD contracts, 10 for every other COIN-M
    contract (Binance's ``contractSize`` in ``/dapi/v1/exchangeInfo``; see e.g.
    https://docs.rs/crate/crypto-contract-value/1.0.1 "each Binance perpetual BTC contract is
    valued at 100 USD, and each alt coin contract is valued at 10 USD"). The official
    BTCUSD_PERP kline files agree: 19,431 contracts at 19,560 USD are 99.33 BTC.

    Raises ``ValueError`` for a symbol that is not COIN-M (spot and USD-M trade base units).
    """
    sym = parse_symbol(symbol)
    if sym.market != "cm":
        raise ValueError(f"contract_size: {sym} is not a COIN-M symbol; only cm: symbols trade in contracts")
    return 100.0 if sym.name.startswith("BTCUSD_") else 10.0


#: Quote assets a Binance symbol name can end with, tried in this order (so ``FDUSD`` and
#: ``TUSD`` win over ``USD``): the one list for the simulator's symbol info and the app.
QUOTE_ASSETS = ("FDUSD", "USDT", "USDC", "TUSD", "BUSD", "USD", "BTC", "ETH", "BNB", "EUR",
                "TRY", "BRL", "JPY", "DAI")


def split_pair(symbol: str | Symbol) -> tuple[str, str] | None:
    """``"ETHUSDT" -> ("ETH", "USDT")``, ``"cm:BTCUSD_PERP" -> ("BTC", "USD")``: base and quote
    asset by the known quote assets (:data:`QUOTE_ASSETS`); None when none matches."""
    name = str(symbol).rpartition(":")[2].upper().partition("_")[0]
    for quote in QUOTE_ASSETS:
        if name.endswith(quote) and len(name) > len(quote):
            return name[: -len(quote)], quote
    return None


def symbol_names(value: Any) -> list[str]:
    """``"BTCUSDT, ETHUSDT"`` or a list (tuple, Index, ...) of names -> the unique non-empty names as
    given (stripped, in order, not validated: see :func:`parse_symbols` for that). Raises
    ``TypeError`` naming ``symbols`` for anything else."""
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, Iterable) and not isinstance(value, Mapping | bytes):
        items = list(value)
    else:
        raise TypeError(f"symbols: expected a list of names or 'A,B,C', got {type(value).__name__}")
    out: list[str] = []
    for item in items:
        name = str(item).strip()
        if name and name not in out:
            out.append(name)
    return out
