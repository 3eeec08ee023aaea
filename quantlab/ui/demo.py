"""Demo history: two hours of the simulated demo market (:mod:`quantlab.sim.demo`: three truly
cointegrated pairs among independent random walks) written into an empty store, so that the
pair, backtest and screener panels have something to work on from the first second.

The recorder's demo source then continues the same trade ids and prices (see
:class:`quantlab.recorder.Recorder`), so history and live data join without a gap.
"""

from __future__ import annotations

import time
from pathlib import Path

from quantlab.config import parse_symbols
from quantlab.store import TickStore, writer_pid
from quantlab.store.tickstore import check_source


def store_has_trades(store: str | Path) -> bool:
    path = Path(store)
    if not (path / "store.json").exists():
        return False
    try:
        with TickStore(path) as st:
            return bool(st.symbols("trades"))
    except Exception:  # noqa: BLE001 - an unreadable store is left to the recorder to report
        return True


def seed_demo_history(store: str | Path, symbols, *, hours: float = 2.0, rate: float = 50.0,
                      seed: int = 7) -> int:
    """Write ``hours`` of synthetic trades (``rate`` trades/s over all symbols) ending now into
    ``store`` if it holds no trades and no recorder is writing it. Returns the rows written
    (0 when the store already had data or is being written)."""
    syms = parse_symbols(symbols)
    if len(syms) < 1:
        raise ValueError("symbols: give at least one symbol")
    if not 0 < hours <= 48:
        raise ValueError(f"hours: must be in (0, 48], got {hours!r}")
    path = Path(store)
    check_source(path, "demo")  # simulated history never goes into a real store
    if writer_pid(path) is not None or store_has_trades(path):
        return 0
    from quantlab.sim.demo import demo_history

    end_us = time.time_ns() // 1000 - 1_000_000
    batches = demo_history(syms, end_us - int(hours * 3600e6), end_us, rate=rate, seed=seed)
    path.mkdir(parents=True, exist_ok=True)
    n = 0
    with TickStore(path, mode="a", source="demo") as st:
        for sym, arr in batches.items():
            if not len(arr):
                continue
            n += st.append(sym, {"trade_id": arr["id"], "time": arr["time"] * 1000,
                                 "price": arr["price"] / 1e8, "qty": arr["qty"] / 1e8,
                                 "is_buyer_maker": arr["buyer_maker"]})
    return n
