"""Official data.binance.vision files: trades, aggTrades and klines (``.csv`` or ``.zip``).

Layouts (header row optional; spot files have none, futures files have one)::

    trades     id, price, qty, quoteQty, time, isBuyerMaker[, isBestMatch]
    aggTrades  aggId, price, qty, firstId, lastId, time, isBuyerMaker[, isBestMatch]
    klines     openTime, open, high, low, close, volume, closeTime, quoteVolume,
               trades, takerBuyBase, takerBuyQuote, ignore
    funding    calc_time, funding_interval_hours, last_funding_rate   (futures ``fundingRate``)

The fundingRate header is data.binance.vision's as published (``BTCUSDT-fundingRate-2024-01.zip``;
seen in several public parsers of those files, e.g. "header calc_time,funding_interval_hours,
last_funding_rate", ``calc_time`` epoch ms, sometimes a few ms past the hour). Mark-price,
index-price and premium-index klines (``markPriceKlines/``, ``indexPriceKlines/``,
``premiumIndexKlines/``) have the klines' 12 columns and file names but are not trades: they
are refused (by their folder, or by their volume: zero in every row while the count column,
Binance's "number of basic data", is not), never stored as trade klines.

Markets: the layout says which market a file comes from (:func:`layout_market`): a header row
means futures, a COIN-M name (``BTCUSD_PERP``) or a ``base_qty`` column means COIN-M. COIN-M
files count contracts (:func:`quantlab.symbols.contract_size` USD each): their ``volume`` is in
contracts and the kline column named ``quote_volume`` holds the *base-asset* volume, trades
carry a ``base_qty`` column, aggTrades only contracts. They are converted on the way in so
that the store always holds base-asset quantities and quote-currency (USD) turnover.

The kind and symbol come from the file name (``BTCUSDT-trades-2025-01-01.csv``,
``ETHUSDT-aggTrades-...``, ``SOLUSDT-1m-2025-07-13.zip``; ``1M`` or ``1mo`` = monthly klines) and
the column count must agree; the importer checks the rows' spacing against the interval.
Timestamps are detected once per file (a row in another unit is refused): Binance switched spot files from milliseconds to
microseconds on 2025-01-01; both become exact int64 nanoseconds. Prices are parsed with
round-trip precision (the same float64 that ``float("61837.63")`` gives).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from quantlab.errors import LayoutError
from quantlab.pandas_compat import EXACT_FLOATS
from quantlab.symbols import MARKET_NAMES, MARKETS, Symbol, contract_size, looks_coinm

CHUNK_ROWS = 500_000
# Binance's kline intervals: 1s 1m ... 1d 3d 1w 1M; monthly archives name the month '1mo'
_INTERVAL = re.compile(r"^\d+(s|m|h|d|w|M|mo)$")


@dataclass(frozen=True)
class ArchiveFile:
    """What a file name says: ``kind`` in {'trades', 'aggtrades', 'klines', 'funding'}."""

    path: Path
    symbol: str  # the name in the file (BTCUSDT, BTCUSD_PERP); see ``qualified`` for the market
    kind: str
    interval: str | None = None
    market: str = "spot"  # set by :func:`resolve_market`; decides the unit conversion

    @property
    def qualified(self) -> str:
        """The store's symbol: ``BTCUSDT`` (spot), ``um:BTCUSDT``, ``cm:BTCUSD_PERP``."""
        return str(Symbol(self.market, self.symbol))


