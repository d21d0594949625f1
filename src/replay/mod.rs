//! Trace replay: a request trace run through the DRAM model alone (`stasim dram --trace`).
//!
//! The run is an ordinary topology, built with the kernel and the module registry: one
//! requester (`src/blocks/requester.rs`, the actor behind `mem_traffic`) reading the trace
//! ([`trace`]) and one `dram` instance, whose parameters come from `--preset`, `--mapping`
//! and `--set dram.KEY=VALUE` exactly as in any topology:
//!
//! ```text
//! trace.req --(depth 1, latency 1 tCK)--> dram.in0      dram.out0 --(latency 0)--> trace.resp
//! ```
//!
//! The requester runs on the DRAM's clock; a request reaches the controller one tCK after
//! it is offered (a loop of links needs a latency somewhere), and its latency is counted
//! from the time the controller takes it, so that cycle is not in any figure.
//! - Requests are offered in trace order, at most one per DRAM clock (tCK of the preset);
//!   the link holds one, so a full controller queue blocks the trace. With DRAMsim3 cycles,
//!   a request is offered at its cycle or later.
//! - Memory stays flat: the trace is read line by line and only requests in flight are
//!   kept; latencies go into a bounded histogram (`src/blocks/mem_stats.rs`).
//! - Report ([`ReplayReport`]): bandwidth = bytes moved (64 B x column commands) / (last
//!   data beat - first arrival); read latency from arrival at the controller (the time it
//!   takes the request from the link) to the last data beat: mean, p50, p99, max; and the
//!   DRAM's own counts read by name (`row_hits`, `row_misses`, `row_conflicts`,
//!   `activates`, `refreshes`; a count the DRAM does not report is `null`).
//!
//! [`canonical`] writes the canonical traces of the README's "DRAM fidelity" section.

pub mod bench;
pub mod canonical;
pub mod trace;

use std::time::Instant;

use serde::Serialize;

use crate::blocks::requester::{Pacing, Request, RequestStream, Requester};
use crate::error::Error;
use crate::kernel::{ActorId, SimTime, Stat, StatValue};
use crate::topology::{self, InputError, Origin, SetOverride, Source};
use trace::{LINE_BYTES, TraceReader};

/// The replay topology: a requester (its actor supplied by [`replay`]) and one `dram`.
const TOPOLOGY: &str = "name: dram-replay
clock_mhz: 1000
modules:
  trace: {kind: mem_traffic, requests: 0}
  dram: {kind: dram}
links:
  - {from: trace.req, to: dram.in0, depth: 1, latency_cycles: 1}
  - {from: dram.out0, to: trace.resp, depth: 64}
";
const TRACE: usize = 0;
const DRAM: usize = 1;

/// What to replay.
#[derive(Clone, Debug, Default)]
pub struct ReplayArgs {
    /// Trace file (`-`: standard input).
    pub trace: String,
    /// `--preset`: the DRAM's `preset` parameter.
    pub preset: Option<String>,
    /// `--mapping`: the DRAM's `mapping` parameter.
    pub mapping: Option<String>,
    /// `--set dram.KEY=VALUE`, in order.
    pub sets: Vec<SetOverride>,
}

/// A trace as a request stream; a bad line ends it and is kept.
struct TraceStream {
    reader: TraceReader,
    tck_ps: u64,
    error: Option<InputError>,
}

impl RequestStream for TraceStream {
    fn next_request(&mut self) -> Option<Request> {
        if self.error.is_some() {
            return None;
        }
        match self.reader.next_request() {
            Ok(Some(r)) => Some(Request {
                addr: r.addr,
                bytes: LINE_BYTES,
                write: r.write,
                not_before_ps: r.cycle.map_or(0, |c| c * self.tck_ps),
            }),
            Ok(None) => None,
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }
}

/// Read latency, ns.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Latency {
    /// Reads measured.
    pub count: u64,
    /// Exact mean.
    pub mean: f64,
    /// Median (nearest rank, middle of its histogram bucket).
    pub p50: f64,
    /// 99th percentile (same).
    pub p99: f64,
    /// Exact minimum.
    pub min: f64,
    /// Exact maximum.
    pub max: f64,
    /// How fine p50 and p99 are.
    pub resolution: &'static str,
}

/// The DRAM that ran the trace.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DramInfo {
    /// Its `preset` parameter.
    pub preset: String,
    /// Its `mapping` parameter (`null` for a DRAM without one).
    pub mapping: Option<String>,
    /// Command clock period, ps.
    pub tck_ps: u64,
    /// Peak bandwidth it reports, GB/s.
    pub peak_gbps: Option<f64>,
    /// Every parameter given with `--set` (and `--preset`, `--mapping`), as given.
    pub sets: Vec<String>,
}

