"""Async, weight-aware client of the Binance spot REST endpoints the recorder needs.

* ``GET /api/v3/exchangeInfo?symbols=[...]`` — refuse unknown symbols before connecting.
* ``GET /api/v3/historicalTrades?symbol=&fromId=&limit=`` — trades by id, for gap repair.
* ``GET /api/v3/aggTrades?symbol=&fromId=&limit=`` and ``GET /api/v3/trades``.

What Binance says and what this client does (spot REST docs, ``rest-api.md`` "HTTP Return
Codes" and "LIMITS", checked 2026-07):

* every reply carries ``X-MBX-USED-WEIGHT-1M``; the client waits for the next minute rather
  than send a request that would cross ``max_weight_per_min``;
* **429** (rate limit): ``Retry-After`` says how long to back off. The client remembers it
  and *sends nothing* (from any caller) until it has passed, then retries;
* **418** (IP auto-banned for not backing off after 429s; "IP bans are tracked and scale in
  duration for repeat offenders, from 2 minutes to 3 days"; ``Retry-After`` says when the
  ban ends): the client remembers "banned until" and raises :class:`RateLimitBanned` at once,
  without sending, for every request until then — a request during a ban only prolongs it;
* **403** (a WAF rule was violated — "can indicate a rate limit violation or a security
  block"): the client backs off long (``waf_pause_s``, doubling while it repeats) and raises
  :class:`FirewallBlocked` without sending until then;
* **451** (service unavailable from a restricted location): :class:`RestrictedLocation`,
  fatal — retrying cannot help;
* network errors and 5xx replies are retried with :func:`~quantlab.binance.backoff.backoff_delays`,
  at most ``max_retries`` times.

HTTP runs on the standard library (``http.client`` with a kept-alive connection) in one
worker thread, behind this class; callers only see coroutines. The pause is checked on that
thread right before each send, so a request queued behind a 429/418/403 never goes out.
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import logging
import re
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Self
from urllib.parse import urlencode, urlsplit

from quantlab.config import parse_symbols
from quantlab.errors import QuantlabError, UnknownSymbolError

from .backoff import backoff_delays, classify_http_status, parse_retry_after
from .protocol import AggTrade, ProtocolError, Trade, agg_trade_from_rest, trade_from_rest

__all__ = [
    "BinanceRest",
    "RestError",
    "RestPaused",
    "RateLimitBanned",
    "FirewallBlocked",
    "RestrictedLocation",
    "WEIGHTS",
    "MARKET_DATA_HOSTS",
]

log = logging.getLogger(__name__)

#: Request weights of the spot endpoints quantlab calls, the one table for the client and the
#: simulator (rest-api.md; ``trades``/``historicalTrades`` went from 10 to 25 on 2024-04-04).
WEIGHTS = {"ping": 1, "time": 1, "exchangeInfo": 20, "trades": 25, "historicalTrades": 25, "aggTrades": 4}
MAX_LIMIT = 1000
INVALID_SYMBOL = -1121  # Binance error code for an unknown symbol
#: Hosts that serve public market data only; ``faqs/market_data_only.md`` lists what they serve
#: (aggTrades, trades, klines, depth, ticker, exchangeInfo, ...) and ``historicalTrades`` is not
#: among them, so gap repair cannot run there.
MARKET_DATA_HOSTS = ("data-api.binance.vision",)
#: Replies meaning "this host does not serve that path" (as opposed to a refused request).
_NOT_SERVED = (404, 405, 410, 501)
#: Shortest ban Binance gives (rest-api.md, LIMITS): used when a 418 carries no Retry-After.
MIN_BAN_S = 120.0


class RestError(QuantlabError):
    """A REST request failed for good (after retries, or with a non-retryable reply)."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class RestPaused(RestError):
    """Binance asked for silence (418 ban, 403 firewall): nothing is sent until ``until``
    (epoch seconds); the request was not sent (or was the one that got the refusal)."""

    def __init__(self, message: str, *, status: int, until: float, retry_after_s: float | None = None):
        super().__init__(message, status=status)
        self.until = until
        self.retry_after_s = retry_after_s


