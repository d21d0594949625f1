//! The model IR: a model is a typed operator graph ([`Graph`]) of tensors and the ops that
//! read and write them. Each architecture is a lowering into it ([`bert`] for encoders,
//! [`gpt2`] for the GPT-2 prefill, [`decoder`] for decoder LLMs: the Llama family, and
//! GPT-2's decode steps and generation); the planner, the controller, the reports, the
//! charts, the traces and the functional data plane consume the graph and never look at op
//! or tensor names (which are for people: `L3.ffn1`, `L3.context`).
//!
//! # Tensors
//! A [`Tensor`] has a shape per instance (`rows x cols`, one instance per batch element), a
//! value width (the workload's), and a home ([`Home`]): DRAM (the model input and output,
//! Q/K/V that attention reads head by head), on chip (kept in the activation buffer while
//! it fits beside everything else held there, else spilled by the planner), streamed (the
//! softmax's P, passed to P·V a row block at a time), or the KV cache (a DRAM region kept
//! across decode steps).
//!
//! # Ops
//! Every op has a [`Role`]. A matmul (a linear layer with its own weight class and N:M
//! pattern; attention scores `Q_h K_gᵀ` and `P_h V_g` with `heads` query heads sharing
//! `kv_heads` key/value heads, `g = h / (heads / kv_heads)`, and causality) reads its
//! streamed operand through a [`View`] (a tensor and a first column: Q, K and V are column
//! ranges of one tensor). A softmax follows its scores; vector ops follow the matmul they
//! are fused to (a *chain*: the matmul's finished tiles pass through each in turn), may
//! read a second operand (a residual, a gate) and store their output: the chain's last op
//! stores, and one op before trailing row-wise ops may store too (a pre-norm layer keeps
//! its residual stream beside the normalised input of the next matmul). Causal scores skip
//! tiles wholly above the diagonal, and their MACs.
//!
//! The lowering of a post-LayerNorm layer (BERT; hidden `d`, heads `h`, `dh = d/h`, FFN
//! `f`, sequence `s`, batch `B`):
//!
//! | op | role | reads | writes | shape per instance | instances |
//! |---|---|---|---|---|---|
//! | `qkv` | linear (qkv weights) | layer input | `qkv` (DRAM) | `[s x d] x [d x 3d]` | B |
//! | `scores` | scores | `qkv` (Q, K) | (to the softmax) | `[s x dh] x [dh x s]`, scaled by `1/sqrt(dh)` | h*B |
//! | `softmax` | softmax | scores | `p` | `s` rows of `s` | h*B |
//! | `pv` | P·V | `p`, `qkv` (V) | `context` | `[s x s] x [s x dh]` | h*B |
//! | `proj` | linear (proj) | `context` | (to `add_ln1`) | `[s x d] x [d x d]` | B |
//! | `add_ln1` | residual add + LayerNorm | proj, layer input | `add_ln1` | `s x d` | B |
//! | `ffn1` | linear (ffn1) | `add_ln1` | (to `gelu`) | `[s x d] x [d x f]` | B |
//! | `gelu` | GELU | ffn1 | `gelu` | `s x f` | B |
//! | `ffn2` | linear (ffn2) | `gelu` | (to `add_ln2`) | `[s x f] x [f x d]` | B |
//! | `add_ln2` | residual add + LayerNorm | ffn2, `add_ln1` | `add_ln2` (the layer output) | `s x d` | B |

pub mod bert;
pub mod decoder;
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
    /// A decoder's lm_head (`d x V`; dense, often the embedding table).
    LmHead,
}

