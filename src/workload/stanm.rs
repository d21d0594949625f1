//! `.stanm`: a pruned checkpoint in STA's compressed N:M format, and `stasim prune`.
//!
//! # File layout (format version 2)
//! ```text
//! "STANM002"                 8 bytes, magic and format version
//! header length H            u64, little endian
//! header                     H bytes of JSON (below)
//! data                       D bytes: the blobs the header points at, in header order
//! CRC-32                     u32, little endian: CRC-32 (IEEE, as zlib) of every byte before it
//! ```
//! Header: `{"format": "stanm-2", "values": "f16", "source": ..., "config": {"hidden",
//! "heads", "ffn", "layers"}, "data_bytes": D, "tensors": [...]}`; a Llama-family decoder
//! (pruned from a GGUF, [`crate::gguf::prune`]) adds `config.decoder`: `{"kv_heads",
//! "head_dim", "vocab", "rope_theta", "rms_eps", "tied_embeddings", "qkv_bias",
//! "max_context", "qk_rows_permuted"}` (an optional key: files without it read as before, so
//! the format stays version 2; an older stasim refuses a decoder file by its tensor names).
//! A pruned linear weight is
//! `{"name", "layer", "class", "shape": [out, in], "patterns": [densest, ..., sparsest],
//! "values": [offset, len], "indices": [offset, len], "tags": [offset, len]}` with offsets
//! relative to the data section, in the layout of [`super::prune`]. Any other tensor is
//! `{"name", "dtype", "shape", "data": [offset, len]}`, copied unchanged.
//!
//! # Reading
//! Every reader ([`load_model`] for a timing run, [`read_tensors`] for a functional one,
//! [`verify`]) goes through one check: the version, the file's length against the header
//! length and `data_bytes`, the checksum, then every tensor's offsets, lengths, shape, dtype
//! and patterns against the data size (blobs are contiguous, in header order, with exactly the
//! length their shape and patterns give), and the config against the tensors (hidden, heads
//! dividing it, FFN, and every layer's six linear weights with their shapes; a decoder's
//! seven, `blk.{i}.attn_q/attn_k/attn_v/attn_output/ffn_gate/ffn_up/ffn_down.weight`, with
//! the shapes of its grouped-query attention and SwiGLU, and its embedding `[V, d]`, and an
//! `output.weight` `[V, d]` exactly when the lm_head is untied). Only then is
//! anything sized by the header allocated, so every allocation is bounded by the file.
//!
//! # Writing
//! Offsets follow from shapes and patterns alone, so the header is written first and the
//! tensors are then pruned and written one at a time: one tensor's f32 copy at a time is all
//! that is held beside the input file. The header goes through the reader's check before
//! anything is written. The output goes through [`crate::io::AtomicFile`] (a unique
//! temporary beside it, renamed into place when complete).

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use safetensors::Dtype;
use serde::{Deserialize, Serialize};

use super::checkpoint::{
    Class, DecoderRole, Role, byte_len, check_values, decode_f32, decoder_role, dtype_name,
    is_decodable, open, parse_dtype, read_input, role, to_f32, values_of,
};
use super::nm::Pattern;
use super::prune::{Mask, Packed, apply, index_bits, pack, prune_family, unpack, unpack_slots};
use crate::io::{AtomicFile, OutputError};

/// The format version this stasim writes and reads.
pub const FORMAT_VERSION: u32 = 2;
/// Magic and version, the first 8 bytes.
const MAGIC: &[u8; 8] = b"STANM002";
/// The header's `format`.
const FORMAT: &str = "stanm-2";
/// Magic and header length.
const PREAMBLE_BYTES: u64 = 16;
/// The CRC-32 at the end.
const TRAILER_BYTES: u64 = 4;
/// Largest header read (a header lists tensors: MiniLM's is 14 kB).
const MAX_HEADER_BYTES: u64 = 1 << 30;
/// Largest `config.json` read beside a checkpoint (they are a few kB).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// How to prune: one pattern per class, or one family for every linear weight.
#[derive(Clone, Debug)]
pub enum Scheme {
    /// Per-class patterns (`2:4`, or `qkv=..,proj=..,ffn1=..,ffn2=..`).
    Patterns(super::Patterns),
    /// A nested family of one M, densest first.
    Family(Vec<Pattern>),
}

impl Scheme {
    pub(crate) fn for_class(&self, c: Class) -> Vec<Pattern> {
        match self {
            Scheme::Family(f) => f.clone(),
            Scheme::Patterns(p) => vec![match c {
                Class::Qkv => p.qkv,
                Class::Proj => p.proj,
                Class::Ffn1 => p.ffn1,
                Class::Ffn2 => p.ffn2,
            }],
        }
    }

    /// Every family the scheme prunes with is a valid one (see [`check_family`]).
    pub(crate) fn check(&self) -> Result<(), String> {
        match self {
            Scheme::Family(f) => check_family(f),
            Scheme::Patterns(p) => p.all().iter().try_for_each(|&x| check_family(&[x])),
        }
    }
}

