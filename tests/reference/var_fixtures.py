"""Reference Value-at-Risk figures for tickcast's risk tests, computed by hand.

Run by hand (not by CI) from the repository root:

    pip install numpy scipy pandas arch
    python tests/reference/var_fixtures.py

Each case takes a window of the embedded data (data/sp500_dataset.csv.gz),
the last `closes` closes of some stocks, and writes
tests/reference/fixtures/var_<case>.json with the closes and every figure
POST /api/risk/var answers, computed here with numpy/scipy from the
definitions (see the README, "Portfolio risk"):

- portfolio returns: daily simple returns weighted by constant weights,
  over the last `lookback` returns;
- historical: one scenario per overlapping `h`-day window, each asset's
  return compounded over it and weighted by the starting weights; VaR is
  minus the k-th smallest scenario, k = ceil(n (1 - a)) (with 1e-9 of slack
  against float noise, at least 1), CVaR minus the mean of the scenarios at
  or below it; contributions are minus each asset's weighted return in the
  VaR scenario (CVaR: its mean over the tail scenarios);
- parametric normal: -h mu_p + z_a sqrt(h) sigma_p, sample mean and
  covariance (ddof 1); Euler contributions;
- Cornish-Fisher: population skewness and excess kurtosis scaled by 1/sqrt(h)
  and 1/h; CVaR the expected shortfall of the expanded quantile in closed
  form; Euler contributions with analytic derivatives of the moments, checked
  here against central finite differences;
- filtered historical simulation: arch's GARCH(1,1) (constant mean, normal)
  on the percent portfolio returns; shocks z = (r - mu) / sigma rescaled by
  the square root of the sum of arch's 1..h-step variance forecasts; and the
  same with RiskMetrics' EWMA (lambda 0.94, mean zero, seeded with the mean
  square of the first 21 returns), which tickcast falls back to;
- backtest: one-day forecasts for each of the last `backtest` days from the
  `window` returns before it; exceedance when the day's return < -VaR;
  Kupiec POF and Christoffersen independence LRs with chi2(1) p-values. The
  filtered method fits once on the window before the first tested day and
  carries the recursion forward with the parameters held.

The GARCH figures depend on arch's fit (tickcast fits the same likelihood
with its own optimiser; the parameters agree within about 1e-4 relative),
so the fixture also records the filter itself (sigma of every return, the
horizon deviation), which the Rust test feeds to its filtered-simulation
arithmetic to compare exactly.
"""
import json
import math
import pathlib

import arch
import numpy as np
import pandas as pd
import scipy
from arch import arch_model
from scipy.stats import chi2, norm

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = pathlib.Path(__file__).resolve().parent / "fixtures"
SLACK = 1e-9
LAMBDA = 0.94
SEED_WINDOW = 21

CASES = {
    "sp5": dict(
        symbols=["AAPL", "JNJ", "JPM", "XOM", "PG"],
        weights=[0.3, 0.2, 0.2, 0.15, 0.15],
        closes=1501, lookback=1000, backtest=500, levels=[0.95, 0.975, 0.99], horizons=[1, 10],
    ),
    "sp3_short": dict(
        symbols=["MSFT", "KO", "RRC"],
        weights=[1.3, -0.5, 0.2],
        closes=601, lookback=400, backtest=200, levels=[0.9, 0.99], horizons=[1, 5],
    ),
}


def tail_count(n, a):
    return min(max(1, math.ceil(n * (1.0 - a) - SLACK)), n)


def empirical(per_unit, w, a):
    totals = per_unit @ w
    order = np.argsort(totals, kind="stable")
    at = order[tail_count(len(totals), a) - 1]
    q = totals[at]
    tail = totals <= q
    marginal = -per_unit[at]
    return dict(
        var=-q,
        cvar=-totals[tail].mean(),
        contributions=w * marginal,
        cvar_contributions=-w * per_unit[tail].mean(axis=0),
        marginal=marginal,
    )


def historical_scenarios(r, h):
    return np.array([np.prod(1.0 + r[j:j + h], axis=0) - 1.0 for j in range(len(r) - h + 1)])