def identify(path: str | os.PathLike[str]) -> ArchiveFile:
    """Kind and symbol from an official file name, or a LayoutError saying what was expected."""
    p = Path(path)
    name = p.name
    for suffix in (".zip", ".csv"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    else:
        raise LayoutError(f"{p}: expected a .csv or .zip file from data.binance.vision")
    parts = name.split("-")
    symbol = parts[0].upper()
    if len(parts) < 2 or not symbol.replace("_", "").isalnum():
        raise LayoutError(
            f"{p}: cannot tell the symbol and kind from the name; expected e.g. "
            "BTCUSDT-trades-2025-01-01.zip, BTCUSDT-aggTrades-....zip or BTCUSDT-1m-2025-01-01.zip"
        )
    tokens = [t.lower() for t in parts[1:]]
    derived = next((d for d in p.parts if d.lower() in _DERIVED_KLINES), None)
    if derived is not None:
        raise LayoutError(
            f"{p}: {derived} are {_DERIVED_KLINES[derived.lower()]} klines, not trades; quantlab "
            "imports trade klines only (the same file names under klines/)")
    if "fundingrate" in tokens:
        return ArchiveFile(p, symbol, "funding")
    if "aggtrades" in tokens:
        return ArchiveFile(p, symbol, "aggtrades")
    if "trades" in tokens:
        return ArchiveFile(p, symbol, "trades")
    if _INTERVAL.match(parts[1]):
        return ArchiveFile(p, symbol, "klines", kline_interval(parts[1]))
    raise LayoutError(
        f"{p}: not a trades, aggTrades or klines file; expected e.g. "
        "BTCUSDT-trades-2025-01-01.zip, BTCUSDT-aggTrades-....zip or BTCUSDT-1m-2025-01-01.zip"
    )


def kline_interval(name: str) -> str:
    """The interval token of a kline file name as the one timeframe name (``1mo`` -> ``1M``,
    a calendar month; ``1m`` stays one minute)."""
    from quantlab.timeframes import parse_timeframe

    return parse_timeframe(name, "interval").text


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix.lower() == ".zip":
        try:
            zf = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise LayoutError(f"{path}: not a valid zip file") from None
        members = [m for m in zf.namelist() if m.lower().endswith(".csv")]
        if len(members) != 1:
            raise LayoutError(f"{path}: expected one .csv inside the zip, found {len(members)}")
        return io.TextIOWrapper(zf.open(members[0]), encoding="utf-8")
    return open(path, encoding="utf-8")


def _time_unit_factor(values: np.ndarray, path: Path) -> int:
    """Factor to nanoseconds, from the magnitude of epoch timestamps (ms, µs or ns)."""
    v = values[values > 0]
    if not len(v):
        raise LayoutError(f"{path}: no valid timestamps")
    m = float(np.median(v))
    for lo, hi, factor, unit in ((1e11, 1e14, 1_000_000, "ms"), (1e14, 1e17, 1_000, "µs"),
                                 (1e17, 1e20, 1, "ns")):
        if lo <= m < hi:
            odd = (v < lo) | (v >= hi)
            if odd.any():  # one unit per file: a row in another unit would land decades away
                raise LayoutError(f"{path}: the file's times are in {unit} but one reads "
                                  f"{int(v[odd][0])}; is the file damaged?")
            return factor
    raise LayoutError(f"{path}: timestamps like {int(m)} are not epoch ms, µs or ns")


_COLUMNS = {
    "trades": (6, 7),
    "aggtrades": (7, 8),
    "klines": (12, 12),
    "funding": (3, 3),
}
_DERIVED_KLINES = {"markpriceklines": "mark-price", "indexpriceklines": "index-price",
                   "premiumindexklines": "premium-index"}


def _first_line(path: Path) -> str:
    with _open_text(path) as fh:
        return fh.readline().strip()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def layout_market(af: ArchiveFile) -> tuple[str, str]:
    """(market the file's layout says, why): ``'um'``/``'cm'`` for futures layouts (a header
    row, a COIN-M name or ``base_qty`` column, a delivery suffix), else ``'spot'``."""
    cells = [c.strip().lower() for c in _first_line(af.path).split(",")]
    header = len(cells) > 1 and not _is_number(cells[1])
    if looks_coinm(af.symbol):
        return "cm", f"{af.symbol} is a COIN-M contract name"
    if header and "base_qty" in cells:
        return "cm", "its base_qty column is COIN-M's"
    if header:
        return "um", "it has a header row; spot files have none"
    if "_" in af.symbol:
        return "um", f"{af.symbol} is a futures contract name"
    return "spot", "no header row"


def resolve_market(af: ArchiveFile, market: str | None) -> ArchiveFile:
    """The file with its market set: the layout's when ``market`` is None (a futures layout is
    then refused, never read as spot), else ``market`` if the layout allows it."""
    if market is not None and market not in MARKETS:
        raise ValueError(f"--market: {market!r} is not one of {', '.join(MARKETS)}")
    looks, why = layout_market(af)
    if market is None:
        if looks != "spot":
            raise LayoutError(
                f"{af.path.name}: looks like {MARKET_NAMES[looks]} data ({why}); "
                f"pass --market {looks} to import it as {looks}:{af.symbol}"
            )
        market = "spot"
    # old futures dumps had no header row: --market um on a headerless, spot-looking file is allowed
    elif market != looks and not (looks == "spot" and market == "um"):
        raise LayoutError(
            f"{af.path.name}: --market {market} contradicts the file, which looks like "
            f"{MARKET_NAMES[looks]} data ({why}); pass --market {looks} or leave --market out"
            if looks != "spot" else
            f"{af.path.name}: --market {market} contradicts the file ({af.symbol} is not a "
            f"{MARKET_NAMES[market]} name); leave --market out to import it as spot"
        )
    return ArchiveFile(af.path, af.symbol, af.kind, af.interval, market)


def checksum_path(path: Path) -> Path:
    """Where data.binance.vision publishes a file's checksum: ``<name>.CHECKSUM`` beside it."""
    return path.with_name(path.name + ".CHECKSUM")


def verify_checksum(path: str | Path) -> bool:
    """Check ``path`` against ``<path>.CHECKSUM`` (Binance's ``<sha256 hex>  <name>`` line) when
    that file exists. Returns True when verified, False when there is no checksum file; a
    mismatch or an unreadable checksum file raises a one-line LayoutError."""
    p = Path(path)
    cp = checksum_path(p)
    if not cp.exists():
        return False
    text = cp.read_text(errors="replace").strip()
    parts = text.split()
    if not parts or not re.fullmatch(r"[0-9a-fA-F]{64}", parts[0]):
        raise LayoutError(f"{cp.name}: not a sha256 checksum line ('<64 hex digits>  {p.name}')")
    if len(parts) > 1 and parts[1].lstrip("*") != p.name:
        raise LayoutError(f"{cp.name}: names {parts[1]!r}, not {p.name!r}")
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    if h.hexdigest() != parts[0].lower():
        raise LayoutError(
            f"{p.name}: sha256 {h.hexdigest()[:12]}... does not match {cp.name} ({parts[0][:12]}...); "
            "the file is damaged or incomplete: download it again"
        )
    return True


def _layout(af: ArchiveFile) -> tuple[list[str], int | None] | None:
    """(cells of the first line, 0 when it is a header row else None); None for an empty file.
    Refuses a column count that is not the kind's."""
    first = _first_line(af.path)
    if not first:
        return None
    cells = first.split(",")
    lo, hi = _COLUMNS[af.kind]
    if not lo <= len(cells) <= hi:
        raise LayoutError(
            f"{af.path}: {len(cells)} columns; a {af.kind} file has {lo if lo == hi else f'{lo} or {hi}'}"
        )
    return cells, (None if _is_number(cells[1]) else 0)


def read_trades_exact(path: str | os.PathLike[str]) -> tuple[str, dict[str, np.ndarray]]:
    """An official trades file (``.csv`` or ``.zip``) with its decimals kept as written, for
    the simulator's replay: ``(symbol, columns)`` with ``trade_id`` int64, ``time`` int64 ns
    (the file's unit, ms or µs, told once per file), ``price`` and ``qty`` the file's own
    decimal strings (object arrays), ``is_buyer_maker`` bool. The same layout rules as
    :func:`read_chunks` (header row optional, 6 or 7 columns)."""
    af = identify(path)
    if af.kind != "trades":
        raise LayoutError(f"{af.path}: a {af.kind} file; expected a trades file (SYMBOL-trades-...)")
    layout = _layout(af)
    if layout is None:
        return af.symbol, {"trade_id": np.empty(0, "i8"), "time": np.empty(0, "i8"),
                           "price": np.empty(0, object), "qty": np.empty(0, object),
                           "is_buyer_maker": np.empty(0, bool)}
    cells, header = layout
    dtypes = {**_dtypes("trades", len(cells)), 1: "string", 2: "string", 3: "string"}
    with _open_text(af.path) as fh:
        try:
            c = pd.read_csv(fh, header=None, skiprows=1 if header == 0 else 0, dtype=dtypes,
                            names=list(range(len(cells))))
        except (ValueError, TypeError) as exc:
            raise LayoutError(f"{af.path}: not a trades file ({str(exc).splitlines()[0]})") from None
    price = pd.to_numeric(c[1], errors="coerce")
    qty = pd.to_numeric(c[2], errors="coerce")
    bad = c[[0, 4, 5]].isna().any(axis=1) | price.isna() | qty.isna()
    if bad.any():
        line = int(c.index[bad.to_numpy()][0]) + (2 if header == 0 else 1)
        raise LayoutError(f"{af.path}: line {line} has an empty or non-numeric cell")
    times = c[4].to_numpy("i8")
    if not len(times):
        return af.symbol, {"trade_id": np.empty(0, "i8"), "time": times, "price": np.empty(0, object),
                           "qty": np.empty(0, object), "is_buyer_maker": np.empty(0, bool)}
    return af.symbol, {
        "trade_id": c[0].to_numpy("i8"), "time": times * _time_unit_factor(times, af.path),
        "price": c[1].str.strip().to_numpy(object), "qty": c[2].str.strip().to_numpy(object),
        "is_buyer_maker": c[5].to_numpy(bool),
    }


def read_chunks(af: ArchiveFile, chunk_rows: int = CHUNK_ROWS) -> Iterator[tuple[dict[str, np.ndarray], int]]:
    """Yield (column batch, bytes-ish progress) per chunk; columns as the store expects."""
    layout = _layout(af)
    if layout is None:
        return
    cells, header = layout
    ncols = len(cells)
    fh = _open_text(af.path)
    try:
        reader = pd.read_csv(
            fh, header=None, skiprows=1 if header == 0 else 0, chunksize=chunk_rows,
            dtype=_dtypes(af.kind, ncols), names=list(range(ncols)), **EXACT_FLOATS,
        )
        factor = None
        for chunk in reader:
            if chunk.isna().any().any():
                bad = int(chunk.index[chunk.isna().any(axis=1)][0]) + (2 if header == 0 else 1)
                raise LayoutError(f"{af.path}: line {bad} has an empty or non-numeric cell")
            time_col = {"trades": 4, "aggtrades": 5, "klines": 0, "funding": 0}[af.kind]
            if factor is None:
                factor = _time_unit_factor(chunk[time_col].to_numpy("i8"), af.path)
                if af.kind == "klines" and (chunk[5] == 0).all() and (chunk[7] == 0).all() and (chunk[8] > 0).any():
                    raise LayoutError(
                        f"{af.path.name}: zero volume in every row with a non-zero count: mark-price, "
                        "index-price or premium-index klines, not trades; not imported")
            cols = _columns(af.kind, chunk, factor)
            if af.market == "cm" and af.kind != "funding":
                cols = _coinm_to_base(af, cols, chunk, header_cells=cells if header == 0 else None)
            yield cols, len(chunk)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, LayoutError):
            raise
        raise LayoutError(f"{af.path}: not a {af.kind} file ({str(exc).splitlines()[0]})") from None
    finally:
        fh.close()


