//! Reading safetensors checkpoints of BERT-style encoders.
//!
//! Linear weights are recognised by name (`encoder.layer.{i}.` then, optionally after a
//! `bert.` prefix): `attention.self.{query,key,value}.weight` (class `qkv`),
//! `attention.output.dense.weight` (`proj`), `intermediate.dense.weight` (`ffn1`),
//! `output.dense.weight` (`ffn2`). They must be 2-D floating point (F32, F16 or BF16).
//! Everything else (embeddings, LayerNorm, biases) is left dense.

use safetensors::Dtype;
use safetensors::tensor::TensorView;

/// Which class of linear layer a weight belongs to.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// Query, key or value projection.
    Qkv,
    /// Attention output projection.
    Proj,
    /// FFN up.
    Ffn1,
    /// FFN down.
    Ffn2,
}

impl Class {
    /// `qkv`, `proj`, `ffn1`, `ffn2`.
    pub fn name(self) -> &'static str {
        match self {
            Class::Qkv => "qkv",
            Class::Proj => "proj",
            Class::Ffn1 => "ffn1",
            Class::Ffn2 => "ffn2",
        }
    }
}

/// The layer and class of a linear weight, or `None` for other tensors.
pub fn classify(name: &str) -> Option<(u64, Class)> {
    let rest = name.strip_prefix("bert.").unwrap_or(name);
    let rest = rest.strip_prefix("encoder.layer.")?;
    let (layer, tail) = rest.split_once('.')?;
    let layer: u64 = layer.parse().ok()?;
    let class = match tail {
        "attention.self.query.weight"
        | "attention.self.key.weight"
        | "attention.self.value.weight" => Class::Qkv,
        "attention.output.dense.weight" => Class::Proj,
        "intermediate.dense.weight" => Class::Ffn1,
        "output.dense.weight" => Class::Ffn2,
        _ => return None,
    };
    Some((layer, class))
}

/// The tensor's values as f32 (F32, F16, BF16); an error names the unexpected dtype.
pub fn to_f32(view: &TensorView<'_>) -> Result<Vec<f32>, String> {
    let data = view.data();
    let out = match view.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        other => {
            return Err(format!(
                "dtype {other:?} is not a floating-point type (F32, F16, BF16)"
            ));
        }
    };
    Ok(out)
}
