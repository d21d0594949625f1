//! Workloads: Transformer model presets with N:M sparse linear layers, their sizes and
//! patterns. Each architecture is lowered into the typed operator graph of
//! [`crate::model`] ([`Workload::ops`]), which everything downstream consumes.

pub mod calibrated;
pub mod checkpoint;
pub mod hf;
pub mod nm;
pub mod prune;
pub mod stanm;

use serde::Serialize;

use crate::model::decoder::Family;
pub use crate::model::{Op, OpKind};
pub use nm::Pattern;

/// Shape of a Transformer model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelShape {
    /// Preset name.
    pub name: String,
    /// Hidden size `d`.
    pub hidden: u64,
    /// Attention heads `h`.
    pub heads: u64,
    /// FFN size `f`.
    pub ffn: u64,
    /// Layers.
    pub layers: u64,
    /// Sequence length used when none is given.
    pub default_seq: u64,
    /// Causal (decoder) attention.
    pub causal: bool,
    /// A decoder LLM's extra shape: a Llama-family one (RMSNorm, rotary, grouped-query
    /// attention, SwiGLU), or GPT-2's for its decode steps and generation
    /// ([`crate::model::gpt2::as_decoder`]); `None` for the BERT-style encoders and a GPT-2
    /// prefill (lowered post-LN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decoder: Option<Decoder>,
}

/// How a decoder tells its model where each token sits.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Positions {
    /// Rotary embeddings of Q and K with base `theta` (`rope_theta`): the Llama family.
    Rotary {
        /// The rotary base.
        theta: f64,
    },
    /// A learned table of `max_context` positions added to the embedding: GPT-2.
    Learned,
}

/// The shape of a decoder beyond [`ModelShape`]'s (Hugging Face names in brackets): a
/// Llama-family one (rotary positions), or GPT-2's (learned positions; see
/// [`crate::model::decoder::Family`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decoder {
    /// Key/value heads `hkv` (`num_key_value_heads`; a divisor of the heads).
    pub kv_heads: u64,
    /// Head size `dh` (`head_dim`, else `hidden / heads`).
    pub head_dim: u64,
    /// Vocabulary `V` (`vocab_size`): the lm_head's output columns.
    pub vocab: u64,
    /// The lm_head is the embedding table (`tie_word_embeddings`).
    pub tied_embeddings: bool,
    /// Q, K and V projections have a bias (Qwen2).
    pub qkv_bias: bool,
    /// Rotary (with its base `rope_theta`) or learned positions.
    pub positions: Positions,
    /// RMSNorm epsilon (`rms_norm_eps`).
    pub norm_eps: f64,
    /// Longest context the model was trained for (`max_position_embeddings`).
    pub max_context: u64,
}

impl Decoder {
    /// The rotary base, for rotary positions.
    pub fn rope_theta(&self) -> Option<f64> {
        match self.positions {
            Positions::Rotary { theta } => Some(theta),
            Positions::Learned => None,
        }
    }
}

/// A Llama-family preset: `(name, d, h, hkv, f, layers, vocab, tied, qkv bias, theta, max
/// context)`, each from the model's Hugging Face `config.json` (named in
/// [`DECODER_SOURCES`]); `dh = d / h` for all of them and RMSNorm eps 1e-5 (Qwen2.5 1e-6).
type DecoderPreset = (
    &'static str,
    u64,
    u64,
    u64,
    u64,
    u64,
    u64,
    bool,
    bool,
    f64,
    u64,
);
const DECODER_PRESETS: &[DecoderPreset] = &[
    (
        "smollm2-135m",
        576,
        9,
        3,
        1536,
        30,
        49152,
        true,
        false,
        100000.0,
        8192,
    ),
    (
        "qwen2.5-0.5b",
        896,
        14,
        2,
        4864,
        24,
        151936,
        true,
        true,
        1000000.0,
        32768,
    ),
    (
        "llama-3.2-1b",
        2048,
        32,
        8,
        8192,
        16,
        128256,
        true,
        false,
        500000.0,
        131072,
    ),
    (
        "llama-3.1-8b",
        4096,
        32,
        8,
        14336,
        32,
        128256,
        false,
        false,
        500000.0,
        131072,
    ),
];

