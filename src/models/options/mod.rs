//! Vanilla options on one underlying: European prices and greeks in closed
//! form (Black-Scholes-Merton), American prices by the Cox-Ross-Rubinstein
//! tree or the Barone-Adesi-Whaley approximation, and implied volatility
//! (Jäckel's "Let's Be Rational" for European prices).
//!
//! Inputs are checked once into an [`OptionInputs`]; every engine then
//! answers a [`Valuation`] in the market's usual quotes (see [`Greeks`]).

pub mod baw;
pub mod binomial;
pub mod black_scholes;
pub mod implied;

use serde::{Deserialize, Serialize};

/// Longest expiry priced, in years.
pub const MAX_EXPIRY_YEARS: f64 = 100.0;
/// Highest volatility priced (1 000 % a year).
pub const MAX_VOLATILITY: f64 = 10.0;
/// Rates and dividend yields are continuously compounded and within ±100 %.
pub const MAX_ABS_RATE: f64 = 1.0;
/// Tree steps when the request names none.
pub const DEFAULT_STEPS: usize = 500;
/// Most tree steps one option may ask for.
pub const MAX_STEPS: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Call,
    Put,
}

impl Kind {
    /// +1 for a call, −1 for a put: the payoff is `max(sign · (S − K), 0)`.
    pub fn sign(self) -> f64 {
        match self {
            Kind::Call => 1.0,
            Kind::Put => -1.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    European,
    American,
}

/// How an option is valued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Black-Scholes-Merton closed form (European only).
    Analytic,
    /// Cox-Ross-Rubinstein tree (either style).
    Binomial,
    /// Barone-Adesi-Whaley quadratic approximation (American only).
    Baw,
}

impl Method {
    /// The method used when the request names none.
    pub fn default_for(style: Style) -> Method {
        match style {
            Style::European => Method::Analytic,
            Style::American => Method::Binomial,
        }
    }
}

/// Refused option inputs, each naming the field at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptionError {
    #[error("{0}")]
    InvalidInput(String),
    /// A price that carries no volatility, or a tree that cannot be built.
    #[error("{0}")]
    NoAnswer(String),
}

/// An option and its market, every field checked: prices are positive,
/// the expiry is in the future, volatility positive, rates bounded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptionInputs {
    pub kind: Kind,
    pub spot: f64,
    pub strike: f64,
    /// Years to expiry (Actual/365).
    pub expiry_years: f64,
    /// Annualised, as a fraction (0.25 is 25 %).
    pub volatility: f64,
    /// Continuously compounded risk-free rate.
    pub rate: f64,
    /// Continuously compounded dividend (or carry) yield.
    pub dividend_yield: f64,
}

impl OptionInputs {
    pub fn new(
        kind: Kind,
        spot: f64,
        strike: f64,
        expiry_years: f64,
        volatility: f64,
        rate: f64,
        dividend_yield: f64,
    ) -> Result<Self, OptionError> {
        positive("spot", spot, f64::MAX)?;
        positive("strike", strike, f64::MAX)?;
        if !expiry_years.is_finite() || expiry_years <= 0.0 {
            return Err(OptionError::InvalidInput(format!(
                "expiry_years must be a positive number of years (the expiry must be in the future), got {expiry_years}"
            )));
        }
        positive("expiry_years", expiry_years, MAX_EXPIRY_YEARS)?;
        positive("volatility", volatility, MAX_VOLATILITY)?;
        bounded_rate("rate", rate)?;
        bounded_rate("dividend_yield", dividend_yield)?;
        Ok(OptionInputs {
            kind,
            spot,
            strike,
            expiry_years,
            volatility,
            rate,
            dividend_yield,
        })
    }

    /// The same option on a forward instead of a spot: `S = F e^{-(r-q)T}`.
    pub fn spot_of_forward(forward: f64, expiry_years: f64, rate: f64, dividend_yield: f64) -> f64 {
        forward * (-(rate - dividend_yield) * expiry_years).exp()
    }

    /// The forward `F = S e^{(r-q)T}`.
    pub fn forward(&self) -> f64 {
        self.spot * ((self.rate - self.dividend_yield) * self.expiry_years).exp()
    }

    pub fn discount(&self) -> f64 {
        (-self.rate * self.expiry_years).exp()
    }

    pub fn dividend_discount(&self) -> f64 {
        (-self.dividend_yield * self.expiry_years).exp()
    }

    /// What exercising now pays.
    pub fn intrinsic(&self) -> f64 {
        (self.kind.sign() * (self.spot - self.strike)).max(0.0)
    }

