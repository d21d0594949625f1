//! Reading safetensors checkpoints of BERT-style encoders.
//!
//! Linear weights are recognised by name (`encoder.layer.{i}.` then, optionally after a
//! `bert.` prefix): `attention.self.{query,key,value}.weight` (class `qkv`),
//! `attention.output.dense.weight` (`proj`), `intermediate.dense.weight` (`ffn1`),
//! `output.dense.weight` (`ffn2`). They must be 2-D floating point (F32, F16 or BF16).
//! Everything else (embeddings, LayerNorm, biases) is left dense.
//!
//! A Llama-family decoder from a GGUF file names its linear weights `blk.{i}.` then
//! `attn_q`, `attn_k`, `attn_v` (class `qkv`), `attn_output` (`proj`), `ffn_gate`, `ffn_up`
//! (`ffn1`: both read the normed input) and `ffn_down` (`ffn2`), each `.weight`
//! ([`DecoderRole`]).
//!
//! Every read of an input file goes through [`read_input`] (a regular file, read whole) and
//! every safetensors buffer through [`open`] (offsets checked against the buffer before the
//! `safetensors` crate sees them), so a damaged checkpoint is an error, never a panic.

use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

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

/// The six linear weights of an encoder layer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// `attention.self.query.weight`.
    Query,
    /// `attention.self.key.weight`.
    Key,
    /// `attention.self.value.weight`.
    Value,
    /// `attention.output.dense.weight`.
    Proj,
    /// `intermediate.dense.weight`.
    Ffn1,
    /// `output.dense.weight`.
    Ffn2,
}

impl Role {
    /// Every role, in layer order.
    pub const ALL: [Role; 6] = [
        Role::Query,
        Role::Key,
        Role::Value,
        Role::Proj,
        Role::Ffn1,
        Role::Ffn2,
    ];

    /// The class of linear layer (Q, K and V are one class).
    pub fn class(self) -> Class {
        match self {
            Role::Query | Role::Key | Role::Value => Class::Qkv,
            Role::Proj => Class::Proj,
            Role::Ffn1 => Class::Ffn1,
            Role::Ffn2 => Class::Ffn2,
        }
    }

    /// The tensor name after `encoder.layer.{i}.`.
    pub fn suffix(self) -> &'static str {
        match self {
            Role::Query => "attention.self.query.weight",
            Role::Key => "attention.self.key.weight",
            Role::Value => "attention.self.value.weight",
            Role::Proj => "attention.output.dense.weight",
            Role::Ffn1 => "intermediate.dense.weight",
            Role::Ffn2 => "output.dense.weight",
        }
    }

    /// `[out, in]` of this weight in a model of hidden size `d` and FFN size `f`.
    pub fn shape(self, d: u64, f: u64) -> [u64; 2] {
        match self {
            Role::Ffn1 => [f, d],
            Role::Ffn2 => [d, f],
            _ => [d, d],
        }
    }
}

/// The seven linear weights of a Llama-family decoder layer (GGUF names).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DecoderRole {
    /// `attn_q.weight`, `[h dh, d]`.
    Query,
    /// `attn_k.weight`, `[hkv dh, d]`.
    Key,
    /// `attn_v.weight`, `[hkv dh, d]`.
    Value,
    /// `attn_output.weight`, `[d, h dh]`.
    Output,
    /// `ffn_gate.weight`, `[f, d]`.
    Gate,
    /// `ffn_up.weight`, `[f, d]`.
    Up,
    /// `ffn_down.weight`, `[d, f]`.
    Down,
}

impl DecoderRole {
    /// Every role, in layer order.
    pub const ALL: [DecoderRole; 7] = [
        DecoderRole::Query,
        DecoderRole::Key,
        DecoderRole::Value,
        DecoderRole::Output,
        DecoderRole::Gate,
        DecoderRole::Up,
        DecoderRole::Down,
    ];

