//! Finite-difference derivatives (with statsmodels' step sizes, which arch's
//! standard errors use) and the small dense linear algebra they feed.

/// A square matrix, row-major.
pub(crate) type Matrix = Vec<Vec<f64>>;

/// Per-parameter steps `EPS^(1/s) · max(|xᵢ|, 0.1)` (statsmodels'
/// `_get_epsilon`): `s = 2` for forward differences, 3 for central, 4 for
/// second differences.
pub(crate) fn steps(x: &[f64], s: i32) -> Vec<f64> {
    let base = f64::EPSILON.powf(1.0 / f64::from(s));
    x.iter().map(|v| base * v.abs().max(0.1)).collect()
}

/// `x` with `a` added to coordinate `i` and then `b` to coordinate `j`.
fn shifted(x: &[f64], (i, a): (usize, f64), (j, b): (usize, f64)) -> Vec<f64> {
    let mut p = x.to_vec();
    p[i] += a;
    p[j] += b;
    p
}

/// Central-difference gradient of `f`.
pub(crate) fn gradient(f: impl Fn(&[f64]) -> f64, x: &[f64]) -> Vec<f64> {
    let h: Vec<f64> = steps(x, 3).iter().map(|h| h / 2.0).collect();
    (0..x.len())
        .map(|i| {
            let up = f(&shifted(x, (i, h[i]), (i, 0.0)));
            let down = f(&shifted(x, (i, -h[i]), (i, 0.0)));
            (up - down) / (2.0 * h[i])
        })
        .collect()
}

/// Hessian of `f` by four-point second differences with steps
/// `EPS^(1/4) · max(|xᵢ|, 0.1)`, term for term statsmodels' `approx_hess3`.
pub(crate) fn hessian(f: impl Fn(&[f64]) -> f64, x: &[f64]) -> Matrix {
    let n = x.len();
    let h = steps(x, 4);
    let mut hess = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in i..n {
            let value = (f(&shifted(x, (i, h[i]), (j, h[j])))
                - f(&shifted(x, (i, h[i]), (j, -h[j])))
                - (f(&shifted(x, (i, -h[i]), (j, h[j]))) - f(&shifted(x, (i, -h[i]), (j, -h[j])))))
                / (4.0 * (h[i] * h[j]));
            hess[i][j] = value;
            hess[j][i] = value;
        }
    }
    hess
}

/// Forward-difference Jacobian of a vector-valued `f`, one row per output
/// (statsmodels' `approx_fprime` with `centered=False`).
pub(crate) fn jacobian(f: impl Fn(&[f64]) -> Vec<f64>, x: &[f64]) -> Vec<Vec<f64>> {
    let h = steps(x, 2);
    let base = f(x);
    let columns: Vec<Vec<f64>> = (0..x.len())
        .map(|k| {
            let moved = f(&shifted(x, (k, h[k]), (k, 0.0)));
            moved
                .iter()
                .zip(&base)
                .map(|(m, b)| (m - b) / h[k])
                .collect()
        })
        .collect();
    (0..base.len())
        .map(|t| {
            columns
                .iter()
                .map(|c| c.get(t).copied().unwrap_or(f64::NAN))
                .collect()
        })
        .collect()
}

/// Solves `a x = b` for symmetric positive definite `a` (Cholesky); `None`
/// if `a` is not positive definite.
pub(crate) fn solve_spd(a: &Matrix, b: &[f64]) -> Option<Vec<f64>> {
    let n = b.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let sum: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            if i == j {
                let d = a[i][i] - sum;
                if !(d > 0.0 && d.is_finite()) {
                    return None;
                }
                l[i][i] = d.sqrt();
            } else {
                l[i][j] = (a[i][j] - sum) / l[j][j];
            }
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        y[i] = (b[i] - (0..i).map(|k| l[i][k] * y[k]).sum::<f64>()) / l[i][i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        x[i] = (y[i] - (i + 1..n).map(|k| l[k][i] * x[k]).sum::<f64>()) / l[i][i];
    }
    Some(x)
}

