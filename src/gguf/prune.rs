//! `stasim prune model.gguf --pattern 2:4 --out m.stanm`: a Llama-family decoder's GGUF
//! (architectures `llama`, `mistral`, `qwen2`) pruned into a `.stanm` file
//! ([`crate::workload::stanm`]).
//!
//! Every tensor is dequantised to f32 ([`super::dequant`]), one at a time. The seven linear
//! weights of each block (`blk.{i}.attn_q`, `attn_k`, `attn_v`, `attn_output`, `ffn_gate`,
//! `ffn_up`, `ffn_down`, classes `qkv`, `qkv`, `qkv`, `proj`, `ffn1`, `ffn1`, `ffn2`) are
//! pruned with the scheme as `stasim prune` prunes a safetensors checkpoint (the `N` largest
//! `|w|` of each group of `M` inputs, values stored as f16). Every other tensor is kept dense:
//! the 2-D tables (`token_embd.weight`, an untied `output.weight`) as F16, the value format
//! STA streams; the vectors (RMSNorm scales, Qwen2's biases) as F32, exactly the dequantised
//! values. Rows stay in the file's order: llama.cpp permutes the Q and K rows of a `llama`
//! GGUF for its rotary, which the header records (`qk_rows_permuted`) and a functional run
//! undoes ([`crate::functional::llama_weights`]); pruning works row by row, so the order does
//! not change what is kept.
//!
//! With a calibrated method (`--method wanda|sparsegpt`, or magnitude with the error on real
//! activations) the whole model is read into f32 first and pruned layer by layer on the
//! calibration text ([`crate::eval::calibrate`]); the file is then written as above, the
//! linears already pruned.
//!
//! The header's decoder config comes from the GGUF metadata ([`super::LlamaHyper`]). A file
//! that is not a GGUF, another architecture, partial rotary, a block with a weight missing
//! or of the wrong shape, or a tensor type stasim cannot dequantise is an input error naming
//! the file and the key or tensor.

use std::borrow::Cow;
use std::path::Path;

use safetensors::Dtype;

use std::collections::HashMap;

use super::Gguf;
use crate::eval::calibrate::{Calibration, QkRows, prune_model};
use crate::eval::forward::Model;
use crate::eval::text::{self, Split};
use crate::eval::tokenizer::ByteBpe;
use crate::workload::checkpoint::{check_values, decoder_role};
use crate::workload::stanm::{
    Config, DecoderConfig, PruneError, PruneReport, PrunedLinear, Scheme, SourceData, SourceTensor,
    check_prune_args, write_stanm,
};
use crate::workload::{Pattern, Patterns, Phase, Workload};

/// The architectures whose blocks have the seven linear weights stasim lowers.
pub const ARCHITECTURES: &[&str] = &["llama", "mistral", "qwen2"];

/// Whether the file at `path` starts with the GGUF magic.
pub fn is_gguf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == super::MAGIC
}

pub use crate::eval::calibrate::Calibrated;

