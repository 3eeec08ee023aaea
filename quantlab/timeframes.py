"""Timeframes: the one parser of bar sizes for the whole package (pure).

``parse_timeframe(text) -> Timeframe``. Binance's interval names mean what they mean on
Binance: ``1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M`` where lower-case ``m`` is
minutes and upper-case ``M`` is one **calendar month** (``1mo``/``1month`` too; ``mo`` is
also the month in Binance's monthly archive names). Pandas-style durations are accepted
as well (``30s``, ``90min``, ``2h``, ``1h30min``, ``500ms``).

Bars are floored to the timeframe's grid in UTC:

- fixed lengths (seconds to days) on multiples of the length since 1970-01-01 00:00 UTC
  (so ``1d`` opens at midnight UTC, ``4h`` at 00, 04, 08 ... UTC, as on Binance);
- weeks open on **Monday 00:00 UTC** (any whole number of weeks, ``7d`` included);
- months open on the first of the month 00:00 UTC.

A bar is labelled by its open time and covers ``[open, end)``.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Timeframe", "parse_timeframe", "BINANCE_INTERVALS"]

NS = 1_000_000_000
_DAY = 86_400 * NS
_WEEK = 7 * _DAY
_WEEK_OFFSET = 4 * _DAY  # 1970-01-01 was a Thursday: the first Monday is 1970-01-05
_AVG_MONTH_NS = int(365.2425 / 12 * _DAY)  # the mean Gregorian month: 30.436875 days

BINANCE_INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h",
                     "12h", "1d", "3d", "1w", "1M")

_HELP = ("use 1s 1m 5m 15m 1h 4h 1d 1w 1M (m = minutes, M = one calendar month, also 1mo) "
         "or a duration like 30s, 90min, 2h")

# unit -> nanoseconds (fixed) ; 'M' handled apart. Matching is case-insensitive except for
# the single letters m / M, whose case is significant the Binance way.
_UNITS: dict[str, int] = {
    "ms": 1_000_000, "millisecond": 1_000_000, "milliseconds": 1_000_000,
    "s": NS, "sec": NS, "secs": NS, "second": NS, "seconds": NS,
    "min": 60 * NS, "mins": 60 * NS, "minute": 60 * NS, "minutes": 60 * NS,
    "h": 3_600 * NS, "hr": 3_600 * NS, "hrs": 3_600 * NS, "hour": 3_600 * NS, "hours": 3_600 * NS,
    "d": _DAY, "day": _DAY, "days": _DAY,
    "w": _WEEK, "wk": _WEEK, "week": _WEEK, "weeks": _WEEK,
}
_MONTH_WORDS = {"mo", "mon", "month", "months"}
_REFUSED = {"y": "years", "yr": "years", "year": "years", "years": "years", "q": "quarters",
            "quarter": "quarters", "quarters": "quarters"}
_TEXT = re.compile(r"^(\d+)\s*([A-Za-z]+)$")


@dataclass(frozen=True)
class Timeframe:
    """A bar size. ``step_ns`` is the fixed length (0 for months), ``months`` the number of
    calendar months (0 for fixed lengths). ``text`` is the canonical name (``1m``, ``4h``,
    ``1w``, ``1M``): ``parse_timeframe(tf.text) == tf``."""

    text: str
    step_ns: int = 0
    months: int = 0

    # ------------------------------------------------------------------ description
    def __str__(self) -> str:
        return self.text

    @property
    def is_calendar(self) -> bool:
        """True for months (their length varies); fixed lengths and weeks are not."""
        return self.months > 0

    @property
    def is_weekly(self) -> bool:
        return self.step_ns > 0 and self.step_ns % _WEEK == 0

    @property
    def nominal(self) -> pd.Timedelta:
        """Length of a bar: exact for fixed sizes, the mean Gregorian month for months."""
        return pd.Timedelta(self.step_ns or self.months * _AVG_MONTH_NS, "ns")

    @property
    def nominal_ns(self) -> int:
        return int(self.nominal.value)

    @property
    def _offset(self) -> int:
        return _WEEK_OFFSET if self.is_weekly else 0

    def summary(self) -> str:
        if self.is_calendar:
            what = f"{self.months} calendar month(s), opening on the 1st 00:00 UTC"
        elif self.is_weekly:
            what = f"{self.step_ns // _WEEK} week(s), opening Monday 00:00 UTC"
        else:
            what = f"{pd.Timedelta(self.step_ns, 'ns')}, on multiples since 1970-01-01 UTC"
        return f"Timeframe {self.text}: {what}"

    def _repr_html_(self) -> str:
        return f"<code>{self.summary()}</code>"

    # ------------------------------------------------------------------ grid arithmetic
    def bucket(self, time_ns: Any) -> np.ndarray:
        """Bar number of each time (int64 ns array): equal numbers = same bar, increasing."""
        t = np.asarray(time_ns, dtype=np.int64)
        if self.months:
            m = t.view("M8[ns]").astype("M8[M]").astype(np.int64)  # months since 1970-01
            return m // self.months
        return (t - self._offset) // self.step_ns

    def bucket_open(self, bucket: Any) -> np.ndarray:
        """Open time (int64 ns) of bar numbers from :meth:`bucket`."""
        b = np.asarray(bucket, dtype=np.int64)
        if self.months:
            return (b * self.months).astype("M8[M]").astype("M8[ns]").view(np.int64)
        return b * self.step_ns + self._offset

    def floor_ns(self, time_ns: Any) -> np.ndarray:
        """Open time of the bar holding each time (int64 ns in, int64 ns out)."""
        return self.bucket_open(self.bucket(time_ns))

    def end_ns(self, time_ns: Any) -> np.ndarray:
        """End (exclusive) of the bar holding each time = the next bar's open."""
        return self.bucket_open(self.bucket(time_ns) + 1)

    def floor(self, times: Any) -> Any:
        """Bar open of each time: DatetimeIndex -> DatetimeIndex (UTC), Timestamp ->
        Timestamp, int64 ns array -> int64 ns array."""
        return self._map(times, self.floor_ns)

    def end(self, times: Any) -> Any:
        """Bar end (exclusive) of each time, same types as :meth:`floor`."""
        return self._map(times, self.end_ns)

    def grid(self, start: Any, end: Any) -> pd.DatetimeIndex:
        """Bar opens from the bar holding ``start`` to the bar holding ``end`` (inclusive)."""
        lo, hi = (int(_as_ns(v)) for v in (start, end))
        b = np.arange(int(self.bucket(lo)), int(self.bucket(hi)) + 1, dtype=np.int64)
        return _index(self.bucket_open(b))

    @staticmethod
    def _map(times: Any, fn) -> Any:
        if isinstance(times, pd.Timestamp | _dt.datetime | np.datetime64 | str):
            return pd.Timestamp(int(fn(np.array([_as_ns(times)]))[0]), tz="UTC")
        if isinstance(times, pd.DatetimeIndex):
            idx = times.tz_localize("UTC") if times.tz is None else times.tz_convert("UTC")
            return _index(fn(idx.as_unit("ns").asi8), name=times.name)
        return fn(np.asarray(times, dtype=np.int64))