/// A vector-unit operation. Its cost is `passes()` passes of the vector unit over every
/// element of the tile (`lanes` elements a cycle per pass); a *row* op needs a whole row
/// before it can finish (its statistics accumulate over the row's tiles).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VectorOp {
    /// `y = x + r` (1 pass).
    Add,
    /// `y = x * r` (1 pass).
    Mul,
    /// `y = (x - mean) / sqrt(var + eps) * gamma + beta` per row (2 passes: statistics,
    /// normalise).
    LayerNorm,
    /// `LayerNorm(x + r)` (3 passes: add, statistics, normalise).
    AddLayerNorm,
    /// `y = x / sqrt(mean(x²) + eps) * gamma` per row (2 passes: sum of squares, scale).
    RmsNorm,
    /// GELU, erf form (1 pass).
    Gelu,
    /// `y = x * sigmoid(x)` (1 pass).
    Silu,
    /// `y = silu(r) * x`: SwiGLU's gate (the operand `r`) times its up projection (2
    /// passes: SiLU, multiply).
    SiluMul,
    /// Rotary position embedding of each head's pairs `(x_i, x_{i+dh/2})` by angle
    /// `pos * theta^(-2i/dh)` (2 passes: two multiply-adds a pair).
    Rotary,
}

impl VectorOp {
    /// Passes of the vector unit over each element.
    pub fn passes(self) -> u32 {
        match self {
            VectorOp::Add | VectorOp::Mul | VectorOp::Gelu | VectorOp::Silu => 1,
            VectorOp::LayerNorm | VectorOp::RmsNorm | VectorOp::SiluMul | VectorOp::Rotary => 2,
            VectorOp::AddLayerNorm => 3,
        }
    }

    /// Needs a whole row before it can finish (normalisations, rotary pairs across tiles).
    pub fn row_wise(self) -> bool {
        matches!(
            self,
            VectorOp::LayerNorm | VectorOp::AddLayerNorm | VectorOp::RmsNorm | VectorOp::Rotary
        )
    }

    /// Reads a second operand (the residual, the gate).
    pub fn takes_operand(self) -> bool {
        matches!(
            self,
            VectorOp::Add | VectorOp::Mul | VectorOp::AddLayerNorm | VectorOp::SiluMul
        )
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
    /// Attention scores `Q_h K_gᵀ` per head.
    Scores,
    /// Row-wise softmax of the scores.
    Softmax,
    /// `P_h V_g` per head.
    Pv,
    /// A vector-unit op fused to the matmul before it.
    Vector {
        /// Which.
        op: VectorOp,
    },
}

/// Where a tensor lives (the planner may still spill an on-chip tensor to DRAM).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Home {
    /// DRAM (the model input and output, tensors read back in pieces).
    Dram,
    /// The activation buffer, while it fits beside everything else held there.
    Chip,
    /// The KV cache: a DRAM region kept across decode steps.
    KvCache,
    /// Passed from its producer to its consumer a row block at a time, never held whole
    /// (the softmax's P rows, read by P·V as they arrive).
    Stream,
}

/// Index of a tensor in [`Graph::tensors`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TensorId(pub u32);

/// A stored tensor (one instance per batch element; attention tensors hold every head).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tensor {
    /// Layer it belongs to (the model input: 0).
    pub layer: u64,
    /// Name within the layer, for people (`context`).
    pub label: &'static str,
    /// Rows per instance.
    pub rows: u64,
    /// Columns per instance (row-major).
    pub cols: u64,
    /// Instances (batch elements).
    pub instances: u64,
    /// Where it lives.
    pub home: Home,
}

impl Tensor {
    /// Bytes of one instance at `value_bytes` a value.
    pub fn instance_bytes(&self, value_bytes: u64) -> u64 {
        self.rows * self.cols * value_bytes
    }

    /// Bytes of every instance.
    pub fn bytes(&self, value_bytes: u64) -> u64 {
        self.instance_bytes(value_bytes) * self.instances
    }

    /// Name in reports (`L3.context`).
    pub fn name(&self) -> String {
        format!("L{}.{}", self.layer, self.label)
    }
}

