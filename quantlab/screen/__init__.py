"""All-pairs cointegration screen of a universe, serial or on Dask.

    import quantlab as ql
    pairs = ql.screen(closes)                         # DataFrame of closes, serial
    pairs = ql.screen("data/store", timeframe="1m", workers=2)          # 2 threads
    pairs = ql.screen(store, scheduler="tcp://10.0.0.5:8786")           # a running cluster
    from quantlab.screen import panel_data
    table, heat = panel_data(pairs)     # top pairs + symbols x symbols p-values

Modules: :mod:`~quantlab.screen.core` (per-block numpy statistics), :mod:`~.fdr`
(Benjamini-Hochberg), :mod:`~.data` (closes -> aligned log prices), :mod:`~.executors`
(serial / threads / Client / LocalCluster / scheduler address), :mod:`~.api` (``screen``).
"""

import types

from quantlab.screen.api import COLUMNS, OOS_COLUMNS, panel_data, pvalue_matrix, screen
from quantlab.screen.core import DEFAULT_LAG
from quantlab.screen.data import ScreenWarning
from quantlab.screen.executors import SchedulerError
from quantlab.screen.fdr import bh_qvalues, bh_select

__all__ = [
    "screen", "panel_data", "pvalue_matrix", "bh_qvalues", "bh_select", "COLUMNS",
    "OOS_COLUMNS", "DEFAULT_LAG", "ScreenWarning", "SchedulerError",
]


class _CallableModule(types.ModuleType):
    """``quantlab.screen`` is both this package and the function: importing the package sets
    the attribute ``quantlab.screen`` to the module, so the module forwards calls to
    :func:`screen` and ``ql.screen(closes)`` works in either case."""

    def __call__(self, *args, **kwargs):
        return screen(*args, **kwargs)


__import__("sys").modules[__name__].__class__ = _CallableModule
