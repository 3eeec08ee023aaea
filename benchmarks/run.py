"""Run every ``benchmarks/bench_*.py`` and print one table.

    python benchmarks/run.py            # everything
    python benchmarks/run.py analytics  # modules whose name contains "analytics"
    python benchmarks/run.py --quick    # smaller sizes, for a smoke run
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _table import Row  # noqa: E402


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if v == 0 or 0.01 <= abs(v) < 1e6:
        return f"{v:,.3f}".rstrip("0").rstrip(".")
    return f"{v:.3g}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("only", nargs="*", help="substrings of module names to run")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    rows: list[Row] = []
    failed = []
    for path in sorted(HERE.glob("bench_*.py")):
        if args.only and not any(s in path.stem for s in args.only):
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        t0 = time.perf_counter()
        print(f"# running {path.name} ...", file=sys.stderr, flush=True)
        try:
            spec.loader.exec_module(module)
            rows.extend(module.run(quick=args.quick))
        except Exception:
            traceback.print_exc()
            failed.append(path.name)
        print(f"# {path.name}: {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
    header = ("area", "what", "value", "unit", "reference", "ratio", "goal")
    table = [header] + [
        (r.area, r.what, _fmt(r.value), r.unit, _fmt(r.reference),
         "-" if r.ratio is None else f"{r.ratio:.1f}x", r.goal)
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(header))]
    for n, line in enumerate(table):
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