/// A part of a tensor read by an op: columns `col0..` from row `row0` of `tensor`
/// (attention reads head `h`'s columns at `col0 + h * head_dim`; a prefill's lm_head reads
/// only the last row).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct View {
    /// The tensor.
    pub tensor: TensorId,
    /// First column.
    pub col0: u64,
    /// First row.
    pub row0: u64,
}

impl View {
    /// Columns `col0..` of every row of `tensor`.
    pub fn cols(tensor: TensorId, col0: u64) -> View {
        View {
            tensor,
            col0,
            row0: 0,
        }
    }
}

/// The shape of attention: query heads, the key/value heads they share, the head size and
/// the mask.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Attention {
    /// Query heads.
    pub heads: u64,
    /// Key/value heads (`heads` for multi-head attention, fewer for grouped-query).
    pub kv_heads: u64,
    /// Head size.
    pub head_dim: u64,
    /// A query sees only the keys at or before it.
    pub causal: bool,
    /// An instance is one key/value head of one sequence, its rows the query heads that
    /// share it (`heads / kv_heads` rows: a decode step's single token), so K and V are read
    /// once for the group; else an instance is one query head of one sequence, its rows the
    /// sequence's tokens.
    pub grouped: bool,
}

impl Attention {
    /// Query heads per key/value head.
    pub fn group(&self) -> u64 {
        (self.heads / self.kv_heads).max(1)
    }

    /// Instances per sequence: query heads, or key/value heads when grouped.
    pub fn per_sequence(&self) -> u64 {
        if self.grouped {
            self.kv_heads
        } else {
            self.heads
        }
    }

    /// The key/value head query head `h` reads.
    pub fn kv_head(&self, h: u64) -> u64 {
        h / (self.heads / self.kv_heads).max(1)
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
    /// The streamed operand (activations, Q, P); `None` when the op takes the tiles of the
    /// op before it (a softmax or a fused vector op).
    pub input: Option<View>,
    /// The stationary operand of attention: K for scores, V for P·V.
    pub kv: Option<View>,
    /// The second operand of a vector op (the residual, the gate).
    pub operand: Option<TensorId>,
    /// The tensor it stores; `None` when its tiles go on to the next op.
    pub output: Option<TensorId>,
    /// Attention shape (scores, softmax, P·V).
    pub attention: Option<Attention>,
    /// Which of the layer's normalisations a LayerNorm/RMSNorm op applies (its weights).
    pub norm: u8,
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
    /// An op of `layer` with `rows` output rows per instance and `instances` instances,
    /// nothing else set (a vector-kind softmax with no operands): the base a lowering fills in.
    pub fn blank(layer: u64, rows: u64, instances: u64) -> Op {
        Op {
            layer,
            name: "",
            role: Role::Softmax,
            kind: OpKind::Vector,
            pattern: Pattern::DENSE,
            input: None,
            kv: None,
            operand: None,
            output: None,
            attention: None,
            norm: 0,
            rows,
            k: 0,
            cols: 0,
            instances,
            macs: 0,
            dense_macs: 0,
        }
    }

    /// This op's layer, rows and instances as a linear layer of `class` with `pattern`:
    /// `[rows x k] x [k x cols]` reading `input`, its kind and MACs (useful: kept weights
    /// only) following from the pattern.
    pub fn linear(
        &self,
        class: LinearClass,
        pattern: Pattern,
        k: u64,
        cols: u64,
        input: View,
    ) -> Op {
        let (rows, n) = (self.rows, self.instances);
        Op {
            role: Role::Linear { class },
            kind: if pattern.is_dense() {
                OpKind::DenseDense
            } else {
                OpKind::SparseDense
            },
            pattern,
            input: Some(input),
            k,
            cols,
            macs: pattern.useful_macs(rows, k, cols) * n,
            dense_macs: rows * k * cols * n,
            ..self.clone()
        }
    }

    /// The linear class, for a linear layer.
    pub fn linear_class(&self) -> Option<LinearClass> {
        match self.role {
            Role::Linear { class } => Some(class),
            _ => None,
        }
    }

    /// The vector op, for a vector-unit op.
    pub fn vector_op(&self) -> Option<VectorOp> {
        match self.role {
            Role::Vector { op } => Some(op),
            _ => None,
        }
    }

    /// A matrix product the PE array runs.
    pub fn is_matmul(&self) -> bool {
        matches!(self.role, Role::Linear { .. } | Role::Scores | Role::Pv)
    }

    /// Where instance `inst`'s output lands in the stored tensor: `(batch element, first
    /// row, first column)`. A head's softmax rows are stacked (head-major rows of `p`); a
    /// head's P·V columns sit side by side (`context[:, h*dh..]`); anything else is the
    /// whole instance of a batch element.
    ///
    /// Grouped attention (a decode step, [`Attention::grouped`]): instance `b * kv_heads + g`
    /// holds the group's query heads as rows; its P rows are stacked the same way, and its
    /// context is row `b`, columns `g * group * dh ..` of the one batch-wide context tensor
    /// (returned as batch element 0, first row `b`).
    pub fn out_at(&self, inst: u64) -> (u64, u64, u64) {
        match (self.role, self.attention) {
            (Role::Softmax, Some(a)) => {
                let n = a.per_sequence();
                (inst / n, (inst % n) * self.rows, 0)
            }
            (Role::Pv, Some(a)) if a.grouped => {
                let (b, g) = (inst / a.kv_heads, inst % a.kv_heads);
                (0, b, g * a.group() * self.cols)
            }
            (Role::Pv, Some(a)) => (inst / a.heads, 0, (inst % a.heads) * self.cols),
            _ => (inst, 0, 0),
        }
    }
}

/// A model lowered for one workload: its tensors and ops, in execution order. Tensor 0 is
/// the model input; the output of the last op that stores is the model output.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Graph {
    /// Every stored tensor.
    pub tensors: Vec<Tensor>,
    /// Every op.
    pub ops: Vec<Op>,
}

