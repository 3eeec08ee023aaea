"""bqplot charts for live series: time axes in UTC, decimation, follow-live, batched updates.

    chart = TimeChart("BTCUSDT close", ["BTCUSDT"], y_label="price (USDT)")
    chart.update(bars.index, [bars["close"].to_numpy()])     # DatetimeIndex (UTC) + 1-D arrays
    chart                                                   # a VBox: toolbar + bqplot Figure

Every update sends at most ``max_points`` points per mark: longer series are reduced to the
minimum and maximum of each of ``max_points // 2`` buckets (:func:`minmax_indices`), which keeps
every spike visible. Times go to the browser as ``datetime64[ms]`` (bqplot casts int64 to int32,
which would wreck epoch nanoseconds). Pan/zoom writes the scales' min/max and so stops the chart
from following new data; the "Follow live" toggle (switched off by a pan) resets them. Hover
read-out and pan/zoom are two modes, since bqplot's pan/zoom layer takes the mouse.
"""

from __future__ import annotations

import contextlib
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import bqplot as bq
import ipywidgets as widgets
import numpy as np
import pandas as pd
from bqscales.traits import Date, date_to_json

DEFAULT_MAX_POINTS = 2_000
MAX_POINTS_PER_MARK = 10_000
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


# --------------------------------------------------------------------------- decimation

def minmax_indices(y: np.ndarray, n_out: int) -> np.ndarray:
    """Indices of at most ``n_out`` (+2) points of ``y`` that keep its envelope.

    The series is cut into ``n_out // 2`` buckets of (almost) equal length; each bucket keeps
    the positions of its minimum and maximum (in time order), and the first and last points
    are always kept. NaN values are never chosen. ``len(y) <= n_out`` returns every index.
    """
    y = np.asarray(y, dtype=np.float64)
    n = y.size
    if not isinstance(n_out, int | np.integer) or n_out < 4:
        raise ValueError(f"n_out: need an int >= 4 points, got {n_out!r}")
    if n <= n_out:
        return np.arange(n)
    finite = np.isfinite(y)
    nb = n_out // 2
    edges = np.linspace(0, n, nb + 1).astype(np.int64)
    starts = edges[:-1]
    bucket = np.repeat(np.arange(nb), np.diff(edges))
    lo = np.where(finite, y, np.inf)
    hi = np.where(finite, y, -np.inf)
    mins = np.minimum.reduceat(lo, starts)
    maxs = np.maximum.reduceat(hi, starts)
    pos = np.arange(n)
    is_min = (lo == mins[bucket]) & finite
    is_max = (hi == maxs[bucket]) & finite
    first_min = np.unique(bucket[is_min], return_index=True)[1]
    first_max = np.unique(bucket[is_max], return_index=True)[1]
    keep = np.concatenate([pos[is_min][first_min], pos[is_max][first_max], [0, n - 1]])
    return np.unique(keep)


