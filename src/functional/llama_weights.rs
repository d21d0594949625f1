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
//!   (pairs `(i, i + dh/2)`) for every source.

use super::to_f16;
use super::weights::{Linear, seeded_linear, uniform};
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
    /// RMSNorm epsilon.
    pub eps: f64,
    /// Rotary base.
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
            rope_theta: dec.rope_theta,
        })
    }
}

/// Undoes llama.cpp's `permute(w, n_head, n_head_kv)` of Q or K rows (`rows x k`, row-major):
/// the converter wrote, within each head of `dh` rows, row `2i + j` from HF row `j dh/2 + i`
/// (`reshape(heads, 2, dh/2, k).swapaxes(1, 2)`); this puts every row back.
pub fn unpermute_rope_rows(w: &[f32], heads: usize, k: usize) -> Vec<f32> {
    let rows = w.len() / k;
    let dh = rows / heads;
    let half = dh / 2;
    let mut out = vec![0.0f32; w.len()];
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

#[cfg(test)]
mod tests {
    use super::*;

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
