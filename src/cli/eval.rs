//! `stasim eval CHECKPOINT [--tokens N] [--window W] [--member P] [--json]`: the perplexity
//! of SmolLM2-135M (its GGUF, or a `.stanm` that `stasim prune` made of it) on the held-out
//! evaluation text (`src/eval/text.rs`: four tragedies), tokenised by the GGUF's own BPE
//! (`src/eval/tokenizer.rs`), with the fast f32 forward pass (`src/eval/forward.rs`): the
//! first N tokens of the text, in windows of W tokens.

use std::path::{Path, PathBuf};
use std::time::Instant;

use stasim::Error;
use stasim::eval::forward::Model;
use stasim::eval::text::{self, Split};
use stasim::eval::tokenizer::ByteBpe;
use stasim::functional::llama_weights::LlamaWeights;
use stasim::gguf::prune::is_gguf;
use stasim::run::{WorkloadArgs, resolve_workload};
use stasim::topology::Source;
use stasim::workload::{Pattern, Workload};

/// Arguments of `eval`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// SmolLM2's GGUF, or a decoder `.stanm` pruned from it.
    pub checkpoint: PathBuf,
    /// Tokens of the evaluation text scored.
    #[arg(long, default_value_t = 1024)]
    pub tokens: usize,
    /// Tokens a window (each window is a sequence of its own).
    #[arg(long, default_value_t = 256)]
    pub window: usize,
    /// With a `.stanm` family: the member to score (default the densest).
    #[arg(long)]
    pub member: Option<String>,
    /// The GGUF whose tokeniser to use (default: CHECKPOINT if it is a GGUF, else where
    /// scripts/fetch-smollm2.sh puts SmolLM2).
    #[arg(long, value_name = "GGUF")]
    pub tokenizer: Option<PathBuf>,
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
            "predicted": n,
            "perplexity": ppl,
        });
        outln!("{}", serde_json::to_string_pretty(&j).unwrap_or_default());
    } else {
        outln!(
            "perplexity {ppl:.3} on the evaluation text (Hamlet, Macbeth, Othello, Lear): {n} tokens predicted, the first {} in windows of {} ({ckpt}, patterns qkv,proj,ffn1,ffn2 = {patterns}; {wall:.1} s)",
            a.tokens,
            a.window
        );
    }
    Ok(())
}
