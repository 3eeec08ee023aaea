"""Run every ``benchmarks/bench_*.py``, each in its own process, and print one table.

    python benchmarks/run.py            # everything
    python benchmarks/run.py analytics  # modules whose name contains "analytics"
    python benchmarks/run.py --quick    # smaller sizes, for a smoke run

A new benchmark is a file ``benchmarks/bench_<area>.py`` with ``run(quick: bool) -> list[Row]``:
nothing else to register. Each module runs in a fresh interpreter (``--one``), so a figure such
as a process's resident memory measures that benchmark alone, not the runner after every
module before it; the child hands its rows back as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import subprocess
import sys
import tempfile
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


def discover(only: list[str]) -> list[Path]:
    """The benchmark modules, by name; ``only`` keeps those whose name contains any of them."""
    paths = sorted(HERE.glob("bench_*.py"))
    return [p for p in paths if not only or any(s in p.stem for s in only)]


def run_one(path: Path, quick: bool, out: Path) -> None:
    """In the child: import one benchmark module, run it, write its rows to ``out`` as JSON."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.run(quick=quick)
    out.write_text(json.dumps([dataclasses.asdict(r) for r in rows]))


def run_in_process(path: Path, quick: bool) -> list[Row]:
    """Run one module in a fresh interpreter; its rows, or RuntimeError if it failed."""
    with tempfile.TemporaryDirectory(prefix="qlbench-") as tmp:
        out = Path(tmp) / "rows.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--one", str(path), "--rows", str(out)]
        if quick:
            cmd.append("--quick")
        code = subprocess.run(cmd, stdin=subprocess.DEVNULL).returncode
        if code != 0 or not out.is_file():
            raise RuntimeError(f"{path.name} exited with code {code}")
        return [Row(**r) for r in json.loads(out.read_text())]


def render(rows: list[Row]) -> str:
    header = ("area", "what", "value", "unit", "reference", "ratio", "goal")
    table = [header] + [
        (r.area, r.what + (" (smoke)" if r.smoke else ""), _fmt(r.value), r.unit, _fmt(r.reference),
         "-" if r.ratio is None else f"{r.ratio:.1f}x", r.goal)
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(header))]
    lines = []
    for n, line in enumerate(table):
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("only", nargs="*", help="substrings of module names to run")
    ap.add_argument("--quick", action="store_true", help="smaller sizes: a smoke run")
    ap.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # the child's module
    ap.add_argument("--rows", type=Path, help=argparse.SUPPRESS)  # the child's JSON output
    args = ap.parse_args()
    if args.one is not None:
        run_one(args.one, args.quick, args.rows)
        return 0
    rows: list[Row] = []
    failed = []
    for path in discover(args.only):
        t0 = time.perf_counter()
        print(f"# running {path.name} in its own process ...", file=sys.stderr, flush=True)
        try:
            rows.extend(run_in_process(path, args.quick))
        except Exception:
            traceback.print_exc()
            failed.append(path.name)
        print(f"# {path.name}: {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
    print(render(rows))
    print("\nEach benchmark ran in its own process."
          + (" Quick run: reduced sizes; rows marked (smoke) are not the figure their label names"
             " at full size." if args.quick else ""))
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
