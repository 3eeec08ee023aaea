"""Async, weight-aware client of the Binance spot REST endpoints the recorder needs.

* ``GET /api/v3/exchangeInfo?symbols=[...]`` — refuse unknown symbols before connecting.
* ``GET /api/v3/historicalTrades?symbol=&fromId=&limit=`` — trades by id, for gap repair.
* ``GET /api/v3/aggTrades?symbol=&fromId=&limit=`` and ``GET /api/v3/trades``.

Rate limits, as Binance documents them: every reply carries ``X-MBX-USED-WEIGHT-1M`` (the
IP's weight used in the current minute). The client waits for the next minute rather than
send a request that would cross ``max_weight_per_min``; on HTTP 429 it sleeps for
``Retry-After`` seconds and retries; on HTTP 418 (the IP is banned for ignoring 429s) it
stops and raises :class:`RateLimitBanned`. Network errors and 5xx replies are retried with
:func:`quantlab.binance.backoff.backoff_delays`, at most ``max_retries`` times.

HTTP runs on the standard library (``http.client`` with a kept-alive connection) in one
worker thread, behind this class; callers only see coroutines.
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import logging
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode, urlsplit

from quantlab.config import parse_symbols
from quantlab.errors import QuantlabError, UnknownSymbolError

from .backoff import backoff_delays, classify_http_status, parse_retry_after
from .protocol import AggTrade, ProtocolError, Trade, agg_trade_from_rest, trade_from_rest

__all__ = ["BinanceRest", "RestError", "RateLimitBanned", "WEIGHTS"]

log = logging.getLogger(__name__)

#: Request weights of the endpoints used here (Binance spot, 2025).
WEIGHTS = {"exchangeInfo": 20, "historicalTrades": 25, "aggTrades": 4, "trades": 25}
MAX_LIMIT = 1000
INVALID_SYMBOL = -1121  # Binance error code for an unknown symbol


class RestError(QuantlabError):
    """A REST request failed for good (after retries, or with a non-retryable reply)."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class RateLimitBanned(RestError):
    """HTTP 418: Binance banned this IP for ignoring 429s; nothing may be sent until it ends."""

    def __init__(self, message: str, *, retry_after_s: float | None = None):
        super().__init__(message, status=418)
        self.retry_after_s = retry_after_s


