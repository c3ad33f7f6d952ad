"""Reference allocations for tickcast's optimiser tests.

Run by hand (not by CI) from the repository root:

    pip install pyportfolioopt skfolio==1.12.2 scikit-learn pandas scipy
    python tests/reference/make_fixtures.py

Writes tests/reference/fixtures/*.json, each holding the exact input closes,
the params, and the reference weights, computed with PyPortfolioOpt
(min_volatility, max_sharpe), skfolio (RiskBudgeting with the variance risk
measure, for risk parity; cross-checked against scipy on the log-barrier
formulation) and scikit-learn (Ledoit-Wolf covariance) on windows of the
embedded dataset.
"""
import json
import pathlib

import numpy as np
import pandas as pd
from pypfopt import EfficientFrontier
from scipy.optimize import minimize
from sklearn.covariance import LedoitWolf
from skfolio import RiskMeasure
from skfolio.moments import EmpiricalCovariance, EmpiricalMu
from skfolio.optimization import RiskBudgeting
from skfolio.prior import EmpiricalPrior

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = pathlib.Path(__file__).resolve().parent / "fixtures"
prices = pd.read_csv(ROOT / "data" / "sp500_dataset.csv.gz", parse_dates=["Date"], index_col="Date")


def estimates(window, covariance="sample"):
    rets = window.pct_change().dropna()
    mu = rets.mean()
    if covariance == "ledoit_wolf":
        cov = pd.DataFrame(LedoitWolf().fit(rets.values).covariance_, index=rets.columns, columns=rets.columns)
    else:
        cov = rets.cov()
    return rets, mu, cov


def solver_opts():
    return dict(solver="CLARABEL", solver_options={"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12})


def min_variance(mu, cov, bounds):
    ef = EfficientFrontier(mu, cov, weight_bounds=bounds, **solver_opts())
    ef.min_volatility()
    return np.array([ef.weights[i] for i in range(len(mu))])


def max_sharpe(mu, cov, bounds):
    ef = EfficientFrontier(mu, cov, weight_bounds=bounds, **solver_opts())
    ef.max_sharpe(risk_free_rate=0.0)
    return np.array([ef.weights[i] for i in range(len(mu))])


def risk_parity_skfolio(rets, covariance):
    """Equal variance contributions with skfolio, on the same covariance."""
    if covariance == "ledoit_wolf":
        from skfolio.moments import LedoitWolf as SkLW
        cov_estimator = SkLW()
    else:
        cov_estimator = EmpiricalCovariance()
    model = RiskBudgeting(
        risk_measure=RiskMeasure.VARIANCE,
        prior_estimator=EmpiricalPrior(mu_estimator=EmpiricalMu(), covariance_estimator=cov_estimator),
        solver="CLARABEL",
        solver_params={"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12},
    )
    model.fit(rets)
    return np.asarray(model.weights_)


def risk_parity(cov, budget=None):
    s = cov.values / np.max(np.diag(cov.values))
    n = len(s)
    b = np.full(n, 1.0 / n) if budget is None else np.asarray(budget)
    f = lambda y: 0.5 * y @ s @ y - b @ np.log(y)
    g = lambda y: s @ y - b / y
    res = minimize(f, np.full(n, 1.0), jac=g, method="L-BFGS-B", bounds=[(1e-12, None)] * n,
                   options={"ftol": 1e-16, "gtol": 1e-14, "maxiter": 100000})
    y = res.x
    return y / y.sum()


def write(name, window, params, expected):
    fixture = {
        "name": name,
        "source": "data/sp500_dataset.csv.gz",
        "dates": [str(window.index[0].date()), str(window.index[-1].date())],
        "symbols": list(window.columns),
        "closes": {s: window[s].tolist() for s in window.columns},
        "params": params,
        "expected": expected,
    }
    (OUT / f"{name}.json").write_text(json.dumps(fixture, indent=1))
    print(name, {k: (np.round(v, 4).tolist() if isinstance(v, list) else v) for k, v in expected.items()})


def case(name, window, bounds=(0.0, 1.0), covariance="sample"):
    rets, mu, cov = estimates(window, covariance)
    expected = {}
    for method, fn in [("min_variance", min_variance), ("max_sharpe", max_sharpe)]:
        try:
            w = fn(mu, cov, bounds)
            expected[method] = {"weights": w.tolist(), "daily_volatility": float(np.sqrt(w @ cov.values @ w))}
        except Exception as exc:  # noqa: BLE001 - recorded as a refusal
            expected[method] = {"error": str(exc)}
    if bounds == (0.0, 1.0):
        w = risk_parity_skfolio(rets, covariance)
        cross = risk_parity(cov)
        expected["risk_parity"] = {
            "weights": w.tolist(),
            "daily_volatility": float(np.sqrt(w @ cov.values @ w)),
            "scipy_max_abs_difference": float(np.max(np.abs(w - cross))),
        }
    params = {"weight_bounds": list(bounds), "covariance": covariance}
    if covariance == "ledoit_wolf":
        expected["covariance"] = cov.values.tolist()
    write(name, window, params, expected)


OUT.mkdir(exist_ok=True)
last252 = prices.iloc[-252:]
case("sp20_last252", last252)
case("sp5_last60", prices[["AAPL", "JNJ", "KO", "MSFT", "XOM"]].iloc[-60:])
near = prices[["AAPL", "MSFT", "JNJ"]].iloc[-120:].copy()
rng = np.random.default_rng(7)
near.insert(1, "AAPL2", (near["AAPL"] * (1 + 1e-4 * rng.standard_normal(len(near)))).round(6))
case("near_singular", near)
case("sp20_last252_bounded", last252, bounds=(0.02, 0.2))
case("sp20_last60_ledoit_wolf", prices.iloc[-60:], covariance="ledoit_wolf")
