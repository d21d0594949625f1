//! The model IR: a model is a typed operator graph. Each op says what it computes
//! ([`Role`]), which stored tensors it reads and writes ([`TensorKind`], by layer), its
//! shape per instance, its instances and its MACs. Each architecture is a lowering into it
//! ([`bert`] for encoders, [`gpt2`] for the GPT-2 decoder); the planner, the controller, the
//! reports, the charts, the traces and the functional data plane consume the IR and never
//! look at op names (which are for people: `L3.ffn1`).
//!
//! Per layer (hidden `d`, heads `h`, `dh = d/h`, FFN `f`, sequence `s`, batch `B`):
//!
//! | op | role | reads | writes | shape per instance | instances |
//! |---|---|---|---|---|---|
//! | `qkv` | linear (qkv weights) | layer input | `qkv` | `[s x d] x [d x 3d]` | B |
//! | `scores` | scores | `qkv` (Q, K) | (to the softmax) | `[s x dh] x [dh x s]`, scaled by `1/sqrt(dh)` | h*B |
//! | `softmax` | softmax | scores | `p` | `s` rows of `s` | h*B |
//! | `pv` | P·V | `p`, `qkv` (V) | `context` | `[s x s] x [s x dh]` | h*B |
//! | `proj` | linear (proj) | `context` | (to `add_ln1`) | `[s x d] x [d x d]` | B |
//! | `add_ln1` | residual add + LayerNorm | proj, layer input | `hidden` | `s x d` | B |
//! | `ffn1` | linear (ffn1) | `hidden` | (to `gelu`) | `[s x d] x [d x f]` | B |
//! | `gelu` | GELU | ffn1 | `ffn` | `s x f` | B |
//! | `ffn2` | linear (ffn2) | `ffn` | (to `add_ln2`) | `[s x f] x [f x d]` | B |
//! | `add_ln2` | residual add + LayerNorm | ffn2, `hidden` | `output` | `s x d` | B |
//!
//! A vector op follows the matmul before it in the list and is fused to it: the matmul's
//! tiles go through the vector unit. A decoder uses causal attention: score tiles entirely
//! above the diagonal are skipped, and so are their MACs.

pub mod bert;
pub mod gpt2;

use serde::{Deserialize, Serialize};

use crate::workload::{Pattern, Workload};

/// What kind of operation (the engine's view, for reports and charts).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// N:M weights x dense activations.
    SparseDense,
    /// Dense x dense (attention, or a dense linear layer).
    DenseDense,
    /// Row-wise softmax.
    Softmax,
    /// Element-wise / row-wise vector work.
    Vector,
}

/// The class of a linear layer's weights (each may have its own N:M pattern).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinearClass {
    /// Q, K and V projections (one matrix `d x 3d`).
    Qkv,
    /// Attention output projection.
    Proj,
    /// FFN up.
    Ffn1,
    /// FFN down.
    Ffn2,
}

/// A vector-unit operation and its passes over each element.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VectorOp {
    /// Residual add, then LayerNorm of each row (3 passes: add, statistics, normalise).
    AddLayerNorm,
    /// GELU, erf form (1 pass).
    Gelu,
}

impl VectorOp {
    /// Passes of the vector unit over each element.
    pub fn passes(self) -> u32 {
        match self {
            VectorOp::AddLayerNorm => 3,
            VectorOp::Gelu => 1,
        }
    }
}

/// What an op computes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "role")]
pub enum Role {
    /// A linear layer: activations x the weights of `class`.
    Linear {
        /// Whose weights.
        class: LinearClass,
    },
    /// Attention scores `Q_h K_hᵀ` per head.
    Scores,
    /// Row-wise softmax of the scores.
    Softmax,
    /// `P_h V_h` per head.
    Pv,
    /// A vector-unit op fused to the matmul before it.
    Vector {
        /// Which.
        op: VectorOp,
    },
}

