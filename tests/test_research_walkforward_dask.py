"""The walk-forward on Dask: serial, a LocalCluster of 2 workers and a real `dask scheduler`
with 2 `dask worker` processes on 127.0.0.1 give identical results (bit for bit)."""

from __future__ import annotations

import pandas as pd
import pytest
from test_screen_dask import cluster  # noqa: F401  (the module's scheduler + 2 workers)

from quantlab.research import walk_forward
from quantlab.screen.synthetic import regime_universe

ARGS = dict(formation="1D", trading="6h")


@pytest.fixture(scope="module")
def closes():
    return regime_universe(n_symbols=12, n_bars=3_600, n_throughout=2, n_first_half=2, seed=11)[0]


@pytest.fixture(scope="module")
def serial(closes):
    return walk_forward(closes, **ARGS)


def _same(a, b) -> None:
    pd.testing.assert_frame_equal(a.folds, b.folds, check_exact=True)
    pd.testing.assert_frame_equal(a.trades, b.trades, check_exact=True)
    pd.testing.assert_series_equal(a.equity, b.equity, check_exact=True)
    pd.testing.assert_frame_equal(a.pair_equity, b.pair_equity, check_exact=True)
    assert a.stats == b.stats or all(
        (a.stats[k] == b.stats[k]) or (a.stats[k] != a.stats[k] and b.stats[k] != b.stats[k])
        for k in a.stats)


def test_local_cluster_equals_serial(closes, serial):
    assert len(serial.folds) >= 10
    _same(serial, walk_forward(closes, workers=2, **ARGS))


def test_scheduler_address_equals_serial(cluster, closes, serial):  # noqa: F811
    _same(serial, walk_forward(closes, scheduler=cluster, **ARGS))
