//! BERT-style encoders (BERT, DeiT, MiniLM) lowered into the IR: every layer is the
//! post-LayerNorm Transformer layer of [`super::post_ln_layer`] with bidirectional
//! attention (STA.md, "One Transformer encoder layer").

use super::Op;
use crate::workload::Workload;

/// The ops of every simulated layer of encoder `w`.
pub fn lower(w: &Workload) -> Vec<Op> {
    let mut out = Vec::new();
    for layer in 0..w.layers {
        super::post_ln_layer(w, layer, false, &mut out);
    }
    out
}