/// A stored tensor of a layer (per batch element; attention tensors hold every head).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TensorKind {
    /// The layer's input (the model input, or the previous layer's `output`).
    Input,
    /// Q, K, V side by side, `s x 3d`.
    Qkv,
    /// Softmax output, `h*s x s` (head-major).
    P,
    /// P·V of every head, `s x d` (heads side by side).
    Context,
    /// After the first residual add and LayerNorm, `s x d`.
    Hidden,
    /// GELU(ffn1), `s x f`.
    Ffn,
    /// The layer's output, `s x d`.
    Output,
}

impl TensorKind {
    /// Name in reports (`L3.context`).
    pub fn name(self) -> &'static str {
        match self {
            TensorKind::Input => "input",
            TensorKind::Qkv => "qkv",
            TensorKind::P => "p",
            TensorKind::Context => "context",
            TensorKind::Hidden => "add_ln1",
            TensorKind::Ffn => "gelu",
            TensorKind::Output => "add_ln2",
        }
    }
}

/// One operation of the graph.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Op {
    /// Layer index.
    pub layer: u64,
    /// Name within the layer (`qkv`, `scores`, ...), for people.
    pub name: &'static str,
    /// What it computes.
    pub role: Role,
    /// Kind.
    pub kind: OpKind,
    /// Weight pattern (dense for non-linear ops).
    pub pattern: Pattern,
    /// The tensor it reads as its streamed operand (activations, Q, P); `None` when it
    /// takes the tiles of the op before it (a softmax or a fused vector op).
    pub input: Option<TensorKind>,
    /// The tensor a vector op adds (the residual).
    pub residual: Option<TensorKind>,
    /// The tensor it stores; `None` when its tiles go on to the next op.
    pub output: Option<TensorKind>,
    /// Rows of the output per instance (`s`).
    pub rows: u64,
    /// Reduction length (0 for softmax/vector).
    pub k: u64,
    /// Output columns per instance (row length for softmax/vector).
    pub cols: u64,
    /// Independent instances (heads x batch, or batch).
    pub instances: u64,
    /// Useful MACs (only kept weights; causal tiles skipped).
    pub macs: u64,
    /// MACs a dense engine would do.
    pub dense_macs: u64,
}

impl Op {
    /// The linear class, for a linear layer.
    pub fn linear_class(&self) -> Option<LinearClass> {
        match self.role {
            Role::Linear { class } => Some(class),
            _ => None,
        }
    }
}

/// The graph of `w`: its architecture's lowering.
pub fn lower(w: &Workload) -> Vec<Op> {
    if w.model.causal {
        gpt2::lower(w)
    } else {
        bert::lower(w)
    }
}

