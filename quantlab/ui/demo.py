"""Demo history: two hours of the simulated demo market (:mod:`quantlab.sim.demo`: three truly
cointegrated pairs among independent random walks) written into an empty store, so that the
pair, backtest and screener panels have something to work on from the first second.

The demo source of ``quantlab record`` then continues the same trade ids and prices (see
:mod:`quantlab.sim.compose`), so history and live data join without a gap.

Perpetuals (``um:BTCUSDT``) get the same two hours as the recorder stores them: aggregate
trades (``aggtrades``, derived from the simulated trades as the USD-M simulator derives them)
and realised funding every :data:`~quantlab.sim.demo.DEMO_FUNDING_INTERVAL_S` seconds
(``funding``, the simulator's rates, with the perp's last price as the mark price), so a
spot-vs-perp backtest has funding to pay from the first second. No ``markprice`` rows are
written: the Monitor's funding rate and next funding time come from the live recorder.
"""

from __future__ import annotations

import math
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
            if ":" in sym:
                n += _append_perp(st, sym, arr)
                continue
            n += st.append(sym, {"trade_id": arr["id"], "time": arr["time"] * 1000,
                                 "price": arr["price"] / 1e8, "qty": arr["qty"] / 1e8,
                                 "is_buyer_maker": arr["buyer_maker"]})
    return n


def _append_perp(st: TickStore, sym: str, arr) -> int:
    """Aggregate trades and funding of one simulated perp (``arr``: TRADE_DTYPE trades)."""
    import numpy as np

    from quantlab.sim.demo import DEMO_FUNDING_INTERVAL_S
    from quantlab.sim.futures import FuturesExchange
    from quantlab.sim.tape import Tape

    tape = Tape(agg_first_id=1)
    tape.append(arr)
    ids, first, last, qty = tape.aggs(0, tape.n_aggs())
    rows = tape.all()
    n = st.append(sym, {"agg_id": ids, "time": rows["time"][first] * 1000, "price": rows["price"][first] / 1e8,
                        "qty": qty / 1e8, "is_buyer_maker": rows["buyer_maker"][first],
                        "first_trade_id": rows["id"][first], "last_trade_id": rows["id"][last]},
                  kind="aggtrades")
    step_us = int(DEMO_FUNDING_INTERVAL_S * 1e6)
    times = np.arange((int(rows["time"][0]) // step_us + 1) * step_us, int(rows["time"][-1]) + 1, step_us)
    at = np.searchsorted(rows["time"], times, side="right") - 1  # the last trade at or before
    name = sym.partition(":")[2]
    rates = [float(FuturesExchange._draw_rate(name, k)) for k in range(1, len(times) + 1)]
    n += st.append(sym, {"time": times * 1000, "funding_rate": np.asarray(rates),
                         "mark_price": rows["price"][at] / 1e8, "interval_hours": np.full(len(times), math.nan)},
                   kind="funding")
    return n
