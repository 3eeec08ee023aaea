"""Binance spot market data: wire protocol (sans I/O), stream client, REST backfill.

* :mod:`quantlab.binance.protocol` parses frames into typed events and builds URLs and
  control messages, with no sockets.
* :mod:`quantlab.binance.backoff` holds the pure reconnect and pacing policies.
* :mod:`quantlab.binance.stream` is the asyncio WebSocket client (:class:`BinanceStream`).
* :mod:`quantlab.binance.rest` is the weight-aware REST client (:class:`BinanceRest`).
"""