/// Prunes the decoder GGUF `src` with `scheme` into `out`: one tensor at a time by magnitude
/// (`seed` seeds the reconstruction error's inputs), or, with `calibrated`, layer by layer on
/// the calibration text (`progress(layer)` as each is done).
pub fn prune_gguf(
    src: &Path,
    scheme: &Scheme,
    out: &Path,
    seed: u64,
    calibrated: Option<&Calibrated>,
    progress: &mut dyn FnMut(usize),
) -> Result<PruneReport, PruneError> {
    check_prune_args(src, scheme, out)?;
    let input = |m: String| PruneError::Input(m);
    let g = Gguf::open(src).map_err(|e| input(e.to_string()))?;
    let hp = g.llama_hyper().map_err(|e| input(e.to_string()))?;
    let named = |m: String| input(format!("`{}`: {m}", src.display()));
    if !ARCHITECTURES.contains(&hp.architecture.as_str()) {
        return Err(named(format!(
            "`general.architecture` is `{}`; stasim prunes the Llama family: {}",
            hp.architecture,
            ARCHITECTURES.join(", ")
        )));
    }
    if hp.rope_dims != hp.head_dim {
        return Err(named(format!(
            "rotary over {} of {} head dimensions (partial rotary) is not modelled",
            hp.rope_dims, hp.head_dim
        )));
    }
    let mut tensors = Vec::with_capacity(g.tensors().len());
    for t in g.tensors() {
        if !t.ty.is_supported() {
            return Err(named(format!(
                "tensor `{}` has type {}, which stasim cannot dequantise; supported: {}",
                t.name,
                t.ty.name,
                super::dequant::supported_list()
            )));
        }
        let shape: Vec<u64> = t.shape().iter().map(|&x| x as u64).collect();
        let linear = match decoder_role(&t.name) {
            Some((layer, _)) if layer >= hp.layers => {
                return Err(named(format!(
                    "tensor `{}` is in block {layer}, but `{}.block_count` = {}",
                    t.name, hp.architecture, hp.layers
                )));
            }
            Some((layer, r)) => Some((layer, r.class())),
            None => None,
        };
        // Tables as f16 (STA's value format), vectors exactly (f32).
        let dtype = if shape.len() >= 2 {
            Dtype::F16
        } else {
            Dtype::F32
        };
        tensors.push(SourceTensor {
            name: t.name.clone(),
            bytes: t.elems() * dtype.bitsize() as u64 / 8,
            shape,
            linear,
            dtype,
        });
    }
    let config = Config {
        hidden: hp.hidden,
        heads: hp.heads,
        ffn: hp.ffn,
        layers: hp.layers,
        decoder: Some(DecoderConfig {
            kv_heads: hp.kv_heads,
            head_dim: hp.head_dim,
            vocab: hp.vocab,
            rope_theta: hp.rope_freq_base,
            rms_eps: hp.rms_eps,
            tied_embeddings: !hp.untied_lm_head,
            qkv_bias: hp.attn_bias,
            max_context: hp.context_length,
            qk_rows_permuted: hp.architecture == "llama",
        }),
    };
    let mut pruned = match calibrated {
        Some(c) => calibrate(src, &hp, &config, scheme, c, progress)?,
        None => HashMap::new(),
    };
    let mut read = |i: usize| -> Result<SourceData<'static>, String> {
        let t = &tensors[i];
        if let Some(p) = pruned.remove(&t.name) {
            return Ok(SourceData::Pruned(Box::new(p)));
        }
        let (_, v) = g.tensor_f32(&t.name).map_err(|e| e.to_string())?;
        if t.linear.is_some() {
            if calibrated.is_some() {
                return Err(format!(
                    "tensor `{}` was not calibrated (a bug: please report it)",
                    t.name
                ));
            }
            return Ok(SourceData::Linear(v));
        }
        let f16 = t.dtype == Dtype::F16;
        check_values(&t.name, &t.shape, v.iter().copied(), f16)?;
        let bytes: Vec<u8> = if f16 {
            v.iter()
                .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
                .collect()
        } else {
            v.iter().flat_map(|x| x.to_le_bytes()).collect()
        };
        Ok(SourceData::Dense(Cow::Owned(bytes)))
    };
    write_stanm(src, scheme, out, seed, config, &tensors, &mut read)
}

/// The block linears of `src` pruned layer by layer with `c` ([`crate::eval::calibrate`]).
fn calibrate(
    src: &Path,
    hp: &super::LlamaHyper,
    config: &Config,
    scheme: &Scheme,
    c: &Calibrated,
    progress: &mut dyn FnMut(usize),
) -> Result<HashMap<String, PrunedLinear>, PruneError> {
    let input = |m: String| PruneError::Input(format!("`{}`: {m}", src.display()));
    let text = text::load(&c.text_dir, Split::Calibration).map_err(|m| {
        PruneError::Input(format!(
            "{m}: the calibration text is missing (run scripts/fetch-text.sh, or set STASIM_TEXT)"
        ))
    })?;
    let bpe = ByteBpe::from_gguf_file(src).map_err(|e| input(e.to_string()))?;
    let calib = Calibration::new(&bpe.encode(&text), c.tokens, c.window).map_err(input)?;
    let shape = config.shape(
        src.file_stem()
            .map_or_else(|| "gguf".into(), |s| s.to_string_lossy().into_owned()),
    );
    let w = Workload {
        model: shape,
        seq: c.window as u64,
        batch: 1,
        layers: hp.layers,
        patterns: Patterns::uniform(Pattern::DENSE),
        per_layer: Vec::new(),
        value_bits: 16,
        phase: Phase::Prefill,
    };
    let mut model = Model::from_gguf(src, &w).map_err(input)?;
    let qk = QkRows {
        permuted: hp.architecture == "llama",
        heads: hp.heads as usize,
        kv_heads: hp.kv_heads as usize,
        head_dim: hp.head_dim as usize,
    };
    prune_model(&mut model, &calib, c.method, scheme, qk, progress).map_err(input)
}