impl Graph {
    /// Tensor `id`.
    pub fn tensor(&self, id: TensorId) -> &Tensor {
        &self.tensors[id.0 as usize]
    }

    /// Adds a tensor.
    pub fn add_tensor(&mut self, t: Tensor) -> TensorId {
        self.tensors.push(t);
        TensorId(self.tensors.len() as u32 - 1)
    }

    /// The model output: what the last storing op writes.
    pub fn output(&self) -> Option<TensorId> {
        self.ops.iter().rev().find_map(|o| o.output)
    }

    /// For every tensor, the index of the last op that reads it (`None`: never read).
    pub fn last_reads(&self) -> Vec<Option<usize>> {
        let mut last = vec![None; self.tensors.len()];
        for (i, o) in self.ops.iter().enumerate() {
            let reads = [o.input.map(|v| v.tensor), o.kv.map(|v| v.tensor), o.operand];
            for t in reads.into_iter().flatten() {
                last[t.0 as usize] = Some(i);
            }
        }
        last
    }

    /// Weights of the linear layers of the blocks (every linear op but the lm_head), as
    /// parameters: what published parameter counts give.
    pub fn block_weights(&self) -> u64 {
        self.ops
            .iter()
            .filter(|o| matches!(o.linear_class(), Some(c) if c != LinearClass::LmHead))
            .map(|o| o.k * o.cols)
            .sum()
    }

    /// The vector ops fused to the matmul at `i`: the run of vector ops after it.
    pub fn chain(&self, i: usize) -> std::ops::Range<usize> {
        let end = (i + 1..self.ops.len())
            .find(|&j| self.ops[j].vector_op().is_none())
            .unwrap_or(self.ops.len());
        i + 1..end
    }
}

/// The graph of `w`: its architecture's lowering.
pub fn lower(w: &Workload) -> Graph {
    if w.model.decoder.is_some() {
        decoder::lower(w)
    } else if w.model.causal {
        gpt2::lower(w)
    } else {
        bert::lower(w)
    }
}