def parametric(r, w, a, h):
    mean = r.mean(axis=0)
    cov = np.cov(r, rowvar=False, ddof=1)
    cw = cov @ w
    sd = math.sqrt(w @ cw)
    z = norm.ppf(a)
    es = norm.pdf(z) / (1.0 - a)
    marginal = -h * mean + z * math.sqrt(h) * cw / sd
    marginal_cvar = -h * mean + es * math.sqrt(h) * cw / sd
    return dict(
        var=-h * (mean @ w) + z * math.sqrt(h) * sd,
        cvar=-h * (mean @ w) + es * math.sqrt(h) * sd,
        contributions=w * marginal,
        cvar_contributions=w * marginal_cvar,
        marginal=marginal,
    )


def cf_quantile(z, s, k):
    return z + (z * z - 1) * s / 6 + (z ** 3 - 3 * z) * k / 24 - (2 * z ** 3 - 5 * z) * s * s / 36


def cf_shortfall(z, p, s, k):
    return norm.pdf(z) / p * (-1 - z * s / 6 + (1 - z * z) * k / 24 - (1 - 2 * z * z) * s * s / 36)


def cf_var_cvar(r, w, a, h):
    """VaR and CVaR alone: the function the contributions differentiate."""
    rp = r @ w
    c = rp - rp.mean()
    m2, m3, m4 = (c ** 2).mean(), (c ** 3).mean(), (c ** 4).mean()
    s, k = m3 / m2 ** 1.5 / math.sqrt(h), (m4 / m2 ** 2 - 3) / h
    sd = math.sqrt(w @ np.cov(r, rowvar=False, ddof=1) @ w)
    z, p = norm.ppf(1 - a), 1 - a
    mu = h * (r.mean(axis=0) @ w)
    return -(mu + math.sqrt(h) * sd * cf_quantile(z, s, k)), -(mu + math.sqrt(h) * sd * cf_shortfall(z, p, s, k))


def cornish_fisher(r, w, a, h):
    mean = r.mean(axis=0)
    cen = r - mean
    cp = cen @ w
    m2, m3, m4 = (cp ** 2).mean(), (cp ** 3).mean(), (cp ** 4).mean()
    rh = math.sqrt(h)
    s, k = m3 / m2 ** 1.5 / rh, (m4 / m2 ** 2 - 3) / h
    cov = np.cov(r, rowvar=False, ddof=1)
    cw = cov @ w
    sd = math.sqrt(w @ cw)
    z, p = norm.ppf(1 - a), 1 - a
    q, es = cf_quantile(z, s, k), cf_shortfall(z, p, s, k)
    dq_ds = (z * z - 1) / 6 - (2 * z ** 3 - 5 * z) * s / 18
    dq_dk = (z ** 3 - 3 * z) / 24
    c = norm.pdf(z) / p
    des_ds = c * (-z / 6 - (1 - 2 * z * z) * s / 18)
    des_dk = c * (1 - z * z) / 24
    dm2 = 2 * (cen * cp[:, None]).mean(axis=0)
    dm3 = 3 * (cen * (cp ** 2)[:, None]).mean(axis=0)
    dm4 = 4 * (cen * (cp ** 3)[:, None]).mean(axis=0)
    ds = (dm3 / m2 ** 1.5 - 1.5 * m3 * dm2 / m2 ** 2.5) / rh
    dk = (dm4 / m2 ** 2 - 2 * m4 * dm2 / m2 ** 3) / h
    dsd = cw / sd
    marginal = -(h * mean + rh * (dsd * q + sd * (dq_ds * ds + dq_dk * dk)))
    marginal_cvar = -(h * mean + rh * (dsd * es + sd * (des_ds * ds + des_dk * dk)))
    out = dict(
        var=-(h * (mean @ w) + rh * sd * q),
        cvar=-(h * (mean @ w) + rh * sd * es),
        contributions=w * marginal,
        cvar_contributions=w * marginal_cvar,
        marginal=marginal,
    )
    # The analytic derivatives against central differences of the VaR.
    for i in range(len(w)):
        step = 1e-6
        up, down = w.copy(), w.copy()
        up[i] += step
        down[i] -= step
        fd = (cf_var_cvar(r, up, a, h)[0] - cf_var_cvar(r, down, a, h)[0]) / (2 * step)
        fd_cvar = (cf_var_cvar(r, up, a, h)[1] - cf_var_cvar(r, down, a, h)[1]) / (2 * step)
        assert abs(fd - marginal[i]) < 1e-7, (i, fd, marginal[i])
        assert abs(fd_cvar - marginal_cvar[i]) < 1e-7, (i, fd_cvar, marginal_cvar[i])
    assert abs(out["var"] - cf_var_cvar(r, w, a, h)[0]) < 1e-15
    return out


