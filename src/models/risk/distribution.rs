//! The standard normal law (density, distribution, quantile) and the
//! chi-square(1) survival function that turns a likelihood-ratio statistic
//! into a p-value. `erfc` is libm's (a port of FreeBSD msun, within an ulp
//! or so); the quantile is Acklam's rational approximation (relative error
//! 1.15e-9) polished by two Halley steps on `erfc`, to full double precision.

use std::f64::consts::{FRAC_1_SQRT_2, PI};

/// `φ(x) = e^{−x²/2} / √(2π)`.
pub fn norm_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * PI).sqrt()
}

/// `Φ(x) = ½ erfc(−x / √2)`, accurate far into both tails.
pub fn norm_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x * FRAC_1_SQRT_2)
}

/// `Φ⁻¹(p)` for `p` in (0, 1); ±∞ at 0 and 1, NaN outside.
pub fn norm_ppf(p: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) || p.is_nan() {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let mut x = crate::models::interval::normal_quantile(p);
    for _ in 0..2 {
        // Halley's step on Φ(x) − p, with the error taken in the tail
        // nearer to x so that it keeps its relative precision.
        let e = if x < 0.0 {
            norm_cdf(x) - p
        } else {
            (1.0 - p) - 0.5 * libm::erfc(x * FRAC_1_SQRT_2)
        };
        let u = e * (2.0 * PI).sqrt() * (0.5 * x * x).exp();
        x -= u / (1.0 + 0.5 * x * u);
    }
    x
}

/// `P(χ²₁ > x) = erfc(√(x/2))`; 1 for `x ≤ 0`.
pub fn chi2_1_sf(x: f64) -> f64 {
    if x <= 0.0 {
        1.0
    } else {
        libm::erfc((x / 2.0).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        (a - b).abs() / b.abs().max(1e-300)
    }

    // Values from scipy 1.17 (`norm.ppf`, `norm.cdf`, `chi2(1).sf`).
    #[test]
    fn quantiles_match_scipy() {
        for (p, x) in [
            (0.95, 1.6448536269514722),
            (0.99, 2.3263478740408408),
            (0.975, 1.959963984540054),
            (0.05, -1.6448536269514729),
            (0.01, -2.3263478740408408),
            (0.001, -3.090232306167813),
            (1e-10, -6.361340902404056),
            (0.6, 0.2533471031357997),
        ] {
            assert!(rel(norm_ppf(p), x) < 1e-14, "{p}: {} vs {x}", norm_ppf(p));
        }
        assert!(norm_ppf(1.5).is_nan());
    }

    #[test]
    fn cdf_and_sf_match_scipy() {
        assert!(rel(norm_cdf(-1.6448536269514729), 0.05) < 1e-14);
        assert!(rel(norm_cdf(-8.0), 6.22096057427174e-16) < 1e-13);
        assert!(rel(chi2_1_sf(3.841458820694124), 0.05) < 1e-13);
        assert!(rel(chi2_1_sf(6.6348966010212145), 0.01) < 1e-13);
        assert!(rel(chi2_1_sf(0.5), 0.47950012218695337) < 1e-14);
        assert_eq!(chi2_1_sf(0.0), 1.0);
        assert!(rel(norm_pdf(1.0), 0.24197072451914337) < 1e-15);
    }
}
