"""scikit-learn reference for the adaptive ensemble's fit benchmark.

    pip install scikit-learn numpy
    python3 benches/reference/sklearn_ensemble.py [--json]

Data: AAPL's last N adjusted closes (N = 250, 500, 2000) from
data/sp500_dataset.csv.gz, turned into the ensemble's eleven technical
features (src/models/ensemble/features.rs: distance to the 5/10/20 means,
5/10/20 return volatility, 3/7/14 momentum, RSI 14, Bollinger position) and
the next close's simple return, standardised with the training rows' mean
and standard deviation (ddof 0), as tickcast does.

The five learners carry tickcast's hyper-parameters: RandomForest and
ExtraTrees with 50 trees of depth at most 8, gradient boosting with 50
rounds of depth 3 and learning rate 0.1, epsilon-SVR (RBF, C 1, epsilon 0.1,
gamma 1/11), and an MLP with hidden layers 50 and 25 trained by Adam (lr
1e-2, batch 256, at most 100 epochs, 10 % of the rows held back and
training stopped after 10 epochs without a 1e-4 improvement of their loss,
keeping the best epoch: scikit-learn's early_stopping, which tickcast copies,
except that tickcast holds back the newest rows and scikit-learn a random
10 %).

It times, single-threaded (n_jobs=1) and as the median of 5 runs:
  - each learner's fit on all rows of 500 closes;
  - "blend": what tickcast's cold predict does, i.e. each of the five fitted
    twice (on the rows before the 50-row adaptation window, then on all
    rows) plus the window and latest forecasts, one learner after another.
Feature preparation is outside every timed region.
"""
import argparse
import csv
import gzip
import json
import pathlib
import statistics
import time
import warnings

import numpy as np
from sklearn.ensemble import ExtraTreesRegressor, GradientBoostingRegressor, RandomForestRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor
from sklearn.svm import SVR

ROOT = pathlib.Path(__file__).resolve().parents[2]
WARM_UP = 20
WINDOW = 50
RUNS = 5


def closes(symbol="AAPL", n=500):
    with gzip.open(ROOT / "data" / "sp500_dataset.csv.gz", "rt", newline="") as f:
        rows = csv.DictReader(f)
        prices = [float(r[symbol]) for r in rows if r[symbol] not in ("", "nan", "NaN")]
    return np.array(prices[-n:], dtype=np.float64)


def features_at(c, t):
    close = c[t]
    r = c[t - WARM_UP + 1:t + 1] / c[t - WARM_UP:t] - 1.0
    ma = [close / c[t + 1 - n:t + 1].mean() - 1.0 for n in (5, 10, 20)]
    vol = [r[-n:].std() for n in (5, 10, 20)]
    mom = [close / c[t - n] - 1.0 for n in (3, 7, 14)]
    gain, loss = np.clip(r[-14:], 0, None).sum(), np.clip(-r[-14:], 0, None).sum()
    rsi = 100.0 if loss == 0 else 100.0 - 100.0 / (1.0 + gain / loss)
    last20 = c[t - 19:t + 1]
    m, s = last20.mean(), last20.std()
    boll = 0.5 if s == 0 else (close - (m - 2 * s)) / (4 * s)
    return ma + vol + mom + [rsi, boll]


def rows(c, horizon=1):
    ts = range(WARM_UP, len(c) - horizon)
    x = np.array([features_at(c, t) for t in ts])
    y = np.array([c[t + horizon] / c[t] - 1.0 for t in ts])
    return x, y


def learners(seed=7):
    return {
        "random_forest": RandomForestRegressor(n_estimators=50, max_depth=8, random_state=seed, n_jobs=1),
        "gradient_boosting": GradientBoostingRegressor(n_estimators=50, max_depth=3, learning_rate=0.1, random_state=seed),
        "extra_trees": ExtraTreesRegressor(n_estimators=50, max_depth=8, random_state=seed, n_jobs=1),
        "svr": SVR(kernel="rbf", C=1.0, epsilon=0.1, gamma=1.0 / 11),
        "mlp": MLPRegressor(hidden_layer_sizes=(50, 25), learning_rate_init=1e-2, max_iter=100,
                            batch_size=256, early_stopping=True, validation_fraction=0.1,
                            random_state=seed),
    }


def standardise(x, y):
    xm, xs = x.mean(0), x.std(0)
    xs[xs == 0] = 1.0
    ym, ys = y.mean(), (y.std() or 1.0)
    return (x - xm) / xs, (y - ym) / ys, (xm, xs, ym, ys)


def fit_predict(model, x, y, q):
    xz, yz, (xm, xs, ym, ys) = standardise(x, y)
    model.fit(xz, yz)
    return ym + model.predict((q - xm) / xs) * ys


def blend(c):
    x, y = rows(c)
    latest = np.array([features_at(c, len(c) - 1)])
    for model in learners().values():
        fit_predict(model, x[:-WINDOW], y[:-WINDOW], x[-WINDOW:])
    for model in learners().values():
        fit_predict(model, x, y, latest)


def median_ms(f):
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        f()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    out = {"blend_ms": {}, "fit_500_closes_ms": {}}
    for n in (250, 500, 2000):
        c = closes(n=n)
        out["blend_ms"][n] = median_ms(lambda: blend(c))
    x, y = rows(closes(n=500))
    for name in learners():
        out["fit_500_closes_ms"][name] = median_ms(lambda: fit_predict(learners()[name], x, y, x[:1]))
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for n, ms in out["blend_ms"].items():
            print(f"blend {n:>5} closes: {ms:8.1f} ms")
        for name, ms in out["fit_500_closes_ms"].items():
            print(f"fit {name:<18} 500 closes: {ms:8.1f} ms")


if __name__ == "__main__":
    main()
