//! `stasim explore [GGUF] --from PRUNED.stanm... [--patterns P,..] [--tokens N] [--window W]
//! [--context C] [--batch B] [--topology T] [--budget K] [--value-bits 16,8] [--out DIR]
//! [--json]`: the accuracy-latency explorer ([`stasim::explore`]) over per-class N:M choices
//! (and value widths) of a decoder
//! (SmolLM2 by default), from uniformly pruned `.stanm` files of it. Writes `DIR/points.csv`,
//! `frontier.csv`, `explore.json`, `frontier.png|svg` and the caches; every frontier point
//! is re-simulated and re-evaluated before the command succeeds (exit 1 if one differs).

use std::path::PathBuf;

use stasim::Error;
use stasim::explore::{Explorer, Settings, output};
use stasim::topology::Source;
use stasim::workload::Pattern;

/// Arguments of `explore`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The dense decoder's GGUF (default: SmolLM2's, where scripts/fetch-smollm2.sh puts it).
    pub gguf: Option<PathBuf>,
    /// A `.stanm` pruned from the GGUF by `stasim prune` (repeat; each member is an option;
    /// the first file holding a pattern gives it).
    #[arg(long = "from", value_name = "STANM", required = true)]
    pub from: Vec<PathBuf>,
    /// Only these sparse patterns of the files (default all their members).
    #[arg(long, value_delimiter = ',')]
    pub patterns: Option<Vec<String>>,
    /// Evaluation tokens of a perplexity.
    #[arg(long, default_value_t = 512)]
    pub tokens: usize,
    /// Tokens a window.
    #[arg(long, default_value_t = 256)]
    pub window: usize,
    /// The decode step's context (tokens in the KV cache).
    #[arg(long, default_value_t = 512)]
    pub context: u64,
    /// Sequences a decode step.
    #[arg(long, default_value_t = 1)]
    pub batch: u64,
    /// Topology file or built-in name.
    #[arg(long, default_value = "sta")]
    pub topology: String,
    /// Candidates measured at most after the probes (per value width).
    #[arg(long, default_value_t = 48)]
    pub budget: usize,
    /// Value widths to search, each as a whole: 16 (the stored f16 values) and/or 8 (weights
    /// and activations in 8-bit fixed point; the simulator's `value_bits: 8`).
    #[arg(long, value_delimiter = ',', default_value = "16")]
    pub value_bits: Vec<u32>,
    /// Output folder (also holds the caches).
    #[arg(long, default_value = "results/explore")]
    pub out: PathBuf,
    /// Print the frontier as JSON (explore.json) instead of the text summary.
    #[arg(long)]
    pub json: bool,
}

/// Runs `explore`.
pub fn run(a: &Args) -> Result<(), Error> {
    let gguf = a
        .gguf
        .clone()
        .unwrap_or_else(|| super::cached(super::SMOLLM2_GGUF));
    for f in std::iter::once(&gguf).chain(&a.from) {
        if !f.is_file() {
            return Err(super::arg_error(
                format!("{} not found", f.display()),
                &f.display().to_string(),
                "give SmolLM2's GGUF (scripts/fetch-smollm2.sh) and .stanm files stasim prune made of it",
            ));
        }
    }
    let only = a
        .patterns
        .as_ref()
        .map(|ps| {
            ps.iter()
                .map(|p| Pattern::parse(p))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .map_err(|m| {
            super::arg_error(
                m,
                "--patterns",
                "sparse patterns the files hold, e.g. 2:4,2:8",
            )
        })?;
    if a.batch == 0 || a.context == 0 {
        return Err(super::arg_error(
            "--batch and --context must be at least 1",
            "--batch",
            "e.g. --context 512 --batch 1",
        ));
    }
    let src = Source::read(&a.topology)?;
    let topo = stasim::topology::load(&src, &[])?;
    let s = Settings {
        gguf,
        files: a.from.clone(),
        only,
        tokens: a.tokens,
        window: a.window,
        context: a.context,
        batch: a.batch,
        budget: a.budget,
        value_bits: a.value_bits.clone(),
        text_dir: stasim::eval::text::default_dir(),
        cache_dir: Some(a.out.clone()),
    };
    stasim::io::create_folder(&a.out)?;
    let say = |m: &str| eprintln!("{m}");
    let mut ex = Explorer::new(&s, topo, &src.text, &say)?;
    let o = ex.search(a.budget, &say)?;
    eprintln!(
        "searched in {:.1} s ({} latencies and {} perplexities from the caches); verifying the {} frontier points",
        o.wall_s,
        o.cached.0,
        o.cached.1,
        o.frontier.len()
    );
    let bad = ex.verify(&o, &say)?;
    let files = output::write(&o, &s, &a.out).map_err(Error::Output)?;
    if a.json {
        let j = std::fs::read_to_string(a.out.join("explore.json"))
            .map_err(|e| Error::Output(e.to_string()))?;
        out!("{j}");
    } else {
        out!("{}", output::summary(&o));
        outln!(
            "wrote {}",
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !bad.is_empty() {
        return Err(Error::Failed(format!(
            "{} frontier points did not re-simulate and re-evaluate to their recorded values (a stale cache? delete {}/*-cache.csv)",
            bad.len(),
            a.out.display()
        )));
    }
    outln!("every frontier point re-simulated and re-evaluated to its recorded values");
    Ok(())
}
