//! The f64 reference of a functional run: the model's graph computed directly, op by op,
//! with no tiling and no rounding, from the same stored weights and input as the simulation.
//!
//! Per instance (`x` the op's input, `W` dense from the stored slots): a linear layer is
//! `x W^T + b`; scores of head `h` are `Q_h K_g^T / sqrt(dh)` (`g` its key/value head),
//! the softmax is taken over the keys a query sees (all, or those at or before it when
//! causal), and P·V writes `context[:, h] = P_h V_g`. Vector ops follow their matmul in
//! order: `Add`, `Mul`, `LayerNorm(x)`, `LayerNorm(x + r)`, `GELU`, `SiLU`, `silu(r) * x`;
//! each op with an output stores the value so far.

use super::dataplane::{DataPlane, silu};
use super::weights::{Linear, Norm};
use super::{LN_EPS, gelu};
use crate::model::{Role, TensorId, VectorOp};

/// Every stored tensor, exact.
pub struct Reference {
    /// `tensors[t][instance]`.
    tensors: Vec<Vec<Vec<f64>>>,
}

/// `x W^T + b` for `x` of `rows x k`.
fn linear(x: &[f64], rows: usize, lin: &Linear) -> Vec<f64> {
    let w = lin.dense_f64();
    let k = lin.k;
    let mut y = Vec::with_capacity(rows * lin.out);
    for r in 0..rows {
        let a = &x[r * k..(r + 1) * k];
        for c in 0..lin.out {
            let wc = &w[c * k..(c + 1) * k];
            let dot: f64 = a.iter().zip(wc).map(|(p, q)| p * q).sum();
            y.push(dot + f64::from(lin.bias[c]));
        }
    }
    y
}

/// LayerNorm of every row of `x`, in place.
fn layer_norm(x: &mut [f64], cols: usize, norm: &Norm) {
    for row in x.chunks_exact_mut(cols) {
        let n = cols as f64;
        let mean = row.iter().sum::<f64>() / n;
        let var = row.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        let inv = 1.0 / (var + LN_EPS).sqrt();
        for (j, x) in row.iter_mut().enumerate() {
            *x = (*x - mean) * inv * f64::from(norm.gamma[j]) + f64::from(norm.beta[j]);
        }
    }
}

impl Reference {
    /// Runs the graph of `dp`'s workload on its input and weights.
    pub fn compute(dp: &DataPlane) -> Reference {
        let g = dp.graph();
        let mut tensors: Vec<Vec<Vec<f64>>> = g
            .tensors
            .iter()
            .map(|t| vec![vec![0.0; (t.rows * t.cols) as usize]; t.instances as usize])
            .collect();
        for (b, x) in tensors[0].iter_mut().enumerate() {
            *x = dp.input(b).iter().map(|&v| f64::from(v)).collect();
        }
        // The value flowing along a chain (a matmul's output, then each vector op's), and
        // scores waiting for their softmax, per instance.
        let mut flow: Vec<Vec<f64>> = Vec::new();
        for o in &g.ops {
            let rows = o.rows as usize;
            match (o.role, o.attention, o.input, o.kv) {
                (Role::Linear { class }, _, Some(x), _) => {
                    // (`DataPlane::new` refused a linear layer the weights do not hold.)
                    let Some(lin) = dp.weights().layers[o.layer as usize].linear(class) else {
                        continue;
                    };
                    flow = (0..o.instances as usize)
                        .map(|b| linear(&tensors[x.tensor.0 as usize][b], rows, lin))
                        .collect();
                }
                (Role::Scores | Role::Pv, Some(a), Some(x), Some(kv)) => {
                    let dh = a.head_dim as usize;
                    let (xc, kc) = (
                        g.tensor(x.tensor).cols as usize,
                        g.tensor(kv.tensor).cols as usize,
                    );
                    flow = (0..o.instances)
                        .map(|inst| {
                            let (b, h) = ((inst / a.heads) as usize, inst % a.heads);
                            let (xt, kt) = (
                                &tensors[x.tensor.0 as usize][b],
                                &tensors[kv.tensor.0 as usize][b],
                            );
                            let kcol = kv.col0 as usize + a.kv_head(h) as usize * dh;
                            let mut y = Vec::with_capacity(rows * o.cols as usize);
                            for r in 0..rows {
                                if o.role == Role::Scores {
                                    let qcol = x.col0 as usize + h as usize * dh;
                                    for key in 0..o.cols as usize {
                                        y.push(
                                            (0..dh)
                                                .map(|i| {
                                                    xt[r * xc + qcol + i] * kt[key * kc + kcol + i]
                                                })
                                                .sum(),
                                        );
                                    }
                                } else {
                                    let prow = (h as usize * rows + r) * xc;
                                    for c in 0..dh {
                                        y.push(
                                            (0..o.k as usize)
                                                .map(|key| xt[prow + key] * kt[key * kc + kcol + c])
                                                .sum(),
                                        );
                                    }
                                }
                            }
                            y
                        })
                        .collect();
                }
                (Role::Softmax, Some(a), _, _) => {
                    let keys = o.cols as usize;
                    let scale = 1.0 / (a.head_dim as f64).sqrt();
                    for y in &mut flow {
                        for (r, row) in y.chunks_exact_mut(keys).enumerate() {
                            let visible = if a.causal { r + 1 } else { keys };
                            let max = row[..visible]
                                .iter()
                                .map(|x| x * scale)
                                .fold(f64::NEG_INFINITY, f64::max);
                            let mut sum = 0.0;
                            for (key, x) in row.iter_mut().enumerate() {
                                *x = if key < visible {
                                    (*x * scale - max).exp()
                                } else {
                                    0.0
                                };
                                sum += *x;
                            }
                            row.iter_mut().for_each(|x| *x /= sum);
                        }
                    }
                }
                (Role::Vector { op }, _, _, _) => {
                    let cols = o.cols as usize;
                    for (b, y) in flow.iter_mut().enumerate() {
                        let r = o.operand.map(|t| &tensors[t.0 as usize][b]);
                        let r_at = |i: usize| r.map_or(0.0, |r| r[i]);
                        for (i, x) in y.iter_mut().enumerate() {
                            *x = match op {
                                VectorOp::Add | VectorOp::AddLayerNorm => *x + r_at(i),
                                VectorOp::Mul => *x * r_at(i),
                                VectorOp::Gelu => gelu(*x),
                                VectorOp::Silu => silu(*x),
                                VectorOp::SiluMul => silu(r_at(i)) * *x,
                                _ => *x,
                            };
                        }
                        if matches!(op, VectorOp::LayerNorm | VectorOp::AddLayerNorm) {
                            layer_norm(y, cols, DataPlane::norm(dp.weights(), o));
                        }
                    }
                }
                _ => {}
            }
            if let Some(t) = o.output {
                let cols = g.tensor(t).cols as usize;
                for (inst, y) in flow.iter().enumerate() {
                    let (b, row0, col0) = o.out_at(inst as u64);
                    let (b, row0, col0) = (b as usize, row0 as usize, col0 as usize);
                    let w = y.len() / rows;
                    let dst = &mut tensors[t.0 as usize][b];
                    for (r, yr) in y.chunks_exact(w).enumerate() {
                        let at = (row0 + r) * cols + col0;
                        dst[at..at + w].copy_from_slice(yr);
                    }
                }
            }
        }
        Reference { tensors }
    }

    /// Instance `b` of tensor `t`.
    pub fn tensor(&self, t: TensorId, b: usize) -> &[f64] {
        &self.tensors[t.0 as usize][b]
    }
}
