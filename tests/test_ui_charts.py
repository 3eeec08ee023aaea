"""Chart building blocks: decimation keeps the envelope, times reach bqplot as datetime64,
updates are bounded, batched and skipped when nothing changed, follow-live resets pan/zoom."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from quantlab.ui.charts import (
    HeatMap,
    TimeChart,
    decimate,
    minmax_indices,
    time_format,
    to_datetime64,
)


def test_minmax_keeps_every_bucket_extreme_and_the_ends():
    rng = np.random.default_rng(3)
    y = rng.normal(size=100_003).cumsum()
    y[54_321] = 1e6  # a one-point spike must survive
    idx = minmax_indices(y, 2_000)
    assert len(idx) <= 2_002 and np.all(np.diff(idx) > 0)
    assert idx[0] == 0 and idx[-1] == len(y) - 1
    assert 54_321 in idx and y[idx].min() == y.min()
    # brute force: each bucket's min and max are kept
    edges = np.linspace(0, len(y), 1_001).astype(int)
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        seg = y[a:b]
        assert a + int(np.argmin(seg)) in idx and a + int(np.argmax(seg)) in idx


def test_minmax_small_input_nan_and_bad_arguments():
    assert list(minmax_indices(np.arange(5.0), 10)) == [0, 1, 2, 3, 4]
    y = np.arange(1000.0)
    y[:400] = np.nan
    idx = minmax_indices(y, 100)
    assert np.isfinite(y[idx[1:]]).all()  # NaN only ever as the forced first point
    with pytest.raises(ValueError, match="n_out"):
        minmax_indices(y, 2)


def test_decimate_shares_points_between_series():
    x = np.arange(50_000)
    a = np.sin(x / 300.0)
    b = np.cos(x / 77.0)
    xd, (ad, bd) = decimate(x, [a, b], 3_000)
    assert len(xd) <= 3_000 + 4 and len(ad) == len(bd) == len(xd)
    assert ad.max() == a.max() and bd.min() == b.min()


def test_times_go_to_bqplot_as_utc_datetime64_ms():
    idx = pd.DatetimeIndex(["2024-08-09 00:00:01.234", "2024-08-09 00:00:02"], tz="UTC")
    out = to_datetime64(idx.tz_convert("Europe/Paris"))
    assert out.dtype == np.dtype("datetime64[ms]")
    assert str(out[0]) == "2024-08-09T00:00:01.234"


def test_time_format_fits_the_span():
    assert time_format(np.timedelta64(300, "s")) == "%H:%M:%S"
    assert time_format(np.timedelta64(2, "h")) == "%H:%M"
    assert time_format(np.timedelta64(10, "D")) == "%m-%d %H:%M"


def _series(n: int):
    idx = pd.date_range("2024-08-09", periods=n, freq="s", tz="UTC")
    return idx, np.random.default_rng(0).normal(size=n).cumsum() + 100


def test_update_is_bounded_typed_and_skipped_when_unchanged():
    chart = TimeChart("t", ["close"], max_points=1_000)
    idx, y = _series(86_400)  # a day of 1 s bars
    assert chart.update(idx, [y])
    assert chart.lines.x.dtype == np.dtype("datetime64[ms]")
    assert chart.lines.y.shape[-1] == len(chart.lines.x) <= 1_002
    assert chart.points_sent <= 1_002 and len(chart.points.x) <= 400
    assert chart.lines.y.max() == pytest.approx(y.max())
    assert not chart.update(idx, [y])  # same data: no message
    assert chart.update(idx, [y], force=True)
    with pytest.raises(ValueError, match="expected 1 series"):
        chart.update(idx, [y, y])
    with pytest.raises(ValueError, match="values for"):
        chart.update(idx, [y[:-1]])
    with pytest.raises(ValueError, match="max_points"):
        TimeChart("t", ["a"], max_points=20_000)


def test_one_message_per_widget_per_update():
    chart = TimeChart("t", ["close"], bands={"+entry": 2.0, "-entry": -2.0})
    idx, y = _series(5_000)
    sent = []
    for w in (chart.lines, chart.points, chart.band_lines):
        w.send_state = (lambda key=None, w=w: sent.append(w))  # type: ignore[method-assign]
    chart.update(idx, [y])
    assert len(sent) == 3


def test_pan_switches_follow_live_off_and_follow_resets_the_scales():
    chart = TimeChart("t", ["close"])
    idx, y = _series(100)
    chart.update(idx, [y])
    chart.x_scale.min = np.datetime64("2024-08-09T00:00:10")  # what PanZoom writes
    assert chart.follow.value is False
    chart.update(idx[:-1], [y[:-1]])
    assert chart.x_scale.min is not None  # the user's view is kept
    chart.follow.value = True
    assert chart.x_scale.min is None and chart.x_scale.max is None


def test_bands_are_horizontal_lines_over_the_data():
    chart = TimeChart("z", ["z"], bands={"+entry": 2.0, "-entry": -2.0})
    idx, y = _series(50)
    chart.update(idx, [y])
    assert chart.band_lines.y.tolist() == [[2.0, 2.0], [-2.0, -2.0]]
    assert chart.band_lines.x[0] == chart.lines.x[0]


def test_heatmap_needs_two_by_two():
    hm = HeatMap("h", row_label="entry", column_label="window", value_label="Sharpe")
    m = pd.DataFrame([[1.0, 2.0], [3.0, np.nan], [5.0, 6.0]], index=[1.5, 2.0, 2.5], columns=[60, 120])
    hm.update(m)
    assert hm.grid.row.tolist() == ["1.5", "2.0", "2.5"] and hm.grid.color.shape == (3, 2)
    with pytest.raises(ValueError, match="at least 2 rows"):
        hm.update(pd.DataFrame([[1.0]]))
    hm.close()


def test_hovered_point_is_written_out_with_time_and_value():
    chart = TimeChart("t", ["close"], y_label="price (USDT)")
    idx, y = _series(100)
    chart.update(idx, [y])
    chart.points.hovered_point = 10  # what the page sets under the mouse
    t = pd.Timestamp(chart.points.x[10]).tz_localize("UTC")
    assert f"{t:%Y-%m-%d %H:%M:%S}.000 UTC" in chart.readout.value
    assert f"price (USDT) <b>{chart.points.y[10]:.2f}</b>" in chart.readout.value


def test_pan_zoom_and_hover_are_modes():
    chart = TimeChart("t", ["close"])
    assert chart.figure.interaction is None  # hover: the marks get the mouse
    chart.mode.value = "pan/zoom"
    assert chart.figure.interaction is chart.panzoom
    chart.mode.value = "hover"
    assert chart.figure.interaction is None


def test_scale_limits_from_the_page_are_understood():
    """After a pan the page sends ISO times with a trailing Z (bqscales alone fails on them)."""
    chart = TimeChart("t", ["close"])
    chart.x_scale.set_state({"min": "2024-08-09T00:00:10.000Z", "max": "2024-08-09T00:01:00.000Z"})
    assert chart.x_scale.min == pd.Timestamp("2024-08-09 00:00:10").to_pydatetime()
    assert chart.follow.value is False
    chart.x_scale.set_state({"min": "2024-08-09T00:00:10.000000"})  # bqplot's own format
    assert chart.x_scale.min.second == 10


def test_every_time_axis_reads_24_hour_utc_from_the_start():
    """The drawdown chart showed d3's default 12-hour ticks ("06 PM") next to the equity
    chart's 17:15: every chart carries a 24-hour format from construction, one definition."""
    from quantlab.ui.charts import TIME_FORMATS

    charts = [TimeChart("equity", ["equity"], live=False), TimeChart("dd", ["dd"], fill=True, live=False),
              TimeChart("price", ["close"])]
    for chart in charts:
        assert chart.axis_x.tick_format in TIME_FORMATS
        assert "%I" not in chart.axis_x.tick_format and "%p" not in chart.axis_x.tick_format
    idx, y = _series(7_200)  # two hours
    for chart in charts:
        chart.update(idx, [y])
    assert {c.axis_x.tick_format for c in charts} == {"%H:%M"}


