//! Multi-head scaled dot-product self-attention, from the packed
//! projections `qkv [B, T, 3D]` to the heads' context `[B, T, D]`, as one
//! op with a hand-written backward pass.
//!
//! Op by op this block is a dozen tensors forward (splitting the heads out,
//! transposes made contiguous, the scores, softmax's max, exponent, sum and
//! division, the weighted values, the heads put back) and more backward.
//! Here each (window, head) pair is a few small matrix products on strided
//! views of `qkv`, and the attention weights are the one buffer kept for
//! the backward pass. The layout is `qkv`'s as `[B, T, 3, heads, D / heads]`
//! (queries, keys, values), the context's as `[B, T, heads, D / heads]`.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2, ShapeBuilder};

use super::{contiguous, one, zero, Real, Saved};

const OP: &str = "self-attention";

/// The context of every position `[B, T, D]` from `qkv [B, T, 3D]`.
pub fn self_attention(qkv: &Tensor, heads: usize) -> Result<Tensor> {
    qkv.contiguous()?.apply_op1(Attention {
        heads,
        saved: Saved::default(),
    })
}

struct Attention {
    heads: usize,
    saved: Saved,
}

#[derive(Debug, Clone, Copy)]
struct Dims {
    batch: usize,
    steps: usize,
    model: usize,
    heads: usize,
}

impl Dims {
    fn head(&self) -> usize {
        self.model / self.heads
    }

    /// The `[T, D / heads]` view of part `p` (0 queries, 1 keys, 2 values)
    /// of head `h` of window `b`, as an offset into `qkv` and a row stride.
    fn part(&self, b: usize, p: usize, h: usize) -> (usize, usize) {
        let row = 3 * self.model;
        (b * self.steps * row + p * self.model + h * self.head(), row)
    }

    /// The same for the context `[B, T, D]`.
    fn context(&self, b: usize, h: usize) -> (usize, usize) {
        (b * self.steps * self.model + h * self.head(), self.model)
    }
}

fn dims(qkv: &Shape, heads: usize) -> Result<Dims> {
    let (batch, steps, packed) = qkv.dims3()?;
    if heads == 0 || packed % 3 != 0 || (packed / 3) % heads != 0 {
        candle_core::bail!(
            "{OP}: qkv of width {packed} is not three blocks of a model width \
             divisible by {heads} heads"
        );
    }
    Ok(Dims {
        batch,
        steps,
        model: packed / 3,
        heads,
    })
}

/// A `[rows, cols]` view starting at `offset` with row stride `stride`.
fn strided<T: Real>(
    v: &[T],
    offset: usize,
    rows: usize,
    cols: usize,
    stride: usize,
) -> ArrayView2<'_, T> {
    let len = (rows - 1) * stride + cols;
    ArrayView2::from_shape((rows, cols).strides((stride, 1)), &v[offset..offset + len])
        .expect("a strided view inside the buffer")
}

fn strided_mut<T: Real>(
    v: &mut [T],
    offset: usize,
    rows: usize,
    cols: usize,
    stride: usize,
) -> ArrayViewMut2<'_, T> {
    let len = (rows - 1) * stride + cols;
    ArrayViewMut2::from_shape(
        (rows, cols).strides((stride, 1)),
        &mut v[offset..offset + len],
    )
    .expect("a strided view inside the buffer")
}

/// The context `[B, T, D]` and the attention weights `[B, heads, T, T]`.
fn forward<T: Real>(qkv: &[T], d: Dims) -> (Vec<T>, Vec<T>) {
    let (t, dh) = (d.steps, d.head());
    let scale = T::from_f64(1.0 / (dh as f64).sqrt());
    let mut context = vec![zero::<T>(); d.batch * t * d.model];
    let mut weights = vec![zero::<T>(); d.batch * d.heads * t * t];
    for b in 0..d.batch {
        for h in 0..d.heads {
            let (q, stride) = d.part(b, 0, h);
            let (k, _) = d.part(b, 1, h);
            let (v, _) = d.part(b, 2, h);
            let p = &mut weights[(b * d.heads + h) * t * t..][..t * t];
            {
                let mut s = ArrayViewMut2::from_shape((t, t), &mut p[..]).expect("[T, T]");
                let (q, k) = (
                    strided(qkv, q, t, dh, stride),
                    strided(qkv, k, t, dh, stride),
                );
                general_mat_mul(scale, &q, &k.t(), zero(), &mut s);
            }
            for row in p.chunks_exact_mut(t) {
                softmax_in_place(row);
            }
            let (c, c_stride) = d.context(b, h);
            let mut out = strided_mut(&mut context, c, t, dh, c_stride);
            let p = ArrayView2::from_shape((t, t), &p[..]).expect("[T, T]");
            general_mat_mul(one(), &p, &strided(qkv, v, t, dh, stride), zero(), &mut out);
        }
    }
    (context, weights)
}

fn softmax_in_place<T: Real>(row: &mut [T]) {
    let max = row
        .iter()
        .copied()
        .fold(row[0], |m, x| if x > m { x } else { m });
    let mut sum = zero::<T>();
    for x in row.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    let inv = one::<T>() / sum;
    row.iter_mut().for_each(|x| *x *= inv);
}

