//! What the data plane and the f64 reference share about a graph beyond its ops: which
//! weights each linear op uses, where attention reads its operands and writes its output
//! (per-head and grouped), the decoder's row-wise arithmetic (RMSNorm, rotary), the decoder's
//! inputs (token embeddings, the first norm, the KV cache) and the KV cache append.
//!
//! - **Weights.** A linear op uses the weights of its class in its layer, the `nth` of its
//!   class there (a decoder's gate is the layer's first `Ffn1`, its up the second).
//! - **RMSNorm** `x / sqrt(mean(x^2) + eps) * gamma`, `eps` the model's; norm 0 is the
//!   layer's `ffn_norm`, norm 1 the next layer's `attn_norm`, or the final norm after the
//!   run's last layer.
//! - **Rotary** (Hugging Face's rotate-half): in each Q head (columns `0..h dh`) and K head
//!   (`h dh..(h + hkv) dh`) the pair `(x_i, x_{i + dh/2})`, `i < dh/2`, turns by
//!   `a = pos * theta^(-2i/dh)`: `(x_i cos a - x_{i+dh/2} sin a, x_{i+dh/2} cos a + x_i sin
//!   a)`; V is untouched. `pos` is the row in a prefill, the context length in a decode step
//!   (every sequence the same).
//! - **Attention operands.** Per-head (a prefill): instance `b h + j` reads Q of head `j`
//!   from row `r` of sequence `b`, K/V of its key/value head. Grouped (a decode step):
//!   instance `b hkv + g` has the group's query heads `g group + r` as rows, reads Q from
//!   row `b` of the batch-wide `qkv`, K/V of head `g` from sequence `b`'s cache, and writes
//!   its head `g group + r`'s context to row `b`, columns `(g group + r) dh ..`.

use super::llama_weights::LlamaWeights;
use super::weights::{Linear, ModelWeights};
use crate::model::{Attention, Graph, Home, Op, Role, TensorId, VectorOp};
use crate::workload::{Phase, Workload};

/// A decoder's KV cache: per layer and sequence, `tokens` rows of `2 hkv dh` values (a
/// token's K of each key/value head, then its V of each), row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct KvCache {
    /// Tokens cached per sequence.
    pub tokens: usize,
    /// `values[layer][sequence]`, `tokens x 2 hkv dh`.
    pub values: Vec<Vec<Vec<f32>>>,
}

/// A cache in f64: `(tokens, values[layer][sequence])`.
pub(crate) type CacheF64 = (usize, Vec<Vec<Vec<f64>>>);

/// Initial values per tensor and instance (`None`: not an input).
pub(crate) type Initial = Vec<Option<Vec<Vec<f64>>>>;

/// The decoder's shape as the arithmetic needs it.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Rope {
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    theta: f64,
}

/// The graph's wiring (see the module header).
#[derive(Clone, Debug)]
pub(crate) struct Wiring {
    /// Per op: its ordinal among the ops of its layer and linear class.
    nth: Vec<usize>,
    /// Layers the run simulates.
    run_layers: u64,
    /// A decode step's context.
    context: Option<u64>,
    /// A decoder's shape.
    rope: Option<Rope>,
    /// RMSNorm epsilon.
    eps: f64,
    /// Per tensor: the cache its rows' K and V are appended to (a decode step's `qkv`) and
    /// the first K column.
    appends: Vec<Option<(TensorId, usize)>>,
}