def test_value_axes_have_few_round_ticks_for_their_height():
    """180 px of rolling correlation carried ten overlapping tick labels (0.44, 0.46, ... 0.62)."""
    from quantlab.ui.charts import nice_ticks

    idx, _ = _series(3_000)
    rho = 0.53 + 0.09 * np.sin(np.arange(3_000) / 200.0)  # 0.44 .. 0.62
    small = TimeChart("corr", ["corr"], height="180px")
    big = TimeChart("z", ["z"], height="400px")
    small.update(idx, [rho])
    big.update(idx, [rho])
    ticks = np.asarray(small.axis_y.tick_values)
    assert 2 <= len(ticks) <= 3 and len(ticks) * 30 <= 180 - 76  # >= 30 px a label
    assert len(big.axis_y.tick_values) > len(ticks)
    assert ticks.min() >= rho.min() and ticks.max() <= rho.max()
    step = np.diff(ticks)[0]
    assert step == pytest.approx(0.1) and np.allclose(ticks / step, np.round(ticks / step))  # round values
    # a pan/zoom on the value axis: ticks for the new view
    small.y_scale.min, small.y_scale.max = 0.50, 0.52
    assert np.asarray(small.axis_y.tick_values).tolist() == pytest.approx([0.50, 0.51, 0.52])
    assert nice_ticks(-4.4, 4.77, 6).tolist() == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert nice_ticks(8168.24, 10094.29, 6).tolist() == [8500.0, 9000.0, 9500.0, 10000.0]
    assert nice_ticks(-18.7, 1.32, 2).tolist() == [-10.0, 0.0]
    assert nice_ticks(-45.4, 0.0, 2).tolist() == [-40.0, -20.0, 0.0]  # not a lone "0"
    assert nice_ticks(1.0, 1.0, 3).tolist() == [1.0]


