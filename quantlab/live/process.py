"""Starting and stopping a ``quantlab record`` process (I/O only): the one process manager of
the ``Lab`` and the ``quantlab app`` verb."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from quantlab.errors import QuantlabError
from quantlab.store import writer_pid

log = logging.getLogger(__name__)

RECORDER_LOG = "recorder.log"


def log_tail(path: Path, n: int = 5) -> str:
    """The last ``n`` lines of a log file ('' when it cannot be read)."""
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    return ""


def spawn_recorder(store: Path, symbols: list[str], source: str, *, ws_url: str | None = None,
                   rest_url: str | None = None, demo_rate: float | None = None,
                   wait: float | None = None) -> subprocess.Popen | None:
    """Start ``python -m quantlab record`` for ``store`` unless a writer is already alive.

    Returns the process, or None when another process already records the store (then the
    caller only follows). Output goes to ``<store>/recorder.log``. ``wait`` seconds: return only
    once the recorder holds the store's writer lock (so no second one starts), raising
    ``QuantlabError`` with the log's last lines if it exits first or takes longer.
    """
    if writer_pid(store) is not None:
        return None
    store.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "quantlab", "record", "--store", str(store),
           "--symbols", ",".join(symbols), "--source", source]
    if source == "demo" and demo_rate is not None:
        cmd += ["--demo-rate", str(demo_rate)]
    if ws_url:
        cmd += ["--ws-url", ws_url]
    if rest_url:
        cmd += ["--rest-url", rest_url]
    logfile = store / RECORDER_LOG
    with open(logfile, "ab") as out:  # the child keeps its own handle
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    log.info("started recorder pid %d for %s (%s)", proc.pid, store, source)
    if wait is not None:
        deadline = time.monotonic() + wait
        while writer_pid(store) is None:
            if proc.poll() is not None:
                raise QuantlabError(f"the recorder exited with code {proc.returncode}:\n{log_tail(logfile)}")
            if time.monotonic() > deadline:
                stop_process(proc)
                raise QuantlabError(f"the recorder did not open {store} within {wait:.0f} s; see {logfile}")
            time.sleep(0.05)
    return proc


def stop_process(proc: subprocess.Popen | None, timeout: float = 15.0) -> int | None:
    """SIGTERM (a clean flush), then SIGKILL if it does not exit within ``timeout``; returns
    the exit code (None for no process)."""
    if proc is None:
        return None
    if proc.poll() is not None:
        return proc.returncode
    with contextlib.suppress(ProcessLookupError):  # it exited between poll() and the signal
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)
