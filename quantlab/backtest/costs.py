"""Every cost assumption of a backtest in one frozen object: :class:`Costs`.

::

    from quantlab.backtest import Costs
    costs = Costs(borrow_annual=0.05,                       # 5 %/yr on a short spot leg
                  funding={"um:BTCUSDT": funding_table})    # per perpetual leg
    backtest.run(spot, perp, costs=costs, spec=...)         # spot.name "BTCUSDT", perp "um:BTCUSDT"

What each cost is (the engine, :mod:`quantlab.backtest.engine`, applies them):

* **fees** — every fill pays ``fee rate x |units| x fill price``; the rate is the leg's
  market's (``spot``, ``um``, ``cm``) maker or taker rate (``liquidity``; the backtest fills
  at bar prices like a market order, so ``taker`` by default). Defaults are Binance's VIP 0
  rates: spot 10 bps maker and taker (https://www.binance.com/en/fee/schedule; also
  nautilus_trader's ``BINANCE_SPOT_FEE_DEFAULT`` = 0.001), USD-M and COIN-M 2 bps maker /
  5 bps taker ("Fee Schedule of Binance Futures",
  https://www.binance.com/en/support/faq/360033544231, checked 2026-11). A fee tier is the
  ``fees`` parameter: ``Costs(fees={"um": USDM_VIP_BPS[3]})``.
* **slippage** — every fill is ``slippage_bps`` worse than the bar's price (buys higher,
  sells lower); the cost reported is ``|units| x price x slippage``.
* **borrow** — a short *spot* leg borrows the coin: interest ``borrow_annual / periods per
  year`` (simple, per bar) on the short units held over the bar, valued at the bar's close.
  Perpetual legs never borrow; a long spot leg costs nothing.
* **funding** — a perpetual leg (``um:``/``cm:``) pays ``units x mark price x rate`` at each
  funding time (units signed: a long pays when the rate is positive, a short receives; a
  negative rate reverses both). The rates are a table per perpetual symbol, as Binance's
  ``/fapi/v1/fundingRate`` returns them (``fundingTime``, ``fundingRate``, ``markPrice``), as
  a store holds them (``funding_time``, ``funding_rate``, ``mark_price``), as the
  data.binance.vision archive has them (``calc_time``, ``last_funding_rate``), or simply a
  Series of rates indexed by funding time. Without a mark price, the leg's last bar close at
  or before the funding time is used.

Bars are labelled by their open time (as :func:`quantlab.closes` gives them) and a bar's
price is its close. A funding time T with ``index[t] <= T < index[t+1]`` is paid by the
position held during bar t (the one filled at bar t-1's close, which precedes T) and booked
at bar t. So a trade whose fills are on bars e (entry) and x (exit) pays every funding time
in ``[index[e+1], index[x+1])``: one at the open of its entry bar is not paid (the entry
fills at that bar's close), one at the open of its exit bar is.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

#: Binance VIP 0 fee rates per market, ``(maker_bps, taker_bps)`` (sources in the docstring)
DEFAULT_FEES_BPS: Mapping[str, tuple[float, float]] = MappingProxyType({
    "spot": (10.0, 10.0),
    "um": (2.0, 5.0),
    "cm": (2.0, 5.0),
})

#: Binance USD-M VIP tiers, ``(maker_bps, taker_bps)`` (Binance futures fee schedule, as
#: documented in nautilus_trader ``crates/adapters/binance/src/common/fees.rs``)
USDM_VIP_BPS: Mapping[int, tuple[float, float]] = MappingProxyType({
    0: (2.0, 5.0), 1: (1.6, 4.0), 2: (1.4, 3.5), 3: (1.2, 3.2), 4: (1.0, 3.0),
    5: (0.8, 2.7), 6: (0.6, 2.5), 7: (0.4, 2.2), 8: (0.2, 2.0), 9: (0.0, 1.7),
})

LIQUIDITY = ("taker", "maker")
PERPETUAL_MARKETS = ("um", "cm")

_TIME_COLUMNS = ("funding_time", "fundingTime", "calc_time", "time", "timestamp")
_RATE_COLUMNS = ("funding_rate", "fundingRate", "last_funding_rate", "rate")
_MARK_COLUMNS = ("mark_price", "markPrice", "mark")


def _bps(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or math.isnan(v):
        raise TypeError(f"{name} must be a number of basis points, got {v!r}")
    bps = float(v)
    if not 0 <= bps < 10_000:
        raise ValueError(f"{name} must be in [0, 10000) basis points, got {v!r}")
    return bps


def _fee_pair(market: str, v: Any) -> tuple[float, float]:
    if isinstance(v, numbers.Real) and not isinstance(v, bool):
        b = _bps(f"fees[{market!r}]", v)
        return (b, b)
    try:
        maker, taker = v
    except (TypeError, ValueError):
        raise TypeError(f"fees[{market!r}] must be (maker_bps, taker_bps) or one number of "
                        f"basis points, got {v!r}") from None
    return (_bps(f"fees[{market!r}] maker", maker), _bps(f"fees[{market!r}] taker", taker))


def _utc_index(values: Any, what: str) -> pd.DatetimeIndex:
    idx = pd.Index(values)
    if pd.api.types.is_numeric_dtype(idx.dtype):  # Binance REST: epoch milliseconds
        idx = pd.to_datetime(idx.to_numpy(dtype="int64"), unit="ms", utc=True)
    try:
        idx = pd.DatetimeIndex(idx)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: funding times must be timestamps (or epoch milliseconds), "
                         f"got {idx.dtype}") from None
    return idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")


def funding_table(data: Any, name: str = "funding") -> pd.DataFrame:
    """One perpetual's funding events as ``DataFrame(index=funding time UTC, columns=[rate,
    mark])`` (``mark`` NaN where not given), sorted, from any of the shapes in the module
    docstring::

        funding_time                 rate       mark
        2026-11-01 00:00:00+00:00    0.000100   69120.5
        2026-11-01 08:00:00+00:00   -0.000032   69410.0
    """
    if isinstance(data, pd.Series):
        times, rate, mark = data.index, data.to_numpy(dtype=float), None
    elif isinstance(data, pd.DataFrame):
        cols = {str(c): c for c in data.columns}
        tcol = next((cols[c] for c in _TIME_COLUMNS if c in cols), None)
        rcol = next((cols[c] for c in _RATE_COLUMNS if c in cols), None)
        mcol = next((cols[c] for c in _MARK_COLUMNS if c in cols), None)
        if rcol is None:
            raise ValueError(f"{name}: no funding-rate column; expected one of "
                             f"{', '.join(_RATE_COLUMNS)} (columns: {list(data.columns)})")
        times = data[tcol] if tcol is not None else data.index
        rate = pd.to_numeric(data[rcol], errors="coerce").to_numpy(dtype=float)
        mark = None if mcol is None else pd.to_numeric(data[mcol], errors="coerce").to_numpy(
            dtype=float)
    else:
        raise TypeError(f"{name} must be a Series of funding rates indexed by funding time or "
                        f"a DataFrame with funding_time, funding_rate[, mark_price] columns, "
                        f"got {type(data).__name__}")
    idx = _utc_index(times, name)
    if mark is None:
        mark = np.full(len(rate), np.nan)
    bad = ~np.isfinite(rate)
    if bad.any():
        raise ValueError(f"{name}: funding rate at {idx[int(np.argmax(bad))]} is not a number "
                         f"({int(bad.sum())} such rows): drop them first")
    if ((mark <= 0) & np.isfinite(mark)).any():
        raise ValueError(f"{name}: mark prices must be positive")
    out = pd.DataFrame({"rate": rate, "mark": mark}, index=idx)
    out.index.name = "funding_time"
    out = out.sort_index()
    if not out.index.is_unique:
        raise ValueError(f"{name}: funding time {out.index[out.index.duplicated()][0]} appears "
                         "twice; one rate per funding time")
    return out


@dataclass(frozen=True, eq=False)
class Costs:
    """The cost assumptions of a backtest (fees, slippage, borrow, funding).

    Parameters
    ----------
    fees : mapping, optional
        ``{market: (maker_bps, taker_bps)}`` (or one number for both) overriding the Binance
        VIP 0 defaults :data:`DEFAULT_FEES_BPS` market by market; e.g. a USD-M VIP 3 account:
        ``fees={"um": USDM_VIP_BPS[3]}``.
    liquidity : "taker" or "maker"
        Which rate the fills pay (default taker: the backtest fills at bar prices).
    slippage_bps : float
        Every fill this much worse than the bar's price.
    borrow_annual : float
        Annual interest on a short spot leg (0.05 = 5 %/yr), accrued per bar on the short
        units at the bar's close. Binance margin rates change hourly per coin: default 0
        (free), so pass the rate you expect to pay.
    funding : mapping, optional
        ``{symbol: rates}`` for perpetual legs (``"um:BTCUSDT"``; ``"y"``/``"x"`` name a leg
        directly); ``rates`` in any shape :func:`funding_table` reads, or ``None`` to leave
        that leg's funding out on purpose (a perpetual leg without an entry warns). ``backtest.run(...,
        funding=...)`` adds to it.

    ``Costs()`` is Binance VIP 0 taker fees, no slippage, free borrowing, and no funding.
    """

    fees: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    liquidity: str = "taker"
    slippage_bps: float = 0.0
    borrow_annual: float = 0.0
    funding: Mapping[str, pd.DataFrame | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.fees, Mapping):
            raise TypeError(f"fees must map a market (spot, um, cm) to (maker_bps, taker_bps), "
                            f"got {self.fees!r}")
        merged = dict(DEFAULT_FEES_BPS)
        for market, v in self.fees.items():
            if market not in DEFAULT_FEES_BPS:
                raise ValueError(f"fees: unknown market {market!r}; markets are "
                                 f"{', '.join(DEFAULT_FEES_BPS)}")
            merged[market] = _fee_pair(market, v)
        object.__setattr__(self, "fees", MappingProxyType(merged))
        if self.liquidity not in LIQUIDITY:
            raise ValueError(f"liquidity must be 'taker' or 'maker', got {self.liquidity!r}")
        object.__setattr__(self, "slippage_bps", _bps("slippage_bps", self.slippage_bps))
        b = self.borrow_annual
        if isinstance(b, bool) or not isinstance(b, numbers.Real) or not (0 <= b < 10):
            raise ValueError(f"borrow_annual must be an annual rate in [0, 10) (0.05 = 5 %/yr), "
                             f"got {b!r}")
        object.__setattr__(self, "borrow_annual", float(b))
        object.__setattr__(self, "funding", MappingProxyType(_funding_map(self.funding)))

    @classmethod
    def flat(cls, fee_bps: float | None = None, slippage_bps: float = 0.0) -> Costs:
        """The older ``fee_bps``/``slippage_bps`` arguments: one fee for every fill (default
        the spot taker rate)."""
        fee = _bps("fee_bps", DEFAULT_FEES_BPS["spot"][1] if fee_bps is None else fee_bps)
        return cls(fees={m: (fee, fee) for m in DEFAULT_FEES_BPS}, slippage_bps=slippage_bps)

    def fee_bps(self, market: str) -> float:
        """The fee per fill, in basis points, of a leg on ``market``."""
        maker, taker = self.fees[market]
        return taker if self.liquidity == "taker" else maker

    def with_funding(self, funding: Mapping[str, Any] | None) -> Costs:
        """A copy with more funding tables (``funding`` wins on the same key)."""
        if not funding:
            return self
        return replace(self, fees=dict(self.fees), funding={**self.funding, **funding})

    @property
    def label(self) -> str:
        """One line: ``taker fees spot 10 / um 5 bp, slippage 0 bp, borrow 0 %/yr, funding
        um:BTCUSDT (90 events)``."""
        fees = " / ".join(f"{m} {self.fee_bps(m):g}" for m in DEFAULT_FEES_BPS)
        fund = ", ".join(f"{k} ({'not counted' if v is None else f'{len(v)} events'})"
                         for k, v in self.funding.items()) or "none"
        return (f"{self.liquidity} fees {fees} bp, slippage {self.slippage_bps:g} bp, "
                f"borrow {self.borrow_annual:.2%}/yr, funding {fund}")

    def __repr__(self) -> str:
        return f"Costs({self.label})"

    def _key(self) -> tuple:
        return (tuple(sorted(self.fees.items())), self.liquidity, self.slippage_bps,
                self.borrow_annual, tuple(sorted(self.funding)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Costs):
            return NotImplemented
        if self._key() != other._key():
            return False
        return all((a is None and b is None) or (a is not None and b is not None and a.equals(b))
                   for a, b in ((self.funding[k], other.funding[k]) for k in self.funding))

    def __hash__(self) -> int:
        return hash(self._key())


def _funding_map(funding: Any) -> dict[str, pd.DataFrame | None]:
    if funding is None:
        return {}
    if not isinstance(funding, Mapping):
        raise TypeError("funding must map a perpetual symbol (e.g. 'um:BTCUSDT') to its funding "
                        f"rates, got {type(funding).__name__}")
    out: dict[str, pd.DataFrame | None] = {}
    for key, data in funding.items():
        k = _funding_key(key)
        if data is None:  # funding of this leg not counted, on purpose
            out[k] = None
        else:
            out[k] = data if _is_table(data) else funding_table(data, f"funding[{key!r}]")
    return out


def _is_table(data: Any) -> bool:
    return (isinstance(data, pd.DataFrame) and list(data.columns) == ["rate", "mark"]
            and data.index.name == "funding_time")


def _funding_key(key: Any) -> str:
    if key in ("y", "x"):
        return key
    from ..symbols import parse_symbol

    try:
        return str(parse_symbol(str(key)))
    except ValueError:
        raise ValueError(f"funding: {key!r} is not a symbol; key funding rates by perpetual "
                         "symbol ('um:BTCUSDT') or by leg ('y', 'x')") from None
