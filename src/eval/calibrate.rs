//! Layer-by-layer calibrated pruning of a Llama-family decoder or a BERT-style encoder: the
//! linears of every block pruned by magnitude, Wanda or SparseGPT
//! ([`crate::workload::calibrated`]) on the activations real text gives them, each calibrated
//! on the outputs of what was pruned before it. One loop serves both (`prune_layers`): the
//! model runs each layer on the calibration stream with a hook ([`super::forward::Hook`])
//! that prunes a site's linears on the inputs it sees, before they are applied.
//!
//! The calibration text ([`super::text`], `Split::Calibration`: four comedies, no play of
//! the evaluation split) is tokenised. A decoder takes its first `tokens` ids cut into
//! sequences of `window` (a last, shorter piece is dropped); the embedding rows of every
//! sequence go through the blocks in order with the f32 forward pass ([`super::forward`]).
//! An encoder ([`super::encoder`]) takes the first sentences of the text's sentence rule
//! ([`super::text::token_sentences`]: 8 to 64 WordPiece ids with `[CLS]` and `[SEP]`) while
//! their ids total at most `tokens` ([`calibration_sentences`]), each sentence a sequence.
//! Within a block the linears are pruned in the order they run ("true sequential"): Q, K and
//! V on the block's input (a decoder's attention RMSNorm output; an encoder's layer input),
//! the output projection on the attention context computed with the pruned Q, K and V, the
//! FFN's first linears (a decoder's gate and up on the FFN RMSNorm output; an encoder's up on
//! the post-attention LayerNorm output) after the pruned attention, and down on their
//! activation (`SiLU(gate) up`; `GELU(up)`) of the pruned ones. The stream then continues with
//! the pruned block, as stored (kept values rounded to f16), so each block sees the pruned
//! model's activations. A family is calibrated on its densest member's outputs.
//!
//! Each linear's inputs give its Gram matrix `G = X^T X` over the `n` calibration tokens,
//! from which come the method's statistics. The report's relative output error is
//! `||X (W' - W)^T|| / ||X W^T||` of the stored member `W'` against the dense `W` on the same
//! inputs (the first [`ERROR_ROWS`] tokens of them; a decoder's at least one window). For a
//! family, the report also gives each sparser member's error when pruned on its own from the
//! dense weights (`independent_rel_error`) beside the inherited one.
//!
//! Rows keep llama.cpp's order in a decoder's output: the forward pass works with Q and K
//! rows in Hugging Face order (the GGUF's rotary permutation undone), and pruning is row by
//! row, so the pruned rows are permuted back before they are packed. An encoder's Q, K and V,
//! one `[3d x d]` linear in the pass, are three tensors in the file: pruning is row by row, so
//! its rows are cut back into them.

use std::collections::HashMap;

use super::encoder::Encoder;
use super::forward::{Dense, Hook, Model, Site};
use super::text::{SENTENCE_TOKENS, Split, load, token_sentences};
use super::tokenizer::WordPiece;
use crate::functional::llama_weights::permute_rope_rows;
use crate::workload::calibrated::{Gram, Method, prune_linear};
use crate::workload::nm::Pattern;
use crate::workload::prune::{Mask, apply, pack};
use crate::workload::stanm::{
    MemberReport, PruneError, PruneReport, PrunedLinear, Scheme, TensorReport, check_prune_args,
    is_stanm, kept_share, prune_checkpoint_with,
};
use std::path::Path;

/// Calibration tokens the report's relative errors are measured on (the first; at least one
/// window): computing outputs is the prune's largest cost, and the error's estimate is
/// steady well before.
pub const ERROR_ROWS: usize = 512;

/// A calibrated prune: the method and its calibration text.
#[derive(Clone, Debug)]
pub struct Calibrated {
    /// How the kept weights are chosen.
    pub method: Method,
    /// Calibration tokens (a decoder's: a whole number of windows is used; an encoder's: the
    /// most the sentences taken total).
    pub tokens: usize,
    /// Tokens a calibration sequence (decoders; an encoder's sequences are sentences).
    pub window: usize,
    /// Where the texts are ([`crate::eval::text::default_dir`]).
    pub text_dir: std::path::PathBuf,
}

/// The calibration inputs: token ids in sequences of `window`.
#[derive(Clone, Debug)]
pub struct Calibration {
    /// Token ids, a whole number of windows.
    pub tokens: Vec<u32>,
    /// Tokens a sequence.
    pub window: usize,
}