/// The model input tensor of `w` (`s x d` per batch element, in DRAM).
pub(crate) fn input_tensor(w: &Workload, g: &mut Graph) -> TensorId {
    g.add_tensor(Tensor {
        layer: 0,
        label: "input",
        rows: w.seq,
        cols: w.model.hidden,
        instances: w.batch,
        home: Home::Dram,
    })
}

/// Appends one Transformer layer with post-LayerNorm residuals (BERT's arrangement) reading
/// `x`: QKV, attention per head, output projection + add + LayerNorm, FFN up + GELU, FFN
/// down + add + LayerNorm. `causal` masks attention. Returns the layer's output tensor.
pub(crate) fn post_ln_layer(
    w: &Workload,
    layer: u64,
    causal: bool,
    x: TensorId,
    g: &mut Graph,
) -> TensorId {
    let (s, b) = (w.seq, w.batch);
    let (d, h, f, dh) = (w.model.hidden, w.model.heads, w.model.ffn, w.head_dim());
    let p = w.patterns_of(layer);
    let mut tensor = |label, rows, cols, home| {
        g.add_tensor(Tensor {
            layer,
            label,
            rows,
            cols,
            instances: b,
            home,
        })
    };
    let qkv_t = tensor("qkv", s, 3 * d, Home::Dram);
    let p_t = tensor("p", h * s, s, Home::Stream);
    let context_t = tensor("context", s, d, Home::Chip);
    let hidden_t = tensor("add_ln1", s, d, Home::Chip);
    let ffn_t = tensor("gelu", s, f, Home::Chip);
    let out_t = tensor("add_ln2", s, d, Home::Chip);
    let base = Op::blank(layer, s, b);
    let view = |tensor, col0| Some(View::cols(tensor, col0));
    let linear = |name, class, pattern: Pattern, k, cols, input| Op {
        name,
        ..base.linear(class, pattern, k, cols, View::cols(input, 0))
    };
    let vector = |name, op, cols, operand, output, norm| Op {
        name,
        role: Role::Vector { op },
        operand,
        output: Some(output),
        norm,
        cols,
        ..base.clone()
    };
    // Score MACs of all heads: a query attends to keys at or before it when causal.
    let pairs = if causal { s * (s + 1) / 2 } else { s * s };
    let attn_macs = pairs * dh * h * b;
    let attention = Some(Attention {
        heads: h,
        kv_heads: h,
        head_dim: dh,
        causal,
        grouped: false,
    });
    let head_op = |name, role, kind, k, cols, macs| Op {
        name,
        role,
        kind,
        attention,
        k,
        cols,
        instances: h * b,
        macs,
        dense_macs: macs,
        ..base.clone()
    };
    let ops = [
        Op {
            output: Some(qkv_t),
            ..linear("qkv", LinearClass::Qkv, p.qkv, d, 3 * d, x)
        },
        Op {
            input: view(qkv_t, 0),
            kv: view(qkv_t, d),
            ..head_op("scores", Role::Scores, OpKind::DenseDense, dh, s, attn_macs)
        },
        Op {
            output: Some(p_t),
            ..head_op("softmax", Role::Softmax, OpKind::Softmax, 0, s, 0)
        },
        Op {
            input: view(p_t, 0),
            kv: view(qkv_t, 2 * d),
            output: Some(context_t),
            ..head_op("pv", Role::Pv, OpKind::DenseDense, s, dh, attn_macs)
        },
        linear("proj", LinearClass::Proj, p.proj, d, d, context_t),
        vector("add_ln1", VectorOp::AddLayerNorm, d, Some(x), hidden_t, 0),
        linear("ffn1", LinearClass::Ffn1, p.ffn1, d, f, hidden_t),
        vector("gelu", VectorOp::Gelu, f, None, ffn_t, 0),
        linear("ffn2", LinearClass::Ffn2, p.ffn2, f, d, ffn_t),
        vector(
            "add_ln2",
            VectorOp::AddLayerNorm,
            d,
            Some(hidden_t),
            out_t,
            1,
        ),
    ];
    g.ops.extend(ops);
    out_t
}