def test_binned_heatmap_colours_are_pvalue_classes_with_a_legend():
    from quantlab.ui.charts import PVALUE_BINS

    hm = HeatMap("q", row_label="y", column_label="x", value_label="q-value", bins=PVALUE_BINS)
    m = pd.DataFrame([[np.nan, 0.0004, 0.03], [0.0004, np.nan, 0.5], [0.03, 0.5, np.nan]],
                     index=list("abc"), columns=list("abc"))
    hm.update(m)
    assert hm.grid.color[0, 1] == 0 and hm.grid.color[0, 2] == 2 and hm.grid.color[1, 2] == 4
    # the colour axis (whose labels overlapped) is replaced by a legend in words
    assert not any(type(a).__name__ == "ColorAxis" for a in hm.figure.axes)
    for text in ("q-value", "&lt; 0.001", "0.01 – 0.05", "≥ 0.1"):
        assert text in hm.legend.value
    # exact edges go to the upper class: 0.05 is not "< 0.05"
    assert hm.classify(np.array([0.001, 0.05, 1.0])).tolist() == [1, 3, 4]
    hm.close()


def test_continuous_heatmap_legend_has_three_labels_and_blank_cells():
    hm = HeatMap("h", row_label="entry", column_label="window", value_label="Sharpe")
    assert not any(type(a).__name__ == "ColorAxis" for a in hm.figure.axes)
    hm.update(pd.DataFrame([[1.0, 2.0], [3.0, -1130.0]], index=[1, 2], columns=[60, 120]))
    labels = re.findall(r"<span>([^<]*)</span>", hm.legend.value)
    assert labels == ["3", "-564", "-1.13e+03"] and "Sharpe" in hm.legend.value
    hm.update(pd.DataFrame([[0.0, 0.0], [0.0, np.nan]], index=[1, 2], columns=[60, 120]))
    assert re.findall(r"<span>([^<]*)</span>", hm.legend.value) == ["0"]  # one label, not a pile
    hm.close()
    with pytest.raises(ValueError, match="scheme"):
        HeatMap("h", row_label="a", column_label="b", value_label="c", scheme="viridis")


def test_cells_without_a_value_are_not_painted_black():
    """bqplot paints NaN with the colour scale's black; the p-value grid's diagonal was black."""
    from quantlab.ui.charts import PVALUE_BINS

    hm = HeatMap("q", row_label="y", column_label="x", value_label="q-value", bins=PVALUE_BINS)
    hm.update(pd.DataFrame([[np.nan, 0.5], [0.5, np.nan]], index=list("ab"), columns=list("ab")))
    assert np.isfinite(hm.grid.color).all()
    blank = hm.color_scale.colors[int(hm.grid.color[0, 0])]
    assert blank == "#ffffff" and blank not in PVALUE_BINS.colors
    assert hm.color_scale.max == len(hm.color_scale.colors) - 1
    hm.close()


def test_value_labels_show_every_round_tick_exactly():
    """A SHIBUSDT spread (~1e-8 USDT) was labelled 0.00, 0.00, 0.00. The label format is set once
    (d3 ",.6~r": six significant digits, trailing zeros trimmed), so every tick must be exact
    within six significant digits."""
    from quantlab.ui.charts import AUTO_VALUE_FORMAT

    idx, _ = _series(500)
    cases = {"spread": 2e-8 * np.sin(np.arange(500) / 30.0),
             "equity": 10_000 + np.arange(500.0) * 3.7,
             "btc": 100_412.37 + np.cumsum(np.random.default_rng(1).normal(0, 5, 500)),
             "rho": 0.53 + 0.09 * np.sin(np.arange(500) / 50.0)}
    for name, y in cases.items():
        chart = TimeChart(name, [name], height="200px")
        assert chart.axis_y.tick_format == AUTO_VALUE_FORMAT
        chart.update(idx, [y])
        ticks = np.asarray(chart.axis_y.tick_values)
        assert len(ticks) >= 2, name
        assert all(float(f"{t:.6g}") == t for t in ticks), (name, ticks)
        assert chart.axis_y.tick_format == AUTO_VALUE_FORMAT  # never changed after construction
    chart.points.hovered_point = 7  # the read-out is finer than the ticks
    assert f"{chart.points.y[7]:,.4f}" in chart.readout.value
    spread = TimeChart("spread", ["spread"])
    spread.update(idx, [cases["spread"]])
    spread.points.hovered_point = 7
    assert f"{spread.points.y[7]:,.10f}" in spread.readout.value
    fixed = TimeChart("BTC", ["close"], y_format=",.2f")
    assert fixed.axis_y.tick_format == ",.2f"  # a given format is kept


def test_long_value_labels_have_room_beside_the_axis_title():
    """SHIB's 0.00001015 ran into the axis title (62 px from the axis)."""
    chart = TimeChart("SHIB", ["close"], y_format=",.8f")
    offset = int(chart.axis_y.label_offset.removesuffix("px"))
    for label in ("0.00001015", "100,500.00", "-0.00000002"):
        assert 7 * len(label) + 10 <= offset  # ~7 px a character at the axis font size
    assert chart.figure.fig_margin["left"] >= offset + 20
