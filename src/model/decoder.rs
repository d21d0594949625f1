//! Decoder LLMs lowered into the IR with pre-norm layers, for the prompt (prefill) and for
//! one decode step (STA.md, "A decoder LLM layer"): the Llama family (Llama, Mistral, Qwen2,
//! SmolLM2: RMSNorm, rotary, grouped-query attention, SwiGLU) and GPT-2's decode steps and
//! generation (LayerNorm, learned positions, multi-head attention, GELU; see [`super::gpt2`]).
//! One lowering serves both, parameterised by the [`Family`]: the norm (RMSNorm or
//! LayerNorm), rotary or not, and the FFN (SwiGLU `gate`/`up`/`down`, or GELU
//! `ffn1`/`ffn2`).
//!
//! Hidden `d`, query heads `h`, key/value heads `hkv` (grouped-query attention, `group = h /
//! hkv`; GPT-2: `hkv = h`), head size `dh` (GPT-2: 64), FFN `f`, vocabulary `V`, qkv width
//! `W = (h + 2 hkv) dh` (Q, then K, then V columns). A layer is pre-norm: the residual
//! stream `x` and its normalisation `xn` travel side by side, so every norm is fused to the
//! matmul before it (the chain stores the residual and, after the row-wise norm, its
//! normalisation). `norm` is RMSNorm (Llama) or LayerNorm (GPT-2):
//!
//! | op | role | reads | writes | shape (prefill, per sequence) |
//! |---|---|---|---|---|
//! | `qkv` | linear (qkv) | `xn` | `qkv` (GPT-2; Llama: to `rope`) | `[s x d] x [d x W]` |
//! | `rope` | rotary embedding (Llama only) | qkv | `qkv` | `s x W` |
//! | `scores` | scores, causal, per query head | `qkv` (Q, K of its group) | (softmax) | `[s x dh] x [dh x s]` |
//! | `softmax` | softmax | scores | `p` (streamed) | `s` rows of `s` |
//! | `pv` | P·V | `p`, `qkv` (V) | `context` | `[s x s] x [s x dh]` |
//! | `proj` | linear (proj) | `context` | (to `add1`) | `[s x h dh] x [h dh x d]` |
//! | `add1` | residual add | proj, `x` | `h1` | `s x d` |
//! | `ffn_norm` | norm 0 | `h1` | `h1n` | `s x d` |
//! | `gate` | linear (ffn1; SwiGLU) | `h1n` | `gate` | `[s x d] x [d x f]` |
//! | `up` | linear (ffn1; SwiGLU) | `h1n` | (to `silu_mul`) | `[s x d] x [d x f]` |
//! | `silu_mul` | `SiLU(gate) * up` (SwiGLU) | up, `gate` | `act` | `s x f` |
//! | `down` | linear (ffn2; SwiGLU) | `act` | (to `add2`) | `[s x f] x [f x d]` |
//! | `ffn1` | linear (ffn1; GELU) | `h1n` | (to `gelu`) | `[s x d] x [d x f]` |
//! | `gelu` | GELU (GELU FFN) | ffn1 | `act` | `s x f` |
//! | `ffn2` | linear (ffn2; GELU) | `act` | (to `add2`) | `[s x f] x [f x d]` |
//! | `add2` | residual add | down / ffn2, `h1` | `x` of the next layer | `s x d` |
//! | `attn_norm` | norm 1 (the next layer's input norm, or the final norm `final_norm`) | `x` | `xn` | `s x d` |
//!
//! A Llama layer is 14 ops (`qkv`, `rope`, attention, `proj`, `add1`, `ffn_norm`, `gate`,
//! `up`, `silu_mul`, `down`, `add2`, norm), a GPT-2 layer 12 (no `rope`; `ffn1`, `gelu`,
//! `ffn2`). After the last simulated layer the `lm_head` (`[d x V]`, dense: it is usually
//! the embedding table, `tie_word_embeddings`; GPT-2's is its 50257 x 768 token embedding)
//! turns the final normalisation into logits; a prefill computes them for the last token of
//! each sequence only (what generation needs). The gate and up projections are two matmuls
//! (the same MACs and weight bytes as STA.md's one `[d x 2f]` product, whose output columns
//! the vector unit could not pair). Biases (Qwen2's and GPT-2's qkv, GPT-2's proj and FFN,
//! LayerNorm's beta) are not streamed: about a thousandth of the weights.
//!
//! The model input is the embedding of the tokens and its first normalisation (`input`,
//! `input_norm`, both in DRAM): the embedding lookup (GPT-2: plus the learned position
//! embedding) gathers rows of the table and no matmul precedes the first layer's norm for
//! it to fuse to, so the lookup (`rows x d` values, well under a thousandth of a layer's
//! work) is taken as done before the run.
//!
//! # Decode
//! A decode step has one token per sequence: the linear layers run the whole batch at once
//! (`[B x d] x [d x n]`, one instance: the weights stream once per step), and attention is
//! *grouped*: one instance per sequence and key/value head, its `group` query heads the rows
//! (`[group x dh] x [dh x (c + 1)]`; GPT-2: one query row per head), so every cached key
//! and value is read once per step. The lm_head runs the `B` tokens as one `[B x d] x [d x
//! V]` product.
//!
//! **KV cache layout** (one region a layer, `Home::KvCache`, a run input: earlier steps
//! wrote it): per sequence, the K of each key/value head then the V of each, each a
//! contiguous `[tokens x dh]` block of the cached tokens and the new one (`c + 1` tokens),
//! so `2 hkv dh` values a token a layer (at 16 bits SmolLM2 768 bytes, GPT-2 3072). The new
//! token's K and V are the K and V columns of this step's `qkv` output (written to DRAM
//! once: the cache append).

