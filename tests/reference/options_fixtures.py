"""Reference option prices and greeks for tickcast's options tests.

Run by hand (not by CI) from the repository root:

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install QuantLib==1.44 numpy
    /tmp/venv/bin/python tests/reference/options_fixtures.py

Writes tests/reference/fixtures/options_*.json:

- options_european.json: QuantLib's AnalyticEuropeanEngine on a grid of
  calls and puts (moneyness 0.5-2, expiries 1 day to 5 years, volatilities
  5-150 %, rates -1 to 10 %, dividend yields 0-6 %), with QuantLib's greeks
  in its own units (vega and rho per 1.0, theta per year), and whether the
  price carries volatility information (it moves by at least 1e-9 for a
  0.1 % volatility bump), for the implied-volatility round trip.
- options_american.json: on a grid of American calls and puts, a textbook
  Cox-Ross-Rubinstein tree written out below (u = exp(sigma sqrt(dt)),
  d = 1/u, p = (exp((r - q) dt) - d)/(u - d)) with its greeks (delta and
  gamma from the tree's first two steps, theta from the middle node two
  steps in, vega and rho by central bumps of 1e-4), QuantLib's
  finite-difference engine on a fine grid (the converged reference), and
  QuantLib's Barone-Adesi-Whaley engine, with the BAW greeks by the same
  central bumps through QuantLib.

Expiries are whole days on Actual/365 Fixed, so `expiry_years` = days/365
is exactly the year fraction QuantLib uses.
"""
import itertools
import json
import math
import pathlib

import numpy as np
import QuantLib as ql

OUT = pathlib.Path(__file__).resolve().parent / "fixtures"
TODAY = ql.Date(1, 12, 2026)
ql.Settings.instance().evaluationDate = TODAY
DC = ql.Actual365Fixed()
BUMP = 1e-4


class Market:
    """Quotes a QuantLib process reads, so bumps reprice in place."""

    def __init__(self, spot, rate, div, vol):
        self.spot = ql.SimpleQuote(spot)
        self.rate = ql.SimpleQuote(rate)
        self.div = ql.SimpleQuote(div)
        self.vol = ql.SimpleQuote(vol)
        self.process = ql.BlackScholesMertonProcess(
            ql.QuoteHandle(self.spot),
            ql.YieldTermStructureHandle(ql.FlatForward(TODAY, ql.QuoteHandle(self.div), DC)),
            ql.YieldTermStructureHandle(ql.FlatForward(TODAY, ql.QuoteHandle(self.rate), DC)),
            ql.BlackVolTermStructureHandle(
                ql.BlackConstantVol(TODAY, ql.NullCalendar(), ql.QuoteHandle(self.vol), DC)
            ),
        )


def option(kind, strike, days, american):
    payoff = ql.PlainVanillaPayoff(ql.Option.Call if kind == "call" else ql.Option.Put, strike)
    maturity = TODAY + days
    exercise = ql.AmericanExercise(TODAY, maturity) if american else ql.EuropeanExercise(maturity)
    return ql.VanillaOption(payoff, exercise)


def european_grid():
    spot = 100.0
    cases = []
    for kind, m, days, vol, (rate, div) in itertools.product(
        ["call", "put"],
        [0.5, 0.8, 0.95, 1.0, 1.05, 1.25, 2.0],
        [1, 7, 91, 365, 1826],
        [0.05, 0.2, 0.6, 1.5],
        [(-0.01, 0.0), (0.0, 0.02), (0.05, 0.02), (0.10, 0.0), (0.03, 0.06)],
    ):
        strike = spot * m
        market = Market(spot, rate, div, vol)
        opt = option(kind, strike, days, american=False)
        opt.setPricingEngine(ql.AnalyticEuropeanEngine(market.process))
        price = opt.NPV()
        market.vol.setValue(vol + 0.001)
        moves = abs(opt.NPV() - price) >= 1e-9
        market.vol.setValue(vol)
        cases.append(
            {
                "kind": kind,
                "spot": spot,
                "strike": strike,
                "expiry_years": days / 365.0,
                "volatility": vol,
                "rate": rate,
                "dividend_yield": div,
                "price": price,
                "delta": opt.delta(),
                "gamma": opt.gamma(),
                "vega": opt.vega(),
                "theta": opt.theta(),
                "rho": opt.rho(),
                "vol_informative": moves,
            }
        )
    return cases


