"""PyPortfolioOpt (and scipy risk parity) on the inputs of benches/optimizer.rs.

    pip install pyportfolioopt scipy pandas
    python benches/reference/pypfopt_bench.py

Times each method end to end from closes (returns, mean, sample covariance,
solve), in-process, median of N runs, and prints one line per case.
"""
import pathlib
import statistics
import time

import numpy as np
import pandas as pd
from pypfopt import EfficientFrontier
from scipy.optimize import minimize

ROOT = pathlib.Path(__file__).resolve().parents[2]
prices = pd.read_csv(ROOT / "data" / "sp500_dataset.csv.gz", index_col="Date")
MASK = (1 << 64) - 1


def splitmix(x):
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def synthetic(assets, days):
    """Same series as synthetic_closes in benches/optimizer.rs."""
    real = prices.iloc[-days:]
    cols = sorted(real.columns)  # the Rust table is ordered by symbol
    out = {}
    for k in range(assets):
        sym = cols[k % len(cols)]
        base = real[sym].to_numpy()
        if k < len(cols):
            out[sym] = base
            continue
        closes = [100.0]
        for t in range(1, days):
            u = (splitmix(k * 1_000_003 + t) >> 11) / float(1 << 53)
            r = base[t] / base[t - 1] - 1.0 + 0.01 * (u - 0.5)
            closes.append(closes[-1] * (1.0 + r))
        out[f"{sym}_{k}"] = np.array(closes)
    return pd.DataFrame(out)


def min_variance(df, solver=None):
    """PyPortfolioOpt's default solver unless `solver` names a cvxpy one."""
    rets = df.pct_change().dropna()
    ef = EfficientFrontier(rets.mean(), rets.cov(), solver=solver)
    return ef.min_volatility()


def max_sharpe(df, solver=None):
    rets = df.pct_change().dropna()
    ef = EfficientFrontier(rets.mean(), rets.cov(), solver=solver)
    return ef.max_sharpe(risk_free_rate=0.0)


def risk_parity(df):
    cov = df.pct_change().dropna().cov().to_numpy()
    s = cov / np.max(np.diag(cov))
    n = len(s)
    b = np.full(n, 1.0 / n)
    res = minimize(lambda y: 0.5 * y @ s @ y - b @ np.log(y), np.ones(n), jac=lambda y: s @ y - b / y,
                   method="L-BFGS-B", bounds=[(1e-12, None)] * n)
    return res.x / res.x.sum()


def timed(fn, df, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(df)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    for assets, days, runs in [(20, 252, 20), (100, 756, 10), (500, 1260, 3)]:
        df = synthetic(assets, days)
        for name, fn in [("min_variance", min_variance), ("max_sharpe", max_sharpe), ("risk_parity", risk_parity)]:
            try:
                t = timed(fn, df, runs)
                print(f"{assets}x{days} {name}: {t * 1000:.2f} ms (median of {runs})", flush=True)
            except Exception as exc:  # noqa: BLE001
                print(f"{assets}x{days} {name}: failed: {exc}", flush=True)
