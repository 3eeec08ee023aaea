"""The dashboard: status bar on top, controls on the left, seven panels in tabs.

    from quantlab import Lab
    from quantlab.ui import Dashboard
    lab = Lab(source="demo").start()
    Dashboard(lab)            # displays itself; refreshes the visible panel a few times a second

One refresh loop on the kernel's event loop updates the status bar (1 Hz) and the visible
panel (``rate_hz``, 4 by default): each chart update is one batched message per widget and
only the panel on screen is redrawn. A hidden ``Play`` widget ticks in the browser as a
heartbeat; when it stops (the tab is gone) the loop stops sending updates, so the kernel goes
idle and the server's culler can reclaim it even if the page's shutdown request never came.
"""

from __future__ import annotations

import asyncio
import html
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from quantlab.ui import panels as pn
from quantlab.ui.base import AMBER, Poster, running_loop
from quantlab.ui.research import ResearchPanel

log = logging.getLogger("quantlab.ui")

TAB_NAMES = ("Monitor", "Pair", "Backtest", "Alerts", "Screener", "Research", "Export")
CSS = """
<style>
.ql-dashboard .widget-tab > .p-TabBar .p-TabBar-tab, .ql-dashboard .lm-TabBar-tab { min-width: 90px; }
.ql-dashboard .ql-prices td, .ql-dashboard .ql-prices th { border-bottom: 1px solid #eee; }
.ql-dashboard .ql-metrics td, .ql-dashboard .ql-trades td { border-bottom: 1px solid #f0f0f0; }
.ql-dashboard .bqplot .axislabel { font-size: 12px; }
</style>
"""


class Heartbeat:
    """Browser heartbeat from a hidden ``ipywidgets.Play`` (its timer runs in the page).

    ``alive`` is False once beats were seen and then stopped for ``timeout_s``; before the
    first beat the play state is re-sent every few seconds (the view must exist to start).
    """

    def __init__(self, interval_ms: int = 2000, timeout_s: float = 15.0, kick_for_s: float = 60.0) -> None:
        self.widget = widgets.Play(value=0, min=0, max=10**9, step=1, interval=interval_ms, repeat=True,
                                   playing=False, layout=widgets.Layout(display="none"))
        self.widget.add_class("ql-heartbeat")
        self.timeout_s = timeout_s
        self.kick_for_s = kick_for_s
        self.started = time.monotonic()
        self.last_beat: float | None = None
        self.beats = 0
        self._last_kick = 0.0
        self.widget.observe(self._beat, "value")

    def _beat(self, _change) -> None:
        self.beats += 1
        self.last_beat = time.monotonic()

    def tick(self) -> None:
        """Called by the refresh loop: start the timer in the page until the first beat."""
        now = time.monotonic()
        if self.last_beat is None and now - self.started < self.kick_for_s and now - self._last_kick > 3.0:
            self._last_kick = now
            self.widget.playing = False
            self.widget.playing = True

    @property
    def alive(self) -> bool:
        if self.last_beat is None:
            return time.monotonic() - self.started < self.kick_for_s
        return time.monotonic() - self.last_beat < self.timeout_s


