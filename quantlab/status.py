"""The recorder's live counters, published as ``<store>/status.json`` (atomic rewrite).

Readers (``quantlab info``, every notebook kernel) read the file; nothing else couples
them to the recorder process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from quantlab.atomic import atomic_write_json

STATUS_FILE = "status.json"


def write_status(store_dir: str | os.PathLike[str], status: dict) -> None:
    atomic_write_json(Path(store_dir) / STATUS_FILE, status, indent=None, default=str)


def read_status(store_dir: str | os.PathLike[str]) -> dict:
    try:
        return json.loads((Path(store_dir) / STATUS_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
