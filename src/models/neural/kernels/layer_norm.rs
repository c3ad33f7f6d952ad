//! Layer normalisation over the last dimension as one op with a
//! hand-written backward pass.
//!
//! `candle_nn::ops::layer_norm_slow` (the differentiable one) is nine tensor
//! ops forward and about twice as many backward, each a full pass over the
//! activations; here the forward pass is one pass per row that keeps the
//! normalised rows and their reciprocal standard deviations, and the
//! backward pass one more. Same definition: biased variance, `eps` inside
//! the square root, `y = (x - mean) / sqrt(var + eps) * weight + bias`.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};

use super::{contiguous, one, zero, Real, Saved};

const OP: &str = "layer norm";

/// `x [.., D]` normalised over its last dimension, scaled by `weight [D]`
/// and shifted by `bias [D]`.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    let x = x.contiguous()?;
    x.apply_op3(
        &weight.contiguous()?,
        &bias.contiguous()?,
        LayerNorm {
            eps,
            saved: Saved::default(),
        },
    )
}

struct LayerNorm {
    eps: f64,
    saved: Saved,
}

/// One forward pass: the normalised rows `[N, D]` and each row's
/// `1 / sqrt(var + eps)` `[N]`.
struct Buffers<T> {
    normed: Vec<T>,
    rstd: Vec<T>,
}

fn width(x: &Shape, weight: &Shape, bias: &Shape) -> Result<usize> {
    let d = x.dims().last().copied().unwrap_or(0);
    if d == 0 || weight.dims() != [d] || bias.dims() != [d] {
        candle_core::bail!(
            "{OP}: input {x:?} with weight {weight:?} and bias {bias:?}: \
             both must have the input's last dimension"
        );
    }
    Ok(d)
}

fn forward<T: Real>(x: &[T], weight: &[T], bias: &[T], d: usize, eps: f64) -> (Vec<T>, Buffers<T>) {
    let rows = x.len() / d;
    let mut y = vec![zero::<T>(); x.len()];
    let mut normed = vec![zero::<T>(); x.len()];
    let mut rstd = vec![zero::<T>(); rows];
    let inv_d = T::from_f64(1.0 / d as f64);
    let eps = T::from_f64(eps);
    for r in 0..rows {
        let xs = &x[r * d..(r + 1) * d];
        let mean = xs.iter().fold(zero::<T>(), |a, &v| a + v) * inv_d;
        let var = xs
            .iter()
            .fold(zero::<T>(), |a, &v| a + (v - mean) * (v - mean))
            * inv_d;
        let inv = one::<T>() / (var + eps).sqrt();
        rstd[r] = inv;
        let (n, out) = (&mut normed[r * d..(r + 1) * d], &mut y[r * d..(r + 1) * d]);
        for j in 0..d {
            n[j] = (xs[j] - mean) * inv;
            out[j] = n[j] * weight[j] + bias[j];
        }
    }
    (y, Buffers { normed, rstd })
}

/// Gradients of the input, weight and bias from the output's.
fn backward<T: Real>(weight: &[T], grad: &[T], saved: &Buffers<T>, d: usize) -> [Vec<T>; 3] {
    let rows = grad.len() / d;
    let mut dx = vec![zero::<T>(); grad.len()];
    let mut dw = vec![zero::<T>(); d];
    let mut db = vec![zero::<T>(); d];
    let mut g = vec![zero::<T>(); d];
    let inv_d = T::from_f64(1.0 / d as f64);
    for r in 0..rows {
        let (dy, n) = (&grad[r * d..(r + 1) * d], &saved.normed[r * d..(r + 1) * d]);
        let (mut mean_g, mut mean_gn) = (zero::<T>(), zero::<T>());
        for j in 0..d {
            dw[j] += dy[j] * n[j];
            db[j] += dy[j];
            g[j] = dy[j] * weight[j];
            mean_g += g[j];
            mean_gn += g[j] * n[j];
        }
        let (mean_g, mean_gn) = (mean_g * inv_d, mean_gn * inv_d);
        let inv = saved.rstd[r];
        for (j, out) in dx[r * d..(r + 1) * d].iter_mut().enumerate() {
            *out = inv * (g[j] - mean_g - n[j] * mean_gn);
        }
    }
    [dx, dw, db]
}

impl LayerNorm {
    fn run<T: Real>(&self, x: &[T], weight: &[T], bias: &[T], d: usize) -> Result<CpuStorage> {
        let (y, saved) = forward(x, weight, bias, d, self.eps);
        self.saved.put(OP, saved)?;
        Ok(T::to_cpu_storage_owned(y))
    }

    fn grads<T: Real>(
        &self,
        x: &Tensor,
        weight: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = weight.elem_count();
        let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<T>();
        let (w, dy) = (flat(weight)?, flat(grad)?);
        let [dx, dw, db] = self
            .saved
            .with(OP, |saved: &Buffers<T>| backward(&w, &dy, saved, d))?;
        let device = x.device();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), device)?),
            Some(Tensor::from_vec(dw, d, device)?),
            Some(Tensor::from_vec(db, d, device)?),
        ))
    }
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = width(l1.shape(), l2.shape(), l3.shape())?;
        let storage = match (s1, s2, s3) {
            (CpuStorage::F32(_), CpuStorage::F32(_), CpuStorage::F32(_)) => self.run::<f32>(
                contiguous(OP, s1, l1)?,
                contiguous(OP, s2, l2)?,
                contiguous(OP, s3, l3)?,
                d,
            )?,
            (CpuStorage::F64(_), CpuStorage::F64(_), CpuStorage::F64(_)) => self.run::<f64>(
                contiguous(OP, s1, l1)?,
                contiguous(OP, s2, l2)?,
                contiguous(OP, s3, l3)?,
                d,
            )?,
            _ => candle_core::bail!(
                "{OP}: runs in f32 or f64, got {:?}, {:?} and {:?}",
                s1.dtype(),
                s2.dtype(),
                s3.dtype()
            ),
        };
        Ok((storage, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        match x.dtype() {
            DType::F32 => self.grads::<f32>(x, weight, grad),
            DType::F64 => self.grads::<f64>(x, weight, grad),
            other => candle_core::bail!("{OP}: no backward pass in {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::super::testing::{check_against_ops, check_gradients, wavy};
    use super::*;

    fn inputs(dtype: DType) -> [Var; 3] {
        [
            wavy(&[2, 3, 5], 0.91, 2.0, dtype),
            wavy(&[5], 1.3, 1.5, dtype),
            wavy(&[5], 0.4, 0.5, dtype),
        ]
    }

    #[test]
    fn the_op_agrees_with_candles_differentiable_layer_norm() {
        check_against_ops(
            &inputs(DType::F32),
            |x| layer_norm(&x[0], &x[1], &x[2], 1e-5).unwrap(),
            |x| candle_nn::ops::layer_norm_slow(&x[0], &x[1], &x[2], 1e-5).unwrap(),
        );
    }

    #[test]
    fn gradients_match_finite_differences() {
        check_gradients(&inputs(DType::F64), |x| {
            layer_norm(&x[0], &x[1], &x[2], 1e-5).unwrap()
        });
    }

    #[test]
    fn a_weight_of_the_wrong_width_is_refused() {
        let x = Tensor::zeros((2, 4), DType::F32, &Device::Cpu).unwrap();
        let w = Tensor::ones(3, DType::F32, &Device::Cpu).unwrap();
        let err = layer_norm(&x, &w, &w, 1e-5).unwrap_err().to_string();
        assert!(err.contains("last dimension"), "{err}");
    }
}
