//! The weights of a Llama-family decoder (Llama, Mistral, Qwen2, SmolLM2) for functional runs
//! and the f64 reference: per layer the input RMSNorm scale (`attn_norm`), Q, K and V as one
//! `[W x d]` linear (`W = (h + 2 hkv) dh`, rows Q heads, then K heads, then V heads; a bias
//! for Qwen2, zero otherwise), the output projection, the FFN RMSNorm scale, the SwiGLU gate,
//! up and down projections; the final RMSNorm scale; the embedding table `[V x d]` (stored as
//! a dense linear: it is also the tied lm_head); an untied lm_head when the model has one.
//!
//! Every linear is a [`Linear`] in STA's stored form, pruned to the workload's pattern of its
//! class by the same code as `stasim prune` (so N:M works as for the encoders); the lm_head
//! and the embedding stay dense.
//!
//! Two sources:
//! - seeded ([`LlamaWeights::seeded`]), for presets: linear weights `U(-1, 1) * sqrt(3/K)`
//!   (as the encoders'), RMSNorm scales `1 + U(-0.1, 0.1)`, the embedding `U(-1, 1)` rounded
//!   to f16, zero biases except Qwen2's qkv (`U(-0.1, 0.1)`);
//! - a GGUF file ([`LlamaWeights::from_gguf`]): every tensor dequantised to f32 by
//!   [`crate::gguf`]; dense weights keep those f32 values exactly (so the f64 reference is the
//!   model the file holds), pruned ones are packed as `stasim prune` packs (f16 values).
//!   llama.cpp's converter permutes the rows of `attn_q` and `attn_k` of a `llama` GGUF
//!   within each head so that its adjacent-pair rotary equals Hugging Face's rotate-half
//!   form; the loader undoes that permutation, so the rotary here is the rotate-half one
//!   (pairs `(i, i + dh/2)`) for every source;
//! - a decoder `.stanm` pruned from a GGUF ([`LlamaWeights::from_stanm`]): the pruned
//!   weights' slots exactly as stored (f16 values and their offsets, the chosen family
//!   member), rows of Q and K put back in rotate-half order as above (the header says
//!   whether they were permuted; a row's slots move with it), the dense tables and vectors as
//!   stored (F16 tables, F32 vectors).

use super::to_f16;
use std::collections::HashMap;
use std::path::Path;

use super::weights::{Linear, seeded_linear, uniform};
use crate::workload::checkpoint::decoder_block;
use crate::workload::stanm::{StoredTensor, read_tensors_where};
use crate::workload::{Decoder, Pattern, Workload};

/// One decoder layer.
#[derive(Clone, Debug)]
pub struct LlamaLayer {
    /// The input RMSNorm scale (`d`).
    pub attn_norm: Vec<f32>,
    /// Q, K, V: `[(h + 2 hkv) dh x d]`.
    pub qkv: Linear,
    /// Output projection `[d x h dh]`.
    pub o_proj: Linear,
    /// The FFN RMSNorm scale (`d`).
    pub ffn_norm: Vec<f32>,
    /// SwiGLU gate `[f x d]`.
    pub gate: Linear,
    /// SwiGLU up `[f x d]`.
    pub up: Linear,
    /// Down `[d x f]`.
    pub down: Linear,
}

/// A decoder's weights.
#[derive(Clone, Debug)]
pub struct LlamaWeights {
    /// Layers, in order (at least the run's).
    pub layers: Vec<LlamaLayer>,
    /// The final RMSNorm scale (`d`).
    pub final_norm: Vec<f32>,
    /// The embedding table as a dense `[V x d]` linear (zero bias): row `t` is token `t`'s
    /// embedding; it is the lm_head when `lm_head` is `None` (tied).
    pub embedding: Linear,
    /// An untied lm_head `[V x d]`.
    pub lm_head: Option<Linear>,
    /// RMSNorm epsilon (of the source; the arithmetic uses the workload's, which
    /// [`LlamaWeights::from_gguf`] checks are the same).
    pub eps: f64,
    /// Rotary base (likewise).
    pub rope_theta: f64,
}