def _index(ns: np.ndarray, name: str | None = "time") -> pd.DatetimeIndex:
    return pd.DatetimeIndex(np.asarray(ns, dtype=np.int64).view("M8[ns]"), name=name).tz_localize("UTC")


def _as_ns(value: Any) -> int:
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value)
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.as_unit("ns").value)


def _fixed(step_ns: int) -> Timeframe:
    if step_ns % _WEEK == 0:
        return Timeframe(f"{step_ns // _WEEK}w", step_ns)
    for unit, size in (("d", _DAY), ("h", 3_600 * NS), ("m", 60 * NS), ("s", NS), ("ms", 1_000_000)):
        if step_ns % size == 0:
            return Timeframe(f"{step_ns // size}{unit}", step_ns)
    return Timeframe(f"{step_ns}ns", step_ns)


def parse_timeframe(text: Any, name: str = "timeframe") -> Timeframe:
    """``'1m'`` -> one minute, ``'1M'``/``'1mo'`` -> one calendar month, ``'1w'`` -> a week
    from Monday 00:00 UTC, ``'90min'`` -> 90 minutes; a :class:`Timeframe` or
    ``pd.Timedelta`` passes through. Anything else: ``ValueError`` in one line naming ``name``."""
    if isinstance(text, Timeframe):
        return text
    if isinstance(text, pd.Timedelta | _dt.timedelta | np.timedelta64):
        ns = int(pd.Timedelta(text).value)
        if ns <= 0:
            raise ValueError(f"{name}: {text!r} must be longer than zero")
        return _fixed(ns)
    if not isinstance(text, str):
        raise TypeError(f"{name}: expected a string such as '1m' or '1h', got {type(text).__name__}")
    s = text.strip()
    if not s:
        raise ValueError(f"{name}: empty; {_HELP}")
    m = _TEXT.match(s)
    if m:
        count, unit = int(m.group(1)), m.group(2)
        if count <= 0:
            raise ValueError(f"{name}: {text!r} must be longer than zero")
        if unit == "M" or unit.lower() in _MONTH_WORDS:
            return Timeframe(f"{count}M", 0, count)
        if unit == "m":
            return _fixed(count * 60 * NS)
        low = unit.lower()
        if low in _UNITS:
            return _fixed(count * _UNITS[low])
        if low in _REFUSED:
            raise ValueError(f"{name}: {text!r} ({_REFUSED[low]}) is not a bar size; use months, e.g. 3M or 12M")
        raise ValueError(f"{name}: {text!r} is not a timeframe; {_HELP}")
    if "M" in s:  # pandas reads a lone M as minutes in some places and refuses it in others
        raise ValueError(f"{name}: {text!r} is ambiguous (M is one calendar month); {_HELP}")
    try:
        td = pd.Timedelta(s)  # compound pandas durations: '1h30min', '1.5h', '00:05:00'
    except (ValueError, TypeError):
        raise ValueError(f"{name}: {text!r} is not a timeframe; {_HELP}") from None
    if td is pd.NaT or td.value <= 0:
        raise ValueError(f"{name}: {text!r} must be longer than zero")
    return _fixed(int(td.value))
