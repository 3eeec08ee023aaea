"""Where a store keeps what, what it holds and how it says so: what the reader and the writer
both need (paths, the ``store.json`` marker, the store's source). No open files, no state.

A store directory (see :mod:`quantlab.store.tickstore` for the full layout)::

    store.json                  {"format": "quantlab-store", "version": 1, "compression", "source"}
    <kind>/<SYMBOL>/...         spot tables (where release 0.1 put them)
    um/<kind>/<SYMBOL>/...      USD-M futures (``um:SYMBOL``); ``cm/`` for COIN-M
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from quantlab.errors import StoreCorruptError, StoreIdentityError, UnknownSymbolError
from quantlab.store.schema import SCHEMAS, TableSchema
from quantlab.symbols import MARKETS, Symbol, parse_symbol

FORMAT: dict[str, Any] = {"format": "quantlab-store", "version": 1}
SOURCES = ("binance", "demo")  # real exchange data (live or imported) | simulated
LEGACY_SOURCE = "binance"  # a store without a source (release 0.1) holds real data


def read_json(path: Path, default: Any) -> Any:
    """The JSON document at ``path``, ``default`` when there is none (StoreCorruptError when
    it is not JSON)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default
    except json.JSONDecodeError as exc:
        raise StoreCorruptError(f"{path} is not valid JSON: {exc}") from exc


def check_source_name(source: str | None) -> None:
    if source is not None and source not in SOURCES:
        raise ValueError(f"source: {source!r} is not one of {', '.join(SOURCES)}")


def store_source(path: str | os.PathLike[str]) -> str | None:
    """What an existing store holds: ``'binance'`` (real exchange data; also every store written
    by release 0.1) or ``'demo'`` (simulated); None when ``path`` is not a store yet."""
    p = Path(path).expanduser()
    marker = p / "store.json"
    if not marker.exists():
        return None
    # release 0.1 wrote no source: its stores hold real data, except the app's "<store>-demo"
    return read_json(marker, {}).get("source") or ("demo" if p.name.endswith("-demo") else LEGACY_SOURCE)


def check_source(path: str | os.PathLike[str], source: str) -> str | None:
    """Refuse to put ``source`` data (``'binance'`` | ``'demo'``) into a store holding the other
    kind, with one line naming both and the fix. Returns the store's source (None when new)."""
    check_source_name(source)
    held = store_source(path)
    if held is None or held == source:
        return held
    from quantlab.config import demo_store_path

    p = Path(path)
    if source == "demo":
        raise StoreIdentityError(
            f"store {p} holds real Binance data (source=binance); simulated (demo) trades never go "
            f"into it: use the demo store {demo_store_path(p)} (what --demo picks) or a new --store"
        )
    raise StoreIdentityError(
        f"store {p} holds simulated demo data (source=demo); real Binance data never goes into it: "
        "use a real store (e.g. the default ./data/store) or a new --store"
    )


def check_format(marker: Path) -> None:
    """Refuse a ``store.json`` that is not a quantlab store's, or is of a newer format."""
    meta = read_json(marker, {})
    if meta.get("format") != FORMAT["format"]:
        raise StoreCorruptError(f"{marker} does not describe a quantlab store")
    if int(meta.get("version", 0)) > FORMAT["version"]:
        raise StoreCorruptError(
            f"{marker}: store format version {meta.get('version')} is newer than this quantlab; upgrade it"
        )


def schema_of(kind: str) -> TableSchema:
    """The table schema of ``kind`` (trades, aggtrades, markprice, funding)."""
    try:
        return SCHEMAS[kind]
    except KeyError:
        raise ValueError(f"kind: {kind!r} is not one of {', '.join(SCHEMAS)}") from None


class Layout:
    """The folders of the store at ``path``: one per (market, kind, symbol)."""

    def __init__(self, path: Path):
        self.path = path

    def market_root(self, market: str) -> Path:
        return self.path if market == "spot" else self.path / market  # spot: where 0.1 put it

    def folder(self, kind: str, symbol: str | Symbol) -> Path:
        try:
            sym = parse_symbol(symbol)
        except ValueError:
            # release 0.1 filed futures files as spot (e.g. klines/BTCUSD_PERP): still readable
            name = str(symbol).strip().upper()
            if ":" in name or not (self.path / kind / name).is_dir():
                raise
            return self.path / kind / name
        return self.market_root(sym.market) / kind / sym.name

    def folder_symbol(self, folder: Path) -> str:
        """The symbol string of a table folder (``BTCUSDT`` or ``um:BTCUSDT``)."""
        rel = folder.relative_to(self.path).parts
        market = rel[0] if len(rel) == 3 else "spot"
        return str(Symbol(market, folder.name))

    def symbols(self, kind: str | None = None) -> list[str]:
        """Symbols with data: trades, agg trades or imported klines (or of one ``kind``);
        spot ones as ``BTCUSDT``, futures as ``um:BTCUSDT`` / ``cm:BTCUSD_PERP``."""
        kinds = [kind] if kind else ["trades", "aggtrades", "klines"]
        out: set[str] = set()
        for market in MARKETS:
            for k in kinds:
                root = self.market_root(market) / k
                if root.is_dir():
                    out.update(str(Symbol(market, p.name)) for p in root.iterdir()
                               if p.is_dir() and any(p.glob("*.h5")))
        return sorted(out)

    def check_symbol(self, symbol: str, kind: str) -> Path:
        """The folder of ``symbol``'s ``kind`` table; UnknownSymbolError naming the known
        symbols when it holds no file."""
        if not isinstance(symbol, (str, Symbol)) or not symbol:
            raise TypeError(f"symbol: expected a symbol name like 'BTCUSDT', got {symbol!r}")
        folder = self.folder(kind, symbol)
        if not folder.is_dir() or not any(folder.glob("*.h5")):
            known = self.symbols(kind) or ["none yet"]
            raise UnknownSymbolError(
                f"unknown symbol {symbol!r} in store {self.path} ({kind}); known: {', '.join(known)}"
            )
        return folder

    def table_folders(self) -> Iterator[tuple[Path, str, TableSchema]]:
        """Every existing table folder: ``(folder, kind, schema)`` (what a new writer salvages)."""
        for market in MARKETS:
            for kind, schema in SCHEMAS.items():
                root = self.market_root(market) / kind
                if not root.is_dir():
                    continue
                for folder in sorted(p for p in root.iterdir() if p.is_dir()):
                    yield folder, kind, schema
