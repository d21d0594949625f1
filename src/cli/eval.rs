//! `stasim eval CHECKPOINT [--tokens N] [--window W] [--member P] [--value-bits 16|8]
//! [--json]`: the perplexity of SmolLM2-135M (its GGUF, or a `.stanm` that `stasim prune` made of it) on the held-out
//! evaluation text (`src/eval/text.rs`: four tragedies), tokenised by the GGUF's own BPE
//! (`src/eval/tokenizer.rs`), with the fast f32 forward pass (`src/eval/forward.rs`): the
//! first N tokens of the text, in windows of W tokens.
//!
//! `stasim eval CHECKPOINT [--dense MODEL] [--sentences N] [--member P] [--json]` for MiniLM
//! (its safetensors, or a `.stanm` pruned from it: an encoder): how close its sentence
//! embeddings stay to the dense model's (`src/eval/encoder.rs`) on the first N held-out
//! sentences of the evaluation text (`src/eval/text.rs`'s sentence rule), tokenised by
//! MiniLM's WordPiece: the mean, smallest and 10th-percentile cosine.

use std::path::{Path, PathBuf};
use std::time::Instant;

use stasim::Error;
use stasim::eval::encoder::{Encoder, compare};
use stasim::eval::forward::Model;
use stasim::eval::text::{self, Split};
use stasim::eval::tokenizer::{ByteBpe, WordPiece};
use stasim::functional::llama_weights::LlamaWeights;
use stasim::gguf::prune::is_gguf;
use stasim::run::{WorkloadArgs, resolve_workload};
use stasim::topology::Source;
use stasim::workload::stanm::is_stanm;
use stasim::workload::{Pattern, Workload};

/// MiniLM's safetensors under the cache folder, where scripts/fetch-minilm.sh puts it.
const MINILM: &str = "minilm/model.safetensors";