/// Makes a linear of `out x k` from dense row-major `values`: dense keeps the values exactly
/// (one slot a weight), a pattern is pruned and packed as `stasim prune` does.
pub fn linear_from_dense(
    values: &[f32],
    out: usize,
    k: usize,
    pattern: Pattern,
    bias: Vec<f32>,
) -> Result<Linear, String> {
    let slots = if pattern.is_dense() {
        values.iter().map(|&v| (v, 0)).collect()
    } else {
        let mask = crate::workload::prune::prune(values, out, k, pattern, None);
        let packed = crate::workload::prune::pack(values, std::slice::from_ref(&mask));
        crate::workload::prune::unpack_slots(&packed, out, k, pattern, 1, 0, pattern.n as usize)?
    };
    Ok(Linear {
        out,
        k,
        pattern,
        slots,
        bias,
    })
}

/// The decoder shape of `w` (an error for an encoder).
pub fn decoder_of(w: &Workload) -> Result<&Decoder, String> {
    w.model.decoder.as_ref().ok_or_else(|| {
        format!(
            "`{}` is not a Llama-family decoder (no RMSNorm, rotary or lm_head weights)",
            w.model.name
        )
    })
}

impl LlamaLayer {
    /// Checks every part against the shapes of `w` (`what` names the layer).
    fn check(&self, w: &Workload, what: &str) -> Result<(), String> {
        let dec = decoder_of(w)?;
        let (d, f) = (w.model.hidden as usize, w.model.ffn as usize);
        let (h, hkv, dh) = (
            w.model.heads as usize,
            dec.kv_heads as usize,
            dec.head_dim as usize,
        );
        let want = [
            ("qkv", &self.qkv, (h + 2 * hkv) * dh, d),
            ("o_proj", &self.o_proj, d, h * dh),
            ("gate", &self.gate, f, d),
            ("up", &self.up, f, d),
            ("down", &self.down, d, f),
        ];
        for (name, lin, out, k) in want {
            if (lin.out, lin.k) != (out, k) {
                return Err(format!(
                    "{what} {name}: a {} x {} weight, the model needs {out} x {k}",
                    lin.out, lin.k
                ));
            }
            lin.check(&format!("{what} {name}"))?;
        }
        for (name, v) in [("attn_norm", &self.attn_norm), ("ffn_norm", &self.ffn_norm)] {
            if v.len() != d {
                return Err(format!(
                    "{what} {name}: {} values, the hidden size is {d}",
                    v.len()
                ));
            }
        }
        Ok(())
    }
}

impl LlamaWeights {
    /// The lm_head: the untied one, else the embedding table.
    pub fn head(&self) -> &Linear {
        self.lm_head.as_ref().unwrap_or(&self.embedding)
    }

