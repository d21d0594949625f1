//! The f64 reference of a functional run: the encoder layers computed directly, with no
//! tiling and no rounding, from the same stored weights and input as the simulation.
//!
//! Per layer and batch element (`x` the layer input, `W` dense from the stored slots):
//! `qkv = x Wqkv^T + b`; per head `P = softmax(Q K^T / sqrt(dh))` (causal mask for
//! decoders) and `context[:, head] = P V`; `add_ln1 = LN(context Wp^T + bp + x)`;
//! `gelu = GELU(add_ln1 W1^T + b1)`; `add_ln2 = LN(gelu W2^T + b2 + add_ln1)`.

use super::dataplane::{DataPlane, Dims, KINDS, Kind};
use super::weights::{Linear, Norm};
use super::{LN_EPS, gelu};

/// Every stored tensor, exact.
pub struct Reference {
    dims: Dims,
    tensors: Vec<Vec<f64>>,
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

/// `LN(x + res)` row by row.
fn add_norm(x: &[f64], res: &[f64], cols: usize, norm: &Norm) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len());
    for (row, rrow) in x.chunks_exact(cols).zip(res.chunks_exact(cols)) {
        let v: Vec<f64> = row.iter().zip(rrow).map(|(a, b)| a + b).collect();
        let n = cols as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        let inv = 1.0 / (var + LN_EPS).sqrt();
        for (j, x) in v.iter().enumerate() {
            out.push((x - mean) * inv * f64::from(norm.gamma[j]) + f64::from(norm.beta[j]));
        }
    }
    out
}

impl Reference {
    /// Runs the layers of `dp`'s workload on its input and weights.
    pub fn compute(dp: &DataPlane) -> Reference {
        let dims = dp.dims();
        let Dims {
            s, b, d, h, dh, f, ..
        } = dims;
        let mut tensors = vec![Vec::new(); dims.layers * KINDS.len() * b];
        for bi in 0..b {
            let mut x: Vec<f64> = dp.input(bi).iter().map(|&v| f64::from(v)).collect();
            for (l, lw) in dp.weights().layers.iter().take(dims.layers).enumerate() {
                let qkv = linear(&x, s, &lw.qkv);
                let mut p = vec![0.0f64; h * s * s];
                let mut context = vec![0.0f64; s * d];
                let scale = 1.0 / (dh as f64).sqrt();
                for hd in 0..h {
                    let at = |row: usize, part: usize, i: usize| {
                        qkv[row * 3 * d + part * d + hd * dh + i]
                    };
                    for r in 0..s {
                        let visible = if dims.causal { r + 1 } else { s };
                        let scores: Vec<f64> = (0..visible)
                            .map(|key| {
                                (0..dh).map(|i| at(r, 0, i) * at(key, 1, i)).sum::<f64>() * scale
                            })
                            .collect();
                        let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                        let e: Vec<f64> = scores.iter().map(|x| (x - max).exp()).collect();
                        let sum: f64 = e.iter().sum();
                        let prow = &mut p[(hd * s + r) * s..(hd * s + r + 1) * s];
                        for (key, v) in e.iter().enumerate() {
                            prow[key] = v / sum;
                        }
                        for c in 0..dh {
                            context[r * d + hd * dh + c] =
                                (0..s).map(|key| prow[key] * at(key, 2, c)).sum();
                        }
                    }
                }
                let h1 = add_norm(&linear(&context, s, &lw.proj), &x, d, &lw.ln1);
                let g: Vec<f64> = linear(&h1, s, &lw.ffn1).into_iter().map(gelu).collect();
                debug_assert_eq!(g.len(), s * f);
                let y = add_norm(&linear(&g, s, &lw.ffn2), &h1, d, &lw.ln2);
                for (kind, t) in [
                    (Kind::Qkv, qkv),
                    (Kind::P, p),
                    (Kind::Context, context),
                    (Kind::AddLn1, h1),
                    (Kind::Gelu, g),
                    (Kind::AddLn2, y.clone()),
                ] {
                    tensors[dims.index(l, kind, bi)] = t;
                }
                x = y;
            }
        }
        Reference { dims, tensors }
    }

    /// Tensor `(layer, kind, batch)`.
    pub fn tensor(&self, layer: usize, kind: Kind, b: usize) -> &[f64] {
        &self.tensors[self.dims.index(layer, kind, b)]
    }
}