impl Calibration {
    /// The first `tokens` ids of `ids` in sequences of `window` (a last partial window
    /// dropped): an error when not one whole window fits.
    pub fn new(ids: &[u32], tokens: usize, window: usize) -> Result<Calibration, String> {
        let n = tokens.min(ids.len()) / window.max(1) * window;
        if window < 2 || n == 0 {
            return Err(format!(
                "{tokens} calibration tokens in windows of {window}: the text has {} tokens; \
                 give a window of 2 or more and at least one whole window",
                ids.len()
            ));
        }
        Ok(Calibration {
            tokens: ids[..n].to_vec(),
            window,
        })
    }
}

/// How the GGUF stores the rows of Q and K.
#[derive(Clone, Copy, Debug)]
pub struct QkRows {
    /// llama.cpp permuted them for its rotary (`llama` GGUFs).
    pub permuted: bool,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Head size.
    pub head_dim: usize,
}

/// Prunes every block of `model` in order with `method` and `scheme` on `calib`, leaving the
/// pruned (stored) weights in `model`; returns the pruned linears by GGUF tensor name.
/// `progress(layer)` is called as each layer is done.
pub fn prune_model(
    model: &mut Model,
    calib: &Calibration,
    method: Method,
    scheme: &Scheme,
    qk: QkRows,
    progress: &mut dyn FnMut(usize),
) -> Result<HashMap<String, PrunedLinear>, String> {
    let mut x = model.embed(&calib.tokens)?;
    let layers = model.layers();
    prune_layers(
        layers,
        ERROR_ROWS.max(calib.window),
        method,
        scheme,
        &|site, l, outs| parts_of(site, l, qk, outs),
        &mut |li, hook| model.layer_with(li, &mut x, calib.window, hook),
        progress,
    )
}

/// Prunes every layer of the encoder `enc` in order with `method` and `scheme` on the
/// calibration sentences `sentences` (token ids, each a sequence), leaving the pruned
/// (stored) weights in `enc`; returns the pruned linears by the checkpoint's tensor names.
/// `progress(layer)` is called as each layer is done.
pub fn prune_encoder(
    enc: &mut Encoder,
    sentences: &[Vec<u32>],
    method: Method,
    scheme: &Scheme,
    progress: &mut dyn FnMut(usize),
) -> Result<HashMap<String, PrunedLinear>, String> {
    let lens: Vec<usize> = sentences.iter().map(Vec::len).collect();
    let mut x = enc.embed(sentences)?;
    let prefixes: Vec<String> = (0..enc.layers())
        .map(|l| enc.prefix(l).to_owned())
        .collect();
    let d = enc.shape().hidden;
    prune_layers(
        enc.layers(),
        ERROR_ROWS,
        method,
        scheme,
        &|site, l, outs| encoder_parts(site, &prefixes[l], d, outs),
        &mut |li, hook| enc.layer_with(li, &mut x, &lens, hook),
        progress,
    )
}

/// `parts(site, layer, outs)`: the tensors of the linears of `site` in `layer` (of `outs`
/// rows each), as the file names them.
type PartsOf<'a> = dyn Fn(Site, usize, &[usize]) -> Vec<SiteLinear> + 'a;