    /// Token `t`'s embedding (`d` values).
    pub fn embed(&self, t: u32) -> impl Iterator<Item = f32> + '_ {
        let d = self.embedding.k;
        let t = t as usize;
        self.embedding.slots[t * d..(t + 1) * d].iter().map(|s| s.0)
    }

    /// Vocabulary size.
    pub fn vocab(&self) -> usize {
        self.embedding.out
    }

    /// Checks the weights against the shapes of `w` (its first `w.layers` layers).
    pub fn check(&self, w: &Workload) -> Result<(), String> {
        let dec = decoder_of(w)?;
        let d = w.model.hidden as usize;
        if self.layers.len() < w.layers as usize {
            return Err(format!(
                "the weights have {} layers, the run {}",
                self.layers.len(),
                w.layers
            ));
        }
        for (i, l) in self.layers.iter().take(w.layers as usize).enumerate() {
            l.check(w, &format!("layer {i}"))?;
        }
        let v = dec.vocab as usize;
        for (name, lin) in [
            ("embedding", Some(&self.embedding)),
            ("lm_head", self.lm_head.as_ref()),
        ] {
            if let Some(lin) = lin {
                if (lin.out, lin.k) != (v, d) || !lin.pattern.is_dense() {
                    return Err(format!(
                        "{name}: a {} x {} ({}) table, the model needs a dense {v} x {d}",
                        lin.out, lin.k, lin.pattern
                    ));
                }
                lin.check(name)?;
            }
        }
        if self.final_norm.len() != d {
            return Err(format!(
                "final norm: {} values, the hidden size is {d}",
                self.final_norm.len()
            ));
        }
        Ok(())
    }

    /// Seeded weights for the workload's shapes (its `w.layers` layers) and per-layer
    /// patterns.
    pub fn seeded(w: &Workload, seed: u64) -> Result<LlamaWeights, String> {
        let dec = decoder_of(w)?;
        let (d, f) = (w.model.hidden as usize, w.model.ffn as usize);
        let (h, hkv, dh) = (
            w.model.heads as usize,
            dec.kv_heads as usize,
            dec.head_dim as usize,
        );
        let width = (h + 2 * hkv) * dh;
        let gamma = |n: usize, s: u64| -> Vec<f32> {
            uniform(n, 0.1, s).into_iter().map(|x| 1.0 + x).collect()
        };
        let no_bias = |mut l: Linear| {
            l.bias = vec![0.0; l.out];
            l
        };
        let layers = (0..w.layers)
            .map(|l| {
                let p = w.patterns_of(l);
                let s = seed.wrapping_mul(1_000_003).wrapping_add(l * 16);
                let mut qkv = seeded_linear(width, d, p.qkv, s + 1)?;
                if !dec.qkv_bias {
                    qkv = no_bias(qkv);
                }
                Ok(LlamaLayer {
                    attn_norm: gamma(d, s + 5),
                    qkv,
                    o_proj: no_bias(seeded_linear(d, h * dh, p.proj, s + 2)?),
                    ffn_norm: gamma(d, s + 6),
                    gate: no_bias(seeded_linear(f, d, p.ffn1, s + 3)?),
                    up: no_bias(seeded_linear(f, d, p.ffn1, s + 7)?),
                    down: no_bias(seeded_linear(d, f, p.ffn2, s + 4)?),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let v = dec.vocab as usize;
        let table: Vec<f32> = uniform(v * d, 1.0, seed ^ 0xE3BE_DD00)
            .into_iter()
            .map(to_f16)
            .collect();
        let lm_head = if dec.tied_embeddings {
            None
        } else {
            let t: Vec<f32> = uniform(v * d, (3.0 / d as f32).sqrt(), seed ^ 0x1A4E_AD00)
                .into_iter()
                .map(to_f16)
                .collect();
            Some(linear_from_dense(&t, v, d, Pattern::DENSE, vec![0.0; v])?)
        };
        Ok(LlamaWeights {
            layers,
            final_norm: gamma(d, seed ^ 0xF1A1),
            embedding: linear_from_dense(&table, v, d, Pattern::DENSE, vec![0.0; v])?,
            lm_head,
            eps: dec.norm_eps,
            rope_theta: rope_theta(dec)?,
        })
    }
}

/// The rotary base of decoder shape `dec` (a GPT-2 shape, with learned positions, has none).
fn rope_theta(dec: &Decoder) -> Result<f64, String> {
    dec.rope_theta().ok_or_else(|| {
        "functional decoder runs need rotary positions (a Llama-family model)".to_string()
    })
}

impl LlamaWeights {
    /// The weights of a Llama-family GGUF for workload `w` (its first `w.layers` layers,
    /// pruned to its patterns; the file's hyperparameters must be the workload's shape).
    /// Errors name the file and the tensor.
    pub fn from_gguf(path: &Path, w: &Workload) -> Result<LlamaWeights, String> {
        let dec = decoder_of(w)?;
        let (d, f) = (w.model.hidden as usize, w.model.ffn as usize);
        let (h, hkv, dh) = (
            w.model.heads as usize,
            dec.kv_heads as usize,
            dec.head_dim as usize,
        );
        let mut layers = Vec::new();
        let tables = read_gguf_dense(path, w, &mut |l, b| {
            let p = w.patterns_of(l as u64);
            let zero = |n: usize| vec![0.0f32; n];
            layers.push(LlamaLayer {
                attn_norm: b.attn_norm,
                qkv: linear_from_dense(&b.qkv, (h + 2 * hkv) * dh, d, p.qkv, b.qkv_bias)?,
                o_proj: linear_from_dense(&b.o_proj, d, h * dh, p.proj, zero(d))?,
                ffn_norm: b.ffn_norm,
                gate: linear_from_dense(&b.gate, f, d, p.ffn1, zero(f))?,
                up: linear_from_dense(&b.up, f, d, p.ffn1, zero(f))?,
                down: linear_from_dense(&b.down, d, f, p.ffn2, zero(d))?,
            });
            Ok(())
        })?;
        let v = tables.vocab;
        let table = |t: Vec<f32>| -> Result<Linear, String> {
            linear_from_dense(&t, v, d, Pattern::DENSE, vec![0.0; v])
        };
        let weights = LlamaWeights {
            layers,
            final_norm: tables.final_norm,
            embedding: table(tables.embedding)?,
            lm_head: tables.lm_head.map(table).transpose()?,
            eps: tables.eps,
            rope_theta: tables.rope_theta,
        };
        weights
            .check(w)
            .map_err(|m| format!("`{}`: {m}", path.display()))?;
        Ok(weights)
    }
}

/// One block of a Llama-family GGUF, dense f32 row-major `[out, in]`, with Q, K and V
/// concatenated (`[(h + 2 hkv) dh, d]`) and Q and K rows in Hugging Face order.
pub struct DenseBlock {
    /// RMSNorm scale before attention (`d`).
    pub attn_norm: Vec<f32>,
    /// Q, K and V.
    pub qkv: Vec<f32>,
    /// Their bias (zero without one).
    pub qkv_bias: Vec<f32>,
    /// The attention output projection `[d, h dh]`.
    pub o_proj: Vec<f32>,
    /// RMSNorm scale before the FFN (`d`).
    pub ffn_norm: Vec<f32>,
    /// SwiGLU gate `[f, d]`.
    pub gate: Vec<f32>,
    /// SwiGLU up `[f, d]`.
    pub up: Vec<f32>,
    /// FFN down `[d, f]`.
    pub down: Vec<f32>,
}

/// The rest of a Llama-family GGUF, dense f32.
pub struct DenseTables {
    /// The final RMSNorm scale (`d`).
    pub final_norm: Vec<f32>,
    /// The embedding `[V, d]`.
    pub embedding: Vec<f32>,
    /// An untied lm_head `[V, d]`.
    pub lm_head: Option<Vec<f32>>,
    /// Vocabulary size.
    pub vocab: usize,
    /// RMSNorm epsilon.
    pub eps: f64,
    /// Rotary base.
    pub rope_theta: f64,
}

/// Reads the Llama-family GGUF at `path` for workload `w` (the file's hyperparameters must be
/// its shape), one block at a time: `block(i, block i)` for its first `w.layers` blocks, then
/// the tables. Errors name the file and the tensor.
pub fn read_gguf_dense(
    path: &Path,
    w: &Workload,
    block: &mut dyn FnMut(usize, DenseBlock) -> Result<(), String>,
) -> Result<DenseTables, String> {
    {
        let named = |m: String| format!("`{}`: {m}", path.display());
        let g = crate::gguf::Gguf::open(path).map_err(|e| e.to_string())?;
        let hp = g.llama_hyper().map_err(|e| e.to_string())?;
        let dec = decoder_of(w)?;
        let (d, f) = (w.model.hidden as usize, w.model.ffn as usize);
        let (h, hkv, dh) = (
            w.model.heads as usize,
            dec.kv_heads as usize,
            dec.head_dim as usize,
        );
        let have = (
            hp.hidden,
            hp.heads,
            hp.kv_heads,
            hp.ffn,
            hp.head_dim,
            hp.vocab,
        );
        let want = (
            w.model.hidden,
            w.model.heads,
            dec.kv_heads,
            w.model.ffn,
            dec.head_dim,
            dec.vocab,
        );
        if have != want || hp.layers < w.layers {
            return Err(named(format!(
                "the file's (d, h, hkv, f, dh, V) = {have:?} with {} layers, the workload's {want:?} with {}",
                hp.layers, w.layers
            )));
        }
        // The data plane takes eps and theta from the workload's decoder shape.
        let theta = rope_theta(dec).map_err(named)?;
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * b.abs();
        if !close(hp.rms_eps, dec.norm_eps) || !close(hp.rope_freq_base, theta) {
            return Err(named(format!(
                "the file's RMSNorm eps {} and rotary base {} are not the workload's {} and {}",
                hp.rms_eps, hp.rope_freq_base, dec.norm_eps, theta
            )));
        }
        if hp.rope_dims != hp.head_dim {
            return Err(named(format!(
                "rotary over {} of {} head dimensions (partial rotary) is not modelled",
                hp.rope_dims, hp.head_dim
            )));
        }
        // llama.cpp permutes Q and K rows of `llama` GGUFs only (not qwen2's).
        let permuted = hp.architecture == "llama";
        let tensor = |name: &str, shape: &[usize]| -> Result<Vec<f32>, String> {
            let (got, v) = g.tensor_f32(name).map_err(|e| e.to_string())?;
            if got != shape {
                return Err(named(format!(
                    "`{name}` is {got:?}, the model needs {shape:?}"
                )));
            }
            Ok(v)
        };
        let bias = |name: &str, n: usize| -> Result<Vec<f32>, String> {
            if hp.attn_bias {
                tensor(name, &[n])
            } else {
                Ok(vec![0.0; n])
            }
        };
        for l in 0..w.layers as usize {
            let t = |part: &str| format!("blk.{l}.{part}");
            let mut q = tensor(&t("attn_q.weight"), &[h * dh, d])?;
            let mut k = tensor(&t("attn_k.weight"), &[hkv * dh, d])?;
            if permuted {
                q = unpermute_rope_rows(&q, h, d);
                k = unpermute_rope_rows(&k, hkv, d);
            }
            let v = tensor(&t("attn_v.weight"), &[hkv * dh, d])?;
            let mut qkv_b = bias(&t("attn_q.bias"), h * dh)?;
            let mut kb = bias(&t("attn_k.bias"), hkv * dh)?;
            if permuted {
                qkv_b = unpermute_rope_rows(&qkv_b, h, 1);
                kb = unpermute_rope_rows(&kb, hkv, 1);
            }
            qkv_b.extend(kb);
            qkv_b.extend(bias(&t("attn_v.bias"), hkv * dh)?);
            q.extend(k);
            q.extend(v);
            block(
                l,
                DenseBlock {
                    attn_norm: tensor(&t("attn_norm.weight"), &[d])?,
                    qkv: q,
                    qkv_bias: qkv_b,
                    o_proj: tensor(&t("attn_output.weight"), &[d, h * dh])?,
                    ffn_norm: tensor(&t("ffn_norm.weight"), &[d])?,
                    gate: tensor(&t("ffn_gate.weight"), &[f, d])?,
                    up: tensor(&t("ffn_up.weight"), &[f, d])?,
                    down: tensor(&t("ffn_down.weight"), &[d, f])?,
                },
            )?;
        }
        let v = hp.vocab as usize;
        Ok(DenseTables {
            final_norm: tensor("output_norm.weight", &[d])?,
            embedding: tensor("token_embd.weight", &[v, d])?,
            lm_head: if hp.untied_lm_head {
                Some(tensor("output.weight", &[v, d])?)
            } else {
                None
            },
            vocab: v,
            eps: hp.rms_eps,
            rope_theta: hp.rope_freq_base,
        })
    }
}

impl LlamaWeights {
    /// The weights of a decoder `.stanm` file (family member `member`, default the
    /// densest) for workload `w` (its first `w.layers` layers; the file's shapes must be the
    /// workload's, as a workload from the same file's are). Errors name the file and tensor.
    pub fn from_stanm(
        path: &Path,
        member: Option<Pattern>,
        w: &Workload,
    ) -> Result<LlamaWeights, String> {
        let named = |m: String| format!("`{}`: {m}", path.display());
        let dec = decoder_of(w)?;
        let (d, layers) = (w.model.hidden as usize, w.layers);
        let (h, hkv, dh) = (
            w.model.heads as usize,
            dec.kv_heads as usize,
            dec.head_dim as usize,
        );
        // Only the run's blocks are decoded.
        let stored = read_tensors_where(path, member, |n| {
            decoder_block(n).is_none_or(|(l, _)| l < layers)
        })?;
        let permuted = stored.qk_rows_permuted;
        let mut by_name: HashMap<String, (Vec<usize>, StoredTensor)> = stored
            .tensors
            .into_iter()
            .map(|(n, shape, t)| (n, (shape, t)))
            .collect();
        let mut take = |name: &str| {
            by_name.remove(name).ok_or_else(|| {
                named(format!(
                    "tensor `{name}` not found (a functional run needs every block's weights \
                     and norms, the final norm and the embedding)"
                ))
            })
        };
        // A pruned weight `[out, in]` as a linear (the rows of `heads` heads un-permuted).
        let pruned = |name: &str, t: (Vec<usize>, StoredTensor), heads: Option<usize>| {
            let (shape, t) = t;
            let (StoredTensor::Pruned { pattern, slots, .. }, &[out, k]) = (t, shape.as_slice())
            else {
                return Err(named(format!("`{name}` is not a pruned 2-D weight")));
            };
            let slots = match heads {
                Some(hd) if permuted => unpermute_rope_rows(&slots, hd, slots.len() / out),
                _ => slots,
            };
            Ok(Linear {
                out,
                k,
                pattern,
                slots,
                bias: vec![0.0; out],
            })
        };
        let dense = |name: &str, t: (Vec<usize>, StoredTensor), n: usize| match t {
            (_, StoredTensor::Dense(v)) if v.len() == n => Ok(v),
            _ => Err(named(format!(
                "`{name}` is not a floating-point tensor of {n} values"
            ))),
        };
        let mut out = Vec::with_capacity(layers as usize);
        for l in 0..layers {
            let t = |part: &str| format!("blk.{l}.{part}");
            let mut qkv = pruned(&t("attn_q.weight"), take(&t("attn_q.weight"))?, Some(h))?;
            let k = pruned(&t("attn_k.weight"), take(&t("attn_k.weight"))?, Some(hkv))?;
            let v = pruned(&t("attn_v.weight"), take(&t("attn_v.weight"))?, None)?;
            if (k.k, k.pattern) != (qkv.k, qkv.pattern) || (v.k, v.pattern) != (qkv.k, qkv.pattern)
            {
                return Err(named(format!(
                    "block {l}: Q, K and V differ in inputs or pattern (STA runs them as one)"
                )));
            }
            if dec.qkv_bias {
                let mut b = Vec::with_capacity(qkv.out + k.out + v.out);
                for (part, n, heads) in [("q", h, Some(h)), ("k", hkv, Some(hkv)), ("v", hkv, None)]
                {
                    let name = t(&format!("attn_{part}.bias"));
                    let x = dense(&name, take(&name)?, n * dh)?;
                    b.extend(match heads {
                        Some(hd) if permuted => unpermute_rope_rows(&x, hd, 1),
                        _ => x,
                    });
                }
                qkv.bias = b;
            } else {
                qkv.bias = vec![0.0; qkv.out + k.out + v.out];
            }
            qkv.out += k.out + v.out;
            qkv.slots.extend(k.slots);
            qkv.slots.extend(v.slots);
            let mut linear = |part: &str| pruned(&t(part), take(&t(part))?, None);
            let (o_proj, gate, up, down) = (
                linear("attn_output.weight")?,
                linear("ffn_gate.weight")?,
                linear("ffn_up.weight")?,
                linear("ffn_down.weight")?,
            );
            let mut norm = |part: &str| dense(&t(part), take(&t(part))?, d);
            out.push(LlamaLayer {
                attn_norm: norm("attn_norm.weight")?,
                ffn_norm: norm("ffn_norm.weight")?,
                qkv,
                o_proj,
                gate,
                up,
                down,
            });
        }
        let v = dec.vocab as usize;
        let mut table = |name: &str| -> Result<Linear, String> {
            let values = dense(name, take(name)?, v * d)?;
            linear_from_dense(&values, v, d, Pattern::DENSE, vec![0.0; v])
        };
        let embedding = table("token_embd.weight")?;
        let lm_head = if dec.tied_embeddings {
            None
        } else {
            Some(table("output.weight")?)
        };
        let weights = LlamaWeights {
            layers: out,
            final_norm: dense("output_norm.weight", take("output_norm.weight")?, d)?,
            embedding,
            lm_head,
            eps: dec.norm_eps,
            rope_theta: rope_theta(dec).map_err(named)?,
        };
        weights.check(w).map_err(named)?;
        Ok(weights)
    }
}

/// Undoes llama.cpp's `permute(w, n_head, n_head_kv)` of Q or K rows (`rows x k`, row-major;
/// any element type, e.g. a pruned weight's slots, `k` of them a row): the converter wrote,
/// within each head of `dh` rows, row `2i + j` from HF row `j dh/2 + i`
/// (`reshape(heads, 2, dh/2, k).swapaxes(1, 2)`); this puts every row back.
pub fn unpermute_rope_rows<T: Copy + Default>(w: &[T], heads: usize, k: usize) -> Vec<T> {
    let rows = w.len() / k;
    let dh = rows / heads;
    let half = dh / 2;
    let mut out = vec![T::default(); w.len()];
    for hd in 0..heads {
        for i in 0..half {
            for j in 0..2 {
                let gguf_row = hd * dh + 2 * i + j;
                let hf_row = hd * dh + j * half + i;
                out[hf_row * k..(hf_row + 1) * k]
                    .copy_from_slice(&w[gguf_row * k..(gguf_row + 1) * k]);
            }
        }
    }
    out
}

/// llama.cpp's `permute(w, n_head, n_head_kv)` of Q or K rows (`rows x k`, row-major; any
/// element type, `k` of them a row): the inverse of [`unpermute_rope_rows`], from Hugging
/// Face's row order to the GGUF's.
pub fn permute_rope_rows<T: Clone + Default>(w: &[T], heads: usize, k: usize) -> Vec<T> {
    let rows = w.len() / k;
    let dh = rows / heads;
    let half = dh / 2;
    let mut out = vec![T::default(); w.len()];
    for hd in 0..heads {
        for i in 0..half {
            for j in 0..2 {
                let gguf_row = hd * dh + 2 * i + j;
                let hf_row = hd * dh + j * half + i;
                out[gguf_row * k..(gguf_row + 1) * k]
                    .clone_from_slice(&w[hf_row * k..(hf_row + 1) * k]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permuting_inverts_unpermuting() {
        let w: Vec<u32> = (0..3 * 16 * 2).collect();
        assert_eq!(unpermute_rope_rows(&permute_rope_rows(&w, 3, 2), 3, 2), w);
        assert_ne!(permute_rope_rows(&w, 3, 2), w);
    }

    #[test]
    fn unpermuting_inverts_the_converters_permutation() {
        // llama.cpp: w.reshape(heads, 2, dh/2, k).swapaxes(1, 2).reshape(w.shape), done by
        // hand for 2 heads of dh = 4, k = 1: HF rows [a0 a1 b0 b1] per head (a = first half).
        let hf: Vec<f32> = (0..8).map(|x| x as f32).collect();
        // Converted head 0: reshape (2, 2) = [[0, 1], [2, 3]], swap -> [[0, 2], [1, 3]].
        let gguf = [0.0, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0];
        assert_eq!(unpermute_rope_rows(&gguf, 2, 1), hf);
    }
}
