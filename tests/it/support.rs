//! Helpers shared by the tests: a recording observer and topology loading from text.

use std::sync::{Arc, Mutex};

use stasim::kernel::{ActorId, LinkId, LinkSpec, Observer, ProbeValue, SimTime};
use stasim::topology::{self, InputError, SetOverride, Source, Topology};
use stasim::txn::Transaction;

/// One observed kernel hook call.
#[derive(Clone, Debug, PartialEq)]
pub enum Seen {
    Send {
        at_ps: u64,
        link: u32,
        id: u64,
        visible_ps: u64,
    },
    Recv {
        at_ps: u64,
        link: u32,
        id: u64,
    },
    Probe {
        at_ps: u64,
        actor: u32,
        signal: &'static str,
        value: String,
    },
}

/// Records every hook call into a shared log.
#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Vec<Seen>>>);

fn id_of(m: &Transaction) -> u64 {
    match m {
        Transaction::Token(t) => t.id,
        Transaction::MemReq(r) => r.id,
        Transaction::MemResp(r) => r.id,
        #[allow(unreachable_patterns)]
        _ => u64::MAX,
    }
}

impl Observer<Transaction> for Recorder {
    fn on_start(&mut self, _actors: &[String], _links: &[LinkSpec]) {}
    fn on_send(&mut self, now: SimTime, link: LinkId, msg: &Transaction, visible_at: SimTime) {
        self.0.lock().unwrap().push(Seen::Send {
            at_ps: now.as_ps(),
            link: link.0,
            id: id_of(msg),
            visible_ps: visible_at.as_ps(),
        });
    }
    fn on_recv(&mut self, now: SimTime, link: LinkId, msg: &Transaction) {
        self.0.lock().unwrap().push(Seen::Recv {
            at_ps: now.as_ps(),
            link: link.0,
            id: id_of(msg),
        });
    }
    fn on_probe(&mut self, now: SimTime, actor: ActorId, signal: &'static str, value: ProbeValue) {
        self.0.lock().unwrap().push(Seen::Probe {
            at_ps: now.as_ps(),
            actor: actor.0,
            signal,
            value: format!("{value:?}"),
        });
    }
}

impl Recorder {
    /// Times (ns) at which transactions were sent on `link`.
    pub fn send_times_ns(&self, link: u32) -> Vec<u64> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|s| match s {
                Seen::Send { at_ps, link: l, .. } if *l == link => Some(at_ps / 1000),
                _ => None,
            })
            .collect()
    }
    /// Times (ps) at which transactions were received from `link`.
    pub fn recv_times_ps(&self, link: u32) -> Vec<u64> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|s| match s {
                Seen::Recv { at_ps, link: l, .. } if *l == link => Some(*at_ps),
                _ => None,
            })
            .collect()
    }
}

/// Loads a topology from YAML text with overrides.
pub fn load_text(yaml: &str, sets: &[&str]) -> Result<Topology, InputError> {
    let src = Source {
        path: "test.yaml".into(),
        text: yaml.into(),
    };
    let sets: Vec<SetOverride> = sets
        .iter()
        .map(|s| SetOverride::parse(s))
        .collect::<Result<_, _>>()?;
    topology::load(&src, &sets)
}

/// Loads a topology that must be valid.
pub fn load_ok(yaml: &str) -> Topology {
    match load_text(yaml, &[]) {
        Ok(t) => t,
        Err(e) => panic!("topology should load:\n{e}"),
    }
}

/// Runs a topology and returns it with its finished simulation.
pub fn run_ok(
    yaml: &str,
    sets: &[&str],
) -> (
    Topology,
    stasim::kernel::Simulation<Transaction>,
    stasim::kernel::RunSummary,
) {
    let topo = load_text(yaml, sets).unwrap_or_else(|e| panic!("{e}"));
    let mut sim = topo.build().unwrap_or_else(|e| panic!("{e}"));
    let summary = sim.run().unwrap_or_else(|e| panic!("{e}"));
    (topo, sim, summary)
}

/// A statistic of module `name` as an integer.
pub fn stat_u64(
    topo: &Topology,
    sim: &stasim::kernel::Simulation<Transaction>,
    name: &str,
    stat: &str,
) -> u64 {
    let idx = topo
        .module_index(name)
        .unwrap_or_else(|| panic!("no module {name}"));
    sim.actor_stats(ActorId(idx as u32))
        .into_iter()
        .find_map(|(n, v)| match v {
            stasim::kernel::StatValue::U64(x) if n == stat => Some(x),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no u64 stat {stat} on {name}"))
}
