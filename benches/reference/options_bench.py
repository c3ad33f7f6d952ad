"""QuantLib on the inputs of benches/options.rs.

    pip install QuantLib==1.44
    python benches/reference/options_bench.py

Times, in-process, the median of repeated runs of: a European price with
its greeks (the AnalyticEuropeanEngine recalculating after a spot change,
then NPV, delta, gamma, vega, theta, rho), 1 000 implied volatilities
(VanillaOption.impliedVolatility at accuracy 1e-12), an American put on
QuantLib's CRR tree with 500 steps (price, and QuantLib's tree delta,
gamma and theta), and on its Barone-Adesi-Whaley engine.
"""
import statistics
import time

import QuantLib as ql

TODAY = ql.Date(1, 12, 2026)
ql.Settings.instance().evaluationDate = TODAY
DC = ql.Actual365Fixed()


def process(spot_quote, vol, rate, div):
    return ql.BlackScholesMertonProcess(
        ql.QuoteHandle(spot_quote),
        ql.YieldTermStructureHandle(ql.FlatForward(TODAY, div, DC)),
        ql.YieldTermStructureHandle(ql.FlatForward(TODAY, rate, DC)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(TODAY, ql.NullCalendar(), vol, DC)),
    )


def median_us(run, n):
    run()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def option(kind, strike, days, american=False):
    payoff = ql.PlainVanillaPayoff(kind, strike)
    exercise = ql.AmericanExercise(TODAY, TODAY + days) if american else ql.EuropeanExercise(TODAY + days)
    return ql.VanillaOption(payoff, exercise)


spot = ql.SimpleQuote(100.0)
proc = process(spot, 0.25, 0.05, 0.02)
call = option(ql.Option.Call, 105.0, 182)
call.setPricingEngine(ql.AnalyticEuropeanEngine(proc))
bump = [0.0]


def european():
    bump[0] = 1e-9 - bump[0]
    spot.setValue(100.0 + bump[0])  # forces a recalculation
    return call.NPV(), call.delta(), call.gamma(), call.vega(), call.theta(), call.rho()


def european_price():
    bump[0] = 1e-9 - bump[0]
    spot.setValue(100.0 + bump[0])
    return call.NPV()


quotes = []
for i in range(1000):
    strike = 60.0 + (i % 100)
    days = round((1.0 / 12.0 + (i // 100) * 0.2) * 365)
    vol = 0.1 + 0.09 * (i % 11)
    kind = ql.Option.Call if strike >= 100.0 else ql.Option.Put
    p = process(ql.SimpleQuote(100.0), vol, 0.03, 0.01)
    o = option(kind, strike, days)
    o.setPricingEngine(ql.AnalyticEuropeanEngine(p))
    quotes.append((o, o.NPV(), p))


def implied_1000():
    return sum(o.impliedVolatility(price, p, 1e-12, 1000, 1e-7, 4.0) for o, price, p in quotes)


put = option(ql.Option.Put, 105.0, 182, american=True)
put_spot = ql.SimpleQuote(100.0)
put_proc = process(put_spot, 0.25, 0.05, 0.02)
crr = ql.BinomialVanillaEngine(put_proc, "crr", 500)
baw = ql.BaroneAdesiWhaleyApproximationEngine(put_proc)


def american(engine, greeks):
    def run():
        bump[0] = 1e-9 - bump[0]
        put_spot.setValue(100.0 + bump[0])
        put.setPricingEngine(engine)
        if greeks:
            return put.NPV(), put.delta(), put.gamma(), put.theta()
        return put.NPV()

    return run


print(f"QuantLib {ql.__version__}")
print(f"european_price_and_greeks   {median_us(european, 20000):10.3f} us")
print(f"european_price              {median_us(european_price, 20000):10.3f} us")
print(f"implied_volatility_1000     {median_us(implied_1000, 50):10.1f} us")
print(f"american_put/crr_500_price  {median_us(american(crr, False), 200):10.1f} us")
print(f"american_put/crr_500_greeks {median_us(american(crr, True), 200):10.1f} us  (delta, gamma, theta from the tree)")
print(f"american_put/baw_price      {median_us(american(baw, False), 20000):10.3f} us")
