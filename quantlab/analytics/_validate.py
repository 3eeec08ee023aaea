"""Input checks shared by the analytics wrappers (the boundary: bad input fails here).

Rules
-----
- Inputs are pandas Series on one index, or 1-D array-likes of one length.
- Two Series must have equal indexes: misaligned pairs are refused, never re-aligned
  silently (align them with ``y, x = y.align(x, join="inner")``).
- NaN and inf are refused with a ValueError saying how to drop or fill them.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from quantlab.errors import InsufficientDataError


class AnalyticsWarning(UserWarning):
    """Degenerate but legal input: the result is a sentinel (nan/inf), see the message."""


class CollinearityWarning(AnalyticsWarning):
    """y and x are (almost) perfectly collinear: a cointegration test is not reliable."""


def warn(msg: str, category: type[Warning] = AnalyticsWarning) -> None:
    warnings.warn(msg, category, stacklevel=3)


def as_series(v: Any, name: str) -> tuple[np.ndarray, pd.Index | None]:
    """Return (float64 array, index or None) for a 1-D input named ``name``."""
    if isinstance(v, pd.DataFrame):
        if v.shape[1] != 1:
            raise TypeError(f"{name} must be a 1-D Series or array, got a DataFrame with "
                            f"{v.shape[1]} columns; pass one column, e.g. df['close']")
        v = v.iloc[:, 0]
    index = v.index if isinstance(v, pd.Series) else None
    if isinstance(v, str | bytes) or np.isscalar(v):
        raise TypeError(f"{name} must be a 1-D Series or array, got {type(v).__name__}")
    try:
        arr = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must hold numbers (float64-convertible): {exc}") from None
    if arr.ndim != 1:
        arr = np.squeeze(arr)
        if arr.ndim != 1:
            raise TypeError(f"{name} must be 1-D, got shape {np.shape(v)}")
    return np.ascontiguousarray(arr), index


def check_finite(arr: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        first = int(np.argmax(bad))
        raise ValueError(
            f"{name} has {int(bad.sum())} NaN/inf value(s) (first at position {first}); "
            f"drop them (e.g. .dropna() on the aligned pair) or fill them "
            f"(e.g. .ffill() for last-price bars) before calling")


def need_nobs(n: int, minimum: int, what: str) -> None:
    if n < minimum:
        raise InsufficientDataError(f"{what} needs at least {minimum} observations, got {n}")


def series(v: Any, name: str, minimum: int, what: str) -> tuple[np.ndarray, pd.Index | None]:
    arr, index = as_series(v, name)
    check_finite(arr, name)
    need_nobs(arr.size, minimum, what)
    return arr, index


def drop_leading_nan(v: Any, name: str) -> tuple[np.ndarray, pd.Index | None]:
    """Drop the NaN warm-up at the start (of a rolling estimate); refuse NaN elsewhere."""
    arr, index = as_series(v, name)
    nan = np.isnan(arr)
    start = int(np.argmin(nan)) if not nan.all() else arr.size
    arr = arr[start:]
    if index is not None:
        index = index[start:]
    check_finite(arr, name)
    return np.ascontiguousarray(arr), index


def pair(y: Any, x: Any, minimum: int, what: str) -> tuple[np.ndarray, np.ndarray, pd.Index | None]:
    """Validate a pair: equal lengths, equal indexes when both are Series, finite values."""
    ya, yi = as_series(y, "y")
    xa, xi = as_series(x, "x")
    if ya.size != xa.size:
        raise ValueError(f"y and x must have the same length, got {ya.size} and {xa.size}; "
                         f"align them first, e.g. y, x = y.align(x, join='inner')")
    if yi is not None and xi is not None and not yi.equals(xi):
        raise ValueError("y and x are on different indexes; align them first, e.g. "
                         "y, x = y.align(x, join='inner') (then .dropna() or .ffill())")
    check_finite(ya, "y")
    check_finite(xa, "x")
    need_nobs(ya.size, minimum, what)
    return ya, xa, (yi if yi is not None else xi)


def window_arg(window: Any, n: int, minimum: int, what: str) -> int:
    if isinstance(window, bool) or not isinstance(window, int | np.integer):
        raise TypeError(f"window must be an int number of bars, got {window!r}")
    window = int(window)
    if window < minimum:
        raise ValueError(f"window must be >= {minimum} for {what}, got {window}")
    need_nobs(n, window, f"{what} with window={window}")
    return window


def choice(value: Any, name: str, options: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}, got {value!r}")
    return value.lower()


def out_index(index: pd.Index | None, n: int) -> pd.Index:
    return index if index is not None else pd.RangeIndex(n)


def name_of(v: Any, default: str) -> str:
    n = getattr(v, "name", None)
    return str(n) if n is not None else default
