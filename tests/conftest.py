"""Shared fixtures.

``real_data`` points at ``tests/data``: small slices of real Binance recordings and official
files, kept in the project so that a clone tests itself (``tests/data/README.md`` names each
file's source; ``tests/data/make_slices.py`` cut them). Chromium is the one outside need: without
it browser tests skip on a laptop and fail with ``CI=true``, so CI can never go green by skipping.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = ROOT / "tests" / "data"
CHROMIUM = Path("/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(condition: bool, reason: str) -> None:
    """Skip when ``condition`` is false on a laptop; fail in CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def real_data() -> Path:
    assert REAL_DATA.is_dir(), f"{REAL_DATA} is missing: it is part of the project"
    return REAL_DATA


@pytest.fixture(scope="session")
def chromium() -> Path:
    need(CHROMIUM.exists() or shutil.which("chromium") is not None,
         "Chromium is not installed (apt-get install chromium)")
    return CHROMIUM
