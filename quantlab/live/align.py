"""Two symbols' closes on one grid (pure): what pair analytics consume.

A thin form of the package's one alignment, :func:`quantlab.aligned.align_closes`.
"""

from __future__ import annotations

import warnings

import pandas as pd

from quantlab.aligned import DEFAULT_MAX_FILL
from quantlab.aligned import align_closes as _align


def align_closes(y: pd.Series, x: pd.Series, tf, *, max_ffill: int = DEFAULT_MAX_FILL,
                 window: int | None = None, names: tuple[str, str] = ("y", "x")) -> pd.DataFrame:
    """Closes of two bar series (indexed by bar open time) on the bars where either traded,
    at ``tf``. A bar without trades takes the previous close for at most ``max_ffill`` bars
    of the grid (never a later value: no look-ahead); rows where either side is still
    missing are dropped. Returns the last ``window`` rows (all when None), columns ``names``.
    """
    if window is not None and (not isinstance(window, int) or window < 2):
        raise ValueError(f"window: must be an int >= 2 (bars), got {window!r}")
    if names[0] == names[1]:
        raise ValueError(f"names: {names} must differ")
    frame = _align({names[0]: y, names[1]: x}, tf, max_fill=max_ffill).dropna()
    frame.index.name = "time"
    if window is not None:
        if len(frame) < window:
            warnings.warn(
                f"window={window} is larger than the {len(frame)} aligned bars available; returning them all",
                UserWarning, stacklevel=3,
            )
        frame = frame.iloc[-window:]
    return frame
