"""``quantlab notebooks DIR``: copy the exploration notebooks into DIR for a new user.

    quantlab notebooks ~/research     # 01_live_ticks_and_bars.ipynb ... 06_screener.ipynb
    cd ~/research && jupyter lab

The notebooks ship inside the package (``quantlab/notebooks/`` in a wheel, copied there at
build time from the project's ``notebooks/``); a source checkout or an editable install reads
``notebooks/`` in the checkout. ``notebook_dir()`` is the one lookup both this verb and
``quantlab app`` use. Existing files are never overwritten: if any notebook is already in DIR,
nothing is copied.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from quantlab.errors import QuantlabError

NAME = "notebooks"
HELP = "copy the exploration notebooks into a folder (never overwrites)"

APP_NOTEBOOK = "app.ipynb"
_PACKAGE = Path(__file__).resolve().parents[1]


def notebook_dir() -> Path:
    """The folder holding ``app.ipynb``, ``voila.json`` and the exploration notebooks:
    ``quantlab/notebooks`` when installed from a wheel, else ``notebooks/`` of the checkout."""
    for folder in (_PACKAGE / "notebooks", _PACKAGE.parent / "notebooks"):
        if (folder / APP_NOTEBOOK).is_file():
            return folder
    raise QuantlabError(f"the notebooks are missing from this installation ({_PACKAGE}); "
                        "reinstall quantlab (pip install --force-reinstall quantlab)")


def exploration_notebooks() -> list[Path]:
    """The notebooks a user explores with (every ``.ipynb`` but the app's page), in order."""
    return sorted(p for p in notebook_dir().glob("*.ipynb") if p.name != APP_NOTEBOOK)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", metavar="DIR", help="folder to copy the notebooks into (created if missing)")


def copy_notebooks(target: str | Path) -> list[Path]:
    """Copy the exploration notebooks into ``target``; returns the new files. Refuses (and
    copies nothing) when any of them already exists there."""
    target = Path(target).expanduser()
    if target.exists() and not target.is_dir():
        raise ValueError(f"DIR: {target} is a file; give a folder")
    sources = exploration_notebooks()
    taken = [target / s.name for s in sources if (target / s.name).exists()]
    if taken:
        names = ", ".join(p.name for p in taken)
        raise ValueError(f"DIR: {target} already has {names}; nothing copied "
                         "(move them away or choose another folder)")
    target.mkdir(parents=True, exist_ok=True)
    out = []
    for src in sources:
        dst = target / src.name
        with open(src, "rb") as fin, open(dst, "xb") as fout:  # "x": never replace a file
            shutil.copyfileobj(fin, fout)
        out.append(dst)
    return out


def run(args: argparse.Namespace) -> int:
    copied = copy_notebooks(args.dir)
    for path in copied:
        print(f"quantlab notebooks: wrote {path}")
    print(f"quantlab notebooks: open them with `cd {Path(args.dir).expanduser()} && jupyter lab`; "
          "their store is ./data/store there unless $QUANTLAB_STORE says otherwise")
    return 0
