"""CSV downloads in the browser, the same in Voilà and JupyterLab.

:class:`DownloadLink` is an ``HTML`` widget holding ``<a download href="data:text/csv;base64,…">``:
the browser saves the file itself, with no server route and no file left on disk::

    link = DownloadLink()
    link.save("bars_BTCUSDT_1m.csv", bars_csv(frame), rows=len(frame))   # the page saves it now
    link.settle()                                                       # later: a plain link

One click, from the kernel side: :meth:`DownloadLink.save` adds to the link a hidden image that
cannot load (``src="data:,"``), whose ``onerror`` handler clicks the link once and removes
itself. The widget's HTML is set with ``innerHTML``, where ``<script>`` never runs but inline
event handlers do (HTML spec, "innerHTML" security considerations); Voilà 0.5 with ipywidgets 8
serves no content-security policy that forbids them. :meth:`settle` then drops the image, so a
page that is reloaded or re-rendered later does not save the file again.
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


#: clicks the link beside it once, then removes itself (see the module docstring)
_AUTOCLICK = ("<img class='ql-autoclick' data-n='{n}' src='data:,' alt='' style='display:none' "
              "onerror=\"var a=this.parentNode.querySelector('a.ql-download');this.remove();"
              "if(a){{a.click();}}\">")


class DownloadLink(widgets.HTML):
    """A link that downloads the last file (a CSV, or any text with its ``mime``) given to
    :meth:`set_csv` or :meth:`save`."""

    def __init__(self) -> None:
        super().__init__(value="")
        self.add_class("ql-download-link")
        self.filename = ""
        self.size = 0
        self.saves = 0
        self._anchor = ""

    def set_csv(self, filename: str, text: str, rows: int | None, *, mime: str = "text/csv") -> None:
        """Show a link to the file (the user clicks it to save it); ``rows`` None leaves the
        row count out of the label, ``mime`` the type (e.g. ``text/html`` for a report)."""
        self.size = len(text.encode("utf-8"))
        self.filename = filename
        counted = f" · {rows:,} rows" if rows is not None else ""
        label = f"{filename}{counted} · {fmt_bytes(self.size)}"
        self._anchor = anchor_html(filename, text, label, mime)
        self.value = self._anchor

    def save(self, filename: str, text: str, rows: int | None, *, mime: str = "text/csv") -> None:
        """Have the page save the file now (one click on a button is all the user does), and
        leave the link to save it again. Call :meth:`settle` a moment later."""
        self.set_csv(filename, text, rows, mime=mime)
        self.saves += 1
        self.value = self._anchor + _AUTOCLICK.format(n=self.saves)

    def settle(self) -> None:
        """Keep only the link: a page rendered from now on does not save the file by itself."""
        if self.value != self._anchor:
            self.value = self._anchor

    def clear(self) -> None:
        self.value = ""
        self._anchor = ""
        self.filename = ""
        self.size = 0
