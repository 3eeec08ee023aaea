"""Build step: ship the notebooks inside the package.

People edit the notebooks in ``notebooks/`` at the project root. A wheel built from this tree
(or from its sdist, which carries ``notebooks/`` by ``MANIFEST.in``) gets a copy of them as
``quantlab/notebooks/``, where ``quantlab app`` and ``quantlab notebooks`` find them when
installed. An editable install copies nothing: it reads ``notebooks/`` in the checkout
(``quantlab.commands.notebooks.notebook_dir``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SOURCE = ROOT / "notebooks"
SHIPPED = ("*.ipynb", "voila.json")


class BuildWithNotebooks(build_py):
    """``build_py`` that also copies ``notebooks/`` into the built package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        files = sorted(p for pattern in SHIPPED for p in SOURCE.glob(pattern))
        if not any(p.name == "app.ipynb" for p in files):
            raise SystemExit(f"{SOURCE}/app.ipynb is missing: the app cannot be shipped without it")
        target = Path(self.build_lib) / "quantlab" / "notebooks"
        target.mkdir(parents=True, exist_ok=True)
        for src in files:
            shutil.copyfile(src, target / src.name)


setup(cmdclass={"build_py": BuildWithNotebooks})
