//! The f64 reference of a functional run: the model's graph computed directly, op by op,
//! with no tiling and no rounding, from the same stored weights and input as the simulation.
//!
//! Per instance (`x` the op's input, `W` dense from the stored slots): a linear layer is
//! `x W^T + b`; scores of head `h` are `Q_h K_g^T / sqrt(dh)` (`g` its key/value head),
//! the softmax is taken over the keys a query sees (all, or those at or before it when
//! causal), and P·V writes `context[:, h] = P_h V_g` (a decode step's grouped attention:
//! the group's query heads against their key/value head's cache, [`super::wiring`]). Vector
//! ops follow their matmul in order: `Add`, `Mul`, `LayerNorm(x)`, `LayerNorm(x + r)`,
//! `RMSNorm(x)`, the rotary, `GELU`, `SiLU`, `silu(r) * x`; each op with an output stores the
//! value so far, and a decode step's `qkv` rows append their K and V to the cache. The
//! inputs are the tensors no op writes (the model input, a decoder's `input_norm` and KV
//! cache), as the data plane holds them or as [`super::generate`] gives them.

use super::dataplane::{DataPlane, silu};
use super::weights::{Linear, ModelWeights, Norm};
use super::wiring::{Initial, Wiring, dest, kv_at, p_at, q_at};
use super::{LN_EPS, gelu};
use crate::model::{Graph, Role, TensorId, VectorOp};

/// Every stored tensor, exact.
pub struct Reference {
    /// `tensors[t][instance]`.
    tensors: Vec<Vec<Vec<f64>>>,
}

/// `x W^T + b` for the `rows x k` of `x` from row `row0` (the stored slots' dot products,
/// the same sums as with the dense matrix).
fn linear(x: &[f64], row0: usize, rows: usize, lin: &Linear) -> Vec<f64> {
    let k = lin.k;
    let mut y = Vec::with_capacity(rows * lin.out);
    for r in row0..row0 + rows {
        let a = &x[r * k..(r + 1) * k];
        for c in 0..lin.out {
            y.push(lin.dot_f64(c, a) + f64::from(lin.bias[c]));
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
    /// Runs the graph of `dp`'s workload on its inputs (the tensors no op writes, as the
    /// memory image holds them) and weights.
    pub fn compute(dp: &DataPlane) -> Reference {
        let g = dp.graph();
        let mut written = vec![false; g.tensors.len()];
        for o in &g.ops {
            if let Some(t) = o.output {
                written[t.0 as usize] = true;
            }
        }
        let initial = (0..g.tensors.len())
            .map(|t| {
                (!written[t]).then(|| {
                    dp.tensor_values(TensorId(t as u32))
                        .into_iter()
                        .map(|v| v.iter().map(|&x| f64::from(x)).collect())
                        .collect()
                })
            })
            .collect();
        Reference::run(g, dp.wiring(), dp.weights(), initial)
    }

    /// Runs graph `g` on `initial` values (per tensor and instance; the rest start at 0).
    pub(crate) fn run(
        g: &Graph,
        wiring: &Wiring,
        weights: &ModelWeights,
        initial: Initial,
    ) -> Reference {
        let mut tensors: Vec<Vec<Vec<f64>>> = g
            .tensors
            .iter()
            .zip(initial)
            .map(|(t, init)| {
                init.unwrap_or_else(|| {
                    vec![vec![0.0; (t.rows * t.cols) as usize]; t.instances as usize]
                })
            })
            .collect();
        // The value flowing along a chain (a matmul's output, then each vector op's), and
        // scores waiting for their softmax, per instance.
        let mut flow: Vec<Vec<f64>> = Vec::new();
        for (j, o) in g.ops.iter().enumerate() {
            let rows = o.rows as usize;
            match (o.role, o.attention, o.input, o.kv) {
                (Role::Linear { .. }, _, Some(x), _) => {
                    // (`DataPlane::new` refused a linear layer the weights do not hold.)
                    let Some(lin) = wiring.linear(weights, g, j) else {
                        continue;
                    };
                    flow = (0..o.instances as usize)
                        .map(|b| {
                            linear(&tensors[x.tensor.0 as usize][b], x.row0 as usize, rows, lin)
                        })
                        .collect();
                }
                (Role::Scores | Role::Pv, Some(a), Some(x), Some(kv)) => {
                    let dh = a.head_dim as usize;
                    let (xc, kc) = (
                        g.tensor(x.tensor).cols as usize,
                        g.tensor(kv.tensor).cols as usize,
                    );
                    flow = (0..o.instances as usize)
                        .map(|inst| {
                            let (kb, kcol) = kv_at(o, &a, inst);
                            let kt = &tensors[kv.tensor.0 as usize][kb];
                            let mut y = Vec::with_capacity(rows * o.cols as usize);
                            for r in 0..rows {
                                if o.role == Role::Scores {
                                    let (qb, qrow, qcol) = q_at(o, &a, inst, r);
                                    let q = &tensors[x.tensor.0 as usize][qb][qrow * xc + qcol..];
                                    for key in 0..o.cols as usize {
                                        let k = &kt[key * kc + kcol..];
                                        y.push((0..dh).map(|i| q[i] * k[i]).sum());
                                    }
                                } else {
                                    let (pb, prow) = p_at(o, &a, inst, r);
                                    let pr = &tensors[x.tensor.0 as usize][pb][prow * xc..];
                                    for c in 0..dh {
                                        y.push(
                                            (0..o.k as usize)
                                                .map(|key| pr[key] * kt[key * kc + kcol + c])
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
                            layer_norm(y, cols, DataPlane::norm(weights, o));
                        }
                        if let (VectorOp::RmsNorm, Some(dec)) = (op, &weights.decoder) {
                            let gamma = wiring.rms_gamma(dec, o);
                            for row in y.chunks_exact_mut(cols) {
                                wiring.rms_norm(row, gamma);
                            }
                        }
                        if op == VectorOp::Rotary {
                            for (r, row) in y.chunks_exact_mut(cols).enumerate() {
                                wiring.rotate(row, wiring.position(r));
                            }
                        }
                    }
                }
                _ => {}
            }
            if let Some(t) = o.output {
                let cols = g.tensor(t).cols as usize;
                for (inst, y) in flow.iter().enumerate() {
                    let w = y.len() / rows;
                    for (r, yr) in y.chunks_exact(w).enumerate() {
                        let (b, row, col) = dest(o, inst, r);
                        let at = row * cols + col;
                        tensors[t.0 as usize][b][at..at + w].copy_from_slice(yr);
                        // A decode step's cache append: this row's K and V.
                        if let Some((cache, cb, crow, k0)) = wiring.append(t, row) {
                            let kc = g.tensor(cache).cols as usize;
                            tensors[cache.0 as usize][cb][crow * kc..(crow + 1) * kc]
                                .copy_from_slice(&yr[k0..]);
                        }
                    }
                }
            }
        }
        Reference { tensors }
    }

    /// Every instance of tensor `t`.
    pub(crate) fn instances(&self, t: TensorId) -> &[Vec<f64>] {
        &self.tensors[t.0 as usize]
    }

    /// Instance `b` of tensor `t`.
    pub fn tensor(&self, t: TensorId, b: usize) -> &[f64] {
        &self.tensors[t.0 as usize][b]
    }
}
