//! A dense (fully connected) layer, `y = x W^T + b`, as one op with a
//! hand-written backward pass.
//!
//! With candle's ops the bias gradient is a `sum_keepdim` over every row of
//! the batch, the slowest single item of a Transformer epoch (a strided
//! reduction over dimension 0); here it is one pass of column sums, next to
//! the two matrix products of the input and weight gradients. Weight and
//! bias keep `candle_nn::Linear`'s shapes and names, so saved networks load
//! unchanged.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};

use super::{contiguous, one, zero, Real};

const OP: &str = "dense layer";

/// `x [.., in]` times `weight [out, in]` transposed, plus `bias [out]`:
/// `[.., out]`.
pub fn dense(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    x.contiguous()?
        .apply_op3(&weight.contiguous()?, &bias.contiguous()?, DenseOp)
}

/// A layer of [`dense`], initialised and named as `candle_nn::linear`.
pub struct Dense {
    weight: Tensor,
    bias: Tensor,
}

impl Dense {
    pub fn new(input: usize, output: usize, vb: candle_nn::VarBuilder) -> Result<Self> {
        let linear = candle_nn::linear(input, output, vb)?;
        let bias = linear
            .bias()
            .cloned()
            .ok_or_else(|| candle_core::Error::Msg(format!("{OP}: no bias")))?;
        Ok(Dense {
            weight: linear.weight().clone(),
            bias,
        })
    }
}

impl candle_core::Module for Dense {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        dense(x, &self.weight, &self.bias)
    }
}

struct DenseOp;

#[derive(Debug, Clone, Copy)]
struct Dims {
    rows: usize,
    input: usize,
    output: usize,
}

fn dims(x: &Shape, weight: &Shape, bias: &Shape) -> Result<Dims> {
    let (output, input) = weight.dims2()?;
    if x.dims().last() != Some(&input) || bias.dims() != [output] {
        candle_core::bail!(
            "{OP}: input {x:?}, weight {weight:?} and bias {bias:?} do not fit \
             (weight [out, in], bias [out], input [.., in])"
        );
    }
    Ok(Dims {
        rows: x.elem_count() / input.max(1),
        input,
        output,
    })
}

fn view<T: Real>(v: &[T], r: usize, c: usize) -> ArrayView2<'_, T> {
    ArrayView2::from_shape((r, c), v).expect("a buffer of r x c")
}

fn forward<T: Real>(x: &[T], w: &[T], b: &[T], d: Dims) -> Vec<T> {
    let mut y = Vec::with_capacity(d.rows * d.output);
    for _ in 0..d.rows {
        y.extend_from_slice(b);
    }
    let mut out = ArrayViewMut2::from_shape((d.rows, d.output), &mut y[..]).expect("[N, out]");
    general_mat_mul(
        one(),
        &view(x, d.rows, d.input),
        &view(w, d.output, d.input).t(),
        one(),
        &mut out,
    );
    y
}

/// Gradients of the input (`dy W`), weight (`dy^T x`) and bias (column
/// sums of `dy`).
fn backward<T: Real>(x: &[T], w: &[T], dy: &[T], d: Dims) -> [Vec<T>; 3] {
    let mut dx = vec![zero::<T>(); d.rows * d.input];
    let mut dw = vec![zero::<T>(); d.output * d.input];
    let mut db = vec![zero::<T>(); d.output];
    let dy_v = view(dy, d.rows, d.output);
    {
        let mut dx_v = ArrayViewMut2::from_shape((d.rows, d.input), &mut dx[..]).expect("dx");
        general_mat_mul(one(), &dy_v, &view(w, d.output, d.input), zero(), &mut dx_v);
        let mut dw_v = ArrayViewMut2::from_shape((d.output, d.input), &mut dw[..]).expect("dw");
        general_mat_mul(
            one(),
            &dy_v.t(),
            &view(x, d.rows, d.input),
            zero(),
            &mut dw_v,
        );
    }
    for row in dy.chunks_exact(d.output) {
        for (acc, &g) in db.iter_mut().zip(row) {
            *acc += g;
        }
    }
    [dx, dw, db]
}

fn grads<T: Real>(
    x: &Tensor,
    weight: &Tensor,
    grad: &Tensor,
) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
    let (output, input) = weight.dims2()?;
    let d = Dims {
        rows: x.elem_count() / input.max(1),
        input,
        output,
    };
    let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<T>();
    let [dx, dw, db] = backward(&flat(x)?, &flat(weight)?, &flat(grad)?, d);
    let device = x.device();
    Ok((
        Some(Tensor::from_vec(dx, x.shape(), device)?),
        Some(Tensor::from_vec(dw, (output, input), device)?),
        Some(Tensor::from_vec(db, output, device)?),
    ))
}

impl CustomOp3 for DenseOp {
    fn name(&self) -> &'static str {
        "dense"
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
        let d = dims(l1.shape(), l2.shape(), l3.shape())?;
        let storage = match (s1, s2, s3) {
            (CpuStorage::F32(_), CpuStorage::F32(_), CpuStorage::F32(_)) => {
                CpuStorage::F32(forward::<f32>(
                    contiguous(OP, s1, l1)?,
                    contiguous(OP, s2, l2)?,
                    contiguous(OP, s3, l3)?,
                    d,
                ))
            }
            (CpuStorage::F64(_), CpuStorage::F64(_), CpuStorage::F64(_)) => {
                CpuStorage::F64(forward::<f64>(
                    contiguous(OP, s1, l1)?,
                    contiguous(OP, s2, l2)?,
                    contiguous(OP, s3, l3)?,
                    d,
                ))
            }
            _ => candle_core::bail!(
                "{OP}: runs in f32 or f64, got {:?}, {:?} and {:?}",
                s1.dtype(),
                s2.dtype(),
                s3.dtype()
            ),
        };
        let mut out = l1.shape().dims().to_vec();
        *out.last_mut().expect("checked: at least one dimension") = d.output;
        Ok((storage, Shape::from(out)))
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
            DType::F32 => grads::<f32>(x, weight, grad),
            DType::F64 => grads::<f64>(x, weight, grad),
            other => candle_core::bail!("{OP}: no backward pass in {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Module, Var};

    use super::super::testing::{check_against_ops, check_gradients, wavy};
    use super::*;

    fn inputs(dtype: DType) -> [Var; 3] {
        [
            wavy(&[2, 3, 4], 0.91, 1.0, dtype),
            wavy(&[5, 4], 1.3, 0.7, dtype),
            wavy(&[5], 0.4, 0.5, dtype),
        ]
    }

    #[test]
    fn the_op_agrees_with_candles_linear_layer() {
        check_against_ops(
            &inputs(DType::F32),
            |x| dense(&x[0], &x[1], &x[2]).unwrap(),
            |x| {
                candle_nn::Linear::new(x[1].clone(), Some(x[2].clone()))
                    .forward(&x[0])
                    .unwrap()
            },
        );
    }

    #[test]
    fn gradients_match_finite_differences() {
        check_gradients(&inputs(DType::F64), |x| dense(&x[0], &x[1], &x[2]).unwrap());
    }

    #[test]
    fn an_input_of_the_wrong_width_is_refused() {
        let x = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
        let w = Tensor::zeros((5, 4), DType::F32, &Device::Cpu).unwrap();
        let b = Tensor::zeros(5, DType::F32, &Device::Cpu).unwrap();
        let err = dense(&x, &w, &b).unwrap_err().to_string();
        assert!(err.contains("do not fit"), "{err}");
    }
}
