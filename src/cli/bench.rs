//! `stasim bench pipeline --transactions T`: the kernel benchmark of BENCH.md.

use stasim::Error;
use stasim::bench::{PipelineResult, peak_rss_kib, run_pipeline};
use stasim::topology::Source;

/// Which benchmark.
#[derive(clap::Subcommand, Debug)]
pub enum Which {
    /// source -> 5 stages -> sink over depth-4 FIFOs; prints a RESULT line per repetition.
    Pipeline(PipelineArgs),
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
    let Which::Pipeline(a) = w;
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