    pub fn with_spot(self, spot: f64) -> Self {
        OptionInputs { spot, ..self }
    }
    pub fn with_volatility(self, volatility: f64) -> Self {
        OptionInputs { volatility, ..self }
    }
    pub fn with_rate(self, rate: f64) -> Self {
        OptionInputs { rate, ..self }
    }
    pub fn with_expiry(self, expiry_years: f64) -> Self {
        OptionInputs {
            expiry_years,
            ..self
        }
    }
}

fn positive(name: &str, x: f64, max: f64) -> Result<(), OptionError> {
    if x.is_finite() && x > 0.0 && x <= max {
        Ok(())
    } else {
        Err(OptionError::InvalidInput(format!(
            "{name} must be a number above 0 and at most {max}, got {x}"
        )))
    }
}

fn bounded_rate(name: &str, x: f64) -> Result<(), OptionError> {
    if x.is_finite() && x.abs() <= MAX_ABS_RATE {
        Ok(())
    } else {
        Err(OptionError::InvalidInput(format!(
            "{name} must be a continuously compounded rate from -1 to 1 (a fraction: 0.05 is 5 %), got {x}"
        )))
    }
}

/// Sensitivities in the units of calculus (as QuantLib reports them):
/// `vega = dV/dσ`, `theta = dV/dt` per year of calendar time passing,
/// `rho = dV/dr`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sensitivities {
    pub price: f64,
    pub delta: f64,
    pub gamma: f64,
    pub vega: f64,
    pub theta: f64,
    pub rho: f64,
}

/// A price and its greeks in the market's usual quotes: delta and gamma
/// per unit of spot, vega per volatility point (`dV/dσ × 0.01`), theta per
/// calendar day (`dV/dt / 365`, negative for a long option losing value),
/// rho per 1 % of rate (`dV/dr × 0.01`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Greeks {
    pub price: f64,
    pub delta: f64,
    pub gamma: f64,
    pub vega: f64,
    pub theta: f64,
    pub rho: f64,
}

impl From<Sensitivities> for Greeks {
    fn from(s: Sensitivities) -> Self {
        Greeks {
            price: s.price,
            delta: s.delta,
            gamma: s.gamma,
            vega: s.vega * 0.01,
            theta: s.theta / 365.0,
            rho: s.rho * 0.01,
        }
    }
}

/// The units of [`Greeks`], in words, as answers state them.
pub const UNITS: [(&str, &str); 7] = [
    ("price", "currency units per unit of the underlying"),
    ("delta", "change in price per 1 unit rise in spot"),
    ("gamma", "change in delta per 1 unit rise in spot"),
    ("vega", "change in price per 1 volatility point (volatility + 0.01)"),
    ("theta", "change in price per calendar day passing (1/365 year); negative when the option loses value"),
    ("rho", "change in price per 1 % rise in the risk-free rate (rate + 0.01)"),
    ("implied_volatility", "annualised, as a fraction (0.25 is 25 %)"),
];

/// Refuses the pairs of style and method that do not exist: an analytic
/// American price, a BAW European one.
pub fn check_method(style: Style, method: Method) -> Result<(), OptionError> {
    match (style, method) {
        (Style::American, Method::Analytic) => Err(OptionError::InvalidInput(
            "method analytic prices european options only; use binomial or baw for american".into(),
        )),
        (Style::European, Method::Baw) => Err(OptionError::InvalidInput(
            "method baw approximates american options; use analytic or binomial for european"
                .into(),
        )),
        _ => Ok(()),
    }
}

/// Values `inputs` by `method` for `style`, greeks included.
pub fn value(
    inputs: &OptionInputs,
    style: Style,
    method: Method,
    steps: usize,
) -> Result<Sensitivities, OptionError> {
    check_method(style, method)?;
    match method {
        Method::Analytic => Ok(black_scholes::value(inputs)),
        Method::Binomial => binomial::value(inputs, style, steps),
        Method::Baw => Ok(baw::value(inputs)),
    }
}

/// The price alone, for solvers that search over volatility.
pub fn price(
    inputs: &OptionInputs,
    style: Style,
    method: Method,
    steps: usize,
) -> Result<f64, OptionError> {
    check_method(style, method)?;
    match method {
        Method::Analytic => Ok(black_scholes::price(inputs)),
        Method::Binomial => binomial::price(inputs, style, steps),
        Method::Baw => Ok(baw::price(inputs)),
    }
}

/// The standard normal distribution: Cody's erfc via `implied-vol`, accurate
/// in the tails, so deep out-of-the-money prices keep their digits.
pub(crate) fn norm_cdf(x: f64) -> f64 {
    use implied_vol::SpecialFn as _;
    implied_vol::DefaultSpecialFn::norm_cdf(x)
}

pub(crate) fn norm_pdf(x: f64) -> f64 {
    const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
    INV_SQRT_2PI * (-0.5 * x * x).exp()
}
