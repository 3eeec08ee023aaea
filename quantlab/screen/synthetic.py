"""A bar-level universe with planted cointegrated pairs, for tests and benchmarks of the screen
at scale (the demo market the app shows is :mod:`quantlab.sim.demo`).

    closes, planted = planted_universe(n_symbols=60, n_bars=3000, n_pairs=5, seed=1)
    closes  : DataFrame (n_bars, n_symbols) of prices, 1-minute UTC index, columns S00..S59
    planted : list of (y, x) symbol names with  log y = a + b log x + AR(1) spread
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def planted_universe(
    n_symbols: int = 60, n_bars: int = 3000, n_pairs: int = 5, *, seed: int = 1,
    step: float = 0.002, phi: float = 0.95, spread_step: float = 0.002,
) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Independent log random walks (``step`` per bar); in ``n_pairs`` disjoint pairs the
    ``y`` is replaced by ``a + b x + s`` with ``s`` an AR(1) (coefficient ``phi``, shocks
    ``spread_step``): ``phi = 0.95`` is a half-life of ~13.5 bars."""
    rng, logp, chosen, names = _walks(n_symbols, n_bars, n_pairs, seed, step)
    planted = []
    for y, x in chosen:
        logp[y] = _linked(rng, logp[x], phi, spread_step)
        planted.append((names[y], names[x]))
    return _frame(logp, names), planted


def regime_universe(
    n_symbols: int = 20, n_bars: int = 11_520, n_throughout: int = 2, n_first_half: int = 3, *,
    seed: int = 7, step: float = 0.002, phi: float = 0.95, spread_step: float = 0.002,
) -> tuple[pd.DataFrame, list[tuple[str, str]], list[tuple[str, str]]]:
    """A universe whose relationships change half-way (walk-forward tests and demos).

    ``n_throughout`` disjoint pairs are cointegrated on every bar (as in
    :func:`planted_universe`); in ``n_first_half`` more, ``y`` follows ``a + b x + s`` only
    up to bar ``n_bars // 2`` and then wanders on as an independent random walk from where
    it was. The other symbols are independent log random walks.

    Returns ``(closes, throughout, first_half)``: 1-minute UTC closes (columns S00..), and
    the two lists of ``(y, x)`` names.
    """
    rng, logp, chosen, names = _walks(n_symbols, n_bars, n_throughout + n_first_half, seed, step)
    half = n_bars // 2
    throughout, first_half = [], []
    for k, (y, x) in enumerate(chosen):
        linked = _linked(rng, logp[x], phi, spread_step)
        if k < n_throughout:
            logp[y] = linked
            throughout.append((names[y], names[x]))
        else:
            walk = np.cumsum(rng.normal(0.0, step, n_bars - half))
            logp[y, :half] = linked[:half]
            logp[y, half:] = linked[half - 1] + walk
            first_half.append((names[y], names[x]))
    return _frame(logp, names), throughout, first_half


def _walks(n_symbols: int, n_bars: int, n_pairs: int, seed: int, step: float):
    """``(rng, logp, chosen, names)``: independent log random walks (n_symbols, n_bars)
    around e^3, ``n_pairs`` disjoint (y, x) row pairs drawn for planting, and the names."""
    if n_symbols < 2 * n_pairs:
        raise ValueError(f"n_symbols: {n_symbols} is too few for {n_pairs} disjoint pairs")
    rng = np.random.default_rng(seed)
    logp = np.cumsum(rng.normal(0.0, step, (n_symbols, n_bars)), axis=1)
    logp += rng.normal(3.0, 1.0, (n_symbols, 1))
    chosen = rng.permutation(n_symbols)[: 2 * n_pairs].reshape(n_pairs, 2)
    width = 2 if n_symbols <= 100 else 4
    return rng, logp, chosen, [f"S{i:0{width}d}" for i in range(n_symbols)]


def _linked(rng: np.random.Generator, x: np.ndarray, phi: float, spread_step: float) -> np.ndarray:
    """``a + b x + s``: random ``a`` and ``b``, ``s`` an AR(1) spread (``phi``, shocks
    ``spread_step``)."""
    shocks = np.asarray(rng.normal(0.0, spread_step, x.shape[0]))
    s = np.empty(x.shape[0])
    s[0] = shocks[0]
    for t in range(1, x.shape[0]):
        s[t] = phi * s[t - 1] + shocks[t]
    a, b = float(rng.normal(0.0, 0.5)), float(rng.uniform(0.5, 1.5))
    return a + b * x + s


def _frame(logp: np.ndarray, names: list[str]) -> pd.DataFrame:
    index = pd.date_range("2025-01-01", periods=logp.shape[1], freq="1min", tz="UTC", name="time")
    return pd.DataFrame(np.exp(logp.T), index=index, columns=names)