def decimate(x: np.ndarray, ys: Sequence[np.ndarray], n_out: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """``x`` and each of ``ys`` reduced to the union of every series' min/max points.

    The union can hold up to ``len(ys) * n_out`` points, so each series gets a share of
    ``n_out // len(ys)`` buckets: the result never exceeds ``n_out + 2 * len(ys)`` points.
    """
    n = len(x)
    if n <= n_out or not ys:
        return x, [np.asarray(y) for y in ys]
    share = max(4, n_out // len(ys))
    idx = np.unique(np.concatenate([minmax_indices(y, share) for y in ys]))
    return x[idx], [np.asarray(y)[idx] for y in ys]


def to_datetime64(index) -> np.ndarray:
    """UTC times as ``datetime64[ms]`` (naive, UTC) for bqplot's DateScale."""
    idx = pd.DatetimeIndex(index)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return idx.to_numpy().astype("datetime64[ms]")


#: The time-axis formats of every chart: 24-hour UTC, finer for shorter spans. A chart starts
#: with the middle one (bqplot's default is d3's multi-scale format, which mixes "05:15" with
#: "06 PM") and :func:`time_format` picks one for the span on each update.
TIME_FORMATS = ("%H:%M:%S", "%H:%M", "%m-%d %H:%M")
DEFAULT_TIME_FORMAT = TIME_FORMATS[1]


def time_format(span: np.timedelta64) -> str:
    """The tick format of :data:`TIME_FORMATS` that fits a visible ``span``."""
    sec = span / np.timedelta64(1, "s")
    if sec <= 600:
        return TIME_FORMATS[0]
    return TIME_FORMATS[1] if sec <= 2 * 86400 else TIME_FORMATS[2]


#: Room left of the plot for value labels up to 11 characters (100,500.00 or 0.00001015) and
#: the axis title beside them. Fixed: a figure's margins changed after it is drawn relayout it,
#: and the hover read-out of its points stopped answering in the browser.
VALUE_LABEL_OFFSET = "88px"
FIG_MARGIN = {"top": 36, "bottom": 40, "left": 110, "right": 16}

#: The value labels of a chart without a ``y_format``: d3's "r" (decimal notation, 6 significant
#: digits, trailing zeros trimmed) shows every round tick of :func:`nice_ticks` exactly, from
#: 100,500 to 0.00000002. It is set once, at construction: bqplot's axis view can miss a
#: ``tick_format`` changed while it is first being drawn (that is how the drawdown chart kept
#: d3's 12-hour default), so no chart changes its format to fit its data.
AUTO_VALUE_FORMAT = ",.6~r"


def nice_ticks(lo: float, hi: float, n: int) -> np.ndarray:
    """About ``n`` round tick values in ``[lo, hi]``: the finest step of 1, 2 or 5 x 10^k
    that gives no more than ``n`` (or the next finer one when that leaves a single tick) (bqplot's ``num_ticks`` spaces ticks evenly
    over the domain instead, which reads 4.77, 1.71, -1.34)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or n < 1:
        return np.array([])
    if hi <= lo:
        return np.array([lo])
    mag = 10.0 ** math.floor(math.log10((hi - lo) / n))
    prev = None
    for step in (mag * m for m in (1, 2, 5, 10, 20, 50, 100)):
        first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
        if last - first + 1 <= n:
            if last - first + 1 < 2 and prev is not None:  # two labels say more than one
                step, first, last = prev
            break
        prev = (step, first, last)
    ticks = np.arange(first, last + 1) * step
    return np.round(ticks, max(0, -math.floor(math.log10(step)) + 1))


def value_ticks(height: str) -> int:
    """How many value-axis labels fit a figure ``height`` ("180px"), >= 30 px apart (bqplot's
    default of ~10 piles them up below ~300 px)."""
    try:
        px = float(str(height).removesuffix("px"))
    except ValueError:
        return 5
    inner = px - FIG_MARGIN["top"] - FIG_MARGIN["bottom"]
    return int(max(2, min(8, inner // 30)))


# --------------------------------------------------------------------------- charts

def _date_from_json(value, obj):
    """bqscales parses ``%Y-%m-%dT%H:%M:%S.%f`` only, but the page sends ISO times ending in
    ``Z`` after a pan or zoom (the kernel then fails on every such message). Accept both."""
    if not value:
        return None
    t = pd.Timestamp(value)
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t.to_pydatetime()


class UTCDateScale(bq.DateScale):
    """``bqplot.DateScale`` whose ``min``/``max`` survive a round trip through the page."""

    min = Date(default_value=None, allow_none=True).tag(sync=True, to_json=date_to_json,
                                                         from_json=_date_from_json)
    max = Date(default_value=None, allow_none=True).tag(sync=True, to_json=date_to_json,
                                                         from_json=_date_from_json)


def _held(*ws: widgets.Widget) -> contextlib.ExitStack:
    """One message per widget for everything changed inside the block."""
    stack = contextlib.ExitStack()
    for w in ws:
        stack.enter_context(w.hold_sync())
    return stack


class TimeChart(widgets.VBox):
    """Lines over a UTC ``DateScale`` with pan/zoom, hover tooltips and follow-live.

    ``bands`` draws horizontal reference lines (e.g. z-score entry/exit/stop levels) given as
    ``{label: value}`` and updated with :meth:`set_bands`. ``y_format`` (a d3 format such as
    ``",.2f"``) fixes the value labels; by default (:data:`AUTO_VALUE_FORMAT`) each round tick
    shows exactly (a SHIB spread of 0.00000002 is not "0.00").
    """

    def __init__(self, title: str, names: Sequence[str], *, y_label: str = "",
                 y_format: str | None = None, max_points: int = DEFAULT_MAX_POINTS,
                 height: str = "260px", colors: Sequence[str] | None = None,
                 bands: dict[str, float] | None = None, fill: bool = False, live: bool = True) -> None:
        if not 4 <= max_points <= MAX_POINTS_PER_MARK:
            raise ValueError(f"max_points: must be in [4, {MAX_POINTS_PER_MARK}], got {max_points!r}")
        self.max_points = int(max_points)
        self.names = list(names)
        self.y_format = y_format
        self.x_scale = UTCDateScale()
        self.y_scale = bq.LinearScale()
        scales = {"x": self.x_scale, "y": self.y_scale}
        colors = list(colors or PALETTE[: max(1, len(self.names))])
        self.lines = bq.Lines(x=np.array([], dtype="datetime64[ms]"), y=np.zeros((len(self.names), 0)),
                              scales=scales, colors=colors, labels=self.names,
                              display_legend=len(self.names) > 1, stroke_width=1.5,
                              fill="bottom" if fill else "none", fill_opacities=[0.25] * len(colors))
        self.points = bq.Scatter(
            x=np.array([], dtype="datetime64[ms]"), y=np.array([]), scales=scales,
            default_size=24, colors=["transparent"], stroke="transparent")
        # bqplot 0.13's Tooltip fails to render with `formats` and shows dates as epoch ms:
        # the hovered point comes back as ``hovered_point`` and is written out here instead
        self.readout = widgets.HTML(layout=widgets.Layout(margin="0 0 0 12px"))
        self.readout.add_class("ql-readout")
        self.points.observe(self._on_hover, "hovered_point")
        self.band_lines = bq.Lines(x=np.array([], dtype="datetime64[ms]"), y=np.zeros((0, 0)),
                                   scales=scales, colors=["#888888"], line_style="dashed",
                                   stroke_width=1)
        self._bands: dict[str, float] = dict(bands or {})
        self.axis_x = bq.Axis(scale=self.x_scale, label="time (UTC)", grid_lines="none",
                              tick_format=DEFAULT_TIME_FORMAT)
        self.axis_y = bq.Axis(scale=self.y_scale, side="left", label=y_label,
                              tick_format=y_format or AUTO_VALUE_FORMAT, grid_lines="dashed",
                              label_offset=VALUE_LABEL_OFFSET)
        self.n_ticks = value_ticks(height)  # round values, as many as the height holds
        self.panzoom = bq.interacts.PanZoom(scales={"x": [self.x_scale], "y": [self.y_scale]})
        self.figure = bq.Figure(
            marks=[self.band_lines, self.lines, self.points], axes=[self.axis_x, self.axis_y],
            title=title, interaction=None, animation_duration=0,
            fig_margin=dict(FIG_MARGIN),
            legend_location="top-left", layout=widgets.Layout(width="100%", height=height))
        self.follow = widgets.ToggleButton(
            value=True, description="Follow live" if live else "Whole range", icon="play" if live else "expand",
            tooltip=("keep the newest data in view" if live else "show all the data")
            + " (a pan or zoom switches this off)", layout=widgets.Layout(width="130px"))
        self.follow.add_class("ql-follow")
        self.follow.observe(self._on_follow, "value")
        self.x_scale.observe(self._on_user_zoom, ["min", "max"])
        self.y_scale.observe(self._on_y_view, ["min", "max"])
        self._data_range: tuple[float, float] | None = None
        self._readout_format = ",.2f"
        self._signature: tuple | None = None
        self.points_sent = 0
        self.updates = 0
        # bqplot's pan/zoom layer sits above the marks and takes the mouse: one mode at a time
        self.mode = widgets.ToggleButtons(options=["hover", "pan/zoom"], value="hover",
                                          tooltips=["read time and value under the mouse",
                                                    "drag to pan, wheel to zoom"],
                                          style={"button_width": "80px"})
        self.mode.add_class("ql-chart-mode")
        self.mode.observe(self._on_mode, "value")
        super().__init__([self.figure, widgets.HBox([self.follow, self.mode, self.readout])])
        self.add_class("ql-chart")

    # ---------------------------------------------------------------- follow live
    def _on_follow(self, change) -> None:
        if change["new"]:
            self._reset_scales()

    def _on_user_zoom(self, change) -> None:
        if change["new"] is not None and self.follow.value:
            self.follow.value = False

    def _reset_scales(self) -> None:
        with _held(self.x_scale, self.y_scale):
            for s in (self.x_scale, self.y_scale):
                if s.min is not None:
                    s.min = None
                if s.max is not None:
                    s.max = None

    def _on_y_view(self, _change=None) -> None:
        """Ticks for what is in view: the scale's limits after a pan/zoom, else the data's."""
        lo, hi = self.y_scale.min, self.y_scale.max
        if lo is None or hi is None:
            if self._data_range is None:
                return
            lo, hi = self._data_range
        ticks = nice_ticks(float(lo), float(hi), self.n_ticks)
        if not np.array_equal(np.asarray(self.axis_y.tick_values, dtype=np.float64), ticks):
            self.axis_y.tick_values = ticks
        if ticks.size:  # the hover read-out: two decimals finer than the ticks
            step = float(np.diff(ticks)[0]) if ticks.size > 1 else abs(float(ticks[0])) or 1.0
            self._readout_format = f",.{max(2, -math.floor(math.log10(step) + 1e-9) + 2)}f"

    def _on_mode(self, change) -> None:
        self.figure.interaction = self.panzoom if change["new"] == "pan/zoom" else None

    def _on_hover(self, change) -> None:
        i = change["new"]
        if i is None or not 0 <= i < len(self.points.x):
            return
        t = pd.Timestamp(self.points.x[i]).tz_localize("UTC")
        v = float(self.points.y[i])
        label = self.axis_y.label or "value"
        self.readout.value = (f"<span style='font-variant-numeric:tabular-nums'>{t:%Y-%m-%d %H:%M:%S}"
                              f".{t.microsecond // 1000:03d} UTC · {label} <b>{v:{self.y_format or self._readout_format}}</b></span>")

    # ---------------------------------------------------------------- data
    @property
    def title(self) -> str:
        return self.figure.title

    @title.setter
    def title(self, value: str) -> None:
        if self.figure.title != value:
            self.figure.title = value

    def set_bands(self, bands: dict[str, float]) -> None:
        if dict(bands) != self._bands:
            self._bands = dict(bands)
            self._signature = None

    def clear(self) -> None:
        self.update(pd.DatetimeIndex([], tz="UTC"), [np.array([]) for _ in self.names])

    def update(self, index, ys: Sequence[np.ndarray], *, force: bool = False) -> bool:
        """Show ``ys`` (one array per name) against ``index``; False when nothing changed."""
        if len(ys) != len(self.names):
            raise ValueError(f"ys: expected {len(self.names)} series ({', '.join(self.names)}), got {len(ys)}")
        x = to_datetime64(index)
        ys = [np.asarray(y, dtype=np.float64) for y in ys]
        for name, y in zip(self.names, ys, strict=True):
            if y.shape != x.shape:
                raise ValueError(f"{name}: {y.size} values for {x.size} times")
        sig = (x.size, x[-1] if x.size else None, tuple(float(y[-1]) if y.size else None for y in ys),
               tuple(sorted(self._bands.items())))
        if not force and sig == self._signature:
            return False
        self._signature = sig
        xd, yd = decimate(x, ys, self.max_points)
        ok = np.isfinite(np.vstack(yd)).any(axis=0) if yd else np.zeros(0, bool)
        tip_idx = np.flatnonzero(np.isfinite(yd[0])) if yd else np.zeros(0, int)
        if tip_idx.size > 400:
            tip_idx = tip_idx[np.linspace(0, tip_idx.size - 1, 400).astype(int)]
        with _held(self.lines, self.points, self.band_lines):
            self.lines.x = xd[ok] if ok.size else xd
            self.lines.y = np.vstack([y[ok] for y in yd]) if yd else np.zeros((0, 0))
            self.points.x = xd[tip_idx]
            self.points.y = yd[0][tip_idx] if yd else np.array([])
            if self._bands and xd.size:
                self.band_lines.x = np.array([xd[0], xd[-1]])
                self.band_lines.y = np.array([[v, v] for v in self._bands.values()])
                self.band_lines.labels = list(self._bands)
            else:
                self.band_lines.y = np.zeros((0, 0))
        if self.follow.value:
            self._reset_scales()
        finite = [y[np.isfinite(y)] for y in yd] if yd else []
        finite = [f for f in finite if f.size]
        if finite:
            self._data_range = (float(min(f.min() for f in finite)), float(max(f.max() for f in finite)))
            self._on_y_view()
        if xd.size > 1:
            fmt = time_format(xd[-1] - xd[0])
            if self.axis_x.tick_format != fmt:
                self.axis_x.tick_format = fmt
        self.points_sent = int(xd[ok].size if ok.size else xd.size)
        self.updates += 1
        return True


@dataclass(frozen=True)
class ColorBins:
    """Classes of a value for a heatmap: ``edges`` (increasing; a value ``v`` is in class ``i``
    when ``edges[i-1] <= v < edges[i]``), one ``label`` and one ``color`` per class."""

    edges: tuple[float, ...]
    labels: tuple[str, ...]
    colors: tuple[str, ...]

    def __post_init__(self) -> None:
        if not (len(self.labels) == len(self.colors) == len(self.edges) + 1):
            raise ValueError("ColorBins: give one label and one colour per class (len(edges) + 1 classes)")

    def classify(self, values) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64)
        out = np.searchsorted(np.asarray(self.edges), v, side="right").astype(np.float64)
        out[~np.isfinite(v)] = np.nan
        return out


#: p- and q-values in the classes a reader judges them by (greens: evidence of cointegration).
PVALUE_BINS = ColorBins(
    edges=(0.001, 0.01, 0.05, 0.1),
    labels=("< 0.001", "0.001 – 0.01", "0.01 – 0.05", "0.05 – 0.1", "≥ 0.1"),
    colors=("#00441b", "#238b45", "#74c476", "#fdd49e", "#f0f0f0"),
)


#: ColorBrewer end and middle colours of the continuous heatmap schemes
SCHEMES = {"RdYlGn": ("#a50026", "#ffffbf", "#006837"), "RdYlGn_r": ("#006837", "#ffffbf", "#a50026")}
_BLANK = "#ffffff"  # cells without a value (a symbol with itself, a skipped window)


class HeatMap(widgets.VBox):
    """A labelled grid of numbers (e.g. Sharpe by entry x window) with hover values.

    Beside the grid, a legend in words: with ``bins`` (e.g. :data:`PVALUE_BINS`) one swatch per
    class; otherwise a colour bar from ``scheme`` with its low, middle and high values. (bqplot's
    colour axis squeezed its labels into a few pixels, on top of each other.) Cells without a
    value are blank."""

    def __init__(self, title: str, *, row_label: str, column_label: str, value_label: str,
                 scheme: str = "RdYlGn", height: str = "300px", bins: ColorBins | None = None) -> None:
        if bins is None and scheme not in SCHEMES:
            raise ValueError(f"scheme: {scheme!r} is not one of {', '.join(SCHEMES)}")
        self.bins = bins
        self.scheme = scheme
        self.value_label = value_label
        self.row_scale = bq.OrdinalScale(reverse=True)
        self.col_scale = bq.OrdinalScale()
        if bins is None:
            self.color_scale = bq.ColorScale(colors=list(SCHEMES[scheme]))
            fields, labels = ["row", "column", "color"], [row_label, column_label, value_label]
        else:  # class i -> colors[i] exactly (one stop per class), and one more class for blanks
            colors = [*bins.colors, _BLANK]
            self.color_scale = bq.ColorScale(colors=colors, min=0, max=len(colors) - 1)
            fields, labels = ["row", "column"], [row_label, column_label]
        self.grid = bq.GridHeatMap(
            row=["", " "], column=["", " "], color=np.full((2, 2), np.nan),
            scales={"row": self.row_scale, "column": self.col_scale, "color": self.color_scale},
            tooltip=bq.Tooltip(fields=fields, labels=labels),  # no `formats`: see TimeChart
            interactions={"hover": "tooltip"}, null_color=_BLANK, stroke=_BLANK)
        axes = [bq.Axis(scale=self.row_scale, side="left", label=row_label),
                bq.Axis(scale=self.col_scale, label=column_label)]
        self.figure = bq.Figure(marks=[self.grid], axes=axes, title=title, animation_duration=0,
                                fig_margin={"top": 36, "bottom": 44, "left": 84, "right": 16},
                                layout=widgets.Layout(width="auto", flex="1 1 auto", height=height))
        self.legend = widgets.HTML(_legend_html(value_label, bins) if bins else "")
        self.legend.add_class("ql-heat-legend")
        super().__init__([widgets.HBox([self.figure, self.legend], layout=widgets.Layout(width="100%"))])
        self.add_class("ql-heatmap")

    def classify(self, values) -> np.ndarray:
        """The class of each value (NaN stays NaN); only for a binned heatmap."""
        if self.bins is None:
            raise ValueError("classify: this heatmap has a continuous colour scale (no bins)")
        return self.bins.classify(values)

    def update(self, matrix: pd.DataFrame) -> None:
        """``matrix``: rows x columns of values (NaN shown blank), at least 2 x 2."""
        values = matrix.to_numpy(dtype=np.float64)
        if values.ndim != 2 or min(values.shape) < 2:
            raise ValueError(f"a heatmap needs at least 2 rows and 2 columns, got {values.shape[0]} x "
                             f"{values.shape[1] if values.ndim == 2 else 1}: give more values to compare")
        finite = values[np.isfinite(values)]
        if self.bins is not None:
            color = self.bins.classify(values)
            color[np.isnan(color)] = len(self.bins.colors)  # bqplot paints NaN black: the blank class
        else:
            # NaN would be painted black: blanks get a value outside the scale's domain, shown white
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            color = values.copy()
            with _held(self.color_scale):
                self.color_scale.min, self.color_scale.max = lo, hi if hi > lo else lo + 1.0
            self.legend.value = _gradient_html(self.value_label, SCHEMES[self.scheme], finite)
        with _held(self.grid):
            self.grid.color = color  # first: row and column are checked against its shape
            self.grid.row = [str(r) for r in matrix.index]
            self.grid.column = [str(c) for c in matrix.columns]

    def close(self) -> None:
        """Close the figure with its marks, axes and scales too (they are widgets of their own)."""
        if not hasattr(self, "legend"):  # refused by __init__: nothing was built
            return
        for w in (*self.figure.marks, *self.figure.axes, self.row_scale, self.col_scale, self.color_scale,
                  self.grid.tooltip, self.figure, self.legend):
            if w is not None:
                w.close()
        super().close()


def _legend_html(title: str, bins: ColorBins) -> str:
    rows = "".join(
        f"<div style='display:flex;align-items:center;gap:6px;margin:2px 0'>"
        f"<span style='display:inline-block;width:16px;height:16px;background:{c};border:1px solid #bbb'></span>"
        f"<span style='font-variant-numeric:tabular-nums'>{html.escape(label)}</span></div>"
        for label, c in zip(bins.labels, bins.colors, strict=True))
    return (f"<div style='font-size:12px;padding:40px 8px 0 4px;min-width:120px'>"
            f"<b>{html.escape(title)}</b>{rows}</div>")


def _gradient_html(title: str, colors: Sequence[str], values: np.ndarray) -> str:
    """A vertical colour bar, high at the top, labelled with the high, middle and low values."""
    if values.size:
        lo, hi = float(values.min()), float(values.max())
        marks = [hi] if hi == lo else [hi, (lo + hi) / 2, lo]
    else:
        marks = []
    labels = "".join(f"<span>{v:,.3g}</span>" for v in marks)
    bar = f"linear-gradient(to top, {', '.join(colors)})"
    return (f"<div style='font-size:12px;padding:40px 8px 0 4px;min-width:120px'><b>{html.escape(title)}</b>"
            f"<div style='display:flex;gap:6px;margin-top:4px;height:150px'>"
            f"<span style='width:16px;background:{bar};border:1px solid #bbb'></span>"
            f"<div style='display:flex;flex-direction:column;justify-content:space-between;"
            f"font-variant-numeric:tabular-nums'>{labels}</div></div></div>")
