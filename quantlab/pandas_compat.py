"""What differs between the supported pandas lines (2.2 and 3.x), stated once.

``EXACT_FLOATS`` goes into every ``read_csv`` that parses prices or quantities: pandas 3
parses floats round-trip exactly by default (and deprecates ``float_precision``), while
pandas 2's default "high" converter can land one ulp away from Python's ``float(text)``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

PANDAS_MAJOR = int(pd.__version__.split(".", 1)[0])

#: keyword arguments for ``pandas.read_csv``: floats equal to ``float(text)``, bit for bit
EXACT_FLOATS: dict[str, Any] = {} if PANDAS_MAJOR >= 3 else {"float_precision": "round_trip"}
