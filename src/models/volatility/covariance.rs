//! Parameter standard errors as arch reports them by default
//! (`cov_type="robust"`): the Bollerslev-Wooldridge sandwich `H⁻¹ S H⁻¹ / n`,
//! with `H` the numerical Hessian of the mean negative log-likelihood and `S`
//! the sample covariance of the per-period scores. It stays valid when the
//! shocks are not of the assumed distribution, which for returns they never
//! quite are.

use super::likelihood::Sample;
use super::numeric::{hessian, invert, jacobian, matmul, Matrix};

/// The robust standard errors at `x`, in `x`'s order; `None` when the
/// Hessian is singular or a variance comes out negative.
pub(crate) fn robust_std_errors(sample: &Sample, x: &[f64]) -> Option<Vec<f64>> {
    let n = sample.len() as f64;
    let k = x.len();
    let hess: Matrix = hessian(|p| sample.nll(p), x)
        .into_iter()
        .map(|row| row.into_iter().map(|v| v / n).collect())
        .collect();
    let inverse = invert(&hess)?;
    let scores = jacobian(|p| sample.nll_terms(p), x);
    let mean: Vec<f64> = (0..k)
        .map(|j| scores.iter().map(|s| s[j]).sum::<f64>() / n)
        .collect();
    let score_cov: Matrix = (0..k)
        .map(|a| {
            (0..k)
                .map(|b| {
                    scores
                        .iter()
                        .map(|s| (s[a] - mean[a]) * (s[b] - mean[b]))
                        .sum::<f64>()
                        / (n - 1.0)
                })
                .collect()
        })
        .collect();
    let sandwich = matmul(&matmul(&inverse, &score_cov), &inverse);
    (0..k)
        .map(|i| {
            let variance = sandwich[i][i] / n;
            (variance >= 0.0 && variance.is_finite()).then(|| variance.sqrt())
        })
        .collect()
}
