"""A tiny result table shared by the benchmark modules.

Every benchmark module ``benchmarks/bench_*.py`` exposes ``run(quick: bool) -> list[Row]``;
``benchmarks/run.py`` finds them by that name, runs each in its own process and prints one
table. A row compares our timing with a reference timed in the same run, so the ratio is
meaningful on a noisy machine. A row whose quick-run size no longer measures what its label
says sets ``smoke=True`` (the table marks it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Row:
    area: str
    what: str
    value: float
    unit: str
    reference: float | None = None  # the reference's value in the same unit
    ratio: float | None = None  # >1 means better than the reference
    goal: str = ""
    smoke: bool = False  # a quick-run figure that is not what the label names at full size

    def goal_met(self) -> str:
        return self.goal


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best wall-clock seconds of ``repeat`` calls (the least noisy estimate)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best