impl Wiring {
    /// The wiring of `g`, the graph of `w`.
    pub fn new(w: &Workload, g: &Graph) -> Wiring {
        let mut nth = Vec::with_capacity(g.ops.len());
        for (j, o) in g.ops.iter().enumerate() {
            let same = g.ops[..j]
                .iter()
                .filter(|p| p.layer == o.layer && p.linear_class().is_some() && p.role == o.role)
                .count();
            nth.push(same);
        }
        let mut appends = vec![None; g.tensors.len()];
        for o in &g.ops {
            if let (Role::Scores, Some(a), Some(q), Some(kv)) = (o.role, o.attention, o.input, o.kv)
                && g.tensor(kv.tensor).home == Home::KvCache
            {
                appends[q.tensor.0 as usize] = Some((kv.tensor, (a.heads * a.head_dim) as usize));
            }
        }
        let dec = w.model.decoder.as_ref();
        Wiring {
            nth,
            run_layers: w.layers,
            context: match w.phase {
                Phase::Decode { context } => Some(context),
                Phase::Prefill => None,
            },
            rope: dec.and_then(|d| {
                Some(Rope {
                    heads: w.model.heads as usize,
                    kv_heads: d.kv_heads as usize,
                    head_dim: d.head_dim as usize,
                    theta: d.rope_theta()?,
                })
            }),
            eps: dec.map_or(super::LN_EPS, |d| d.norm_eps),
            appends,
        }
    }