/// Where each decoder preset's shape comes from (the `config.json` of these Hugging Face
/// repositories; SmolLM2's also matches the GGUF that `scripts/fetch-smollm2.sh` fetches).
pub const DECODER_SOURCES: &[(&str, &str)] = &[
    ("smollm2-135m", "HuggingFaceTB/SmolLM2-135M-Instruct"),
    ("qwen2.5-0.5b", "Qwen/Qwen2.5-0.5B-Instruct"),
    ("llama-3.2-1b", "meta-llama/Llama-3.2-1B"),
    ("llama-3.1-8b", "meta-llama/Llama-3.1-8B"),
];

/// The presets: `(name, d, h, f, layers, default s, causal)`.
const PRESETS: &[(&str, u64, u64, u64, u64, u64, bool)] = &[
    ("bert-base", 768, 12, 3072, 12, 128, false),
    ("bert-large", 1024, 16, 4096, 24, 128, false),
    ("deit-small", 384, 6, 1536, 12, 197, false),
    ("minilm-l6", 384, 12, 1536, 6, 128, false),
    ("gpt2-small", 768, 12, 3072, 12, 128, true),
];

/// Names of the model presets.
pub fn preset_names() -> Vec<&'static str> {
    PRESETS
        .iter()
        .map(|p| p.0)
        .chain(DECODER_PRESETS.iter().map(|p| p.0))
        .collect()
}

/// The preset called `name`.
pub fn preset(name: &str) -> Option<ModelShape> {
    let encoder = PRESETS.iter().find(|p| p.0 == name).map(
        |&(name, hidden, heads, ffn, layers, default_seq, causal)| ModelShape {
            name: name.into(),
            hidden,
            heads,
            ffn,
            layers,
            default_seq,
            causal,
            decoder: None,
        },
    );
    encoder.or_else(|| {
        DECODER_PRESETS.iter().find(|p| p.0 == name).map(
            |&(name, d, h, kv_heads, f, layers, vocab, tied, bias, theta, max_context)| {
                ModelShape {
                    name: name.into(),
                    hidden: d,
                    heads: h,
                    ffn: f,
                    layers,
                    default_seq: 128,
                    causal: true,
                    decoder: Some(Decoder {
                        kv_heads,
                        head_dim: d / h,
                        vocab,
                        tied_embeddings: tied,
                        qkv_bias: bias,
                        positions: Positions::Rotary { theta },
                        norm_eps: if name.starts_with("qwen") { 1e-6 } else { 1e-5 },
                        max_context,
                    }),
                }
            },
        )
    })
}

/// What a run simulates of a decoder: the prompt (prefill), or one generated token per
/// sequence (a decode step).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "phase")]
pub enum Phase {
    /// The whole sequence at once (`seq` tokens a sequence; encoders only do this).
    #[default]
    Prefill,
    /// One new token a sequence, attending to `context` cached tokens and itself.
    Decode {
        /// Tokens already in the KV cache.
        context: u64,
    },
}

/// The N:M pattern of each class of linear layer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Patterns {
    /// Q, K, V projections.
    pub qkv: Pattern,
    /// Attention output projection.
    pub proj: Pattern,
    /// FFN up.
    pub ffn1: Pattern,
    /// FFN down.
    pub ffn2: Pattern,
}

impl Patterns {
    /// One pattern for every class.
    pub fn uniform(p: Pattern) -> Self {
        Patterns {
            qkv: p,
            proj: p,
            ffn1: p,
            ffn2: p,
        }
    }