    /// The class of linear layer (Q, K and V are one; gate and up are both `ffn1`).
    pub fn class(self) -> Class {
        match self {
            DecoderRole::Query | DecoderRole::Key | DecoderRole::Value => Class::Qkv,
            DecoderRole::Output => Class::Proj,
            DecoderRole::Gate | DecoderRole::Up => Class::Ffn1,
            DecoderRole::Down => Class::Ffn2,
        }
    }

    /// The tensor name after `blk.{i}.`.
    pub fn suffix(self) -> &'static str {
        match self {
            DecoderRole::Query => "attn_q.weight",
            DecoderRole::Key => "attn_k.weight",
            DecoderRole::Value => "attn_v.weight",
            DecoderRole::Output => "attn_output.weight",
            DecoderRole::Gate => "ffn_gate.weight",
            DecoderRole::Up => "ffn_up.weight",
            DecoderRole::Down => "ffn_down.weight",
        }
    }

    /// `[out, in]` of this weight with hidden size `d`, `h` query and `hkv` key/value heads
    /// of `dh`, and FFN size `f`.
    pub fn shape(self, d: u64, h: u64, hkv: u64, dh: u64, f: u64) -> [u64; 2] {
        match self {
            DecoderRole::Query => [h * dh, d],
            DecoderRole::Key | DecoderRole::Value => [hkv * dh, d],
            DecoderRole::Output => [d, h * dh],
            DecoderRole::Gate | DecoderRole::Up => [f, d],
            DecoderRole::Down => [d, f],
        }
    }
}

/// The layer of a decoder tensor named `blk.{i}.…`, or `None`.
pub fn decoder_block(name: &str) -> Option<(u64, &str)> {
    let (layer, tail) = name.strip_prefix("blk.")?.split_once('.')?;
    if layer.is_empty() || !layer.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((layer.parse().ok()?, tail))
}

/// The layer and role of a decoder's linear weight, or `None` for other tensors.
pub fn decoder_role(name: &str) -> Option<(u64, DecoderRole)> {
    let (layer, tail) = decoder_block(name)?;
    let role = DecoderRole::ALL.into_iter().find(|r| r.suffix() == tail)?;
    Some((layer, role))
}

/// The layer and role of a linear weight, or `None` for other tensors.
pub fn role(name: &str) -> Option<(u64, Role)> {
    let rest = name.strip_prefix("bert.").unwrap_or(name);
    let rest = rest.strip_prefix("encoder.layer.")?;
    let (layer, tail) = rest.split_once('.')?;
    // Digits only: `parse` would also take a leading `+`.
    if layer.is_empty() || !layer.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let layer: u64 = layer.parse().ok()?;
    let role = Role::ALL.into_iter().find(|r| r.suffix() == tail)?;
    Some((layer, role))
}

/// The layer and class of a linear weight, or `None` for other tensors.
pub fn classify(name: &str) -> Option<(u64, Class)> {
    role(name).map(|(l, r)| (l, r.class()))
}

/// The name of a safetensors dtype (`F32`, `I64`, ...).
pub fn dtype_name(d: Dtype) -> String {
    d.to_string()
}

/// The safetensors dtype called `name`, if there is one.
pub fn parse_dtype(name: &str) -> Option<Dtype> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

/// Whether `d` is a floating-point type stasim decodes (F32, F16, BF16).
pub fn is_decodable(d: Dtype) -> bool {
    matches!(d, Dtype::F32 | Dtype::F16 | Dtype::BF16)
}

/// Bytes of a tensor of `shape` and dtype `d`, or `None` when it overflows or is not a whole
/// number of bytes.
pub fn byte_len(d: Dtype, shape: &[u64]) -> Option<u64> {
    let elems = shape.iter().try_fold(1u64, |a, &x| a.checked_mul(x))?;
    let bits = elems.checked_mul(d.bitsize() as u64)?;
    (bits % 8 == 0).then_some(bits / 8)
}