    /// The weights of linear op `j`.
    pub fn linear<'w>(&self, weights: &'w ModelWeights, g: &Graph, j: usize) -> Option<&'w Linear> {
        let o = &g.ops[j];
        weights.linear(o.layer, o.linear_class()?, self.nth[j])
    }

    /// The RMSNorm scale of op `o` (a decoder's).
    pub fn rms_gamma<'w>(&self, dec: &'w LlamaWeights, o: &Op) -> &'w [f32] {
        let l = o.layer as usize;
        if o.norm == 0 {
            &dec.layers[l].ffn_norm
        } else if o.layer + 1 < self.run_layers {
            &dec.layers[l + 1].attn_norm
        } else {
            &dec.final_norm
        }
    }

    /// RMSNorm of one row with scale `gamma`, in f64.
    pub fn rms_norm(&self, row: &mut [f64], gamma: &[f32]) {
        let ms = row.iter().map(|x| x * x).sum::<f64>() / row.len() as f64;
        let inv = 1.0 / (ms + self.eps).sqrt();
        for (x, &g) in row.iter_mut().zip(gamma) {
            *x = *x * inv * f64::from(g);
        }
    }

    /// RMSNorm epsilon.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// The rotary position of row `row` of a `qkv` instance.
    pub fn position(&self, row: usize) -> u64 {
        self.context.unwrap_or(row as u64)
    }

    /// Rotates the Q and K heads of one `qkv` row at position `pos`, in f64.
    pub fn rotate(&self, row: &mut [f64], pos: u64) {
        let Some(r) = self.rope else { return };
        let (dh, half) = (r.head_dim, r.head_dim / 2);
        for head in 0..r.heads + r.kv_heads {
            let x = &mut row[head * dh..(head + 1) * dh];
            for i in 0..half {
                let a = pos as f64 * r.theta.powf(-2.0 * i as f64 / dh as f64);
                let (sin, cos) = a.sin_cos();
                let (x0, x1) = (x[i], x[i + half]);
                x[i] = x0 * cos - x1 * sin;
                x[i + half] = x1 * cos + x0 * sin;
            }
        }
    }

    /// Where a completed row `row` of tensor `t` appends its K and V: `(cache tensor, its
    /// instance, its row, first K column of the row)`.
    pub fn append(&self, t: TensorId, row: usize) -> Option<(TensorId, usize, usize, usize)> {
        let (cache, k0) = self.appends[t.0 as usize]?;
        Some((cache, row, self.context? as usize, k0))
    }

    /// The decoder's input tensors of `g`, per tensor and instance (`None`: not an input):
    /// the token embeddings, their RMSNorm with layer 0's `attn_norm`, and each layer's cache
    /// (a decode step: rows `0..context` from `inputs.cache`, the new row NaN).
    pub fn decoder_inputs(
        &self,
        g: &Graph,
        dec: &LlamaWeights,
        inputs: &super::dataplane::DecoderInputs,
    ) -> Result<Initial, String> {
        let cache = inputs.cache.as_ref().map(|c| {
            let v = c
                .values
                .iter()
                .map(|l| {
                    l.iter()
                        .map(|s| s.iter().map(|&x| f64::from(x)).collect())
                        .collect()
                })
                .collect();
            (c.tokens, v)
        });
        self.decoder_inputs_f64(g, dec, &inputs.tokens, cache)
    }

    /// [`Wiring::decoder_inputs`] with an f64 cache `(tokens, values[layer][sequence])`.
    pub fn decoder_inputs_f64(
        &self,
        g: &Graph,
        dec: &LlamaWeights,
        tokens: &[Vec<u32>],
        cache: Option<CacheF64>,
    ) -> Result<Initial, String> {
        let mut out: Initial = vec![None; g.tensors.len()];
        let (input, norm) = (TensorId(0), TensorId(1));
        let it = g.tensor(input);
        let (rows, cols, inst) = (it.rows as usize, it.cols as usize, it.instances as usize);
        // Sequence `b`'s token `p`: prefill instance `b` row `p`; decode instance 0 row `b`.
        let seqs = if self.context.is_some() { rows } else { inst };
        let per_seq = if self.context.is_some() { 1 } else { rows };
        if tokens.len() != seqs || tokens.iter().any(|t| t.len() != per_seq) {
            return Err(format!(
                "the run takes {seqs} sequences of {per_seq} tokens, given {} sequences of {:?}",
                tokens.len(),
                tokens.iter().map(Vec::len).collect::<Vec<_>>()
            ));
        }
        let vocab = dec.vocab();
        let mut x = vec![vec![0.0f64; rows * cols]; inst];
        for (b, seq) in tokens.iter().enumerate() {
            for (p, &tok) in seq.iter().enumerate() {
                if tok as usize >= vocab {
                    return Err(format!(
                        "token id {tok} is not below the vocabulary {vocab}"
                    ));
                }
                let (i, r) = if self.context.is_some() {
                    (0, b)
                } else {
                    (b, p)
                };
                for (dst, v) in x[i][r * cols..(r + 1) * cols]
                    .iter_mut()
                    .zip(dec.embed(tok))
                {
                    *dst = f64::from(v);
                }
            }
        }
        let mut xn = x.clone();
        for inst in &mut xn {
            for row in inst.chunks_exact_mut(cols) {
                self.rms_norm(row, &dec.layers[0].attn_norm);
            }
        }
        out[input.0 as usize] = Some(x);
        out[norm.0 as usize] = Some(xn);
        if let Some(context) = self.context {
            let caches: Vec<TensorId> = g
                .ops
                .iter()
                .filter(|o| o.role == Role::Scores)
                .filter_map(|o| o.kv.map(|v| v.tensor))
                .collect();
            let c = context as usize;
            let (tokens, cache) = cache.ok_or("a decode step needs a KV cache")?;
            if tokens != c || cache.len() < caches.len() {
                return Err(format!(
                    "the KV cache holds {tokens} tokens of {} layers, the step needs {c} tokens of {}",
                    cache.len(),
                    caches.len()
                ));
            }
            for (layer, (&t, seqs)) in caches.iter().zip(cache).enumerate() {
                let ct = g.tensor(t);
                let w = ct.cols as usize;
                if seqs.len() != ct.instances as usize {
                    return Err(format!(
                        "the KV cache of layer {layer} holds {} sequences, the step {}",
                        seqs.len(),
                        ct.instances
                    ));
                }
                let mut v = Vec::new();
                for (b, mut inst) in seqs.into_iter().enumerate() {
                    if inst.len() != c * w {
                        return Err(format!(
                            "the KV cache of layer {layer}, sequence {b} is not {c} x {w} values"
                        ));
                    }
                    inst.resize((c + 1) * w, f64::NAN);
                    v.push(inst);
                }
                out[t.0 as usize] = Some(v);
            }
        }
        Ok(out)
    }

    /// The KV cache after a run, from its tensors (`values(t, instance)`): each layer's K and
    /// V columns, the `qkv` rows of a prefill or the cache with its new row of a decode step.
    pub fn kv_cache(&self, g: &Graph, values: impl Fn(TensorId, usize) -> Vec<f32>) -> KvCache {
        let (tokens, values) = self.kv_columns(g, values);
        KvCache { tokens, values }
    }

    /// [`Wiring::kv_cache`] for any value type: `(tokens, values[layer][sequence])`.
    pub fn kv_columns<T: Copy>(
        &self,
        g: &Graph,
        values: impl Fn(TensorId, usize) -> Vec<T>,
    ) -> (usize, Vec<Vec<Vec<T>>>) {
        let mut out = Vec::new();
        let mut tokens = 0;
        for o in g.ops.iter().filter(|o| o.role == Role::Scores) {
            let Some(kv) = o.kv else { continue };
            let t = g.tensor(kv.tensor);
            let (cols, k0) = (t.cols as usize, kv.col0 as usize);
            tokens = t.rows as usize;
            out.push(
                (0..t.instances as usize)
                    .map(|b| {
                        values(kv.tensor, b)
                            .chunks_exact(cols)
                            .flat_map(|row| row[k0..].to_vec())
                            .collect()
                    })
                    .collect(),
            );
        }
        (tokens, out)
    }
}

