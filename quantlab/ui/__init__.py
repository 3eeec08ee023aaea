"""What users see: ipywidgets + bqplot panels over a live ``Lab``, composed by thin notebooks.

    from quantlab import Lab
    from quantlab.ui import Dashboard
    Dashboard(Lab(source="demo").start())

Modules: :mod:`~quantlab.ui.charts` (bqplot time charts with decimation and follow-live,
heatmaps), :mod:`~quantlab.ui.panels` (status bar, monitor, pair, backtest, alerts, screener,
export), :mod:`~quantlab.ui.research` (the Research tab: walk-forward in the background),
:mod:`~quantlab.ui.app` (the dashboard), :mod:`~quantlab.ui.downloads` (CSV links),
:mod:`~quantlab.ui.compute` (the pure computations behind the panels), :mod:`~quantlab.ui.toast`
(the alert toast), :mod:`~quantlab.ui.demo`.
"""

from quantlab.ui.app import Dashboard, Heartbeat, demo_store_for
from quantlab.ui.charts import HeatMap, TimeChart, decimate, minmax_indices
from quantlab.ui.demo import seed_demo_history
from quantlab.ui.downloads import DownloadLink
from quantlab.ui.panels import (
    AlertsPanel,
    BacktestPanel,
    Controls,
    ExportPanel,
    MonitorPanel,
    PairPanel,
    ScreenerPanel,
    StatusBar,
)
from quantlab.ui.research import ResearchPanel
from quantlab.ui.toast import AlertToast, AlertToasts

__all__ = [
    "AlertToast", "AlertToasts", "AlertsPanel", "BacktestPanel", "Controls", "Dashboard", "DownloadLink", "ExportPanel",
    "HeatMap", "Heartbeat", "MonitorPanel", "PairPanel", "ResearchPanel", "ScreenerPanel", "StatusBar", "TimeChart",
    "decimate", "demo_store_for", "minmax_indices", "seed_demo_history",
]
