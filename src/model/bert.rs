//! BERT-style encoders (BERT, DeiT, MiniLM) lowered into the IR: every layer is the
//! post-LayerNorm Transformer layer of [`super::post_ln_layer`] with bidirectional
//! attention (STA.md, "One Transformer encoder layer").

use super::Graph;
use crate::workload::Workload;

/// The ops of every simulated layer of encoder `w`.
pub fn lower(w: &Workload) -> Graph {
    super::post_ln_model(w, false)
}
