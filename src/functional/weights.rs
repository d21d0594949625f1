//! The weights a functional run computes with: every linear layer in STA's stored form (per
//! output column, per group of `M` inputs, `N` slots of `(f16 value, offset)`), biases and
//! LayerNorm parameters.
//!
//! Two sources: a `.stanm` file written by `stasim prune` (the chosen family member's slots
//! decoded from the file; Q, K and V concatenated into one `[3d x d]` operation as STA runs
//! them), or seeded weights for a preset, pruned and packed by the same code as `stasim
//! prune` (`W ~ U(-1,1) * sqrt(3/K)`, so `Var(w) = 1/K`; biases and LayerNorm shifts
//! `U(-0.1, 0.1)`, LayerNorm scales `1 + U(-0.1, 0.1)`).

use std::collections::HashMap;
use std::path::Path;

use crate::workload::prune::{pack, prune, unpack_slots};
use crate::workload::stanm::{StoredTensor, inputs, read_tensors};
use crate::workload::{Pattern, Workload};

/// One linear layer `y = x W^T + b`, `W` of `out x k`, in stored (slot) form.
#[derive(Clone, Debug)]
pub struct Linear {
    /// Outputs (columns of STA's `W[K x Nout]`).
    pub out: usize,
    /// Reduction length.
    pub k: usize,
    /// The stored pattern (`dense` is stored as groups of one with one slot).
    pub pattern: Pattern,
    /// `out * groups * n` slots `(value, offset within the group)`.
    pub slots: Vec<(f32, u8)>,
    /// Bias, `out` values.
    pub bias: Vec<f32>,
}

impl Linear {
    /// `(N, M)` of the stored groups.
    fn nm(&self) -> (usize, usize) {
        if self.pattern.is_dense() {
            (1, 1)
        } else {
            (self.pattern.n as usize, self.pattern.m as usize)
        }
    }

    /// One output of the PE array for column `col` and activation row `a`: for every group,
    /// each stored weight is multiplied by the activation its index multiplexer selects
    /// (`a[g*M + offset]`); products and sums in f32 (the adder tree).
    pub fn mac(&self, col: usize, a: &[f32]) -> f32 {
        let (n, m) = self.nm();
        let groups = self.k.div_ceil(m);
        let slots = &self.slots[col * groups * n..(col + 1) * groups * n];
        let mut acc = 0.0f32;
        for (g, group) in slots.chunks_exact(n).enumerate() {
            for &(v, o) in group {
                acc += v * a[g * m + usize::from(o)];
            }
        }
        acc
    }

    /// `W` expanded to dense `out x k`, in f64 (for the reference).
    pub fn dense_f64(&self) -> Vec<f64> {
        let (n, m) = self.nm();
        let groups = self.k.div_ceil(m);
        let mut w = vec![0.0f64; self.out * self.k];
        for (i, &(v, o)) in self.slots.iter().enumerate() {
            let (col, g) = (i / (groups * n), i / n % groups);
            let idx = g * m + usize::from(o);
            if idx < self.k {
                w[col * self.k + idx] += f64::from(v);
            }
        }
        w
    }
}

/// LayerNorm parameters.
#[derive(Clone, Debug)]
pub struct Norm {
    /// Scale.
    pub gamma: Vec<f32>,
    /// Shift.
    pub beta: Vec<f32>,
}

/// One encoder layer.
#[derive(Clone, Debug)]
pub struct LayerWeights {
    /// Q, K, V as one `[3d x d]` linear (rows Q, then K, then V).
    pub qkv: Linear,
    /// Attention output projection.
    pub proj: Linear,
    /// FFN up.
    pub ffn1: Linear,
    /// FFN down.
    pub ffn2: Linear,
    /// LayerNorm after attention.
    pub ln1: Norm,
    /// LayerNorm after the FFN.
    pub ln2: Norm,
}

/// The weights of the layers a run simulates.
#[derive(Clone, Debug)]
pub struct ModelWeights {
    /// Layers, in order.
    pub layers: Vec<LayerWeights>,
}

/// Seeded uniform values in `[-scale, scale)`.
fn uniform(n: usize, scale: f32, seed: u64) -> Vec<f32> {
    inputs(1, n, seed).into_iter().map(|u| u * scale).collect()
}

/// A seeded linear layer pruned to `pattern` and packed as `stasim prune` stores it.
fn seeded_linear(out: usize, k: usize, pattern: Pattern, seed: u64) -> Result<Linear, String> {
    let w = uniform(out * k, (3.0 / k as f32).sqrt(), seed);
    let mask = prune(&w, out, k, pattern, None);
    let packed = pack(&w, std::slice::from_ref(&mask));
    let n = if pattern.is_dense() {
        1
    } else {
        pattern.n as usize
    };
    Ok(Linear {
        out,
        k,
        pattern,
        slots: unpack_slots(&packed, out, k, pattern, 1, 0, n)?,
        bias: uniform(out, 0.1, seed ^ 0xB1A5),
    })
}

