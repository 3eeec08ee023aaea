"""``quantlab info --store DIR``: per-symbol counts, time and id bounds, gaps, last price."""

from __future__ import annotations

import argparse
import json

from quantlab.config import settings

NAME = "info"
HELP = "per-symbol counts, first/last time and trade id, gaps, last price of a store"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=None, help="store directory (default: $QUANTLAB_STORE or ./data/store)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")


def missing_notes(info) -> list[str]:
    """One line per table with missing ids, saying how many are recorded gaps (ids the recorder
    could not backfill) and how many are holes between imported files (import those days)."""
    lines = []
    for rec in info.to_dict(orient="records"):
        missing = rec.get("missing_ids")
        if missing is None or missing != missing or not int(missing):  # None / NA / 0
            continue
        missing, gap_ids = int(missing), int(rec["gap_ids"])
        holes = max(missing - gap_ids, 0)
        parts = []
        if gap_ids:
            parts.append(f"{gap_ids:,} in recorded gaps (ids the recorder could not backfill; listed below)")
        if holes:
            parts.append(f"{holes:,} in holes between imported files or recording sessions "
                         "(import the data.binance.vision files of those days to fill them)")
        lines.append(f"{rec['symbol']} {rec['kind']}: {missing:,} missing: " + "; ".join(parts))
    return lines


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from quantlab.status import read_status
    from quantlab.store import TickStore

    store = TickStore(settings(store=args.store).store)
    info = store.info()
    status = read_status(store.path)
    if args.json:
        print(json.dumps({"store": {"path": str(store.path), "source": store.source}}))
        for rec in info.to_dict(orient="records"):
            print(json.dumps({k: (str(v) if isinstance(v, pd.Timestamp) else v) for k, v in rec.items()},
                             default=str))
        if status:
            print(json.dumps({"recorder": status}, default=str))
        return 0
    kind = {"binance": "real Binance data", "demo": "simulated demo data"}.get(store.source, store.source)
    print(f"store {store.path}: source {store.source} ({kind})")
    if info.empty:
        print(f"{store.path}: empty store")
    else:
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(info.to_string(index=False))
    notes = missing_notes(info)
    if notes:
        print("\nmissing ids (ids absent between a symbol's first and last id):")
        for line in notes:
            print(f"  {line}")
    gaps = store.gaps()
    if len(gaps):
        print("\nunrepaired gaps (ids the recorder could not backfill from the exchange):")
        print(gaps.to_string(index=False))
    if status:
        print("\nrecorder:", ", ".join(f"{k}={v}" for k, v in status.items() if not isinstance(v, dict)))
    pid = store.writer_pid()
    print(f"\nwriter: {'pid ' + str(pid) if pid else 'none running'}")
    return 0
