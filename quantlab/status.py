"""The recorder's live counters, published as ``<store>/status.json`` (atomic rewrite).

Readers (``quantlab info``, every notebook kernel) read the file; nothing else couples
them to the recorder process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

STATUS_FILE = "status.json"


def write_status(store_dir: str | os.PathLike[str], status: dict) -> None:
    path = Path(store_dir) / STATUS_FILE
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(status, default=str))
    os.replace(tmp, path)


def read_status(store_dir: str | os.PathLike[str]) -> dict:
    try:
        return json.loads((Path(store_dir) / STATUS_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
