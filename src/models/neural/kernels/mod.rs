//! Hand-written forward and backward passes for the networks' hot blocks,
//! as candle custom ops.
//!
//! candle's CPU autograd runs a network op by op, allocating a tensor for
//! every intermediate forward and backward; at the sizes trained here (a
//! batch of 64 windows of 20-30 steps) that dispatch and allocation, not the
//! arithmetic, is most of an epoch. Each op here does one block's work over
//! preallocated buffers and keeps what its backward pass needs, so a block
//! costs one node in the graph instead of dozens. Every op runs in `f32`
//! (the networks) and `f64` (its finite-difference tests), and is checked
//! against the same block written with candle's differentiable ops.

pub mod attention;
pub mod dense;
pub mod layer_norm;
pub mod recurrence;

use std::any::Any;
use std::sync::Mutex;

use candle_core::{CpuStorage, Layout, Result, WithDType};
use ndarray::LinalgScalar;

/// The element types the ops run in: `f32` in service, `f64` for the
/// finite-difference checks.
pub(crate) trait Real: WithDType + LinalgScalar {
    fn tanh(self) -> Self;
    fn sigmoid(self) -> Self;
    fn sqrt(self) -> Self;
    fn exp(self) -> Self;
}

impl Real for f32 {
    #[inline(always)]
    fn tanh(self) -> Self {
        fast_tanh(self)
    }
    #[inline(always)]
    fn sigmoid(self) -> Self {
        0.5 + 0.5 * fast_tanh(0.5 * self)
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    fn exp(self) -> Self {
        f32::exp(self)
    }
}

impl Real for f64 {
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
    fn sigmoid(self) -> Self {
        1.0 / (1.0 + (-self).exp())
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    fn exp(self) -> Self {
        f64::exp(self)
    }
}

/// `tanh` as Eigen's rational approximation (degree 13 over 6, clamped where
/// `tanh` rounds to 1 in `f32`): within 5e-7 of the exact value, and, unlike
/// libm's `tanhf` (an `expm1f` call each), a handful of multiplies and adds and one
/// division that the compiler vectorises over a slice. libm's `tanhf` and
/// `expf` took over 70 % of an LSTM forward pass.
#[inline(always)]
pub(crate) fn fast_tanh(x: f32) -> f32 {
    const CLAMP: f32 = 7.905_311;
    const A1: f32 = 4.893_524_6e-3;
    const A3: f32 = 6.372_619_3e-4;
    const A5: f32 = 1.485_722_4e-5;
    const A7: f32 = 5.122_297e-8;
    const A9: f32 = -8.604_672e-11;
    const A11: f32 = 2.000_188e-13;
    const A13: f32 = -2.760_768_5e-16;
    const B0: f32 = 4.893_525e-3;
    const B2: f32 = 2.268_434_6e-3;
    const B4: f32 = 1.185_347_1e-4;
    const B6: f32 = 1.198_258_4e-6;
    let x = x.clamp(-CLAMP, CLAMP);
    let x2 = x * x;
    // Plain multiplies and adds: `mul_add` is a libm call without FMA
    // enabled at compile time, and the build targets any x86-64.
    let mut p = x2 * A13 + A11;
    for a in [A9, A7, A5, A3, A1] {
        p = x2 * p + a;
    }
    let mut q = x2 * B6 + B4;
    for b in [B2, B0] {
        q = x2 * q + b;
    }
    x * p / q
}

pub(crate) fn zero<T: Real>() -> T {
    T::from_f64(0.0)
}

pub(crate) fn one<T: Real>() -> T {
    T::from_f64(1.0)
}

/// The elements of a contiguous input, or an error naming the op.
pub(crate) fn contiguous<'a, T: Real>(
    op: &str,
    storage: &'a CpuStorage,
    layout: &Layout,
) -> Result<&'a [T]> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op}: inputs must be contiguous");
    };
    Ok(&T::cpu_storage_as_slice(storage)?[start..end])
}

/// What an op's forward pass keeps for its backward pass, in whichever
/// element type it ran.
#[derive(Default)]
pub(crate) struct Saved(Mutex<Option<Box<dyn Any + Send + Sync>>>);

impl Saved {
    pub(crate) fn put<B: Any + Send + Sync>(&self, op: &str, buffers: B) -> Result<()> {
        *self.0.lock().map_err(|_| poisoned(op))? = Some(Box::new(buffers));
        Ok(())
    }

