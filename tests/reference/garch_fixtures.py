"""Reference GARCH fits for tickcast's volatility tests.

Run by hand (not by CI) from the repository root:

    pip install arch pandas numpy
    python tests/reference/garch_fixtures.py

Writes tests/reference/fixtures/garch_<symbol>.json, one file per series,
each holding the exact input closes (the last 2 500 closes of the embedded
data; the last 1 000 for UNH, whose GJR fits put alpha on its bound of 0, as
RRC's put the persistence on its bound of 1) and, for every specification,
arch's default fit of the percent simple returns: `arch_model(r, mean=...,
vol="GARCH", p=1, o=..., q=1, dist=...).fit(disp="off")`, i.e. SLSQP with
robust (Bollerslev-Wooldridge) standard errors. Each fit records the
parameters, standard errors, log-likelihood, AIC, BIC, the persistence (and
by how much SLSQP's answer breaks arch's own linear constraints, which it may
do by a few 1e-6), the first and last fitted conditional variances, the
1..10-step analytic variance forecasts, and the parameters and
log-likelihood of the same fit run to convergence (`tol=1e-12`; SLSQP then
ends at its line-search precision limit, code 8), to show how far the
default stops short.
"""
import json
import pathlib

import arch
import numpy as np
import pandas as pd
import scipy
import statsmodels
from arch import arch_model

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = pathlib.Path(__file__).resolve().parent / "fixtures"
HORIZON = 10

stocks = pd.read_csv(ROOT / "data" / "sp500_dataset.csv.gz", index_col="Date")
index = pd.read_csv(ROOT / "data" / "sp500_index.csv.gz", index_col="Date")
# symbol -> (closes, how many of the last ones)
SERIES = {
    "AAPL": (stocks["AAPL"], 2500),
    "JNJ": (stocks["JNJ"], 2500),
    "XOM": (stocks["XOM"], 2500),
    "^GSPC": (index["SP500"], 2500),
    "RRC": (stocks["RRC"], 2500),
    "UNH": (stocks["UNH"], 1000),
}

# (model, distribution, mean) as tickcast spells them -> arch_model arguments.
SPECS = [
    ("garch", "normal", "constant"),
    ("gjr", "normal", "constant"),
    ("garch", "student_t", "constant"),
    ("gjr", "student_t", "constant"),
    ("garch", "normal", "zero"),
]
# arch's names -> tickcast's parameter keys.
NAMES = {"mu": "mu", "omega": "omega", "alpha[1]": "alpha", "gamma[1]": "gamma", "beta[1]": "beta", "nu": "nu"}


def fit(closes, model, distribution, mean):
    r = 100.0 * closes.pct_change().dropna()
    am = arch_model(
        r,
        mean="Constant" if mean == "constant" else "Zero",
        vol="GARCH",
        p=1,
        o=1 if model == "gjr" else 0,
        q=1,
        dist="normal" if distribution == "normal" else "t",
    )
    res = am.fit(disp="off")
    # The same fit run to convergence: how far the default stops short.
    tight = am.fit(disp="off", tol=1e-12, options={"maxiter": 2000}, show_warning=False)
    variance = res.conditional_volatility.to_numpy() ** 2
    p = res.params
    persistence = p["alpha[1]"] + 0.5 * p.get("gamma[1]", 0.0) + p["beta[1]"]
    # SLSQP may stop slightly outside arch's linear constraints
    # (alpha + gamma >= 0, persistence <= 1); record by how much.
    violation = max(0.0, persistence - 1.0, -(p["alpha[1]"] + p.get("gamma[1]", 0.0)))
    return {
        "spec": {"model": model, "distribution": distribution, "mean": mean},
        "nobs": int(res.nobs),
        "params": {NAMES[k]: float(v) for k, v in res.params.items()},
        "std_errors": {NAMES[k]: float(v) for k, v in res.std_err.items()},
        "params_tight": {NAMES[k]: float(v) for k, v in tight.params.items()},
        "loglikelihood_tight": float(tight.loglikelihood),
        "loglikelihood": float(res.loglikelihood),
        "aic": float(res.aic),
        "bic": float(res.bic),
        "optimizer_status": int(res.optimization_result.status),
        "persistence": float(persistence),
        "constraint_violation": float(violation),
        "conditional_variance_head": [float(v) for v in variance[:5]],
        "conditional_variance_tail": [float(v) for v in variance[-5:]],
        "variance_forecasts": [float(v) for v in res.forecast(horizon=HORIZON).variance.iloc[-1]],
    }


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for symbol, (column, count) in SERIES.items():
        closes = column.iloc[-count:]
        doc = {
            "symbol": symbol,
            "source": "data/sp500_index.csv.gz" if symbol.startswith("^") else "data/sp500_dataset.csv.gz",
            "first_date": closes.index[0],
            "last_date": closes.index[-1],
            "returns": "100 * (p_t / p_{t-1} - 1)",
            "reference": f"arch {arch.__version__}, scipy {scipy.__version__}, statsmodels {statsmodels.__version__}, "
            f"numpy {np.__version__}, pandas {pd.__version__}",
            "horizon": HORIZON,
            "closes": [float(p) for p in closes],
            "fits": [fit(closes, *spec) for spec in SPECS],
        }
        name = symbol.lstrip("^").lower()
        path = OUT / f"garch_{name}.json"
        path.write_text(json.dumps(doc, indent=1) + "\n")
        print(path.relative_to(ROOT), ", ".join(f"{f['spec']['model']}/{f['spec']['distribution']}/{f['spec']['mean']} llf {f['loglikelihood']:.4f}" for f in doc["fits"]))


if __name__ == "__main__":
    main()
