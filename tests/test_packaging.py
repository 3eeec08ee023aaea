"""The project's packaging: environment.yml == pyproject runtime deps; the wheel ships the
notebooks; installed from it into a fresh virtual environment, ``quantlab notebooks`` and
``quantlab app`` work outside the checkout (the app in headless Chromium). Budget: 2-6 minutes
for the installed-app tests, most of it pip installing the dependencies (72 s on a quiet
machine here, about 200 s at a load average of 18 on 2 cores)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import tomllib
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

import quantlab

ROOT = Path(__file__).resolve().parents[1]


def _name_spec(req: str) -> tuple[str, str]:
    req = req.split("#")[0].strip()
    m = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def test_environment_yml_lists_the_same_runtime_dependencies():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pyproject = dict(_name_spec(r) for r in py["dependencies"])
    conda = {}
    text = (ROOT / "environment.yml").read_text()
    deps = text.split("dependencies:", 1)[1]
    for line in deps.splitlines():
        m = re.match(r"^  - ([A-Za-z][^:]*)$", line)
        if m:
            name, spec = _name_spec(m.group(1))
            if name not in ("python", "pip"):
                conda[name] = spec
    assert conda == pyproject
    assert "-e .[test]" in (ROOT / "environment.yml").read_text()


def test_console_script_and_module_entry_point():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert py["scripts"]["quantlab"] == "quantlab.cli:main"
    out = subprocess.run([sys.executable, "-m", "quantlab", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("quantlab ")


def test_import_is_lazy_and_light():
    code = "import sys, quantlab; print(any(m.startswith(('numba', 'h5py', 'ipywidgets')) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


# ---------------------------------------------------------------- the wheel, installed

EXPLORATION = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb") if p.name != "app.ipynb")


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """sdist, then the wheel built from that sdist (as ``python -m build`` does), from a copy
    of the project's sources so that the checkout stays clean."""
    base = tmp_path_factory.mktemp("dist")
    src = base / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    skip = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "data")
    for name in ("quantlab", "notebooks"):
        shutil.copytree(ROOT / name, src / name, ignore=skip)
    out = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(base / "out"), str(src)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return base / "out"


def test_wheel_ships_the_notebooks_as_they_are_in_the_checkout(dist):
    (wheel,) = dist.glob("quantlab-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for name in [*EXPLORATION, "app.ipynb", "voila.json"]:
            assert z.read(f"quantlab/notebooks/{name}") == (ROOT / "notebooks" / name).read_bytes(), name
        assert "quantlab/py.typed" in names
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    core = [line.split(":", 1)[1].strip() for line in meta.splitlines()
            if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert not [r for r in core if r.lower().startswith(("pykalman", "scikit-learn", "psutil"))]
    (sdist,) = dist.glob("quantlab-*.tar.gz")
    with tarfile.open(sdist) as t:
        assert any(n.endswith("/notebooks/app.ipynb") for n in t.getnames())


def _clean_env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="module")
def installed(dist, tmp_path_factory):
    """A fresh virtual environment outside the checkout with the wheel and its dependencies
    installed from the package index, as a user gets it (pip's cache makes repeats quicker)."""
    base = tmp_path_factory.mktemp("user")
    venv = base / "venv"
    (wheel,) = dist.glob("quantlab-*.whl")
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = _clean_env(venv)
    out = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile",
                          str(wheel)],
                         capture_output=True, text=True, env=env, cwd=base)
    assert out.returncode == 0, out.stderr[-3000:]
    print(f"fresh venv with the wheel and its dependencies in {time.monotonic() - t0:.0f} s")
    return SimpleNamespace(venv=venv, base=base, env=env, python=venv / "bin" / "python",
                           quantlab=venv / "bin" / "quantlab")


@pytest.mark.slow
def test_the_installed_package_finds_its_notebooks_outside_the_checkout(installed):
    code = ("import quantlab, quantlab.commands.notebooks as n; "
            "print(quantlab.__file__); print(n.notebook_dir())")
    out = subprocess.run([str(installed.python), "-c", code], capture_output=True, text=True,
                         env=installed.env, cwd=installed.base)
    assert out.returncode == 0, out.stderr
    module, folder = out.stdout.split()
    assert Path(module).is_relative_to(installed.venv) and Path(folder).is_relative_to(installed.venv)
    assert (Path(folder) / "app.ipynb").is_file() and (Path(folder) / "voila.json").is_file()


