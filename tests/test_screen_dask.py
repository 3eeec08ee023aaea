"""The screen on a real Dask cluster: a `dask scheduler` and two `dask worker` processes on
127.0.0.1, driven through the CLI's --scheduler, give results identical to the serial run."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import need

from quantlab.errors import QuantlabError
from quantlab.pandas_compat import EXACT_FLOATS
from quantlab.screen import SchedulerError, screen
from quantlab.screen.synthetic import planted_universe

BIN = Path(sys.executable).parent
DASK = BIN / "dask"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(procs: list[subprocess.Popen]) -> None:
    """Wait for the processes started here; signal their own process groups if they linger."""
    for sig, grace in ((None, 6.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        alive = [p for p in procs if p.poll() is None]
        if not alive:
            return
        if sig is not None:
            for p in alive:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, sig)
        deadline = time.monotonic() + grace
        for p in alive:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=max(0.1, deadline - time.monotonic()))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """``tcp://127.0.0.1:PORT`` of a scheduler with two single-threaded worker processes."""
    need(DASK.exists(), f"{DASK} is missing (pip install distributed)")
    log = tmp_path_factory.mktemp("dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []
    try:
        procs.append(subprocess.Popen(
            [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port),
             "--no-dashboard", "--no-show"],
            stdout=subprocess.DEVNULL, stderr=open(log / "scheduler.log", "wb"), start_new_session=True))
        for n in range(2):
            procs.append(subprocess.Popen(
                [str(DASK), "worker", address, "--host", "127.0.0.1", "--nworkers", "1",
                 "--nthreads", "1", "--no-dashboard", "--name", f"w{n}",
                 "--local-directory", str(log / f"w{n}")],
                stdout=subprocess.DEVNULL, stderr=open(log / f"worker{n}.log", "wb"), start_new_session=True))
        from distributed import Client

        deadline = time.monotonic() + 40
        while True:
            if any(p.poll() is not None for p in procs):
                pytest.fail("a dask process exited: " + (log / "scheduler.log").read_text()[-2000:])
            try:
                with Client(address, timeout=5) as c:
                    c.wait_for_workers(2, timeout=max(1, deadline - time.monotonic()))
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield address
    finally:
        with contextlib.suppress(Exception):  # orderly: scheduler and workers exit in ~2 s
            from distributed import Client

            with Client(address, timeout=3) as c:
                c.shutdown()
        _stop(procs)


@pytest.fixture(scope="module")
def closes_csv(tmp_path_factory) -> Path:
    closes, _ = planted_universe(n_symbols=24, n_bars=2000, n_pairs=3, seed=4)
    path = tmp_path_factory.mktemp("closes") / "closes.csv"
    closes.to_csv(path, float_format="%.17g")
    return path


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "quantlab", "screen", "--no-progress", *args],
                          capture_output=True, text=True, timeout=timeout)


def test_cli_on_scheduler_equals_serial(cluster, closes_csv, tmp_path):
    serial = _cli("--closes", str(closes_csv), "--out", str(tmp_path / "serial.csv"))
    assert serial.returncode == 0, serial.stderr
    remote = _cli("--closes", str(closes_csv), "--scheduler", cluster,
                  "--out", str(tmp_path / "dask.csv"), "--oos", "0.3")
    assert remote.returncode == 0, remote.stderr
    a = pd.read_csv(tmp_path / "serial.csv", **EXACT_FLOATS)
    b = pd.read_csv(tmp_path / "dask.csv", **EXACT_FLOATS)
    assert len(a) == 24 * 23 // 2 and a["selected"].sum() >= 3
    # --oos splits the bars: compare against a serial run with the same split
    serial_oos = _cli("--closes", str(closes_csv), "--out", str(tmp_path / "serial_oos.csv"),
                      "--oos", "0.3")
    assert serial_oos.returncode == 0, serial_oos.stderr
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "serial_oos.csv", **EXACT_FLOATS), b, check_exact=True)
    assert b["oos_confirmed"].sum() >= 3


def test_client_on_cluster_equals_serial_bitwise(cluster, closes_csv):
    from distributed import Client

    closes = pd.read_csv(closes_csv, index_col=0, **EXACT_FLOATS)
    closes.index = pd.to_datetime(closes.index, utc=True)
    want = screen(closes, block_size=16)
    with Client(cluster, timeout=10) as c:
        got = screen(closes, client=c, block_size=16)
        assert len(c.scheduler_info()["workers"]) == 2
        # the client is the caller's: still usable after the screen
        assert c.submit(sum, [1, 2]).result(timeout=10) == 3
    pd.testing.assert_frame_equal(want, got, check_exact=True)


def test_unreachable_scheduler_fails_fast(closes_csv):
    port = _free_port()  # nothing listens there
    t0 = time.monotonic()
    with pytest.raises(SchedulerError, match=f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}"):
        screen(pd.read_csv(closes_csv, index_col=0, **EXACT_FLOATS), scheduler=f"127.0.0.1:{port}",
               connect_timeout=2)
    assert time.monotonic() - t0 < 15
    assert issubclass(SchedulerError, QuantlabError)
    t0 = time.monotonic()
    r = _cli("--closes", str(closes_csv), "--scheduler", f"tcp://127.0.0.1:{port}",
             "--connect-timeout", "2", timeout=30)
    assert r.returncode == 2 and "error: scheduler: cannot reach" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert time.monotonic() - t0 < 25


_UNGUARDED = """\
import quantlab as ql
from quantlab.research import walk_forward
from quantlab.screen.synthetic import planted_universe, regime_universe

closes, _ = planted_universe(n_symbols=6, n_bars=600, n_pairs=1, seed=1)
walks = regime_universe(n_symbols=6, n_bars=720, n_throughout=1, n_first_half=1, seed=1)[0]
{body}
"""


@pytest.mark.parametrize("body", [
    "print(walk_forward(walks, formation='4h', trading='2h', workers=2, progress=False))",
    "def main():\n    walk_forward(walks, formation='4h', trading='2h', workers=2)\n\nmain()",
], ids=["top-level call", "function called at top level"])
def test_script_without_main_guard_gets_one_line(tmp_path, body):
    """Worker processes (the walk-forward's LocalCluster) re-import the script; without the
    guard distributed used to print ~40 lines of 'Nanny failed to start'. Now: one line
    saying what to add, no worker."""
    script = tmp_path / "unguarded.py"
    script.write_text(_UNGUARDED.format(body=body))
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert 'if __name__ == "__main__":' in lines[0] and "unguarded.py line" in lines[0]
    assert "Nanny" not in r.stderr and "Traceback" not in r.stderr
    assert time.monotonic() - t0 < 60


def test_unguarded_script_screens_on_threads(tmp_path):
    """``screen(workers=2)`` runs on threads of the script's own process: nothing is
    re-imported, so a script needs no guard, and the result equals the serial one."""
    script = tmp_path / "unguarded.py"
    script.write_text(_UNGUARDED.format(body=(
        "a = ql.screen(closes, workers=2, progress=False)\n"
        "b = ql.screen(closes, progress=False)\n"
        "print(a.equals(b), len(a))")))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "15"] and "Nanny" not in r.stderr


def test_guarded_script_passes_the_check(tmp_path):
    script = tmp_path / "guarded.py"
    script.write_text(
        "from quantlab.screen.executors import check_main_guard\n\n"
        "def main():\n    check_main_guard()\n    print('ok')\n\n"
        "if __name__ == '__main__':\n    main()\n")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=60, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
