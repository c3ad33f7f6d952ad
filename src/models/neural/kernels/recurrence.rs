//! The LSTM recurrence over a whole sequence as one candle op, with a
//! hand-written backward pass.
//!
//! Written op by op, a time step of the cell is about fifteen small tensors
//! forward and as many backward, each allocated and dispatched on its own;
//! over 20 steps that overhead, not the arithmetic, is what a training epoch
//! spends its time on. Here the recurrence runs over preallocated buffers:
//! forward, one matrix product per step for all four gates at once; backward,
//! one product per step for the hidden state's gradient and a single product
//! over every step for the recurrent weights' gradient. The input projection
//! (`x W_ih^T + b`) stays an ordinary candle matmul before the op, so its
//! gradients come from candle's autograd.
//!
//! Gate order and shapes follow PyTorch: `i, f, g, o`, `weight_hh [4H, H]`.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};

use super::{contiguous, one, zero, Real, Saved};

const OP: &str = "lstm recurrence";

/// The hidden state of every step, `[B, T, H]`, of an LSTM layer whose
/// projected inputs (`x W_ih^T + b`) are `projected [B, T, 4H]`, starting
/// from zero hidden and cell states.
pub fn recurrence(projected: &Tensor, weight_hh: &Tensor) -> Result<Tensor> {
    let projected = projected.contiguous()?;
    let weight_hh = weight_hh.contiguous()?;
    projected.apply_op2(&weight_hh, Recurrence::default())
}

/// The op, holding what its forward pass computed for its backward pass.
#[derive(Default)]
struct Recurrence {
    saved: Saved,
}

/// One forward pass: the gate activations `[T, B, 4H]`, the cell states
/// `[T + 1, B, H]` (the first all zero) and their `tanh` `[T, B, H]`.
struct Buffers<T> {
    gates: Vec<T>,
    cells: Vec<T>,
    tanh_cells: Vec<T>,
}

#[derive(Debug, Clone, Copy)]
struct Dims {
    batch: usize,
    steps: usize,
    hidden: usize,
}

fn dims(projected: &Layout, weight_hh: &Layout) -> Result<Dims> {
    let (batch, steps, gates) = projected.shape().dims3()?;
    let (rows, hidden) = weight_hh.shape().dims2()?;
    if gates != 4 * hidden || rows != 4 * hidden {
        candle_core::bail!(
            "{OP}: projected inputs [{batch}, {steps}, {gates}] and weight_hh \
             [{rows}, {hidden}] do not fit four gates of {hidden}"
        );
    }
    Ok(Dims {
        batch,
        steps,
        hidden,
    })
}

/// Runs the cell over every step: the hidden states `[B, T, H]` and what
/// the backward pass needs.
fn forward<T: Real>(projected: &[T], weight_hh: &[T], d: Dims) -> (Vec<T>, Buffers<T>) {
    let Dims {
        batch: b,
        steps: t,
        hidden: h,
    } = d;
    let g4 = 4 * h;
    let mut hs = vec![zero::<T>(); b * t * h];
    let mut gates = vec![zero::<T>(); t * b * g4];
    let mut cells = vec![zero::<T>(); (t + 1) * b * h];
    let mut tanh_cells = vec![zero::<T>(); t * b * h];
    let mut h_prev = vec![zero::<T>(); b * h];
    let w_t = ArrayView2::from_shape((g4, h), weight_hh)
        .expect("weight_hh is [4H, H]")
        .reversed_axes();
    for s in 0..t {
        let step = &mut gates[s * b * g4..(s + 1) * b * g4];
        for r in 0..b {
            step[r * g4..(r + 1) * g4].copy_from_slice(&projected[(r * t + s) * g4..][..g4]);
        }
        if s > 0 {
            let hp = ArrayView2::from_shape((b, h), &h_prev[..]).expect("h is [B, H]");
            let mut g = ArrayViewMut2::from_shape((b, g4), &mut step[..]).expect("[B, 4H]");
            general_mat_mul(one(), &hp, &w_t, one(), &mut g);
        }
        let (before, after) = cells.split_at_mut((s + 1) * b * h);
        let c_prev = &before[s * b * h..];
        let c_next = &mut after[..b * h];
        let tc_next = &mut tanh_cells[s * b * h..(s + 1) * b * h];
        for r in 0..b {
            let (sig, rest) = step[r * g4..(r + 1) * g4].split_at_mut(2 * h);
            let (cand, o) = rest.split_at_mut(h);
            sig.iter_mut().for_each(|x| *x = x.sigmoid());
            cand.iter_mut().for_each(|x| *x = x.tanh());
            o.iter_mut().for_each(|x| *x = x.sigmoid());
            let (i, f) = sig.split_at(h);
            let row = r * h..(r + 1) * h;
            let (c_prev, c, tc) = (
                &c_prev[row.clone()],
                &mut c_next[row.clone()],
                &mut tc_next[row],
            );
            for k in 0..h {
                c[k] = f[k] * c_prev[k] + i[k] * cand[k];
            }
            tc.iter_mut()
                .zip(c.iter())
                .for_each(|(tc, &c)| *tc = c.tanh());
            let out = &mut hs[(r * t + s) * h..][..h];
            for k in 0..h {
                out[k] = o[k] * tc[k];
            }
            h_prev[r * h..(r + 1) * h].copy_from_slice(out);
        }
    }
    (
        hs,
        Buffers {
            gates,
            cells,
            tanh_cells,
        },
    )
}