def garch_filter(rp, h):
    """arch's GARCH(1,1) of percent returns: mean, sigma per return, the
    horizon deviation, the parameters, and the next one-step variance."""
    res = arch_model(100 * rp, mean="Constant", vol="GARCH", p=1, q=1, dist="normal").fit(disp="off")
    params = dict(mu=res.params["mu"], omega=res.params["omega"], alpha=res.params["alpha[1]"], beta=res.params["beta[1]"])
    variance = res.forecast(horizon=h, reindex=False).variance.to_numpy()[-1]
    return dict(
        mean=params["mu"] / 100,
        sigma=res.conditional_volatility / 100,
        horizon_sigma=math.sqrt(variance.sum()) / 100,
        next_variance=variance[0] / 1e4,
        params=params,
        loglikelihood=res.loglikelihood,
    )


def ewma_filter(rp, h):
    s = (rp[:SEED_WINDOW] ** 2).mean()
    sigma = []
    for r in rp:
        sigma.append(math.sqrt(s))
        s = LAMBDA * s + (1 - LAMBDA) * r * r
    return dict(mean=0.0, sigma=np.array(sigma), horizon_sigma=math.sqrt(h * s), next_variance=s)


def filtered(r, w, a, h, f):
    k = f["horizon_sigma"] / f["sigma"]
    per_unit = k[:, None] * r + (h - k)[:, None] * f["mean"]
    return empirical(per_unit, w, a)


def kupiec(x, t, p):
    rate = x / t
    def xlogy(u, v):
        return 0.0 if u == 0 else u * math.log(v)
    return max(0.0, -2 * (xlogy(t - x, 1 - p) + xlogy(x, p) - xlogy(t - x, 1 - rate) - xlogy(x, rate)))


def christoffersen(hits):
    n = np.zeros((2, 2))
    for a, b in zip(hits[:-1], hits[1:]):
        n[int(a), int(b)] += 1
    n00, n01, n10, n11 = n[0, 0], n[0, 1], n[1, 0], n[1, 1]
    def ratio(u, v):
        return v / (u + v) if u + v > 0 else 0.0
    def xlogy(u, v):
        return 0.0 if u == 0 else u * math.log(v)
    pi0, pi1, pi = ratio(n00, n01), ratio(n10, n11), ratio(n00 + n10, n01 + n11)
    restricted = xlogy(n00 + n10, 1 - pi) + xlogy(n01 + n11, pi)
    free = xlogy(n00, 1 - pi0) + xlogy(n01, pi0) + xlogy(n10, 1 - pi1) + xlogy(n11, pi1)
    return max(0.0, -2 * (restricted - free))


def tests_of(hits, a):
    days, x = len(hits), int(sum(hits))
    lr_pof, lr_ind = kupiec(x, days, 1 - a), christoffersen(hits)
    return dict(
        days=days, exceedances=x, expected=days * (1 - a), exceedance_rate=x / days,
        kupiec_statistic=lr_pof, kupiec_p_value=chi2(1).sf(lr_pof),
        christoffersen_statistic=lr_ind, christoffersen_p_value=chi2(1).sf(lr_ind),
    )


def one_day_var(method, window, a):
    if method == "historical":
        s = np.sort(window)
        return -s[tail_count(len(s), a) - 1]
    mean, sd = window.mean(), window.std(ddof=1)
    if method == "parametric":
        return -mean + norm.ppf(a) * sd
    c = window - mean
    m2, m3, m4 = (c ** 2).mean(), (c ** 3).mean(), (c ** 4).mean()
    return -(mean + sd * cf_quantile(norm.ppf(1 - a), m3 / m2 ** 1.5, m4 / m2 ** 2 - 3))


def filtered_hits(rp, mean, sigma, days, window, a):
    z = (rp - mean) / sigma
    n = len(rp)
    hits = []
    for t in range(n - days, n):
        s = np.sort(z[t - window:t])
        var = -(mean + sigma[t] * s[tail_count(window, a) - 1])
        hits.append(bool(rp[t] < -var))
    return hits


