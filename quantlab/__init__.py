"""quantlab: a notebook-centric research environment for crypto statistical arbitrage.

Public names are imported lazily so that ``import quantlab`` stays fast (no numba
compilation, no Jupyter imports) and a notebook pays only for what it touches::

    import quantlab as ql
    store = ql.TickStore("data/store")
    ql.analytics.hedge_ratio(y, x, method="kalman")
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "TickStore": ("quantlab.store", "TickStore"),
    "Lab": ("quantlab.live", "Lab"),
    "screen": ("quantlab.screen", "screen"),
    "closes": ("quantlab.aligned", "closes"),
    "parse_timeframe": ("quantlab.timeframes", "parse_timeframe"),
    "QuantlabError": ("quantlab.errors", "QuantlabError"),
    "analytics": ("quantlab.analytics", None),
    "PairSpec": ("quantlab.analytics.pair", "PairSpec"),
    "backtest": ("quantlab.backtest", None),
    "alerts": ("quantlab.alerts", None),
    "research": ("quantlab.research", None),
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'quantlab' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