/// Back-propagation through time: from the gradient of every hidden state
/// `[B, T, H]` to the gradients of the projected inputs `[B, T, 4H]` and of
/// `weight_hh [4H, H]`.
fn backward<T: Real>(
    weight_hh: &[T],
    hs: &[T],
    grad_hs: &[T],
    trace: &Buffers<T>,
    d: Dims,
) -> (Vec<T>, Vec<T>) {
    let Dims {
        batch: b,
        steps: t,
        hidden: h,
    } = d;
    let g4 = 4 * h;
    let w = ArrayView2::from_shape((g4, h), weight_hh).expect("weight_hh is [4H, H]");
    let mut d_projected = vec![zero::<T>(); b * t * g4];
    let mut dh = vec![zero::<T>(); b * h];
    let mut dc = vec![zero::<T>(); b * h];
    let mut dg = vec![zero::<T>(); b * g4];
    let one = one::<T>();
    for s in (0..t).rev() {
        let act = &trace.gates[s * b * g4..(s + 1) * b * g4];
        let c_prev = &trace.cells[s * b * h..(s + 1) * b * h];
        let tanh_c = &trace.tanh_cells[s * b * h..(s + 1) * b * h];
        for r in 0..b {
            let a = &act[r * g4..(r + 1) * g4];
            let (i, f, cand, o) = (&a[..h], &a[h..2 * h], &a[2 * h..3 * h], &a[3 * h..]);
            let row = r * h..(r + 1) * h;
            let (dh, dc) = (&mut dh[row.clone()], &mut dc[row.clone()]);
            let (c_prev, tc) = (&c_prev[row.clone()], &tanh_c[row]);
            let upstream = &grad_hs[(r * t + s) * h..][..h];
            let out = &mut dg[r * g4..(r + 1) * g4];
            for k in 0..h {
                let dh_k = dh[k] + upstream[k];
                let dc_k = dc[k] + dh_k * o[k] * (one - tc[k] * tc[k]);
                out[k] = dc_k * cand[k] * i[k] * (one - i[k]);
                out[h + k] = dc_k * c_prev[k] * f[k] * (one - f[k]);
                out[2 * h + k] = dc_k * i[k] * (one - cand[k] * cand[k]);
                out[3 * h + k] = dh_k * tc[k] * o[k] * (one - o[k]);
                dc[k] = dc_k * f[k];
            }
            d_projected[(r * t + s) * g4..][..g4].copy_from_slice(out);
        }
        if s > 0 {
            let g = ArrayView2::from_shape((b, g4), &dg[..]).expect("[B, 4H]");
            let mut dh_view = ArrayViewMut2::from_shape((b, h), &mut dh[..]).expect("[B, H]");
            general_mat_mul(one, &g, &w, zero(), &mut dh_view);
        }
    }
    // dW_hh = sum over steps of dG_s^T h_{s-1}: one product over all (b, s)
    // rows, with the hidden states shifted by a step (h_{-1} = 0).
    let mut h_prev = vec![zero::<T>(); b * t * h];
    for r in 0..b {
        for s in 1..t {
            h_prev[(r * t + s) * h..][..h].copy_from_slice(&hs[(r * t + s - 1) * h..][..h]);
        }
    }
    let mut d_weight = vec![zero::<T>(); g4 * h];
    {
        let dg_all = ArrayView2::from_shape((b * t, g4), &d_projected[..]).expect("[BT, 4H]");
        let hp = ArrayView2::from_shape((b * t, h), &h_prev[..]).expect("[BT, H]");
        let mut dw = ArrayViewMut2::from_shape((g4, h), &mut d_weight[..]).expect("[4H, H]");
        general_mat_mul(one, &dg_all.t(), &hp, zero(), &mut dw);
    }
    (d_projected, d_weight)
}

impl Recurrence {
    fn run<T: Real>(&self, projected: &[T], weight_hh: &[T], d: Dims) -> Result<CpuStorage> {
        let (hs, trace) = forward(projected, weight_hh, d);
        self.saved.put(OP, trace)?;
        Ok(T::to_cpu_storage_owned(hs))
    }

    fn grads<T: Real>(
        &self,
        projected: &Tensor,
        weight_hh: &Tensor,
        hs: &Tensor,
        grad_hs: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let d = dims(projected.layout(), weight_hh.layout())?;
        let flat = |x: &Tensor| x.flatten_all()?.to_vec1::<T>();
        let (w, hs, grad_hs) = (flat(weight_hh)?, flat(hs)?, flat(grad_hs)?);
        let (d_projected, d_weight) = self.saved.with(OP, |trace: &Buffers<T>| {
            backward(&w, &hs, &grad_hs, trace, d)
        })?;
        let device = projected.device();
        Ok((
            Some(Tensor::from_vec(
                d_projected,
                (d.batch, d.steps, 4 * d.hidden),
                device,
            )?),
            Some(Tensor::from_vec(
                d_weight,
                (4 * d.hidden, d.hidden),
                device,
            )?),
        ))
    }
}

