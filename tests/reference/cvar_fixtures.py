"""Reference min-CVaR portfolios and efficient frontiers for tickcast's tests.

Run by hand (not by CI) from the repository root:

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install skfolio==1.12.2 pyportfolioopt==1.6.0 scipy pandas
    /tmp/venv/bin/python tests/reference/cvar_fixtures.py

Input: the closes of tests/reference/fixtures/sp20_last252.json (the 20
embedded stocks, 2021-12-29..2022-12-28), as simple daily returns.

min_cvar: skfolio MeanRisk(risk_measure=CVAR, objective=MINIMIZE_RISK,
cvar_beta=level, min/max weights) with Clarabel at tight tolerances,
cross-checked against the same Rockafellar-Uryasev LP solved by scipy's
linprog (HiGHS). As a CVaR LP can have many optimal portfolios, the width
of each weight's range over the optimal face (CVaR within 1e-10 of the
optimum) is measured by 2n more LPs: a width near 0 means the reference
weights are the only answer.

efficient_frontier: PyPortfolioOpt (sample covariance, Clarabel) at the
targets tickcast uses: evenly spaced from the min-variance portfolio's
return to the highest return the bounds allow (the last pulled in by
1e-9 of the span), each efficient_return(target).

Writes tests/reference/fixtures/cvar_*.json and frontier_*.json.
"""
import json
import pathlib

import numpy as np
import pandas as pd
import pypfopt
import scipy
import skfolio
from pypfopt import EfficientFrontier
from scipy.optimize import linprog
from scipy.sparse import csr_matrix, hstack, identity
from skfolio import RiskMeasure
from skfolio.measures import cvar as sk_cvar
from skfolio.measures import value_at_risk as sk_var
from skfolio.optimization import MeanRisk, ObjectiveFunction

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "fixtures"
TOL = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12}
VERSIONS = {"skfolio": skfolio.__version__, "pypfopt": pypfopt.__version__, "scipy": scipy.__version__}

source = json.loads((OUT / "sp20_last252.json").read_text())
symbols = source["symbols"]
closes = pd.DataFrame({s: source["closes"][s] for s in symbols})
rets = closes.pct_change().dropna()
R = rets.to_numpy()
T, N = R.shape


def skfolio_min_cvar(level, bounds):
    model = MeanRisk(
        risk_measure=RiskMeasure.CVAR,
        objective_function=ObjectiveFunction.MINIMIZE_RISK,
        cvar_beta=level,
        min_weights=bounds[0],
        max_weights=bounds[1],
        solver="CLARABEL",
        solver_params=TOL,
    )
    model.fit(rets)
    return np.asarray(model.weights_)


def lp(level, bounds):
    """The R-U LP over x = [w (N), alpha, u (T)]: (c, A_ub, b_ub, A_eq, b_eq, var bounds)."""
    c = np.concatenate([np.zeros(N), [1.0], np.full(T, 1.0 / ((1 - level) * T))])
    # -r_t'w - alpha - u_t <= 0
    a_ub = hstack([csr_matrix(-R), csr_matrix(-np.ones((T, 1))), -identity(T)]).tocsr()
    b_ub = np.zeros(T)
    a_eq = csr_matrix(np.concatenate([np.ones(N), [0.0], np.zeros(T)])[None, :])
    var_bounds = [bounds] * N + [(None, None)] + [(0, None)] * T
    return c, a_ub, b_ub, a_eq, np.array([1.0]), var_bounds


def highs_min_cvar(level, bounds):
    c, a_ub, b_ub, a_eq, b_eq, vb = lp(level, bounds)
    res = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=vb, method="highs",
                  options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10})
    assert res.status == 0, res.message
    return res.x[:N], res.fun


