"""``screen(workers=N)`` runs the blocks on N threads of the calling process (the kernel
releases the GIL), with results identical to the serial run; the serial part's numba
helpers (longest common stretch, real-bar counts) equal plain references."""

from __future__ import annotations

import os
import threading

import numpy as np
import pandas as pd
import pytest

import quantlab.screen.api as api
from quantlab.screen import core, screen
from quantlab.screen.data import Aligned, align, closes_from_frame
from quantlab.screen.executors import executor, run_blocks
from quantlab.screen.synthetic import planted_universe


def _holey(seed: int, k: int = 24, n: int = 3000) -> pd.DataFrame:
    """A planted universe with holes of every kind: short gaps (filled), long ones (not),
    late listings, early delistings and scattered missing bars."""
    closes, _ = planted_universe(n_symbols=k, n_bars=n, n_pairs=min(4, k // 2), seed=seed)
    rng = np.random.default_rng(seed)
    v = closes.to_numpy().copy()
    for s in range(k):
        for _ in range(rng.integers(0, 8)):
            a = int(rng.integers(0, n))
            v[a:a + int(rng.integers(1, 300 if rng.random() < 0.1 else 8)), s] = np.nan
        if rng.random() < 0.2:
            v[: int(rng.integers(0, n // 3)), s] = np.nan
        if rng.random() < 0.2:
            v[int(rng.integers(2 * n // 3, n)):, s] = np.nan
    v[rng.random(v.shape) < 0.002] = np.nan
    return pd.DataFrame(v, index=closes.index, columns=closes.columns)


@pytest.mark.filterwarnings("ignore:.*min_overlap:quantlab.screen.data.ScreenWarning")
@pytest.mark.parametrize("seed", [0, 1])
def test_threads_equal_serial_bit_for_bit(seed, monkeypatch):
    closes = _holey(seed)
    kw = dict(min_overlap=200, oos=0.3, block_size=7, progress=False)
    want = screen(closes, **kw)
    ran_on: list[str] = []
    run_block = api._run_block

    def recording(*args):
        ran_on.append(threading.current_thread().name)
        return run_block(*args)

    monkeypatch.setattr(api, "_run_block", recording)
    for workers in (1, 2, 3):
        ran_on.clear()
        got = screen(closes, workers=workers, **kw)
        pd.testing.assert_frame_equal(want, got, check_exact=True)
        assert got.attrs == want.attrs
        # the blocks ran on the pool's threads, never on the caller's
        assert ran_on and all(name.startswith("quantlab") for name in ran_on), set(ran_on)
        assert len(set(ran_on)) <= workers
    assert want["selected"].sum() >= 2 and want["oos_pvalue"].notna().sum() >= 2
    assert want["start"].nunique() > 1  # pairs tested on different stretches


def test_the_kernel_releases_the_gil():
    """Threads run blocks at once only because the compiled kernel drops the GIL."""
    if core.HAVE_NUMBA:
        assert core._eg_pairs.targetoptions.get("nogil") is True
    else:  # QUANTLAB_NO_NUMBA=1: the block-numpy kernel, whose numpy calls drop the GIL
        assert os.environ.get("QUANTLAB_NO_NUMBA")


def test_an_error_in_a_block_is_raised_as_it_was():
    def fn(matrix, b):
        if b == 3:
            raise ValueError("block 3: bad")
        return b * matrix.sum()

    logp = np.ones((2, 4))
    with executor(workers=2, threads=True) as pool:
        assert run_blocks(fn, logp, [(b,) for b in range(6) if b != 3], client=pool,
                          progress=False) == [0.0, 8.0, 16.0, 32.0, 40.0]
        with pytest.raises(ValueError, match="block 3: bad"):
            run_blocks(fn, logp, [(b,) for b in range(40)], client=pool, progress=False)
    with pytest.raises(ValueError, match="workers: expected a number of threads >= 1"):
        screen(_holey(0), workers=0)


def _longest_common_stretch(has_a: np.ndarray, has_b: np.ndarray, c0: int) -> tuple[int, int]:
    """Reference: scan the bars; the first of the longest runs where both are True."""
    best, start = (0, 0), None
    both = np.r_[has_a & has_b, False]
    for t, ok in enumerate(both):
        if ok and start is None:
            start = t
        elif not ok and start is not None:
            if t - start > best[1] - best[0]:
                best = (start + c0, t + c0)
            start = None
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_overlap_and_real_bar_counts_equal_a_plain_scan(seed):
    aligned = align(closes_from_frame(_holey(seed, k=12, n=900)), None, 3)
    ii, jj = np.triu_indices(len(aligned.symbols), 1)
    for c0, c1 in ((0, 900), (100, 650), (880, 900), (400, 400)):
        lo, hi = aligned.overlap(ii, jj, c0, c1)
        n_real = aligned.real_overlap(ii, jj, lo, hi)
        has = ~np.isnan(aligned.logp[:, c0:c1])
        for p, (a, b) in enumerate(zip(ii, jj, strict=True)):
            ra = np.flatnonzero(np.diff(np.r_[0, has[a].astype(int), 0]))
            rb = np.flatnonzero(np.diff(np.r_[0, has[b].astype(int), 0]))
            if len(ra) == 2 and len(rb) == 2:  # one stretch each: their common life
                want = (max(ra[0], rb[0]) + c0, max(min(ra[1], rb[1]), max(ra[0], rb[0])) + c0)
            else:
                want = _longest_common_stretch(has[a], has[b], c0)
            assert (lo[p], hi[p]) == want, (c0, c1, a, b)
            both = aligned.real[a, lo[p]:hi[p]] & aligned.real[b, lo[p]:hi[p]]
            assert n_real[p] == int(both.sum())
    # without real-bar flags every bar of the stretch counts
    bare = Aligned(aligned.index, aligned.symbols, aligned.logp, aligned.first, aligned.last)
    lo, hi = bare.overlap(ii, jj)
    assert (bare.real_overlap(ii, jj, lo, hi) == hi - lo).all()


def test_text_prices_are_still_parsed_and_bad_ones_named():
    closes = _holey(0, k=4, n=600)  # two planted pairs
    text = closes.astype(object).where(closes.notna(), None)
    text["S01"] = [None if v is None else repr(v) for v in text["S01"]]
    pd.testing.assert_frame_equal(closes_from_frame(text), closes_from_frame(closes), check_exact=True)
    text.iloc[7, 2] = "n/a"
    with pytest.raises(TypeError, match="closes: every column must hold numeric prices"):
        closes_from_frame(text)
    inf = closes.copy()
    inf.iloc[3, 3] = np.inf
    with pytest.raises(ValueError, match=r"positive and finite.*\['S03'\]"):
        closes_from_frame(inf)
    zero = closes.copy()
    zero.iloc[3, 0] = 0.0
    with pytest.raises(ValueError, match=r"positive and finite.*\['S00'\]"):
        closes_from_frame(zero)
