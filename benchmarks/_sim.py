"""``quantlab sim`` in a subprocess for the benchmarks: the one way they start the simulator."""

from __future__ import annotations

import subprocess
import sys

#: the environment variables ``quantlab sim`` prints its URLs as, per market
_URL_KEYS = {"spot": ("QUANTLAB_WS_URL", "QUANTLAB_REST_URL"),
             "um": ("QUANTLAB_FUTURES_WS_URL", "QUANTLAB_FUTURES_REST_URL")}


class Sim:
    """``quantlab sim [--market um] --port 0 *args`` in a subprocess; its URLs read from stdout."""

    def __init__(self, *args: str, market: str = "spot", env: dict | None = None):
        market_args = [] if market == "spot" else ["--market", market]
        self.proc = subprocess.Popen([sys.executable, "-m", "quantlab", "sim", *market_args, "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        assert self.proc.stdout is not None
        urls = dict(self.proc.stdout.readline().strip().split("=", 1) for _ in range(2))
        ws_key, rest_key = _URL_KEYS[market]
        self.ws_url, self.rest_url = urls[ws_key], urls[rest_key]

    def close(self, wait_s: float = 10.0) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(wait_s)
        except subprocess.TimeoutExpired:  # a saturated simulator may not get to its signal handler
            self.proc.kill()
            self.proc.wait(10)