/// A family is one or more sparse patterns of one M, N strictly falling (densest first).
fn check_family(fam: &[Pattern]) -> Result<(), String> {
    let list = || {
        fam.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(first) = fam.first() else {
        return Err("no pattern given".into());
    };
    if fam.iter().any(|p| p.is_dense() || p.n == 0 || p.n > p.m) {
        return Err(format!(
            "patterns {}: every member must be a sparse N:M (1 <= N < M); dense is not pruning",
            list()
        ));
    }
    if fam.iter().any(|p| p.m != first.m) || fam.windows(2).any(|w| w[1].n >= w[0].n) {
        return Err(format!(
            "patterns {}: a family's members share one M and go from densest to sparsest",
            list()
        ));
    }
    Ok(())
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct Entry {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    layer: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    class: Option<String>,
    shape: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dtype: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    patterns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    values: Option<(u64, u64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    indices: Option<(u64, u64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tags: Option<(u64, u64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<(u64, u64)>,
}

/// The model's shape, recorded at pruning time (heads from a `config.json` beside the
/// checkpoint, else the largest divisor of `hidden` up to `hidden / 64`; a GGUF's from its
/// metadata).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct Config {
    pub(crate) hidden: u64,
    pub(crate) heads: u64,
    pub(crate) ffn: u64,
    pub(crate) layers: u64,
    /// A Llama-family decoder's shape beyond these (absent: a BERT-style encoder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) decoder: Option<DecoderConfig>,
}

/// A Llama-family decoder's shape in a `.stanm` header (the GGUF metadata it came from).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct DecoderConfig {
    /// Key/value heads `hkv` (a divisor of `heads`).
    pub(crate) kv_heads: u64,
    /// Head size `dh`.
    pub(crate) head_dim: u64,
    /// Vocabulary `V`.
    pub(crate) vocab: u64,
    /// Rotary base.
    pub(crate) rope_theta: f64,
    /// RMSNorm epsilon.
    pub(crate) rms_eps: f64,
    /// The lm_head is the embedding table (no `output.weight`).
    pub(crate) tied_embeddings: bool,
    /// Q, K and V have biases (`blk.{i}.attn_q.bias`, ...; Qwen2).
    pub(crate) qkv_bias: bool,
    /// Longest context trained for.
    pub(crate) max_context: u64,
    /// Q and K rows are in llama.cpp's interleaved rotary order (a `llama` GGUF): a
    /// functional run puts them back in rotate-half order.
    pub(crate) qk_rows_permuted: bool,
}

/// Where a linear weight sits in its layer: one of an encoder's six or a decoder's seven.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Place {
    Encoder(Role),
    Decoder(DecoderRole),
}

impl Place {
    /// The layer and place of tensor `name` in an encoder's or (`decoder`) a decoder's file.
    fn of(name: &str, decoder: bool) -> Option<(u64, Place)> {
        if decoder {
            decoder_role(name).map(|(l, r)| (l, Place::Decoder(r)))
        } else {
            role(name).map(|(l, r)| (l, Place::Encoder(r)))
        }
    }

    /// Linear weights a layer has.
    fn per_layer(decoder: bool) -> usize {
        if decoder {
            DecoderRole::ALL.len()
        } else {
            Role::ALL.len()
        }
    }

    /// Position in the layer (`Role::ALL` or `DecoderRole::ALL` order).
    fn slot(self) -> usize {
        match self {
            Place::Encoder(r) => Role::ALL.iter().position(|x| *x == r).unwrap_or(0),
            Place::Decoder(r) => DecoderRole::ALL.iter().position(|x| *x == r).unwrap_or(0),
        }
    }

    fn class(self) -> Class {
        match self {
            Place::Encoder(r) => r.class(),
            Place::Decoder(r) => r.class(),
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Place::Encoder(r) => r.suffix(),
            Place::Decoder(r) => r.suffix(),
        }
    }

    /// The suffix of slot `i` in a layer.
    fn suffix_of_slot(decoder: bool, i: usize) -> &'static str {
        if decoder {
            DecoderRole::ALL[i].suffix()
        } else {
            Role::ALL[i].suffix()
        }
    }

    /// `[out, in]` under config `c`.
    fn shape(self, c: &Config) -> [u64; 2] {
        match (self, &c.decoder) {
            (Place::Decoder(r), Some(d)) => {
                r.shape(c.hidden, c.heads, d.kv_heads, d.head_dim, c.ffn)
            }
            (Place::Encoder(r), _) => r.shape(c.hidden, c.ffn),
            // `of` parses decoder names only for a decoder config.
            (Place::Decoder(_), None) => [0, 0],
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct Header {
    format: String,
    values: String,
    source: String,
    #[serde(default)]
    config: Option<Config>,
    /// Bytes of the data section.
    data_bytes: u64,
    tensors: Vec<Entry>,
}

fn err(path: &Path, msg: impl Into<String>) -> String {
    format!("`{}`: {}", path.display(), msg.into())
}

// ---------------------------------------------------------------------------------------
// The check every reader and the writer share.
// ---------------------------------------------------------------------------------------

/// A byte range of the data section, inside it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Span {
    start: usize,
    len: usize,
}

impl Span {
    fn of(self, data: &[u8]) -> &[u8] {
        &data[self.start..self.start + self.len]
    }
}

/// A pruned linear weight whose header entry passed the check.
#[derive(Clone, Debug)]
struct PrunedEntry {
    name: String,
    layer: u64,
    place: Place,
    rows: usize,
    k: usize,
    /// Densest first.
    family: Vec<Pattern>,
    values: Span,
    indices: Span,
    tags: Span,
}

impl PrunedEntry {
    fn packed(&self, data: &[u8]) -> Packed {
        Packed {
            values: self.values.of(data).to_vec(),
            indices: self.indices.of(data).to_vec(),
            tags: self.tags.of(data).to_vec(),
        }
    }

    /// The position of `member` in the family (densest first), default the densest.
    fn member_index(&self, member: Option<Pattern>) -> Result<usize, String> {
        match member {
            None => Ok(0),
            Some(m) => self.family.iter().position(|p| *p == m).ok_or_else(|| {
                format!(
                    "tensor `{}` has no member {m} (it has {})",
                    self.name,
                    self.family
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }),
        }
    }

    /// The slots of family member `j` (densest first), checked.
    fn slots(&self, data: &[u8], j: usize) -> Result<Vec<(f32, u32)>, String> {
        let fam = self.family.len();
        let slots = unpack_slots(
            &self.packed(data),
            self.rows,
            self.k,
            self.family[0],
            fam,
            fam - 1 - j,
            self.family[j].n as usize,
        )
        .map_err(|m| format!("tensor `{}`: {m}", self.name))?;
        match slots.iter().position(|s| !s.0.is_finite()) {
            Some(i) => Err(format!(
                "tensor `{}`: stored value {i} is {} (the file holds a value no pruning writes)",
                self.name, slots[i].0
            )),
            None => Ok(slots),
        }
    }
}

/// Any other tensor whose header entry passed the check.
#[derive(Clone, Debug)]
struct DenseEntry {
    name: String,
    dtype: Dtype,
    shape: Vec<u64>,
    data: Span,
}

#[derive(Clone, Debug)]
enum Checked {
    Pruned(PrunedEntry),
    Dense(DenseEntry),
}

/// A header that passed the check: every tensor, the config, and for each layer the index in
/// `tensors` of each of its six linear weights ([`Role::ALL`] order; a decoder's seven,
/// [`DecoderRole::ALL`] order).
#[derive(Clone, Debug)]
struct Layout {
    config: Config,
    tensors: Vec<Checked>,
    layers: Vec<Vec<usize>>,
}

/// Bytes of values, indices and tags of a `rows x k` weight stored with densest pattern
/// `dense` in a family of `fam` members; `None` when they overflow.
fn stored_sizes(rows: u64, k: u64, dense: Pattern, fam: usize) -> Option<(u64, u64, u64)> {
    let slots = rows
        .checked_mul(k.div_ceil(u64::from(dense.m)))?
        .checked_mul(u64::from(dense.n))?;
    let tb = if fam > 1 {
        u64::from(index_bits(u32::try_from(fam).ok()?))
    } else {
        0
    };
    let bits = |b: u64| slots.checked_mul(b).map(|x| x.div_ceil(8));
    Some((
        slots.checked_mul(2)?,
        bits(u64::from(index_bits(dense.m)))?,
        bits(tb)?,
    ))
}

/// A group cannot keep more weights than a row has: `N <= K` (otherwise every row would be
/// padded to N slots, unbounded by the weights).
fn check_fits(name: &str, k: u64, densest: Pattern) -> Result<(), String> {
    if u64::from(densest.n) > k {
        return Err(format!(
            "tensor `{name}` has {k} inputs, fewer than the N = {} weights {densest} keeps per \
             group",
            densest.n
        ));
    }
    Ok(())
}

fn shape_text(s: &[u64]) -> String {
    format!(
        "[{}]",
        s.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The check of a header against itself and its `data_bytes` (which the readers have
/// compared with the file's length). Messages name the tensor or key, not the file.
fn check_header(h: &Header) -> Result<Layout, String> {
    if h.format != FORMAT {
        return Err(format!(
            "the header says format `{}`, this stasim reads `{FORMAT}`",
            h.format
        ));
    }
    if h.values != "f16" {
        return Err(format!(
            "values are `{}`; this stasim stores and reads `f16`",
            h.values
        ));
    }
    let data_bytes = h.data_bytes;
    let mut at = 0u64;
    // The next blob: it must start where the last ended, have length `want`, and end inside
    // the data section.
    let mut span = |name: &str, what: &str, s: Option<(u64, u64)>, want: u64| {
        let (o, l) = s.ok_or_else(|| format!("tensor `{name}` has no `{what}`"))?;
        if l != want {
            return Err(format!(
                "tensor `{name}`: `{what}` is {l} bytes long, its shape and patterns need {want}"
            ));
        }
        if o != at {
            return Err(format!(
                "tensor `{name}`: `{what}` starts at offset {o}, expected {at} (blobs follow \
                 each other in header order)"
            ));
        }
        let end = at
            .checked_add(l)
            .filter(|&e| e <= data_bytes)
            .ok_or_else(|| {
                format!(
                    "tensor `{name}`: `{what}` ({l} bytes at offset {o}) runs past the end of the \
                 data section ({data_bytes} bytes)"
                )
            })?;
        at = end;
        // Inside `data_bytes`, which the reader has matched with the file: fits in memory.
        Ok::<Span, String>(Span {
            start: o as usize,
            len: l as usize,
        })
    };
    let mut names = HashSet::new();
    let mut tensors = Vec::with_capacity(h.tensors.len());
    let decoder = h.config.as_ref().is_some_and(|c| c.decoder.is_some());
    for e in &h.tensors {
        let name = e.name.as_str();
        if !names.insert(name) {
            return Err(format!("tensor `{name}` appears twice"));
        }
        let t = match e.layer {
            Some(layer) => {
                let r = match Place::of(name, decoder) {
                    Some((l, r)) if l == layer => r,
                    _ => {
                        let form = if decoder {
                            format!("`blk.{layer}.…weight`, a decoder's")
                        } else {
                            format!("`encoder.layer.{layer}.…weight`")
                        };
                        return Err(format!(
                            "tensor `{name}` is stored pruned as layer {layer}, but its name is \
                             not a linear weight of that layer ({form})"
                        ));
                    }
                };
                if e.class.as_deref() != Some(r.class().name()) {
                    return Err(format!(
                        "tensor `{name}` has class {:?}, expected `{}`",
                        e.class,
                        r.class().name()
                    ));
                }
                if e.dtype.is_some() || e.data.is_some() {
                    return Err(format!(
                        "tensor `{name}` is pruned and also has a `dtype` or `data`"
                    ));
                }
                let (rows, k) = match e.shape.as_slice() {
                    &[rows, k] if rows >= 1 && k >= 1 => (rows, k),
                    s => {
                        return Err(format!(
                            "tensor `{name}` has shape {}; a pruned linear weight is [out, in], \
                             both at least 1",
                            shape_text(s)
                        ));
                    }
                };
                let family = e
                    .patterns
                    .iter()
                    .map(|p| Pattern::parse(p).map_err(|m| format!("tensor `{name}`: {m}")))
                    .collect::<Result<Vec<_>, _>>()?;
                check_family(&family).map_err(|m| format!("tensor `{name}`: {m}"))?;
                check_fits(name, k, family[0])?;
                let (v, i, tg) =
                    stored_sizes(rows, k, family[0], family.len()).ok_or_else(|| {
                        format!(
                            "tensor `{name}`: {} with {} has more slots than can be counted",
                            shape_text(&e.shape),
                            family[0]
                        )
                    })?;
                Checked::Pruned(PrunedEntry {
                    name: name.to_owned(),
                    layer,
                    place: r,
                    values: span(name, "values", e.values, v)?,
                    indices: span(name, "indices", e.indices, i)?,
                    tags: span(name, "tags", e.tags, tg)?,
                    // At most the data's length (each row has at least one slot), and k at
                    // most the groups times M: both fit a usize.
                    rows: usize::try_from(rows)
                        .map_err(|_| format!("tensor `{name}`: {rows} rows"))?,
                    k: usize::try_from(k).map_err(|_| format!("tensor `{name}`: {k} inputs"))?,
                    family,
                })
            }
            None => {
                if e.class.is_some()
                    || !e.patterns.is_empty()
                    || e.values.is_some()
                    || e.indices.is_some()
                    || e.tags.is_some()
                {
                    return Err(format!(
                        "tensor `{name}` has no `layer` but has pruned fields (class, patterns, \
                         values, indices or tags)"
                    ));
                }
                let dt = e
                    .dtype
                    .as_deref()
                    .ok_or_else(|| format!("tensor `{name}` has no `dtype`"))?;
                let dtype = parse_dtype(dt).ok_or_else(|| {
                    format!("tensor `{name}` has dtype `{dt}`, not a safetensors dtype")
                })?;
                let len = byte_len(dtype, &e.shape).ok_or_else(|| {
                    format!(
                        "tensor `{name}`: shape {} of {dt} has no size in whole bytes (it \
                         overflows or is fractional)",
                        shape_text(&e.shape)
                    )
                })?;
                Checked::Dense(DenseEntry {
                    name: name.to_owned(),
                    dtype,
                    shape: e.shape.clone(),
                    data: span(name, "data", e.data, len)?,
                })
            }
        };
        tensors.push(t);
    }
    if at != data_bytes {
        return Err(format!(
            "the tensors use {at} bytes of the {data_bytes}-byte data section"
        ));
    }
    let config = h
        .config
        .clone()
        .ok_or("the header records no model configuration (re-prune with this stasim)")?;
    let layers = check_config(&config, &tensors)?;
    Ok(Layout {
        config,
        tensors,
        layers,
    })
}

/// A decoder's config against its dense tensors: sizes at least 1, `kv_heads` dividing
/// `heads`, finite positive eps and theta, the embedding `[V, d]` and an `output.weight`
/// `[V, d]` exactly when the lm_head is untied.
fn check_decoder(c: &Config, d: &DecoderConfig, tensors: &[Checked]) -> Result<(), String> {
    for (key, v) in [
        ("kv_heads", d.kv_heads),
        ("head_dim", d.head_dim),
        ("vocab", d.vocab),
        ("max_context", d.max_context),
    ] {
        if v == 0 {
            return Err(format!("config.decoder.{key} = 0: it must be at least 1"));
        }
    }
    if !c.heads.is_multiple_of(d.kv_heads) {
        return Err(format!(
            "config.decoder.kv_heads = {} does not divide config.heads = {}",
            d.kv_heads, c.heads
        ));
    }
    for (key, v) in [("rope_theta", d.rope_theta), ("rms_eps", d.rms_eps)] {
        if !(v.is_finite() && v > 0.0) {
            return Err(format!(
                "config.decoder.{key} = {v}: it must be a positive number"
            ));
        }
    }
    let dense = |name: &str| {
        tensors.iter().find_map(|t| match t {
            Checked::Dense(x) if x.name == name => Some(x),
            _ => None,
        })
    };
    let table = [d.vocab, c.hidden];
    for (name, wanted) in [
        ("token_embd.weight", true),
        ("output.weight", !d.tied_embeddings),
    ] {
        match (dense(name), wanted) {
            (Some(t), true) if t.shape == table && is_decodable(t.dtype) => {}
            (Some(t), true) => {
                return Err(format!(
                    "tensor `{name}` is {} {}; the decoder needs a floating-point {}",
                    dtype_name(t.dtype),
                    shape_text(&t.shape),
                    shape_text(&table)
                ));
            }
            (None, true) => {
                return Err(format!(
                    "the decoder has no `{name}` (a floating-point {})",
                    shape_text(&table)
                ));
            }
            (Some(_), false) => {
                return Err(format!(
                    "tensor `{name}` is present, but config.decoder.tied_embeddings is true"
                ));
            }
            (None, false) => {}
        }
    }
    Ok(())
}

/// The config against the tensors: sizes at least 1, heads dividing hidden, `layers` layers
/// each with its six linear weights of the shapes hidden and FFN give (a decoder's seven,
/// of the shapes its heads, key/value heads and head size give too, [`check_decoder`]).
fn check_config(c: &Config, tensors: &[Checked]) -> Result<Vec<Vec<usize>>, String> {
    for (key, v) in [
        ("hidden", c.hidden),
        ("heads", c.heads),
        ("ffn", c.ffn),
        ("layers", c.layers),
    ] {
        if v == 0 {
            return Err(format!("config.{key} = 0: it must be at least 1"));
        }
    }
    match &c.decoder {
        // A decoder's heads need not divide hidden (head_dim is given).
        Some(d) => check_decoder(c, d, tensors)?,
        None if !c.hidden.is_multiple_of(c.heads) => {
            return Err(format!(
                "config.heads = {} does not divide config.hidden = {}",
                c.heads, c.hidden
            ));
        }
        None => {}
    }
    let pruned: Vec<(usize, &PrunedEntry)> = tensors
        .iter()
        .enumerate()
        .filter_map(|(i, t)| match t {
            Checked::Pruned(p) => Some((i, p)),
            Checked::Dense(_) => None,
        })
        .collect();
    let top = pruned
        .iter()
        .map(|(_, p)| p.layer.saturating_add(1))
        .max()
        .unwrap_or(0);
    if c.layers > top {
        return Err(format!(
            "config.layers = {}, but the file's {} linear weights are of {top} layers",
            c.layers,
            pruned.len()
        ));
    }
    if let Some((_, p)) = pruned.iter().find(|(_, p)| p.layer >= c.layers) {
        return Err(format!(
            "tensor `{}` is in layer {}, but config.layers = {}",
            p.name, p.layer, c.layers
        ));
    }
    // Checked before the per-layer table is allocated: it is sized by the tensors present.
    if c.layers > pruned.len() as u64 {
        return Err(format!(
            "config.layers = {}, but the file holds only {} linear weights: layers are missing",
            c.layers,
            pruned.len()
        ));
    }
    let decoder = c.decoder.is_some();
    let mut table = vec![vec![usize::MAX; Place::per_layer(decoder)]; c.layers as usize];
    for &(i, p) in &pruned {
        let cell = &mut table[p.layer as usize];
        let slot = p.place.slot();
        if cell[slot] != usize::MAX {
            return Err(format!(
                "layer {} has two `{}` tensors",
                p.layer,
                p.place.suffix()
            ));
        }
        let want = p.place.shape(c);
        if [p.rows as u64, p.k as u64] != want {
            let by = match &c.decoder {
                Some(d) => format!(
                    "hidden {}, heads {}, kv_heads {}, head_dim {}, ffn {}",
                    c.hidden, c.heads, d.kv_heads, d.head_dim, c.ffn
                ),
                None => format!("hidden {}, ffn {}", c.hidden, c.ffn),
            };
            return Err(format!(
                "tensor `{}` has shape [{}, {}]; config ({by}) needs {}",
                p.name,
                p.rows,
                p.k,
                shape_text(&want)
            ));
        }
        cell[slot] = i;
    }
    for (l, cell) in table.iter().enumerate() {
        if let Some(j) = cell.iter().position(|&i| i == usize::MAX) {
            return Err(format!(
                "layer {l} has no `{}` (config.layers = {})",
                Place::suffix_of_slot(decoder, j),
                c.layers
            ));
        }
    }
    Ok(table)
}

// ---------------------------------------------------------------------------------------
// Reading.
// ---------------------------------------------------------------------------------------

/// A `.stanm` file that passed every check; `data` is empty unless it was kept.
struct StanmFile {
    layout: Layout,
    data: Vec<u8>,
}

/// Reads `path`: version, lengths, checksum, then [`check_header`]. With `keep_data` the
/// data section is kept (a functional run or `--verify`), else only checksummed as it
/// streams by (a timing run needs only the header).
fn read_file(path: &Path, keep_data: bool) -> Result<StanmFile, String> {
    let e = |m: String| err(path, m);
    let mut f = std::fs::File::open(path).map_err(|x| e(format!("cannot read: {x}")))?;
    let meta = f.metadata().map_err(|x| e(format!("cannot read: {x}")))?;
    if !meta.is_file() {
        return Err(e("not a regular file".into()));
    }
    let len = meta.len();
    let truncated = |x: std::io::Error| e(format!("cannot read (truncated while reading?): {x}"));
    let mut head = [0u8; PREAMBLE_BYTES as usize];
    if len < PREAMBLE_BYTES + TRAILER_BYTES {
        return Err(e(format!(
            "{len} bytes: too short for a .stanm file (at least {})",
            PREAMBLE_BYTES + TRAILER_BYTES
        )));
    }
    f.read_exact(&mut head).map_err(truncated)?;
    check_magic(&head[..8]).map_err(e)?;
    let hlen = u64::from_le_bytes([
        head[8], head[9], head[10], head[11], head[12], head[13], head[14], head[15],
    ]);
    let room = len - PREAMBLE_BYTES - TRAILER_BYTES;
    if hlen > room || hlen > MAX_HEADER_BYTES {
        return Err(e(format!(
            "the header length {hlen} runs past the end of the file ({len} bytes): the file is \
             truncated or damaged"
        )));
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head);
    let mut json = vec![0u8; hlen as usize];
    f.read_exact(&mut json).map_err(truncated)?;
    crc.update(&json);
    let data_len = room - hlen;
    let mut data = Vec::new();
    if keep_data {
        usize::try_from(data_len)
            .ok()
            .and_then(|n| data.try_reserve_exact(n).ok())
            .ok_or_else(|| {
                e(format!(
                    "cannot hold the {data_len}-byte data section in memory"
                ))
            })?;
        (&mut f)
            .take(data_len)
            .read_to_end(&mut data)
            .map_err(truncated)?;
        if data.len() as u64 != data_len {
            return Err(e("the file shrank while it was read".into()));
        }
        crc.update(&data);
    } else {
        let mut buf = vec![0u8; 1 << 20];
        let mut left = data_len;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            f.read_exact(&mut buf[..n]).map_err(truncated)?;
            crc.update(&buf[..n]);
            left -= n as u64;
        }
    }
    let mut trailer = [0u8; TRAILER_BYTES as usize];
    f.read_exact(&mut trailer).map_err(truncated)?;
    let (stored, computed) = (u32::from_le_bytes(trailer), crc.finalize());
    let header: Result<Header, _> = serde_json::from_slice(&json);
    if let Ok(h) = &header
        && h.data_bytes != data_len
    {
        return Err(e(format!(
            "the header describes {} bytes of data, the file holds {data_len}: the file is \
             truncated or damaged",
            h.data_bytes
        )));
    }
    if stored != computed {
        return Err(e(format!(
            "checksum mismatch (CRC-32 0x{stored:08x} stored, 0x{computed:08x} computed): the \
             file is damaged"
        )));
    }
    let header = header.map_err(|x| e(format!("bad header: {x}")))?;
    let layout = check_header(&header).map_err(e)?;
    Ok(StanmFile { layout, data })
}

/// Whether the file at `path` starts with `STANM` (a `.stanm` file of some version).
pub fn is_stanm(path: &Path) -> bool {
    let mut magic = [0u8; 5];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"STANM"
}

/// The magic and version: `STANM` and three digits, `002` for this format.
fn check_magic(m: &[u8]) -> Result<(), String> {
    let Some(version) = m.strip_prefix(b"STANM") else {
        return Err("not a .stanm file (it does not start with `STANM`)".into());
    };
    if m == MAGIC {
        return Ok(());
    }
    let v = String::from_utf8_lossy(version);
    Err(match v.parse::<u32>() {
        Ok(1) => "format version 1: written by an older stasim, without a checksum; re-prune \
                  the source checkpoint with this stasim"
            .into(),
        Ok(n) => format!(
            "format version {n}: this stasim reads version {FORMAT_VERSION} (a newer stasim \
             wrote it?)"
        ),
        Err(_) => format!("not a .stanm file (version `{v}` after the magic)"),
    })
}

/// The family members a pruned file holds (densest first): the patterns of its first pruned
/// tensor's family (a file's pruned tensors share one family unless it was pruned per class).
pub fn members(path: &Path) -> Result<Vec<Pattern>, String> {
    let StanmFile { layout, .. } = read_file(path, false)?;
    layout
        .tensors
        .iter()
        .find_map(|t| match t {
            Checked::Pruned(p) => Some(p.family.clone()),
            Checked::Dense(_) => None,
        })
        .ok_or_else(|| err(path, "no pruned tensor"))
}

/// The model a pruned file describes: its shape and each layer's patterns (`member` picks a
/// family member; default the densest).
pub fn load_model(
    path: &Path,
    member: Option<Pattern>,
) -> Result<(super::ModelShape, Vec<super::Patterns>), String> {
    let StanmFile { layout, .. } = read_file(path, false)?;
    let pruned = |i: usize| match &layout.tensors[i] {
        Checked::Pruned(p) => Some(p),
        Checked::Dense(_) => None,
    };
    let mut patterns = Vec::with_capacity(layout.layers.len());
    for (l, cell) in layout.layers.iter().enumerate() {
        let mut chosen = Vec::with_capacity(cell.len());
        for &i in cell {
            let p =
                pruned(i).ok_or_else(|| err(path, format!("layer {l}: a weight is not pruned")))?;
            chosen.push(p.family[p.member_index(member).map_err(|m| err(path, m))?]);
        }
        // An encoder's [q, k, v, proj, ffn1, ffn2]; a decoder's [q, k, v, o, gate, up, down].
        let (q, k, v, proj, ffn1, ffn2) = match chosen[..] {
            [q, k, v, proj, gate, up, down] => {
                if gate != up {
                    return Err(err(
                        path,
                        format!(
                            "layer {l}: the gate and up projections have different patterns \
                             ({gate}, {up}); stasim runs both as class ffn1"
                        ),
                    ));
                }
                (q, k, v, proj, gate, down)
            }
            [q, k, v, proj, ffn1, ffn2] => (q, k, v, proj, ffn1, ffn2),
            _ => return Err(err(path, format!("layer {l}: a weight is missing"))),
        };
        if q != k || q != v {
            return Err(err(
                path,
                format!(
                    "layer {l}: Q, K and V have different patterns ({q}, {k}, {v}); STA runs them \
                     as one operation"
                ),
            ));
        }
        patterns.push(super::Patterns {
            qkv: q,
            proj,
            ffn1,
            ffn2,
        });
    }
    Ok((layout.config.shape(stem(path)), patterns))
}

impl Config {
    /// The model shape this config describes, named `name`.
    pub(crate) fn shape(&self, name: String) -> super::ModelShape {
        let decoder = self.decoder.as_ref().map(|d| super::Decoder {
            kv_heads: d.kv_heads,
            head_dim: d.head_dim,
            vocab: d.vocab,
            tied_embeddings: d.tied_embeddings,
            qkv_bias: d.qkv_bias,
            positions: super::Positions::Rotary {
                theta: d.rope_theta,
            },
            norm_eps: d.rms_eps,
            max_context: d.max_context,
        });
        super::ModelShape {
            name,
            hidden: self.hidden,
            heads: self.heads,
            ffn: self.ffn,
            layers: self.layers,
            default_seq: 128,
            causal: decoder.is_some(),
            decoder,
        }
    }
}

/// One tensor of a `.stanm` file, decoded.
#[derive(Clone, Debug)]
pub enum StoredTensor {
    /// A pruned linear weight `[out, in]`: the chosen member's N and its slots (see
    /// [`super::prune::unpack_slots`]).
    Pruned {
        /// Layer.
        layer: u64,
        /// The member's pattern.
        pattern: Pattern,
        /// Slots, `out * ceil(in / M) * N` of them.
        slots: Vec<(f32, u32)>,
    },
    /// Any other floating-point tensor, as f32 (every value finite).
    Dense(Vec<f32>),
    /// A tensor of another dtype (e.g. integer position ids), not decoded.
    Other,
}

/// Every tensor of a `.stanm` file, by name, with its shape; `member` picks a family member
/// (default the densest). Every stored value is finite.
pub fn read_tensors(
    path: &Path,
    member: Option<Pattern>,
) -> Result<Vec<(String, Vec<usize>, StoredTensor)>, String> {
    read_tensors_where(path, member, |_| true).map(|t| t.tensors)
}

/// Tensors of a `.stanm` file ([`read_tensors_where`]).
#[derive(Clone, Debug)]
pub struct StoredTensors {
    /// By name, with the shape, in header order.
    pub tensors: Vec<(String, Vec<usize>, StoredTensor)>,
    /// A decoder whose Q and K rows are in llama.cpp's interleaved rotary order (the header's
    /// `config.decoder.qk_rows_permuted`).
    pub qk_rows_permuted: bool,
    /// The model's shape (the header's `config`; a safetensors checkpoint's from its tensors
    /// and the `config.json` beside it), named by the file's stem.
    pub shape: super::ModelShape,
}

/// As [`read_tensors`], decoding only the tensors whose name `keep` accepts (the others are
/// still checked as every reader checks them).
pub fn read_tensors_where(
    path: &Path,
    member: Option<Pattern>,
    keep: impl Fn(&str) -> bool,
) -> Result<StoredTensors, String> {
    let StanmFile { layout, data } = read_file(path, true)?;
    let qk_rows_permuted = layout
        .config
        .decoder
        .as_ref()
        .is_some_and(|d| d.qk_rows_permuted);
    let mut out = Vec::with_capacity(layout.tensors.len());
    for t in &layout.tensors {
        let name = match t {
            Checked::Pruned(p) => &p.name,
            Checked::Dense(d) => &d.name,
        };
        if !keep(name) {
            continue;
        }
        out.push(match t {
            Checked::Dense(d) => {
                let stored = if is_decodable(d.dtype) {
                    let v = decode_f32(d.dtype, d.data.of(&data)).map_err(|m| err(path, m))?;
                    check_values(&d.name, &d.shape, v.iter().copied(), false)
                        .map_err(|m| err(path, m))?;
                    StoredTensor::Dense(v)
                } else {
                    StoredTensor::Other
                };
                // u64 to usize: stasim is built for 64-bit targets.
                let shape = d.shape.iter().map(|&x| x as usize).collect();
                (d.name.clone(), shape, stored)
            }
            Checked::Pruned(p) => {
                let j = p.member_index(member).map_err(|m| err(path, m))?;
                let slots = p.slots(&data, j).map_err(|m| err(path, m))?;
                let stored = StoredTensor::Pruned {
                    layer: p.layer,
                    pattern: p.family[j],
                    slots,
                };
                (p.name.clone(), vec![p.rows, p.k], stored)
            }
        });
    }
    Ok(StoredTensors {
        tensors: out,
        qk_rows_permuted,
        shape: layout.config.shape(stem(path)),
    })
}

/// A file's stem, the name of the model it holds.
fn stem(path: &Path) -> String {
    path.file_stem()
        .map_or_else(|| "checkpoint".into(), |s| s.to_string_lossy().into_owned())
}

/// A safetensors encoder checkpoint read as [`read_tensors`] reads a `.stanm` (dense: every
/// linear weight as the slots of [`Pattern::DENSE`], one `(value, 0)` a weight; every other
/// floating-point tensor as f32; others [`StoredTensor::Other`]), every value checked finite,
/// with the model shape [`prune_checkpoint`] would record.
pub fn read_checkpoint_tensors(src: &Path) -> Result<StoredTensors, String> {
    let bytes = read_input(src, u64::MAX)?;
    let st = open(&bytes).map_err(|m| err(src, m))?;
    let (tensors, config) = source_tensors(src, &st).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(tensors.len());
    for t in &tensors {
        let view = st
            .tensor(&t.name)
            .map_err(|e| err(src, format!("tensor `{}`: {e}", t.name)))?;
        let shape: Vec<usize> = view.shape().to_vec();
        let stored = if !is_decodable(view.dtype()) {
            StoredTensor::Other
        } else {
            let v = to_f32(&view).map_err(|m| err(src, format!("tensor `{}`: {m}", t.name)))?;
            check_values(&t.name, &t.shape, v.iter().copied(), false).map_err(|m| err(src, m))?;
            match t.linear {
                Some((layer, _)) => StoredTensor::Pruned {
                    layer,
                    pattern: Pattern::DENSE,
                    slots: v.into_iter().map(|x| (x, 0)).collect(),
                },
                None => StoredTensor::Dense(v),
            }
        };
        out.push((t.name.clone(), shape, stored));
    }
    Ok(StoredTensors {
        tensors: out,
        qk_rows_permuted: false,
        shape: config.shape(stem(src)),
    })
}

/// Numbers for one member of one pruned weight.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MemberReport {
    /// Pattern.
    pub pattern: String,
    /// Stored bytes of this member alone (STA.md formula).
    pub bytes: u64,
    /// Share of the dense weights' total magnitude that is kept.
    pub kept_magnitude: f64,
    /// `||X W - X W_pruned|| / ||X W||`: on the calibration activations of a calibrated
    /// prune ([`crate::eval::calibrate`]), else on seeded inputs.
    pub rel_error: f64,
    /// A sparser member of a calibrated family: the same error when pruned on its own from
    /// the dense weights (not inherited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub independent_rel_error: Option<f64>,
}

/// Numbers for one pruned weight.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TensorReport {
    /// Tensor name.
    pub name: String,
    /// Layer.
    pub layer: u64,
    /// Class.
    pub class: String,
    /// `[out, in]`.
    pub shape: [usize; 2],
    /// Dense bytes at 16 bits.
    pub dense_bytes: u64,
    /// Each member, densest first.
    pub members: Vec<MemberReport>,
    /// Bytes of the family stored as one (values, indices, tags); equals the member for a
    /// single pattern.
    pub family_bytes: u64,
}

/// The result of pruning a checkpoint.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PruneReport {
    /// Pruned weights.
    pub tensors: Vec<TensorReport>,
    /// Tensors copied dense.
    pub dense_tensors: usize,
    /// Bytes of the output file.
    pub file_bytes: u64,
}

/// Seeded inputs `X` (`rows x k`), uniform in [-1, 1) from xorshift64.
pub fn inputs(rows: usize, k: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..rows * k)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// `||X W^T - X Wp^T||_F / ||X W^T||_F` for `w`, `wp` of `out x k`, in f64.
fn rel_error(x: &[f32], rows: usize, w: &[f32], wp: &[f32], out: usize, k: usize) -> f64 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for r in 0..rows {
        let xr = &x[r * k..(r + 1) * k];
        for o in 0..out {
            let (mut y, mut yp) = (0.0f64, 0.0f64);
            for i in 0..k {
                y += f64::from(xr[i]) * f64::from(w[o * k + i]);
                yp += f64::from(xr[i]) * f64::from(wp[o * k + i]);
            }
            num += (y - yp) * (y - yp);
            den += y * y;
        }
    }
    if den == 0.0 { 0.0 } else { (num / den).sqrt() }
}

pub(crate) fn kept_share(w: &[f32], wp: &[f32]) -> f64 {
    let all: f64 = w.iter().map(|v| f64::from(v.abs())).sum();
    let kept: f64 = wp.iter().map(|v| f64::from(v.abs())).sum();
    if all == 0.0 { 1.0 } else { kept / all }
}

/// What `--verify` found.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct VerifyReport {
    /// Pruned weights decoded.
    pub pruned: usize,
    /// Members decoded (all of every family).
    pub members: usize,
    /// Whether every member matched a fresh pruning of the source checkpoint bit for bit
    /// (and every other tensor its source bytes).
    pub bit_exact_against_source: Option<bool>,
    /// The first difference from the source, if any.
    pub mismatch: Option<String>,
}

/// Reads `path` back, decodes every member, and (with `source`) compares each bit for bit
/// with a fresh pruning of the source checkpoint, and every other tensor with its bytes there.
/// A source that differs (other names, shapes, dtypes or values) is a mismatch, not an error.
pub fn verify(path: &Path, source: Option<&Path>) -> Result<VerifyReport, String> {
    let StanmFile { layout, data } = read_file(path, true)?;
    let src_bytes = source.map(|s| read_input(s, u64::MAX)).transpose()?;
    let src = match (&src_bytes, source) {
        (Some(b), Some(s)) => Some(open(b).map_err(|m| err(s, m))?),
        _ => None,
    };
    let mut mismatch: Option<String> = None;
    let mut differ = |m: String| {
        mismatch.get_or_insert(m);
    };
    let (mut pruned, mut members) = (0, 0);
    let mut names = HashSet::new();
    for t in &layout.tensors {
        let name = match t {
            Checked::Pruned(p) => &p.name,
            Checked::Dense(d) => &d.name,
        };
        names.insert(name.as_str());
        let view = src.as_ref().map(|st| st.tensor(name).ok());
        let Checked::Pruned(p) = t else {
            if let (Checked::Dense(d), Some(v)) = (t, view) {
                match v {
                    None => differ(format!("the source has no tensor `{name}`")),
                    Some(v) if v.dtype() != d.dtype || !same_shape(v.shape(), &d.shape) => {
                        differ(format!(
                            "tensor `{name}` is {} {} here, {} {:?} in the source",
                            dtype_name(d.dtype),
                            shape_text(&d.shape),
                            dtype_name(v.dtype()),
                            v.shape()
                        ))
                    }
                    Some(v) if v.data() != d.data.of(&data) => {
                        differ(format!("tensor `{name}`: bytes differ from the source"))
                    }
                    Some(_) => {}
                }
            }
            continue;
        };
        // Every member decodes (sizes, offsets, tags, values), bounded by the file.
        for j in 0..p.family.len() {
            p.slots(&data, j).map_err(|m| err(path, m))?;
            members += 1;
        }
        pruned += 1;
        let v = match view {
            None => continue,
            Some(None) => {
                differ(format!("the source has no tensor `{name}`"));
                continue;
            }
            Some(Some(v)) => v,
        };
        if !same_shape(v.shape(), &[p.rows as u64, p.k as u64]) || !is_decodable(v.dtype()) {
            differ(format!(
                "tensor `{name}` is [{}, {}] here, {} {:?} in the source",
                p.rows,
                p.k,
                dtype_name(v.dtype()),
                v.shape()
            ));
            continue;
        }
        // Same shape as the source tensor: the dense decode is bounded by the source's size.
        let wv = to_f32(&v).map_err(|m| err(source.unwrap_or(path), m))?;
        let masks = prune_family(&wv, p.rows, p.k, &p.family);
        let packed = p.packed(&data);
        let fam = p.family.len();
        for (j, mask) in masks.iter().enumerate() {
            let got = unpack(&packed, p.rows, p.k, p.family[0], fam, fam - 1 - j)
                .map_err(|m| err(path, format!("tensor `{name}`: {m}")))?;
            let want = apply(&wv, mask);
            if let Some(i) = (0..got.len()).find(|&i| got[i].to_bits() != want[i].to_bits()) {
                differ(format!(
                    "tensor `{name}`, member {}: element [{}, {}] is {} here, {} from the source",
                    p.family[j],
                    i / p.k,
                    i % p.k,
                    got[i],
                    want[i]
                ));
                break;
            }
        }
    }
    if let Some(st) = &src {
        let mut extra: Vec<&str> = st
            .names()
            .into_iter()
            .filter(|n| !names.contains(n))
            .collect();
        extra.sort_unstable();
        if let Some(n) = extra.first() {
            differ(format!("the source's tensor `{n}` is not in this file"));
        }
    }
    Ok(VerifyReport {
        pruned,
        members,
        bit_exact_against_source: src.as_ref().map(|_| mismatch.is_none()),
        mismatch,
    })
}

fn same_shape(a: &[usize], b: &[u64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| x as u64 == y)
}

// ---------------------------------------------------------------------------------------
// Pruning.
// ---------------------------------------------------------------------------------------

/// Why `prune` stopped: bad input (exit 2) or an output that could not be written (exit 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PruneError {
    /// The checkpoint, its `config.json`, the scheme or `--out` is wrong.
    Input(String),
    /// The output file could not be written.
    Output(OutputError),
}

