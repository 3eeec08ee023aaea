"""Numbers read from CSV equal ``float(text)`` on every supported pandas line (2.2 and 3.x).

pandas 2's default float converter lands one ulp away on long decimals such as the quote
volume ``199598471.46292770`` of the official BTCUSDT-1h-2022-09-07 klines file; the
package asks for round-trip parsing there (``quantlab.pandas_compat.EXACT_FLOATS``). These
tests run on both pandas lines in ``make test``.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd

from quantlab.binance.archive import identify, read_chunks
from quantlab.commands.screen import read_closes_csv
from quantlab.pandas_compat import EXACT_FLOATS, PANDAS_MAJOR

KLINE_FLOATS = {1: "open", 2: "high", 3: "low", 4: "close", 5: "volume", 7: "quote_volume",
                9: "taker_buy_base", 10: "taker_buy_quote"}


def _cells(path) -> list[list[str]]:
    with zipfile.ZipFile(path) as z:
        text = z.read(z.namelist()[0]).decode()
    return [line.split(",") for line in text.splitlines() if line and line[0].isdigit()]


def test_official_klines_parse_to_exactly_the_decimal_text(real_data):
    path = real_data / "klines" / "BTCUSDT-1h-2022-09-07.zip"
    rows = _cells(path)
    got = {}
    for cols, _n in read_chunks(identify(path)):
        for k, v in cols.items():
            got.setdefault(k, []).append(v)
    for col, name in KLINE_FLOATS.items():
        want = np.array([float(r[col]) for r in rows])
        np.testing.assert_array_equal(np.concatenate(got[name]), want, err_msg=name)


def test_this_file_is_one_that_pandas_2_default_parsing_gets_wrong(real_data):
    """Guards the test above: on pandas 2 the default converter misses some of this file's
    values (so the test above would catch a read_csv without EXACT_FLOATS); pandas 3 does not."""
    path = real_data / "klines" / "BTCUSDT-1h-2022-09-07.zip"
    default = pd.read_csv(path, header=None)[7].to_numpy()
    exact = np.array([float(r[7]) for r in _cells(path)])
    assert bool((default != exact).any()) == (PANDAS_MAJOR < 3)


def test_closes_csv_round_trips_exactly(tmp_path):
    values = [95138.74255814309767, 2495740733.81282193, 0.000012345678901234567]
    frame = pd.DataFrame({"A": values, "B": values[::-1]},
                         index=pd.date_range("2025-01-01", periods=3, freq="1min", tz="UTC"))
    path = tmp_path / "closes.csv"
    path.write_text(frame.to_csv())  # repr-precision decimals
    back = read_closes_csv(str(path))
    np.testing.assert_array_equal(back.to_numpy(), frame.to_numpy())


def test_exact_floats_is_what_each_pandas_line_needs():
    text = "2495740733.81282193\n"
    parsed = pd.read_csv(io.StringIO(text), header=None, **EXACT_FLOATS)[0].iloc[0]
    assert parsed == float(text)
    assert EXACT_FLOATS == ({} if PANDAS_MAJOR >= 3 else {"float_precision": "round_trip"})
