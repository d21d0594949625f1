//! `stasim bench pipeline --transactions T`: the kernel benchmark of BENCH.md;
//! `stasim bench replay`: DRAM trace replay, requests per second (`src/replay/bench.rs`);
//! `stasim bench forward`: the f32 forward pass of SmolLM2-135M (`src/eval/forward.rs`),
//! tokens per second.

use stasim::Error;
use stasim::bench::{PipelineResult, peak_rss_kib, run_pipeline};
use stasim::topology::Source;

/// Which benchmark.
#[derive(clap::Subcommand, Debug)]
pub enum Which {
    /// source -> 5 stages -> sink over depth-4 FIFOs; prints a RESULT line per repetition.
    Pipeline(PipelineArgs),
    /// DRAM trace replay: requests/s on the five canonical traces (or `--trace FILE`s);
    /// prints a RESULT line per run and a MEDIAN line per trace.
    Replay(ReplayBenchArgs),
    /// The fast f32 forward pass (src/eval/forward.rs) of SmolLM2-135M from its GGUF over
    /// one sequence of seeded tokens; prints a RESULT line per repetition.
    Forward(ForwardBenchArgs),
}

/// Arguments of `bench forward`.
#[derive(clap::Args, Debug)]
pub struct ForwardBenchArgs {
    /// SmolLM2-135M's GGUF (default: where scripts/fetch-smollm2.sh puts it).
    #[arg(long, value_name = "FILE")]
    pub gguf: Option<std::path::PathBuf>,
    /// Tokens in the sequence.
    #[arg(long, default_value_t = 256)]
    pub tokens: u32,
    /// Repetitions.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
}

/// Arguments of `bench replay`.
#[derive(clap::Args, Debug)]
pub struct ReplayBenchArgs {
    /// Trace files to replay (repeatable); default: the five canonical traces.
    #[arg(long, value_name = "FILE")]
    pub trace: Vec<String>,
    /// Repetitions of each trace.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// The DRAM's `preset`.
    #[arg(long, value_name = "PRESET")]
    pub preset: Option<String>,
    /// The DRAM's address `mapping`.
    #[arg(long, value_name = "MAPPING")]
    pub mapping: Option<String>,
    /// Set a DRAM parameter (repeatable), e.g. `--set dram.queue_depth=64`.
    #[arg(long = "set", value_name = "dram.KEY=VALUE")]
    pub sets: Vec<String>,
}

/// Arguments of `bench pipeline`.
#[derive(clap::Args, Debug)]
pub struct PipelineArgs {
    /// Number of transactions T.
    #[arg(long, short = 't', default_value_t = 1_000_000)]
    pub transactions: u64,
    /// Repetitions; with more than one, a median line follows.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Topology file or built-in name (needs instances `source` and `sink`).
    #[arg(long, default_value = "pipeline")]
    pub topology: String,
    /// Override a parameter (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Stop with an error (exit 1) if simulated time passes this, e.g. `5us`, `2ms`.
    #[arg(long, value_name = "DURATION")]
    pub max_time: Option<String>,
}

/// Runs a benchmark.
pub fn run(w: &Which) -> Result<(), Error> {
    match w {
        Which::Pipeline(a) => pipeline(a),
        Which::Replay(a) => replay(a),
        Which::Forward(a) => forward(a),
    }
}

fn forward(a: &ForwardBenchArgs) -> Result<(), Error> {
    let path = a
        .gguf
        .clone()
        .unwrap_or_else(|| super::cached(super::SMOLLM2_GGUF));
    if !path.is_file() {
        return Err(super::arg_error(
            format!("{} not found", path.display()),
            "--gguf",
            "run scripts/fetch-smollm2.sh, or give --gguf FILE",
        ));
    }
    if !(1..=8192).contains(&a.tokens) {
        return Err(super::arg_error(
            format!("--tokens {}: give 1 to 8192", a.tokens),
            "--tokens",
            "e.g. --tokens 256",
        ));
    }
    let (model, _) = super::eval::load_model(&path, None)?;
    let v = model.vocab() as u64;
    let mut rng = stasim::rng::SplitMix64::new(1);
    let tokens: Vec<u32> = (0..a.tokens).map(|_| (rng.next_u64() % v) as u32).collect();
    for _ in 0..a.repeat.max(1) {
        let t0 = std::time::Instant::now();
        model.logits(&tokens).map_err(Error::Failed)?;
        let s = t0.elapsed().as_secs_f64();
        outln!(
            "RESULT bench=forward model=smollm2-135m tokens={} wall_s={s:.3} tokens_per_s={:.0}",
            a.tokens,
            f64::from(a.tokens) / s
        );
    }
    if let Some(kib) = peak_rss_kib() {
        outln!("peak_rss_mib={:.1}", kib as f64 / 1024.0);
    }
    Ok(())
}

fn replay(a: &ReplayBenchArgs) -> Result<(), Error> {
    use stasim::replay::bench::{bench_trace, median_rate, scratch_trace};
    use stasim::replay::canonical::Case;
    let base = stasim::replay::ReplayArgs {
        trace: String::new(),
        preset: a.preset.clone(),
        mapping: a.mapping.clone(),
        sets: super::parse_sets(&a.sets)?,
    };
    let report = |name: &str, path: &str| -> Result<(), Error> {
        let runs = bench_trace(name, path, &base, a.repeat)?;
        for r in &runs {
            outln!("{}", r.result_line());
        }
        outln!(
            "MEDIAN bench=replay trace={name} runs={} requests_per_s={:.0}",
            runs.len(),
            median_rate(&runs)
        );
        Ok(())
    };
    if a.trace.is_empty() {
        for case in Case::ALL {
            let tmp = scratch_trace(case)?;
            report(case.name(), &tmp.path().to_string_lossy())?;
        }
    } else {
        for t in &a.trace {
            report(t, t)?;
        }
    }
    if let Some(kib) = peak_rss_kib() {
        outln!("peak_rss_mib={:.1}", kib as f64 / 1024.0);
    }
    Ok(())
}

fn pipeline(a: &PipelineArgs) -> Result<(), Error> {
    let src = Source::read(&a.topology)?;
    let sets = super::parse_sets(&a.sets)?;
    let max_time = a.max_time.as_deref().map(super::parse_time).transpose()?;
    let mut results: Vec<PipelineResult> = Vec::new();
    for _ in 0..a.repeat.max(1) {
        let r = run_pipeline(&src, a.transactions, &sets, max_time)?;
        outln!("{}", r.result_line());
        results.push(r);
    }
    if results.len() > 1 {
        let mut rates: Vec<f64> = results
            .iter()
            .map(PipelineResult::stage_events_per_s)
            .collect();
        rates.sort_by(f64::total_cmp);
        outln!(
            "MEDIAN framework=stasim T={} runs={} stage_events_per_s={:.0}",
            a.transactions,
            rates.len(),
            rates[rates.len() / 2]
        );
    }
    if let Some(kib) = peak_rss_kib() {
        outln!("peak_rss_mib={:.1}", kib as f64 / 1024.0);
    }
    if results.iter().all(|r| r.ok) {
        Ok(())
    } else {
        Err(super::arg_error(
            "the benchmark's sink saw a wrong count, order or checksum",
            &a.topology,
            "this is a kernel bug; please report it with the command line",
        ))
    }
}