/// Raw little-endian values of dtype `d` as f32, one at a time (F32, F16, BF16); an error
/// names the dtype.
pub fn values_of(d: Dtype, data: &[u8]) -> Result<impl Iterator<Item = f32> + '_, String> {
    let (size, decode): (usize, fn(&[u8]) -> f32) = match d {
        Dtype::F32 => (4, |c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        Dtype::F16 => (2, |c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()),
        Dtype::BF16 => (2, |c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()),
        other => {
            return Err(format!(
                "dtype {other} is not a floating-point type (F32, F16, BF16)"
            ));
        }
    };
    Ok(data.chunks_exact(size).map(decode))
}

/// Raw little-endian values of dtype `d` as f32 (F32, F16, BF16); an error names the dtype.
pub fn decode_f32(d: Dtype, data: &[u8]) -> Result<Vec<f32>, String> {
    Ok(values_of(d, data)?.collect())
}

/// The tensor's values as f32 (F32, F16, BF16); an error names the unexpected dtype.
pub fn to_f32(view: &TensorView<'_>) -> Result<Vec<f32>, String> {
    decode_f32(view.dtype(), view.data())
}

/// What is wrong with a value that is to be stored, if anything: NaN, infinite, or (with
/// `f16_store`) finite but beyond f16's range (it would be stored as infinity).
fn bad_value(v: f32, f16_store: bool) -> Option<&'static str> {
    if v.is_nan() {
        Some("is NaN")
    } else if v.is_infinite() {
        Some("is infinite")
    } else if f16_store && half::f16::from_f32(v).is_infinite() {
        Some("overflows f16 (largest finite 65504)")
    } else {
        None
    }
}

/// Checks that every value of tensor `name` (shape `shape`) is finite and, with `f16_store`,
/// representable in f16; an error names the tensor, the index and the value.
pub fn check_values(
    name: &str,
    shape: &[u64],
    values: impl IntoIterator<Item = f32>,
    f16_store: bool,
) -> Result<(), String> {
    let Some((i, x, what)) = values
        .into_iter()
        .enumerate()
        .find_map(|(i, x)| bad_value(x, f16_store).map(|w| (i, x, w)))
    else {
        return Ok(());
    };
    let at = match shape {
        [_, cols] if *cols > 0 => format!("[{}, {}]", i as u64 / cols, i as u64 % cols),
        _ => format!("[{i}]"),
    };
    Err(format!(
        "tensor `{name}`: the value at {at} (flat index {i}) {what}: {x}; stasim stores pruned \
         weights as f16 and refuses values it cannot store"
    ))
}

