"""CSV text of ticks, bars, analytics and trade lists: one format for the CLI and the app.

Times are ISO-8601 UTC with their fractional digits (``2024-08-09T00:00:01.234567Z``);
floats are written with full round-trip precision. Files are written through
:func:`write_atomic`: never inside a store, never over an existing file without ``force``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np
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


def agg_ticks_csv(aggs: pd.DataFrame) -> str:
    """time,agg_id,price,qty,first_trade_id,last_trade_id,is_buyer_maker (futures recorded live)"""
    cols = ["agg_id", "price", "qty", "first_trade_id", "last_trade_id", "is_buyer_maker"]
    return frame_csv(aggs[cols], "time")


def funding_csv(funding: pd.DataFrame) -> str:
    """time,calc_time,funding_interval_hours,last_funding_rate,mark_price

    The middle three are data.binance.vision's fundingRate columns (``calc_time`` epoch ms,
    exact); empty cells where the source did not say (archives carry no mark price, the REST
    endpoint no interval)."""
    idx = pd.DatetimeIndex(funding.index)
    out = pd.DataFrame({
        "calc_time": idx.as_unit("ns").asi8 // 1_000_000,
        "funding_interval_hours": funding["interval_hours"].astype("Int64"),
        # positional shortest round-trip digits: -0.00002335, never -2.335e-05
        "last_funding_rate": [np.format_float_positional(r, trim="-") for r in funding["funding_rate"]],
        "mark_price": funding["mark_price"],
    }, index=idx)
    return frame_csv(out, "time")


def marks_csv(marks: pd.DataFrame) -> str:
    """time,mark_price,index_price,settle_price,funding_rate,next_funding_time[,recv_time]"""
    out = marks.rename(columns={"price": "mark_price"})
    return frame_csv(out, "time")


def bars_csv(bars: pd.DataFrame) -> str:
    """time,open,high,low,close,volume,vwap,trades,source (time = bar open, UTC; source ticks|klines)"""
    return frame_csv(bars, "time")


def store_containing(path: str | os.PathLike[str]) -> Path | None:
    """The quantlab store directory (one holding ``store.json``) that ``path`` is in, or None."""
    p = Path(path).expanduser().resolve()
    for folder in (p, *p.parents):
        if (folder / "store.json").is_file():
            return folder
    return None


def check_out(out: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Refuse an output path that would destroy data: anything inside a store (even with
    ``force``), an existing file without ``force``, a directory, a folder that does not exist."""
    p = Path(out).expanduser()
    store = store_containing(p)
    if store is not None:
        raise ValueError(f"--out: {p} is inside the store {store}; write exports outside the store")
    if p.is_dir():
        raise ValueError(f"--out: {p} is a directory; give a file name, e.g. {p / 'export.csv'}")
    if p.exists() and not force:
        raise ValueError(f"--out: {p} already exists; pass --force to replace it or choose another name")
    if not p.parent.is_dir():
        raise ValueError(f"--out: folder {p.parent} does not exist")
    return p


def write_atomic(out: str | os.PathLike[str], text: str, *, force: bool = False) -> Path:
    """Write ``text`` to ``out`` through a temp file in the same folder and a rename, so the file
    is either the whole export or untouched (see :func:`check_out` for what is refused)."""
    p = check_out(out, force=force)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        if force:
            os.replace(tmp, p)
        else:
            try:
                os.link(tmp, p)  # fails if a file appeared meanwhile: never overwrite without --force
            except FileExistsError:
                raise ValueError(f"--out: {p} already exists; pass --force to replace it") from None
            except OSError:  # a filesystem without hard links
                if p.exists():
                    raise ValueError(f"--out: {p} already exists; pass --force to replace it") from None
                os.replace(tmp, p)
            else:
                os.unlink(tmp)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return p


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