    /// Parses `2:4`, `dense`, or `qkv=2:8,proj=2:8,ffn1=1:8,ffn2=1:8` (a per-class list must
    /// name all four classes).
    pub fn parse(text: &str) -> Result<Patterns, String> {
        if !text.contains('=') {
            return Pattern::parse(text).map(Patterns::uniform);
        }
        let mut slots: [Option<Pattern>; 4] = [None; 4];
        const NAMES: [&str; 4] = ["qkv", "proj", "ffn1", "ffn2"];
        for item in text.split(',') {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| format!("`{item}` is not CLASS=PATTERN"))?;
            let i = NAMES.iter().position(|n| *n == k.trim()).ok_or_else(|| {
                format!(
                    "unknown layer class `{}`; classes are qkv, proj, ffn1, ffn2",
                    k.trim()
                )
            })?;
            if slots[i].is_some() {
                return Err(format!(
                    "layer class `{}` is named twice; name each of qkv, proj, ffn1, ffn2 once",
                    NAMES[i]
                ));
            }
            slots[i] = Some(Pattern::parse(v)?);
        }
        match slots {
            [Some(qkv), Some(proj), Some(ffn1), Some(ffn2)] => Ok(Patterns {
                qkv,
                proj,
                ffn1,
                ffn2,
            }),
            _ => {
                let missing: Vec<&str> = NAMES
                    .iter()
                    .zip(slots)
                    .filter(|(_, s)| s.is_none())
                    .map(|(n, _)| *n)
                    .collect();
                Err(format!(
                    "the per-class list does not name {}",
                    missing.join(", ")
                ))
            }
        }
    }

    /// Every distinct sparse pattern.
    pub fn all(&self) -> [Pattern; 4] {
        [self.qkv, self.proj, self.ffn1, self.ffn2]
    }

    /// The patterns of the classes in [`Patterns::all`]'s order (qkv, proj, ffn1, ffn2).
    pub fn from_classes([qkv, proj, ffn1, ffn2]: [Pattern; 4]) -> Patterns {
        Patterns {
            qkv,
            proj,
            ffn1,
            ffn2,
        }
    }

    /// The per-class list `qkv=..,proj=..,ffn1=..,ffn2=..` (what [`Patterns::parse`] reads),
    /// even when every class has the same pattern.
    pub fn list(&self) -> String {
        format!(
            "qkv={},proj={},ffn1={},ffn2={}",
            self.qkv, self.proj, self.ffn1, self.ffn2
        )
    }
}

/// The patterns as a user writes them: one pattern when every class has it, else the list.
impl std::fmt::Display for Patterns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.all().iter().all(|p| *p == self.qkv) {
            write!(f, "{}", self.qkv)
        } else {
            f.write_str(&self.list())
        }
    }
}

/// A complete workload: a model, its size, and its patterns.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Workload {
    /// Model shape.
    pub model: ModelShape,
    /// Sequence length.
    pub seq: u64,
    /// Batch.
    pub batch: u64,
    /// Layers simulated (at most the model's).
    pub layers: u64,
    /// Patterns of the linear layers.
    pub patterns: Patterns,
    /// Per-layer patterns (from a pruned checkpoint); when given, layer `i` uses entry `i`
    /// instead of `patterns`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_layer: Vec<Patterns>,
    /// Bits per stored value (16 or 8).
    pub value_bits: u64,
    /// Prefill or a decode step.
    #[serde(skip_serializing_if = "is_prefill")]
    pub phase: Phase,
}

fn is_prefill(p: &Phase) -> bool {
    *p == Phase::Prefill
}

/// The value widths the datapath has, bits (16: the default fixed point; 8).
pub const VALUE_BITS: [u64; 2] = [16, 8];

/// Longest sequence a run may simulate, tokens (2^20).
pub const MAX_SEQ: u64 = 1 << 20;
/// Largest batch a run may simulate (2^16).
pub const MAX_BATCH: u64 = 1 << 16;
/// Largest hidden, FFN, head or vocabulary size a model may have (2^24).
pub const MAX_DIM: u64 = 1 << 24;
/// Most dense-equivalent MACs one run may count (2^60): every count of the run then fits
/// a `u64` (and simulating it would take centuries anyway).
pub const MAX_DENSE_MACS: u128 = 1 << 60;

/// `a * b * ...` without overflow (`u128::MAX` if it would).
fn product(factors: &[u64]) -> u128 {
    factors
        .iter()
        .fold(1u128, |acc, &x| acc.saturating_mul(u128::from(x)))
}

