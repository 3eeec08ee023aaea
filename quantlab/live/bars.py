"""Bars updated incrementally from ticks in trade-time order (pure).

``IncrementalBars(tf_ns).update(time, price, qty)`` returns the bars that closed; ``frame()``
is the completed bars plus the current one, marked ``partial``. The result equals
:func:`quantlab.store.bars.bars_from_arrays` over the same ticks (VWAP to rounding).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantlab.store.bars import bars_from_arrays

_FIELDS = ("open", "high", "low", "close", "volume", "notional", "trades")


class IncrementalBars:
    def __init__(self, tf_ns: int, max_bars: int = 20_000):
        self.tf_ns = int(tf_ns)
        self.max_bars = max_bars
        self._done: dict[str, list[np.ndarray]] = {k: [] for k in ("bucket", *_FIELDS)}
        self._done_n = 0
        self._cur: dict | None = None  # the open (partial) bar

    def update(self, time_ns: np.ndarray, price: np.ndarray, qty: np.ndarray) -> pd.DataFrame:
        """Add ticks (sorted by time); returns the bars that closed because of them."""
        if not len(time_ns):
            return bars_from_arrays(time_ns, price, qty, self.tf_ns).iloc[0:0]
        b = bars_from_arrays(time_ns, price, qty, self.tf_ns)
        buckets = b.index.asi8 // self.tf_ns
        cols = {k: b[k].to_numpy() for k in ("open", "high", "low", "close", "volume", "trades")}
        notional = cols["volume"] * b["vwap"].to_numpy()
        start = 0
        cur = self._cur
        if cur is not None and buckets[0] <= cur["bucket"]:
            # ticks continuing the open bar (or, rarely, stamped earlier than it: folded in)
            same = buckets <= cur["bucket"]
            k = int(np.count_nonzero(same))
            cur["high"] = max(cur["high"], float(cols["high"][:k].max()))
            cur["low"] = min(cur["low"], float(cols["low"][:k].min()))
            cur["close"] = float(cols["close"][k - 1])
            cur["volume"] += float(cols["volume"][:k].sum())
            cur["notional"] += float(notional[:k].sum())
            cur["trades"] += int(cols["trades"][:k].sum())
            start = k
        closed = []
        if start < len(buckets):
            if cur is not None:
                closed.append(cur)
            for i in range(start, len(buckets) - 1):
                closed.append(self._bar(buckets[i], cols, notional, i))
            self._cur = self._bar(buckets[-1], cols, notional, len(buckets) - 1)
        if closed:
            self._append_done(closed)
        return self._to_frame(closed, partial=False)

    @staticmethod
    def _bar(bucket, cols, notional, i) -> dict:
        return {"bucket": int(bucket), "open": float(cols["open"][i]), "high": float(cols["high"][i]),
                "low": float(cols["low"][i]), "close": float(cols["close"][i]),
                "volume": float(cols["volume"][i]), "notional": float(notional[i]),
                "trades": int(cols["trades"][i])}

    def _append_done(self, bars: list[dict]) -> None:
        for k in self._done:
            self._done[k].append(np.array([b[k] for b in bars]))
        self._done_n += len(bars)
        if len(self._done["bucket"]) > 64 or self._done_n > self.max_bars:
            for k in self._done:
                merged = np.concatenate(self._done[k])[-self.max_bars:]
                self._done[k] = [merged]
            self._done_n = len(self._done["bucket"][0])

    def _to_frame(self, bars: list[dict], partial: bool) -> pd.DataFrame:
        data = {k: np.array([b[k] for b in bars], dtype="i8" if k in ("bucket", "trades") else "f8") for k in ("bucket", *_FIELDS)}
        return self._frame_from(data, np.full(len(bars), partial))

    def _frame_from(self, d: dict, partial: np.ndarray) -> pd.DataFrame:
        with np.errstate(invalid="ignore", divide="ignore"):
            vwap = np.where(d["volume"] > 0, d["notional"] / np.where(d["volume"] > 0, d["volume"], 1), d["close"])
        index = pd.DatetimeIndex((d["bucket"] * self.tf_ns).view("M8[ns]"), name="time").tz_localize("UTC")
        return pd.DataFrame({"open": d["open"], "high": d["high"], "low": d["low"], "close": d["close"],
                             "volume": d["volume"], "vwap": vwap, "trades": d["trades"].astype("i8"),
                             "partial": partial}, index=index)

    def frame(self, last: int | None = None) -> pd.DataFrame:
        """Completed bars and the open one (``partial=True``), oldest first."""
        parts = {k: (np.concatenate(v) if v else np.empty(0)) for k, v in self._done.items()}
        if self._cur is not None:
            parts = {k: np.append(parts[k], self._cur[k]) for k in parts}
        parts["bucket"] = parts["bucket"].astype("i8")
        parts["trades"] = parts["trades"].astype("i8")
        n = len(parts["bucket"])
        partial = np.zeros(n, dtype=bool)
        if self._cur is not None and n:
            partial[-1] = True
        frame = self._frame_from(parts, partial)
        return frame if last is None else frame.iloc[-int(last):]
