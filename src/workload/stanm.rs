//! `.stanm`: a pruned checkpoint in STA's compressed N:M format, and `stasim prune`.
//!
//! # File layout
//! ```text
//! "STANM001"                 8 bytes, magic and version
//! header length H            u64, little endian
//! header                     H bytes of JSON (below)
//! data                       the blobs the header points at, in header order
//! ```
//! Header: `{"format": "stanm-1", "values": "f16", "source": ..., "tensors": [...]}`. A
//! pruned linear weight is `{"name", "layer", "class", "shape": [out, in], "patterns":
//! [densest, ..., sparsest], "values": [offset, len], "indices": [offset, len], "tags":
//! [offset, len]}` with offsets relative to the data section, in the layout of
//! [`super::prune`]. Any other tensor is `{"name", "dtype", "shape", "data": [offset, len]}`,
//! copied unchanged.
//!
//! Offsets follow from shapes and patterns alone, so the header is written first and the
//! tensors are then pruned and written one at a time: one tensor's f32 copy at a time is
//! all that is held beside the input file. The output is written as `FILE.partial` and
//! renamed when complete.

use std::io::Write;
use std::path::Path;

use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};

use super::checkpoint::{Class, classify, to_f32};
use super::nm::Pattern;
use super::prune::{Mask, Packed, apply, index_bits, pack, prune_family, unpack, unpack_slots};

const MAGIC: &[u8; 8] = b"STANM001";

/// How to prune: one pattern per class, or one family for every linear weight.
#[derive(Clone, Debug)]
pub enum Scheme {
    /// Per-class patterns (`2:4`, or `qkv=..,proj=..,ffn1=..,ffn2=..`).
    Patterns(super::Patterns),
    /// A nested family of one M, densest first.
    Family(Vec<Pattern>),
}