def optimal_face_widths(level, bounds, optimum, slack=1e-10):
    """max w_i - min w_i over portfolios whose CVaR is within `slack` of the optimum."""
    c, a_ub, b_ub, a_eq, b_eq, vb = lp(level, bounds)
    from scipy.sparse import vstack
    a = vstack([a_ub, csr_matrix(c[None, :])]).tocsr()
    b = np.concatenate([b_ub, [optimum + slack]])
    widths = []
    for i in range(N):
        e = np.zeros(len(c))
        e[i] = 1.0
        lo = linprog(e, A_ub=a, b_ub=b, A_eq=a_eq, b_eq=b_eq, bounds=vb, method="highs")
        hi = linprog(-e, A_ub=a, b_ub=b, A_eq=a_eq, b_eq=b_eq, bounds=vb, method="highs")
        assert lo.status == 0 and hi.status == 0, (lo.message, hi.message)
        widths.append(hi.x[i] - lo.x[i])
    return widths


def write(name, params, expected):
    fixture = {
        "name": name,
        "input": "tests/reference/fixtures/sp20_last252.json",
        "versions": VERSIONS,
        "params": params,
        "expected": expected,
    }
    (OUT / f"{name}.json").write_text(json.dumps(fixture, indent=1) + "\n")


def cvar_case(name, level, bounds):
    w = skfolio_min_cvar(level, bounds)
    port = R @ w
    objective = float(sk_cvar(port, beta=level))
    hw, hfun = highs_min_cvar(level, bounds)
    widths = optimal_face_widths(level, bounds, hfun)
    expected = {
        "weights": w.tolist(),
        "cvar": objective,
        "value_at_risk": float(sk_var(port, beta=level)),
        "highs_weights": hw.tolist(),
        "highs_cvar": float(hfun),
        "max_abs_weight_difference_skfolio_highs": float(np.max(np.abs(w - hw))),
        "cvar_difference_skfolio_highs": objective - float(hfun),
        "max_weight_range_on_optimal_face": float(max(widths)),
    }
    write(name, {"method": "min_cvar", "cvar_level": level, "weight_bounds": list(bounds)}, expected)
    print(name, f"cvar {objective:.10f} highs {hfun:.10f} |dw| {expected['max_abs_weight_difference_skfolio_highs']:.2e}"
          f" face width {max(widths):.2e}", np.round(w, 4).tolist())


def max_return(mu, bounds):
    lo, hi = bounds
    w = np.full(len(mu), lo)
    left = 1.0 - lo * len(mu)
    for i in np.argsort(-mu, kind="stable"):
        add = max(min(hi - lo, left), 0.0)
        w[i] += add
        left -= add
    return float(w @ mu)


def frontier_case(name, points, bounds):
    mu, cov = rets.mean(), rets.cov()
    ef = EfficientFrontier(mu, cov, weight_bounds=bounds, solver="CLARABEL", solver_options=TOL)
    ef.min_volatility()
    w0 = np.array([ef.weights[i] for i in range(N)])
    start, top = float(w0 @ mu.values), max_return(mu.values, bounds)
    span = top - start
    out = [w0]
    for k in range(1, points):
        target = start + span * k / (points - 1)
        if k == points - 1:
            target -= 1e-9 * span
        ef = EfficientFrontier(mu, cov, weight_bounds=bounds, solver="CLARABEL", solver_options=TOL)
        ef.efficient_return(target)
        out.append(np.array([ef.weights[i] for i in range(N)]))
    expected = {
        "points": [
            {
                "weights": w.tolist(),
                "expected_return": float(w @ mu.values),
                "volatility": float(np.sqrt(w @ cov.values @ w)),
            }
            for w in out
        ],
        "max_return": top,
    }
    write(name, {"method": "efficient_frontier", "points": points, "weight_bounds": list(bounds)}, expected)
    print(name, [round(p["volatility"], 5) for p in expected["points"]])


cvar_case("cvar_sp20_last252", 0.95, (0.0, 1.0))
cvar_case("cvar_sp20_last252_99", 0.99, (0.0, 1.0))
cvar_case("cvar_sp20_last252_bounded", 0.95, (0.02, 0.2))
frontier_case("frontier_sp20_last252", 20, (0.0, 1.0))
frontier_case("frontier_sp20_last252_bounded", 12, (0.02, 0.2))
