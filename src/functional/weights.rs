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
use std::sync::Arc;

use super::llama_weights::LlamaWeights;
use crate::model::LinearClass;

use crate::workload::prune::{pack, prune, unpack_slots};
use crate::workload::stanm::{StoredTensor, inputs, read_tensors};
use crate::workload::{Pattern, Workload};

/// Largest linear weight a functional run takes, in elements: the reference expands each
/// linear layer to dense f64 (`out x k`), so this is 2 GiB of f64. BERT-large's largest,
/// Q, K and V together, is 3.1 M.
pub const MAX_DENSE_WEIGHT_ELEMENTS: u64 = 1 << 28;

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
    pub slots: Vec<(f32, u32)>,
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

    /// Checks the slots against the shape: `out * ceil(k / M) * N` of them, every offset
    /// inside its group, one bias per output, and the dense expansion of the reference within
    /// [`MAX_DENSE_WEIGHT_ELEMENTS`]. `what` names the layer in errors.
    pub fn check(&self, what: &str) -> Result<(), String> {
        let (n, m) = self.nm();
        let dense = (self.out as u64).checked_mul(self.k as u64);
        if self.out == 0 || self.k == 0 || dense.is_none_or(|d| d > MAX_DENSE_WEIGHT_ELEMENTS) {
            return Err(format!(
                "{what}: a {} x {} weight; a functional run takes 1 to {MAX_DENSE_WEIGHT_ELEMENTS} \
                 elements (its reference expands every weight to dense f64)",
                self.out, self.k
            ));
        }
        let groups = self.k.div_ceil(m);
        let want = self.out.checked_mul(groups).and_then(|x| x.checked_mul(n));
        if want != Some(self.slots.len()) {
            return Err(format!(
                "{what}: {} slots, but a {} x {} weight with {} stores {}",
                self.slots.len(),
                self.out,
                self.k,
                self.pattern,
                want.map_or_else(|| "more than can be counted".into(), |w| w.to_string())
            ));
        }
        if let Some(i) = (0..self.slots.len())
            .find(|&i| (i / n % groups) * m + self.slots[i].1 as usize >= self.k)
        {
            return Err(format!(
                "{what}: slot {i} selects an input past K = {}",
                self.k
            ));
        }
        if self.bias.len() != self.out {
            return Err(format!(
                "{what}: {} bias values for {} outputs",
                self.bias.len(),
                self.out
            ));
        }
        Ok(())
    }

    /// One output of the PE array for column `col` and activation row `a`, over the
    /// reduction chunk `ks` (whole groups: its ends are multiples of `M`, or `k`): for every
    /// group, each stored weight is multiplied by the activation its index multiplexer
    /// selects (`a[g*M + offset]`); products and sums in f32 (the adder tree).
    pub fn mac(&self, col: usize, a: &[f32], ks: std::ops::Range<usize>) -> f32 {
        let (n, m) = self.nm();
        let groups = self.k.div_ceil(m);
        let slots = &self.slots[col * groups * n..(col + 1) * groups * n];
        let (g0, g1) = (ks.start / m, ks.end.div_ceil(m).min(groups));
        let mut acc = 0.0f32;
        for (g, group) in slots.chunks_exact(n).enumerate().take(g1).skip(g0) {
            for &(v, o) in group {
                acc += v * a[g * m + o as usize];
            }
        }
        acc
    }

    /// `sum_i W[col, i] a[i]` in f64 over the stored slots, in ascending input order (the
    /// reference's dot product: the same sum as the dense product, whose pruned weights
    /// add exact zeros).
    pub fn dot_f64(&self, col: usize, a: &[f64]) -> f64 {
        let (n, m) = self.nm();
        let groups = self.k.div_ceil(m);
        let slots = &self.slots[col * groups * n..(col + 1) * groups * n];
        let mut acc = 0.0f64;
        for (g, group) in slots.chunks_exact(n).enumerate() {
            for &(v, o) in group {
                if v != 0.0 {
                    acc += f64::from(v) * a[g * m + o as usize];
                }
            }
        }
        acc
    }

    /// `W` expanded to dense `out x k`, in f64 (for the reference).
    pub fn dense_f64(&self) -> Vec<f64> {
        self.dense()
    }

    /// `W` expanded to dense row-major `out x k` in `T` (f32 or f64: exact either way).
    pub fn dense<T: From<f32> + Default + Copy + std::ops::AddAssign>(&self) -> Vec<T> {
        let (n, m) = self.nm();
        let groups = self.k.div_ceil(m);
        let mut w = vec![T::default(); self.out * self.k];
        for (i, &(v, o)) in self.slots.iter().enumerate() {
            let (col, g) = (i / (groups * n), i / n % groups);
            let idx = g * m + o as usize;
            if idx < self.k {
                w[col * self.k + idx] += T::from(v);
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

impl LayerWeights {
    /// The linear layer of `class` (`None`: a decoder's lm_head, which these encoder-layer
    /// weights do not hold).
    pub fn linear(&self, class: crate::model::LinearClass) -> Option<&Linear> {
        use crate::model::LinearClass;
        match class {
            LinearClass::Qkv => Some(&self.qkv),
            LinearClass::Proj => Some(&self.proj),
            LinearClass::Ffn1 => Some(&self.ffn1),
            LinearClass::Ffn2 => Some(&self.ffn2),
            LinearClass::LmHead => None,
        }
    }
}

/// The weights of the layers a run simulates.
#[derive(Clone, Debug)]
pub struct ModelWeights {
    /// Encoder layers, in order (empty for a decoder).
    pub layers: Vec<LayerWeights>,
    /// A Llama-family decoder's weights (shared: generation steps reuse them).
    pub decoder: Option<Arc<LlamaWeights>>,
}

/// Seeded uniform values in `[-scale, scale)`.
pub(crate) fn uniform(n: usize, scale: f32, seed: u64) -> Vec<f32> {
    inputs(1, n, seed).into_iter().map(|u| u * scale).collect()
}

/// A seeded linear layer pruned to `pattern` and packed as `stasim prune` stores it.
pub(crate) fn seeded_linear(
    out: usize,
    k: usize,
    pattern: Pattern,
    seed: u64,
) -> Result<Linear, String> {
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
    /// A decoder's weights.
    pub fn decoder(weights: LlamaWeights) -> ModelWeights {
        ModelWeights {
            layers: Vec::new(),
            decoder: Some(Arc::new(weights)),
        }
    }

    /// The weights of linear op `class` of `layer`, the `nth` of its class in the layer
    /// (a decoder's gate is the first `Ffn1`, its up the second); `None` if these weights do
    /// not hold it.
    pub fn linear(&self, layer: u64, class: LinearClass, nth: usize) -> Option<&Linear> {
        let l = layer as usize;
        match &self.decoder {
            None => self.layers.get(l)?.linear(class).filter(|_| nth == 0),
            Some(dec) => {
                if class == LinearClass::LmHead {
                    return Some(dec.head());
                }
                let lw = dec.layers.get(l)?;
                match (class, nth) {
                    (LinearClass::Qkv, 0) => Some(&lw.qkv),
                    (LinearClass::Proj, 0) => Some(&lw.o_proj),
                    (LinearClass::Ffn1, 0) => Some(&lw.gate),
                    (LinearClass::Ffn1, 1) => Some(&lw.up),
                    (LinearClass::Ffn2, 0) => Some(&lw.down),
                    _ => None,
                }
            }
        }
    }

    /// Seeded weights for the workload's shapes and per-layer patterns (a decoder's with
    /// [`LlamaWeights::seeded`]).
    pub fn seeded(w: &Workload, seed: u64) -> Result<ModelWeights, String> {
        if w.model.decoder.is_some() {
            return LlamaWeights::seeded(w, seed).map(ModelWeights::decoder);
        }
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
        Ok(ModelWeights {
            layers,
            decoder: None,
        })
    }

    /// The weights of a `.stanm` file (family member `member`, default the densest), for
    /// its first `layers` layers. Every linear layer passes [`Linear::check`]; Q, K and V
    /// share K and a pattern; LayerNorm parameters are as long as the hidden size.
    pub fn from_stanm(
        path: &Path,
        member: Option<Pattern>,
        layers: u64,
    ) -> Result<ModelWeights, String> {
        let mut by_name: Named = read_tensors(path, member)?
            .into_iter()
            .map(|(name, shape, t)| (name, (shape, t)))
            .collect();
        let (layers, _) = encoder_layers(path, &mut by_name, layers)?;
        Ok(ModelWeights {
            layers,
            decoder: None,
        })
    }
}

/// Decoded tensors by name, with their shapes ([`read_tensors`]).
pub type Named = HashMap<String, (Vec<usize>, StoredTensor)>;

/// The encoder layers `0..layers` taken out of `by_name` (what is left is every other
/// tensor), with each layer's name prefix (`encoder.layer.{i}.`, after any model prefix such
/// as `bert.`). Every linear layer passes [`Linear::check`]; Q, K and V share K and a
/// pattern; LayerNorm parameters are as long as the hidden size. `path` names the file in
/// errors.
pub fn encoder_layers(
    path: &Path,
    by_name: &mut Named,
    layers: u64,
) -> Result<(Vec<LayerWeights>, Vec<String>), String> {
    let named = |m: String| format!("`{}`: {m}", path.display());
    let prefix = |layer: u64| -> Result<String, String> {
        by_name
            .keys()
            .filter_map(|n| {
                n.strip_suffix("attention.self.query.weight")
                    .filter(|p| p.ends_with(&format!("layer.{layer}.")))
            })
            .min()
            .map(str::to_string)
            .ok_or_else(|| {
                named(format!(
                    "no `attention.self.query.weight` for layer {layer}"
                ))
            })
    };
    let prefixes = (0..layers).map(prefix).collect::<Result<Vec<_>, _>>()?;
    let mut take = |name: String| {
        by_name.remove(&name).ok_or_else(|| {
            named(format!(
                "tensor `{name}` not found (a functional run needs every linear weight, its bias and the LayerNorm parameters)"
            ))
        })
    };
    let mut out = Vec::new();
    for p in &prefixes {
        let mut linear = |parts: &[&str]| -> Result<Linear, String> {
            let mut slots = Vec::new();
            let mut bias = Vec::new();
            let mut rows = 0;
            let mut shared: Option<(usize, Pattern)> = None;
            for part in parts {
                let name = format!("{p}{part}.weight");
                let (shape, t) = take(name.clone())?;
                let (
                    StoredTensor::Pruned {
                        pattern: pt,
                        slots: s,
                        ..
                    },
                    &[r, k],
                ) = (t, shape.as_slice())
                else {
                    return Err(named(format!("`{name}` is not a pruned 2-D weight")));
                };
                if shared.is_some_and(|x| x != (k, pt)) {
                    return Err(named(format!(
                        "`{name}` differs in inputs or pattern from the other parts of its operation"
                    )));
                }
                shared = Some((k, pt));
                rows += r;
                slots.extend(s);
                match take(format!("{p}{part}.bias"))? {
                    (_, StoredTensor::Dense(b)) if b.len() == r => bias.extend(b),
                    _ => {
                        return Err(named(format!("`{p}{part}.bias` is not a vector of {r}")));
                    }
                }
            }
            let (k, pattern) =
                shared.ok_or_else(|| named("an operation without weights".into()))?;
            let lin = Linear {
                out: rows,
                k,
                pattern,
                slots,
                bias,
            };
            lin.check(&format!("`{}` ({p}{})", path.display(), parts.join(", ")))?;
            Ok(lin)
        };
        let qkv = linear(&[
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
        ])?;
        let proj = linear(&["attention.output.dense"])?;
        let ffn1 = linear(&["intermediate.dense"])?;
        let ffn2 = linear(&["output.dense"])?;
        let d = proj.out;
        let mut norm = |what: &str| -> Result<Norm, String> {
            let mut get = |suffix: &str| {
                let name = format!("{p}{what}.LayerNorm.{suffix}");
                match take(name.clone())? {
                    (_, StoredTensor::Dense(v)) if v.len() == d => Ok(v),
                    _ => Err(named(format!(
                        "`{name}` is not a floating-point vector of the hidden size {d}"
                    ))),
                }
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
    Ok((out, prefixes))
}
