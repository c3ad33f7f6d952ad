"""numpy/scipy/arch on the inputs of benches/risk.rs.

    pip install numpy scipy pandas arch
    python benches/reference/var_bench.py

The 20 embedded stocks, equal weights, their last 1 501 closes: VaR and CVaR
at 0.95 and 0.99 over the last 1 000 returns, one day, with per-asset
contributions, by historical simulation, parametric normal, Cornish-Fisher
and filtered historical simulation (arch's GARCH(1,1)); and a backtest of the
last 500 days (rolling 1 000-day windows, vectorised with
sliding_window_view; the filtered method fits once and carries the recursion
forward), with Kupiec and Christoffersen p-values. The same definitions as
tests/reference/var_fixtures.py, written for speed (one sort per window for
all levels). Prints the median of N runs of each, in-process.
"""
import math
import pathlib
import statistics
import time
import warnings

import numpy as np
import pandas as pd
from arch import arch_model
from numpy.lib.stride_tricks import sliding_window_view
from scipy.stats import chi2, norm

ROOT = pathlib.Path(__file__).resolve().parents[2]
N = 20
LEVELS = np.array([0.95, 0.99])
LOOKBACK, BACKTEST = 1000, 500

stocks = pd.read_csv(ROOT / "data" / "sp500_dataset.csv.gz", index_col="Date")
closes = stocks.iloc[-(LOOKBACK + BACKTEST + 1):].to_numpy()
assert closes.shape == (1501, 20)
W = np.full(20, 1 / 20)
R_ALL = closes[1:] / closes[:-1] - 1.0


def tail_counts(n):
    return np.maximum(1, np.ceil(n * (1 - LEVELS) - 1e-9).astype(int))


def empirical(per_unit, w):
    totals = per_unit @ w
    order = np.argsort(totals, kind="stable")
    out = []
    for k in tail_counts(len(totals)):
        at = order[k - 1]
        tail = order[totals[order] <= totals[at]]
        out.append((-totals[at], -totals[tail].mean(), -w * per_unit[at], -w * per_unit[tail].mean(axis=0)))
    return out


def parametric(r, w):
    mean, cov = r.mean(axis=0), np.cov(r, rowvar=False)
    cw = cov @ w
    sd = math.sqrt(w @ cw)
    z = norm.ppf(LEVELS)
    es = norm.pdf(z) / (1 - LEVELS)
    return [(-(mean @ w) + zi * sd, -(mean @ w) + ei * sd, w * (-mean + zi * cw / sd), w * (-mean + ei * cw / sd))
            for zi, ei in zip(z, es)]


def cornish_fisher(r, w):
    mean = r.mean(axis=0)
    cen = r - mean
    cp = cen @ w
    m2, m3, m4 = (cp ** 2).mean(), (cp ** 3).mean(), (cp ** 4).mean()
    s, k = m3 / m2 ** 1.5, m4 / m2 ** 2 - 3
    cw = np.cov(r, rowvar=False) @ w
    sd = math.sqrt(w @ cw)
    dm2 = 2 * (cen * cp[:, None]).mean(axis=0)
    dm3 = 3 * (cen * (cp ** 2)[:, None]).mean(axis=0)
    dm4 = 4 * (cen * (cp ** 3)[:, None]).mean(axis=0)
    ds = dm3 / m2 ** 1.5 - 1.5 * m3 * dm2 / m2 ** 2.5
    dk = dm4 / m2 ** 2 - 2 * m4 * dm2 / m2 ** 3
    out = []
    for a in LEVELS:
        z, p = norm.ppf(1 - a), 1 - a
        q = z + (z * z - 1) * s / 6 + (z ** 3 - 3 * z) * k / 24 - (2 * z ** 3 - 5 * z) * s * s / 36
        c = norm.pdf(z) / p
        es = c * (-1 - z * s / 6 + (1 - z * z) * k / 24 - (1 - 2 * z * z) * s * s / 36)
        dq = ((z * z - 1) / 6 - (2 * z ** 3 - 5 * z) * s / 18) * ds + (z ** 3 - 3 * z) / 24 * dk
        de = c * (-z / 6 - (1 - 2 * z * z) * s / 18) * ds + c * (1 - z * z) / 24 * dk
        out.append((-(mean @ w + sd * q), -(mean @ w + sd * es),
                    -w * (mean + cw / sd * q + sd * dq), -w * (mean + cw / sd * es + sd * de)))
    return out


def garch(rp):
    res = arch_model(100 * rp, mean="Constant", vol="GARCH", p=1, q=1).fit(disp="off")
    return res