class RateLimitBanned(RestPaused):
    """HTTP 418: Binance banned this IP for ignoring 429s; nothing may be sent until it ends."""

    def __init__(self, message: str, *, retry_after_s: float | None = None, until: float | None = None):
        until = until if until is not None else time.time() + (retry_after_s or MIN_BAN_S)
        super().__init__(message, status=418, until=until, retry_after_s=retry_after_s)


class FirewallBlocked(RestPaused):
    """HTTP 403: a Binance WAF rule blocked the request; back off long before trying again."""

    def __init__(self, message: str, *, until: float):
        super().__init__(message, status=403, until=until)


class RestrictedLocation(RestError):
    """HTTP 451: Binance does not serve this location; retrying cannot help."""

    def __init__(self, message: str):
        super().__init__(message, status=451)


class BinanceRest:
    """Binance REST client. Use as ``async with BinanceRest(url) as rest:`` or call
    :meth:`aclose` when done.

    ``rest_url``: base such as ``https://api.binance.com`` (``/api/v3/...`` is appended).
    ``max_weight_per_min``: stay under this weight per minute (Binance allows 6000).
    ``time_unit="MICROSECOND"`` asks for µs timestamps (``X-MBX-TIME-UNIT``); ``api_key``
    is sent as ``X-MBX-APIKEY`` when given (not needed for these public endpoints).
    ``waf_pause_s``: how long to stay silent after a 403 (doubling while 403s repeat, at
    most ``waf_pause_max_s``).
    ``sleep``/``clock`` are injectable for tests (``clock`` is wall-clock epoch seconds:
    the weight window is the calendar minute).

    State a caller may read: :attr:`paused_until` (epoch s; nothing is sent before it),
    :meth:`pause_left` and :attr:`counters` (``withheld`` counts requests not sent because
    of a ban or firewall pause).
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
        waf_pause_s: float = 300.0,
        waf_pause_max_s: float = 3600.0,
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
        if not (0 < waf_pause_s <= waf_pause_max_s):
            raise ValueError(f"waf_pause_s: must be > 0 and <= waf_pause_max_s, got {waf_pause_s!r}")
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
        self.waf_pause_s = float(waf_pause_s)
        self.waf_pause_max_s = float(waf_pause_max_s)
        self._waf_delays: Iterator[float] | None = None  # reset by a 200
        #: nothing is sent before this (epoch s); why, as (status, message)
        self.paused_until = 0.0
        self._pause_why: tuple[int, str] = (0, "")
        self.counters: dict[str, float] = {
            "requests": 0,
            "retries": 0,
            "http_429": 0,
            "http_418": 0,
            "http_403": 0,
            "withheld": 0,
            "weight_waits": 0,
            "weight_wait_s": 0.0,
        }

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
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

    def pause_left(self) -> float:
        """Seconds until requests may be sent again (0.0 when they may go now)."""
        return max(0.0, self.paused_until - self._clock())

    @property
    def banned(self) -> bool:
        """True while a 418 ban or 403 firewall pause is in force."""
        return self._pause_why[0] in (418, 403) and self.pause_left() > 0

    def _pause(self, status: int, seconds: float, why: str) -> None:
        """Called on the worker thread as soon as a refusal arrives (before anyone else sends)."""
        until = self._clock() + seconds
        if until > self.paused_until or status in (418, 403):
            self.paused_until = max(self.paused_until, until)
            self._pause_why = (status, why)

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
        return await self._trades("historicalTrades", symbol, limit, trade_from_rest, from_id=from_id)

    async def recent_trades(self, symbol: str, limit: int = 500) -> list[Trade]:
        """The latest ``limit`` trades of ``symbol`` (``/api/v3/trades``), oldest first."""
        return await self._trades("trades", symbol, limit, trade_from_rest)

    async def serves_history(self, symbol: str) -> bool | None:
        """Whether this host serves ``/api/v3/historicalTrades`` (gap repair needs it).

        False for a known market-data-only host (no request sent) or when the host answers
        that path as not found; None when it cannot tell now (ban, firewall, outage).
        """
        if (self._host or "").lower() in MARKET_DATA_HOSTS:
            return False
        try:
            await self.historical_trades(symbol, 0, 1)
        except RestPaused:
            return None
        except RestError as exc:
            if exc.status in _NOT_SERVED:
                return False
            if exc.status is None or exc.status >= 500 or exc.status == 429:
                return None
            raise
        return True

    async def agg_trades(self, symbol: str, from_id: int, limit: int = MAX_LIMIT) -> list[AggTrade]:
        """Up to ``limit`` aggregate trades of ``symbol`` from agg id ``from_id`` upward."""
        return await self._trades("aggTrades", symbol, limit, agg_trade_from_rest, from_id=from_id)

    async def _trades(self, endpoint: str, symbol: str, limit: int, convert: Callable[..., Any], *,
                      from_id: int | None = None) -> list:
        """GET ``/api/v3/<endpoint>`` for ``symbol`` (``limit`` rows, from id ``from_id`` when
        given; both checked) at its weight; rows -> ``convert(row, symbol, recv_ns)``."""
        params: dict[str, Any] = {"symbol": _one_symbol(symbol)}
        if from_id is not None:
            _check_id("from_id", from_id)
            params["fromId"] = from_id
        _check_limit(limit)
        params["limit"] = limit
        rows = await self._get(f"/api/v3/{endpoint}", params, WEIGHTS[endpoint])
        recv_ns = time.time_ns()
        return [convert(r, params["symbol"], recv_ns, time_unit=self.time_unit) for r in _rows(rows)]

    async def fetch_trade_range(self, symbol: str, first_id: int, last_id: int) -> list[Trade]:
        """Every trade of ``symbol`` with ``first_id <= id <= last_id`` that
        ``historicalTrades`` serves now, sorted by id, paging 1000 at a time.

        Ids it does not serve are simply absent (see :meth:`history_range` for whether
        they are gone or merely not served yet).
        """
        return (await self.history_range(symbol, first_id, last_id))[0]

    async def history_range(self, symbol: str, first_id: int, last_id: int) -> tuple[list[Trade], int | None]:
        """``(trades, highest_id_seen)``: the trades of ``first_id..last_id`` that
        ``historicalTrades`` serves now, sorted by id, and the highest trade id any of its
        pages returned (possibly beyond ``last_id``; None when every page was empty).

        Paging stops at ``last_id``, at an empty page, or at a short page (the history
        database has nothing newer yet: Binance serves this endpoint from its database,
        which may lag the market).
        """
        sym = _one_symbol(symbol)
        _check_id("first_id", first_id)
        _check_id("last_id", last_id)
        if last_id < first_id:
            raise ValueError(f"last_id: {last_id} is below first_id {first_id}")
        out: list[Trade] = []
        seen: int | None = None
        next_id = first_id
        while next_id <= last_id:
            want = min(MAX_LIMIT, last_id - next_id + 1)
            raw = await self.historical_trades(sym, next_id, want)
            if raw:
                top = max(t.trade_id for t in raw)
                seen = top if seen is None else max(seen, top)
            page = sorted((t for t in raw if next_id <= t.trade_id <= last_id), key=lambda t: t.trade_id)
            if not page:
                break
            out.extend(page)
            next_id = page[-1].trade_id + 1
            if len(raw) < want:
                break
        if out and (len(out) != last_id - first_id + 1):
            log.info(
                "%s: historicalTrades served %d of %d trades in ids %d..%d",
                sym, len(out), last_id - first_id + 1, first_id, last_id,
            )
        return out, seen

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
            await self._wait_pause(url)
            await self._respect_weight(weight)
            try:
                reply = await loop.run_in_executor(self._pool, self._fetch, target)
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
            if reply is None:
                continue  # a pause began while this request waited for the worker: not sent
            status, headers, body = reply
            self._note_weight(headers)
            if status == 200:
                self._waf_delays = None  # reset by a 200
                try:
                    return json.loads(body)
                except ValueError as exc:
                    raise RestError(f"GET {url}: reply is not JSON: {body[:80]!r}", status=200) from exc
            retry_after = parse_retry_after(headers.get("retry-after"))
            code, msg = _error_of(body)
            if status in (418, 403):
                self._raise_paused(url, retry_after)
            if status == 451:
                raise RestrictedLocation(
                    f"GET {url}: HTTP 451, Binance refuses service from this location"
                    + (f" ({msg})" if msg else "") + "; nothing can be recorded from this network"
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
            if status != 429:  # a 429 pause is already in force (set on the worker thread)
                await self._sleep(delay)

    async def _wait_pause(self, url: str) -> None:
        """Sleep through a 429 back-off; raise at once during a ban or firewall pause."""
        while (left := self.pause_left()) > 0:
            if self._pause_why[0] in (418, 403):
                self.counters["withheld"] += 1
                self._raise_paused(url)
            await self._sleep(left)

    def _raise_paused(self, url: str, retry_after: float | None = None) -> None:
        status, why = self._pause_why
        left = self.pause_left()
        until_txt = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.paused_until))
        if status == 418:
            raise RateLimitBanned(
                f"GET {url}: HTTP 418, Binance banned this IP until {until_txt} ({left:.0f} s left; {why}); "
                "nothing is sent until then",
                retry_after_s=retry_after if retry_after is not None else left, until=self.paused_until,
            )
        raise FirewallBlocked(
            f"GET {url}: HTTP 403, blocked by Binance's web application firewall ({why}); "
            f"backing off until {until_txt} ({left:.0f} s)",
            until=self.paused_until,
        )

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

    def _fetch(self, target: str) -> tuple[int, dict[str, str], bytes] | None:
        """Blocking GET on the worker thread; reuses the kept-alive connection once.

        Returns None without sending when a pause is in force (a refusal that arrived while
        this request waited behind another); notes any refusal's pause before returning, so
        the next queued request sees it."""
        if self._clock() < self.paused_until:
            return None
        self.counters["requests"] += 1
        reply = self._send(target)
        status, hdrs, body = reply
        if status in (429, 418, 403):
            after = parse_retry_after(hdrs.get("retry-after"))
            code, msg = _error_of(body)
            if code is None and msg.lstrip().startswith("<"):
                msg = ""  # an HTML page (the firewall's): nothing worth quoting
            if status == 429:
                self._pause(429, after if after is not None else 1.0, msg or "rate limit")
            elif status == 418:
                self.counters["http_418"] += 1
                self._pause(418, after if after is not None else _ban_left(msg, self._clock()), msg or "banned")
            else:
                self.counters["http_403"] += 1
                if self._waf_delays is None:
                    self._waf_delays = backoff_delays(self.waf_pause_s, 2.0, self.waf_pause_max_s, jitter=0.0)
                self._pause(403, next(self._waf_delays), (msg or "request blocked")[:120])
        return reply

    def _send(self, target: str) -> tuple[int, dict[str, str], bytes]:
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


def _ban_left(msg: str, now: float) -> float:
    """Seconds left of a ban from Binance's message "IP banned until 1620286253180", else the
    shortest ban Binance gives."""
    m = re.search(r"banned until (\d{12,14})", msg or "")
    if m:
        return max(1.0, int(m.group(1)) / 1000.0 - now)
    return MIN_BAN_S


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
