//! The record of a run that simulates no workload (a topology without a `controller`):
//! what ran — every module with its statistics, every link with its traffic — and when the
//! run ended. There is no model, no MAC count and no energy estimate to report, so none is
//! printed.

use std::fmt::Write;

use serde::Serialize;

use crate::kernel::{ActorId, LinkId, SimTime, Simulation, StatValue};
use crate::topology::Topology;
use crate::txn::Transaction;

/// One module of the run.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ModuleRecord {
    /// Instance name.
    pub name: String,
    /// Module kind.
    pub kind: String,
    /// Its clock, MHz.
    pub clock_mhz: f64,
    /// Its statistics, by name (units in the names).
    pub stats: serde_json::Map<String, serde_json::Value>,
}

/// One link of the run.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LinkRecord {
    /// `a.out -> b.in`.
    pub name: String,
    /// Transactions sent.
    pub sent: u64,
    /// Bytes sent (counted on links of finite width only).
    pub bytes: u64,
    /// Highest occupancy, transactions.
    pub max_occupancy: u32,
    /// Sends that found the link full.
    pub full_events: u64,
}

/// What a run without a workload did.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PlainReport {
    /// Topology name.
    pub topology: String,
    /// The topology's default clock, MHz.
    pub clock_mhz: f64,
    /// Time of the last event, ps.
    pub end_ps: u64,
    /// The same in cycles of the default clock (rounded up).
    pub total_cycles: u64,
    /// The same in microseconds.
    pub total_time_us: f64,
    /// Kernel events handled.
    pub events: u64,
    /// Every module, in topology order.
    pub modules: Vec<ModuleRecord>,
    /// Every link, in topology order.
    pub links: Vec<LinkRecord>,
}

fn json(v: &StatValue) -> serde_json::Value {
    match v {
        StatValue::U64(x) => (*x).into(),
        StatValue::F64(x) => {
            serde_json::Number::from_f64(*x).map_or(serde_json::Value::Null, Into::into)
        }
        StatValue::Bool(b) => (*b).into(),
    }
}

/// The record of a finished run of `topo`.
pub fn build(
    topo: &Topology,
    sim: &Simulation<Transaction>,
    end: SimTime,
    events: u64,
) -> PlainReport {
    let period = topo.clock.period().as_ps();
    PlainReport {
        topology: topo.name.clone(),
        clock_mhz: topo.clock.mhz(),
        end_ps: end.as_ps(),
        total_cycles: end.as_ps().div_ceil(period),
        total_time_us: end.as_us_f64(),
        events,
        modules: topo
            .modules
            .iter()
            .enumerate()
            .map(|(i, m)| ModuleRecord {
                name: m.name.clone(),
                kind: m.spec.kind.to_owned(),
                clock_mhz: m.clock.mhz(),
                stats: sim
                    .actor_stats(ActorId(i as u32))
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), json(v)))
                    .collect(),
            })
            .collect(),
        links: topo
            .links
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let s = sim.link_stats(LinkId(i as u32));
                LinkRecord {
                    name: topo.link_name(l),
                    sent: s.sent,
                    bytes: s.bytes,
                    max_occupancy: s.max_occupancy,
                    full_events: s.full_events,
                }
            })
            .collect(),
    }
}

/// A readable summary: what ran and when it ended.
pub fn summary(r: &PlainReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "stasim: `{}` has no controller, so no workload ran: {} modules, {} links",
        r.topology,
        r.modules.len(),
        r.links.len()
    );
    let _ = writeln!(
        s,
        "  simulated end      {} ({} cycles at {:.3} MHz), {} events",
        SimTime::from_ps(r.end_ps),
        r.total_cycles,
        r.clock_mhz,
        r.events
    );
    let _ = writeln!(s, "\n  modules:");
    for m in &r.modules {
        let stats: Vec<String> = m.stats.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(
            s,
            "    {:<16} {:<14} {:>10.3} MHz  {}",
            m.name,
            m.kind,
            m.clock_mhz,
            stats.join(" ")
        );
    }
    let width = r
        .links
        .iter()
        .map(|l| l.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        s,
        "\n  links:\n    {:<width$} {:>12} {:>14} {:>8} {:>12}",
        "link", "sent", "bytes", "max occ", "full sends"
    );
    for l in &r.links {
        let _ = writeln!(
            s,
            "    {:<width$} {:>12} {:>14} {:>8} {:>12}",
            l.name, l.sent, l.bytes, l.max_occupancy, l.full_events
        );
    }
    s
}
