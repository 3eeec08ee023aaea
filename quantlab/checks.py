"""Checked numbers from user input: a value given on the command line, in a fault spec or in a
rule file becomes a float, or one ``ValueError`` line naming the argument.

    >>> finite_number("2.5", "--move percent")
    2.5
    >>> finite_number("nan", "--below level")
    Traceback (most recent call last):
    ValueError: --below level: 'nan' must be a finite number
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["finite_number"]


def finite_number(value: Any, name: str) -> float:
    """``value`` as a finite float (numeric strings accepted); a ValueError naming ``name``
    when it is not a number or is NaN/inf, a TypeError for a bool (``True`` is not 1.0 here)."""
    if isinstance(value, bool):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: {value!r} is not a number") from None
    if not math.isfinite(out):
        raise ValueError(f"{name}: {value!r} must be a finite number")
    return out
