"""``TickRows``: rows of one store table as numpy columns, in id order: what
:meth:`TickStore.read_after <quantlab.store.TickStore.read_after>` returns to a follower.

A follower polls every few hundred milliseconds per symbol and puts the new rows into numpy
rings and bars; wrapping them in a DataFrame first would add ~0.4 ms per symbol and poll
(measured on 10 rows: about a sixth of the poll's read). ``TickRows`` hands over the columns
as read (wrapping them costs ~4 µs), and :meth:`TickRows.to_frame` gives the same frame
:meth:`TickStore.read` returns.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pandas as pd

from quantlab.store.layout import schema_of
from quantlab.store.schema import Batch, TableSchema, batch_len, to_frame


@dataclass(frozen=True, eq=False)
class TickRows:
    """Rows of one table (``kind``: trades, aggtrades, markprice, funding), sorted by its id,
    as equal-length numpy columns. For ``kind="trades"``::

        trade_id int64[n]   time int64[n] (ns since epoch, UTC)   price float64[n]
        qty float64[n]      is_buyer_maker uint8[n] (0/1)
        event_time, recv_time int64[n] (ns; NaT's int value where unknown; only for rows recorded live)

    ``aggtrades`` has ``agg_id`` for ``trade_id`` and adds ``first_trade_id last_trade_id``.
    No rows: every column of the table, empty.

    >>> rows = store.read_after("BTCUSDT", last_id)     # doctest: +SKIP
    >>> len(rows), rows.last_id, rows["price"][-1]      # doctest: +SKIP
    (12, 3735703174, 61489.99)
    >>> rows.to_frame()                                 # doctest: +SKIP  (as TickStore.read)
    """

    arrays: Mapping[str, np.ndarray]  # column name -> array (held, not copied)
    kind: str = "trades"

    def __post_init__(self) -> None:
        schema = schema_of(self.kind)
        cols: Batch = dict(self.arrays)
        if not batch_len(cols):
            cols = {name: np.empty(0, dtype=dt) for name, dt in schema.columns}
        missing = [name for name in schema.names if name not in cols and name not in schema.optional]
        if missing:
            raise ValueError(f"arrays: {self.kind} rows need the column(s) {', '.join(missing)}")
        object.__setattr__(self, "arrays", MappingProxyType(cols))

    @property
    def schema(self) -> TableSchema:
        return schema_of(self.kind)

    @property
    def columns(self) -> tuple[str, ...]:
        """The column names."""
        return tuple(self.arrays)

    def __len__(self) -> int:
        """Number of rows."""
        return len(next(iter(self.arrays.values())))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __contains__(self, name: object) -> bool:
        return name in self.arrays

    def __iter__(self) -> Iterator[str]:
        raise TypeError("TickRows is not iterable: rows.arrays maps each column name to its array")

    def get(self, name: str, default=None):
        return self.arrays.get(name, default)

    @property
    def last_id(self) -> int | None:
        """The id of the last row (the ``after_id`` of the next poll); None when empty."""
        ids = self.arrays[self.schema.id]
        return int(ids[-1]) if len(ids) else None

    def to_frame(self) -> pd.DataFrame:
        """The rows as :meth:`TickStore.read <quantlab.store.TickStore.read>` returns them: a
        frame indexed by trade time (tz-aware UTC, named ``time``), the arrays not copied."""
        return to_frame(dict(self.arrays), self.schema)

    def summary(self) -> str:
        n = len(self)
        if not n:
            return f"TickRows({self.kind}: no rows)"
        ids = self.arrays[self.schema.id]
        t = self.arrays["time"]
        return (f"TickRows({self.kind}: {n:,} row(s), {self.schema.id} {int(ids[0])}..{int(ids[-1])}, "
                f"{pd.Timestamp(int(t.min()), tz='UTC')} .. {pd.Timestamp(int(t.max()), tz='UTC')})")

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return f"<code>{html.escape(self.summary())}</code>"
