"""The HDF5 tick store: see :mod:`quantlab.store.tickstore` for the layout and guarantees."""

from quantlab.store.bars import BAR_COLUMNS, bars_from_arrays, timeframe_ns
from quantlab.store.lock import writer_pid
from quantlab.store.rows import TickRows
from quantlab.store.tickstore import TickStore
from quantlab.timestamps import to_ns

__all__ = ["TickStore", "TickRows", "BAR_COLUMNS", "bars_from_arrays", "timeframe_ns", "writer_pid", "to_ns"]