impl Workload {
    /// Checks sizes: every dimension at least 1, `seq` and `batch` within [`MAX_SEQ`] and
    /// [`MAX_BATCH`], heads dividing the hidden size, and at most [`MAX_DENSE_MACS`] in all
    /// (so that [`Workload::ops`] and the planner never overflow).
    pub fn validate(&self) -> Result<(), String> {
        if self.seq == 0 {
            return Err("sequence length must be at least 1".into());
        }
        if self.seq > MAX_SEQ {
            return Err(format!(
                "sequence length {} is above the limit of {MAX_SEQ} tokens",
                self.seq
            ));
        }
        if self.batch == 0 {
            return Err("batch must be at least 1".into());
        }
        if self.batch > MAX_BATCH {
            return Err(format!(
                "batch {} is above the limit of {MAX_BATCH}",
                self.batch
            ));
        }
        if self.layers == 0 || self.layers > self.model.layers {
            return Err(format!(
                "layers must be in 1..={} for {}",
                self.model.layers, self.model.name
            ));
        }
        let m = &self.model;
        if m.hidden == 0 || m.heads == 0 || m.ffn == 0 {
            return Err(format!(
                "model `{}` has a zero size (hidden {}, heads {}, ffn {})",
                m.name, m.hidden, m.heads, m.ffn
            ));
        }
        match &m.decoder {
            None if !m.hidden.is_multiple_of(m.heads) => {
                return Err("hidden size must be a multiple of the heads".into());
            }
            None => {}
            Some(dec) => {
                if dec.kv_heads == 0 || !m.heads.is_multiple_of(dec.kv_heads) {
                    return Err(format!(
                        "model `{}`: {} key/value heads do not divide {} query heads",
                        m.name, dec.kv_heads, m.heads
                    ));
                }
                if dec.head_dim == 0 || dec.vocab == 0 {
                    return Err(format!(
                        "model `{}` has a zero size (head_dim {}, vocab {})",
                        m.name, dec.head_dim, dec.vocab
                    ));
                }
                if [m.hidden, m.ffn, dec.head_dim, dec.vocab]
                    .iter()
                    .any(|&x| x > MAX_DIM)
                {
                    return Err(format!(
                        "model `{}` has a size above the limit of {MAX_DIM}",
                        m.name
                    ));
                }
            }
        }
        if let Phase::Decode { context } = self.phase {
            if m.decoder.is_none() {
                return Err(format!(
                    "model `{}` is not a decoder stasim can generate with (decode needs a Llama-family model: {}, or gpt2-small)",
                    m.name,
                    DECODER_PRESETS
                        .iter()
                        .map(|p| p.0)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if context >= MAX_SEQ {
                return Err(format!(
                    "context {context} is above the limit of {MAX_SEQ} tokens"
                ));
            }
        }
        // Learned positions (GPT-2): a sequence holds no more tokens than the table has rows.
        if let Some(dec) = &m.decoder
            && let Some(limit) = Family::of(dec).position_limit(dec)
        {
            let tokens = match self.phase {
                Phase::Prefill => self.seq,
                Phase::Decode { context } => context + 1,
            };
            if tokens > limit {
                return Err(format!(
                    "model `{}` has {limit} learned positions, but a sequence of this run holds {tokens} tokens (its prompt, or its cached tokens and the new one)",
                    m.name
                ));
            }
        }
        let macs = self.dense_macs_bound();
        if macs > MAX_DENSE_MACS {
            return Err(format!(
                "the run would count about {macs:.3e} MACs, above the limit of 2^60 (model `{}`, seq {}, batch {}, layers {})",
                m.name, self.seq, self.batch, self.layers
            ));
        }
        Ok(())
    }

    /// Dense-equivalent MACs of the whole run, computed without overflow (see
    /// [`Workload::ops`] for the terms; attention counted without the causal saving).
    pub fn dense_macs_bound(&self) -> u128 {
        let (s, b, l) = (self.seq, self.batch, self.layers);
        let (d, f) = (self.model.hidden, self.model.ffn);
        if let Some(dec) = &self.model.decoder {
            let (h, hkv, dh) = (self.model.heads, dec.kv_heads, dec.head_dim);
            // Rows of the linear layers and keys each query sees (at most).
            let (rows, keys) = match self.phase {
                Phase::Prefill => (product(&[s, b]), u128::from(s)),
                Phase::Decode { context } => (u128::from(b), u128::from(context) + 1),
            };
            let width = product(&[h + 2 * hkv, dh]);
            let per_row = product(&[d])
                .saturating_mul(width)
                .saturating_add(product(&[h, dh, d]))
                .saturating_add(product(&[Family::of(dec).ffn.matrices(), d, f]));
            let attention = product(&[2, h, dh]).saturating_mul(keys);
            let per_layer = rows
                .saturating_mul(per_row)
                .saturating_add(rows.saturating_mul(attention));
            return per_layer
                .saturating_mul(u128::from(l))
                .saturating_add(product(&[b, d, dec.vocab]));
        }
        let per_layer = product(&[s, d, 3, d, b])
            .saturating_add(product(&[2, s, s, d, b]))
            .saturating_add(product(&[s, d, d, b]))
            .saturating_add(product(&[2, s, d, f, b]));
        per_layer.saturating_mul(u128::from(l))
    }

    /// The patterns of layer `layer`.
    pub fn patterns_of(&self, layer: u64) -> Patterns {
        self.per_layer
            .get(layer as usize)
            .copied()
            .unwrap_or(self.patterns)
    }

    /// Head size `dh`.
    pub fn head_dim(&self) -> u64 {
        match &self.model.decoder {
            Some(dec) => dec.head_dim,
            None => self.model.hidden / self.model.heads,
        }
    }

    /// The model's lowering into the IR ([`crate::model`]): tensors and ops.
    pub fn graph(&self) -> crate::model::Graph {
        crate::model::lower(self)
    }

    /// The operation list, layer by layer (the graph's ops).
    pub fn ops(&self) -> Vec<Op> {
        self.graph().ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BERT-base, 12 layers, s = 128, batch 1, dense 16-bit weights.
    fn bert_base_dense() -> Workload {
        Workload {
            model: preset("bert-base").unwrap(),
            seq: 128,
            batch: 1,
            layers: 12,
            patterns: Patterns::uniform(Pattern::DENSE),
            per_layer: Vec::new(),
            value_bits: 16,
            phase: crate::workload::Phase::Prefill,
        }
    }

    #[test]
    fn bert_base_dense_is_about_11_gmac_at_s128() {
        let w = bert_base_dense();
        let macs: u64 = w.ops().iter().map(|o| o.dense_macs).sum();
        // 12 * (128*768*2304 + 2*12*128*128*64 + 128*768*768 + 2*128*768*3072) = 11.17 G
        assert_eq!(
            macs,
            12 * (128 * 768 * 2304
                + 2 * 12 * 128 * 128 * 64
                + 128 * 768 * 768
                + 2 * 128 * 768 * 3072)
        );
        assert!((macs as f64 / 1e9 - 11.2).abs() < 0.1);
    }

    #[test]
    fn per_class_patterns_parse() {
        let p = Patterns::parse("qkv=2:8,proj=2:8,ffn1=1:8,ffn2=1:8").unwrap();
        assert_eq!(p.ffn1, Pattern { n: 1, m: 8 });
        assert!(
            Patterns::parse("qkv=2:8")
                .unwrap_err()
                .contains("proj, ffn1, ffn2")
        );
        assert!(Patterns::parse("attn=2:8").is_err());
    }

    #[test]
    fn a_class_named_twice_is_an_error() {
        let e = Patterns::parse("qkv=2:8,qkv=1:8,proj=2:4,ffn1=2:4,ffn2=2:4").unwrap_err();
        assert!(e.contains("`qkv` is named twice"), "{e}");
        // The same list with each class once is fine.
        assert!(Patterns::parse("qkv=1:8,proj=2:4,ffn1=2:4,ffn2=2:4").is_ok());
    }

    #[test]
    fn sizes_beyond_the_limits_are_refused_without_overflow() {
        let base = bert_base_dense();
        assert_eq!(base.validate(), Ok(()));
        // The bound equals the exact dense count of a non-causal model.
        let exact: u64 = base.ops().iter().map(|o| o.dense_macs).sum();
        assert_eq!(base.dense_macs_bound(), u128::from(exact));
        for (seq, batch) in [(MAX_SEQ + 1, 1), (128, MAX_BATCH + 1), (u64::MAX, u64::MAX)] {
            let w = Workload {
                seq,
                batch,
                ..base.clone()
            };
            assert!(w.validate().is_err(), "seq {seq} batch {batch}");
        }
        // Both within their own limits, but together too much work.
        let w = Workload {
            seq: MAX_SEQ,
            batch: MAX_BATCH,
            ..base.clone()
        };
        assert!(
            w.validate()
                .unwrap_err()
                .contains("above the limit of 2^60")
        );
        let mut zero_heads = base.clone();
        zero_heads.model.heads = 0;
        assert!(zero_heads.validate().unwrap_err().contains("zero size"));
    }
}
