"""CSV text of ticks, bars, analytics and trade lists: one format for the CLI and the app.

Times are ISO-8601 UTC with their fractional digits (``2024-08-09T00:00:01.234567Z``);
floats are written with full round-trip precision.
"""

from __future__ import annotations

import pandas as pd


def _iso(index_or_series) -> pd.Index:
    idx = pd.DatetimeIndex(index_or_series)
    if idx.tz is None:
        idx = idx.tz_localize("UTC")
    return idx.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def frame_csv(frame: pd.DataFrame, index_label: str | None = None) -> str:
    """CSV of any frame; datetime index/columns become ISO UTC strings."""
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = pd.Series(_iso(out[col]), index=out.index).where(out[col].notna(), "")
    if isinstance(out.index, pd.DatetimeIndex):
        out.index = _iso(out.index)
    return out.to_csv(index_label=index_label or out.index.name or "index", lineterminator="\n")


def ticks_csv(ticks: pd.DataFrame) -> str:
    """time,trade_id,price,qty,is_buyer_maker[,event_time,recv_time]"""
    cols = [c for c in ("trade_id", "price", "qty", "is_buyer_maker", "event_time", "recv_time") if c in ticks]
    frame = ticks[cols]
    if "event_time" in frame and frame["event_time"].isna().all() and frame["recv_time"].isna().all():
        frame = frame.drop(columns=["event_time", "recv_time"])
    return frame_csv(frame, "time")


def bars_csv(bars: pd.DataFrame) -> str:
    """time,open,high,low,close,volume,vwap,trades,source (time = bar open, UTC; source ticks|klines)"""
    return frame_csv(bars, "time")
