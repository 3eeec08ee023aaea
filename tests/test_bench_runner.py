"""``benchmarks/run.py``: each benchmark in its own process, one table, registration by file name."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _runner():
    spec = importlib.util.spec_from_file_location("bench_runner", ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_benchmark_runs_in_a_fresh_process_and_its_rows_come_back(tmp_path):
    runner = _runner()
    (tmp_path / "heavy_thing.py").write_text("BLOB = bytearray(50 * 2**20)\n")
    header = f"import sys\nsys.path.insert(0, {str(tmp_path)!r})\nfrom _table import Row\n"
    (tmp_path / "bench_a.py").write_text(
        header + "import heavy_thing\n\ndef run(quick):\n"
        "    return [Row('a', 'loads 50 MiB', 1.0, 'x', reference=2.0, ratio=0.5, goal='g')]\n")
    (tmp_path / "bench_b.py").write_text(
        header + "import os\n\ndef run(quick):\n"
        "    return [Row('b', 'heavy_thing loaded here', float('heavy_thing' in sys.modules), 'bool', smoke=quick),\n"
        "            Row('b', 'pid', float(os.getpid()), '')]\n")
    a = runner.run_in_process(tmp_path / "bench_a.py", quick=False)
    b = runner.run_in_process(tmp_path / "bench_b.py", quick=True)
    assert a[0].reference == 2.0 and a[0].ratio == 0.5 and a[0].goal == "g"
    assert b[0].value == 0.0 and b[0].smoke is True  # nothing of bench_a's process is left
    assert b[1].value != float(os.getpid())
    table = runner.render(a + b)
    assert "heavy_thing loaded here (smoke)" in table and "loads 50 MiB (smoke)" not in table


def test_a_failing_benchmark_is_reported_not_hidden(tmp_path):
    runner = _runner()
    (tmp_path / "bench_bad.py").write_text("def run(quick):\n    raise RuntimeError('boom')\n")
    try:
        runner.run_in_process(tmp_path / "bench_bad.py", quick=True)
    except RuntimeError as exc:
        assert "bench_bad.py exited with code 1" in str(exc)
    else:
        raise AssertionError("a failing benchmark returned rows")


def test_a_new_benchmark_is_registered_by_its_file_name():
    runner = _runner()
    found = [p.name for p in runner.discover([])]
    assert found == sorted(p.name for p in (ROOT / "benchmarks").glob("bench_*.py")) and found
    assert [p.name for p in runner.discover(["feed"])] == ["bench_feed.py"]
