"""What every panel shares: an error area in words, the kernel loop, background work.

Widget callbacks may run on a subshell thread (JupyterLab >= 4.4 with ipykernel 7), and
background threads finish whenever they finish: both hand their widget changes to the
kernel's event loop with ``loop.call_soon_threadsafe`` (:meth:`Panel.post`), so every widget
update happens on one thread, in order. Errors never escape as tracebacks into the page: they
are shown in the panel's ``error`` area as one sentence and logged with their traceback.
"""

from __future__ import annotations

import asyncio
import functools
import html
import logging
import math
import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import numpy as np

from quantlab.errors import QuantlabError

log = logging.getLogger("quantlab.ui")

AMBER = "#b26a00"
GREEN = "#1a7f37"
RED = "#b42318"
GREY = "#6e7781"


def running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def in_words(exc: BaseException) -> str:
    """One sentence for the page: our own and validation errors as they are, others typed."""
    if isinstance(exc, QuantlabError | ValueError | TypeError | KeyError | TimeoutError):
        text = str(exc).strip("'\"") or type(exc).__name__
        return text[0].upper() + text[1:] if text else text
    return f"{type(exc).__name__}: {exc}"


class Poster:
    """Runs functions on the kernel's event loop (or at once when there is none)."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop or running_loop()
        self.thread_id = threading.get_ident()

    def post(self, fn: Callable, *args: Any) -> None:
        loop = self.loop
        if loop is None or loop.is_closed() or threading.get_ident() == self.thread_id:
            fn(*args)
            return
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop stopped (kernel shutting down)
            fn(*args)


class Panel(widgets.VBox):
    """A VBox with ``error`` (an HTML line shown only when something failed) and helpers."""

    def __init__(self, children: list[widgets.Widget], *, poster: Poster | None = None,
                 css: str = "") -> None:
        self.error = widgets.HTML(value="", layout=widgets.Layout(display="none"))
        self.error.add_class("ql-error")
        self.poster = poster or Poster()
        self.jobs = 0  # background jobs not yet reported back
        super().__init__([*children, self.error])
        if css:
            self.add_class(css)

    # ---------------------------------------------------------------- errors
    def show_error(self, where: str, exc: BaseException) -> None:
        log.warning("%s failed: %s", where, exc, exc_info=(type(exc), exc, exc.__traceback__))
        self.error.value = (f"<div style='color:{RED};padding:4px 8px;border:1px solid {RED};"
                            f"border-radius:4px;background:#fff5f5'><b>{html.escape(where)}:</b> "
                            f"{html.escape(in_words(exc))}</div>")
        self.error.layout.display = None

    def clear_error(self) -> None:
        if self.error.value:
            self.error.value = ""
            self.error.layout.display = "none"

    def guarded(self, where: str, fn: Callable) -> Callable:
        """``fn`` run on the loop, with any exception shown in this panel."""
        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> None:
            def run() -> None:
                try:
                    fn(*args, **kwargs)
                except Exception as exc:  # noqa: BLE001 - shown in the panel
                    self.show_error(where, exc)
            self.poster.post(run)
        return call

    def post(self, fn: Callable, *args: Any) -> None:
        self.poster.post(fn, *args)

    # ---------------------------------------------------------------- background work
    def _job_done(self) -> None:
        self.jobs -= 1

    async def idle(self, timeout: float = 120.0) -> None:
        """Wait (``await panel.idle()`` in a notebook cell) until background jobs have reported
        back. A busy loop in a cell would wait forever: the reports arrive on the kernel loop."""
        import asyncio
        import time

        deadline = time.monotonic() + timeout
        while self.jobs:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{type(self).__name__}: still busy after {timeout:.0f} s")
            await asyncio.sleep(0.05)

    def in_background(self, where: str, work: Callable[[], Any], done: Callable[[Any], None],
                      finally_: Callable[[], None] | None = None) -> threading.Thread:
        """Run ``work()`` on a thread; ``done(result)`` (or the error) back on the loop."""
        self.jobs += 1

        def target() -> None:
            try:
                result = work()
            except Exception as exc:  # noqa: BLE001 - shown in the panel
                self.post(self.show_error, where, exc)
            else:
                def finish() -> None:
                    try:
                        done(result)
                    except Exception as exc:  # noqa: BLE001
                        self.show_error(where, exc)
                self.post(finish)
            finally:
                if finally_ is not None:
                    self.post(finally_)
                self.post(self._job_done)

        t = threading.Thread(target=target, name=f"quantlab-ui-{where}", daemon=True)
        t.start()
        return t


# --------------------------------------------------------------------------- formatting

def price_decimals(prices) -> int:
    """Decimals a symbol's prices are quoted with (its tick size), from observed prices."""
    p = np.asarray(prices, dtype=np.float64)
    p = p[np.isfinite(p)][-200:]
    if p.size == 0:
        return 2
    for d in range(0, 9):
        scaled = np.abs(p) * 10**d
        # every price within 0.1 % of a tick, and at least one tick (0.00001 is not "0")
        if np.all(np.abs(scaled - np.round(scaled)) < 1e-3) and np.all(np.round(scaled) >= 1):
            return d
    return 8


