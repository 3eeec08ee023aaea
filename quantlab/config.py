"""Endpoints, environment variables and defaults.

Precedence: explicit arguments (CLI flags), then the process environment, then a
``.env`` file in the working directory, then the defaults below.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
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


def parse_symbols(value: str | Sequence[str] | None) -> list[str]:
    """``"btcusdt, um:BTCUSDT"`` -> ``["BTCUSDT", "um:BTCUSDT"]`` (see :mod:`quantlab.symbols`);
    refuses odd names, skips empty items (an empty result is the caller's to refuse)."""
    from quantlab.symbols import parse_symbols as _parse

    try:
        return [str(s) for s in _parse(value)]
    except (ValueError, TypeError) as exc:
        raise ValueError(f"symbols: {str(exc).removeprefix('symbol: ')}") from None


def require_symbols(value: str | Sequence[str] | None, flag: str = "--symbols") -> list[str] | None:
    """Like :func:`parse_symbols`, but a value given with no symbol in it (``--symbols ""``) is
    refused instead of falling back to the defaults; None (not given) stays None."""
    if value is None:
        return None
    syms = parse_symbols(value)
    if not syms:
        raise ValueError(f"{flag}: no symbol given; pass e.g. {flag} BTCUSDT,ETHUSDT (or leave it out for the defaults)")
    return syms


def demo_store_path(store: str | os.PathLike[str]) -> Path:
    """Where demo data goes for a given store: the sibling ``<name>-demo`` directory."""
    p = Path(store)
    return p if p.name.endswith("-demo") else p.with_name(p.name + "-demo")


def store_identity(source: str | None) -> str | None:
    """The store source a data source writes: ``'demo'`` for the simulator, ``'binance'`` for
    Binance, None for another ``ws://`` exchange (its data is not checked against the store)."""
    source = (source or "binance").strip()
    if source == "demo":
        return "demo"
    if source == "binance":
        return "binance"
    return None


def resolve_store(store: str | os.PathLike[str] | None, source: str | None) -> Path:
    """The store directory for ``source`` data, refusing one that holds the other kind.

    ``source='demo'``: an explicit ``store`` must be a demo store or new; without one, the
    configured store (``$QUANTLAB_STORE`` or ./data/store) resolves to its ``<store>-demo``
    sibling, unless it is itself a demo store. Real sources use the store as given and refuse a
    demo store (:class:`~quantlab.errors.StoreIdentityError`, one line naming both and the fix).
    """
    from quantlab.store.tickstore import check_source, store_source

    identity = store_identity(source)
    given = None if store is None or str(store) == "" else store
    explicit = given is not None
    path = Path(settings().store if given is None else given).expanduser()
    if identity == "demo" and not explicit and store_source(path) != "demo":
        path = demo_store_path(path)
    if identity is not None:
        check_source(path, identity)
    return path


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