def crr(kind, s, k, t, vol, r, q, steps, american=True):
    """Textbook CRR tree: the price and the nodes of steps 1 and 2."""
    dt = t / steps
    u = math.exp(vol * math.sqrt(dt))
    d = 1.0 / u
    p = (math.exp((r - q) * dt) - d) / (u - d)
    disc = math.exp(-r * dt)
    sign = 1.0 if kind == "call" else -1.0
    j = np.arange(steps + 1)
    values = np.maximum(sign * (s * u ** (2.0 * j - steps) - k), 0.0)
    early = {}
    for i in range(steps - 1, -1, -1):
        values = disc * (p * values[1:] + (1.0 - p) * values[:-1])
        if american:
            nodes = s * u ** (2.0 * np.arange(i + 1) - i)
            values = np.maximum(values, sign * (nodes - k))
        if i <= 2:
            early[i] = values.copy()
    return early, u, d, dt


def crr_greeks(kind, s, k, t, vol, r, q, steps):
    early, u, d, dt = crr(kind, s, k, t, vol, r, q, steps)
    v0, v1, v2 = early[0][0], early[1], early[2]
    delta = (v1[1] - v1[0]) / (s * u - s * d)
    up = (v2[2] - v2[1]) / (s * u * u - s)
    down = (v2[1] - v2[0]) / (s - s * d * d)
    gamma = (up - down) / (0.5 * (s * u * u - s * d * d))
    theta = (v2[1] - v0) / (2.0 * dt)

    def price(vol_=vol, r_=r):
        return crr(kind, s, k, t, vol_, r_, q, steps)[0][0][0]

    vega = (price(vol_=vol + BUMP) - price(vol_=vol - BUMP)) / (2 * BUMP)
    rho = (price(r_=r + BUMP) - price(r_=r - BUMP)) / (2 * BUMP)
    return {"price": v0, "delta": delta, "gamma": gamma, "vega": vega, "theta": theta, "rho": rho}


def bumped(opt, quote, h):
    x = quote.value()
    quote.setValue(x + h)
    up = opt.NPV()
    quote.setValue(x - h)
    down = opt.NPV()
    quote.setValue(x)
    return up, down


def american_grid(steps):
    spot = 100.0
    cases = []
    for kind, strike, days, vol, (rate, div) in itertools.product(
        ["call", "put"],
        [80.0, 90.0, 100.0, 110.0, 120.0],
        [30, 182, 365, 730],
        [0.1, 0.25, 0.5],
        [(0.05, 0.0), (0.05, 0.02), (0.01, 0.06), (0.08, 0.03)],
    ):
        t = days / 365.0
        market = Market(spot, rate, div, vol)
        opt = option(kind, strike, days, american=True)
        opt.setPricingEngine(ql.FdBlackScholesVanillaEngine(market.process, 1000, 1000))
        fd = opt.NPV()
        opt.setPricingEngine(ql.BaroneAdesiWhaleyApproximationEngine(market.process))
        baw = opt.NPV()
        h = BUMP * spot
        s_up, s_down = bumped(opt, market.spot, h)
        v_up, v_down = bumped(opt, market.vol, BUMP)
        r_up, r_down = bumped(opt, market.rate, BUMP)
        cases.append(
            {
                "kind": kind,
                "spot": spot,
                "strike": strike,
                "expiry_years": t,
                "volatility": vol,
                "rate": rate,
                "dividend_yield": div,
                "steps": steps,
                "crr": crr_greeks(kind, spot, strike, t, vol, rate, div, steps),
                "fd": fd,
                "baw": {
                    "price": baw,
                    "delta": (s_up - s_down) / (2 * h),
                    "gamma": (s_up - 2 * baw + s_down) / (h * h),
                    "vega": (v_up - v_down) / (2 * BUMP),
                    "rho": (r_up - r_down) / (2 * BUMP),
                },
            }
        )
    return cases


def main():
    OUT.mkdir(exist_ok=True)
    european = european_grid()
    (OUT / "options_european.json").write_text(json.dumps({"quantlib": ql.__version__, "cases": european}, indent=1))
    american = american_grid(500)
    (OUT / "options_american.json").write_text(json.dumps({"quantlib": ql.__version__, "cases": american}, indent=1))
    print(f"{len(european)} European, {len(american)} American cases")


if __name__ == "__main__":
    main()
