"""Column schema of the tick tables and validation of rows on their way in (pure, no I/O).

A *tick batch* is a dict of equal-length numpy arrays::

    {"trade_id": int64[n], "time": int64[n] (ns since epoch, exchange trade time),
     "price": float64[n], "qty": float64[n], "is_buyer_maker": bool[n],
     "event_time": int64[n] (ns, NaT sentinel when unknown), "recv_time": int64[n] (ns)}

Agg-trade tables use the same shape plus ``first_trade_id`` and ``last_trade_id``, keyed by
``agg_id``. On disk every column is a 1-D HDF5 dataset; times are int64 nanoseconds so that
microsecond timestamps keep their precision.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

NAT = np.iinfo(np.int64).min  # the int64 value of numpy's NaT


@dataclass(frozen=True)
class TableSchema:
    """Columns of one table kind; ``id`` names the column the table is keyed and sorted by."""

    kind: str
    id: str
    columns: tuple[tuple[str, str], ...]  # (name, numpy dtype str)
    optional: tuple[str, ...]  # columns that may be absent from a segment (all NaT then)
    #: ids step by one (trade ids, aggregate ids): ``info()`` counts the ids missing between them
    contiguous: bool = True

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    def dtype(self, name: str) -> np.dtype:
        return np.dtype(dict(self.columns)[name])


TRADES = TableSchema(
    kind="trades",
    id="trade_id",
    columns=(
        ("trade_id", "i8"),
        ("time", "i8"),
        ("price", "f8"),
        ("qty", "f8"),
        ("is_buyer_maker", "u1"),
        ("event_time", "i8"),
        ("recv_time", "i8"),
    ),
    optional=("event_time", "recv_time"),
)

AGGTRADES = TableSchema(
    kind="aggtrades",
    id="agg_id",
    columns=(
        ("agg_id", "i8"),
        ("time", "i8"),
        ("price", "f8"),
        ("qty", "f8"),
        ("is_buyer_maker", "u1"),
        ("first_trade_id", "i8"),
        ("last_trade_id", "i8"),
    ),
    optional=(),
)

#: Futures mark price, one row per ``markPriceUpdate`` (keyed by its event time ``E`` in ns):
#: ``price`` is the mark price; ``next_funding_time`` int ns (0 for delivery contracts).
MARKPRICE = TableSchema(
    kind="markprice",
    id="time",
    columns=(
        ("time", "i8"),
        ("price", "f8"),
        ("index_price", "f8"),
        ("settle_price", "f8"),
        ("funding_rate", "f8"),
        ("next_funding_time", "i8"),
        ("recv_time", "i8"),
    ),
    optional=("recv_time",),
    contiguous=False,
)

#: Realised funding, one row per funding time (ns; the id, so a funding time is stored once):
#: ``funding_rate`` as Binance states it (may be negative), ``mark_price`` (NaN when the source
#: has none, e.g. archives), ``interval_hours`` (NaN when the source does not say).
FUNDING = TableSchema(
    kind="funding",
    id="time",
    columns=(
        ("time", "i8"),
        ("funding_rate", "f8"),
        ("mark_price", "f8"),
        ("interval_hours", "f8"),
    ),
    optional=(),
    contiguous=False,
)

SCHEMAS = {s.kind: s for s in (TRADES, AGGTRADES, MARKPRICE, FUNDING)}

Batch = dict[str, np.ndarray]


def _time_ns(values, name: str) -> np.ndarray:
    """int64 ns from int64 ns, datetime64 of any unit, or a tz-aware/naive DatetimeIndex."""
    if isinstance(values, (pd.Series, pd.Index)):
        if isinstance(values.dtype, pd.DatetimeTZDtype) or np.issubdtype(values.dtype, np.datetime64):
            idx = pd.DatetimeIndex(values)
            if idx.tz is not None:
                idx = idx.tz_convert("UTC").tz_localize(None)
            return idx.as_unit("ns").asi8.copy()
        values = values.to_numpy()
    arr = np.asarray(values)
    if np.issubdtype(arr.dtype, np.datetime64):
        return arr.astype("datetime64[ns]").view("i8")
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype("i8", copy=False)
    raise TypeError(f"ticks[{name!r}] must be int64 nanoseconds or datetimes, not {arr.dtype}")


def to_batch(ticks, schema: TableSchema = TRADES) -> Batch:
    """Normalise a DataFrame / structured array / dict of arrays into a column batch.

    ``time`` may be a column or (for DataFrames) the index. Missing optional columns are
    left out. Raises ``ValueError`` naming a missing required column.
    """
    if isinstance(ticks, pd.DataFrame):
        cols = {c: ticks[c] for c in ticks.columns}
        if "time" not in cols and isinstance(ticks.index, pd.DatetimeIndex):
            cols["time"] = ticks.index
    elif isinstance(ticks, np.ndarray) and ticks.dtype.names:
        cols = {c: ticks[c] for c in ticks.dtype.names}
    elif isinstance(ticks, dict):
        cols = dict(ticks)
    else:
        raise TypeError("ticks must be a DataFrame, a structured array or a dict of arrays")
    n = None
    out: Batch = {}
    for name, dt in schema.columns:
        if name not in cols:
            if name in schema.optional:
                continue
            raise ValueError(
                f"ticks: missing column {name!r}; a {schema.kind} batch needs {', '.join(schema.names)}"
            )
        v = cols[name]
        if name in ("time", "event_time", "recv_time"):
            arr = _time_ns(v, name)
        elif name == "is_buyer_maker":
            arr = np.asarray(v).astype(bool).astype("u1")
        elif name == "next_funding_time":
            arr = _time_ns(v, name)
        else:
            arr = np.asarray(v.to_numpy() if isinstance(v, (pd.Series, pd.Index)) else v).astype(dt, copy=False)
        if n is None:
            n = len(arr)
        elif len(arr) != n:
            raise ValueError(f"ticks: column {name!r} has {len(arr)} rows, expected {n}")
        out[name] = np.ascontiguousarray(arr)
    return out


def batch_len(batch: Batch) -> int:
    return len(next(iter(batch.values()))) if batch else 0


def take(batch: Batch, index) -> Batch:
    return {k: v[index] for k, v in batch.items()}


def concat(batches: list[Batch]) -> Batch:
    """Concatenate batches; an optional column missing from some is filled with NaT there."""
    batches = [b for b in batches if batch_len(b)]
    if not batches:
        return {}
    if len(batches) == 1:
        return batches[0]
    keys = list(dict.fromkeys(k for b in batches for k in b))
    out = {}
    for k in keys:
        parts = [b[k] if k in b else np.full(batch_len(b), NAT, dtype="i8") for b in batches]
        out[k] = np.concatenate(parts)
    return out


def clean(batch: Batch, schema: TableSchema = TRADES, symbol: str = "?") -> tuple[Batch, int]:
    """Sort by id, drop duplicate ids within the batch, reject bad rows.

    Rejected: price or qty that is not a finite number > 0 (Binance's data holds real trades
    with price 0 and qty 0), ids < 0. Returns (clean batch, number rejected) and logs a warning
    naming the first rejected ids.
    """
    n = batch_len(batch)
    if n == 0:
        return batch, 0
    ids = batch[schema.id]
    good = ids >= 0
    for name in ("price", "qty"):  # funding rows have neither; a funding rate may be negative
        if name in batch:
            good &= np.isfinite(batch[name]) & (batch[name] > 0)
    rejected = int(n - np.count_nonzero(good))
    if rejected:
        bad_ids = ids[~good][:5].tolist()
        log.warning(
            "%s: rejected %d %s row(s) with zero/negative/non-finite price or qty (ids %s%s)",
            symbol, rejected, schema.kind, bad_ids, "..." if rejected > 5 else "",
        )
        batch = take(batch, good)
        ids = batch[schema.id]
    if len(ids) > 1 and not np.all(ids[1:] > ids[:-1]):
        order = np.argsort(ids, kind="stable")
        ids_sorted = ids[order]
        keep = np.ones(len(ids_sorted), dtype=bool)
        keep[1:] = ids_sorted[1:] != ids_sorted[:-1]
        batch = take(batch, order[keep])
    return batch, rejected


def sort_unique(batch: Batch, id_name: str) -> Batch:
    """``batch`` sorted by ``id_name`` with repeated ids dropped (a no-op when already so)."""
    ids = batch.get(id_name)
    if ids is None or len(ids) < 2 or np.all(ids[1:] > ids[:-1]):
        return batch
    order = np.argsort(ids, kind="stable")
    keep = np.r_[True, ids[order][1:] != ids[order][:-1]]
    return take(batch, order[keep])


_UTC = pd.DatetimeTZDtype("ns", "UTC")


def utc_index(ns: np.ndarray, name: str | None = None) -> pd.DatetimeIndex:
    """int64 ns -> tz-aware UTC DatetimeIndex over the same memory (no copy).

    ``tz_localize("UTC")`` and the public constructors copy the values (40 MB for 5M rows,
    a fifth of a full read); ``DatetimeArray._simple_new`` wraps them. Falls back to the
    public (copying) path if a pandas release drops it."""
    values = np.ascontiguousarray(ns, dtype="i8").view("M8[ns]")
    try:
        arr = pd.arrays.DatetimeArray._simple_new(values, dtype=_UTC)
        return pd.DatetimeIndex(arr, name=name, copy=False)
    except (AttributeError, TypeError):  # pragma: no cover - another pandas
        return pd.DatetimeIndex(values, name=name).tz_localize("UTC")


def to_frame(batch: Batch, schema: TableSchema = TRADES) -> pd.DataFrame:
    """Column batch -> the public tick frame: UTC DatetimeIndex ``time`` + typed columns.

    The frame holds the batch's arrays themselves (no copy): ``is_buyer_maker`` is a bool
    view of the stored 0/1 bytes and the times are wrapped, not converted."""
    n = batch_len(batch)
    if n == 0:
        batch = {name: np.empty(0, dtype=dt) for name, dt in schema.columns}
    index = utc_index(batch["time"], "time")
    data = {}
    for name, _ in schema.columns:
        if name == "time":
            continue
        if name not in batch:
            continue  # optional receipt times exist only for rows recorded live
        v = batch[name]
        if name in ("event_time", "recv_time", "next_funding_time"):
            data[name] = utc_index(v)
        elif name == "is_buyer_maker":
            data[name] = v.view(bool) if v.dtype == np.uint8 and not (v > 1).any() else v.astype(bool)
        else:
            data[name] = v
    return pd.DataFrame(data, index=index, copy=False)
