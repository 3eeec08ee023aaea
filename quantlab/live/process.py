"""Starting and stopping the recorder process that a ``Lab`` owns (I/O only)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from quantlab.store import writer_pid

log = logging.getLogger(__name__)


def spawn_recorder(store: Path, symbols: list[str], source: str) -> subprocess.Popen | None:
    """Start ``quantlab record`` for ``store`` unless a writer is already alive.

    Returns the process, or None when another process already records the store (then
    this Lab only follows). Output goes to ``<store>/recorder.log``.
    """
    if writer_pid(store) is not None:
        return None
    store.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "quantlab", "record", "--store", str(store),
           "--symbols", ",".join(symbols), "--source", source]
    logfile = open(store / "recorder.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(cmd, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    finally:
        logfile.close()
    log.info("started recorder pid %d for %s (%s)", proc.pid, store, source)
    return proc


def stop_recorder(proc: subprocess.Popen, timeout: float = 15.0) -> int | None:
    """SIGTERM (a clean flush), then SIGKILL if it does not exit within ``timeout``."""
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)
