//! `stasim dram --trace FILE`: replay a request trace through the DRAM model alone
//! (`src/replay/`); `stasim dram --gen CASE --out FILE`: write a canonical trace.

use std::path::PathBuf;

use stasim::Error;
use stasim::component::quote_list;
use stasim::replay::canonical::{self, Case, GenArgs};
use stasim::replay::trace::Format;
use stasim::replay::{ReplayArgs, replay};

/// Most requests `--gen` writes.
const MAX_COUNT: u64 = 1 << 40;

/// Arguments of `stasim dram`.
#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// Request trace to replay, one request per line: `R 0xADDR` / `W 0xADDR`, Ramulator's
    /// `LD 0xADDR` / `ST 0xADDR`, or DRAMsim3's `0xADDR READ|WRITE CYCLE` (`-`: standard
    /// input). Each request is one 64-byte line.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "generate",
        conflicts_with = "generate"
    )]
    pub trace: Option<String>,
    /// The DRAM's `preset` (speed bin), e.g. `ddr4-3200`.
    #[arg(long, value_name = "PRESET")]
    pub preset: Option<String>,
    /// The DRAM's address `mapping` (a preset name or a DRAMsim3-style string).
    #[arg(long, value_name = "MAPPING")]
    pub mapping: Option<String>,
    /// Set a DRAM parameter (repeatable), e.g. `--set dram.queue_depth=64`.
    #[arg(long = "set", value_name = "dram.KEY=VALUE")]
    pub sets: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write a canonical trace instead of replaying one: `idle-read`, `sequential-reads`,
    /// `random-reads`, `bank-rows`, `sequential-mixed`.
    #[arg(long = "gen", value_name = "CASE", requires = "out")]
    pub generate: Option<String>,
    /// With `--gen`: where to write the trace.
    #[arg(long, value_name = "FILE", requires = "generate")]
    pub out: Option<PathBuf>,
    /// With `--gen`: requests (default: the case's, as in the README).
    #[arg(long, requires = "generate")]
    pub count: Option<u64>,
    /// With `--gen`: seed of the random cases.
    #[arg(long, requires = "generate", default_value_t = 1)]
    pub seed: u64,
    /// With `--gen`: format to write (`rw`, `ramulator`, `dramsim3`).
    #[arg(long, requires = "generate", default_value = "rw")]
    pub format: String,
    /// With `--gen bank-rows`: bytes between two rows of one bank (default 262144).
    #[arg(long, requires = "generate")]
    pub row_stride_bytes: Option<u64>,
}

/// Runs `stasim dram`.
pub fn run(a: &Args) -> Result<(), Error> {
    if let Some(case) = &a.generate {
        return generate(a, case);
    }
    let trace = a.trace.clone().unwrap_or_default();
    let r = replay(&ReplayArgs {
        trace,
        preset: a.preset.clone(),
        mapping: a.mapping.clone(),
        sets: super::parse_sets(&a.sets)?,
    })?;
    if a.json {
        let text = serde_json::to_string_pretty(&r.report)
            .map_err(|e| Error::Output(format!("cannot write the report: {e}")))?;
        outln!("{text}");
    } else {
        out!("{}", r.report.text());
    }
    Ok(())
}

fn generate(a: &Args, case: &str) -> Result<(), Error> {
    let names: Vec<&str> = Case::ALL.iter().map(|c| c.name()).collect();
    let Some(c) = Case::from_name(case) else {
        return Err(super::arg_error(
            format!("unknown trace case `{case}`"),
            &format!("--gen {case}"),
            format!("one of {}", quote_list(&names)),
        ));
    };
    let Some(format) = Format::from_name(&a.format) else {
        let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
        return Err(super::arg_error(
            format!("unknown trace format `{}`", a.format),
            &format!("--format {}", a.format),
            format!("one of {}", quote_list(&names)),
        ));
    };
    if let Some(n) = a.count
        && n > MAX_COUNT
    {
        return Err(super::arg_error(
            format!("--count {n} is more than {MAX_COUNT} requests"),
            &format!("--count {n}"),
            "a trace of 2^40 requests is already 10 TB",
        ));
    }
    let mut g = GenArgs::new(c);
    g.count = a.count;
    g.seed = a.seed;
    g.format = format;
    if let Some(s) = a.row_stride_bytes {
        if s == 0 || s % 64 != 0 || s > 1 << 44 {
            return Err(super::arg_error(
                format!("--row-stride-bytes {s} is not a multiple of 64 in 64..=2^44"),
                &format!("--row-stride-bytes {s}"),
                "the bytes between two rows of one bank under the DRAM's mapping, e.g. 262144",
            ));
        }
        g.row_stride_bytes = s;
    }
    let out = a.out.clone().unwrap_or_default();
    let n = canonical::generate(&g, &out)?;
    outln!("wrote {} ({n} requests, `{}`)", out.display(), c.name());
    Ok(())
}
