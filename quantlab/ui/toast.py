"""The alert toast: one widget for the app and for notebooks, updated only on the kernel's loop.

    from quantlab.ui import AlertToasts
    panel = AlertToasts("data/store")    # the last alerts, then a toast for each new one
    panel                                # display it; panel.stop() ends the polling

:class:`AlertToast` is the toast itself (the app's alerts panel puts one above its tabs);
:class:`AlertToasts` adds the list of recent alerts and follows a store's alert history. New
alerts arrive on threads (the history watcher, ``Lab.on_alert``): both hand every widget change
to the kernel's event loop with ``loop.call_soon_threadsafe`` (:class:`~quantlab.ui.base.Poster`),
and the toast is hidden by ``loop.call_later``, so widgets change on one thread, in order.
"""

from __future__ import annotations

import html
import os
import threading
from typing import Any

import ipywidgets as widgets

from quantlab.ui.base import Poster, fmt_time

TOAST_STYLE = ("padding:6px 10px;margin:2px 0;border-radius:4px;background:#fff3cd;"
               "border:1px solid #e0b400;font-weight:600")
_ROW_STYLE = "padding:1px 10px;font-family:monospace;font-size:12px"


def _time_and_message(alert: Any) -> tuple[str, str]:
    """(``12:04:31.207 UTC``, message) of a fired alert (``FiredAlert``) or of the dict
    ``Lab.on_alert`` passes."""
    if isinstance(alert, dict):
        return fmt_time(alert.get("time")), str(alert.get("message") or alert)
    t = getattr(alert, "time", None)
    return fmt_time(t), str(getattr(alert, "message", None) or alert)


class AlertToast(widgets.HTML):
    """A banner showing the newest alert for ``toast_s`` seconds. :meth:`show` may be called
    from any thread; the widget changes on the poster's loop."""

    def __init__(self, *, poster: Poster | None = None, toast_s: float = 8.0) -> None:
        if not toast_s > 0:
            raise ValueError(f"toast_s: {toast_s!r} must be > 0 seconds")
        super().__init__(value="")
        self.add_class("ql-toast")
        self.poster = poster or Poster()
        self.toast_s = float(toast_s)
        self.shown = 0
        self._hide_handle: Any = None

    def show(self, alert: Any) -> None:
        """Show ``alert`` (a ``FiredAlert`` or an alert dict) until ``toast_s`` seconds pass."""
        self.poster.post(self._show, alert)

    def _show(self, alert: Any) -> None:
        t, msg = _time_and_message(alert)
        self.shown += 1
        self.value = (f"<div style='{TOAST_STYLE}'>ALERT · {html.escape(t)} · {html.escape(msg)}</div>")
        if self._hide_handle is not None:
            self._hide_handle.cancel()
        loop = self.poster.loop
        if loop is not None and loop.is_running():
            self._hide_handle = loop.call_later(self.toast_s, self.hide, self.shown)
        else:  # a plain script has no kernel loop: a timer thread is all there is
            timer = threading.Timer(self.toast_s, self.poster.post, (self.hide, self.shown))
            timer.daemon = True
            timer.start()
            self._hide_handle = timer

    def hide(self, shown: int | None = None) -> None:
        """Clear the toast (unless ``shown`` says a newer alert has replaced it since)."""
        if shown is None or shown == self.shown:
            self.value = ""


class AlertToasts(widgets.VBox):
    """A toast for each new alert of a store and its last ``max_items`` alerts (newest first)."""

    def __init__(self, store_dir: str | os.PathLike[str], *, interval: float = 1.0,
                 max_items: int = 10, toast_s: float = 8.0, start: bool = True,
                 poster: Poster | None = None) -> None:
        from quantlab.alerts import AlertHistory

        if max_items < 1:
            raise ValueError(f"max_items: {max_items!r} must be >= 1")
        self.poster = poster or Poster()
        self.history = AlertHistory(store_dir)
        self.max_items = int(max_items)
        self.toast = AlertToast(poster=self.poster, toast_s=toast_s)
        self.list = widgets.HTML(value="")
        self.recent: list = self.history.alerts()[-self.max_items:]
        super().__init__([self.toast, self.list])
        self.add_class("ql-alert-toasts")
        self._render()
        # the watcher thread only posts: the widgets change on the loop
        self.watcher = self.history.watch(lambda a: self.poster.post(self.push, a), interval) if start else None

    def push(self, alert) -> None:
        """Show one new alert (on the loop; the watcher posts here)."""
        self.recent = (self.recent + [alert])[-self.max_items:]
        self.toast._show(alert)
        self._render()

    def _render(self) -> None:
        rows = "".join(f"<div style='{_ROW_STYLE}'>{html.escape(str(a))}</div>" for a in reversed(self.recent))
        self.list.value = rows or f"<div style='{_ROW_STYLE}'>no alerts yet</div>"

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