/// The loop both models share: for each layer `li`, `run(li, hook)` runs it on the
/// calibration stream with a hook that prunes each site's linears (named by `parts(site,
/// li, outs)`) on the inputs it sees, the report's errors on the first `error_rows` of them.
fn prune_layers(
    layers: usize,
    error_rows: usize,
    method: Method,
    scheme: &Scheme,
    parts: &PartsOf<'_>,
    run: &mut dyn FnMut(usize, &mut Hook<'_>) -> Result<(), String>,
    progress: &mut dyn FnMut(usize),
) -> Result<HashMap<String, PrunedLinear>, String> {
    let mut out = HashMap::new();
    for li in 0..layers {
        let mut hook = |site: Site,
                        inputs: &[f32],
                        rows: usize,
                        linears: &mut [&mut Dense]|
         -> Result<(), String> {
            let rows_in = rows.min(error_rows);
            let x_err = &inputs[..rows_in * linears[0].k];
            let mut gram = Gram::new(linears[0].k);
            gram.add(inputs, rows);
            let outs: Vec<usize> = linears.iter().map(|l| l.out).collect();
            for (lin, names) in linears.iter_mut().zip(parts(site, li, &outs)) {
                let (rows, k) = (lin.out, lin.k);
                let family = scheme.for_class(names.class);
                let (values, masks) = prune_linear(&lin.w, rows, k, Some(&gram), method, &family)?;
                let independent = if family.len() > 1 && method != Method::Magnitude {
                    Some(independent_members(
                        &lin.w, rows, k, &gram, method, &family,
                    )?)
                } else {
                    None
                };
                let stored = apply(&values, &masks[0]);
                let mut first = 0;
                for part in &names.parts {
                    let r = first..first + part.rows;
                    first += part.rows;
                    let take = |v: &[f32]| v[r.start * k..r.end * k].to_vec();
                    let (dense, mut vals) = (take(&lin.w), take(&values));
                    let mut part_masks: Vec<Mask> =
                        masks.iter().map(|m| mask_rows(m, r.clone())).collect();
                    let members = member_reports(
                        x_err,
                        rows_in,
                        &dense,
                        &vals,
                        &part_masks,
                        independent.as_ref().map(|ind| {
                            ind.iter()
                                .map(|w| w[r.start * k..r.end * k].to_vec())
                                .collect::<Vec<_>>()
                        }),
                        k,
                    );
                    if let Some(heads) = part.rope_heads {
                        vals = permute_rope_rows(&vals, heads, k);
                        for m in &mut part_masks {
                            let groups = m.groups();
                            m.kept = permute_rope_rows(&m.kept, heads, groups);
                        }
                    }
                    let packed = pack(&vals, &part_masks);
                    let report = TensorReport {
                        name: part.name.clone(),
                        layer: li as u64,
                        class: names.class.name().into(),
                        shape: [part.rows, k],
                        dense_bytes: (part.rows * k * 2) as u64,
                        members,
                        family_bytes: (packed.values.len()
                            + packed.indices.len()
                            + packed.tags.len()) as u64,
                    };
                    out.insert(part.name.clone(), PrunedLinear { packed, report });
                }
                lin.w = stored;
            }
            Ok(())
        };
        run(li, &mut hook)?;
        progress(li);
    }
    Ok(out)
}

/// Each member of `family` after the densest pruned on its own from `w`, stored (f16).
fn independent_members(
    w: &[f32],
    rows: usize,
    k: usize,
    gram: &Gram,
    method: Method,
    family: &[Pattern],
) -> Result<Vec<Vec<f32>>, String> {
    family[1..]
        .iter()
        .map(|&p| {
            let (v, m) = prune_linear(w, rows, k, Some(gram), method, &[p])?;
            Ok(apply(&v, &m[0]))
        })
        .collect()
}

/// The members' numbers: bytes, kept magnitude and relative output error on the inputs `x`
/// (`n x k`) against `dense` (`rows x k`; all weights row-major), and for a family the error of each sparser member
/// pruned independently (`independent`).
fn member_reports(
    x: &[f32],
    n: usize,
    dense: &[f32],
    values: &[f32],
    masks: &[Mask],
    independent: Option<Vec<Vec<f32>>>,
    k: usize,
) -> Vec<MemberReport> {
    let rows = dense.len() / k;
    let y = Dense::new(rows, k, dense.to_vec(), vec![0.0; rows]).apply(x, n);
    let error = |w: Vec<f32>| rel_error(&y, &Dense::new(rows, k, w, vec![0.0; rows]).apply(x, n));
    masks
        .iter()
        .enumerate()
        .map(|(j, m)| {
            let wp = apply(values, m);
            let ind = independent
                .as_ref()
                .and_then(|v| j.checked_sub(1).map(|i| error(v[i].clone())));
            MemberReport {
                pattern: m.pattern.to_string(),
                bytes: m.pattern.stored_bytes(k as u64, rows as u64, 16),
                kept_magnitude: kept_share(dense, &wp),
                rel_error: error(wp),
                independent_rel_error: ind,
            }
        })
        .collect()
}

/// `||y' - y|| / ||y||` (f64 sums; 0 when both are zero).
fn rel_error(y: &[f32], y_pruned: &[f32]) -> f64 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (a, b) in y.iter().zip(y_pruned) {
        let (a, b) = (f64::from(*a), f64::from(*b));
        num += (b - a) * (b - a);
        den += a * a;
    }
    if den == 0.0 {
        return if num == 0.0 { 0.0 } else { f64::INFINITY };
    }
    (num / den).sqrt()
}

/// Rows `r` of `m`.
fn mask_rows(m: &Mask, r: std::ops::Range<usize>) -> Mask {
    let g = m.groups();
    Mask {
        rows: r.len(),
        k: m.k,
        pattern: m.pattern,
        kept: m.kept[r.start * g..r.end * g].to_vec(),
    }
}

/// A linear of a site as the GGUF names it: its tensors (Q, K and V are one linear in the
/// forward pass, three tensors in the file) and class.
struct SiteLinear {
    class: crate::workload::checkpoint::Class,
    parts: Vec<Part>,
}

struct Part {
    name: String,
    rows: usize,
    /// Heads of a Q or K part whose rows llama.cpp permuted (they are permuted back).
    rope_heads: Option<usize>,
}