@pytest.mark.slow
def test_quantlab_notebooks_copies_the_exploration_notebooks_and_never_overwrites(installed):
    target = installed.base / "research"
    run = [str(installed.quantlab), "notebooks", str(target)]
    out = subprocess.run(run, capture_output=True, text=True, env=installed.env, cwd=installed.base)
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in target.iterdir()) == EXPLORATION
    for name in EXPLORATION:
        assert (target / name).read_bytes() == (ROOT / "notebooks" / name).read_bytes()

    (target / EXPLORATION[0]).write_text("my edits")
    (target / EXPLORATION[1]).unlink()
    out = subprocess.run(run, capture_output=True, text=True, env=installed.env, cwd=installed.base)
    assert out.returncode == 2
    assert out.stderr.startswith("quantlab notebooks: error: DIR:") and EXPLORATION[0] in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert (target / EXPLORATION[0]).read_text() == "my edits"
    assert not (target / EXPLORATION[1]).exists()  # all or nothing


def test_a_checkout_reads_the_notebooks_people_edit():
    from quantlab.commands.notebooks import exploration_notebooks, notebook_dir

    if not Path(quantlab.__file__).resolve().is_relative_to(ROOT):
        pytest.skip("quantlab is not imported from this checkout")
    assert notebook_dir() == ROOT / "notebooks"
    assert [p.name for p in exploration_notebooks()] == EXPLORATION


# ---------------------------------------------------------------- the installed app, served

TOKEN = "packaging-test-token"


def _kernels(pid: int) -> list:
    import psutil

    out = []
    for p in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "ipykernel" in " ".join(p.cmdline()):
                out.append(p)
    return out


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.mark.browser
@pytest.mark.slow
def test_installed_app_serves_its_charts_refuses_posts_without_xsrf_and_frees_closed_tabs(installed, chromium):
    """``quantlab app --demo --no-browser`` from the fresh venv, with a token as when it is
    served to the network: the page draws its charts; a POST that carries the login cookie
    but not the ``_xsrf`` token (what another site's form would send) is refused; closing the
    tab frees its kernel at once through Voilà's beacon, long before the culler (45 s idle
    plus a 10 s interval) could."""
    from playwright.sync_api import sync_playwright

    from quantlab.commands.app import free_port, port_open

    port = free_port()
    store = installed.base / "store"
    log_path = installed.base / "app.log"
    t0 = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(installed.quantlab), "app", "--demo", "--no-browser", "--port", str(port),
                                 "--store", str(store), "--symbols", "BTCUSDT,ETHUSDT", "--token", TOKEN],
                                stdout=log, stderr=subprocess.STDOUT, env=installed.env, cwd=installed.base)
    try:
        _wait(lambda: port_open("127.0.0.1", port) or proc.poll() is not None, 120, "the app to serve")
        assert proc.poll() is None, log_path.read_text()[-3000:]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(chromium),
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                              "--disable-component-update", "--disable-sync"])
            context = browser.new_context(viewport={"width": 1300, "height": 900})
            page = context.new_page()
            # the page loads as the notebook runs: a first run in a fresh environment compiles
            # and imports everything, so wait on the chart, not on the page's load event
            page.goto(f"http://127.0.0.1:{port}/?token={TOKEN}", wait_until="commit")
            page.wait_for_selector(".ql-monitor .bqplot.figure path.line", timeout=180_000)
            assert "DEMO (simulated)" in page.inner_text(".ql-status")
            assert "Traceback" not in page.content()
            print(f"installed app drew its charts {time.monotonic() - t0:.0f} s after start")
            config = json.loads(page.inner_text("#jupyter-config-data"))
            kernel_id = config["kernelId"]
            assert len(_kernels(proc.pid)) == 1

            cookies = {c["name"]: c["value"] for c in context.cookies()}
            assert "_xsrf" in cookies
            login = "; ".join(f"{k}={v}" for k, v in cookies.items() if k != "_xsrf")
            request = urllib.request.Request(f"http://127.0.0.1:{port}/voila/api/shutdown/{kernel_id}",
                                             data=b"", method="POST", headers={"Cookie": login})
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=10)
            assert refused.value.code == 403 and "_xsrf" in log_path.read_text()
            time.sleep(1)
            assert len(_kernels(proc.pid)) == 1  # the kernel survived the forged request

            refusals = log_path.read_text().count("403 POST")
            page.close(run_before_unload=True)
            closed = time.monotonic()
            _wait(lambda: not _kernels(proc.pid), 20, "the closed tab's kernel to end")
            print(f"closed tab's kernel ended after {time.monotonic() - closed:.1f} s")
            assert log_path.read_text().count("403 POST") == refusals  # the beacon was accepted
            context.close()
            browser.close()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_a_notebook_run_in_place_leaves_git_clean_and_tests_data_stays_tracked():
    """Run in place, a notebook's default store is notebooks/data/store: ignored like /data/,
    while new real-data slices under tests/data are still seen."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    paths = ["notebooks/data/store/store.json", "notebooks/data/store/status.json", "data/store/store.json",
             "tests/data/trades/NEW-slice.csv"]
    out = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.split() == paths[:3]