/// Where attention instance `inst`'s output row `r` reads Q: `(instance, row, first column)`
/// of the Q tensor.
pub(crate) fn q_at(o: &Op, a: &Attention, inst: usize, r: usize) -> (usize, usize, usize) {
    let dh = a.head_dim as usize;
    let col0 = o.input.map_or(0, |v| v.col0 as usize);
    if a.grouped {
        let (b, g) = (inst / a.kv_heads as usize, inst % a.kv_heads as usize);
        (0, b, col0 + (g * a.group() as usize + r) * dh)
    } else {
        let h = a.heads as usize;
        (inst / h, r, col0 + (inst % h) * dh)
    }
}

/// Where attention instance `inst` reads K (scores) or V (P·V): `(instance, first column)`
/// of the K/V tensor.
pub(crate) fn kv_at(o: &Op, a: &Attention, inst: usize) -> (usize, usize) {
    let dh = a.head_dim as usize;
    let col0 = o.kv.map_or(0, |v| v.col0 as usize);
    let n = a.per_sequence() as usize;
    let g = if a.grouped {
        inst % n
    } else {
        a.kv_head((inst % n) as u64) as usize
    };
    (inst / n, col0 + g * dh)
}

/// Where P·V instance `inst` reads P row `r`: `(instance, row)` of the P tensor.
pub(crate) fn p_at(o: &Op, a: &Attention, inst: usize, r: usize) -> (usize, usize) {
    let n = a.per_sequence() as usize;
    (inst / n, (inst % n) * o.rows as usize + r)
}

/// Where row `r` of op `o`'s instance `inst` output lands: `(instance, row, first column)`
/// of its output tensor (a grouped P·V writes its rows side by side in one row).
pub(crate) fn dest(o: &Op, inst: usize, r: usize) -> (usize, usize, usize) {
    let (b, row0, col0) = o.out_at(inst as u64);
    let (b, row0, col0) = (b as usize, row0 as usize, col0 as usize);
    match (o.role, o.attention) {
        (Role::Pv, Some(a)) if a.grouped => (b, row0, col0 + r * o.cols as usize),
        _ => (b, row0 + r, col0),
    }
}

/// The row-wise op of a chain ending at a storing op, if any.
pub(crate) fn row_op(ops: &[Op]) -> Option<&Op> {
    ops.iter().find(|o| {
        matches!(
            o.vector_op(),
            Some(
                VectorOp::LayerNorm | VectorOp::AddLayerNorm | VectorOp::RmsNorm | VectorOp::Rotary
            )
        )
    })
}
