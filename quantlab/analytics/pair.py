"""One definition of a pair signal: :class:`PairSpec` (what), :class:`FittedPair` (the state
after a formation window), :class:`PairSignal` (the result) and :class:`PairStream` (the
same signal one closed bar at a time).

Every part of quantlab that shows, trades or alerts on a pair's z-score computes it here::

    spec = PairSpec(hedge="rolling_ols", window=60)          # or "kalman", "ols", ...
    sig = spec.evaluate(eth, btc)                            # PairSignal
    sig.frame                                                # on eth's index:
                                  beta     alpha    spread         z
    2024-08-09 00:00:00+00:00   0.0431    -2.17    0.0412    1.2036
    ...
    stream = spec.incremental(step="1s")                     # feed closed bars
    stream.update(2663.2, 61837.6)                           # -> that bar's row (dict)

Meaning of a row at bar t (``lag`` = L, default 1):

* ``beta``, ``alpha``: the hedge used at bar t, known at the close of bar t - L.
  ``rolling_ols``: OLS ``y ~ alpha + beta x`` over the ``window`` bars ending at t - L;
  ``expanding_ols``: over every bar up to t - L (at least ``window``); ``kalman``: the
  filtered state after bar t - L; ``ols`` / ``huber`` / ``theilsen``: one static fit on the
  ``formation`` bars (the first bars given to :meth:`PairSpec.evaluate`, or those given to
  :meth:`PairSpec.fit`), never on the bars it is applied to.
* ``spread`` = ``y_t - (beta x_t + alpha)`` on the spec's ``prices`` (``"raw"`` or ``"log"``).
* ``z``: ``rolling_ols``, ``expanding_ols`` and the static fits standardise the spread over
  the last ``z_window`` spreads including t (ddof 1); ``kalman`` divides it by its predicted
  standard deviation (the filter's own standardisation; ``z_window`` is not used).

Rows before the signal is defined (warm-up, formation) are NaN.
"""

from __future__ import annotations

import html
import math
import re
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import _validate as v
from . import kernels

#: the hedge methods of a pair signal: the one vocabulary of the package
HEDGES = ("rolling_ols", "expanding_ols", "kalman", "ols", "huber", "theilsen")
#: static fits, estimated once on the formation window
STATIC_HEDGES = ("ols", "huber", "theilsen")
PRICES = ("raw", "log")
#: the package's price convention for hedge ratios (the screener's log-log slope says so)
DEFAULT_PRICES = "raw"
COLUMNS = ("beta", "alpha", "spread", "z")
#: default formation of a Kalman spec when none is given: max(window, this many bars)
KALMAN_MIN_FORMATION = 200

_HALF_LIFE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:hl|half[-_ ]?lives?)\s*$", re.IGNORECASE)
_KALMAN_P0 = 1.0  # initial state covariance (standardised units: beta ~ correlation)
_KALMAN_BOUNDS = (-23.0, 2.0)  # log variances searched by the likelihood fit


def hedge_label(prices: str) -> str:
    """How a hedge ratio on ``prices`` is labelled wherever it is shown."""
    return "log-log" if prices == "log" else "raw prices"


# --------------------------------------------------------------------------------------
# windows: bars, durations, half-life multiples
# --------------------------------------------------------------------------------------
def _window_kind(value: Any, name: str, allow_none: bool = False) -> str:
    if value is None and allow_none:
        return "none"
    if isinstance(value, bool):
        raise TypeError(f"{name}: expected bars (int), a duration such as '1h' or a half-life "
                        f"multiple such as '4hl', got {value!r}")
    if isinstance(value, int | np.integer):
        if value < 2:
            raise ValueError(f"{name}: {value!r} must be at least 2 bars")
        return "bars"
    if isinstance(value, str):
        if _HALF_LIFE.match(value):
            return "halflife"
        try:
            td = pd.Timedelta(value)
        except ValueError:
            raise ValueError(f"{name}: {value!r} is not bars, a duration such as '1h' or a "
                             f"half-life multiple such as '4hl'") from None
        if td <= pd.Timedelta(0):
            raise ValueError(f"{name}: {value!r} must be a positive duration")
        return "duration"
    raise TypeError(f"{name}: expected bars (int), a duration such as '1h' or a half-life "
                    f"multiple such as '4hl', got {value!r}")


def _as_step(step: Any) -> pd.Timedelta | None:
    if step is None:
        return None
    if isinstance(step, str):
        from quantlab.timeframes import parse_timeframe  # the package's one timeframe parser

        return parse_timeframe(step).nominal
    return pd.Timedelta(step)


