"""The pair signal: ``PairSpec.evaluate`` on 1M bars for each hedge method, and the
incremental form's cost per closed bar (it runs inside the recorder, once per bar per
pair rule). The reference of an evaluate row is the incremental form fed the same bars
(timed on fewer bars and scaled linearly), so the ratio is what the vectorised path buys.
"""

from __future__ import annotations

import time

import numpy as np
from _table import Row, best_of


def _pair(n: int, seed: int = 0):
    rs = np.random.default_rng(seed)
    x = 60_000 * np.exp(np.cumsum(rs.normal(0, 3e-4, n)))
    s = np.zeros(n)
    e = rs.normal(0, 3.0, n)
    for i in range(1, n):  # a stationary AR(1) spread
        s[i] = 0.95 * s[i - 1] + e[i]
    return 0.045 * x + 20 + s, x


def run(quick: bool) -> list[Row]:
    import pandas as pd

    from quantlab.analytics.pair import HEDGES, PairSpec

    n = 100_000 if quick else 1_000_000
    n_inc = 5_000 if quick else 20_000
    y, x = _pair(n)
    idx = pd.date_range("2024-01-01", periods=n, freq="s", tz="UTC")
    ys, xs = pd.Series(y, idx), pd.Series(x, idx)
    rows: list[Row] = []
    for hedge in HEDGES:
        spec = PairSpec(hedge=hedge, window=300, z_window=300)
        spec.evaluate(ys.iloc[:2_000], xs.iloc[:2_000])  # compile the kernels
        ours = best_of(lambda spec=spec: spec.evaluate(ys, xs), 1 if not quick else 2)
        stream = spec.incremental()
        t0 = time.perf_counter()
        for a, b in zip(y[:n_inc], x[:n_inc], strict=True):
            stream.update(a, b)
        per_bar = (time.perf_counter() - t0) / n_inc
        rows.append(Row("pair", f"PairSpec(hedge={hedge!r}, window=300).evaluate {n // 1000:,}k bars "
                        f"(reference: incremental x{n // n_inc} linear)", ours, "s", per_bar * n,
                        per_bar * n / ours, "< 2 s"))
        rows.append(Row("pair", f"incremental {hedge}: one closed bar (w=300, z=300)", per_bar * 1e6,
                        "us/bar", None, None, "< 200 us (recorder)"))
    return rows
