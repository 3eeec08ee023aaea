"""``quantlab sim``: prints its URLs, serves, and stops cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _start(*args: str) -> tuple[subprocess.Popen, dict[str, str]]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "quantlab", "sim", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env,
    )
    urls: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while len(urls) < 2 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        key, _, value = line.strip().partition("=")
        urls[key] = value
    if len(urls) < 2:
        proc.kill()
        pytest.fail(f"quantlab sim printed no URLs: {proc.stderr.read()}")
    return proc, urls


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sim_verb_prints_urls_serves_and_stops_cleanly(sig):
    proc, urls = _start("--symbols", "BTCUSDT,SOLUSDT", "--rate", "200", "--faults", "drop=0.01")
    try:
        rest = urls["QUANTLAB_REST_URL"]
        assert rest.startswith("http://127.0.0.1:")
        assert urls["QUANTLAB_WS_URL"] == rest.replace("http://", "ws://")
        with urllib.request.urlopen(rest + "/api/v3/exchangeInfo", timeout=10) as r:
            info = json.loads(r.read())
        assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "SOLUSDT"]
        time.sleep(0.3)
        with urllib.request.urlopen(rest + "/api/v3/trades?symbol=SOLUSDT&limit=5", timeout=10) as r:
            assert len(json.loads(r.read())) == 5
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped" in err and "trades_made" in err


def test_sim_verb_refuses_bad_arguments_in_one_line():
    for args, message in ((["--faults", "drop=7"], "probability"),
                          (["--source", "replay:/no/such/dir"], "no such file"),
                          (["--source", "nasdaq"], "synthetic' or 'replay:PATH")):
        r = subprocess.run([sys.executable, "-m", "quantlab", "sim", *args], capture_output=True, text=True,
                           cwd=ROOT, timeout=60)
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
        assert r.stderr.strip().startswith("quantlab sim: error:")


def test_help_documents_every_fault_key():
    from quantlab.sim.faults import _KEYS

    out = subprocess.run([sys.executable, "-m", "quantlab", "sim", "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    for key in _KEYS:
        assert f"  {key}=" in out.stdout, key
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for key in ("history_lag=", "ban=", "rest403=", "rest451=", "data_api="):
        assert key in readme, key