    pub(crate) fn with<B: Any, R>(&self, op: &str, f: impl FnOnce(&B) -> R) -> Result<R> {
        let guard = self.0.lock().map_err(|_| poisoned(op))?;
        match guard.as_ref().and_then(|b| b.downcast_ref::<B>()) {
            Some(buffers) => Ok(f(buffers)),
            None => candle_core::bail!("{op}: backward pass without its forward pass"),
        }
    }
}

fn poisoned(op: &str) -> candle_core::Error {
    candle_core::Error::Msg(format!("{op}: a panic poisoned the saved forward pass"))
}

#[cfg(test)]
pub(crate) mod testing {
    //! What every op's tests share: seeded inputs, a loss that weighs each
    //! output differently, and central finite differences in `f64`.

    use candle_core::{DType, Device, Tensor, Var};

    /// A seeded `[dims]` variable with entries in `[-scale, scale]`.
    pub fn wavy(dims: &[usize], k: f64, scale: f64, dtype: DType) -> Var {
        let n: usize = dims.iter().product();
        let v: Vec<f64> = (0..n).map(|i| (i as f64 * k).sin() * scale).collect();
        let t = Tensor::from_vec(v, dims, &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        Var::from_tensor(&t).unwrap()
    }

    /// A loss that weighs every output differently, so that a gradient
    /// routed to the wrong element shows.
    pub fn weighted_sum(x: &Tensor) -> Tensor {
        let n = x.elem_count();
        let weights: Vec<f64> = (0..n).map(|i| ((i * 13) % 7) as f64 - 3.0).collect();
        let weights = Tensor::from_vec(weights, x.shape(), x.device())
            .unwrap()
            .to_dtype(x.dtype())
            .unwrap();
        x.mul(&weights).unwrap().sum_all().unwrap()
    }

    pub fn values(x: &Tensor) -> Vec<f64> {
        x.to_dtype(DType::F64)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    pub fn max_gap(a: &[f64], b: &[f64]) -> f64 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    }

    /// Checks the autograd gradient of `weighted_sum(f(inputs))` for every
    /// input against central differences, all in `f64`.
    pub fn check_gradients(inputs: &[Var], f: impl Fn(&[Tensor]) -> Tensor) {
        let tensors: Vec<Tensor> = inputs.iter().map(|v| v.as_tensor().clone()).collect();
        let grads = weighted_sum(&f(&tensors)).backward().unwrap();
        let eps = 1e-6;
        for (which, var) in inputs.iter().enumerate() {
            let analytic = values(grads.get(var.as_tensor()).expect("a gradient"));
            let base = values(var.as_tensor());
            for (k, &g) in analytic.iter().enumerate() {
                let at = |delta: f64| -> f64 {
                    let mut v = base.clone();
                    v[k] += delta;
                    let mut args = tensors.clone();
                    args[which] = Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap();
                    weighted_sum(&f(&args)).to_scalar::<f64>().unwrap()
                };
                let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
                assert!(
                    (numeric - g).abs() < 1e-6 * (1.0 + g.abs()),
                    "input {which}[{k}]: analytic {g}, numeric {numeric}"
                );
            }
        }
    }

    /// Checks that `fused` and `by_ops` agree in `f32`, forward and in the
    /// gradient of every input.
    pub fn check_against_ops(
        inputs: &[Var],
        fused: impl Fn(&[Tensor]) -> Tensor,
        by_ops: impl Fn(&[Tensor]) -> Tensor,
    ) {
        let tensors: Vec<Tensor> = inputs.iter().map(|v| v.as_tensor().clone()).collect();
        let (a, b) = (fused(&tensors), by_ops(&tensors));
        assert!(max_gap(&values(&a), &values(&b)) < 1e-5, "forward");
        let (ga, gb) = (
            weighted_sum(&a).backward().unwrap(),
            weighted_sum(&b).backward().unwrap(),
        );
        for (which, var) in inputs.iter().enumerate() {
            let x = values(ga.get(var.as_tensor()).expect("a gradient"));
            let y = values(gb.get(var.as_tensor()).expect("a gradient"));
            let scale = y.iter().map(|v| v.abs()).fold(1.0, f64::max);
            assert!(max_gap(&x, &y) < 2e-5 * scale, "gradient of input {which}");
        }
    }
}