def fmt_price(v: float, decimals: int = 2) -> str:
    if v is None or not math.isfinite(v):
        return "–"
    return f"{v:,.{decimals}f}"


def fmt_num(v: Any, digits: int = 3, unit: str = "") -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(f):
        return "∞" if f > 0 else "–" if math.isnan(f) else "-∞"
    text = f"{f:,.{digits}f}"
    return f"{text} {unit}".strip()


def fmt_pct(v: Any, digits: int = 2) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "–"
    return "–" if not math.isfinite(f) else f"{f:+.{digits}f} %"


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def fmt_time(ts: Any) -> str:
    """``12:04:31.207 UTC`` (milliseconds), or a dash."""
    import pandas as pd

    if ts is None:
        return "–"
    try:
        t = pd.Timestamp(ts)
    except (TypeError, ValueError):
        return "–"
    if t is pd.NaT or (isinstance(t, float) and math.isnan(t)):
        return "–"
    if t.tzinfo is None:
        t = t.tz_localize("UTC")
    t = t.tz_convert("UTC")
    return f"{t:%H:%M:%S}.{t.microsecond // 1000:03d} UTC"


def fmt_stat(v: Any, kind: str, quote: str = "", digits: int = 3) -> str:
    """One statistic as a result table shows it. ``kind``: ``pct`` (a fraction, shown in %),
    ``ret`` (the same, signed), ``int``, ``bars``, ``money`` (in ``quote``), ``num``
    (``digits`` decimals)."""
    if kind in ("pct", "ret"):
        scaled = float(v) * 100 if v is not None else None
        return fmt_pct(scaled) if kind == "ret" else fmt_num(scaled, 2, "%")
    if kind == "int":
        return f"{int(v):,}" if v is not None and math.isfinite(float(v)) else "–"
    if kind == "bars":
        return fmt_num(v, 1, "bars")
    if kind == "money":
        return fmt_num(v, 2, quote)
    return fmt_num(v, digits)


def stats_table_html(stats: dict, spec: tuple[tuple[str, str, str], ...], quote: str, *,
                     digits: int = 3, header: str = "metric", css: str = "") -> str:
    """A two-column table of ``stats`` in the order of ``spec``: ``(key, label, kind)`` rows,
    ``kind`` as :func:`fmt_stat` takes it."""
    rows = [[label, fmt_stat(stats.get(key), kind, quote, digits)] for key, label, kind in spec]
    return table_html(rows, [header, "value"], css=css)


def table_html(rows: list[list[str]], header: list[str], css: str = "",
               align_right_from: int = 1) -> str:
    """A small HTML table; cells are escaped."""
    th = "".join(f"<th style='text-align:{'left' if i < align_right_from else 'right'};"
                 f"padding:2px 8px'>{html.escape(h)}</th>" for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(
            f"<td style='text-align:{'left' if i < align_right_from else 'right'};padding:2px 8px;"
            f"font-variant-numeric:tabular-nums'>{html.escape(str(c))}</td>"
            for i, c in enumerate(r)) + "</tr>"
        for r in rows)
    return (f"<table class='{css}' style='border-collapse:collapse;font-size:13px'>"
            f"<thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>")