/// Lowers `layers` post-LN layers after the model input; the last layer's output lives in
/// DRAM (the model output).
pub(crate) fn post_ln_model(w: &Workload, causal: bool) -> Graph {
    let mut g = Graph::default();
    let mut x = input_tensor(w, &mut g);
    for layer in 0..w.layers {
        x = post_ln_layer(w, layer, causal, x, &mut g);
    }
    g.tensors[x.0 as usize].home = Home::Dram;
    g
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
            phase: crate::workload::Phase::Prefill,
        }
    }

    #[test]
    fn every_stored_tensor_is_written_once_before_it_is_read() {
        for model in ["bert-base", "gpt2-small"] {
            let g = lower(&workload(model));
            assert_eq!(g.ops.len(), 20);
            let mut written = vec![TensorId(0)];
            for o in &g.ops {
                let reads = [o.input.map(|v| v.tensor), o.kv.map(|v| v.tensor), o.operand];
                for t in reads.into_iter().flatten() {
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
            assert_eq!(
                written.len(),
                g.tensors.len(),
                "{model}: a tensor never written"
            );
            let out = g.output().unwrap();
            assert_eq!(g.tensor(out).home, Home::Dram);
            assert_eq!(g.tensor(out).name(), "L1.add_ln2");
        }
    }

    #[test]
    fn a_vector_op_follows_the_matmul_it_is_fused_to() {
        let g = lower(&workload("bert-base"));
        for (i, o) in g.ops.iter().enumerate() {
            if o.vector_op().is_some() {
                assert!(
                    matches!(g.ops[i - 1].role, Role::Linear { .. }),
                    "{}",
                    o.name
                );
                assert_eq!(g.ops[i - 1].cols, o.cols);
                assert_eq!(g.chain(i - 1), i..i + 1);
            }
        }
    }

    #[test]
    fn causal_attention_counts_the_lower_triangle() {
        let (b, g) = (workload("bert-base"), workload("gpt2-small"));
        let scores = |w: &Workload| lower(w).ops[1].macs;
        // 12 heads x 2 batch x 64: s*s pairs against s*(s+1)/2.
        assert_eq!(scores(&b), 16 * 16 * 64 * 12 * 2);
        assert_eq!(scores(&g), 16 * 17 / 2 * 64 * 12 * 2);
    }

    #[test]
    fn a_head_writes_its_rows_of_p_and_its_columns_of_the_context() {
        let g = lower(&workload("bert-base"));
        let (sm, pv) = (&g.ops[2], &g.ops[3]);
        // Instance 13 = batch 1, head 1 (12 heads): P rows 16.., context columns 64..
        assert_eq!(sm.out_at(13), (1, 16, 0));
        assert_eq!(pv.out_at(13), (1, 0, 64));
        assert_eq!(g.ops[0].out_at(1), (1, 0, 0));
    }

    #[test]
    fn grouped_query_heads_share_their_key_value_head() {
        let a = Attention {
            heads: 8,
            kv_heads: 2,
            head_dim: 64,
            causal: true,
            grouped: false,
        };
        let kv: Vec<u64> = (0..8).map(|h| a.kv_head(h)).collect();
        assert_eq!(kv, [0, 0, 0, 0, 1, 1, 1, 1]);
    }

    #[test]
    fn vector_op_costs_are_their_passes() {
        use VectorOp::*;
        let passes: Vec<u32> = [
            Add,
            Mul,
            LayerNorm,
            AddLayerNorm,
            RmsNorm,
            Gelu,
            Silu,
            SiluMul,
            Rotary,
        ]
        .iter()
        .map(|v| v.passes())
        .collect();
        assert_eq!(passes, [1, 1, 2, 3, 2, 1, 1, 2, 2]);
    }
}
