//! The "pipeline" kernel benchmark of BENCH.md, run on `topologies/pipeline.yaml`.
//!
//! Expected, for any correct kernel: last sink arrival `5T + 10` ns and the time `tx_{T-1}`
//! entered F0 `5T - 115` ns (T >= 41).

use std::time::Instant;

use crate::blocks::source::PAYLOAD_XOR;
use crate::error::Error;
use crate::kernel::{ActorId, SimTime, Stat, StatValue};
use crate::topology::{self, InputError, Origin, SetOverride, Source};

/// The outcome of one benchmark run.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineResult {
    /// Transactions.
    pub transactions: u64,
    /// Time of the last sink arrival, ns.
    pub sim_end_ns: u64,
    /// Time the last transaction entered F0, ns.
    pub source_last_put_ns: u64,
    /// Transactions the sink received.
    pub received: u64,
    /// Count, order and checksum all correct.
    pub ok: bool,
    /// Wall-clock seconds of the run phase (building excluded).
    pub wall_s: f64,
    /// Kernel events handled.
    pub events: u64,
}

impl PipelineResult {
    /// Stage events (`5T`) per wall second.
    pub fn stage_events_per_s(&self) -> f64 {
        5.0 * self.transactions as f64 / self.wall_s.max(1e-12)
    }

    /// The line BENCH.md asks for, in the SystemC version's format.
    pub fn result_line(&self) -> String {
        format!(
            "RESULT framework=stasim T={} sim_end_ns={} source_last_put_ns={} received={} ok={} wall_s={:.6} stage_events_per_s={:.0} kernel_events={}",
            self.transactions,
            self.sim_end_ns,
            self.source_last_put_ns,
            self.received,
            u8::from(self.ok),
            self.wall_s,
            self.stage_events_per_s(),
            self.events
        )
    }
}

fn stat_u64(stats: &[Stat], name: &str) -> Option<u64> {
    stats.iter().find_map(|(n, v)| match v {
        StatValue::U64(x) if *n == name => Some(*x),
        _ => None,
    })
}

fn stat_bool(stats: &[Stat], name: &str) -> Option<bool> {
    stats.iter().find_map(|(n, v)| match v {
        StatValue::Bool(x) if *n == name => Some(*x),
        _ => None,
    })
}

/// Runs the benchmark with `transactions` tokens on topology `src` (which must have
/// instances `source` and `sink`), plus any extra overrides and an optional limit on
/// simulated time.
pub fn run_pipeline(
    src: &Source,
    transactions: u64,
    extra: &[SetOverride],
    max_time: Option<SimTime>,
) -> Result<PipelineResult, Error> {
    let mut sets = vec![SetOverride::parse(&format!("source.count={transactions}"))?];
    sets.extend_from_slice(extra);
    let topo = topology::load(src, &sets)?;
    let find = |name: &str| {
        topo.module_index(name).ok_or_else(|| {
            InputError::new(
                format!("the pipeline benchmark needs a module named `{name}`"),
                Origin::CommandLine(src.path.clone()),
                "modules",
            )
        })
    };
    let (source_idx, sink_idx) = (find("source")?, find("sink")?);
    let mut sim = topo.build()?;
    if let Some(limit) = max_time {
        sim.set_time_limit(limit);
    }
    let t0 = Instant::now();
    let summary = sim.run()?;
    let wall_s = t0.elapsed().as_secs_f64();
    let source = sim.actor_stats(ActorId(source_idx as u32));
    let sink = sim.actor_stats(ActorId(sink_idx as u32));
    let received = stat_u64(&sink, "received").unwrap_or(0);
    let expect_checksum = (0..transactions).fold(0u64, |acc, k| acc ^ k ^ PAYLOAD_XOR);
    let ok = received == transactions
        && stat_bool(&sink, "in_order") == Some(true)
        && stat_u64(&sink, "checksum") == Some(expect_checksum);
    Ok(PipelineResult {
        transactions,
        sim_end_ns: stat_u64(&sink, "last_arrival_ps").unwrap_or(0) / 1_000,
        source_last_put_ns: stat_u64(&source, "last_put_ps").unwrap_or(0) / 1_000,
        received,
        ok,
        wall_s,
        events: summary.events,
    })
}

/// Peak resident set size of this process in KiB (Linux `VmHWM`), if known.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
