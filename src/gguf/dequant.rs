//! The ggml tensor types a GGUF file names (id, block size, bytes per block) and the
//! dequantisation of the ones stasim loads: F32, F16, BF16, Q8_0, Q4_0 and Q4_1, with the block
//! layouts of ggml (`ggml-common.h`):
//!
//! - `Q8_0`: 32 elements in 34 bytes, an f16 scale `d` then 32 `i8` `q`; `x = q * d`.
//! - `Q4_0`: 32 elements in 18 bytes, an f16 `d` then 16 bytes; byte `j`'s low nibble is element
//!   `j`, its high nibble element `j + 16`; `x = (q - 8) * d`.
//! - `Q4_1`: 32 elements in 20 bytes, f16 `d`, f16 `m`, then 16 bytes as in `Q4_0`;
//!   `x = q * d + m`.
//!
//! The arithmetic is f32, rounded after each operation (product, then sum), as ggml's reference
//! `dequantize_row_*` and the `gguf` Python package compute it, so the values agree bit for bit.

use half::{bf16, f16};

/// A ggml tensor type: its id in the file, name, elements per block and bytes per block.
/// Every type ggml currently defines is known (so a file's tensor extents can be checked
/// whatever their type); only [`SUPPORTED`] ones can be dequantised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GgmlType {
    /// The type id stored in a tensor info.
    pub id: u32,
    /// ggml's name, e.g. `Q4_1`.
    pub name: &'static str,
    /// Elements per block (1 for plain types).
    pub block_elems: u64,
    /// Bytes per block.
    pub block_bytes: u64,
}

const fn t(id: u32, name: &'static str, block_elems: u64, block_bytes: u64) -> GgmlType {
    GgmlType {
        id,
        name,
        block_elems,
        block_bytes,
    }
}

/// `F32`.
pub const F32: GgmlType = t(0, "F32", 1, 4);
/// `F16`.
pub const F16: GgmlType = t(1, "F16", 1, 2);
/// `Q4_0`.
pub const Q4_0: GgmlType = t(2, "Q4_0", 32, 18);
/// `Q4_1`.
pub const Q4_1: GgmlType = t(3, "Q4_1", 32, 20);
/// `Q8_0`.
pub const Q8_0: GgmlType = t(8, "Q8_0", 32, 34);
/// `BF16`.
pub const BF16: GgmlType = t(30, "BF16", 1, 2);

/// Every ggml type (ids 4, 5 and 31..33, 36..38 were removed from ggml and are unknown).
pub const ALL: &[GgmlType] = &[
    F32,
    F16,
    Q4_0,
    Q4_1,
    t(6, "Q5_0", 32, 22),
    t(7, "Q5_1", 32, 24),
    Q8_0,
    t(9, "Q8_1", 32, 40),
    t(10, "Q2_K", 256, 84),
    t(11, "Q3_K", 256, 110),
    t(12, "Q4_K", 256, 144),
    t(13, "Q5_K", 256, 176),
    t(14, "Q6_K", 256, 210),
    t(15, "Q8_K", 256, 292),
    t(16, "IQ2_XXS", 256, 66),
    t(17, "IQ2_XS", 256, 74),
    t(18, "IQ3_XXS", 256, 98),
    t(19, "IQ1_S", 256, 50),
    t(20, "IQ4_NL", 32, 18),
    t(21, "IQ3_S", 256, 110),
    t(22, "IQ2_S", 256, 82),
    t(23, "IQ4_XS", 256, 136),
    t(24, "I8", 1, 1),
    t(25, "I16", 1, 2),
    t(26, "I32", 1, 4),
    t(27, "I64", 1, 8),
    t(28, "F64", 1, 8),
    t(29, "IQ1_M", 256, 56),
    BF16,
    t(34, "TQ1_0", 256, 54),
    t(35, "TQ2_0", 256, 66),
    t(39, "MXFP4", 32, 17),
];

/// The types [`dequantize`] handles.
pub const SUPPORTED: &[GgmlType] = &[F32, F16, BF16, Q8_0, Q4_0, Q4_1];

impl GgmlType {
    /// The type with file id `id`, if ggml defines it.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        ALL.iter().copied().find(|t| t.id == id)
    }

    /// Whether [`dequantize`] handles this type.
    pub fn is_supported(&self) -> bool {
        SUPPORTED.contains(self)
    }

    /// Bytes of a row of `elems` elements, or `None` if `elems` is not a whole number of
    /// blocks or the size overflows.
    pub fn row_bytes(&self, elems: u64) -> Option<u64> {
        if !elems.is_multiple_of(self.block_elems) {
            return None;
        }
        (elems / self.block_elems).checked_mul(self.block_bytes)
    }
}

/// The names of the supported types, for error messages: `F32, F16, ...`.
pub fn supported_list() -> String {
    SUPPORTED
        .iter()
        .map(|t| t.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The f32 values of `bytes`, which hold whole blocks of type `ty`; `Err` with the type's
/// name if it is not one of [`SUPPORTED`]. `bytes.len()` must be a multiple of the block size
/// (the caller sized it with [`GgmlType::row_bytes`]); a trailing partial block is ignored.
pub fn dequantize(ty: GgmlType, bytes: &[u8]) -> Result<Vec<f32>, &'static str> {
    let blocks = bytes.chunks_exact(ty.block_bytes as usize);
    let mut out = Vec::with_capacity(blocks.len() * ty.block_elems as usize);
    let half_at = |b: &[u8], i: usize| f16::from_le_bytes([b[i], b[i + 1]]).to_f32();
    match ty {
        F32 => out.extend(blocks.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        F16 => out.extend(blocks.map(|b| half_at(b, 0))),
        BF16 => out.extend(blocks.map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())),
        Q8_0 => {
            for b in blocks {
                let d = half_at(b, 0);
                out.extend(b[2..34].iter().map(|&q| f32::from(q as i8) * d));
            }
        }
        Q4_0 => {
            for b in blocks {
                let d = half_at(b, 0);
                let qs = &b[2..18];
                out.extend(qs.iter().map(|&q| f32::from((q & 0x0f) as i8 - 8) * d));
                out.extend(qs.iter().map(|&q| f32::from((q >> 4) as i8 - 8) * d));
            }
        }
        Q4_1 => {
            for b in blocks {
                let (d, m) = (half_at(b, 0), half_at(b, 2));
                let qs = &b[4..20];
                out.extend(qs.iter().map(|&q| f32::from(q & 0x0f) * d + m));
                out.extend(qs.iter().map(|&q| f32::from(q >> 4) * d + m));
            }
        }
        other => return Err(other.name),
    }
    Ok(out)
}
