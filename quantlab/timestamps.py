"""Times as int64 nanoseconds since the epoch (UTC): the one converter and the one "time not
known" sentinel of the package.

    >>> to_ns("2024-08-09 00:00", "start")             # naive text is UTC
    1723161600000000000
    >>> to_ns(1723161255342, unit="auto")              # a Binance epoch: ms, told by magnitude
    1723161255342000000
    >>> to_ns(1735689600010866, unit="MICROSECOND")    # Binance's timeUnit names
    1735689600010866000
"""

from __future__ import annotations

from typing import Any, overload

import numpy as np
import pandas as pd

#: int64 value of numpy's NaT: the sentinel for "time not known" (REST trades carry no event
#: time; the store keeps it in ``event_time`` / ``recv_time`` columns).
NAT_NS: int = int(np.datetime64("NaT").view("i8"))

_UNITS = {"NANOSECOND": 1, "MICROSECOND": 1_000, "MILLISECOND": 1_000_000}
_MS_BELOW = 100_000_000_000_000  # 1e14: larger epoch values are microseconds
_US_BELOW = 100_000_000_000_000_000  # 1e17: larger ones are already nanoseconds
#: the same rules, public for the wire parser's fast path (``quantlab.binance.protocol``):
#: ns per unit of Binance's ``timeUnit`` names, and the bound below which "auto" reads ms
UNIT_NS, MS_BELOW = _UNITS, _MS_BELOW


@overload
def to_ns(value: None, name: str = ..., *, unit: str | None = ...) -> None: ...
@overload
def to_ns(value: int, name: str = ..., *, unit: str | None = ...) -> int: ...
@overload
def to_ns(value: Any, name: str = ..., *, unit: str | None = ...) -> int | None: ...


def to_ns(value: Any, name: str = "time", *, unit: str | None = None) -> int | None:
    """A time -> int ns UTC; None stays None.

    ``value``: text, ``datetime``, ``Timestamp``, ``datetime64`` (naive times are UTC) or an
    integer epoch. An integer is nanoseconds unless ``unit`` says otherwise: ``"MILLISECOND"``,
    ``"MICROSECOND"``, ``"NANOSECOND"`` (Binance's ``timeUnit`` names, any case) or ``"auto"``
    (told from the magnitude: below 1e14 ms, below 1e17 µs, else ns). Integers are scaled
    exactly (no float). Raises ``ValueError`` naming ``name`` for anything that is not a time
    (NaT included) and for an unknown ``unit``.
    """
    if value is None:
        return None
    factor = None
    if unit is not None:
        key = unit.upper()
        if key != "AUTO" and key not in _UNITS:
            raise ValueError(f"{name}: unit {unit!r} is not one of auto, {', '.join(_UNITS)}")
        factor = _UNITS.get(key)
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        v = int(value)
        if unit is None:
            return v
        if factor is None:  # auto
            factor = 1_000_000 if abs(v) < _MS_BELOW else 1_000 if abs(v) < _US_BELOW else 1
        return v * factor
    if unit is not None:
        raise ValueError(f"{name}: expected an integer epoch in {unit}, got {value!r}")
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}: {value!r} is not a time")
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ValueError(
            f"{name}: {value!r} is not a time; use e.g. '2024-08-09 00:00' (UTC) or a Timestamp"
        ) from None
    if ts is pd.NaT:
        raise ValueError(f"{name}: NaT is not a time")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value)


def in_window(t: np.ndarray, start_ns: int | None, end_ns: int | None) -> np.ndarray:
    """Bool mask of the int64 ns times ``t`` with ``start_ns <= t < end_ns`` (None: that side
    unbounded): the one half-open window of reads by time (unsorted times; sorted ones use
    ``np.searchsorted`` with the same sides, "left" for both bounds)."""
    t = np.asarray(t)
    sel = np.ones(len(t), dtype=bool)
    if start_ns is not None:
        sel &= t >= start_ns
    if end_ns is not None:
        sel &= t < end_ns
    return sel