use super::{Attention, Graph, Home, LinearClass, Op, OpKind, Role, Tensor, VectorOp, View};
use crate::workload::{Decoder, Pattern, Phase, Positions, Workload};

/// A decoder family's FFN.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Ffn {
    /// `down(SiLU(gate(x)) * up(x))`: three `d x f` matrices.
    SwiGlu,
    /// `ffn2(GELU(ffn1(x)))`: two.
    Gelu,
}

impl Ffn {
    /// The `d x f` matrices of a layer's FFN.
    pub fn matrices(self) -> u64 {
        match self {
            Ffn::SwiGlu => 3,
            Ffn::Gelu => 2,
        }
    }
}

/// What sets a decoder family's layer apart: its norm, its positions and its FFN.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Family {
    /// [`VectorOp::RmsNorm`] or [`VectorOp::LayerNorm`].
    pub norm: VectorOp,
    /// Rotary position embedding of Q and K (else learned positions, added to the input
    /// embedding: no op in a layer, and no more positions than the table has).
    pub rotary: bool,
    /// The FFN.
    pub ffn: Ffn,
}

impl Family {
    /// The Llama family: RMSNorm, rotary, SwiGLU.
    pub const LLAMA: Family = Family {
        norm: VectorOp::RmsNorm,
        rotary: true,
        ffn: Ffn::SwiGlu,
    };
    /// GPT-2: LayerNorm, learned positions, GELU.
    pub const GPT2: Family = Family {
        norm: VectorOp::LayerNorm,
        rotary: false,
        ffn: Ffn::Gelu,
    };

    /// The family of decoder shape `dec`: GPT-2's has learned positions (see
    /// [`super::gpt2::decoder`]), every other is Llama's.
    pub fn of(dec: &Decoder) -> Family {
        match dec.positions {
            Positions::Rotary { .. } => Family::LLAMA,
            Positions::Learned => Family::GPT2,
        }
    }

    /// Most positions a sequence may hold (prompt, cache and new token): the learned
    /// position table's rows; `None` for rotary, which has no table.
    pub fn position_limit(self, dec: &Decoder) -> Option<u64> {
        (!self.rotary).then_some(dec.max_context)
    }
}

