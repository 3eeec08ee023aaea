"""Endpoints, environment variables and defaults.

Precedence: explicit arguments (CLI flags), then the process environment, then a
``.env`` file in the working directory, then the defaults below.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

BINANCE_WS_URL = "wss://stream.binance.com:9443"
BINANCE_REST_URL = "https://api.binance.com"
DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT")
DEFAULT_STORE = "./data/store"
DEFAULT_LOG_LEVEL = "INFO"

ENV_KEYS = (
    "QUANTLAB_SYMBOLS",
    "QUANTLAB_STORE",
    "QUANTLAB_SOURCE",
    "QUANTLAB_WS_URL",
    "QUANTLAB_REST_URL",
    "QUANTLAB_LOG_LEVEL",
)


def read_dotenv(path: str | os.PathLike[str] = ".env") -> dict[str, str]:
    """Parse ``KEY=VALUE`` lines of a .env file (comments, blank lines and quotes allowed)."""
    p = Path(path)
    if not p.is_file():
        return {}
    values: dict[str, str] = {}
    for raw in p.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip().strip('"').strip("'")
        values[key] = value
    return values


def env(key: str, default: str | None = None) -> str | None:
    """Look ``key`` up in the environment, then in ./.env, then return ``default``."""
    if key in os.environ and os.environ[key] != "":
        return os.environ[key]
    return read_dotenv().get(key, default)


def parse_symbols(value: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """``"btcusdt, ETHUSDT"`` -> ``["BTCUSDT", "ETHUSDT"]``; refuses empty or odd names."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    symbols: list[str] = []
    for item in items:
        s = str(item).strip().upper()
        if not s:
            continue
        if not s.isalnum():
            raise ValueError(
                f"symbols: {item!r} is not a Binance symbol (letters and digits only, e.g. BTCUSDT)"
            )
        if s not in symbols:
            symbols.append(s)
    return symbols


@dataclass(frozen=True)
class Settings:
    """The resolved configuration of one process."""

    symbols: tuple[str, ...]
    store: str
    source: str
    ws_url: str
    rest_url: str
    log_level: str


def settings(
    *,
    symbols: str | list[str] | None = None,
    store: str | None = None,
    source: str | None = None,
    ws_url: str | None = None,
    rest_url: str | None = None,
    log_level: str | None = None,
) -> Settings:
    """Resolve every setting by precedence (argument > environment > .env > default)."""
    syms = parse_symbols(symbols) or parse_symbols(env("QUANTLAB_SYMBOLS")) or list(DEFAULT_SYMBOLS)
    return Settings(
        symbols=tuple(syms),
        store=store or env("QUANTLAB_STORE", DEFAULT_STORE) or DEFAULT_STORE,
        source=source or env("QUANTLAB_SOURCE", "binance") or "binance",
        ws_url=(ws_url or env("QUANTLAB_WS_URL", BINANCE_WS_URL) or BINANCE_WS_URL).rstrip("/"),
        rest_url=(rest_url or env("QUANTLAB_REST_URL", BINANCE_REST_URL) or BINANCE_REST_URL).rstrip("/"),
        log_level=(log_level or env("QUANTLAB_LOG_LEVEL", DEFAULT_LOG_LEVEL) or "INFO").upper(),
    )
