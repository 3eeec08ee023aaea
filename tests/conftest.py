"""Shared fixtures.

``shared_data`` points at ``../shared/data`` (real Binance recordings and official files).
On a developer laptop without it, tests that need it skip; with ``CI=true`` they fail
instead, so CI can never go green by skipping them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
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
def shared_data() -> Path:
    need(SHARED_DATA.is_dir(), f"{SHARED_DATA} is missing (real Binance data for tests)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def chromium() -> Path:
    need(CHROMIUM.exists() or shutil.which("chromium") is not None,
         "Chromium is not installed (apt-get install chromium)")
    return CHROMIUM
