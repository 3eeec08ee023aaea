"""Two symbols' last prices on one grid (pure): what pair analytics consume."""

from __future__ import annotations

import warnings

import pandas as pd


def align_closes(y: pd.Series, x: pd.Series, tf: str | pd.Timedelta, *, max_ffill: int = 5,
                 window: int | None = None, names: tuple[str, str] = ("y", "x")) -> pd.DataFrame:
    """Closes of two bar series (indexed by bar open time) on a regular grid at ``tf``.

    A bar without trades takes the previous close for at most ``max_ffill`` bars (never
    a later value: no look-ahead); rows where either side is still missing are dropped.
    Returns the last ``window`` rows (all when None) with columns ``names``.
    """
    if window is not None and (not isinstance(window, int) or window < 2):
        raise ValueError(f"window: must be an int >= 2 (bars), got {window!r}")
    if y.empty or x.empty:
        return pd.DataFrame(columns=list(names), index=pd.DatetimeIndex([], tz="UTC", name="time"), dtype=float)
    start = max(y.index[0], x.index[0])
    end = max(y.index[-1], x.index[-1])
    if end < start:
        return pd.DataFrame(columns=list(names), index=pd.DatetimeIndex([], tz="UTC", name="time"), dtype=float)
    grid = pd.date_range(start, end, freq=pd.Timedelta(tf), name="time")
    frame = pd.DataFrame({
        names[0]: y.reindex(y.index.union(grid)).ffill(limit=max_ffill).reindex(grid),
        names[1]: x.reindex(x.index.union(grid)).ffill(limit=max_ffill).reindex(grid),
    }).dropna()
    if window is not None:
        if len(frame) < window:
            warnings.warn(
                f"window={window} is larger than the {len(frame)} aligned bars available; returning them all",
                UserWarning, stacklevel=3,
            )
        frame = frame.iloc[-window:]
    return frame