/// The ops of one Transformer layer with post-LayerNorm residuals (BERT's arrangement):
/// QKV, attention per head, output projection + add + LayerNorm, FFN up + GELU, FFN down +
/// add + LayerNorm. `causal` masks attention.
pub(crate) fn post_ln_layer(w: &Workload, layer: u64, causal: bool, out: &mut Vec<Op>) {
    let (s, b) = (w.seq, w.batch);
    let (d, h, f, dh) = (w.model.hidden, w.model.heads, w.model.ffn, w.head_dim());
    let p = w.patterns_of(layer);
    let kind_of = |pattern: Pattern| {
        if pattern.is_dense() {
            OpKind::DenseDense
        } else {
            OpKind::SparseDense
        }
    };
    let linear = |name, class, pattern: Pattern, k, cols, input| Op {
        layer,
        name,
        role: Role::Linear { class },
        kind: kind_of(pattern),
        pattern,
        input: Some(input),
        residual: None,
        output: None,
        rows: s,
        k,
        cols,
        instances: b,
        macs: pattern.useful_macs(s, k, cols) * b,
        dense_macs: s * k * cols * b,
    };
    let vector = |name, op, cols, residual, output| Op {
        layer,
        name,
        role: Role::Vector { op },
        kind: OpKind::Vector,
        pattern: Pattern::DENSE,
        input: None,
        residual,
        output: Some(output),
        rows: s,
        k: 0,
        cols,
        instances: b,
        macs: 0,
        dense_macs: 0,
    };
    let mut qkv = linear("qkv", LinearClass::Qkv, p.qkv, d, 3 * d, TensorKind::Input);
    qkv.output = Some(TensorKind::Qkv);
    out.push(qkv);
    // Score MACs of all heads: a query attends to keys at or before it when causal.
    let pairs = if causal { s * (s + 1) / 2 } else { s * s };
    let attn = pairs * dh * h * b;
    let head_op = |name, role, kind, k, cols, macs, input, output| Op {
        layer,
        name,
        role,
        kind,
        pattern: Pattern::DENSE,
        input,
        residual: None,
        output,
        rows: s,
        k,
        cols,
        instances: h * b,
        macs,
        dense_macs: macs,
    };
    out.push(head_op(
        "scores",
        Role::Scores,
        OpKind::DenseDense,
        dh,
        s,
        attn,
        Some(TensorKind::Qkv),
        None,
    ));
    out.push(head_op(
        "softmax",
        Role::Softmax,
        OpKind::Softmax,
        0,
        s,
        0,
        None,
        Some(TensorKind::P),
    ));
    out.push(head_op(
        "pv",
        Role::Pv,
        OpKind::DenseDense,
        s,
        dh,
        attn,
        Some(TensorKind::P),
        Some(TensorKind::Context),
    ));
    out.push(linear(
        "proj",
        LinearClass::Proj,
        p.proj,
        d,
        d,
        TensorKind::Context,
    ));
    out.push(vector(
        "add_ln1",
        VectorOp::AddLayerNorm,
        d,
        Some(TensorKind::Input),
        TensorKind::Hidden,
    ));
    out.push(linear(
        "ffn1",
        LinearClass::Ffn1,
        p.ffn1,
        d,
        f,
        TensorKind::Hidden,
    ));
    out.push(vector("gelu", VectorOp::Gelu, f, None, TensorKind::Ffn));
    out.push(linear(
        "ffn2",
        LinearClass::Ffn2,
        p.ffn2,
        f,
        d,
        TensorKind::Ffn,
    ));
    out.push(vector(
        "add_ln2",
        VectorOp::AddLayerNorm,
        d,
        Some(TensorKind::Hidden),
        TensorKind::Output,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{Patterns, preset};

    fn workload(model: &str) -> Workload {
        Workload {
            model: preset(model).unwrap(),
            seq: 16,
            batch: 2,
            layers: 2,
            patterns: Patterns::uniform(Pattern { n: 2, m: 4 }),
            per_layer: Vec::new(),
            value_bits: 16,
        }
    }

    #[test]
    fn every_stored_tensor_is_written_once_per_layer_before_it_is_read() {
        for model in ["bert-base", "gpt2-small"] {
            let ops = lower(&workload(model));
            assert_eq!(ops.len(), 20);
            for layer in ops.chunks(10) {
                let mut written = vec![TensorKind::Input];
                for o in layer {
                    for t in [o.input, o.residual].into_iter().flatten() {
                        assert!(
                            written.contains(&t),
                            "{model} {}: reads {t:?} unwritten",
                            o.name
                        );
                    }
                    if let Some(t) = o.output {
                        assert!(!written.contains(&t), "{model} {}: {t:?} twice", o.name);
                        written.push(t);
                    }
                }
                assert!(written.contains(&TensorKind::Output));
            }
        }
    }

    #[test]
    fn a_vector_op_follows_the_matmul_it_is_fused_to() {
        let ops = lower(&workload("bert-base"));
        for (i, o) in ops.iter().enumerate() {
            if let Role::Vector { .. } = o.role {
                assert!(matches!(ops[i - 1].role, Role::Linear { .. }), "{}", o.name);
                assert_eq!(ops[i - 1].cols, o.cols);
            }
        }
    }

    #[test]
    fn causal_attention_counts_the_lower_triangle() {
        let (b, g) = (workload("bert-base"), workload("gpt2-small"));
        let scores = |w: &Workload| lower(w)[1].macs;
        // 12 heads x 2 batch x 64: s*s pairs against s*(s+1)/2.
        assert_eq!(scores(&b), 16 * 16 * 64 * 12 * 2);
        assert_eq!(scores(&g), 16 * 17 / 2 * 64 * 12 * 2);
    }
}
