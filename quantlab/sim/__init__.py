"""A Binance-compatible exchange simulator on loopback (WebSocket streams + REST, one port).

>>> from quantlab.sim import Exchange, ExchangeThread, Replay, Synthetic
>>> async with Exchange(Synthetic(["BTCUSDT", "ETHUSDT"], rate=1000), faults="drop=0.01") as ex:
...     ex.ws_url, ex.rest_url

The demo market (:mod:`quantlab.sim.demo`: which pairs are cointegrated, at which prices) is
what :class:`Synthetic` makes by default. Sources (:mod:`quantlab.sim.sources`), faults (:mod:`quantlab.sim.faults`), the wire format
(:mod:`quantlab.sim.wire`) and the server (:mod:`quantlab.sim.exchange`). The CLI verb is
``quantlab sim``.
"""

from quantlab.sim.demo import DEMO_PAIRS, DEMO_SYMBOLS, demo_history, demo_symbols
from quantlab.sim.exchange import WEIGHTS, Exchange, ExchangeThread
from quantlab.sim.faults import Faults, parse_faults
from quantlab.sim.sources import (
    TRADE_DTYPE,
    Replay,
    Source,
    SymbolInfo,
    Synthetic,
    load_capture,
    load_trades_csv,
    source_from_spec,
)

__all__ = [
    "DEMO_PAIRS",
    "DEMO_SYMBOLS",
    "demo_history",
    "demo_symbols",
    "Exchange",
    "ExchangeThread",
    "Faults",
    "parse_faults",
    "Replay",
    "Source",
    "SymbolInfo",
    "Synthetic",
    "TRADE_DTYPE",
    "WEIGHTS",
    "load_capture",
    "load_trades_csv",
    "source_from_spec",
]
