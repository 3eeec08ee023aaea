"""Write a store in the layout of release 0.1, with h5py alone (no quantlab code), from the
layout 0.1 documented (``quantlab/store/tickstore.py`` and ``segments.py`` at 0.1)::

    store.json                      {"compression": null, "format": "quantlab-store", "version": 1}
    writer.lock                     empty when no writer runs
    trades/<SYMBOL>/seg-<first id, 20 digits>.h5
                                    contiguous 1-D datasets trade_id i8, time i8 (ns), price f8,
                                    qty f8, is_buyer_maker u1[, event_time i8, recv_time i8];
                                    attrs rows first_id last_id kind first_time last_time time_sorted
    trades/<SYMBOL>/active.h5       a writer's SWMR segment: chunked datasets of every column and
                                    ``committed`` (i8[1]); rows beyond ``committed`` are not durable
    aggtrades/<SYMBOL>/seg-...h5    agg_id time price qty is_buyer_maker first_trade_id last_trade_id
    klines/<SYMBOL>/<interval>.h5   open_time open high low close volume close_time quote_volume
                                    trades taker_buy_base taker_buy_quote (lzf + shuffle)
    gaps.json / counters.json

Every number comes from a real Binance file in ``tests/data`` and is returned, so a test can
check that today's code reads the 0.1 store unchanged. Run as a script to write one:
``python tests/legacy_store.py DIR``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parent / "data"
TRADES_COLS = (("trade_id", "i8"), ("time", "i8"), ("price", "f8"), ("qty", "f8"), ("is_buyer_maker", "u1"),
               ("event_time", "i8"), ("recv_time", "i8"))
AGG_COLS = (("agg_id", "i8"), ("time", "i8"), ("price", "f8"), ("qty", "f8"), ("is_buyer_maker", "u1"),
            ("first_trade_id", "i8"), ("last_trade_id", "i8"))
KLINE_COLS = (("open_time", "i8"), ("open", "f8"), ("high", "f8"), ("low", "f8"), ("close", "f8"),
              ("volume", "f8"), ("close_time", "i8"), ("quote_volume", "f8"), ("trades", "i8"),
              ("taker_buy_base", "f8"), ("taker_buy_quote", "f8"))


def _sealed(folder: Path, cols, id_name: str, batch: dict[str, np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    ids, times = batch[id_name], batch["time"]
    with h5py.File(folder / f"seg-{int(ids[0]):020d}.h5", "w", libver="latest") as f:
        for name, dt in cols:
            if name in batch:
                f.create_dataset(name, data=batch[name].astype(dt))
        f.attrs.update(rows=len(ids), first_id=int(ids[0]), last_id=int(ids[-1]), kind=folder.parent.name,
                       first_time=int(times.min()), last_time=int(times.max()),
                       time_sorted=bool(np.all(times[1:] >= times[:-1])))


def write_legacy_store(path: Path) -> dict:
    """Write the store; return what it holds (frames and values) for comparison."""
    path.mkdir(parents=True)
    (path / "store.json").write_text(json.dumps(
        {"format": "quantlab-store", "version": 1, "compression": None}, indent=1, sort_keys=True))
    (path / "writer.lock").write_text("")
    raw = pd.read_csv(DATA / "trades" / "BTCUSDT-trades-2025-01-01.rows0-209.csv", header=None)
    btc = {"trade_id": raw[0].to_numpy("i8"), "time": raw[4].to_numpy("i8") * 1_000, "price": raw[1].to_numpy("f8"),
           "qty": raw[2].to_numpy("f8"), "is_buyer_maker": raw[5].to_numpy(bool).astype("u1")}
    # two sealed segments (imported: no receipt times), split at row 150
    _sealed(path / "trades" / "BTCUSDT", TRADES_COLS, "trade_id", {k: v[:150] for k, v in btc.items()})
    _sealed(path / "trades" / "BTCUSDT", TRADES_COLS, "trade_id", {k: v[150:] for k, v in btc.items()})
    # ETHUSDT: rows a killed recorder left in its active segment, the last one not committed
    eth_raw = pd.read_csv(DATA / "trades" / "ETHUSDT-spot-trades-2024-08-08T2354_2024-08-09T0005.csv",
                          header=None, nrows=40)
    eth = {"trade_id": eth_raw[0].to_numpy("i8"), "time": eth_raw[4].to_numpy("i8") * 1_000_000,
           "price": eth_raw[1].to_numpy("f8"), "qty": eth_raw[2].to_numpy("f8"),
           "is_buyer_maker": eth_raw[5].to_numpy(bool).astype("u1")}
    eth["event_time"] = eth["time"] + 1_000_000
    eth["recv_time"] = eth["time"] + 5_000_000
    folder = path / "trades" / "ETHUSDT"
    folder.mkdir(parents=True)
    with h5py.File(folder / "active.h5", "w", libver="latest") as f:
        for name, dt in TRADES_COLS:
            f.create_dataset(name, data=eth[name].astype(dt), maxshape=(None,), chunks=(65_536,))
        f.create_dataset("committed", data=np.array([39], "i8"), maxshape=(1,), chunks=(1,))
        f.attrs.update(kind="trades")
    agg = {"agg_id": np.arange(1000, 1040, dtype="i8"), "time": eth["time"], "price": eth["price"],
           "qty": eth["qty"], "is_buyer_maker": eth["is_buyer_maker"],
           "first_trade_id": eth["trade_id"], "last_trade_id": eth["trade_id"]}
    _sealed(path / "aggtrades" / "ETHUSDT", AGG_COLS, "agg_id", agg)
    kl = pd.read_csv(DATA / "klines" / "SOLUSDT-1m-2025-07-13.csv", header=None)
    k = {name: kl[i].to_numpy(dt) for i, (name, dt) in enumerate(KLINE_COLS)}
    k["open_time"] = k["open_time"] * 1_000
    k["close_time"] = k["close_time"] * 1_000
    (path / "klines" / "SOLUSDT").mkdir(parents=True)
    with h5py.File(path / "klines" / "SOLUSDT" / "1m.h5", "w") as f:
        for name, dt in KLINE_COLS:
            f.create_dataset(name, data=k[name].astype(dt), compression="lzf", shuffle=True)
    # 0.1 imported a COIN-M zip as if it were spot, under its own name (the bug of issue 18)
    cm = pd.read_csv(DATA / "klines" / "BTCUSD_PERP-1m-2022-10-24.zip")
    (path / "klines" / "BTCUSD_PERP").mkdir(parents=True)
    with h5py.File(path / "klines" / "BTCUSD_PERP" / "1m.h5", "w") as f:
        for i, (name, dt) in enumerate(KLINE_COLS):
            col = cm.iloc[:, i].to_numpy(dt) * (1_000_000 if name.endswith("_time") else 1)
            f.create_dataset(name, data=col.astype(dt), compression="lzf", shuffle=True)
    gaps = [{"symbol": "BTCUSDT", "first_id": 4_400_000_000, "last_id": 4_400_000_009, "count": 10,
             "reason": "backfill refused", "recorded_at": "2025-01-01T00:10:00+00:00"}]
    (path / "gaps.json").write_text(json.dumps(gaps, indent=1, sort_keys=True))
    (path / "counters.json").write_text(json.dumps({"BTCUSDT": {"rejected": 2}}, indent=1, sort_keys=True))
    return {"btc": btc, "eth": {k: v[:39] for k, v in eth.items()}, "agg": agg, "klines": k}


if __name__ == "__main__":
    write_legacy_store(Path(sys.argv[1]))
    print(f"0.1 store written to {sys.argv[1]}")