impl CustomOp2 for Recurrence {
    fn name(&self) -> &'static str {
        "lstm-recurrence"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = dims(l1, l2)?;
        let storage = match (s1, s2) {
            (CpuStorage::F32(_), CpuStorage::F32(_)) => {
                self.run::<f32>(contiguous(OP, s1, l1)?, contiguous(OP, s2, l2)?, d)?
            }
            (CpuStorage::F64(_), CpuStorage::F64(_)) => {
                self.run::<f64>(contiguous(OP, s1, l1)?, contiguous(OP, s2, l2)?, d)?
            }
            _ => candle_core::bail!(
                "{OP}: runs in f32 or f64, got {:?} and {:?}",
                s1.dtype(),
                s2.dtype()
            ),
        };
        Ok((storage, Shape::from((d.batch, d.steps, d.hidden))))
    }

    fn bwd(
        &self,
        projected: &Tensor,
        weight_hh: &Tensor,
        hs: &Tensor,
        grad_hs: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        match projected.dtype() {
            DType::F32 => self.grads::<f32>(projected, weight_hh, hs, grad_hs),
            DType::F64 => self.grads::<f64>(projected, weight_hh, hs, grad_hs),
            other => candle_core::bail!("{OP}: no backward pass in {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, D};

    use super::super::fast_tanh;
    use super::super::testing::{check_against_ops, check_gradients, wavy};
    use super::*;

    /// The cell written op by op with candle's differentiable ops: the
    /// reference the op must agree with, forward and backward.
    fn by_ops(projected: &Tensor, weight_hh: &Tensor) -> Tensor {
        let (b, t, _) = projected.dims3().unwrap();
        let hidden = weight_hh.dim(1).unwrap();
        let w_t = weight_hh.t().unwrap();
        let mut h = Tensor::zeros((b, hidden), projected.dtype(), projected.device()).unwrap();
        let mut c = h.clone();
        let mut hs = Vec::with_capacity(t);
        for s in 0..t {
            let step = projected.narrow(1, s, 1).unwrap().squeeze(1).unwrap();
            let gates = step.add(&h.matmul(&w_t).unwrap()).unwrap();
            let chunks = gates.chunk(4, D::Minus1).unwrap();
            let i = candle_nn::ops::sigmoid(&chunks[0]).unwrap();
            let f = candle_nn::ops::sigmoid(&chunks[1]).unwrap();
            let g = chunks[2].tanh().unwrap();
            let o = candle_nn::ops::sigmoid(&chunks[3]).unwrap();
            c = f.mul(&c).unwrap().add(&i.mul(&g).unwrap()).unwrap();
            h = o.mul(&c.tanh().unwrap()).unwrap();
            hs.push(h.clone());
        }
        Tensor::stack(&hs, 1).unwrap()
    }

    /// Projected inputs `[B, T, 4H]` and weights `[4H, H]` of moderate size,
    /// so that every gate works away from saturation.
    fn inputs(b: usize, t: usize, h: usize, dtype: DType) -> [candle_core::Var; 2] {
        [
            wavy(&[b, t, 4 * h], 0.37, 0.8, dtype),
            wavy(&[4 * h, h], 0.71, 0.8, dtype),
        ]
    }

    #[test]
    fn the_op_agrees_with_the_cell_written_op_by_op() {
        check_against_ops(
            &inputs(3, 5, 4, DType::F32),
            |x| recurrence(&x[0], &x[1]).unwrap(),
            |x| by_ops(&x[0], &x[1]),
        );
    }

    #[test]
    fn gradients_match_finite_differences() {
        check_gradients(&inputs(2, 4, 3, DType::F64), |x| {
            recurrence(&x[0], &x[1]).unwrap()
        });
    }

    #[test]
    fn the_fast_tanh_is_within_5e_7_of_libm() {
        let mut worst: f32 = 0.0;
        for k in -200_000..=200_000 {
            let x = k as f32 * 1e-4;
            worst = worst.max((fast_tanh(x) - x.tanh()).abs());
        }
        assert!(worst < 5e-7, "max error {worst}");
        for x in [8.0, 50.0, f32::MAX] {
            let y = fast_tanh(x);
            assert!(y <= 1.0 && 1.0 - y < 5e-7, "tanh({x}) = {y}");
            assert_eq!(fast_tanh(-x), -y);
        }
        assert!(fast_tanh(f32::NAN).is_nan());
    }

    #[test]
    fn mismatched_shapes_are_refused_not_read_out_of_bounds() {
        let p = Tensor::zeros((2, 3, 8), DType::F32, &Device::Cpu).unwrap();
        let w = Tensor::zeros((12, 3), DType::F32, &Device::Cpu).unwrap();
        let err = recurrence(&p, &w).unwrap_err().to_string();
        assert!(err.contains("four gates"), "{err}");
    }
}
