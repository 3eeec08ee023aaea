"""``Lab.start(wait=...)``: the notebooks' one-line start-up waits for data but never hides a
recorder that died (the old start-up wrapped ``wait_ready`` in ``suppress(QuantlabError)``)."""

from __future__ import annotations

import json
import time

import pytest

from quantlab import Lab, QuantlabError
from quantlab.commands.notebooks import notebook_dir
from quantlab.store import writer_pid

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


def test_a_recorder_that_dies_at_start_is_raised_not_waited_out(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    # a demo store of a newer format: the Lab accepts it as a demo store, the recorder (the
    # writer) refuses to write it and exits
    (store / "store.json").write_text('{"format": "quantlab-store", "version": 99, "source": "demo"}')
    lab = Lab(SYMBOLS, store=store, source="demo")
    t0 = time.monotonic()
    try:
        with pytest.raises(QuantlabError, match="recorder exited") as err:
            lab.start(wait=60)
    finally:
        lab.stop()
    assert str(store / "recorder.log") in str(err.value)
    assert time.monotonic() - t0 < 50  # raised when it died, not after the wait
    assert "newer than this quantlab" in (store / "recorder.log").read_text()


def test_start_with_wait_returns_once_every_symbol_has_data(tmp_path):
    lab = Lab(SYMBOLS, store=tmp_path / "store", source="demo")
    try:
        assert lab.start(wait=60) is lab
        assert all(len(lab.ticks(s)) > 0 for s in SYMBOLS)
        assert lab.start(wait=1) is lab  # already running: joins, waits, starts nothing more
    finally:
        lab.stop()
    deadline = time.monotonic() + 15
    while writer_pid(tmp_path / "store") is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert writer_pid(tmp_path / "store") is None


@pytest.mark.parametrize("wait", [-1, float("nan"), float("inf"), "20"])
def test_bad_wait_is_a_clear_error(wait, tmp_path):
    lab = Lab(SYMBOLS, store=tmp_path / "store", source="demo")
    with pytest.raises(ValueError, match="^wait: "):
        lab.start(wait=wait)
    assert not lab.running and writer_pid(tmp_path / "store") is None


def test_every_notebook_starts_with_start_wait_and_hides_no_error():
    live = 0
    for path in sorted(notebook_dir().glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        assert not any("wait_ready" in c and "suppress" in c for c in code), path.name
        if not any("ql.Lab(" in c or " Lab(" in c for c in code):
            continue  # research on stored or synthetic data: no live feed to start
        live += 1
        first = next(c for c in code if "Lab(" in c)
        assert "lab.start(wait=" in first, path.name
        assert "suppress" not in first and "wait_ready" not in first, path.name
    assert live >= 5  # the live notebooks and the app
