//! The GPT-2 decoder lowered into the IR: the same ten ops a layer as the encoder, with
//! causal attention (a query sees the keys at or before it: score tiles above the diagonal
//! and their MACs are skipped).
//!
//! Known simplification: GPT-2 normalises *before* attention and the FFN (pre-LN) and adds
//! the residual after; this lowering keeps the encoder's post-LN arrangement, which has the
//! same matmuls, the same vector work per element, and the same traffic. A pre-LN layer can
//! be lowered now (a fused chain may store the residual stream beside its
//! normalisation), except the first layer's norm of the embedding, which no matmul
//! precedes; that, and the pre-LN GPT-2 and Llama lowerings, come with issue 14.

use super::Graph;
use crate::workload::Workload;

/// The ops of every simulated layer of decoder `w`.
pub fn lower(w: &Workload) -> Graph {
    super::post_ln_model(w, true)
}
