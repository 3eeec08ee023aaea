"""Sequencer: contiguous ids out, gaps asked for, held trades released in order (pure)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from quantlab.recorder import Sequencer


@dataclass(frozen=True)
class T:
    trade_id: int


def ids(trades):
    return [t.trade_id for t in trades]


def test_in_order_and_duplicates():
    s = Sequencer("X")
    for i in (1, 2, 2, 3, 1):
        assert s.push(T(i)) is None
    assert ids(s.drain()) == [1, 2, 3] and s.duplicates == 2
    assert s.drain() == []


def test_gap_holds_later_trades_until_filled():
    s = Sequencer("X", last_id=10)
    assert s.push(T(11)) is None
    assert s.push(T(15)) == (12, 14)
    for i in (16, 17, 13):
        assert s.push(T(i)) is None
    assert ids(s.drain()) == [11] and s.held == 4
    assert s.fill(12, 14, [T(12), T(13), T(14)]) is None
    assert ids(s.drain()) == [12, 13, 14, 15, 16, 17] and s.held == 0


def test_partial_fill_opens_a_smaller_gap_and_give_up_moves_on():
    s = Sequencer("X", last_id=0)
    assert s.push(T(10)) == (1, 9)
    assert s.fill(1, 9, [T(i) for i in range(1, 6)]) == (6, 9)
    assert s.give_up(6, 9) is None
    assert ids(s.drain()) == [1, 2, 3, 4, 5, 10]


def test_a_second_jump_among_held_trades_is_the_next_gap():
    s = Sequencer("X", last_id=0)
    assert s.push(T(3)) == (1, 2)
    s.push(T(7))
    assert s.fill(1, 2, [T(1), T(2)]) == (4, 6)
    assert ids(s.drain()) == [1, 2, 3]
    assert s.fill(4, 6, [T(4), T(5), T(6)]) is None
    assert ids(s.drain()) == [4, 5, 6, 7]


def test_fill_must_match_the_open_gap():
    s = Sequencer("X", last_id=0)
    s.push(T(5))
    with pytest.raises(ValueError, match="open gap"):
        s.fill(1, 2, [])
