"""Bars from ticks (pure): OHLCV, VWAP and trade count per bar, by exchange trade time.

Input arrays are sorted by time (int64 ns); a bar's label is its open time, and a trade at
exactly a bar boundary belongs to the bar that opens there. Bars with no trades are omitted
(no invented prices); consumers that need a regular grid forward-fill explicitly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BAR_COLUMNS = ("open", "high", "low", "close", "volume", "vwap", "trades")


def timeframe_ns(timeframe: str | pd.Timedelta) -> int:
    """'1s', '1m', '5m', '1h', '1d' (pandas offsets too, e.g. '15min') -> nanoseconds."""
    if isinstance(timeframe, pd.Timedelta):
        td = timeframe
    else:
        text = str(timeframe).strip()
        aliases = {"m": "min", "M": "min"}
        if text and text[-1] in aliases and text[:-1].isdigit():
            text = text[:-1] + aliases[text[-1]]
        try:
            td = pd.Timedelta(text)
        except (ValueError, TypeError):
            raise ValueError(
                f"timeframe: {timeframe!r} is not a duration; use e.g. '1s', '1m', '5m', '1h', '1d'"
            ) from None
    ns = int(td.value)
    if ns <= 0:
        raise ValueError(f"timeframe: {timeframe!r} must be positive")
    return ns


def bars_from_arrays(time_ns: np.ndarray, price: np.ndarray, qty: np.ndarray, tf_ns: int) -> pd.DataFrame:
    """Aggregate trades into bars. Arrays: int64 ns, float64, float64 of equal length."""
    if len(time_ns) and not np.all(time_ns[1:] >= time_ns[:-1]):
        order = np.argsort(time_ns, kind="stable")
        time_ns, price, qty = time_ns[order], price[order], qty[order]
    if len(time_ns) == 0:
        empty = pd.DataFrame({c: np.empty(0) for c in BAR_COLUMNS})
        empty["trades"] = empty["trades"].astype("i8")
        empty.index = pd.DatetimeIndex([], tz="UTC", name="time")
        return empty
    bucket = time_ns // tf_ns
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(bucket)]
    notional = price * qty
    volume = np.add.reduceat(qty, starts)
    out = pd.DataFrame(
        {
            "open": price[starts],
            "high": np.maximum.reduceat(price, starts),
            "low": np.minimum.reduceat(price, starts),
            "close": price[ends - 1],
            "volume": volume,
            "vwap": np.add.reduceat(notional, starts) / volume,
            "trades": (ends - starts).astype("i8"),
        },
        index=pd.DatetimeIndex((bucket[starts] * tf_ns).view("M8[ns]"), name="time").tz_localize("UTC"),
    )
    return out