/// The graph of decoder `w` (prefill or one decode step, as `w.phase` says).
pub fn lower(w: &Workload) -> Graph {
    let dec = w
        .model
        .decoder
        .as_ref()
        .expect("decoder::lower needs a decoder shape");
    let fam = Family::of(dec);
    let (d, h, f, hkv, dh) = (
        w.model.hidden,
        w.model.heads,
        w.model.ffn,
        dec.kv_heads,
        dec.head_dim,
    );
    let (b, s) = (w.batch, w.seq);
    // Rows of a linear layer's instance, its instances, and the keys a query sees.
    let (rows, inst, keys) = match w.phase {
        Phase::Prefill => (s, b, s),
        Phase::Decode { context } => (b, 1, context + 1),
    };
    let decode = matches!(w.phase, Phase::Decode { .. });
    let width = (h + 2 * hkv) * dh;
    let mut g = Graph::default();
    let act = |g: &mut Graph, layer, label, cols, home| {
        g.add_tensor(Tensor {
            layer,
            label,
            rows,
            cols,
            instances: inst,
            home,
        })
    };
    let mut x = act(&mut g, 0, "input", d, Home::Dram);
    let mut xn = act(&mut g, 0, "input_norm", d, Home::Dram);
    let base = Op::blank(0, rows, inst);
    let linear = |layer, name, class, pattern: Pattern, k, cols, input: View| Op {
        layer,
        name,
        ..base.linear(class, pattern, k, cols, input)
    };
    let vector = |layer, name, op, cols, operand, output, norm| Op {
        layer,
        name,
        role: Role::Vector { op },
        operand,
        output,
        norm,
        cols,
        ..base.clone()
    };
    let attention = Attention {
        heads: h,
        kv_heads: hkv,
        head_dim: dh,
        causal: !decode,
        grouped: decode,
    };
    // Attention instances, their rows, and the score MACs of all of them.
    let (a_inst, a_rows, a_macs) = if decode {
        (b * hkv, attention.group(), b * h * keys * dh)
    } else {
        (b * h, s, s * (s + 1) / 2 * dh * h * b)
    };
    let head_op = |layer, name, role, kind, k, cols, macs| Op {
        layer,
        name,
        role,
        kind,
        attention: Some(attention),
        rows: a_rows,
        k,
        cols,
        instances: a_inst,
        macs,
        dense_macs: macs,
        ..base.clone()
    };
    for layer in 0..w.layers {
        let p = w.patterns_of(layer);
        let last = layer + 1 == w.layers;
        let qkv = act(&mut g, layer, "qkv", width, Home::Dram);
        // K and V: this step's qkv (prefill), or the cache with this step's token (decode).
        let (kv_t, k0, v0) = if decode {
            let cache = g.add_tensor(Tensor {
                layer,
                label: "kv_cache",
                rows: keys,
                cols: 2 * hkv * dh,
                instances: b,
                home: Home::KvCache,
            });
            (cache, 0, hkv * dh)
        } else {
            (qkv, h * dh, (h + hkv) * dh)
        };
        let p_t = g.add_tensor(Tensor {
            layer,
            label: "p",
            rows: h * if decode { 1 } else { s },
            cols: keys,
            instances: b,
            home: Home::Stream,
        });
        let context = act(&mut g, layer, "context", h * dh, Home::Chip);
        let h1 = act(&mut g, layer, "h1", d, Home::Chip);
        let h1n = act(&mut g, layer, "h1n", d, Home::Chip);
        // SwiGLU's gate waits beside the up projection; a GELU FFN has none.
        let gate = (fam.ffn == Ffn::SwiGlu).then(|| act(&mut g, layer, "gate", f, Home::Chip));
        let ffn_act = act(&mut g, layer, "act", f, Home::Chip);
        let (next_x, next_xn) = if last {
            (None, act(&mut g, layer, "final_norm", d, Home::Chip))
        } else {
            (
                Some(act(&mut g, layer + 1, "input", d, Home::Chip)),
                act(&mut g, layer + 1, "input_norm", d, Home::Chip),
            )
        };
        let qkv_op = linear(
            layer,
            "qkv",
            LinearClass::Qkv,
            p.qkv,
            d,
            width,
            View::cols(xn, 0),
        );
        if fam.rotary {
            g.ops.push(qkv_op);
            g.ops.push(vector(
                layer,
                "rope",
                VectorOp::Rotary,
                width,
                None,
                Some(qkv),
                0,
            ));
        } else {
            g.ops.push(Op {
                output: Some(qkv),
                ..qkv_op
            });
        }
        g.ops.extend([
            Op {
                input: Some(View::cols(qkv, 0)),
                kv: Some(View::cols(kv_t, k0)),
                ..head_op(
                    layer,
                    "scores",
                    Role::Scores,
                    OpKind::DenseDense,
                    dh,
                    keys,
                    a_macs,
                )
            },
            Op {
                output: Some(p_t),
                ..head_op(layer, "softmax", Role::Softmax, OpKind::Softmax, 0, keys, 0)
            },
            Op {
                input: Some(View::cols(p_t, 0)),
                kv: Some(View::cols(kv_t, v0)),
                output: Some(context),
                ..head_op(layer, "pv", Role::Pv, OpKind::DenseDense, keys, dh, a_macs)
            },
            linear(
                layer,
                "proj",
                LinearClass::Proj,
                p.proj,
                h * dh,
                d,
                View::cols(context, 0),
            ),
            vector(layer, "add1", VectorOp::Add, d, Some(x), Some(h1), 0),
            vector(layer, "ffn_norm", fam.norm, d, None, Some(h1n), 0),
        ]);
        let up = |name| {
            linear(
                layer,
                name,
                LinearClass::Ffn1,
                p.ffn1,
                d,
                f,
                View::cols(h1n, 0),
            )
        };
        let down = match gate {
            Some(gate) => {
                g.ops.extend([
                    Op {
                        output: Some(gate),
                        ..up("gate")
                    },
                    up("up"),
                    vector(
                        layer,
                        "silu_mul",
                        VectorOp::SiluMul,
                        f,
                        Some(gate),
                        Some(ffn_act),
                        0,
                    ),
                ]);
                "down"
            }
            None => {
                g.ops.extend([
                    up("ffn1"),
                    vector(layer, "gelu", VectorOp::Gelu, f, None, Some(ffn_act), 0),
                ]);
                "ffn2"
            }
        };
        g.ops.extend([
            linear(
                layer,
                down,
                LinearClass::Ffn2,
                p.ffn2,
                f,
                d,
                View::cols(ffn_act, 0),
            ),
            vector(layer, "add2", VectorOp::Add, d, Some(h1), next_x, 0),
            vector(
                layer,
                if last { "final_norm" } else { "attn_norm" },
                fam.norm,
                d,
                None,
                Some(next_xn),
                1,
            ),
        ]);
        if let Some(nx) = next_x {
            x = nx;
        }
        xn = next_xn;
    }
    // The lm_head: every row of a decode step, the last token of each prefill sequence.
    let head_rows = if decode { rows } else { 1 };
    let logits = g.add_tensor(Tensor {
        layer: w.layers - 1,
        label: "logits",
        rows: head_rows,
        cols: dec.vocab,
        instances: inst,
        home: Home::Dram,
    });
    let input = View {
        tensor: xn,
        col0: 0,
        row0: rows - head_rows,
    };
    g.ops.push(Op {
        name: "lm_head",
        output: Some(logits),
        ..Op::blank(w.layers - 1, head_rows, inst).linear(
            LinearClass::LmHead,
            Pattern::DENSE,
            d,
            dec.vocab,
            input,
        )
    });
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TensorId;
    use crate::workload::{Patterns, preset};

    fn smollm2(phase: Phase, batch: u64) -> Workload {
        decoder("smollm2-135m", phase, batch)
    }

    /// `name` with its decoder shape (GPT-2's for gpt2-small), all its layers, dense.
    fn decoder(name: &str, phase: Phase, batch: u64) -> Workload {
        let model = preset(name).unwrap();
        Workload {
            model: crate::model::gpt2::as_decoder(&model).unwrap_or(model.clone()),
            seq: 16,
            batch,
            layers: model.layers,
            patterns: Patterns::uniform(Pattern::DENSE),
            per_layer: Vec::new(),
            value_bits: 16,
            phase,
        }
    }

    #[test]
    fn smollm2_block_weights_are_its_published_parameter_count() {
        let g = lower(&smollm2(Phase::Prefill, 1));
        // 30 x (576 x (9 + 2 x 3) x 64 + 576 x 576 + 3 x 576 x 1536).
        assert_eq!(g.block_weights(), 106_168_320);
        let head = g.ops.last().unwrap();
        assert_eq!((head.name, head.k * head.cols), ("lm_head", 28_311_552));
    }

    #[test]
    fn every_tensor_is_written_once_before_it_is_read_in_both_phases() {
        // (model, layers, ops a layer, last logits name).
        let models = [
            ("smollm2-135m", 30, 14, "L29.logits"),
            ("gpt2-small", 12, 12, "L11.logits"),
        ];
        for (name, layers, per_layer, logits) in models {
            for phase in [Phase::Prefill, Phase::Decode { context: 40 }] {
                let g = lower(&decoder(name, phase, 3));
                assert_eq!(g.ops.len(), layers * per_layer + 1, "{name}");
                // The inputs: the embedding, its norm, and (decode) each layer's cache.
                let mut written: Vec<TensorId> = (0..g.tensors.len() as u32)
                    .map(TensorId)
                    .filter(|&t| !g.ops.iter().any(|o| o.output == Some(t)))
                    .collect();
                let inputs = if phase == Phase::Prefill {
                    2
                } else {
                    2 + layers
                };
                assert_eq!(written.len(), inputs, "{name} {phase:?}");
                for o in &g.ops {
                    let reads = [o.input.map(|v| v.tensor), o.kv.map(|v| v.tensor), o.operand];
                    for t in reads.into_iter().flatten() {
                        assert!(written.contains(&t), "{phase:?} {}: reads {t:?}", o.name);
                    }
                    if let Some(t) = o.output {
                        assert!(!written.contains(&t), "{phase:?} {}: {t:?} twice", o.name);
                        written.push(t);
                    }
                }
                assert_eq!(g.tensor(g.output().unwrap()).name(), logits);
            }
        }
    }

    #[test]
    fn a_decode_step_groups_the_query_heads_of_each_cached_head() {
        let (b, c) = (3, 40);
        let g = lower(&smollm2(Phase::Decode { context: c }, b));
        let scores = g.ops.iter().find(|o| o.role == Role::Scores).unwrap();
        let pv = g.ops.iter().find(|o| o.role == Role::Pv).unwrap();
        // One instance a sequence and key/value head: 3 query heads of 64 against c + 1 keys.
        assert_eq!(
            (scores.instances, scores.rows, scores.k, scores.cols),
            (9, 3, 64, 41)
        );
        assert_eq!((pv.instances, pv.rows, pv.k, pv.cols), (9, 3, 41, 64));
        assert_eq!(scores.macs, b * 9 * (c + 1) * 64);
        // The cache: per sequence 2 x 3 heads x 64 values a token (768 bytes at 16 bits).
        let cache = g.tensor(scores.kv.unwrap().tensor);
        assert_eq!(
            (cache.rows, cache.cols * 2, cache.instances),
            (c + 1, 768, b)
        );
        assert_eq!(pv.kv.unwrap().col0, 3 * 64);
        // The linear layers run the batch as rows of one instance: weights stream once.
        let qkv = &g.ops[0];
        assert_eq!((qkv.rows, qkv.instances, qkv.cols), (b, 1, 960));
        // Instance 4 = sequence 1, key/value head 1: context row 1, columns 192..
        assert_eq!(pv.out_at(4), (0, 1, 192));
    }

    #[test]
    fn a_prefill_computes_logits_for_the_last_token_only() {
        let g = lower(&smollm2(Phase::Prefill, 2));
        let head = g.ops.last().unwrap();
        assert_eq!((head.rows, head.instances), (1, 2));
        assert_eq!(head.input.unwrap().row0, 15);
        let scores = g.ops.iter().find(|o| o.role == Role::Scores).unwrap();
        assert_eq!(scores.macs, 16 * 17 / 2 * 64 * 9 * 2);
        assert!(scores.attention.unwrap().causal);
    }
}
