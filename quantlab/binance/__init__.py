"""Binance spot market data: wire protocol (sans I/O), stream client, REST backfill.

* :mod:`quantlab.binance.protocol` parses frames into typed events and builds URLs and
  control messages, with no sockets.
* :mod:`quantlab.binance.backoff` holds the pure reconnect and pacing policies.
* :mod:`quantlab.binance.session` holds the stream client's state and decisions, sans I/O
  (:class:`~quantlab.binance.session.StreamSession`: events in, actions out).
* :mod:`quantlab.binance.stream` is the asyncio WebSocket client (:class:`BinanceStream`),
  the I/O shell of a session.
* :mod:`quantlab.binance.rest` is the weight-aware REST client (:class:`BinanceRest`).

The main names are importable from here; the client modules load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "BinanceStream": "stream",
    "Connected": "stream",
    "Disconnected": "stream",
    "StreamError": "stream",
    "ControlError": "stream",
    "StreamSession": "session",
    "BinanceRest": "rest",
    "RestError": "rest",
    "RateLimitBanned": "rest",
    "RestPaused": "rest",
    "FirewallBlocked": "rest",
    "RestrictedLocation": "rest",
    "Trade": "protocol",
    "AggTrade": "protocol",
    "BookTicker": "protocol",
    "Kline": "protocol",
    "SubscribeReply": "protocol",
    "ErrorFrame": "protocol",
    "ServerShutdown": "protocol",
    "Unknown": "protocol",
    "ProtocolError": "protocol",
    "parse_frame": "protocol",
    "stream_url": "protocol",
    "trades_to_frame": "protocol",
    "backoff_delays": "backoff",
    "classify": "backoff",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'quantlab.binance' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
