//! Command-line interface: one file per subcommand.
//!
//! Commands print with [`out!`] / [`outln!`], never `print!`: a failing standard output (a
//! full disk, `> /dev/full`) is an output error (exit 1) naming it, not a panic.

/// `print!` to standard output that returns an output error (exit 1) instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!($($arg)*))?
    };
}

/// `println!` to standard output that returns an output error (exit 1) instead of panicking.
macro_rules! outln {
    () => { out!("\n") };
    ($($arg:tt)*) => {
        out!("{}\n", format_args!($($arg)*))
    };
}

mod bench;
mod check;
mod completions;
mod dram;
mod eval;
mod explore;
mod graph;
mod models;
mod prune;
mod run;
mod sweep;
mod tokenize;

use clap::{Parser, Subcommand};

use stasim::Error;
use stasim::topology::{InputError, Origin, SetOverride};

/// stasim: a discrete-event simulator of STA, an N:M sparse Transformer accelerator.
///
/// Times are simulated picoseconds internally; clocks are given in MHz; link latencies in
/// cycles of the sending module's clock; link widths in bytes per cycle.
#[derive(Parser, Debug)]
#[command(name = "stasim", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Simulate a workload on an STA topology (default: BERT-base, s=128, 2:4 on `sta`).
    Run(Box<run::Args>),
    /// Prune a safetensors checkpoint to N:M and store it compressed (`.stanm`).
    Prune(Box<prune::Args>),
    /// Validate a topology and print a summary (modules, links, clock domains).
    Check(check::Args),
    /// Print a topology as Graphviz DOT.
    Graph(graph::Args),
    /// List every module kind with its ports, parameters, units and defaults.
    Models(models::Args),
    /// Replay a DRAM request trace through the DRAM model alone (or write one with `--gen`).
    Dram(Box<dram::Args>),
    /// Run a benchmark.
    #[command(subcommand)]
    Bench(bench::Which),
    /// Run a design-space sweep (`SWEEP.yaml`), or `sweep merge DIR... --out DIR`.
    Sweep(sweep::Args),
    /// Print a shell completion script: `stasim completions bash|zsh|fish`.
    Completions(completions::Args),
    /// Print the token ids of a text under SmolLM2's or MiniLM's tokeniser.
    Tokenize(tokenize::Args),
    /// Perplexity of SmolLM2 (its GGUF or a pruned .stanm) on the held-out evaluation text.
    Eval(eval::Args),
    /// Search per-class N:M choices of a decoder for the accuracy-latency frontier.
    Explore(Box<explore::Args>),
}

/// Writes to standard output; a failure is an output error naming it.
pub fn write_stdout(args: std::fmt::Arguments) -> Result<(), Error> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.flush())
        .map_err(|e| Error::Output(format!("cannot write to standard output: {e}")))
}

/// Parses `--set` arguments.
pub fn parse_sets(sets: &[String]) -> Result<Vec<SetOverride>, Error> {
    sets.iter()
        .map(|s| SetOverride::parse(s).map_err(Error::from))
        .collect()
}

/// Parses `--max-time`.
pub fn parse_time(text: &str) -> Result<stasim::kernel::SimTime, Error> {
    stasim::kernel::SimTime::parse(text).map_err(|msg| {
        arg_error(
            format!("bad --max-time: {msg}"),
            &format!("--max-time {text}"),
            "for example `--max-time 5ms`",
        )
    })
}

/// SmolLM2's GGUF under the cache folder, where scripts/fetch-smollm2.sh puts it.
pub const SMOLLM2_GGUF: &str = "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

/// Where the fetch scripts put `rel`, under `~/.cache/stasim`.
pub fn cached(rel: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
        .join(".cache/stasim")
        .join(rel)
}

/// Error for a command-line value.
pub fn arg_error(message: impl Into<String>, arg: &str, hint: impl Into<String>) -> Error {
    InputError::new(message, Origin::CommandLine(arg.to_owned()), "")
        .with_hint(hint)
        .into()
}

/// Entry point after `main`.
pub fn main() -> Result<(), Error> {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    // Every command but `sweep` (which handles Ctrl-C itself, keeping finished points)
    // removes its temporary files when interrupted.
    if !matches!(cli.command, Some(Command::Sweep(_))) {
        stasim::io::remove_temporaries_on_signals();
    }
    match cli.command {
        Some(Command::Run(a)) => run::run(a.as_ref()),
        Some(Command::Prune(a)) => prune::run(a.as_ref()),
        Some(Command::Check(a)) => check::run(&a),
        Some(Command::Graph(a)) => graph::run(&a),
        Some(Command::Models(a)) => models::run(&a),
        Some(Command::Dram(a)) => dram::run(a.as_ref()),
        Some(Command::Bench(w)) => bench::run(&w),
        Some(Command::Sweep(a)) => sweep::run(&a),
        Some(Command::Completions(a)) => completions::run(&a),
        Some(Command::Tokenize(a)) => tokenize::run(&a),
        Some(Command::Eval(a)) => eval::run(&a),
        Some(Command::Explore(a)) => explore::run(a.as_ref()),
        // The main job: the reference design on BERT-base, with every output in `out/`.
        None => run::run(&run::Args {
            topology: "sta".into(),
            out: Some(run::DEFAULT_OUT.into()),
            plots: Some(std::path::Path::new(run::DEFAULT_OUT).join("plots")),
            vcd: Some(String::new()),
            perfetto: Some(String::new()),
            ..run::Args::default()
        }),
    }
}
