//! The GPT-2 decoder lowered into the IR.
//!
//! **Prefill** (`stasim run --model gpt2-small`, the model shape without a decoder shape):
//! the same ten ops a layer as the encoder, with causal attention (a query sees the keys at
//! or before it: score tiles above the diagonal and their MACs are skipped), and no lm_head.
//! Known simplification: GPT-2 normalises *before* attention and the FFN (pre-LN) and adds
//! the residual after; this lowering keeps the encoder's post-LN arrangement, which has the
//! same matmuls, the same vector work per element, and the same traffic (kept so that
//! GPT-2 prefill results stay comparable across versions).
//!
//! **Decode steps and generation** (`--context C`, `--generate G`): the model gets GPT-2's
//! decoder shape ([`as_decoder`]) and is lowered pre-LN by [`super::decoder`] with the
//! [`super::decoder::Family::GPT2`] layer: 12 ops a layer, per sequence and step
//!
//! | op | role | shape (decode step, batch `B`, context `C`) |
//! |---|---|---|
//! | `qkv` | linear (qkv), stores `qkv` (its K, V columns: the cache append) | `[B x 768] x [768 x 2304]` |
//! | `scores` | one instance a sequence and head, against the cache | `[1 x 64] x [64 x (C + 1)]`, 12 B instances |
//! | `softmax` | softmax | 12 B rows of `C + 1` |
//! | `pv` | P·V | `[1 x (C + 1)] x [(C + 1) x 64]`, 12 B instances |
//! | `proj` | linear (proj) | `[B x 768] x [768 x 768]` |
//! | `add1`, `ffn_norm` | residual add, LayerNorm (`ln_2`) | `B x 768` |
//! | `ffn1`, `gelu` | linear (ffn1, `c_fc`), GELU | `[B x 768] x [768 x 3072]` |
//! | `ffn2` | linear (ffn2, the MLP's `c_proj`) | `[B x 3072] x [3072 x 768]` |
//! | `add2`, `attn_norm` | residual add, LayerNorm (the next `ln_1`, or `ln_f`: `final_norm`) | `B x 768` |
//! | `lm_head` | the tied token embedding, dense, after the last layer | `[B x 768] x [768 x 50257]` |
//!
//! The KV cache has `2 x 12 x 64` values a token a layer (3072 bytes at 16 bits). A
//! generation's prefill is lowered the same way (pre-LN, causal, the lm_head for the last
//! token of each sequence), so its TTFT includes the first token's logits. Positions are
//! learned (a 1024-row table added to the token embedding, taken as done before the run
//! like the embedding lookup): a decode or generation run holds at most [`MAX_POSITIONS`]
//! tokens a sequence (prompt, cache and the new token). A GPT-2 `config.json` is taken with
//! GPT-2's vocabulary and positions (every released GPT-2 size has these).

use super::Graph;
use crate::workload::{Decoder, ModelShape, Positions, Workload};

/// GPT-2's vocabulary (`vocab_size`): the tied lm_head's output columns.
pub const VOCAB: u64 = 50257;
/// GPT-2's learned positions (`n_positions`).
pub const MAX_POSITIONS: u64 = 1024;
/// GPT-2's LayerNorm epsilon (`layer_norm_epsilon`).
const LN_EPS: f64 = 1e-5;

/// The ops of every simulated layer of a GPT-2 prefill `w` (post-LN, no lm_head).
pub fn lower(w: &Workload) -> Graph {
    super::post_ln_model(w, true)
}

/// GPT-2's decoder shape for a model of `heads` heads of hidden `hidden`: multi-head
/// attention (`kv_heads = heads`), learned positions (no rotary: the mark of
/// [`super::decoder::Family::GPT2`]), a tied lm_head, biased Q, K, V.
pub fn decoder(hidden: u64, heads: u64) -> Decoder {
    Decoder {
        kv_heads: heads,
        head_dim: hidden / heads.max(1),
        vocab: VOCAB,
        tied_embeddings: true,
        qkv_bias: true,
        positions: Positions::Learned,
        norm_eps: LN_EPS,
        max_context: MAX_POSITIONS,
    }
}

