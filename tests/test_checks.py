"""One parser of a user's number: a fault spec, an alert rule and the CLI refuse a non-number
or NaN/inf with the same one line naming the argument."""

from __future__ import annotations

import pytest

from quantlab.alerts.rules import MoveRule, PriceRule
from quantlab.checks import finite_number
from quantlab.sim.faults import parse_faults


def test_a_finite_number_from_text_or_a_number():
    assert finite_number("2.5", "x") == 2.5
    assert finite_number(" 1e-8 ", "x") == 1e-8  # SHIB-sized values survive
    assert finite_number(100_000, "x") == 100_000.0


@pytest.mark.parametrize("value, message", [
    ("abc", "--above level: 'abc' is not a number"),
    (None, "--above level: None is not a number"),
    ("nan", "--above level: 'nan' must be a finite number"),
    (float("inf"), "--above level: inf must be a finite number"),
])
def test_a_non_number_is_one_line_naming_the_argument(value, message):
    with pytest.raises(ValueError) as err:
        finite_number(value, "--above level")
    assert str(err.value) == message


def test_a_bool_is_not_a_number():
    with pytest.raises(TypeError, match="expected a number, got True"):
        finite_number(True, "level")


@pytest.mark.parametrize("build, message", [
    (lambda: parse_faults("drop=abc"), "faults: drop: 'abc' is not a number"),
    (lambda: parse_faults("history_lag=inf"), "faults: history_lag: 'inf' must be a finite number"),
    (lambda: parse_faults("stall=x@3"), "faults: stall duration: 'x' is not a number"),
    (lambda: PriceRule(id="r", symbol="BTCUSDT", op="below", level="nan"),
     "--below level: 'nan' must be a finite number"),
    (lambda: MoveRule(id="m", symbol="BTCUSDT", pct="two"), "--move percent: 'two' is not a number"),
])
def test_fault_specs_and_alert_rules_share_the_parser(build, message):
    with pytest.raises(ValueError) as err:
        build()
    assert str(err.value) == message