/// What a replay measured (`--json` prints it).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReplayReport {
    /// The trace file.
    pub trace: String,
    /// Its format (`rw`, `ramulator`, `dramsim3`).
    pub format: String,
    /// The DRAM.
    pub dram: DramInfo,
    /// Requests in the trace.
    pub requests: u64,
    /// Reads among them.
    pub reads: u64,
    /// Writes among them.
    pub writes: u64,
    /// Bytes moved (64 per request).
    pub bytes: u64,
    /// Arrival of the first request at the controller, ns.
    pub first_arrival_ns: f64,
    /// The last data beat, ns.
    pub last_data_ns: f64,
    /// `last_data_ns - first_arrival_ns`.
    pub span_ns: f64,
    /// `bytes / span_ns`, GB/s.
    pub bandwidth_gbps: f64,
    /// `bandwidth_gbps / peak_gbps`.
    pub peak_fraction: Option<f64>,
    /// Read latency, arrival to last data beat.
    pub read_latency_ns: Latency,
    /// Column commands to an open row (the DRAM's count).
    pub row_hits: Option<u64>,
    /// Bursts that found their bank closed.
    pub row_misses: Option<u64>,
    /// Bursts that found another row open.
    pub row_conflicts: Option<u64>,
    /// ACT commands.
    pub activates: Option<u64>,
    /// Refreshes.
    pub refreshes: Option<u64>,
}

/// A replay's report and what the run cost (for the benchmark; never printed by
/// `stasim dram`, whose output is deterministic).
#[derive(Clone, Debug)]
pub struct Replayed {
    /// The report.
    pub report: ReplayReport,
    /// Wall-clock seconds of the simulation (building excluded).
    pub wall_s: f64,
    /// Kernel events handled.
    pub events: u64,
}

fn stat_u64(stats: &[Stat], name: &str) -> Option<u64> {
    stats.iter().find_map(|(n, v)| match v {
        StatValue::U64(x) if *n == name => Some(*x),
        _ => None,
    })
}

fn stat_f64(stats: &[Stat], name: &str) -> Option<f64> {
    stats.iter().find_map(|(n, v)| match v {
        StatValue::F64(x) if *n == name => Some(*x),
        _ => None,
    })
}

fn ns(ps: u64) -> f64 {
    ps as f64 / 1000.0
}

