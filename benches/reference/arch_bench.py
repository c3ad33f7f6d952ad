"""arch on the inputs of benches/volatility.rs.

    pip install arch pandas numpy
    python benches/reference/arch_bench.py

Fits each specification to the percent returns of the last 2 500 AAPL closes
of the embedded data (the closes in tests/reference/fixtures/garch_aapl.json),
in-process, and prints the median of N fits: `fit(disp="off")` alone, and
with the robust standard errors that arch computes lazily on first access
(tickcast's fit always computes them).
"""
import pathlib
import statistics
import time
import warnings

import arch
import pandas as pd
from arch import arch_model

ROOT = pathlib.Path(__file__).resolve().parents[2]
N = 30
SPECS = [
    ("garch_normal", 0, "normal"),
    ("gjr_normal", 1, "normal"),
    ("garch_t", 0, "t"),
    ("gjr_t", 1, "t"),
]

closes = pd.read_csv(ROOT / "data" / "sp500_dataset.csv.gz", index_col="Date")["AAPL"].iloc[-2500:]
returns = 100.0 * closes.pct_change().dropna()


def median_ms(run):
    run()  # warm-up (numba/cython paths, caches)
    times = []
    for _ in range(N):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main():
    warnings.simplefilter("ignore")
    print(f"arch {arch.__version__}, {len(returns)} returns, median of {N}")
    for name, o, dist in SPECS:
        model = lambda: arch_model(returns, mean="Constant", vol="GARCH", p=1, o=o, q=1, dist=dist)
        fit_only = median_ms(lambda: model().fit(disp="off"))
        with_se = median_ms(lambda: model().fit(disp="off").std_err)
        print(f"{name:13s} fit {fit_only:7.2f} ms   fit + std errors {with_se:7.2f} ms")


if __name__ == "__main__":
    main()