impl std::fmt::Display for PruneError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PruneError::Input(m) => f.write_str(m),
            PruneError::Output(e) => write!(f, "{e}"),
        }
    }
}

impl From<OutputError> for PruneError {
    fn from(e: OutputError) -> Self {
        PruneError::Output(e)
    }
}

impl From<String> for PruneError {
    fn from(m: String) -> Self {
        PruneError::Input(m)
    }
}

/// A writer that keeps the CRC-32 and the count of what went through it.
struct Checksummed<W: Write> {
    inner: W,
    crc: crc32fast::Hasher,
    bytes: u64,
}

impl<W: Write> Write for Checksummed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// What a `config.json` beside a checkpoint says (each key optional).
#[derive(Clone, Debug, Default)]
struct HfConfig {
    path: PathBuf,
    heads: Option<u64>,
    hidden: Option<u64>,
    ffn: Option<u64>,
    layers: Option<u64>,
}

/// The `config.json` beside `src`, if there is one. Its keys `num_attention_heads`,
/// `hidden_size`, `intermediate_size` and `num_hidden_layers` must be whole numbers >= 1 when
/// present.
fn config_beside(src: &Path) -> Result<Option<HfConfig>, String> {
    let path = src.with_file_name("config.json");
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        _ => {}
    }
    let bytes = read_input(&path, MAX_CONFIG_BYTES)?;
    let named = |m: String| err(&path, m);
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| named(format!("not valid JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| named("not a JSON object".into()))?;
    let key = |k: &str| -> Result<Option<u64>, String> {
        match obj.get(k) {
            None => Ok(None),
            Some(x) => match x.as_u64() {
                Some(n) if n >= 1 => Ok(Some(n)),
                _ => Err(named(format!(
                    "`{k}` = {x}: it must be a whole number of at least 1"
                ))),
            },
        }
    };
    Ok(Some(HfConfig {
        heads: key("num_attention_heads")?,
        hidden: key("hidden_size")?,
        ffn: key("intermediate_size")?,
        layers: key("num_hidden_layers")?,
        path,
    }))
}

/// Heads when no `config.json` gives them: the largest divisor of `hidden` that is at most
/// `hidden / 64` (head size at least 64), and at least 1.
fn default_heads(hidden: u64) -> u64 {
    (1..=(hidden / 64).max(1))
        .rev()
        .find(|h| hidden.is_multiple_of(*h))
        .unwrap_or(1)
}

/// The model config of a checkpoint's linear weights, with `config.json` (if any) agreeing.
fn model_config(src: &Path, tensors: &[SourceTensor]) -> Result<Config, String> {
    let dim = |class: Class, i: usize| {
        tensors
            .iter()
            .find(|t| t.linear.is_some_and(|(_, c)| c == class))
            .and_then(|t| t.shape.get(i).copied())
    };
    let (Some(hidden), Some(ffn)) = (dim(Class::Proj, 0), dim(Class::Ffn1, 0)) else {
        return Err(err(
            src,
            "no attention output and FFN weights found (a BERT-style encoder has \
             `encoder.layer.N.attention.output.dense.weight` and \
             `encoder.layer.N.intermediate.dense.weight`)",
        ));
    };
    let layers = tensors
        .iter()
        .filter_map(|t| t.linear.map(|(l, _)| l))
        .max()
        .map_or(0, |l| l.saturating_add(1));
    let mut config = Config {
        hidden,
        heads: default_heads(hidden),
        ffn,
        layers,
        decoder: None,
    };
    if let Some(hf) = config_beside(src)? {
        for (key, said, have) in [
            ("hidden_size", hf.hidden, hidden),
            ("intermediate_size", hf.ffn, ffn),
            ("num_hidden_layers", hf.layers, layers),
        ] {
            if let Some(s) = said
                && s != have
            {
                return Err(err(
                    &hf.path,
                    format!("`{key}` = {s}, but the checkpoint's tensors have {have}"),
                ));
            }
        }
        if let Some(h) = hf.heads {
            if hidden % h != 0 {
                return Err(err(
                    &hf.path,
                    format!(
                        "`num_attention_heads` = {h} does not divide the hidden size {hidden} of \
                         the checkpoint's tensors"
                    ),
                ));
            }
            config.heads = h;
        }
    }
    Ok(config)
}

/// Whether `a` and `b` are one file: the same canonical path, or (through a hard link) the
/// same device and inode.
fn same_file(a: &Path, b: &Path) -> bool {
    if let (Ok(x), Ok(y)) = (a.canonicalize(), b.canonicalize())
        && x == y
    {
        return true;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    false
}

/// One tensor of a source being pruned: a linear weight (pruned) or any other tensor (copied
/// as `dtype`, `bytes` long).
#[derive(Clone, Debug)]
pub(crate) struct SourceTensor {
    pub(crate) name: String,
    pub(crate) shape: Vec<u64>,
    /// A linear weight's layer and class.
    pub(crate) linear: Option<(u64, Class)>,
    /// A copied tensor's dtype (ignored for a linear weight).
    pub(crate) dtype: Dtype,
    /// A copied tensor's bytes (ignored for a linear weight).
    pub(crate) bytes: u64,
}

/// What a source gives for one of its tensors: a linear weight's values (row-major `[out,
/// in]`), or a copied tensor's bytes, already checked.
pub(crate) enum SourceData<'a> {
    Linear(Vec<f32>),
    Dense(std::borrow::Cow<'a, [u8]>),
    /// A linear weight pruned already (a calibrated prune, [`crate::eval::calibrate`]).
    Pruned(Box<PrunedLinear>),
}

/// One linear pruned outside [`write_stanm`], ready to write: its packed form (the layout of
/// [`super::prune`], with the header's patterns) and its report.
pub struct PrunedLinear {
    /// Values, indices and tags as the `.stanm` stores them.
    pub packed: Packed,
    /// Its numbers.
    pub report: TensorReport,
}

/// The checks before anything is read: the scheme, and `out` is not the source itself.
pub(crate) fn check_prune_args(src: &Path, scheme: &Scheme, out: &Path) -> Result<(), PruneError> {
    scheme.check()?;
    if same_file(src, out) {
        return Err(PruneError::Input(format!(
            "the output `{}` is the source checkpoint `{}` itself: pruning would replace it; \
             choose another --out",
            out.display(),
            src.display()
        )));
    }
    Ok(())
}

/// Prunes checkpoint `src` with `scheme` into `out`. `seed` seeds the error inputs.
pub fn prune_checkpoint(
    src: &Path,
    scheme: &Scheme,
    out: &Path,
    seed: u64,
) -> Result<PruneReport, PruneError> {
    prune_checkpoint_with(src, scheme, out, seed, None)
}

/// [`prune_checkpoint`], with every linear weight already pruned (`pruned`, by tensor name: a
/// calibrated prune, [`crate::eval::calibrate`]) instead of by magnitude here; the other
/// tensors are copied as always.
pub fn prune_checkpoint_with(
    src: &Path,
    scheme: &Scheme,
    out: &Path,
    seed: u64,
    mut pruned: Option<std::collections::HashMap<String, PrunedLinear>>,
) -> Result<PruneReport, PruneError> {
    check_prune_args(src, scheme, out)?;
    let bytes = read_input(src, u64::MAX)?;
    let st = open(&bytes).map_err(|m| err(src, m))?;
    let (tensors, config) = source_tensors(src, &st)?;
    let mut read = |i: usize| -> Result<SourceData<'_>, String> {
        let t = &tensors[i];
        let view = st
            .tensor(&t.name)
            .map_err(|x| format!("tensor `{}`: {x}", t.name))?;
        if t.linear.is_some() {
            if let Some(p) = pruned.as_mut() {
                return p
                    .remove(&t.name)
                    .map(|x| SourceData::Pruned(Box::new(x)))
                    .ok_or_else(|| {
                        format!(
                            "tensor `{}` was not calibrated (a bug: please report it)",
                            t.name
                        )
                    });
            }
            return to_f32(&view)
                .map(SourceData::Linear)
                .map_err(|m| format!("tensor `{}`: {m}", t.name));
        }
        if is_decodable(view.dtype()) {
            // One value at a time: the embeddings need not be held twice.
            check_values(
                &t.name,
                &t.shape,
                values_of(view.dtype(), view.data())?,
                false,
            )?;
        }
        Ok(SourceData::Dense(std::borrow::Cow::Borrowed(view.data())))
    };
    write_stanm(src, scheme, out, seed, config, &tensors, &mut read)
}

/// The tensors of safetensors checkpoint `st` (read from `src`) in name order, each linear
/// weight (by [`role`]) with its layer and class and of a floating-point dtype, and the model
/// config they and the `config.json` beside `src` give.
fn source_tensors(
    src: &Path,
    st: &safetensors::SafeTensors<'_>,
) -> Result<(Vec<SourceTensor>, Config), PruneError> {
    let mut names: Vec<String> = st.names().into_iter().map(str::to_owned).collect();
    names.sort();
    let mut tensors = Vec::with_capacity(names.len());
    for name in &names {
        let view = st
            .tensor(name)
            .map_err(|e| err(src, format!("tensor `{name}`: {e}")))?;
        let linear = role(name).map(|(layer, r)| (layer, r.class()));
        if linear.is_some() && !is_decodable(view.dtype()) {
            return Err(PruneError::Input(err(
                src,
                format!(
                    "tensor `{name}` has dtype {}; expected F32, F16 or BF16",
                    view.dtype()
                ),
            )));
        }
        tensors.push(SourceTensor {
            name: name.clone(),
            shape: view.shape().iter().map(|&x| x as u64).collect(),
            linear,
            dtype: view.dtype(),
            bytes: view.data().len() as u64,
        });
    }
    let config = model_config(src, &tensors)?;
    Ok((tensors, config))
}

/// Writes the `.stanm` of `tensors` (from `src`, read one at a time through `read`) with
/// `config`: linear weights pruned with `scheme`, every other tensor copied. `seed` seeds the
/// error inputs. Checks each linear weight's shape (2-D, `N <= in`) and values (finite, in
/// f16's range), and the header as every reader does, before anything is written.
pub(crate) fn write_stanm<'a>(
    src: &Path,
    scheme: &Scheme,
    out: &Path,
    seed: u64,
    config: Config,
    tensors: &[SourceTensor],
    read: &mut dyn FnMut(usize) -> Result<SourceData<'a>, String>,
) -> Result<PruneReport, PruneError> {
    // Pass 1: the header, from shapes and patterns alone.
    let mut entries = Vec::with_capacity(tensors.len());
    let mut offset = 0u64;
    let mut span = |len: u64| {
        let s = (offset, len);
        offset = offset.saturating_add(len);
        s
    };
    for t in tensors {
        let name = &t.name;
        let shape = t.shape.clone();
        if let Some((layer, class)) = t.linear {
            let (rows, k) = match shape.as_slice() {
                &[rows, k] if rows >= 1 && k >= 1 => (rows, k),
                s => {
                    return Err(PruneError::Input(err(
                        src,
                        format!(
                            "tensor `{name}` has shape {}; a linear weight is 2-D [out, in], \
                             both at least 1",
                            shape_text(s)
                        ),
                    )));
                }
            };
            let fam = scheme.for_class(class);
            check_fits(name, k, fam[0]).map_err(|m| err(src, m))?;
            // Slots are at most 2 rows * k (N <= K): the weights' size bounds them.
            let (v, i, tg) = stored_sizes(rows, k, fam[0], fam.len())
                .ok_or_else(|| err(src, format!("tensor `{name}`: sizes overflow")))?;
            entries.push(Entry {
                name: name.clone(),
                layer: Some(layer),
                class: Some(class.name().into()),
                shape,
                dtype: None,
                patterns: fam.iter().map(ToString::to_string).collect(),
                values: Some(span(v)),
                indices: Some(span(i)),
                tags: Some(span(tg)),
                data: None,
            });
        } else {
            entries.push(Entry {
                name: name.clone(),
                layer: None,
                class: None,
                shape,
                dtype: Some(dtype_name(t.dtype)),
                patterns: Vec::new(),
                values: None,
                indices: None,
                tags: None,
                data: Some(span(t.bytes)),
            });
        }
    }
    let header = Header {
        format: FORMAT.into(),
        values: "f16".into(),
        source: src
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        config: Some(config),
        data_bytes: offset,
        tensors: entries,
    };
    // What is written must read back: the readers' check, on the source's terms.
    check_header(&header).map_err(|m| {
        err(
            src,
            format!("{m} (the .stanm written from this checkpoint would not be runnable)"),
        )
    })?;
    let header_json = serde_json::to_vec(&header).map_err(|e| err(src, e.to_string()))?;
    let io = |e: std::io::Error| {
        PruneError::Output(OutputError {
            path: out.to_owned(),
            message: e.to_string(),
        })
    };
    let mut w = Checksummed {
        inner: AtomicFile::create(out)?,
        crc: crc32fast::Hasher::new(),
        bytes: 0,
    };
    w.write_all(MAGIC).map_err(io)?;
    w.write_all(&(header_json.len() as u64).to_le_bytes())
        .map_err(io)?;
    w.write_all(&header_json).map_err(io)?;
    let data_start = w.bytes;
    // Pass 2: prune and write, one tensor at a time.
    let mut reports = Vec::new();
    let mut dense_tensors = 0;
    for (ti, e) in header.tensors.iter().enumerate() {
        let wv = match read(ti).map_err(|m| err(src, m))? {
            SourceData::Dense(bytes) => {
                if bytes.len() as u64 != tensors[ti].bytes {
                    return Err(PruneError::Input(err(
                        src,
                        format!(
                            "tensor `{}`: {} bytes, expected {} (a bug: please report it)",
                            e.name,
                            bytes.len(),
                            tensors[ti].bytes
                        ),
                    )));
                }
                w.write_all(&bytes).map_err(io)?;
                dense_tensors += 1;
                continue;
            }
            SourceData::Linear(v) => v,
            SourceData::Pruned(p) => {
                let spans = [e.values, e.indices, e.tags];
                let lens = [
                    p.packed.values.len(),
                    p.packed.indices.len(),
                    p.packed.tags.len(),
                ];
                if spans
                    .iter()
                    .zip(lens)
                    .any(|(s, l)| s.map(|s| s.1) != Some(l as u64))
                {
                    return Err(PruneError::Input(err(
                        src,
                        format!(
                            "tensor `{}`: packed sizes {lens:?} are not the header's (a bug: please report it)",
                            e.name
                        ),
                    )));
                }
                w.write_all(&p.packed.values).map_err(io)?;
                w.write_all(&p.packed.indices).map_err(io)?;
                w.write_all(&p.packed.tags).map_err(io)?;
                reports.push(p.report);
                continue;
            }
        };
        // Pass 1 checked the shape: 2-D.
        let (rows, k) = (e.shape[0] as usize, e.shape[1] as usize);
        if wv.len() != rows * k {
            return Err(PruneError::Input(err(
                src,
                format!(
                    "tensor `{}`: {} values for shape [{rows}, {k}]",
                    e.name,
                    wv.len()
                ),
            )));
        }
        check_values(&e.name, &e.shape, wv.iter().copied(), true).map_err(|m| err(src, m))?;
        let fam: Vec<Pattern> = e
            .patterns
            .iter()
            .filter_map(|p| Pattern::parse(p).ok())
            .collect();
        let masks: Vec<Mask> = prune_family(&wv, rows, k, &fam);
        let packed: Packed = pack(&wv, &masks);
        w.write_all(&packed.values).map_err(io)?;
        w.write_all(&packed.indices).map_err(io)?;
        w.write_all(&packed.tags).map_err(io)?;
        let x = inputs(32, k, seed ^ ti as u64);
        let members = masks
            .iter()
            .map(|m| {
                let wp = apply(&wv, m);
                MemberReport {
                    pattern: m.pattern.to_string(),
                    bytes: m.pattern.stored_bytes(k as u64, rows as u64, 16),
                    kept_magnitude: kept_share(&wv, &wp),
                    rel_error: rel_error(&x, 32, &wv, &wp, rows, k),
                    independent_rel_error: None,
                }
            })
            .collect();
        reports.push(TensorReport {
            name: e.name.clone(),
            layer: e.layer.unwrap_or(0),
            class: e.class.clone().unwrap_or_default(),
            shape: [rows, k],
            dense_bytes: (rows * k * 2) as u64,
            members,
            family_bytes: (packed.values.len() + packed.indices.len() + packed.tags.len()) as u64,
        });
    }
    if w.bytes - data_start != header.data_bytes {
        return Err(PruneError::Input(err(
            src,
            format!(
                "wrote {} bytes of data, the header says {} (a bug: please report it)",
                w.bytes - data_start,
                header.data_bytes
            ),
        )));
    }
    let Checksummed {
        inner: mut file,
        crc,
        bytes,
    } = w;
    file.write_all(&crc.finalize().to_le_bytes()).map_err(io)?;
    file.commit()?;
    Ok(PruneReport {
        tensors: reports,
        dense_tensors,
        file_bytes: bytes + TRAILER_BYTES,
    })
}
