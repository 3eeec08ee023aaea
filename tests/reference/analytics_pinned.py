"""Produce the values pinned in tests/test_analytics_reference.py from the reference libraries.

    .venv/bin/python tests/reference/analytics_pinned.py

- Engle-Granger fixture: statsmodels' tsa/tests/test_stattools.py (TestCoint_t), rebuilt
  with RandomState(123) exactly as there, then ``coint(y[:,0], y[:,1], maxlag=4, autolag=None)``.
- ADF realgdp: statsmodels' TestADFConstant (Stata's 0.97505319 / 0.99399563 to 5 decimals).
- MacKinnon (2010) asymptotic critical values: Table 1 of MacKinnon (2010), "Critical values
  for cointegration tests", Queen's Economics Department WP 1227, as tabulated in
  ``statsmodels.tsa.adfvalues`` (nobs = inf).
"""

import numpy as np
import statsmodels.api as sm
from statsmodels.tsa.adfvalues import mackinnoncrit
from statsmodels.tsa.stattools import adfuller, coint


def eg_fixture() -> np.ndarray:
    rs = np.random.RandomState(123)
    walk = rs.standard_normal(200).cumsum()
    y = rs.standard_normal((200, 4))
    y[:, :2] += walk[:, None]
    y += [1, 0, 0.5, 0]
    return np.round(y, 4)


if __name__ == "__main__":
    y = eg_fixture()
    r = coint(y[:, 0], y[:, 1], trend="c", maxlag=4, autolag=None)
    print("EG t", repr(r[0]), "p", repr(r[1]), "crit", list(r[2]))
    gdp = sm.datasets.macrodata.load_pandas().data["realgdp"].to_numpy()
    a = adfuller(gdp, regression="c", maxlag=4, autolag=None, result_object=True)
    print("ADF realgdp", repr(a.statistic), repr(a.pvalue), a.critical_values)
    print("ADF c asymptotic", list(mackinnoncrit(N=1, regression="c", nobs=np.inf)))
    print("EG 2 series c asymptotic", list(mackinnoncrit(N=2, regression="c", nobs=np.inf)))