fn seeded_norm(d: usize, seed: u64) -> Norm {
    Norm {
        gamma: uniform(d, 0.1, seed).into_iter().map(|x| 1.0 + x).collect(),
        beta: uniform(d, 0.1, seed ^ 0xBE7A),
    }
}

impl ModelWeights {
    /// Seeded weights for the workload's shapes and per-layer patterns.
    pub fn seeded(w: &Workload, seed: u64) -> Result<ModelWeights, String> {
        let (d, f) = (w.model.hidden as usize, w.model.ffn as usize);
        let layers = (0..w.layers)
            .map(|l| {
                let p = w.patterns_of(l);
                let s = seed.wrapping_mul(1_000_003).wrapping_add(l * 16);
                Ok(LayerWeights {
                    qkv: seeded_linear(3 * d, d, p.qkv, s + 1)?,
                    proj: seeded_linear(d, d, p.proj, s + 2)?,
                    ffn1: seeded_linear(f, d, p.ffn1, s + 3)?,
                    ffn2: seeded_linear(d, f, p.ffn2, s + 4)?,
                    ln1: seeded_norm(d, s + 5),
                    ln2: seeded_norm(d, s + 6),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(ModelWeights { layers })
    }

    /// The weights of a `.stanm` file (family member `member`, default the densest), for
    /// its first `layers` layers.
    pub fn from_stanm(
        path: &Path,
        member: Option<Pattern>,
        layers: u64,
    ) -> Result<ModelWeights, String> {
        let mut by_name: HashMap<String, (Vec<usize>, StoredTensor)> = read_tensors(path, member)?
            .into_iter()
            .map(|(name, shape, t)| (name, (shape, t)))
            .collect();
        let prefix = |layer: u64| -> Result<String, String> {
            by_name
                .keys()
                .filter_map(|n| {
                    n.strip_suffix("attention.self.query.weight")
                        .filter(|p| p.ends_with(&format!("layer.{layer}.")))
                })
                .next()
                .map(str::to_string)
                .ok_or_else(|| {
                    format!(
                        "`{}`: no `attention.self.query.weight` for layer {layer}",
                        path.display()
                    )
                })
        };
        let prefixes = (0..layers).map(prefix).collect::<Result<Vec<_>, _>>()?;
        let mut take = |name: String| {
            by_name.remove(&name).ok_or_else(|| {
                format!(
                    "`{}`: tensor `{name}` not found (a functional run needs every linear weight, its bias and the LayerNorm parameters)",
                    path.display()
                )
            })
        };
        let mut out = Vec::new();
        for p in prefixes {
            let mut linear = |parts: &[&str]| -> Result<Linear, String> {
                let mut slots = Vec::new();
                let mut bias = Vec::new();
                let (mut rows, mut k, mut pattern) = (0, 0, Pattern::DENSE);
                for part in parts {
                    let name = format!("{p}{part}.weight");
                    let (shape, t) = take(name.clone())?;
                    let StoredTensor::Pruned {
                        pattern: pt,
                        slots: s,
                        ..
                    } = t
                    else {
                        return Err(format!("`{}`: `{name}` is not pruned", path.display()));
                    };
                    rows += shape[0];
                    k = shape[1];
                    pattern = pt;
                    slots.extend(s);
                    match take(format!("{p}{part}.bias"))? {
                        (_, StoredTensor::Dense(b)) if b.len() == shape[0] => bias.extend(b),
                        _ => {
                            return Err(format!(
                                "`{}`: `{p}{part}.bias` is not a vector of {}",
                                path.display(),
                                shape[0]
                            ));
                        }
                    }
                }
                Ok(Linear {
                    out: rows,
                    k,
                    pattern,
                    slots,
                    bias,
                })
            };
            let qkv = linear(&[
                "attention.self.query",
                "attention.self.key",
                "attention.self.value",
            ])?;
            let proj = linear(&["attention.output.dense"])?;
            let ffn1 = linear(&["intermediate.dense"])?;
            let ffn2 = linear(&["output.dense"])?;
            let mut norm = |what: &str| -> Result<Norm, String> {
                let mut get = |suffix: &str| match take(format!("{p}{what}.LayerNorm.{suffix}"))? {
                    (_, StoredTensor::Dense(v)) => Ok(v),
                    _ => Err(format!(
                        "`{}`: `{p}{what}.LayerNorm.{suffix}` is pruned",
                        path.display()
                    )),
                };
                Ok(Norm {
                    gamma: get("weight")?,
                    beta: get("bias")?,
                })
            };
            let ln1 = norm("attention.output")?;
            let ln2 = norm("output")?;
            out.push(LayerWeights {
                qkv,
                proj,
                ffn1,
                ffn2,
                ln1,
                ln2,
            });
        }
        Ok(ModelWeights { layers: out })
    }
}