def filtered(r, w):
    res = garch(r @ w)
    mu = res.params["mu"] / 100
    sigma = res.conditional_volatility / 100
    h_sigma = math.sqrt(res.forecast(horizon=1, reindex=False).variance.to_numpy()[-1].sum()) / 100
    k = h_sigma / sigma
    return empirical(k[:, None] * r + (1 - k)[:, None] * mu, w)


def tests(hits, a):
    t, x = len(hits), hits.sum()
    p, rate = 1 - a, x / t
    xlogy = lambda u, v: 0.0 if u == 0 else u * math.log(v)
    lr_pof = -2 * (xlogy(t - x, 1 - p) + xlogy(x, p) - xlogy(t - x, 1 - rate) - xlogy(x, rate))
    n = np.zeros((2, 2))
    np.add.at(n, (hits[:-1].astype(int), hits[1:].astype(int)), 1)
    (n00, n01), (n10, n11) = n
    ratio = lambda u, v: v / (u + v) if u + v > 0 else 0.0
    pi0, pi1, pi = ratio(n00, n01), ratio(n10, n11), ratio(n00 + n10, n01 + n11)
    lr_ind = -2 * (xlogy(n00 + n10, 1 - pi) + xlogy(n01 + n11, pi)
                   - xlogy(n00, 1 - pi0) - xlogy(n01, pi0) - xlogy(n10, 1 - pi1) - xlogy(n11, pi1))
    return x, t * p, chi2(1).sf(max(lr_pof, 0)), chi2(1).sf(max(lr_ind, 0))


def backtest(methods):
    rp = R_ALL @ W
    n = len(rp)
    windows = sliding_window_view(rp[n - BACKTEST - LOOKBACK:n - 1], LOOKBACK)  # window t ends before day t
    actual = rp[n - BACKTEST:]
    ks = tail_counts(LOOKBACK)
    out = {}
    if "historical" in methods:
        s = np.sort(windows, axis=1)
        out["historical"] = [tests(actual < s[:, k - 1], a) for k, a in zip(ks, LEVELS)]
    if "parametric" in methods or "cornish_fisher" in methods:
        mean = windows.mean(axis=1)
        sd = windows.std(axis=1, ddof=1)
        if "parametric" in methods:
            out["parametric"] = [tests(actual < -(-mean + norm.ppf(a) * sd), a) for a in LEVELS]
        if "cornish_fisher" in methods:
            c = windows - mean[:, None]
            m2, m3, m4 = (c ** 2).mean(axis=1), (c ** 3).mean(axis=1), (c ** 4).mean(axis=1)
            s, k = m3 / m2 ** 1.5, m4 / m2 ** 2 - 3
            res = []
            for a in LEVELS:
                z = norm.ppf(1 - a)
                q = z + (z * z - 1) * s / 6 + (z ** 3 - 3 * z) * k / 24 - (2 * z ** 3 - 5 * z) * s * s / 36
                res.append(tests(actual < mean + sd * q, a))
            out["cornish_fisher"] = res
    if "filtered_historical" in methods:
        start = n - BACKTEST - LOOKBACK
        fit = garch(rp[start:n - BACKTEST])
        p = fit.params
        sigma = list(fit.conditional_volatility)
        s2 = fit.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0]
        for r in rp[n - BACKTEST:]:
            sigma.append(math.sqrt(s2))
            e = 100 * r - p["mu"]
            s2 = p["omega"] + p["alpha[1]"] * e * e + p["beta[1]"] * s2
        sigma = np.array(sigma) / 100
        mu = p["mu"] / 100
        z = (rp[start:] - mu) / sigma
        zs = np.sort(sliding_window_view(z[:-1], LOOKBACK), axis=1)
        out["filtered_historical"] = [tests(actual < mu + sigma[LOOKBACK:] * zs[:, k - 1], a) for k, a in zip(ks, LEVELS)]
    return out


def run(methods):
    r = R_ALL[-LOOKBACK:]
    table = {"historical": lambda: empirical(r, W), "parametric": lambda: parametric(r, W),
             "cornish_fisher": lambda: cornish_fisher(r, W), "filtered_historical": lambda: filtered(r, W)}
    return {m: table[m]() for m in methods}, backtest(methods)


def median_ms(f):
    f()
    times = []
    for _ in range(N):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main():
    warnings.simplefilter("ignore")
    all_methods = ["historical", "parametric", "cornish_fisher", "filtered_historical"]
    print(f"20 assets x {LOOKBACK} returns, backtest {BACKTEST}, levels {LEVELS.tolist()}, median of {N}")
    for name, methods in [("all_methods", all_methods)] + [(m, [m]) for m in all_methods]:
        print(f"{name:20s} {median_ms(lambda: run(methods)):8.2f} ms")


if __name__ == "__main__":
    main()
