"""The bar: one definition, one pure kernel, used by store, live and alert bars.

**The bar rule.** Bars are by exchange *trade time*, floored to the timeframe's grid
(:mod:`quantlab.timeframes`); a bar is labelled by its open time and a trade at exactly a
boundary belongs to the bar that opens there. A bar's open is its earliest trade by time
and its close its latest (ties: the lower trade id, i.e. the earlier arrival, opens; the
higher one closes); high, low, volume, VWAP and trade count cover all its trades. **A trade
that arrives late, after its bar was closed by a later trade, amends that bar** (it is
never folded into the open bar), because the store is the truth: bars built live equal the
bars recomputed from the stored ticks, whatever order the trades arrived in. A consumer
that has already acted on a closed bar (an alert) sees the amended bar from then on.
Bars with no trades are omitted (no invented prices); consumers that need a regular grid
forward-fill explicitly and boundedly (:func:`quantlab.closes`).

The kernel works on *partial bars*: column dicts with ``bucket`` (bar number), ``open``,
``open_t``, ``high``, ``low``, ``close``, ``close_t``, ``volume``, ``notional``, ``trades``.
A trade is a partial bar of one trade, so is an imported kline; :func:`reduce_partials`
merges rows of equal bucket (in arrival order), which is all there is to aggregating
trades, updating live bars, or resampling klines.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from quantlab.timeframes import Timeframe, parse_timeframe

BAR_COLUMNS = ("open", "high", "low", "close", "volume", "vwap", "trades")
PARTIAL_COLUMNS = ("bucket", "open", "open_t", "high", "low", "close", "close_t", "volume", "notional", "trades")

Partials = dict[str, np.ndarray]


def timeframe_ns(timeframe: Any) -> int:
    """Nominal length of a timeframe in ns (see :func:`quantlab.timeframes.parse_timeframe`)."""
    return parse_timeframe(timeframe).nominal_ns


def as_timeframe(tf: Any) -> Timeframe:
    """A Timeframe from a Timeframe, a name (``'1m'``) or a length in int ns."""
    if isinstance(tf, int | np.integer) and not isinstance(tf, bool):
        if tf <= 0:
            raise ValueError(f"timeframe: {tf!r} ns must be positive")
        return parse_timeframe(pd.Timedelta(int(tf), "ns"))
    return parse_timeframe(tf)


def trade_partials(time_ns: np.ndarray, price: np.ndarray, qty: np.ndarray, tf: Any) -> Partials:
    """Partial bars of trades given in arrival (trade-id) order, any time order."""
    t = np.asarray(time_ns, dtype=np.int64)
    p = np.asarray(price, dtype=np.float64)
    q = np.asarray(qty, dtype=np.float64)
    rows = {"bucket": as_timeframe(tf).bucket(t), "open": p, "open_t": t, "high": p, "low": p,
            "close": p, "close_t": t, "volume": q, "notional": p * q,
            "trades": np.ones(len(t), dtype=np.int64)}
    return reduce_partials(rows)


def empty_partials() -> Partials:
    return {k: np.empty(0, dtype=np.int64 if k in ("bucket", "open_t", "close_t", "trades") else np.float64)
            for k in PARTIAL_COLUMNS}


def concat_partials(*parts: Partials) -> Partials:
    """Rows of ``parts`` one after the other (arrival order preserved)."""
    keys = parts[0].keys()
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}


def take_partials(p: Partials, sel: Any) -> Partials:
    return {k: v[sel] for k, v in p.items()}


def reduce_partials(p: Partials) -> Partials:
    """Merge rows of equal ``bucket`` by the bar rule; rows are in arrival order. Returns one
    row per bucket, sorted by bucket. Works on any subset of :data:`PARTIAL_COLUMNS` that
    includes ``bucket`` (e.g. only ``close``/``close_t``)."""
    b = p["bucket"]
    n = len(b)
    if n == 0:
        return {k: v[:0] for k, v in p.items()}
    order = None if np.all(b[1:] >= b[:-1]) else np.argsort(b, kind="stable")
    sb = b if order is None else b[order]
    starts = np.flatnonzero(np.r_[True, sb[1:] != sb[:-1]])
    if len(starts) == n and order is None:
        return {k: np.array(v, copy=True) for k, v in p.items()}  # one row per bucket already; owned
    ends = np.r_[starts[1:], n]
    out: Partials = {"bucket": sb[starts]}

    def col(name: str) -> np.ndarray:
        v = p[name]
        return v if order is None else v[order]

    def pick(value: str, key: str, last: bool) -> tuple[np.ndarray, np.ndarray]:
        # the row with the smallest (first=True) / largest key per bucket; ties by arrival
        k = col(key)
        within = np.lexsort((k, sb))  # stable: equal keys keep arrival order
        idx = within[ends - 1] if last else within[starts]
        return col(value)[idx], k[idx]

    if "open" in p:
        out["open"], out["open_t"] = pick("open", "open_t", last=False)
    if "high" in p:
        out["high"] = np.maximum.reduceat(col("high"), starts)
    if "low" in p:
        out["low"] = np.minimum.reduceat(col("low"), starts)
    if "close" in p:
        out["close"], out["close_t"] = pick("close", "close_t", last=True)
    for name in ("volume", "notional", "trades"):
        if name in p:
            out[name] = np.add.reduceat(col(name), starts)
    return {k: out[k] for k in p}


def merge_partials(old: Partials, new: Partials) -> Partials:
    """``reduce_partials(old + new)`` (``old`` arrived first), fast when ``new`` only
    touches the last bar of ``old`` or later ones (the live case)."""
    if not len(old["bucket"]):
        return reduce_partials(new)
    if not len(new["bucket"]):
        return old
    new = reduce_partials(new)
    last = old["bucket"][-1]
    if new["bucket"][0] >= last:
        head = take_partials(old, slice(None, -1))
        tail = reduce_partials(concat_partials(take_partials(old, slice(-1, None)), new))
        return concat_partials(head, tail)
    return reduce_partials(concat_partials(old, new))


def partials_to_bars(p: Partials, tf: Any) -> pd.DataFrame:
    """The bar frame: ``open high low close volume vwap trades`` indexed by bar open (UTC)."""
    vol = np.asarray(p["volume"], dtype=np.float64)
    close = np.asarray(p["close"], dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap = np.where(vol > 0, p["notional"] / np.where(vol > 0, vol, 1.0), close)
    index = pd.DatetimeIndex(as_timeframe(tf).bucket_open(p["bucket"]).view("M8[ns]"), name="time")
    return pd.DataFrame(
        {"open": np.asarray(p["open"], dtype=np.float64), "high": np.asarray(p["high"], dtype=np.float64),
         "low": np.asarray(p["low"], dtype=np.float64), "close": close, "volume": vol, "vwap": vwap,
         "trades": np.asarray(p["trades"], dtype=np.int64)},
        index=index.tz_localize("UTC"),
    )


def bars_from_arrays(time_ns: np.ndarray, price: np.ndarray, qty: np.ndarray, tf: Any) -> pd.DataFrame:
    """Aggregate trades (arrays in trade-id order: int64 ns, float64, float64) into bars.
    ``tf``: a Timeframe, a name (``'1m'``, ``'1M'``) or a fixed length in int ns."""
    return partials_to_bars(trade_partials(time_ns, price, qty, tf), tf)


SOURCE_PRIORITY = ("ticks", "klines")


def combine_sources(candidates: list[tuple[str, pd.DataFrame]]) -> pd.DataFrame:
    """One bar frame from several sources of the same bars, with a ``source`` column.

    ``candidates``: ``(source, bars)`` pairs, best source first (ticks, then klines from the
    finest interval to the coarsest). Each bar comes from the candidate that holds the most
    of its trades, ties to the earlier candidate: so a bar the store has every tick of comes
    from ticks, a bar it has no ticks of comes from klines, and a bar whose ticks start or
    stop inside it (a recording started mid-bar) comes from the klines, which saw it whole.
    """
    frames = []
    for rank, (source, bars) in enumerate(candidates):
        if len(bars):
            frames.append(bars.assign(source=source, _rank=rank))
    if not frames:
        first = candidates[0][1] if candidates else partials_to_bars(empty_partials(), 60 * 10**9)
        return first.iloc[0:0].assign(source=pd.Series(dtype=object))
    allbars = pd.concat(frames)
    allbars["_t"] = allbars.index.asi8
    allbars = allbars.sort_values(["_t", "trades", "_rank"], ascending=[True, False, True], kind="stable")
    best = allbars[~allbars.index.duplicated(keep="first")]
    return best.drop(columns=["_t", "_rank"])
