"""Records 10 s from the real Binance endpoints. Needs the internet: marked ``live`` and
deselected by default (``make test ARGS="-m live"`` runs it)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from quantlab.store import TickStore

pytestmark = pytest.mark.live


def test_record_ten_seconds_from_binance(tmp_path):
    out = subprocess.run([sys.executable, "-m", "quantlab", "record", "--store", str(tmp_path / "s"),
                          "--symbols", "BTCUSDT,ETHUSDT", "--source", "binance", "--duration", "10"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    st = TickStore(tmp_path / "s")
    for sym in ("BTCUSDT", "ETHUSDT"):
        ticks = st.read(sym)
        assert len(ticks) > 0
        assert np.all(np.diff(ticks["trade_id"].to_numpy()) == 1)
        assert (ticks["price"] > 0).all()
    assert st.gaps().empty