/// The GGUF tensors of the linears of `site` in block `l` (of `outs` rows each), in the
/// forward pass's order.
fn parts_of(site: Site, l: usize, qk: QkRows, outs: &[usize]) -> Vec<SiteLinear> {
    use crate::workload::checkpoint::Class;
    let name = |t: &str| format!("blk.{l}.{t}.weight");
    let one = |t: &str, class: Class, i: usize| SiteLinear {
        class,
        parts: vec![Part {
            name: name(t),
            rows: outs[i],
            rope_heads: None,
        }],
    };
    let dh = qk.head_dim;
    match site {
        Site::Qkv => vec![SiteLinear {
            class: Class::Qkv,
            parts: vec![
                Part {
                    name: name("attn_q"),
                    rows: qk.heads * dh,
                    rope_heads: qk.permuted.then_some(qk.heads),
                },
                Part {
                    name: name("attn_k"),
                    rows: qk.kv_heads * dh,
                    rope_heads: qk.permuted.then_some(qk.kv_heads),
                },
                Part {
                    name: name("attn_v"),
                    rows: qk.kv_heads * dh,
                    rope_heads: None,
                },
            ],
        }],
        Site::OProj => vec![one("attn_output", Class::Proj, 0)],
        Site::GateUp => vec![
            one("ffn_gate", Class::Ffn1, 0),
            one("ffn_up", Class::Ffn1, 1),
        ],
        Site::Down => vec![one("ffn_down", Class::Ffn2, 0)],
    }
}

/// The checkpoint's tensors of the linears of `site` in the encoder layer of name prefix
/// `prefix` (hidden `d`; `outs` rows each), in the forward pass's order.
fn encoder_parts(site: Site, prefix: &str, d: usize, outs: &[usize]) -> Vec<SiteLinear> {
    use crate::workload::checkpoint::Class;
    let part = |t: &str, rows: usize| Part {
        name: format!("{prefix}{t}.weight"),
        rows,
        rope_heads: None,
    };
    let one = |t: &str, class: Class| SiteLinear {
        class,
        parts: vec![part(t, outs[0])],
    };
    match site {
        Site::Qkv => vec![SiteLinear {
            class: Class::Qkv,
            parts: vec![
                part("attention.self.query", d),
                part("attention.self.key", d),
                part("attention.self.value", d),
            ],
        }],
        Site::OProj => vec![one("attention.output.dense", Class::Proj)],
        Site::GateUp => vec![one("intermediate.dense", Class::Ffn1)],
        Site::Down => vec![one("output.dense", Class::Ffn2)],
    }
}

/// The first sentences of `text` by the sentence rule ([`token_sentences`], `encode` the
/// tokeniser), in order, while their ids total at most `tokens`; an error when not one fits.
pub fn calibration_sentences(
    text: &str,
    encode: impl Fn(&str) -> Vec<u32>,
    tokens: usize,
) -> Result<Vec<Vec<u32>>, String> {
    let mut total = 0;
    let out: Vec<Vec<u32>> = token_sentences(text, encode)
        .take_while(|s| {
            total += s.len();
            total <= tokens
        })
        .collect();
    if out.is_empty() {
        return Err(format!(
            "{tokens} calibration tokens: not one calibration sentence ({} to {} tokens) fits",
            SENTENCE_TOKENS.start(),
            SENTENCE_TOKENS.end()
        ));
    }
    Ok(out)
}

/// Prunes the safetensors encoder checkpoint `src` with `scheme` into `out`, layer by layer on
/// the calibration sentences of `c` ([`prune_encoder`]), tokenised by the `tokenizer.json`
/// beside `src`; every other tensor is copied as [`prune_checkpoint_with`] does.
/// `progress(layer)` is called as each layer is done.
pub fn prune_encoder_checkpoint(
    src: &Path,
    scheme: &Scheme,
    out: &Path,
    seed: u64,
    c: &Calibrated,
    progress: &mut dyn FnMut(usize),
) -> Result<PruneReport, PruneError> {
    check_prune_args(src, scheme, out)?;
    let input = |m: String| PruneError::Input(m);
    if is_stanm(src) {
        return Err(input(format!(
            "`{}` is a .stanm, pruned already: prune its source safetensors checkpoint",
            src.display()
        )));
    }
    let text = load(&c.text_dir, Split::Calibration).map_err(|m| {
        input(format!(
            "{m}: the calibration text is missing (run scripts/fetch-text.sh, or set STASIM_TEXT)"
        ))
    })?;
    let tok_path = src.with_file_name("tokenizer.json");
    let tok = WordPiece::from_file(&tok_path).map_err(|e| input(e.to_string()))?;
    let sentences = calibration_sentences(&text, |s| tok.encode(s), c.tokens).map_err(input)?;
    let mut enc = Encoder::from_file(src, None).map_err(input)?;
    let pruned = prune_encoder(&mut enc, &sentences, c.method, scheme, progress)
        .map_err(|m| input(format!("`{}`: {m}", src.display())))?;
    prune_checkpoint_with(src, scheme, out, seed, Some(pruned))
}