def _index_step(index: pd.Index | None) -> pd.Timedelta | None:
    if isinstance(index, pd.DatetimeIndex) and len(index) > 1:
        return pd.Timedelta(int(np.median(np.diff(index.as_unit("ns").asi8))), unit="ns")
    return None


def _to_bars(value: Any, name: str, step: pd.Timedelta | None, half_life: float | None,
             minimum: int) -> int:
    kind = _window_kind(value, name)
    if kind == "bars":
        out = int(value)
    elif kind == "duration":
        if step is None or step <= pd.Timedelta(0):
            raise ValueError(f"{name}={value!r} is a duration: give bars on a DatetimeIndex "
                             f"(or step= the bar length), or give {name} in bars")
        out = int(math.ceil(pd.Timedelta(value) / step))
    else:
        k = float(_HALF_LIFE.match(value).group(1))  # type: ignore[union-attr]
        if half_life is None or not math.isfinite(half_life):
            raise ValueError(f"{name}={value!r}: the spread over the formation window does not "
                             f"mean-revert (no finite half-life); give {name} in bars")
        out = int(math.ceil(k * half_life))
    return max(out, minimum)


# --------------------------------------------------------------------------------------
# the spec
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairSpec:
    """A pure definition of the pair signal of ``y`` against ``x`` (see the module docstring).

    hedge      one of ``HEDGES``: ``"rolling_ols"`` (default), ``"expanding_ols"``,
               ``"kalman"``, or a static ``"ols"``, ``"huber"``, ``"theilsen"`` fitted on the
               formation window only.
    window     bars of the rolling regression (minimum bars of the expanding one): an int,
               a duration such as ``"1h"`` (needs a DatetimeIndex or ``step``) or a multiple
               of the half-life of the formation spread such as ``"4hl"``.
    z_window   bars of the z-score (default: ``window``), same forms.
    prices     ``"raw"`` (the package default) or ``"log"``: the hedge is fitted on log prices.
    lag        bars between the estimate of the hedge and its use (>= 1; 0 is in-sample and
               only allowed for the rolling and expanding regressions).
    formation  bars (or a duration) the static fits, the Kalman noise fit and half-life
               windows are estimated on (default: ``window``, and at least
               ``KALMAN_MIN_FORMATION`` = 200 bars for the Kalman noise fit; with ``"4hl"``
               windows it must be given).
    kalman     ``None``: fit the noise variances by maximum likelihood on the formation
               window; or ``(q_beta, q_alpha, r)``: state noise of beta and alpha and the
               observation noise, in standardised units (y and x divided by their formation
               standard deviations), so the same numbers work at any price scale.
    """

    hedge: str = "rolling_ols"
    window: int | str = 60
    z_window: int | str | None = None
    prices: str = DEFAULT_PRICES
    lag: int = 1
    formation: int | str | None = None
    kalman: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        hedge = self.hedge
        if hedge == "ols_expanding":  # the old backtest spelling
            hedge = "expanding_ols"
        object.__setattr__(self, "hedge", v.choice(hedge, "hedge", HEDGES))
        object.__setattr__(self, "prices", v.choice(self.prices, "prices", PRICES))
        _window_kind(self.window, "window")
        _window_kind(self.z_window, "z_window", allow_none=True)
        if self.formation is not None and _window_kind(self.formation, "formation") == "halflife":
            raise ValueError("formation: give bars or a duration, not a half-life multiple")
        if isinstance(self.window, int | np.integer):
            object.__setattr__(self, "window", int(self.window))
            if self.window < 3 and self.hedge in ("rolling_ols", "expanding_ols"):
                raise ValueError(f"window: {self.window!r} must be at least 3 bars for a regression")
        if isinstance(self.z_window, int | np.integer):
            object.__setattr__(self, "z_window", int(self.z_window))
        if isinstance(self.formation, int | np.integer):
            if self.formation < 3:
                raise ValueError(f"formation: {self.formation!r} must be at least 3 bars")
            object.__setattr__(self, "formation", int(self.formation))
        if isinstance(self.lag, bool) or not isinstance(self.lag, int | np.integer) or self.lag < 0:
            raise ValueError(f"lag: {self.lag!r} must be a whole number of bars >= 0 (1: the "
                             f"hedge used at bar t is known at t-1)")
        object.__setattr__(self, "lag", int(self.lag))
        if self.lag == 0 and self.hedge not in ("rolling_ols", "expanding_ols"):
            raise ValueError(f"lag: 0 is in-sample; hedge={self.hedge!r} needs lag >= 1")
        if self.kalman is not None:
            try:
                q = tuple(float(a) for a in self.kalman)
            except (TypeError, ValueError):
                raise ValueError(f"kalman: {self.kalman!r} must be None (fit by maximum "
                                 f"likelihood) or (q_beta, q_alpha, r)") from None
            if len(q) != 3 or not all(math.isfinite(a) and a >= 0 for a in q) or q[2] <= 0:
                raise ValueError(f"kalman: {self.kalman!r} must be (q_beta >= 0, q_alpha >= 0, "
                                 f"r > 0) in standardised units")
            object.__setattr__(self, "kalman", q)
        if self.needs_formation and self.formation is None and (
                _window_kind(self.window, "window") == "halflife"
                or _window_kind(self.z_window, "z_window", True) == "halflife"):
            raise ValueError("a half-life multiple window needs formation= bars (or a duration) "
                             "to measure the half-life on")

    # ---- description
    @property
    def is_static(self) -> bool:
        return self.hedge in STATIC_HEDGES

    @property
    def needs_formation(self) -> bool:
        """True when something is fitted on a formation window before the signal starts."""
        return (self.hedge in STATIC_HEDGES or self.hedge == "kalman"
                or "halflife" in (_window_kind(self.window, "window"),
                                  _window_kind(self.z_window, "z_window", True)))

    @property
    def label(self) -> str:
        """A one-line description, e.g. ``rolling_ols window 60, z 60, raw prices, lag 1``."""
        z = self.window if self.z_window is None else self.z_window
        bits = [f"{self.hedge} window {self.window}"]
        if self.hedge != "kalman":
            bits.append(f"z {z}")
        if self.needs_formation:
            try:
                form: Any = self.formation if self.formation is not None else self.formation_bars()
            except ValueError:  # a duration window: known once the bar length is
                form = (f"max({self.window}, {KALMAN_MIN_FORMATION} bars)" if self.hedge == "kalman"
                        else self.window)
            bits.append(f"formation {form}")
        bits += [hedge_label(self.prices), f"lag {self.lag}"]
        return ", ".join(bits)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["kalman"] is not None:
            d["kalman"] = list(d["kalman"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PairSpec:
        names = {"hedge", "window", "z_window", "prices", "lag", "formation", "kalman"}
        return cls(**{k: val for k, val in d.items() if k in names})

    def replace(self, **changes: Any) -> PairSpec:
        return PairSpec(**{**asdict(self), **changes})

    # ---- resolution
    def formation_bars(self, step: Any = None) -> int:
        """Bars of the formation window (0 when nothing is fitted before the signal)."""
        if not self.needs_formation:
            return 0
        st = _as_step(step)
        if self.formation is not None:
            return _to_bars(self.formation, "formation", st, None, 3)
        if _window_kind(self.window, "window") == "halflife":  # refused in __post_init__
            raise ValueError("formation: needed with a half-life window")
        w = _to_bars(self.window, "window", st, None, 3)
        # the Kalman noise fit needs a few hundred bars to be stable
        return max(w, KALMAN_MIN_FORMATION) if self.hedge == "kalman" else w

    def warmup_bars(self, step: Any = None, half_life_bars: float | None = None) -> int:
        """Bars before the first defined row (an upper bound when windows are half-lives)."""
        st = _as_step(step)
        form = self.formation_bars(st)
        hl = half_life_bars if half_life_bars is not None else form
        w = _to_bars(self.window, "window", st, hl, 3)
        zw = _to_bars(self.window if self.z_window is None else self.z_window, "z_window", st, hl, 2)
        if self.hedge == "kalman":
            return form + self.lag - 1
        if self.is_static:
            return form + self.lag - 1
        return form + w - 1 + self.lag + zw - 1

    # ---- computation
    def fit(self, y_formation: Any, x_formation: Any, *, step: Any = None) -> FittedPair:
        """The state after the formation bars: static beta/alpha, the Kalman state and its
        fitted noise, or the rolling/expanding regression's state. ``evaluate``/``incremental``
        of the result continue from it without refitting."""
        ya, xa, index = v.pair(y_formation, x_formation, 0, "PairSpec.fit")
        st = _as_step(step) or _index_step(index)
        ya, xa = self._transform(ya, xa)
        return _fit(self, ya, xa, st)

    def evaluate(self, y: Any, x: Any, *, step: Any = None) -> PairSignal:
        """The signal on every bar of ``y`` and ``x`` (Series on one index, or arrays).

        When the spec needs a formation window (static hedges, Kalman, half-life windows),
        its first ``formation`` bars are fitted on and their rows are NaN; the rest equals
        ``spec.fit(y[:F], x[:F]).evaluate(y[F:], x[F:])`` and, bar for bar, the stream of
        :meth:`incremental` fed from the first bar.
        """
        ya, xa, index = v.pair(y, x, 1, "PairSpec.evaluate")
        st = _as_step(step) or _index_step(index)
        idx = v.out_index(index, ya.size)
        ta, tx = self._transform(ya, xa)
        form = self.formation_bars(st)
        if form > ya.size:
            from quantlab.errors import InsufficientDataError

            raise InsufficientDataError(
                f"PairSpec(hedge={self.hedge!r}) fits on a formation window of {form} bars; "
                f"got {ya.size} bars")
        fitted = _fit(self, ta[:form], tx[:form], st)
        rows = fitted._run(ta[form:], tx[form:])
        out = np.full((ya.size, 4), np.nan)
        out[form:] = rows
        frame = pd.DataFrame(out, index=idx, columns=list(COLUMNS))
        frame.attrs["prices"] = self.prices
        return PairSignal(spec=self, frame=frame, fitted=fitted)

    def incremental(self, *, step: Any = None) -> PairStream:
        """A stream fed one closed bar at a time from the first bar (formation included)."""
        return PairStream(self, None, _as_step(step))

    def _transform(self, ya: np.ndarray, xa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.prices == "raw":
            return ya, xa
        if (ya <= 0).any() or (xa <= 0).any():
            raise ValueError("prices='log' takes logs of y and x: they must be positive prices")
        return np.log(ya), np.log(xa)


# --------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairSignal:
    """The signal of a :class:`PairSpec` on one pair: ``frame`` (``beta, alpha, spread, z``
    on y's index, NaN where undefined) and the state ``fitted`` on the formation bars."""

    spec: PairSpec
    frame: pd.DataFrame
    fitted: FittedPair | None = field(default=None, repr=False)

    @property
    def z(self) -> pd.Series:
        return self.frame["z"]

    def summary(self) -> str:
        f = self.frame
        ok = f["z"].notna()
        last = f[ok].iloc[-1] if ok.any() else None
        lines = ["Pair signal", "=" * 20, f"spec       {self.spec.label}",
                 f"bars       {len(f)} ({int(ok.sum())} with a z-score)"]
        if last is not None:
            lines += [f"beta       {last['beta']:.6g} ({hedge_label(self.spec.prices)})",
                      f"alpha      {last['alpha']:.6g}",
                      f"spread     {last['spread']:.6g}",
                      f"z          {last['z']:.4f}",
                      f"std(z)     {float(f['z'][ok].std()):.4f}"]
        if self.fitted is not None and self.fitted.noise is not None:
            qb, qa, r = self.fitted.noise
            lines.append(f"kalman     q_beta {qb:.3g}, q_alpha {qa:.3g}, r {r:.3g} "
                         f"(standardised units, {self.fitted.noise_source})")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.summary())}</pre>"

    def __str__(self) -> str:
        return self.summary()


@dataclass(frozen=True)
class FittedPair:
    """The state of a :class:`PairSpec` after its formation bars (transformed prices).

    ``beta``/``alpha``: the static fit (NaN for adaptive hedges); ``noise``: the Kalman
    ``(q_beta, q_alpha, r)`` in standardised units and ``noise_source`` (``"mle"`` or
    ``"given"``); ``window``/``z_window``: resolved bars. ``evaluate`` and ``incremental``
    continue from this state without refitting (the adaptive hedges keep adapting).
    """

    spec: PairSpec
    window: int
    z_window: int
    nobs: int
    beta: float = math.nan
    alpha: float = math.nan
    noise: tuple[float, float, float] | None = None
    noise_source: str = ""
    scale: tuple[float, float, float, float] | None = None  # my, sy, mx, sx (Kalman)
    half_life: float | None = None
    # adaptive state, as plain tuples (the object is frozen; streams copy it)
    tail_y: tuple[float, ...] = ()
    tail_x: tuple[float, ...] = ()
    est_tail: tuple[tuple[float, ...], ...] = ()   # last ``lag`` estimates
    spread_tail: tuple[float, ...] = ()           # last z_window - 1 spreads
    sums: tuple[float, ...] = ()                  # expanding: k, mx, my, sxx, sxy
    kstate: tuple[float, ...] = ()                # kalman: b, a, p00, p01, p11, steps

    def summary(self) -> str:
        lines = ["Fitted pair", "=" * 20, f"spec       {self.spec.label}",
                 f"formation  {self.nobs} bars", f"window     {self.window} bars"]
        if self.spec.is_static:
            lines.append(f"beta       {self.beta:.6g} ({hedge_label(self.spec.prices)})")
            lines.append(f"alpha      {self.alpha:.6g}")
        if self.noise is not None:
            lines.append(f"noise      q_beta {self.noise[0]:.3g}, q_alpha {self.noise[1]:.3g}, "
                         f"r {self.noise[2]:.3g} ({self.noise_source})")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.summary())}</pre>"

    def evaluate(self, y_trading: Any, x_trading: Any) -> PairSignal:
        """Rows for the bars after the formation window, continuing from this state."""
        ya, xa, index = v.pair(y_trading, x_trading, 0, "FittedPair.evaluate")
        ta, tx = self.spec._transform(ya, xa)
        rows = self._run(ta, tx)
        frame = pd.DataFrame(rows, index=v.out_index(index, ya.size), columns=list(COLUMNS))
        frame.attrs["prices"] = self.spec.prices
        return PairSignal(spec=self.spec, frame=frame, fitted=self)

    def incremental(self) -> PairStream:
        """A stream that continues from this state, one closed bar at a time."""
        return PairStream(self.spec, self, None)

    # ---- the batch path
    def _run(self, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        n = y.size
        out = np.full((n, 4), np.nan)
        if n == 0:
            return out
        h = self.spec.hedge
        lag = self.spec.lag
        if h == "kalman":
            return self._run_kalman(y, x)
        if h in STATIC_HEDGES:
            b = np.full(n, self.beta)
            a = np.full(n, self.alpha)
        else:
            ey, ex = np.asarray(self.tail_y), np.asarray(self.tail_x)
            if h == "rolling_ols":
                yy = np.concatenate([ey, y])
                xx = np.concatenate([ex, x])
                if yy.size >= self.window:
                    bb, aa, _ = kernels.rolling_ols(yy, xx, self.window)
                else:
                    bb = aa = np.full(yy.size, np.nan)
                est_b, est_a = bb[ey.size:], aa[ey.size:]
            else:
                est_b, est_a = _expanding(self.sums, y, x, self.window)
            pad = [(math.nan, math.nan)] * max(0, lag - len(self.est_tail))
            pb = np.array([e[0] for e in pad + list(self.est_tail)], dtype=float)
            pa = np.array([e[1] for e in pad + list(self.est_tail)], dtype=float)
            allb = np.concatenate([pb, est_b])
            alla = np.concatenate([pa, est_a])
            # the hedge used at bar i is the estimate after bar i - lag
            b = allb[pb.size - lag: pb.size - lag + n] if lag else est_b
            a = alla[pa.size - lag: pa.size - lag + n] if lag else est_a
        s = y - (b * x + a)
        tail = np.asarray(self.spread_tail, dtype=float)
        z = _rolling_z(np.concatenate([tail, s]), self.z_window)[tail.size:]
        out[:, 0], out[:, 1], out[:, 2], out[:, 3] = b, a, s, z
        return out

    def _run_kalman(self, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        n = y.size
        lag = self.spec.lag
        my, sy, mx, sx = self.scale  # type: ignore[misc]
        qb, qa, r = self.noise  # type: ignore[misc]
        ys = (y - my) / sy
        xs = (x - mx) / sx
        b0, a0, p00, p01, p11, steps = self.kstate
        fb, fa, f00, f01, f11 = kernels.kalman2_filter(ys, xs, qb, qa, r, b0, a0, p00, p01, p11,
                                                       steps == 0)
        prev = np.array(self.est_tail, dtype=float).reshape(-1, 5)
        allst = np.concatenate([prev, np.column_stack([fb, fa, f00, f01, f11])])
        used = allst[prev.shape[0] - lag: prev.shape[0] - lag + n]
        bs, as_ = used[:, 0], used[:, 1]
        e = ys - (bs * xs + as_)
        q = (xs * xs * (used[:, 2] + lag * qb) + 2.0 * xs * used[:, 3]
             + (used[:, 4] + lag * qa) + r)
        out = np.empty((n, 4))
        beta = bs * sy / sx
        out[:, 0] = beta
        out[:, 1] = my + sy * as_ - beta * mx
        out[:, 2] = sy * e
        out[:, 3] = e / np.sqrt(q)
        return out


def _rolling_z(s: np.ndarray, zw: int) -> np.ndarray:
    """(s_t - mean) / std (ddof 1) over the last ``zw`` values including t; NaN in a window
    or a window of identical values gives NaN (``analytics.zscore``'s definition)."""
    if s.size < zw:
        return np.full(s.size, np.nan)
    ser = pd.Series(s)
    roll = ser.rolling(zw, min_periods=zw)
    std = roll.std(ddof=1)
    std = std.where((roll.max() - roll.min()) > 0.0, np.nan)
    return ((ser - roll.mean()) / std).to_numpy()


def _expanding(sums: tuple[float, ...], y: np.ndarray, x: np.ndarray,
               min_periods: int) -> tuple[np.ndarray, np.ndarray]:
    k, mx, my, sxx, sxy = sums if sums else (0.0, 0.0, 0.0, 0.0, 0.0)
    return kernels.expanding_ols_from(y, x, min_periods, k, mx, my, sxx, sxy)[:2]


# --------------------------------------------------------------------------------------
# fitting
# --------------------------------------------------------------------------------------
def _static_fit(hedge: str, y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    from . import hedge as hg

    if hedge == "ols":
        return hg._ols(y, x)
    if hedge == "huber":
        b, a, _ = hg._huber(y, x)
        return b, a
    return hg._theilsen(y, x)


def _half_life(y: np.ndarray, x: np.ndarray) -> float | None:
    if y.size < 10:
        return None
    import warnings

    from . import hedge as hg
    from .stationarity import half_life

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", v.AnalyticsWarning)
        b, a = hg._ols(y, x)
        if not math.isfinite(b):
            return None
        hl = half_life(y - (b * x + a))
    return hl if math.isfinite(hl) else None


def _fit(spec: PairSpec, y: np.ndarray, x: np.ndarray, step: pd.Timedelta | None) -> FittedPair:
    n = int(y.size)
    hl = _half_life(y, x) if spec.needs_formation else None
    w = _to_bars(spec.window, "window", step, hl, 3 if spec.hedge != "kalman" else 2)
    zw = _to_bars(spec.window if spec.z_window is None else spec.z_window, "z_window", step, hl, 2)
    base: dict[str, Any] = dict(spec=spec, window=w, z_window=zw, nobs=n, half_life=hl)
    if spec.is_static:
        if n < 3:
            from quantlab.errors import InsufficientDataError

            raise InsufficientDataError(f"hedge={spec.hedge!r} needs a formation window of at "
                                        f"least 3 bars, got {n}")
        b, a = _static_fit(spec.hedge, y, x)
        s = y - (b * x + a)
        return FittedPair(**base, beta=b, alpha=a, spread_tail=tuple(s[max(0, n - zw + 1):]))
    if spec.hedge == "kalman":
        return _fit_kalman(spec, y, x, base)
    # rolling / expanding: run the batch over the formation and keep what the next bars need
    empty = FittedPair(**base)
    rows = empty._run(y, x) if n else np.empty((0, 4))
    if spec.hedge == "rolling_ols":
        bb, aa, _ = (kernels.rolling_ols(y, x, w) if n >= w
                     else (np.full(n, np.nan), np.full(n, np.nan), 0))
        extra: dict[str, Any] = dict(tail_y=tuple(y[max(0, n - w + 1):]),
                                     tail_x=tuple(x[max(0, n - w + 1):]))
    else:
        bb, aa, *st = kernels.expanding_ols_from(y, x, w, 0.0, 0.0, 0.0, 0.0, 0.0)
        extra = dict(sums=tuple(float(s) for s in st))
    est = [(float(bb[i]), float(aa[i])) for i in range(max(0, n - spec.lag), n)]
    est = [(math.nan, math.nan)] * (spec.lag - len(est)) + est
    return FittedPair(**base, est_tail=tuple(est),
                      spread_tail=tuple(rows[max(0, n - zw + 1):, 2]), **extra)


def kalman_loglik(y: np.ndarray, x: np.ndarray, q_beta: float, q_alpha: float, r: float,
                  p0: float = _KALMAN_P0) -> float:
    """Exact Gaussian log-likelihood of ``y_t = beta_t x_t + alpha_t + e_t`` (random-walk
    state with variances ``q_beta``, ``q_alpha``, ``var(e) = r``, initial state 0 with
    covariance ``p0 * I``; pykalman's convention: no transition before the first bar), from
    the filter's innovations. Equal to pykalman ``KalmanFilter.loglikelihood``."""
    if y.size == 0:
        return -math.inf
    return float(kernels.kalman2_loglik(np.ascontiguousarray(y, dtype=np.float64),
                                        np.ascontiguousarray(x, dtype=np.float64),
                                        float(q_beta), float(q_alpha), float(r), float(p0)))


def fit_kalman_noise(y: np.ndarray, x: np.ndarray) -> tuple[float, float, float]:
    """Maximum-likelihood ``(q_beta, q_alpha, r)`` of the random-walk hedge model on
    standardised ``y``, ``x``: Nelder-Mead over log variances (bounded to
    ``_KALMAN_BOUNDS``) on the exact likelihood, from two starts, keeping the better."""
    from scipy.optimize import minimize

    y = np.ascontiguousarray(y, dtype=np.float64)
    x = np.ascontiguousarray(x, dtype=np.float64)

    def nll(theta: np.ndarray) -> float:
        val = kalman_loglik(y, x, *np.exp(theta))
        return -val if math.isfinite(val) else 1e300

    best = None
    for start in ((-9.0, -9.0, -3.0), (-5.0, -5.0, -1.0)):
        res = minimize(nll, np.array(start), method="Nelder-Mead", bounds=[_KALMAN_BOUNDS] * 3,
                       options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000})
        if best is None or res.fun < best.fun:
            best = res
    return tuple(float(t) for t in np.exp(best.x))  # type: ignore[union-attr,return-value]


def _fit_kalman(spec: PairSpec, y: np.ndarray, x: np.ndarray, base: dict) -> FittedPair:
    from quantlab.errors import InsufficientDataError

    n = y.size
    if n < 10:
        raise InsufficientDataError(f"hedge='kalman' standardises and fits its noise on a "
                                    f"formation window of at least 10 bars, got {n}")
    my, sy, mx, sx = float(y.mean()), float(y.std()), float(x.mean()), float(x.std())
    if sy == 0.0 or sx == 0.0:
        raise ValueError("hedge='kalman': y or x is constant over the formation window; "
                         "give a longer formation=")
    ys, xs = (y - my) / sy, (x - mx) / sx
    if spec.kalman is None:
        # rounded to 1e-9 standardised units: the optimiser then sees identical numbers
        # whatever the price scale, so the fitted noise (and z) is exactly scale-invariant
        noise, source = fit_kalman_noise(np.round(ys, 9), np.round(xs, 9)), "mle"
    else:
        noise, source = spec.kalman, "given"
    qb, qa, r = noise
    fb, fa, f00, f01, f11 = kernels.kalman2_filter(ys, xs, qb, qa, r, 0.0, 0.0, _KALMAN_P0, 0.0,
                                                   _KALMAN_P0, True)
    lag = spec.lag
    st = np.column_stack([fb, fa, f00, f01, f11])[n - lag:]
    est = tuple(tuple(float(a) for a in row) for row in st)
    kstate = (float(fb[-1]), float(fa[-1]), float(f00[-1]), float(f01[-1]), float(f11[-1]),
              float(n))
    return FittedPair(**base, noise=noise, noise_source=source, scale=(my, sy, mx, sx),
                      est_tail=est, kstate=kstate)


# --------------------------------------------------------------------------------------
# the incremental form
# --------------------------------------------------------------------------------------
class PairStream:
    """Feed one closed bar at a time; ``update(y, x)`` returns that bar's row
    (``{"beta", "alpha", "spread", "z"}``, NaN while undefined), equal to
    :meth:`PairSpec.evaluate` on the same bars. Memory is bounded by the windows
    (``expanding_ols`` keeps running sums)."""

    def __init__(self, spec: PairSpec, fitted: FittedPair | None, step: pd.Timedelta | None) -> None:
        self.spec = spec
        self.step = step
        self.bars = 0
        self.fitted: FittedPair | None = None
        self._form: list[tuple[float, float]] = []
        self._formation = spec.formation_bars(step)
        if fitted is not None:
            self._load(fitted)
        elif not spec.needs_formation:
            self._load(_fit(spec, np.empty(0), np.empty(0), step))

    def _load(self, f: FittedPair) -> None:
        self.fitted = f
        self.w, self.zw, self.lag = f.window, f.z_window, self.spec.lag
        self.ty = deque(f.tail_y, maxlen=max(self.w - 1, 1))
        self.tx = deque(f.tail_x, maxlen=max(self.w - 1, 1))
        self.est = deque(f.est_tail, maxlen=max(self.lag, 1))
        self.sp = deque(f.spread_tail, maxlen=max(self.zw - 1, 1))
        self.sums = list(f.sums) if f.sums else [0.0, 0.0, 0.0, 0.0, 0.0]
        self.ks = list(f.kstate)

    def update(self, y: float, x: float) -> dict[str, float]:
        """Take one closed bar (raw prices) and return its row."""
        y, x = float(y), float(x)
        if not (math.isfinite(y) and math.isfinite(x)):
            raise ValueError(f"update: y and x must be finite prices, got {y!r}, {x!r}")
        if self.spec.prices == "log":
            if y <= 0 or x <= 0:
                raise ValueError("prices='log': y and x must be positive prices")
            y, x = math.log(y), math.log(x)
        self.bars += 1
        if self.fitted is None:
            self._form.append((y, x))
            if len(self._form) >= self._formation:
                arr = np.asarray(self._form[-self._formation:])
                try:
                    self._load(_fit(self.spec, arr[:, 0].copy(), arr[:, 1].copy(), self.step))
                except Exception:
                    # e.g. flat legs over the formation: keep the latest bars, retry next bar
                    self._form = self._form[-(self._formation - 1):]
                    raise
                self._form = []
            return dict.fromkeys(COLUMNS, math.nan)
        h = self.spec.hedge
        if h == "kalman":
            return self._kalman(y, x)
        if h in STATIC_HEDGES:
            b, a = self.fitted.beta, self.fitted.alpha
        else:
            est = self._estimate(y, x)
            if self.lag:
                b, a = self.est[0] if len(self.est) == self.lag else (math.nan, math.nan)
                self.est.append(est)
            else:
                b, a = est
        s = y - (b * x + a)
        z = math.nan
        if len(self.sp) == self.zw - 1 and math.isfinite(s):
            win = np.fromiter(self.sp, float, len(self.sp))
            win = np.append(win, s)
            if np.isfinite(win).all() and win.max() > win.min():
                z = float((s - win.mean()) / win.std(ddof=1))
        self.sp.append(s)
        return {"beta": b, "alpha": a, "spread": s, "z": z}

    def _estimate(self, y: float, x: float) -> tuple[float, float]:
        if self.spec.hedge == "rolling_ols":
            out = (math.nan, math.nan)
            if len(self.ty) == self.w - 1:
                ys = np.append(np.fromiter(self.ty, float, len(self.ty)), y)
                xs = np.append(np.fromiter(self.tx, float, len(self.tx)), x)
                mx, my = xs.mean(), ys.mean()
                dx = xs - mx
                sxx = float(dx @ dx)
                tol = 1e-10 * abs(mx)
                if sxx > self.w * tol * tol and sxx > 0.0:
                    b = float(dx @ (ys - my)) / sxx
                    out = (b, float(my - b * mx))
            self.ty.append(y)
            self.tx.append(x)
            return out
        k, mx, my, sxx, sxy = self.sums
        k += 1.0
        dx = x - mx
        dy = y - my
        mx += dx / k
        my += dy / k
        sxx += dx * (x - mx)
        sxy += dx * (y - my)
        self.sums = [k, mx, my, sxx, sxy]
        if k >= self.w and sxx > 0.0:
            b = sxy / sxx
            return (b, my - b * mx)
        return (math.nan, math.nan)

    def _kalman(self, y: float, x: float) -> dict[str, float]:
        f = self.fitted
        my, sy, mx, sx = f.scale  # type: ignore[union-attr,misc]
        qb, qa, r = f.noise  # type: ignore[union-attr,misc]
        ys, xs = (y - my) / sy, (x - mx) / sx
        used = self.est[0]
        lag = self.lag
        e = ys - (used[0] * xs + used[1])
        q = xs * xs * (used[2] + lag * qb) + 2.0 * xs * used[3] + (used[4] + lag * qa) + r
        # one filter step (the kernel's arithmetic)
        b, a, p00, p01, p11, steps = self.ks
        fb, fa, f00, f01, f11 = kernels.kalman2_step(ys, xs, qb, qa, r, b, a, p00, p01, p11,
                                                     steps == 0)
        self.ks = [fb, fa, f00, f01, f11, steps + 1]
        self.est.append((fb, fa, f00, f01, f11))
        beta = used[0] * sy / sx
        return {"beta": beta, "alpha": my + sy * used[1] - beta * mx, "spread": sy * e,
                "z": e / math.sqrt(q)}


__all__ = ["COLUMNS", "DEFAULT_PRICES", "FittedPair", "HEDGES", "PRICES", "PairSignal",
           "PairSpec", "PairStream", "STATIC_HEDGES", "fit_kalman_noise", "hedge_label",
           "kalman_loglik"]
