"""Alerts in an open notebook or the Voilà app: a list of recent alerts with a toast.

    from quantlab.alerts.notebook import AlertToasts
    panel = AlertToasts("data/store")      # shows the last alerts, then follows the history
    panel                                  # display it; panel.stop() ends the polling

The history is polled on a background thread (widget *values* may be set from a thread in
Jupyter and Voilà); the newest alert is shown as a toast for ``toast_s`` seconds.
"""

from __future__ import annotations

import html
import os
import threading
import time

import ipywidgets as widgets

from quantlab.alerts.persistence import AlertHistory, FiredAlert

_TOAST_STYLE = ("padding:6px 10px;margin:2px 0;border-radius:4px;background:#fff3cd;"
                "border:1px solid #e0b400;font-weight:600")
_ROW_STYLE = "padding:1px 10px;font-family:monospace;font-size:12px"


def _row(a: FiredAlert) -> str:
    return f"<div style='{_ROW_STYLE}'>{html.escape(str(a))}</div>"


class AlertToasts(widgets.VBox):
    """A toast for each new alert and the last ``max_items`` alerts (newest first)."""

    def __init__(self, store_dir: str | os.PathLike[str], *, interval: float = 1.0,
                 max_items: int = 10, toast_s: float = 8.0, start: bool = True) -> None:
        if max_items < 1:
            raise ValueError(f"max_items: {max_items!r} must be >= 1")
        self.history = AlertHistory(store_dir)
        self.max_items = int(max_items)
        self.toast_s = float(toast_s)
        self.toast = widgets.HTML(value="")
        self.list = widgets.HTML(value="")
        self.recent: list[FiredAlert] = self.history.alerts()[-self.max_items:]
        self._toast_until = 0.0
        self._lock = threading.Lock()
        super().__init__([self.toast, self.list])
        self.add_class("quantlab-alerts")
        self._render()
        self.watcher = self.history.watch(self.push, interval) if start else None

    def push(self, alert: FiredAlert) -> None:
        """Show one new alert (called by the watcher thread; also usable directly)."""
        with self._lock:
            self.recent = (self.recent + [alert])[-self.max_items:]
            self.toast.value = f"<div style='{_TOAST_STYLE}'>🔔 {html.escape(str(alert))}</div>"
            self._toast_until = time.monotonic() + self.toast_s
            self._render()
        timer = threading.Timer(self.toast_s, self._expire)
        timer.daemon = True
        timer.start()

    def _expire(self) -> None:
        with self._lock:
            if time.monotonic() >= self._toast_until:
                self.toast.value = ""

    def _render(self) -> None:
        rows = "".join(_row(a) for a in reversed(self.recent))
        self.list.value = rows or f"<div style='{_ROW_STYLE}'>no alerts yet</div>"

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