/// Reads a whole input file of at most `max_bytes`; refuses what is not a regular file (a
/// FIFO or `/dev/zero` would never end) and a file that does not fit in memory. Errors name
/// the file.
pub fn read_input(path: &Path, max_bytes: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let named = |m: String| format!("`{}`: {m}", path.display());
    let mut file = std::fs::File::open(path).map_err(|e| named(format!("cannot read: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| named(format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(named("not a regular file".into()));
    }
    let len = meta.len();
    if len > max_bytes {
        return Err(named(format!(
            "{len} bytes, more than the {max_bytes} this file may have"
        )));
    }
    let mut bytes = Vec::new();
    usize::try_from(len)
        .ok()
        .and_then(|n| bytes.try_reserve_exact(n).ok())
        .ok_or_else(|| named(format!("cannot hold the {len}-byte file in memory")))?;
    file.read_to_end(&mut bytes)
        .map_err(|e| named(format!("cannot read: {e}")))?;
    Ok(bytes)
}

/// Parses a safetensors buffer. The offsets are first checked against the buffer's length:
/// `safetensors` 0.8 adds the last end offset and the header length unchecked, so eight
/// tensors of 2^61 - 1 bytes (the test below) panic in a debug build and wrap in release.
pub fn open(bytes: &[u8]) -> Result<SafeTensors<'_>, String> {
    let bad = |m: String| format!("not a valid safetensors file: {m}");
    let len_bytes: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            bad(format!(
                "{} bytes, shorter than its 8-byte header length",
                bytes.len()
            ))
        })?;
    let n = u64::from_le_bytes(len_bytes);
    let header = usize::try_from(n)
        .ok()
        .and_then(|n| bytes.get(8..8usize.checked_add(n)?))
        .ok_or_else(|| {
            bad(format!(
                "the header length {n} runs past the end of the file ({} bytes)",
                bytes.len()
            ))
        })?;
    let data_len = (bytes.len() - 8 - header.len()) as u64;
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(header) {
        for (name, info) in &map {
            let Some(offsets) = info.get("data_offsets").and_then(|o| o.as_array()) else {
                continue;
            };
            for o in offsets {
                if let Some(o) = o.as_u64()
                    && o > data_len
                {
                    return Err(bad(format!(
                        "tensor `{name}`: data offset {o} lies past the end of the data \
                         ({data_len} bytes)"
                    )));
                }
            }
        }
    }
    SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_follow_the_names() {
        assert_eq!(
            role("bert.encoder.layer.3.intermediate.dense.weight"),
            Some((3, Role::Ffn1))
        );
        assert_eq!(
            classify("encoder.layer.0.attention.self.key.weight"),
            Some((0, Class::Qkv))
        );
        assert_eq!(role("encoder.layer.+1.output.dense.weight"), None);
        assert_eq!(role("encoder.layer.1.output.dense.bias"), None);
        assert_eq!(parse_dtype("BF16"), Some(Dtype::BF16));
        assert_eq!(parse_dtype("F33"), None);
        assert_eq!(byte_len(Dtype::F16, &[3, 5]), Some(30));
        assert_eq!(byte_len(Dtype::F32, &[1 << 62, 4]), None);
        assert_eq!(byte_len(Dtype::F4, &[3]), None);
        assert_eq!(
            decoder_role("blk.12.ffn_up.weight"),
            Some((12, DecoderRole::Up))
        );
        assert_eq!(decoder_role("blk.1.attn_norm.weight"), None);
        assert_eq!(decoder_role("blk.+1.attn_q.weight"), None);
        assert_eq!(DecoderRole::Up.class(), Class::Ffn1);
    }

    #[test]
    fn values_that_cannot_be_stored_are_named() {
        let e = check_values("w", &[2, 3], [0.0, 1.0, 2.0, 3.0, 7e4, 0.0], true).unwrap_err();
        assert!(
            e.contains("`w`") && e.contains("[1, 1]") && e.contains("overflows f16"),
            "{e}"
        );
        let e = check_values("b", &[3], [0.0, f32::NAN, 1.0], false).unwrap_err();
        assert!(e.contains("[1]") && e.contains("NaN"), "{e}");
        // 65519 still rounds to 65504; only values beyond f16's range are refused.
        check_values("w", &[1, 2], [65519.0, -65504.0], true).unwrap();
        check_values("x", &[1], [7e4], false).unwrap();
    }

    /// Eight contiguous tensors of 2^61 - 1 bytes end at 2^64 - 8: the `safetensors` crate
    /// adds the header length to that unchecked (a panic in a debug build).
    fn offsets_near_2_pow_64() -> Vec<u8> {
        let size = (1u64 << 61) - 1;
        let tensors: Vec<String> = (0..8u64)
            .map(|i| {
                format!(
                    "\"t{i}\":{{\"dtype\":\"U8\",\"shape\":[{size}],\"data_offsets\":[{},{}]}}",
                    i * size,
                    (i + 1) * size
                )
            })
            .collect();
        let header = format!("{{{}}}", tensors.join(","));
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.push(0);
        bytes
    }

    #[test]
    fn offsets_past_the_buffer_are_an_error_not_an_overflow() {
        let bytes = offsets_near_2_pow_64();
        let e = open(&bytes).unwrap_err();
        assert!(e.contains("past the end"), "{e}");
        assert!(open(&bytes[..5]).is_err());
        assert!(
            open(&bytes[..12])
                .unwrap_err()
                .contains("runs past the end")
        );
    }
}
