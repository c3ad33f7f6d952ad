"""skfolio on the min-CVaR and efficient-frontier inputs of benches/optimizer.rs.

    pip install skfolio==1.12.2 pandas
    python benches/reference/cvar_bench.py

Times each case end to end from closes (simple returns, then the fit),
in-process, median of N runs, and prints one line per case:

- min_cvar: MeanRisk(risk_measure=CVAR, objective=MINIMIZE_RISK,
  cvar_beta=0.95), long only, fully invested, Clarabel (skfolio's default).
- efficient_frontier_20: MeanRisk(risk_measure=VARIANCE,
  efficient_frontier_size=20), which also fits the min-risk and max-return
  portfolios to place its 20 targets.
"""
import pathlib
import statistics
import time

import numpy as np
import pandas as pd
import skfolio
from skfolio import RiskMeasure
from skfolio.optimization import MeanRisk, ObjectiveFunction

ROOT = pathlib.Path(__file__).resolve().parents[2]
prices = pd.read_csv(ROOT / "data" / "sp500_dataset.csv.gz", index_col="Date")
MASK = (1 << 64) - 1


def splitmix(x):
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def synthetic(assets, days):
    """Same series as synthetic_closes in benches/optimizer.rs (and pypfopt_bench.py)."""
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


def min_cvar(df):
    rets = df.pct_change().dropna()
    model = MeanRisk(risk_measure=RiskMeasure.CVAR, objective_function=ObjectiveFunction.MINIMIZE_RISK, cvar_beta=0.95)
    return model.fit(rets).weights_


def frontier(df):
    rets = df.pct_change().dropna()
    model = MeanRisk(risk_measure=RiskMeasure.VARIANCE, efficient_frontier_size=20)
    return model.fit(rets).weights_


def timed(fn, df, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(df)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


print(f"skfolio {skfolio.__version__}", flush=True)
for name, fn, cases in [
    ("min_cvar", min_cvar, [(20, 252, 20), (20, 1260, 10), (100, 1260, 5)]),
    ("efficient_frontier_20", frontier, [(20, 252, 10), (100, 1260, 3)]),
]:
    for assets, days, runs in cases:
        df = synthetic(assets, days)
        try:
            t = timed(fn, df, runs)
            print(f"{name} {assets}x{days}: {t * 1000:.2f} ms (median of {runs})", flush=True)
        except Exception as exc:  # noqa: BLE001
            print(f"{name} {assets}x{days}: failed: {exc}", flush=True)