class Dashboard(widgets.VBox):
    """The whole app for one ``Lab``; see the module docstring."""

    def __init__(self, lab, *, rate_hz: float = 4.0, demo_store: str | Path | None = None,
                 autostart: bool = True, y: str | None = None, x: str | None = None,
                 timeframe: str = "1s", window: int = 300) -> None:
        if not 0.5 <= rate_hz <= 10:
            raise ValueError(f"rate_hz: chart updates per second must be in [0.5, 10], got {rate_hz!r}")
        self.lab = lab
        self.rate_hz = float(rate_hz)
        self.poster = Poster(running_loop())
        self.demo_store = demo_store
        p = self.poster
        self.controls = pn.Controls(lab.symbols, y=y, x=x, timeframe=timeframe, window=window)
        self.status = pn.StatusBar(lab, poster=p, on_switch_to_demo=self.switch_to_demo)
        self.monitor = pn.MonitorPanel(lab, self.controls, poster=p)
        self.alerts = pn.AlertsPanel(lab, self.controls, poster=p)  # its toast shows on every tab
        # the other panels are built when their tab is first opened: the page loads only the
        # widgets it shows (a faster first chart), and no chart is laid out while hidden
        # (bqplot then keeps a zero size)
        self._factories: dict[int, Callable[[], Any]] = {
            1: lambda: pn.PairPanel(lab, self.controls, poster=p),
            2: lambda: pn.BacktestPanel(lab, self.controls, poster=p, bind_run_button=False),
            4: lambda: pn.ScreenerPanel(lab, self.controls, poster=p),
            5: lambda: ResearchPanel(lab, self.controls, poster=p),
            6: lambda: pn.ExportPanel(lab, self.controls, backtest_panel=lambda: self.panels[2], poster=p),
        }
        self.panels: list = [self.monitor, None, None, self.alerts, None, None, None]
        self._slots = [widgets.VBox() for _ in TAB_NAMES]
        self._slots[0].children = [self.monitor]
        self.tabs = widgets.Tab(children=self._slots, titles=TAB_NAMES,
                                layout=widgets.Layout(flex="1", min_width="600px"))
        self.tabs.add_class("ql-tabs")
        self.heartbeat = Heartbeat()
        self.paused = False
        self.updates = 0
        self.refresh_errors = 0
        self._task: asyncio.Task | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._status_at = 0.0
        self._dirty = True
        super().__init__([widgets.HTML(CSS), self.status, self.alerts.toast,
                          widgets.HBox([self.controls, self.tabs]), self.heartbeat.widget],
                         layout=widgets.Layout(width="100%"))
        self.add_class("ql-dashboard")
        self.controls.observe_all(lambda _c: self._mark_dirty())
        self.controls.run_backtest.on_click(self.monitor.guarded("Backtest", lambda _b: self._run_backtest()))
        self.tabs.observe(lambda _c: self._on_tab(), "selected_index")
        if autostart:
            self.start()

    # ---------------------------------------------------------------- refresh
    def _mark_dirty(self) -> None:
        self._dirty = True
        # controls change on a comm thread: redraw on the loop now rather than at the next tick
        self.poster.post(self.refresh)

    def panel(self, i: int):
        """Panel ``i`` (in tab order), built and put in its tab on first use."""
        if self.panels[i] is None:
            self.panels[i] = self._factories[i]()
        if not self._slots[i].children:
            self._slots[i].children = [self.panels[i]]
        return self.panels[i]

    pair = property(lambda self: self.panel(1))
    backtest = property(lambda self: self.panel(2))
    screener = property(lambda self: self.panel(4))
    research = property(lambda self: self.panel(5))
    export = property(lambda self: self.panel(6))

    def _on_tab(self) -> None:
        def show() -> None:
            _ = self.visible
            self._mark_dirty()
        self.poster.post(show)

    def _run_backtest(self) -> None:
        self.tabs.selected_index = TAB_NAMES.index("Backtest")
        self.backtest.run()

    @property
    def visible(self):
        i = self.tabs.selected_index
        return self.panel(i) if i is not None and 0 <= i < len(self.panels) else None

    def refresh(self) -> None:
        """Update the status bar (at most 1 Hz) and the visible panel; errors go to the panels."""
        for _ in self.refresh_steps():
            pass

    def refresh_steps(self):
        """:meth:`refresh` as a generator: the refresh loop lets the kernel's loop run at each
        ``yield`` (after the status bar, and between a panel's ``refresh_steps``), so widget
        messages and other callbacks never wait for a whole refresh."""
        now = time.monotonic()
        force, self._dirty = self._dirty, False
        if force or now - self._status_at >= 1.0:
            self._status_at = now
            try:
                self.status.refresh()
            except Exception as exc:  # noqa: BLE001 - shown in the status bar
                self.refresh_errors += 1
                self.status.show_error("Status", exc)
            yield
        panel = self.visible
        if panel is None or not hasattr(panel, "refresh"):
            return
        try:
            if hasattr(panel, "refresh_steps"):
                yield from panel.refresh_steps(force=force)
            else:
                panel.refresh(force=force)
            self.updates += 1
        except Exception as exc:  # noqa: BLE001 - shown in that panel, the loop goes on
            self.refresh_errors += 1
            panel.show_error("Live update", exc)

    async def _run(self) -> None:
        period = 1.0 / self.rate_hz
        while not self._stop.is_set():
            t0 = time.monotonic()
            self.heartbeat.tick()
            alive = self.heartbeat.alive
            if alive and self.paused:
                log.info("page is back: resuming updates")
            elif not alive and not self.paused:
                log.info("no heartbeat from the page for %.0f s: pausing updates", self.heartbeat.timeout_s)
            self.paused = not alive
            if not self.paused:
                for _ in self.refresh_steps():
                    await asyncio.sleep(0)
            await asyncio.sleep(max(0.05, period - (time.monotonic() - t0)))

    def start(self) -> Dashboard:
        """Start the refresh loop on the kernel's event loop (or a thread in a plain script)."""
        self._stop.clear()
        threading.Thread(target=_warm_up, name="quantlab-warm-up", daemon=True).start()
        loop = self.poster.loop
        if loop is not None and loop.is_running():
            self._task = loop.create_task(self._run())
        else:
            self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True,
                                            name="quantlab-dashboard")
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop refreshing (the Lab keeps running: stop it with ``lab.stop()``)."""
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.alerts.close_feed()

    # ---------------------------------------------------------------- demo fallback
    def switch_to_demo(self) -> None:
        """Follow the simulated market instead (its own store, so no fake trades mix with real ones)."""
        from quantlab import Lab
        from quantlab.ui.demo import seed_demo_history

        old = self.lab
        store = Path(self.demo_store) if self.demo_store else demo_store_for(old.store_path)
        seed_demo_history(store, old.symbols)
        lab = Lab(old.symbols, store=store, source="demo").start()
        self.stop()
        old.stop()
        new = Dashboard(lab, rate_hz=self.rate_hz, y=self.controls.y.value, x=self.controls.x.value,
                        timeframe=self.controls.timeframe.value, window=int(self.controls.window.value))
        new.status.message.value = (f"<div style='color:{AMBER}'>Showing the simulated demo market "
                                    f"(store {html.escape(str(store))}).</div>")
        self.children = [new]


def _warm_up() -> None:
    """Import the analytics and backtest stacks off the loop, before the first click needs them."""
    import importlib

    for name in ("quantlab.analytics", "quantlab.backtest", "quantlab.screen"):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the panel that needs it will say what is wrong
            log.exception("importing %s failed", name)


def demo_store_for(store: str | Path) -> Path:
    """Where demo data goes for a given store: a sibling ``<name>-demo`` directory."""
    from quantlab.config import demo_store_path

    return demo_store_path(store)
