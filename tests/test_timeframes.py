"""One timeframe parser: Binance's interval names (1M a calendar month, 1w from Monday),
pandas durations, ambiguous strings refused in one line; flooring to bar opens."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlab.timeframes import BINANCE_INTERVALS, Timeframe, parse_timeframe

NS = 10**9


@pytest.mark.parametrize("text, canonical, nominal", [
    ("1s", "1s", pd.Timedelta("1s")), ("1m", "1m", pd.Timedelta("1min")), ("5m", "5m", pd.Timedelta("5min")),
    ("15m", "15m", pd.Timedelta("15min")), ("1h", "1h", pd.Timedelta("1h")), ("4h", "4h", pd.Timedelta("4h")),
    ("1d", "1d", pd.Timedelta("1D")), ("1w", "1w", pd.Timedelta("7D")),
    ("30s", "30s", pd.Timedelta("30s")), ("2h", "2h", pd.Timedelta("2h")), ("90min", "90m", pd.Timedelta("90min")),
    ("1h30min", "90m", pd.Timedelta("90min")), ("60min", "1h", pd.Timedelta("1h")), ("7d", "1w", pd.Timedelta("7D")),
])
def test_fixed_lengths(text, canonical, nominal):
    tf = parse_timeframe(text)
    assert tf.text == canonical and tf.nominal == nominal and not tf.is_calendar
    assert parse_timeframe(tf.text) == tf  # the canonical name round-trips


def test_capital_M_is_a_calendar_month_the_binance_way():
    # issue 18 item 5: '1M' was read as one minute
    assert parse_timeframe("1M").is_calendar and parse_timeframe("1M").months == 1
    assert parse_timeframe("1m").nominal == pd.Timedelta("1min")
    assert parse_timeframe("1mo") == parse_timeframe("1month") == parse_timeframe("1M")
    assert parse_timeframe("3M").months == 3
    assert all(parse_timeframe(t).text == t for t in BINANCE_INTERVALS)


@pytest.mark.parametrize("text, needle", [
    ("1h30M", "ambiguous"), ("1.5M", "ambiguous"), ("soon", "not a timeframe"), ("1y", "months"),
    ("0m", "longer than zero"), ("", "empty"), ("-5m", "longer than zero"),
])
def test_bad_timeframes_are_refused_in_one_line(text, needle):
    with pytest.raises(ValueError, match=needle) as err:
        parse_timeframe(text)
    msg = str(err.value)
    assert msg.startswith("timeframe:") and "\n" not in msg and needle in msg


def test_floor_and_end_months_weeks_and_fixed():
    idx = pd.DatetimeIndex(["2024-02-29 23:59:59", "2025-07-13 12:34:56", "2025-12-31 23:59:59.999"], tz="UTC")
    month = parse_timeframe("1M")
    assert month.floor(idx).tolist() == [pd.Timestamp(t, tz="UTC") for t in ("2024-02-01", "2025-07-01", "2025-12-01")]
    assert month.end(idx).tolist() == [pd.Timestamp(t, tz="UTC") for t in ("2024-03-01", "2025-08-01", "2026-01-01")]
    week = parse_timeframe("1w")
    opens = week.floor(idx)
    assert (opens.day_of_week == 0).all() and (opens.time == pd.Timestamp("00:00").time()).all()
    assert opens[1] == pd.Timestamp("2025-07-07", tz="UTC")  # 2025-07-13 is a Sunday
    four = parse_timeframe("4h")
    assert four.floor(pd.Timestamp("2025-07-13 11:59", tz="UTC")) == pd.Timestamp("2025-07-13 08:00", tz="UTC")
    # int64 ns arrays in, int64 ns arrays out; equal to pandas' own floor for fixed sizes
    idx = idx.as_unit("ns")
    ns = idx.asi8
    assert np.array_equal(parse_timeframe("15m").floor(ns), idx.floor("15min").asi8)
    assert parse_timeframe("1d").floor(ns).dtype == np.int64


def test_grid_covers_whole_bars():
    g = parse_timeframe("1M").grid("2025-01-15", "2025-04-02")
    assert g.tolist() == [pd.Timestamp(f"2025-0{m}-01", tz="UTC") for m in (1, 2, 3, 4)]
    assert parse_timeframe("1h").grid("2025-01-01 00:30", "2025-01-01 02:00").size == 3


def test_timeframe_is_frozen_and_describes_itself():
    tf = parse_timeframe("1M")
    with pytest.raises(AttributeError):
        tf.months = 2  # type: ignore[misc]
    assert "calendar month" in tf.summary() and isinstance(tf, Timeframe)
    assert parse_timeframe(pd.Timedelta("5min")) == parse_timeframe("5m")