/// `model` with GPT-2's decoder shape if it is a GPT-2 (causal, without a decoder shape of
/// its own), for decode steps and generation; `None` for an encoder or a model that has one.
pub fn as_decoder(model: &ModelShape) -> Option<ModelShape> {
    (model.causal && model.decoder.is_none()).then(|| ModelShape {
        decoder: Some(decoder(model.hidden, model.heads)),
        ..model.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::decoder::Family;
    use crate::model::{Home, Role, VectorOp};
    use crate::workload::{Pattern, Patterns, Phase, preset};

    fn gpt2(phase: Phase, batch: u64, layers: u64) -> Workload {
        Workload {
            model: as_decoder(&preset("gpt2-small").unwrap()).unwrap(),
            seq: 16,
            batch,
            layers,
            patterns: Patterns::uniform(Pattern::DENSE),
            per_layer: Vec::new(),
            value_bits: 16,
            phase,
        }
    }

    #[test]
    fn only_gpt2_gets_the_gpt2_decoder_shape() {
        assert!(as_decoder(&preset("bert-base").unwrap()).is_none());
        assert!(as_decoder(&preset("smollm2-135m").unwrap()).is_none());
        let dec = gpt2(Phase::Prefill, 1, 1).model.decoder.unwrap();
        assert_eq!((dec.kv_heads, dec.head_dim, dec.vocab), (12, 64, 50257));
        assert_eq!(Family::of(&dec), Family::GPT2);
        assert_eq!(Family::GPT2.position_limit(&dec), Some(1024));
    }

    #[test]
    fn a_decode_layer_is_pre_ln_with_a_gelu_ffn_and_one_query_row_a_head() {
        let (b, c) = (3, 40);
        let g = gpt2(Phase::Decode { context: c }, b, 12).graph();
        assert_eq!(g.ops.len(), 12 * 12 + 1);
        let names: Vec<&str> = g.ops[..12].iter().map(|o| o.name).collect();
        assert_eq!(
            names,
            [
                "qkv",
                "scores",
                "softmax",
                "pv",
                "proj",
                "add1",
                "ffn_norm",
                "ffn1",
                "gelu",
                "ffn2",
                "add2",
                "attn_norm"
            ]
        );
        // Parameters: 12 x (768 x 2304 + 768 x 768 + 2 x 768 x 3072) = 84,934,656, the
        // published 124 M less the 38.6 M token and 0.8 M position embeddings (and biases).
        assert_eq!(g.block_weights(), 84_934_656);
        let head = g.ops.last().unwrap();
        assert_eq!(
            (head.name, head.rows, head.k * head.cols),
            ("lm_head", b, 768 * 50257)
        );
        let norms = g.ops.iter().filter(|o| o.vector_op().is_some());
        assert!(norms.clone().all(|o| !matches!(
            o.vector_op(),
            Some(VectorOp::RmsNorm | VectorOp::Rotary | VectorOp::SiluMul)
        )));
        assert_eq!(
            norms
                .filter(|o| o.vector_op() == Some(VectorOp::LayerNorm))
                .count(),
            24
        );
        // qkv stores its output itself (no rotary after it): the new K and V.
        assert_eq!(g.tensor(g.ops[0].output.unwrap()).home, Home::Dram);
        let scores = &g.ops[1];
        assert_eq!(
            (scores.instances, scores.rows, scores.k, scores.cols),
            (b * 12, 1, 64, c + 1)
        );
        assert_eq!(scores.macs, b * 12 * (c + 1) * 64);
        let cache = g.tensor(scores.kv.unwrap().tensor);
        assert_eq!(
            (cache.home, cache.rows, cache.cols * 2, cache.instances),
            (Home::KvCache, c + 1, 3072, b)
        );
        // Instance 13 = sequence 1, head 1: context row 1, columns 64..
        assert_eq!(g.ops[3].out_at(13), (0, 1, 64));
        assert_eq!(g.ops[3].role, Role::Pv);
    }

    #[test]
    fn a_generation_prefill_ends_in_the_lm_head_of_the_last_token() {
        let g = gpt2(Phase::Prefill, 2, 2).graph();
        let head = g.ops.last().unwrap();
        assert_eq!((head.name, head.rows, head.instances), ("lm_head", 1, 2));
        assert_eq!(head.input.unwrap().row0, 15);
        assert!(g.ops[1].attention.unwrap().causal);
        assert_eq!(g.ops[1].macs, 16 * 17 / 2 * 64 * 12 * 2);
    }
}