/// Solves `a x = b` (Gaussian elimination, partial pivoting); `None` if `a`
/// is singular to working precision.
pub(crate) fn solve(a: &Matrix, b: &[f64]) -> Option<Vec<f64>> {
    let inverse = invert(a)?;
    Some(
        inverse
            .iter()
            .map(|row| row.iter().zip(b).map(|(r, v)| r * v).sum())
            .collect(),
    )
}

/// The inverse of `a` (Gauss-Jordan, partial pivoting); `None` if `a` is
/// singular to working precision.
pub(crate) fn invert(a: &Matrix) -> Option<Matrix> {
    let n = a.len();
    let scale = a.iter().flatten().fold(0.0_f64, |m, v| m.max(v.abs()));
    if !(scale > 0.0 && scale.is_finite()) {
        return None;
    }
    let mut m: Matrix = a.to_vec();
    let mut inv: Matrix = (0..n)
        .map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect();
    for col in 0..n {
        let pivot = (col..n).max_by(|&r, &s| m[r][col].abs().total_cmp(&m[s][col].abs()))?;
        if m[pivot][col].abs() <= scale * 1e-14 {
            return None;
        }
        m.swap(col, pivot);
        inv.swap(col, pivot);
        let p = m[col][col];
        for j in 0..n {
            m[col][j] /= p;
            inv[col][j] /= p;
        }
        for r in 0..n {
            if r != col {
                let factor = m[r][col];
                if factor != 0.0 {
                    for j in 0..n {
                        m[r][j] -= factor * m[col][j];
                        inv[r][j] -= factor * inv[col][j];
                    }
                }
            }
        }
    }
    Some(inv)
}

/// `a b` for square matrices of the same size.
pub(crate) fn matmul(a: &Matrix, b: &Matrix) -> Matrix {
    let n = a.len();
    (0..n)
        .map(|i| {
            (0..n)
                .map(|j| (0..n).map(|k| a[i][k] * b[k][j]).sum())
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_of_a_quadratic() {
        let f = |x: &[f64]| 3.0 * x[0] * x[0] + x[0] * x[1] + 2.0 * x[1] * x[1];
        let g = gradient(f, &[1.0, -2.0]);
        assert!((g[0] - 4.0).abs() < 1e-8 && (g[1] + 7.0).abs() < 1e-8);
        let h = hessian(f, &[1.0, -2.0]);
        assert!((h[0][0] - 6.0).abs() < 1e-6 && (h[0][1] - 1.0).abs() < 1e-6);
        assert!((h[1][1] - 4.0).abs() < 1e-6 && h[0][1] == h[1][0]);
        let j = jacobian(|x: &[f64]| vec![x[0] * x[1], x[1]], &[2.0, 3.0]);
        assert!((j[0][0] - 3.0).abs() < 1e-6 && (j[0][1] - 2.0).abs() < 1e-6);
        assert!(j[1][0].abs() < 1e-9 && (j[1][1] - 1.0).abs() < 1e-9);
    }

    #[test]
    fn linear_algebra() {
        let a = vec![vec![4.0, 1.0], vec![1.0, 3.0]];
        let x = solve_spd(&a, &[1.0, 2.0]).unwrap();
        assert!((4.0 * x[0] + x[1] - 1.0).abs() < 1e-12 && (x[0] + 3.0 * x[1] - 2.0).abs() < 1e-12);
        assert!(solve_spd(&vec![vec![1.0, 2.0], vec![2.0, 1.0]], &[1.0, 1.0]).is_none());
        let y = solve(&vec![vec![0.0, 2.0], vec![1.0, 1.0]], &[2.0, 3.0]).unwrap();
        assert!((y[0] - 2.0).abs() < 1e-12 && (y[1] - 1.0).abs() < 1e-12);
        let inv = invert(&a).unwrap();
        let id = matmul(&a, &inv);
        assert!((id[0][0] - 1.0).abs() < 1e-12 && id[0][1].abs() < 1e-12);
        assert!(invert(&vec![vec![1.0, 2.0], vec![2.0, 4.0]]).is_none());
    }
}