def _coinm_to_base(af: ArchiveFile, cols: dict[str, np.ndarray], c: pd.DataFrame,
                   header_cells: list[str] | None) -> dict[str, np.ndarray]:
    """COIN-M rows in contracts -> base-asset quantities and USD turnover (see module doc)."""
    size = contract_size(af.qualified)
    if af.kind == "klines":
        contracts, buy_contracts = cols["volume"], cols["taker_buy_base"]
        live = contracts > 0
        if live.any():  # the file's base volume says what a contract is worth: check our size
            usd = float(np.median(cols["quote_volume"][live] * cols["close"][live] / contracts[live]))
            if not 0.9 * size <= usd <= 1.1 * size:
                raise LayoutError(
                    f"{af.path.name}: its volumes say a contract is worth {usd:.4g} USD, not the "
                    f"{size:g} USD of {af.qualified}; is it really a COIN-M file?"
                )
        cols["volume"] = cols["quote_volume"]  # COIN-M's 8th column is the base-asset volume
        cols["taker_buy_base"] = cols["taker_buy_quote"]
        cols["quote_volume"] = contracts * size
        cols["taker_buy_quote"] = buy_contracts * size
        return cols
    names = [h.strip().lower() for h in header_cells] if header_cells else []
    if af.kind == "trades" and "base_qty" in names:
        cols["qty"] = c[names.index("base_qty")].to_numpy("f8")  # the file's own base quantity
    else:
        with np.errstate(divide="ignore", invalid="ignore"):  # price-0 rows are rejected by the store
            cols["qty"] = cols["qty"] * size / cols["price"]  # contracts x USD per contract / USD per coin
    return cols