def garch_path(rp_all, days, window):
    """arch's filter on the window before the first tested day, carried
    forward by hand with the parameters held."""
    n = len(rp_all)
    fit_part = rp_all[n - days - window:n - days]
    f = garch_filter(fit_part, 1)
    p = f["params"]
    s = f["next_variance"] * 1e4
    sigma = list(f["sigma"])
    for r in rp_all[n - days:]:
        sigma.append(math.sqrt(s) / 100)
        e = 100 * r - p["mu"]
        s = p["omega"] + p["alpha"] * e * e + p["beta"] * s
    return f, np.array(sigma)


def ewma_path(rp_all, days, window):
    n = len(rp_all)
    f = ewma_filter(rp_all[n - days - window:], 1)
    return f["sigma"]


def keyed(symbols, d):
    out = {}
    for k, v in d.items():
        out[k] = {s: float(x) for s, x in zip(symbols, v)} if isinstance(v, np.ndarray) else float(v)
    return out


def main():
    stocks = pd.read_csv(ROOT / "data" / "sp500_dataset.csv.gz", index_col="Date")
    for name, case in CASES.items():
        symbols, w = case["symbols"], np.array(case["weights"])
        closes = stocks[symbols].iloc[-case["closes"]:].to_numpy()
        r_all = closes[1:] / closes[:-1] - 1.0
        L, B = case["lookback"], case["backtest"]
        r = r_all[-L:]
        rp = r @ w
        doc = dict(
            symbols=symbols, weights=case["weights"], lookback=L, backtest_days=B, levels=case["levels"],
            dates=[stocks.index[-case["closes"]], stocks.index[-1]],
            closes={s: closes[:, i].tolist() for i, s in enumerate(symbols)},
            horizons={},
        )
        for h in case["horizons"]:
            g, e = garch_filter(rp, h), ewma_filter(rp, h)
            results = {}
            for a in case["levels"]:
                key = repr(a)
                results.setdefault("historical", {})[key] = keyed(symbols, empirical(historical_scenarios(r, h), w, a))
                results.setdefault("parametric", {})[key] = keyed(symbols, parametric(r, w, a, h))
                results.setdefault("cornish_fisher", {})[key] = keyed(symbols, cornish_fisher(r, w, a, h))
                results.setdefault("filtered_historical", {})[key] = keyed(symbols, filtered(r, w, a, h, g))
                results.setdefault("filtered_historical_ewma", {})[key] = keyed(symbols, filtered(r, w, a, h, e))
            doc["horizons"][str(h)] = dict(
                results=results,
                garch=dict(mean=g["mean"], sigma=g["sigma"].tolist(), horizon_sigma=g["horizon_sigma"],
                           params=g["params"], loglikelihood=g["loglikelihood"]),
                ewma=dict(horizon_sigma=e["horizon_sigma"]),
            )
        # Backtest of one-day forecasts over the whole series.
        rp_all = r_all @ w
        window = min(L, len(rp_all) - B)
        backtest = {}
        for method in ["historical", "parametric", "cornish_fisher"]:
            for a in case["levels"]:
                hits = [bool(rp_all[t] < -one_day_var(method, rp_all[t - window:t], a))
                        for t in range(len(rp_all) - B, len(rp_all))]
                backtest.setdefault(method, {})[repr(a)] = tests_of(hits, a)
        g, sigma = garch_path(rp_all, B, window)
        sigma_ewma = ewma_path(rp_all, B, window)
        start = len(rp_all) - B - window
        for a in case["levels"]:
            hits = filtered_hits(rp_all[start:], g["mean"], sigma, B, window, a)
            backtest.setdefault("filtered_historical", {})[repr(a)] = tests_of(hits, a)
            hits = filtered_hits(rp_all[start:], 0.0, sigma_ewma, B, window, a)
            backtest.setdefault("filtered_historical_ewma", {})[repr(a)] = tests_of(hits, a)
        doc["backtest"] = dict(
            window=window, results=backtest,
            garch=dict(mean=g["mean"], sigma=sigma.tolist(), params=g["params"]),
        )
        doc["versions"] = dict(numpy=np.__version__, scipy=scipy.__version__, pandas=pd.__version__, arch=arch.__version__)
        path = OUT / f"var_{name}.json"
        path.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