class BinanceRest:
    """Binance REST client. Use as ``async with BinanceRest(url) as rest:`` or call
    :meth:`aclose` when done.

    ``rest_url``: base such as ``https://api.binance.com`` (``/api/v3/...`` is appended).
    ``max_weight_per_min``: stay under this weight per minute (Binance allows 6000).
    ``time_unit="MICROSECOND"`` asks for µs timestamps (``X-MBX-TIME-UNIT``); ``api_key``
    is sent as ``X-MBX-APIKEY`` when given (not needed for these public endpoints).
    ``sleep``/``clock`` are injectable for tests (``clock`` is wall-clock epoch seconds:
    the weight window is the calendar minute).
    """

    def __init__(
        self,
        rest_url: str,
        *,
        timeout_s: float = 10.0,
        max_weight_per_min: int = 5000,
        max_retries: int = 5,
        backoff: Callable[[], Iterator[float]] = backoff_delays,
        time_unit: str | None = None,
        api_key: str | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urlsplit(rest_url) if isinstance(rest_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"rest_url: {rest_url!r} is not an http(s) URL (use e.g. 'https://api.binance.com')"
            )
        if not timeout_s > 0:
            raise ValueError(f"timeout_s: must be > 0 seconds, got {timeout_s!r}")
        if not (isinstance(max_weight_per_min, int) and max_weight_per_min > 0):
            raise ValueError(f"max_weight_per_min: must be a positive int, got {max_weight_per_min!r}")
        if not (isinstance(max_retries, int) and max_retries >= 0):
            raise ValueError(f"max_retries: must be an int >= 0, got {max_retries!r}")
        if time_unit is not None and time_unit.upper() not in ("MILLISECOND", "MICROSECOND"):
            raise ValueError(f"time_unit: {time_unit!r} is not one of MILLISECOND, MICROSECOND")
        self.rest_url = rest_url.rstrip("/")
        self._secure = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self.timeout_s = float(timeout_s)
        self.max_weight_per_min = max_weight_per_min
        self.max_retries = max_retries
        self._backoff = backoff
        self.time_unit = time_unit.upper() if time_unit else None
        self._api_key = api_key  # optional; the market-data endpoints used here need none
        self._sleep = sleep
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="binance-rest")
        self._conn: http.client.HTTPConnection | None = None
        self._used_weight = 0
        self._weight_minute: int | None = None
        self._closed = False
        self.counters: dict[str, float] = {
            "requests": 0,
            "retries": 0,
            "http_429": 0,
            "weight_waits": 0,
            "weight_wait_s": 0.0,
        }

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> BinanceRest:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connection and the worker thread."""
        if self._closed:
            return
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, conn.close)
        self._pool.shutdown(wait=False)

    @property
    def used_weight(self) -> int:
        """Weight used in the current minute, as last reported by the server."""
        if self._weight_minute != int(self._clock() // 60):
            return 0
        return self._used_weight

    # ------------------------------------------------------------------ endpoints

    async def exchange_info(self, symbols: Iterable[str] | str) -> dict[str, dict]:
        """``{symbol: exchangeInfo entry}`` for every requested symbol.

        Raises :class:`~quantlab.errors.UnknownSymbolError` naming every symbol the
        exchange does not list.
        """
        syms = parse_symbols(symbols if isinstance(symbols, str) else list(symbols))
        if not syms:
            raise ValueError("symbols: no symbol given (use e.g. ['BTCUSDT'])")
        found: dict[str, dict] = {}
        try:
            info = await self._get(
                "/api/v3/exchangeInfo",
                {"symbols": json.dumps(syms, separators=(",", ":"))},
                WEIGHTS["exchangeInfo"],
            )
            found = _symbols_of(info)
        except RestError as exc:
            if exc.code != INVALID_SYMBOL and exc.status != 400:
                raise
            # The batch is refused as a whole; ask symbol by symbol to name the culprits.
            for sym in syms:
                try:
                    one = await self._get(
                        "/api/v3/exchangeInfo", {"symbol": sym}, WEIGHTS["exchangeInfo"]
                    )
                except RestError as one_exc:
                    if one_exc.code == INVALID_SYMBOL or one_exc.status == 400:
                        continue
                    raise
                found.update(_symbols_of(one))
        unknown = [s for s in syms if s not in found]
        if unknown:
            raise UnknownSymbolError(
                f"unknown symbol{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
                f"not listed by {self.rest_url}/api/v3/exchangeInfo "
                "(check the spelling; spot symbols look like BTCUSDT)"
            )
        for sym in syms:
            status = found[sym].get("status")
            if status not in (None, "TRADING"):
                log.warning("symbol %s has status %s on the exchange (no trades expected)", sym, status)
        return {s: found[s] for s in syms}

    async def historical_trades(self, symbol: str, from_id: int, limit: int = MAX_LIMIT) -> list[Trade]:
        """Up to ``limit`` trades of ``symbol`` with ids from ``from_id`` upward, oldest first."""
        sym = _one_symbol(symbol)
        _check_id("from_id", from_id)
        _check_limit(limit)
        rows = await self._get(
            "/api/v3/historicalTrades",
            {"symbol": sym, "fromId": from_id, "limit": limit},
            WEIGHTS["historicalTrades"],
        )
        recv_ns = time.time_ns()
        return [trade_from_rest(r, sym, recv_ns, time_unit=self.time_unit) for r in _rows(rows)]

    async def recent_trades(self, symbol: str, limit: int = 500) -> list[Trade]:
        """The latest ``limit`` trades of ``symbol`` (``/api/v3/trades``), oldest first."""
        sym = _one_symbol(symbol)
        _check_limit(limit)
        rows = await self._get(
            "/api/v3/trades", {"symbol": sym, "limit": limit}, WEIGHTS["trades"]
        )
        recv_ns = time.time_ns()
        return [trade_from_rest(r, sym, recv_ns, time_unit=self.time_unit) for r in _rows(rows)]

    async def agg_trades(self, symbol: str, from_id: int, limit: int = MAX_LIMIT) -> list[AggTrade]:
        """Up to ``limit`` aggregate trades of ``symbol`` from agg id ``from_id`` upward."""
        sym = _one_symbol(symbol)
        _check_id("from_id", from_id)
        _check_limit(limit)
        rows = await self._get(
            "/api/v3/aggTrades",
            {"symbol": sym, "fromId": from_id, "limit": limit},
            WEIGHTS["aggTrades"],
        )
        recv_ns = time.time_ns()
        return [agg_trade_from_rest(r, sym, recv_ns, time_unit=self.time_unit) for r in _rows(rows)]

    async def fetch_trade_range(self, symbol: str, first_id: int, last_id: int) -> list[Trade]:
        """Every trade of ``symbol`` with ``first_id <= id <= last_id`` the exchange still
        has, sorted by id, paging 1000 at a time.

        Ids the exchange cannot provide are simply absent from the result (the caller
        records them as a gap); paging stops at ``last_id`` or at an empty page.
        """
        sym = _one_symbol(symbol)
        _check_id("first_id", first_id)
        _check_id("last_id", last_id)
        if last_id < first_id:
            raise ValueError(f"last_id: {last_id} is below first_id {first_id}")
        out: list[Trade] = []
        next_id = first_id
        while next_id <= last_id:
            page = await self.historical_trades(sym, next_id, min(MAX_LIMIT, last_id - next_id + 1))
            page = [t for t in page if next_id <= t.trade_id <= last_id]
            if not page:
                break
            page.sort(key=lambda t: t.trade_id)
            out.extend(page)
            next_id = page[-1].trade_id + 1
        if out and (len(out) != last_id - first_id + 1):
            log.info(
                "%s: exchange returned %d of %d trades in ids %d..%d",
                sym, len(out), last_id - first_id + 1, first_id, last_id,
            )
        return out

    # ------------------------------------------------------------------ transport

    async def _get(self, path: str, params: dict[str, Any], weight: int) -> Any:
        if self._closed:
            raise RuntimeError("BinanceRest is closed")
        target = self._prefix + path + ("?" + urlencode(params) if params else "")
        url = f"{self.rest_url}{path}"
        delays = self._backoff()
        attempt = 0
        loop = asyncio.get_running_loop()
        while True:
            await self._respect_weight(weight)
            self.counters["requests"] += 1
            try:
                status, headers, body = await loop.run_in_executor(self._pool, self._fetch, target)
            except (OSError, http.client.HTTPException) as exc:
                attempt += 1
                if attempt > self.max_retries:
                    raise RestError(
                        f"GET {url}: {type(exc).__name__}: {exc} "
                        f"(endpoint unreachable; gave up after {attempt} attempts)"
                    ) from exc
                delay = next(delays)
                log.warning("GET %s failed (%s); retry %d in %.2f s", url, exc, attempt, delay)
                self.counters["retries"] += 1
                await self._sleep(delay)
                continue
            self._note_weight(headers)
            if status == 200:
                try:
                    return json.loads(body)
                except ValueError as exc:
                    raise RestError(f"GET {url}: reply is not JSON: {body[:80]!r}", status=200) from exc
            retry_after = parse_retry_after(headers.get("retry-after"))
            code, msg = _error_of(body)
            if status == 418:
                raise RateLimitBanned(
                    f"GET {url}: HTTP 418, this IP is banned by Binance"
                    + (f" for {retry_after:g} s" if retry_after is not None else "")
                    + f" ({msg or 'rate limits ignored'}); stop sending requests",
                    retry_after_s=retry_after,
                )
            if not classify_http_status(status):
                raise RestError(
                    f"GET {url}: HTTP {status}" + (f" code {code}" if code is not None else "")
                    + (f": {msg}" if msg else ""),
                    status=status,
                    code=code,
                )
            attempt += 1
            if status == 429:
                self.counters["http_429"] += 1
            if attempt > self.max_retries:
                raise RestError(
                    f"GET {url}: HTTP {status} after {attempt} attempts" + (f": {msg}" if msg else ""),
                    status=status,
                    code=code,
                )
            delay = retry_after if retry_after is not None else next(delays)
            log.warning("GET %s: HTTP %d; retry %d in %.2f s", url, status, attempt, delay)
            self.counters["retries"] += 1
            await self._sleep(delay)

    async def _respect_weight(self, weight: int) -> None:
        now = self._clock()
        if self.used_weight + weight <= self.max_weight_per_min:
            return
        wait = 60.0 - (now % 60.0) + 0.05
        log.info(
            "REST weight %d + %d would pass %d/min; waiting %.1f s for the next minute",
            self._used_weight, weight, self.max_weight_per_min, wait,
        )
        self.counters["weight_waits"] += 1
        self.counters["weight_wait_s"] += wait
        await self._sleep(wait)
        self._used_weight = 0
        self._weight_minute = int(self._clock() // 60)

    def _note_weight(self, headers: dict[str, str]) -> None:
        used = headers.get("x-mbx-used-weight-1m")
        if used is None:
            return
        try:
            self._used_weight = int(used)
        except ValueError:
            return
        self._weight_minute = int(self._clock() // 60)

    def _connect(self) -> http.client.HTTPConnection:
        if self._secure:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=self.timeout_s, context=ssl.create_default_context()
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout_s)

    def _fetch(self, target: str) -> tuple[int, dict[str, str], bytes]:
        """Blocking GET on the worker thread; reuses the kept-alive connection once."""
        headers = {"Accept": "application/json", "Accept-Encoding": "gzip", "User-Agent": "quantlab"}
        if self.time_unit:
            headers["X-MBX-TIME-UNIT"] = self.time_unit
        if self._api_key:
            headers["X-MBX-APIKEY"] = self._api_key
        for reused in (self._conn is not None, False):
            conn = self._conn or self._connect()
            self._conn = conn
            try:
                conn.request("GET", target, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                self._conn = None
                if reused:
                    continue  # a stale kept-alive connection: retry once on a fresh one
                raise
            except BaseException:
                conn.close()
                self._conn = None
                raise
            hdrs = {k.lower(): v for k, v in resp.getheaders()}
            if resp.will_close:
                conn.close()
                self._conn = None
            if hdrs.get("content-encoding", "").lower() == "gzip":
                body = gzip.decompress(body)
            return resp.status, hdrs, body
        raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------- helpers


def _symbols_of(info: Any) -> dict[str, dict]:
    if not isinstance(info, dict) or not isinstance(info.get("symbols"), list):
        raise RestError(f"exchangeInfo reply has no 'symbols' list: {str(info)[:120]}")
    return {d["symbol"]: d for d in info["symbols"] if isinstance(d, dict) and "symbol" in d}


def _rows(rows: Any) -> list[dict]:
    if not isinstance(rows, list):
        raise ProtocolError(f"expected a JSON array of rows, got {str(rows)[:120]}")
    return rows


def _error_of(body: bytes) -> tuple[int | None, str]:
    try:
        err = json.loads(body)
    except ValueError:
        return None, body[:200].decode("utf-8", "replace").strip()
    if isinstance(err, dict):
        code = err.get("code")
        return (code if isinstance(code, int) else None), str(err.get("msg", ""))
    return None, str(err)[:200]


def _one_symbol(symbol: str) -> str:
    syms = parse_symbols([symbol]) if isinstance(symbol, str) else []
    if len(syms) != 1:
        raise ValueError(f"symbol: {symbol!r} is not one symbol name like 'BTCUSDT'")
    return syms[0]


def _check_id(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name}: must be a trade id (int >= 0), got {value!r}")


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit: must be an int in 1..{MAX_LIMIT}, got {limit!r}")
