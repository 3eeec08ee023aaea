"""CSV downloads in the browser, the same in Voilà and JupyterLab.

:class:`DownloadLink` is an ``HTML`` widget holding ``<a download href="data:text/csv;base64,…">``:
the browser saves the file itself, with no server route and no file left on disk::

    link = DownloadLink()
    link.set_csv("bars_BTCUSDT_1m.csv", bars_csv(frame), rows=len(frame))
"""

from __future__ import annotations

import base64
import html

import ipywidgets as widgets

from quantlab.ui.base import fmt_bytes

MAX_BYTES = 30 * 1024 * 1024  # data URLs are known to work up to this size


def data_url(text: str, mime: str = "text/csv") -> str:
    return f"data:{mime};base64," + base64.b64encode(text.encode("utf-8")).decode("ascii")


def anchor_html(filename: str, text: str, label: str, mime: str = "text/csv") -> str:
    """``<a download=filename href=data:…>label</a>``; refuses content over :data:`MAX_BYTES`."""
    size = len(text.encode("utf-8"))
    if size > MAX_BYTES:
        raise ValueError(f"{filename} would be {fmt_bytes(size)}; downloads in the page are limited to "
                         f"{fmt_bytes(MAX_BYTES)}: narrow the time range or use `quantlab export`")
    name = html.escape(filename, quote=True)
    return (f"<a class='ql-download' download=\"{name}\" href=\"{data_url(text, mime)}\" "
            f"style='font-weight:600'>⬇ {html.escape(label)}</a>")


class DownloadLink(widgets.HTML):
    """A link that downloads the last CSV given to :meth:`set_csv`."""

    def __init__(self) -> None:
        super().__init__(value="")
        self.add_class("ql-download-link")
        self.filename = ""
        self.size = 0

    def set_csv(self, filename: str, text: str, rows: int) -> None:
        self.size = len(text.encode("utf-8"))
        self.filename = filename
        label = f"{filename} · {rows:,} rows · {fmt_bytes(self.size)}"
        self.value = anchor_html(filename, text, label)

    def clear(self) -> None:
        self.value = ""
        self.filename = ""
        self.size = 0