/// Arguments of `eval`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// SmolLM2's GGUF, or a decoder `.stanm` pruned from it; or MiniLM's safetensors, or an
    /// encoder `.stanm` pruned from it.
    pub checkpoint: PathBuf,
    /// Tokens of the evaluation text scored (decoders).
    #[arg(long, default_value_t = 1024)]
    pub tokens: usize,
    /// Tokens a window (each window is a sequence of its own; decoders).
    #[arg(long, default_value_t = 256)]
    pub window: usize,
    /// With a `.stanm` family: the member to score (default the densest).
    #[arg(long)]
    pub member: Option<String>,
    /// The GGUF whose tokeniser to use (default: CHECKPOINT if it is a GGUF, else where
    /// scripts/fetch-smollm2.sh puts SmolLM2); for an encoder its tokenizer.json (default:
    /// the one beside the dense model).
    #[arg(long, value_name = "GGUF|JSON")]
    pub tokenizer: Option<PathBuf>,
    /// An encoder's dense model, whose sentence embeddings the checkpoint's are compared
    /// with (default: where scripts/fetch-minilm.sh puts MiniLM).
    #[arg(long, value_name = "SAFETENSORS")]
    pub dense: Option<PathBuf>,
    /// Held-out sentences an encoder is scored on (the first of the evaluation text).
    #[arg(long, default_value_t = 256)]
    pub sentences: usize,
    /// A decoder's value bits: 16 (the stored f16 values) or 8 (weights and activations
    /// rounded to 8-bit fixed point, as `stasim explore --value-bits 8` scores them).
    #[arg(long, default_value_t = 16)]
    pub value_bits: u32,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The f32 model of `checkpoint` (SmolLM2's GGUF, or a decoder `.stanm`; `member`: the family
/// member of a `.stanm`) and its workload.
pub(super) fn load_model(
    checkpoint: &Path,
    member: Option<&str>,
) -> Result<(Model, Workload), Error> {
    let ckpt = checkpoint.display().to_string();
    let gguf = is_gguf(checkpoint);
    let topo = stasim::topology::load(&Source::read("sta")?, &[])?;
    let args = if gguf {
        WorkloadArgs {
            model: Some("smollm2-135m".into()),
            pattern: Some("dense".into()),
            ..WorkloadArgs::default()
        }
    } else {
        WorkloadArgs {
            checkpoint: Some(checkpoint.to_path_buf()),
            member: member.map(str::to_owned),
            ..WorkloadArgs::default()
        }
    };
    let w = resolve_workload(&topo, &args)?;
    if w.model.decoder.is_none() {
        return Err(super::arg_error(
            format!("{ckpt} is not a decoder"),
            &ckpt,
            "eval scores decoders (SmolLM2's GGUF or a .stanm pruned from it)",
        ));
    }
    let bad = |m: String| super::arg_error(m, &ckpt, "check the file, or re-run stasim prune");
    let weights = if gguf {
        LlamaWeights::from_gguf(checkpoint, &w).map_err(bad)?
    } else {
        let member = member.map(Pattern::parse).transpose().map_err(|m| {
            super::arg_error(m, "--member", "a pattern of the file's family, e.g. 2:4")
        })?;
        LlamaWeights::from_stanm(checkpoint, member, &w).map_err(bad)?
    };
    let model = Model::of_workload(&weights, &w).map_err(bad)?;
    Ok((model, w))
}

/// Runs `eval`.
pub fn run(a: &Args) -> Result<(), Error> {
    let ckpt = a.checkpoint.display().to_string();
    if !a.checkpoint.is_file() {
        return Err(super::arg_error(
            format!("{ckpt} not found"),
            &ckpt,
            "give SmolLM2's GGUF (scripts/fetch-smollm2.sh) or a .stanm pruned from it",
        ));
    }
    if !stasim::workload::VALUE_BITS.contains(&u64::from(a.value_bits)) {
        return Err(super::arg_error(
            format!(
                "--value-bits {}: the simulator's values are 16 or 8 bits",
                a.value_bits
            ),
            "--value-bits",
            "16 or 8",
        ));
    }
    if is_encoder(&a.checkpoint) {
        if a.value_bits != 16 {
            return Err(super::arg_error(
                "--value-bits: an encoder's cosine is of its stored values",
                "--value-bits",
                "leave it out for an encoder",
            ));
        }
        return run_encoder(a);
    }
    let tok_path = a.tokenizer.clone().unwrap_or_else(|| {
        if is_gguf(&a.checkpoint) {
            a.checkpoint.clone()
        } else {
            super::cached(super::SMOLLM2_GGUF)
        }
    });
    let bpe = ByteBpe::from_gguf_file(&tok_path)?;
    let t = text::load(&text::default_dir(), Split::Evaluation)
        .map_err(|m| super::arg_error(m, "evaluation text", "run scripts/fetch-text.sh"))?;
    let ids = bpe.encode(&t);
    if a.window < 2 || a.tokens < 2 || a.tokens > ids.len() {
        return Err(super::arg_error(
            format!(
                "--tokens {} --window {}: the evaluation text has {} tokens; give 2 <= --tokens <= {} and --window >= 2",
                a.tokens,
                a.window,
                ids.len(),
                ids.len()
            ),
            "--tokens",
            "e.g. --tokens 1024 --window 256",
        ));
    }
    let (model, w) = load_model(&a.checkpoint, a.member.as_deref())?;
    let model = match a.value_bits {
        16 => model,
        b => model.with_value_bits(b).map_err(Error::Failed)?,
    };
    let t0 = Instant::now();
    let (ppl, n) = model
        .perplexity(&ids[..a.tokens], a.window)
        .map_err(Error::Failed)?;
    let wall = t0.elapsed().as_secs_f64();
    let patterns = w.patterns.all().map(|p| p.to_string()).join(",");
    if a.json {
        let j = serde_json::json!({
            "checkpoint": ckpt,
            "patterns": patterns,
            "text": "evaluation",
            "tokens": a.tokens,
            "window": a.window,
            "value_bits": a.value_bits,
            "predicted": n,
            "perplexity": ppl,
        });
        outln!("{}", serde_json::to_string_pretty(&j).unwrap_or_default());
    } else {
        outln!(
            "perplexity {ppl:.3} on the evaluation text (Hamlet, Macbeth, Othello, Lear): {n} tokens predicted, the first {} in windows of {} ({ckpt}, patterns qkv,proj,ffn1,ffn2 = {patterns}{}; {wall:.1} s)",
            a.tokens,
            a.window,
            if a.value_bits == 16 {
                String::new()
            } else {
                format!(", {}-bit values", a.value_bits)
            }
        );
    }
    Ok(())
}

/// Whether `path` holds an encoder: a safetensors file (an 8-byte header length, then the
/// JSON header's `{`), or a `.stanm` whose header records no decoder.
fn is_encoder(path: &Path) -> bool {
    if is_gguf(path) {
        return false;
    }
    if is_stanm(path) {
        return stasim::workload::stanm::load_model(path, None)
            .is_ok_and(|(shape, _)| shape.decoder.is_none());
    }
    use std::io::Read;
    let mut head = [0u8; 9];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head[8] == b'{'
}

/// `eval` of an encoder: its sentence embeddings' cosines to the dense model's.
fn run_encoder(a: &Args) -> Result<(), Error> {
    let ckpt = a.checkpoint.display().to_string();
    let dense_path = a.dense.clone().unwrap_or_else(|| super::cached(MINILM));
    let dense_name = dense_path.display().to_string();
    if !dense_path.is_file() {
        return Err(super::arg_error(
            format!("the dense model {dense_name} is not found"),
            "--dense",
            "run scripts/fetch-minilm.sh, or give --dense MODEL.safetensors (the checkpoint the .stanm was pruned from)",
        ));
    }
    if a.sentences == 0 {
        return Err(super::arg_error(
            "--sentences 0: nothing to score",
            "--sentences",
            "e.g. --sentences 256",
        ));
    }
    let member = a
        .member
        .as_deref()
        .map(Pattern::parse)
        .transpose()
        .map_err(|m| super::arg_error(m, "--member", "a pattern of the file's family, e.g. 2:4"))?;
    let tok_path = a
        .tokenizer
        .clone()
        .unwrap_or_else(|| dense_path.with_file_name("tokenizer.json"));
    let tok = WordPiece::from_file(&tok_path)?;
    let t = text::load(&text::default_dir(), Split::Evaluation)
        .map_err(|m| super::arg_error(m, "evaluation text", "run scripts/fetch-text.sh"))?;
    let ids: Vec<Vec<u32>> = text::token_sentences(&t, |s| tok.encode(s))
        .take(a.sentences)
        .collect();
    if ids.len() < a.sentences {
        return Err(super::arg_error(
            format!(
                "--sentences {}: the evaluation text has {} sentences of {} to {} tokens",
                a.sentences,
                ids.len(),
                text::SENTENCE_TOKENS.start(),
                text::SENTENCE_TOKENS.end()
            ),
            "--sentences",
            format!("give 1 to {}", ids.len()),
        ));
    }
    let dense = Encoder::from_file(&dense_path, None).map_err(|m| {
        super::arg_error(
            m,
            &dense_name,
            "give MiniLM's model.safetensors (scripts/fetch-minilm.sh)",
        )
    })?;
    let model = Encoder::from_file(&a.checkpoint, member)
        .map_err(|m| super::arg_error(m, &ckpt, "check the file, or re-run stasim prune"))?;
    if model.shape() != dense.shape() {
        return Err(super::arg_error(
            format!(
                "{ckpt} ({}) is not of the dense model {dense_name} ({})",
                model.shape(),
                dense.shape()
            ),
            &ckpt,
            "give a .stanm pruned from the --dense model, or --dense its source checkpoint",
        ));
    }
    let patterns = if is_stanm(&a.checkpoint) {
        stasim::workload::stanm::load_model(&a.checkpoint, member)
            .ok()
            .and_then(|(_, p)| p.first().copied())
            .map_or_else(String::new, |p| p.all().map(|x| x.to_string()).join(","))
    } else {
        "dense,dense,dense,dense".into()
    };
    let t0 = Instant::now();
    let want = dense.sentence_embeddings(&ids).map_err(Error::Failed)?;
    let got = model.sentence_embeddings(&ids).map_err(Error::Failed)?;
    let wall = t0.elapsed().as_secs_f64();
    let c = compare(&want, &got).ok_or_else(|| Error::Failed("no sentence scored".into()))?;
    let tokens: usize = ids.iter().map(Vec::len).sum();
    if a.json {
        let j = serde_json::json!({
            "checkpoint": ckpt,
            "dense": dense_name,
            "patterns": patterns,
            "text": "evaluation",
            "sentences": c.sentences,
            "tokens": tokens,
            "mean_cosine": c.mean,
            "min_cosine": c.min,
            "p10_cosine": c.p10,
            "seconds": wall,
        });
        outln!("{}", serde_json::to_string_pretty(&j).unwrap_or_default());
    } else {
        outln!(
            "mean cosine {:.5} to the dense model's sentence embeddings (min {:.5}, p10 {:.5}) on {} held-out sentences of the evaluation text (Hamlet, Macbeth, Othello, Lear; {tokens} tokens) ({ckpt}, patterns qkv,proj,ffn1,ffn2 = {patterns}; dense {dense_name}; {wall:.1} s)",
            c.mean,
            c.min,
            c.p10,
            c.sentences
        );
    }
    Ok(())
}