/// The gradient of `qkv` from the context's gradient `[B, T, D]`.
fn backward<T: Real>(qkv: &[T], grad: &[T], weights: &[T], d: Dims) -> Vec<T> {
    let (t, dh) = (d.steps, d.head());
    let scale = T::from_f64(1.0 / (dh as f64).sqrt());
    let mut d_qkv = vec![zero::<T>(); qkv.len()];
    let mut d_scores = vec![zero::<T>(); t * t];
    for b in 0..d.batch {
        for h in 0..d.heads {
            let (q, stride) = d.part(b, 0, h);
            let (k, _) = d.part(b, 1, h);
            let (v, _) = d.part(b, 2, h);
            let (c, c_stride) = d.context(b, h);
            let p_flat = &weights[(b * d.heads + h) * t * t..][..t * t];
            let p = ArrayView2::from_shape((t, t), p_flat).expect("[T, T]");
            let dc = strided(grad, c, t, dh, c_stride);
            // dV = P^T dC
            general_mat_mul(
                one(),
                &p.t(),
                &dc,
                zero(),
                &mut strided_mut(&mut d_qkv, v, t, dh, stride),
            );
            // dP = dC V^T, then through the softmax: dS = P (dP - rowsum(dP P))
            {
                let mut dp = ArrayViewMut2::from_shape((t, t), &mut d_scores[..]).expect("[T, T]");
                general_mat_mul(
                    one(),
                    &dc,
                    &strided(qkv, v, t, dh, stride).t(),
                    zero(),
                    &mut dp,
                );
            }
            for (ds, pr) in d_scores.chunks_exact_mut(t).zip(p_flat.chunks_exact(t)) {
                let dot = ds.iter().zip(pr).fold(zero::<T>(), |a, (&g, &w)| a + g * w);
                for (g, &w) in ds.iter_mut().zip(pr) {
                    *g = w * (*g - dot) * scale;
                }
            }
            let ds = ArrayView2::from_shape((t, t), &d_scores[..]).expect("[T, T]");
            // S = scale Q K^T: dQ = dS K, dK = dS^T Q (the scale is in dS)
            let key = strided(qkv, k, t, dh, stride);
            general_mat_mul(
                one(),
                &ds,
                &key,
                zero(),
                &mut strided_mut(&mut d_qkv, q, t, dh, stride),
            );
            let query = strided(qkv, q, t, dh, stride);
            general_mat_mul(
                one(),
                &ds.t(),
                &query,
                zero(),
                &mut strided_mut(&mut d_qkv, k, t, dh, stride),
            );
        }
    }
    d_qkv
}

impl Attention {
    fn run<T: Real>(&self, qkv: &[T], d: Dims) -> Result<CpuStorage> {
        let (context, weights) = forward(qkv, d);
        self.saved.put(OP, weights)?;
        Ok(T::to_cpu_storage_owned(context))
    }

    fn grads<T: Real>(&self, qkv: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let d = dims(qkv.shape(), self.heads)?;
        let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<T>();
        let (x, dy) = (flat(qkv)?, flat(grad)?);
        let d_qkv = self
            .saved
            .with(OP, |weights: &Vec<T>| backward(&x, &dy, weights, d))?;
        Ok(Some(Tensor::from_vec(d_qkv, qkv.shape(), qkv.device())?))
    }
}

impl CustomOp1 for Attention {
    fn name(&self) -> &'static str {
        "self-attention"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let d = dims(l.shape(), self.heads)?;
        let storage = match s {
            CpuStorage::F32(_) => self.run::<f32>(contiguous(OP, s, l)?, d)?,
            CpuStorage::F64(_) => self.run::<f64>(contiguous(OP, s, l)?, d)?,
            _ => candle_core::bail!("{OP}: runs in f32 or f64, got {:?}", s.dtype()),
        };
        Ok((storage, Shape::from((d.batch, d.steps, d.model))))
    }

    fn bwd(&self, qkv: &Tensor, _context: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        match qkv.dtype() {
            DType::F32 => self.grads::<f32>(qkv, grad),
            DType::F64 => self.grads::<f64>(qkv, grad),
            other => candle_core::bail!("{OP}: no backward pass in {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, D};

    use super::super::testing::{check_against_ops, check_gradients, wavy};
    use super::*;

    /// The block as the encoder wrote it before, with candle's ops.
    fn by_ops(qkv: &Tensor, heads: usize) -> Tensor {
        let (b, t, packed) = qkv.dims3().unwrap();
        let d = packed / 3;
        let head_dim = d / heads;
        let qkv = qkv.reshape((b, t, 3, heads, head_dim)).unwrap();
        let part = |i: usize| {
            qkv.narrow(2, i, 1)
                .unwrap()
                .squeeze(2)
                .unwrap()
                .transpose(1, 2)
                .unwrap()
                .contiguous()
                .unwrap()
        };
        let (q, k, v) = (part(0), part(1), part(2));
        let scores = (q.matmul(&k.t().unwrap()).unwrap() / (head_dim as f64).sqrt()).unwrap();
        let weights = candle_nn::ops::softmax(&scores, D::Minus1).unwrap();
        weights
            .matmul(&v)
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap()
            .reshape((b, t, d))
            .unwrap()
    }

    #[test]
    fn the_op_agrees_with_the_block_written_op_by_op() {
        check_against_ops(
            &[wavy(&[2, 5, 24], 0.37, 1.5, DType::F32)],
            |x| self_attention(&x[0], 2).unwrap(),
            |x| by_ops(&x[0], 2),
        );
    }

    #[test]
    fn gradients_match_finite_differences() {
        check_gradients(&[wavy(&[2, 3, 12], 0.53, 1.2, DType::F64)], |x| {
            self_attention(&x[0], 2).unwrap()
        });
    }

    #[test]
    fn a_width_that_does_not_split_into_heads_is_refused() {
        let qkv = Tensor::zeros((1, 4, 15), DType::F32, &Device::Cpu).unwrap();
        let err = self_attention(&qkv, 2).unwrap_err().to_string();
        assert!(err.contains("heads"), "{err}");
    }
}