def _dtypes(kind: str, ncols: int) -> dict[int, str]:
    if kind == "trades":
        d = {0: "int64", 1: "float64", 2: "float64", 3: "float64", 4: "int64", 5: "boolean"}
        if ncols == 7:
            d[6] = "boolean"
        return d
    if kind == "aggtrades":
        d = {0: "int64", 1: "float64", 2: "float64", 3: "int64", 4: "int64", 5: "int64", 6: "boolean"}
        if ncols == 8:
            d[7] = "boolean"
        return d
    if kind == "funding":
        return {0: "int64", 1: "float64", 2: "float64"}
    return {0: "int64", 1: "float64", 2: "float64", 3: "float64", 4: "float64", 5: "float64",
            6: "int64", 7: "float64", 8: "int64", 9: "float64", 10: "float64", 11: "float64"}


def _columns(kind: str, c: pd.DataFrame, factor: int) -> dict[str, np.ndarray]:
    if kind == "trades":
        return {
            "trade_id": c[0].to_numpy("i8"), "price": c[1].to_numpy("f8"), "qty": c[2].to_numpy("f8"),
            "time": c[4].to_numpy("i8") * factor, "is_buyer_maker": c[5].to_numpy(bool),
        }
    if kind == "aggtrades":
        return {
            "agg_id": c[0].to_numpy("i8"), "price": c[1].to_numpy("f8"), "qty": c[2].to_numpy("f8"),
            "first_trade_id": c[3].to_numpy("i8"), "last_trade_id": c[4].to_numpy("i8"),
            "time": c[5].to_numpy("i8") * factor, "is_buyer_maker": c[6].to_numpy(bool),
        }
    if kind == "funding":
        return {
            "time": c[0].to_numpy("i8") * factor, "funding_rate": c[2].to_numpy("f8"),
            "mark_price": np.full(len(c), np.nan), "interval_hours": c[1].to_numpy("f8"),
        }
    close_factor = factor
    return {
        "open_time": c[0].to_numpy("i8") * factor, "open": c[1].to_numpy("f8"), "high": c[2].to_numpy("f8"),
        "low": c[3].to_numpy("f8"), "close": c[4].to_numpy("f8"), "volume": c[5].to_numpy("f8"),
        "close_time": c[6].to_numpy("i8") * close_factor, "quote_volume": c[7].to_numpy("f8"),
        "trades": c[8].to_numpy("i8"), "taker_buy_base": c[9].to_numpy("f8"),
        "taker_buy_quote": c[10].to_numpy("f8"),
    }
