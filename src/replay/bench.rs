//! The replay benchmark (`stasim bench replay`): requests replayed per wall-clock second on
//! the five canonical traces ([`super::canonical`]), or on given trace files.
//!
//! Each trace is written once to a scratch file (removed afterwards), then replayed
//! `repeat` times; the time counted is the simulation's (building the topology and writing
//! the trace excluded; reading and parsing the trace included, since replay streams it).

use std::io::{BufWriter, Write};

use super::canonical::{self, Case, GenArgs};
use super::{ReplayArgs, Replayed, replay};
use crate::error::Error;
use crate::io::TempFile;

/// One benchmark run.
#[derive(Clone, Debug)]
pub struct BenchRun {
    /// The trace's name (a canonical case, or the file).
    pub name: String,
    /// The replay.
    pub replayed: Replayed,
}

impl BenchRun {
    /// Requests replayed per wall second.
    pub fn requests_per_s(&self) -> f64 {
        self.replayed.report.requests as f64 / self.replayed.wall_s.max(1e-12)
    }

    /// The `RESULT` line.
    pub fn result_line(&self) -> String {
        let r = &self.replayed.report;
        format!(
            "RESULT bench=replay trace={} requests={} wall_s={:.6} requests_per_s={:.0} kernel_events={} bandwidth_gbps={:.3} read_latency_mean_ns={:.3}",
            self.name,
            r.requests,
            self.replayed.wall_s,
            self.requests_per_s(),
            self.replayed.events,
            r.bandwidth_gbps,
            r.read_latency_ns.mean
        )
    }
}

/// A canonical trace written to a scratch file in the system's temporary folder.
pub fn scratch_trace(case: Case) -> Result<TempFile, Error> {
    let near = std::env::temp_dir().join(format!("stasim-{}.trace", case.name()));
    let err = |e: std::io::Error| {
        Error::Output(format!(
            "cannot write a scratch trace beside {}: {e}",
            near.display()
        ))
    };
    let (tmp, file) = TempFile::create_beside(&near, "trace").map_err(err)?;
    let mut w = BufWriter::with_capacity(1 << 16, file);
    canonical::write_trace(&GenArgs::new(case), &mut w).map_err(err)?;
    w.flush().map_err(err)?;
    Ok(tmp)
}

/// Replays `trace` (under `name`) `repeat` times with the DRAM settings of `base`.
pub fn bench_trace(
    name: &str,
    trace: &str,
    base: &ReplayArgs,
    repeat: u32,
) -> Result<Vec<BenchRun>, Error> {
    let args = ReplayArgs {
        trace: trace.to_owned(),
        ..base.clone()
    };
    (0..repeat.max(1))
        .map(|_| {
            Ok(BenchRun {
                name: name.to_owned(),
                replayed: replay(&args)?,
            })
        })
        .collect()
}

/// The median of the runs' request rates.
pub fn median_rate(runs: &[BenchRun]) -> f64 {
    let mut rates: Vec<f64> = runs.iter().map(BenchRun::requests_per_s).collect();
    rates.sort_by(f64::total_cmp);
    rates.get(rates.len() / 2).copied().unwrap_or(0.0)
}