/// Replays a trace through the DRAM model.
pub fn replay(args: &ReplayArgs) -> Result<Replayed, Error> {
    let src = Source {
        path: "<builtin:dram-replay>".into(),
        text: TOPOLOGY.into(),
    };
    let mut sets = Vec::new();
    let mut given = Vec::new();
    for (flag, key, value) in [
        ("--preset", "preset", &args.preset),
        ("--mapping", "mapping", &args.mapping),
    ] {
        if let Some(v) = value {
            let mut s = SetOverride::parse(&format!("dram.{key}={v}")).map_err(|e| {
                InputError::new(
                    e.message.clone(),
                    Origin::CommandLine(format!("{flag} {v}")),
                    key,
                )
            })?;
            s.arg = format!("dram.{key}={v}");
            given.push(format!("{key}={v}"));
            sets.push(s);
        }
    }
    for s in &args.sets {
        if s.path.first().map(String::as_str) != Some("dram") {
            return Err(InputError::new(
                format!("`--set {}` names no part of a replay", s.arg),
                Origin::CommandLine(format!("--set {}", s.arg)),
                s.path.join("."),
            )
            .with_hint("a replay has one memory, `dram`: give `--set dram.KEY=VALUE` (see `stasim models dram`)")
            .into());
        }
        given.push(s.arg.strip_prefix("dram.").unwrap_or(&s.arg).to_owned());
        sets.push(s.clone());
    }
    // The requester runs on the DRAM's command clock (known once the preset is).
    let tck_ps = topology::load(&src, &sets)?.modules[DRAM]
        .clock
        .period()
        .as_ps();
    sets.push(SetOverride::parse(&format!(
        "trace.clock_mhz={}",
        1e6 / tck_ps as f64
    ))?);
    let topo = topology::load(&src, &sets)?;
    debug_assert_eq!(topo.modules[TRACE].clock.period().as_ps(), tck_ps);
    let reader =
        TraceReader::open(&args.trace)?.with_max_cycle((SimTime::HORIZON.as_ps() - 1) / tck_ps);
    let dram_params = &topo.modules[DRAM].params;
    let preset = dram_params.str("preset").unwrap_or("").to_owned();
    let mapping = dram_params.str("mapping").ok().map(str::to_owned);
    let find = |name: &str| topo.links.iter().position(|l| l.from.port == name);
    let (req, resp) = match (find("req"), find("out0")) {
        (Some(a), Some(b)) => (
            crate::kernel::LinkId(a as u32),
            crate::kernel::LinkId(b as u32),
        ),
        _ => unreachable!("the replay topology has both links"),
    };
    let stream = TraceStream {
        reader,
        tck_ps,
        error: None,
    };
    let pacing = Pacing {
        outstanding: u64::MAX,
        interval_ps: tck_ps,
    };
    let actor = Requester::new(req, resp, pacing, stream);
    let mut sim = topo.build_supplying(TRACE, Box::new(actor))?;
    let t0 = Instant::now();
    let summary = sim.run();
    let wall_s = t0.elapsed().as_secs_f64();
    let requester = sim
        .actor_any(ActorId(TRACE as u32))
        .and_then(|a| a.downcast_ref::<Requester<TraceStream>>())
        .expect("the replay's requester is the one supplied");
    let stream = requester.stream();
    if let Some(e) = &stream.error {
        return Err(e.clone().into());
    }
    let summary = summary?;
    let reader = &stream.reader;
    if reader.requests() == 0 {
        return Err(InputError::new(
            format!("trace `{}` has no requests", args.trace),
            Origin::CommandLine(format!("--trace {}", args.trace)),
            "",
        )
        .with_hint("one request per line, e.g. `R 0x1f40`; `#` starts a comment line")
        .into());
    }
    let m = requester.mem_stats();
    let dram = sim.actor_stats(ActorId(DRAM as u32));
    let peak_gbps = stat_f64(&dram, "peak_gbps");
    let h = &m.read_latency;
    let bandwidth_gbps = m.bandwidth_gbps();
    let first = m.first_arrival_ps.unwrap_or(0);
    let report = ReplayReport {
        trace: args.trace.clone(),
        format: reader.format().map_or("", |f| f.name()).to_owned(),
        dram: DramInfo {
            preset,
            mapping,
            tck_ps,
            peak_gbps,
            sets: given,
        },
        requests: reader.requests(),
        reads: m.reads,
        writes: m.writes,
        bytes: m.bytes,
        first_arrival_ns: ns(first),
        last_data_ns: ns(m.last_done_ps),
        span_ns: ns(m.span_ps()),
        bandwidth_gbps,
        peak_fraction: peak_gbps.filter(|p| *p > 0.0).map(|p| bandwidth_gbps / p),
        read_latency_ns: Latency {
            count: h.count(),
            mean: h.mean_ps() / 1000.0,
            p50: ns(h.quantile_ps(0.5)),
            p99: ns(h.quantile_ps(0.99)),
            min: ns(h.min_ps()),
            max: ns(h.max_ps()),
            resolution: "exact below 2.048 ns, else buckets of 1/1024 of the value",
        },
        row_hits: stat_u64(&dram, "row_hits"),
        row_misses: stat_u64(&dram, "row_misses"),
        row_conflicts: stat_u64(&dram, "row_conflicts"),
        activates: stat_u64(&dram, "activates"),
        refreshes: stat_u64(&dram, "refreshes"),
    };
    Ok(Replayed {
        report,
        wall_s,
        events: summary.events,
    })
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

impl ReplayReport {
    /// The text summary `stasim dram` prints.
    pub fn text(&self) -> String {
        let d = &self.dram;
        let l = &self.read_latency_ns;
        let mut s = format!(
            "stasim dram: `{}` ({} format): {} requests, {} reads, {} writes\n",
            self.trace, self.format, self.requests, self.reads, self.writes
        );
        s += &format!(
            "  dram             {} (tCK {} ps), mapping {}{}\n",
            d.preset,
            d.tck_ps,
            d.mapping.as_deref().unwrap_or("(the model's own)"),
            if d.sets.is_empty() {
                String::new()
            } else {
                format!("; set {}", d.sets.join(", "))
            }
        );
        let peak = match (d.peak_gbps, self.peak_fraction) {
            (Some(p), Some(f)) => format!(" ({:.1} % of {p:.2} GB/s peak)", 100.0 * f),
            _ => String::new(),
        };
        s += &format!(
            "  bandwidth        {:.3} GB/s{peak}: {} bytes from {:.3} ns to {:.3} ns\n",
            self.bandwidth_gbps, self.bytes, self.first_arrival_ns, self.last_data_ns
        );
        if l.count > 0 {
            s += &format!(
                "  read latency     mean {:.3} ns, p50 {:.3} ns, p99 {:.3} ns, min {:.3} ns, max {:.3} ns ({} reads; arrival to last data beat)\n",
                l.mean, l.p50, l.p99, l.min, l.max, l.count
            );
        } else {
            s += "  read latency     no reads\n";
        }
        s += &format!(
            "  rows             {} hits, {} misses (bank closed), {} conflicts (another row open)\n",
            opt(self.row_hits),
            opt(self.row_misses),
            opt(self.row_conflicts)
        );
        s += &format!(
            "  commands         {} activates, {} refreshes\n",
            opt(self.activates),
            opt(self.refreshes)
        );
        s
    }
}
