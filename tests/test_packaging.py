"""The project's packaging stays consistent: environment.yml == pyproject runtime deps."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

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
