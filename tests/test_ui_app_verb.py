"""``quantlab app``: arguments, access token, the recorder it starts, and the Voilà command."""

from __future__ import annotations

import socket
import time

import pytest

from quantlab.cli import main
from quantlab.commands import app as app_verb
from quantlab.errors import QuantlabError
from quantlab.live.process import spawn_recorder, stop_process
from quantlab.store import writer_pid
from quantlab.ui import demo_store_for, seed_demo_history


def test_loopback_needs_no_token_network_always_gets_one(monkeypatch):
    monkeypatch.delenv("QUANTLAB_APP_TOKEN", raising=False)
    assert app_verb.access_token("127.0.0.1", None) is None
    assert app_verb.access_token("localhost", None) is None
    tok = app_verb.access_token("0.0.0.0", None)
    assert tok and len(tok) >= 24
    assert app_verb.access_token("0.0.0.0", "s3cret-token") == "s3cret-token"
    monkeypatch.setenv("QUANTLAB_APP_TOKEN", "from-the-env")
    assert app_verb.access_token("192.168.1.5", None) == "from-the-env"
    with pytest.raises(ValueError, match="at least 8"):
        app_verb.access_token("0.0.0.0", "short")
    with pytest.raises(ValueError, match="not an IP address"):
        app_verb.is_loopback("my-laptop")


def test_voila_command_listens_where_asked_with_the_token(tmp_path):
    cmd = app_verb.voila_command(tmp_path / "app.ipynb", "127.0.0.1", 8866, None)
    assert "--port=8866" in cmd and "--Voila.ip=127.0.0.1" in cmd and "--token=" in cmd and "--no-browser" in cmd
    cmd = app_verb.voila_command(tmp_path / "app.ipynb", "0.0.0.0", 9000, "abcdefgh12")
    assert "--token=abcdefgh12" in cmd and "--Voila.ip=0.0.0.0" in cmd


def test_voila_settings_keep_the_xsrf_check_and_free_closed_tabs():
    import json

    from quantlab.commands.notebooks import notebook_dir

    cfg = json.loads((notebook_dir() / "voila.json").read_text())
    # the check stays on wherever the app listens; the page gets its _xsrf cookie from the
    # prelaunch hook that `quantlab app` installs (tests/test_packaging.py drives both sides)
    assert "disable_check_xsrf" not in json.dumps(cfg)
    kmc = cfg["MappingKernelManager"]
    assert 0 < kmc["cull_idle_timeout"] + kmc["cull_interval"] < 120
    assert cfg["VoilaConfiguration"]["show_tracebacks"] is False
    assert (notebook_dir() / app_verb.APP_NOTEBOOK).is_file()
    for ip in ("127.0.0.1", "0.0.0.0"):
        cmd = app_verb.voila_command(notebook_dir() / "app.ipynb", ip, 8866, "abcdefgh12")
        assert cmd[1:3] == ["-m", "quantlab.commands.app"]  # Voilà with issue_xsrf_cookie installed
        assert not [a for a in cmd if "xsrf" in a]


@pytest.mark.parametrize("argv, message", [
    (["app", "--source", "ftp://example"], "--source"),
    (["app", "--port", "70000"], "--port"),
    (["app", "--symbols", "BTCUSDT"], "at least two symbols"),
    (["app", "--demo", "--demo-rate", "0"], "--demo-rate"),
])
def test_bad_arguments_are_one_line_errors(argv, message, capsys, tmp_path):
    assert main([*argv, "--store", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_busy_port_is_refused(capsys, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["app", "--demo", "--port", str(port), "--store", str(tmp_path / "s"), "--no-browser"]) == 2
    assert "is not free" in capsys.readouterr().err


def test_demo_store_is_a_sibling():
    assert demo_store_for("data/store").as_posix() == "data/store-demo"
    assert demo_store_for("data/store-demo").as_posix() == "data/store-demo"


def test_start_recorder_returns_once_it_holds_the_store(tmp_path):
    store = tmp_path / "store"
    assert seed_demo_history(store, ["BTCUSDT", "ETHUSDT"], hours=0.05) > 0
    assert seed_demo_history(store, ["BTCUSDT", "ETHUSDT"], hours=0.05) == 0  # only into an empty store
    proc = spawn_recorder(store, ["BTCUSDT", "ETHUSDT"], "demo", demo_rate=20.0, wait=60.0)
    try:
        assert proc is not None and writer_pid(store) == proc.pid
        # a second app on the same store follows the running recorder
        assert spawn_recorder(store, ["BTCUSDT", "ETHUSDT"], "demo", demo_rate=20.0, wait=60.0) is None
    finally:
        assert stop_process(proc) == 0  # SIGTERM: a clean flush and exit
    deadline = time.monotonic() + 10
    while writer_pid(store) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert writer_pid(store) is None


def test_a_recorder_that_exits_at_start_up_is_reported_with_its_log(tmp_path):
    store = tmp_path / "store"
    assert seed_demo_history(store, ["BTCUSDT", "ETHUSDT"], hours=0.05) > 0  # a demo store
    with pytest.raises(QuantlabError, match=r"(?s)the recorder exited with code [1-9].*demo"):
        spawn_recorder(store, ["BTCUSDT", "ETHUSDT"], "binance", wait=60.0)  # real data refused
    assert writer_pid(store) is None
