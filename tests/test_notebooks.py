"""Every notebook runs top to bottom, headless, on the demo source (nbclient).

The notebooks share one temporary store: the first seeds it with simulated history, each
starts (and at its end stops) the recorder. Budget: about 1-2 minutes for all of them.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from quantlab.store import writer_pid

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
ALL = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory):
    store = tmp_path_factory.mktemp("nbstore") / "store-demo"  # demo data: the <store>-demo store
    env = {"QUANTLAB_SOURCE": "demo", "QUANTLAB_STORE": str(store), "QUANTLAB_SYMBOLS": "BTCUSDT,ETHUSDT,SOLUSDT"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield store
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_every_notebook_is_committed_without_outputs():
    assert "app.ipynb" in ALL and "08_basis.ipynb" in ALL and len(ALL) >= 8
    for name in ALL:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{name} has outputs"


@pytest.mark.parametrize("name", ALL)
def test_notebook_runs_on_the_demo_source(name, demo_env, tmp_path):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    finally:
        # the app notebook keeps its recorder until its kernel ends; make sure none is left
        deadline = time.monotonic() + 20
        while (pid := writer_pid(demo_env)) is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            time.sleep(1)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stderr")
    assert "Traceback" not in text