impl Scheme {
    fn for_class(&self, c: Class) -> Vec<Pattern> {
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
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct Entry {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    layer: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    class: Option<String>,
    shape: Vec<usize>,
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
/// checkpoint, else `hidden / 64`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct Config {
    hidden: u64,
    heads: u64,
    ffn: u64,
    layers: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct Header {
    format: String,
    values: String,
    source: String,
    #[serde(default)]
    config: Option<Config>,
    tensors: Vec<Entry>,
}

/// `num_attention_heads` from a Hugging Face `config.json` beside `src`, if any.
fn heads_beside(src: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(src.with_file_name("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("num_attention_heads")?.as_u64()
}

/// Reads only the header of a `.stanm` file.
fn read_header(path: &Path) -> Result<Header, String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
    let mut head = [0u8; 16];
    f.read_exact(&mut head)
        .map_err(|_| err(path, "not a .stanm file (too short)"))?;
    if &head[..8] != MAGIC {
        return Err(err(path, "not a .stanm file (bad magic)"));
    }
    let len = u64::from_le_bytes(head[8..16].try_into().map_err(|_| err(path, "truncated"))?);
    if len > 1 << 30 {
        return Err(err(path, "header length is implausible (corrupt file?)"));
    }
    let mut json = vec![0u8; len as usize];
    f.read_exact(&mut json)
        .map_err(|_| err(path, "truncated header"))?;
    serde_json::from_slice(&json).map_err(|e| err(path, format!("bad header: {e}")))
}

/// The model a pruned file describes: its shape and each layer's patterns (`member` picks a
/// family member; default the densest).
pub fn load_model(
    path: &Path,
    member: Option<Pattern>,
) -> Result<(super::ModelShape, Vec<super::Patterns>), String> {
    let h = read_header(path)?;
    let c = h.config.clone().ok_or_else(|| {
        err(
            path,
            "the header records no model configuration (re-prune with this stasim)",
        )
    })?;
    let mut per_layer: Vec<[Option<Pattern>; 4]> = vec![[None; 4]; c.layers as usize];
    for e in h.tensors.iter().filter(|e| e.layer.is_some()) {
        let layer = e.layer.unwrap_or(0) as usize;
        let fam: Vec<Pattern> = e
            .patterns
            .iter()
            .filter_map(|p| Pattern::parse(p).ok())
            .collect();
        let p = match member {
            None => *fam
                .first()
                .ok_or_else(|| err(path, format!("tensor `{}` has no pattern", e.name)))?,
            Some(m) if fam.contains(&m) => m,
            Some(m) => {
                return Err(err(
                    path,
                    format!(
                        "tensor `{}` has no member {m} (it has {})",
                        e.name,
                        e.patterns.join(", ")
                    ),
                ));
            }
        };
        let slot = match e.class.as_deref() {
            Some("qkv") => 0,
            Some("proj") => 1,
            Some("ffn1") => 2,
            _ => 3,
        };
        let cell = per_layer.get_mut(layer).ok_or_else(|| {
            err(
                path,
                format!("tensor `{}` names layer {layer} of {}", e.name, c.layers),
            )
        })?;
        match cell[slot] {
            Some(q) if q != p => {
                return Err(err(
                    path,
                    format!(
                        "layer {layer}: Q, K and V have different patterns ({q} and {p}); STA runs them as one operation"
                    ),
                ));
            }
            _ => cell[slot] = Some(p),
        }
    }
    let patterns = per_layer
        .iter()
        .enumerate()
        .map(|(i, s)| match s {
            [Some(qkv), Some(proj), Some(ffn1), Some(ffn2)] => Ok(super::Patterns {
                qkv: *qkv,
                proj: *proj,
                ffn1: *ffn1,
                ffn2: *ffn2,
            }),
            _ => Err(err(
                path,
                format!("layer {i} lacks some of its linear weights"),
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let name = path
        .file_stem()
        .map_or_else(|| "checkpoint".into(), |s| s.to_string_lossy().into_owned());
    Ok((
        super::ModelShape {
            name,
            hidden: c.hidden,
            heads: c.heads,
            ffn: c.ffn,
            layers: c.layers,
            default_seq: 128,
            causal: false,
        },
        patterns,
    ))
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
    /// `||X W - X W_pruned|| / ||X W||` on seeded inputs.
    pub rel_error: f64,
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

fn err(path: &Path, msg: impl Into<String>) -> String {
    format!("`{}`: {}", path.display(), msg.into())
}

fn slot_bytes(rows: usize, k: usize, dense: Pattern, fam: usize) -> (u64, u64, u64) {
    let slots = (rows * k.div_ceil(dense.m as usize) * dense.n as usize) as u64;
    let ib = u64::from(index_bits(dense.m));
    let tb = if fam > 1 {
        u64::from(index_bits(fam as u32))
    } else {
        0
    };
    (
        slots * 2,
        (slots * ib).div_ceil(8),
        (slots * tb).div_ceil(8),
    )
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

fn kept_share(w: &[f32], wp: &[f32]) -> f64 {
    let all: f64 = w.iter().map(|v| f64::from(v.abs())).sum();
    let kept: f64 = wp.iter().map(|v| f64::from(v.abs())).sum();
    if all == 0.0 { 1.0 } else { kept / all }
}

fn linear_shape(
    view: &safetensors::tensor::TensorView<'_>,
    path: &Path,
    name: &str,
) -> Result<(usize, usize), String> {
    match view.shape() {
        [out, k] => Ok((*out, *k)),
        s => Err(err(
            path,
            format!("tensor `{name}` has shape {s:?}; a linear weight must be 2-D [out, in]"),
        )),
    }
}

/// Prunes checkpoint `src` with `scheme` into `out`. `seed` seeds the error inputs.
pub fn prune_checkpoint(
    src: &Path,
    scheme: &Scheme,
    out: &Path,
    seed: u64,
) -> Result<PruneReport, String> {
    let bytes = std::fs::read(src).map_err(|e| err(src, format!("cannot read: {e}")))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| err(src, format!("not a valid safetensors file: {e}")))?;
    let mut names: Vec<String> = st.names().into_iter().map(str::to_owned).collect();
    names.sort();
    // Pass 1: the header, from shapes and patterns alone.
    let mut entries = Vec::with_capacity(names.len());
    let mut offset = 0u64;
    for name in &names {
        let view = st
            .tensor(name)
            .map_err(|e| err(src, format!("tensor `{name}`: {e}")))?;
        if let Some((layer, class)) = classify(name) {
            let (rows, k) = linear_shape(&view, src, name)?;
            if !matches!(
                view.dtype(),
                safetensors::Dtype::F32 | safetensors::Dtype::F16 | safetensors::Dtype::BF16
            ) {
                return Err(err(
                    src,
                    format!(
                        "tensor `{name}` has dtype {:?}; expected F32, F16 or BF16",
                        view.dtype()
                    ),
                ));
            }
            let fam = scheme.for_class(class);
            let (v, i, t) = slot_bytes(rows, k, fam[0], fam.len());
            let mut span = |len: u64| {
                let s = (offset, len);
                offset += len;
                s
            };
            entries.push(Entry {
                name: name.clone(),
                layer: Some(layer),
                class: Some(class.name().into()),
                shape: vec![rows, k],
                dtype: None,
                patterns: fam.iter().map(ToString::to_string).collect(),
                values: Some(span(v)),
                indices: Some(span(i)),
                tags: Some(span(t)),
                data: None,
            });
        } else {
            let len = view.data().len() as u64;
            entries.push(Entry {
                name: name.clone(),
                layer: None,
                class: None,
                shape: view.shape().to_vec(),
                dtype: Some(format!("{:?}", view.dtype())),
                patterns: Vec::new(),
                values: None,
                indices: None,
                tags: None,
                data: Some((offset, len)),
            });
            offset += len;
        }
    }
    let dim = |class: &str, i: usize| {
        entries
            .iter()
            .find(|e| e.class.as_deref() == Some(class))
            .and_then(|e| e.shape.get(i).copied())
            .unwrap_or(0) as u64
    };
    let hidden = dim("proj", 0);
    let config = Config {
        hidden,
        heads: heads_beside(src).unwrap_or((hidden / 64).max(1)),
        ffn: dim("ffn1", 0),
        layers: entries
            .iter()
            .filter_map(|e| e.layer)
            .max()
            .map_or(0, |l| l + 1),
    };
    let header = Header {
        format: "stanm-1".into(),
        values: "f16".into(),
        source: src
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        config: Some(config),
        tensors: entries,
    };
    let header_json = serde_json::to_vec(&header).map_err(|e| err(out, e.to_string()))?;
    let partial = crate::trace::partial_path(out);
    let write = |partial: &Path| -> Result<PruneReport, String> {
        let file =
            std::fs::File::create(partial).map_err(|e| err(out, format!("cannot write: {e}")))?;
        let mut w = std::io::BufWriter::new(file);
        let io = |e: std::io::Error| err(out, format!("write failed: {e}"));
        w.write_all(MAGIC).map_err(io)?;
        w.write_all(&(header_json.len() as u64).to_le_bytes())
            .map_err(io)?;
        w.write_all(&header_json).map_err(io)?;
        // Pass 2: prune and write, one tensor at a time.
        let mut tensors = Vec::new();
        let mut dense_tensors = 0;
        for (ti, e) in header.tensors.iter().enumerate() {
            let view = st
                .tensor(&e.name)
                .map_err(|x| err(src, format!("tensor `{}`: {x}", e.name)))?;
            let Some(layer) = e.layer else {
                w.write_all(view.data()).map_err(io)?;
                dense_tensors += 1;
                continue;
            };
            let (rows, k) = (e.shape[0], e.shape[1]);
            let wv = to_f32(&view).map_err(|m| err(src, format!("tensor `{}`: {m}", e.name)))?;
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
                    }
                })
                .collect();
            tensors.push(TensorReport {
                name: e.name.clone(),
                layer,
                class: e.class.clone().unwrap_or_default(),
                shape: [rows, k],
                dense_bytes: (rows * k * 2) as u64,
                members,
                family_bytes: (packed.values.len() + packed.indices.len() + packed.tags.len())
                    as u64,
            });
        }
        w.flush().map_err(io)?;
        let file_bytes = w.get_ref().metadata().map_err(io)?.len();
        Ok(PruneReport {
            tensors,
            dense_tensors,
            file_bytes,
        })
    };
    match write(&partial) {
        Ok(r) => {
            std::fs::rename(&partial, out).map_err(|e| err(out, format!("cannot rename: {e}")))?;
            Ok(r)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// What `--verify` found.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct VerifyReport {
    /// Pruned weights decoded.
    pub pruned: usize,
    /// Members decoded (all of every family).
    pub members: usize,
    /// Whether every member matched a fresh pruning of the source checkpoint bit for bit.
    pub bit_exact_against_source: Option<bool>,
}

/// A whole `.stanm` file in memory: its header and data section.
struct Whole {
    header: Header,
    bytes: Vec<u8>,
    data_start: usize,
}

impl Whole {
    fn read(path: &Path) -> Result<Whole, String> {
        let bytes = std::fs::read(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
        if bytes.len() < 16 || &bytes[..8] != MAGIC {
            return Err(err(path, "not a .stanm file (bad magic)"));
        }
        let hlen = u64::from_le_bytes(
            bytes[8..16]
                .try_into()
                .map_err(|_| err(path, "truncated"))?,
        ) as usize;
        let data_start = 16usize
            .checked_add(hlen)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| err(path, "truncated header"))?;
        let header: Header = serde_json::from_slice(&bytes[16..data_start])
            .map_err(|e| err(path, format!("bad header: {e}")))?;
        Ok(Whole {
            header,
            bytes,
            data_start,
        })
    }

    /// The blob `(offset, len)` of tensor `name` (`what` names it in errors).
    fn blob(
        &self,
        path: &Path,
        s: Option<(u64, u64)>,
        what: &str,
        name: &str,
    ) -> Result<&[u8], String> {
        let data = &self.bytes[self.data_start..];
        let (o, l) = s.ok_or_else(|| err(path, format!("tensor `{name}` has no {what}")))?;
        data.get(o as usize..(o + l) as usize).ok_or_else(|| {
            err(
                path,
                format!("tensor `{name}`: {what} lies outside the file (truncated?)"),
            )
        })
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
        slots: Vec<(f32, u8)>,
    },
    /// Any other floating-point tensor, as f32.
    Dense(Vec<f32>),
    /// A tensor of another dtype (e.g. integer position ids), not decoded.
    Other,
}

/// Every tensor of a `.stanm` file, by name, with its shape; `member` picks a family member
/// (default the densest).
pub fn read_tensors(
    path: &Path,
    member: Option<Pattern>,
) -> Result<Vec<(String, Vec<usize>, StoredTensor)>, String> {
    let whole = Whole::read(path)?;
    let mut out = Vec::with_capacity(whole.header.tensors.len());
    for e in &whole.header.tensors {
        let t = match e.layer {
            None => {
                let raw = whole.blob(path, e.data, "data", &e.name)?;
                let dtype = match e.dtype.as_deref() {
                    Some("F32") => safetensors::Dtype::F32,
                    Some("F16") => safetensors::Dtype::F16,
                    Some("BF16") => safetensors::Dtype::BF16,
                    _ => {
                        out.push((e.name.clone(), e.shape.clone(), StoredTensor::Other));
                        continue;
                    }
                };
                let view = safetensors::tensor::TensorView::new(dtype, e.shape.clone(), raw)
                    .map_err(|x| err(path, format!("tensor `{}`: {x}", e.name)))?;
                StoredTensor::Dense(
                    to_f32(&view).map_err(|m| err(path, format!("tensor `{}`: {m}", e.name)))?,
                )
            }
            Some(layer) => {
                let fam = family_of(path, e)?;
                let j = match member {
                    None => 0,
                    Some(m) => fam.iter().position(|p| *p == m).ok_or_else(|| {
                        err(path, format!("tensor `{}` has no member {m}", e.name))
                    })?,
                };
                let (rows, k) = matrix_shape(path, e)?;
                let packed = Packed {
                    values: whole.blob(path, e.values, "values", &e.name)?.to_vec(),
                    indices: whole.blob(path, e.indices, "indices", &e.name)?.to_vec(),
                    tags: whole.blob(path, e.tags, "tags", &e.name)?.to_vec(),
                };
                let n = fam[j].n as usize;
                let slots = unpack_slots(&packed, rows, k, fam[0], fam.len(), fam.len() - 1 - j, n)
                    .map_err(|m| err(path, format!("tensor `{}`: {m}", e.name)))?;
                StoredTensor::Pruned {
                    layer,
                    pattern: fam[j],
                    slots,
                }
            }
        };
        out.push((e.name.clone(), e.shape.clone(), t));
    }
    Ok(out)
}

/// The family of a pruned entry, densest first.
fn family_of(path: &Path, e: &Entry) -> Result<Vec<Pattern>, String> {
    let fam: Vec<Pattern> = e
        .patterns
        .iter()
        .map(|p| Pattern::parse(p).map_err(|m| err(path, format!("tensor `{}`: {m}", e.name))))
        .collect::<Result<_, _>>()?;
    if fam.is_empty() {
        return Err(err(path, format!("tensor `{}` has no pattern", e.name)));
    }
    Ok(fam)
}

/// `(out, in)` of a pruned entry.
fn matrix_shape(path: &Path, e: &Entry) -> Result<(usize, usize), String> {
    match e.shape.as_slice() {
        [r, k] => Ok((*r, *k)),
        _ => Err(err(path, format!("tensor `{}` is not 2-D", e.name))),
    }
}

/// Reads `path` back, decodes every member, and (with `source`) compares each bit for bit
/// with a fresh pruning of the source checkpoint.
pub fn verify(path: &Path, source: Option<&Path>) -> Result<VerifyReport, String> {
    let whole = Whole::read(path)?;
    let header = &whole.header;
    let blob = |s: Option<(u64, u64)>, what: &str, name: &str| whole.blob(path, s, what, name);
    let src_bytes = match source {
        Some(s) => Some(std::fs::read(s).map_err(|e| err(s, format!("cannot read: {e}")))?),
        None => None,
    };
    let src = match (&src_bytes, source) {
        (Some(b), Some(s)) => Some(
            SafeTensors::deserialize(b)
                .map_err(|e| err(s, format!("not a valid safetensors file: {e}")))?,
        ),
        _ => None,
    };
    let mut report = VerifyReport {
        pruned: 0,
        members: 0,
        bit_exact_against_source: src.as_ref().map(|_| true),
    };
    for e in &header.tensors {
        if e.layer.is_none() {
            blob(e.data, "data", &e.name)?;
            continue;
        }
        let fam = family_of(path, e)?;
        let (rows, k) = matrix_shape(path, e)?;
        let packed = Packed {
            values: blob(e.values, "values", &e.name)?.to_vec(),
            indices: blob(e.indices, "indices", &e.name)?.to_vec(),
            tags: blob(e.tags, "tags", &e.name)?.to_vec(),
        };
        let fresh = match (&src, source) {
            (Some(st), Some(s)) => {
                let view = st
                    .tensor(&e.name)
                    .map_err(|x| err(s, format!("tensor `{}`: {x}", e.name)))?;
                let wv = to_f32(&view).map_err(|m| err(s, format!("tensor `{}`: {m}", e.name)))?;
                let masks = prune_family(&wv, rows, k, &fam);
                Some(masks.iter().map(|m| apply(&wv, m)).collect::<Vec<_>>())
            }
            _ => None,
        };
        for j in 0..fam.len() {
            let member = fam.len() - 1 - j;
            let got = unpack(&packed, rows, k, fam[0], fam.len(), member)
                .map_err(|m| err(path, format!("tensor `{}`: {m}", e.name)))?;
            if let Some(f) = &fresh {
                let same = got
                    .iter()
                    .zip(&f[j])
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                if !same {
                    report.bit_exact_against_source = Some(false);
                }
            }
            report.members += 1;
        }
        report.pruned += 1;
    }
    Ok(report)
}
