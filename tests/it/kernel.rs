//! Kernel semantics, checked against timings worked out by hand.

use std::sync::{Arc, Mutex};

use stasim::kernel::{Actor, Clock, Ctx, LinkId, LinkSpec, SimError, SimTime, Simulation};
use stasim::txn::{Token, Transaction};

use crate::support::{Recorder, load_ok};

fn tok(id: u64) -> Transaction {
    Transaction::Token(Token { id, payload: 0 })
}

/// `(actor, tag, time in ns)` of each wake-up handled.
type WakeLog = Arc<Mutex<Vec<(&'static str, u64, u64)>>>;

/// Schedules wake-ups at init and logs `(actor, tag, time)` when they fire; a wake with
/// tag 100 schedules a zero-delay wake (tag 101).
struct Waker {
    name: &'static str,
    wakes: Vec<(u64, u64)>, // (delay ns, tag)
    log: WakeLog,
}

impl Actor<Transaction> for Waker {
    fn init(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        for &(ns, tag) in &self.wakes {
            ctx.wake_in(SimTime::from_ns(ns), tag);
        }
    }
    fn on_wake(&mut self, ctx: &mut Ctx<'_, Transaction>, tag: u64) {
        self.log
            .lock()
            .unwrap()
            .push((self.name, tag, ctx.now().as_ps() / 1000));
        if tag == 100 {
            ctx.wake_in(SimTime::ZERO, 101);
        }
    }
}

#[test]
fn equal_time_events_run_in_scheduling_order() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut sim = Simulation::<Transaction>::new();
    let clk = Clock::from_mhz(1000.0).unwrap();
    sim.add_actor(
        "a",
        clk,
        Box::new(Waker {
            name: "a",
            wakes: vec![(10, 1), (5, 2), (10, 100), (10, 3)],
            log: log.clone(),
        }),
    );
    sim.add_actor(
        "b",
        clk,
        Box::new(Waker {
            name: "b",
            wakes: vec![(10, 4), (5, 5)],
            log: log.clone(),
        }),
    );
    sim.run().unwrap();
    let got = log.lock().unwrap().clone();
    // t=5: a's tag 2 was scheduled before b's tag 5. t=10: a:1, a:100, a:3, b:4 in the
    // order scheduled at init; the zero-delay wake 101 made while handling 100 comes after
    // all of them, since it was scheduled last.
    assert_eq!(
        got,
        vec![
            ("a", 2, 5),
            ("b", 5, 5),
            ("a", 1, 10),
            ("a", 100, 10),
            ("a", 3, 10),
            ("b", 4, 10),
            ("a", 101, 10),
        ]
    );
}

const CHAIN: &str = "
clock_mhz: 1000
modules:
  source: {kind: source, count: 4, interval_cycles: 0}
  S0: {kind: stage, service_cycles: 1}
  S1: {kind: stage, service_cycles: 5}
  sink: {kind: sink}
links:
  - {from: source.out, to: S0.in, depth: 1}
  - {from: S0.out, to: S1.in, depth: 1}
  - {from: S1.out, to: sink.in, depth: 1}
";

#[test]
fn back_pressure_on_a_two_stage_chain_matches_hand_timing() {
    // Worked by hand (1 ns cycles, every FIFO depth 1, source interval 0):
    // t=0  source puts tx0; S0 takes it, so source puts tx1 at once (F0 full again).
    // t=1  S0 puts tx0 into F1, S1 takes it (serves 1..6); S0 takes tx1 -> source puts tx2.
    // t=2  S0 puts tx1 into F1 (now full); S0 takes tx2 -> source puts tx3 (last).
    // t=3  S0 done with tx2, F1 full: S0 blocks.
    // t=6  S1 puts tx0 to the sink, takes tx1 -> S0 unblocks and puts tx2 at 6, takes tx3.
    // t=7  S0 done with tx3, F1 full: blocks. t=11 S1 emits tx1, takes tx2, S0 puts tx3.
    // t=16 S1 emits tx2, takes tx3; t=21 S1 emits tx3.
    let topo = load_ok(CHAIN);
    let mut sim = topo.build().unwrap();
    let rec = Recorder::default();
    sim.set_observer(Box::new(rec.clone()));
    let summary = sim.run().unwrap();
    assert_eq!(
        rec.send_times_ns(0),
        vec![0, 0, 1, 2],
        "source puts into F0"
    );
    assert_eq!(rec.send_times_ns(1), vec![1, 2, 6, 11], "S0 puts into F1");
    assert_eq!(rec.send_times_ns(2), vec![6, 11, 16, 21], "S1 puts into F2");
    assert_eq!(summary.end_time, SimTime::from_ns(21));
}

/// Sends one token at init, then tries to send a second and never receives.
struct Hoarder {
    out: LinkId,
    held: Option<Transaction>,
}

impl Actor<Transaction> for Hoarder {
    fn init(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        assert!(ctx.try_send(self.out, tok(0)).is_ok());
        if let Some(x) = self.held.take() {
            self.held = ctx.try_send(self.out, x).err();
        }
    }
    fn pending_work(&self) -> Option<String> {
        self.held.as_ref().map(|x| format!("holding {x}"))
    }
}

#[test]
fn deadlock_on_a_ring_of_full_links_names_modules_and_links() {
    let clk = Clock::from_mhz(200.0).unwrap();
    let mut sim = Simulation::<Transaction>::new();
    let names = ["a", "b", "c"];
    let mut links = Vec::new();
    for i in 0..3u32 {
        links.push(sim.add_link(LinkSpec {
            name: format!("{}->{}", names[i as usize], names[(i as usize + 1) % 3]),
            src: i,
            dst: (i + 1) % 3,
            depth: 1,
            latency_cycles: 1,
            width_bytes: 0,
            period: clk.period(),
        }));
    }
    for (i, name) in names.iter().enumerate() {
        sim.add_actor(
            *name,
            clk,
            Box::new(Hoarder {
                out: links[i],
                held: Some(tok(1)),
            }),
        );
    }
    let err = sim.run().unwrap_err();
    let SimError::Deadlock(state) = &err else {
        panic!("expected a deadlock, got {err}");
    };
    let blocked: Vec<&str> = state.blocked.iter().map(|b| b.module.as_str()).collect();
    assert_eq!(blocked, vec!["a", "b", "c"]);
    assert!(state.blocked[0].reason.contains("holding token #1"));
    assert!(
        state.blocked[0]
            .reason
            .contains("blocked sending on `a->b`")
    );
    assert_eq!(
        state.full_links,
        vec!["a->b (1/1)", "b->c (1/1)", "c->a (1/1)"]
    );
    let text = err.to_string();
    assert!(text.starts_with("deadlock"), "{text}");
    assert!(text.contains("c->a (1/1)"), "{text}");
}

#[test]
fn time_limit_ends_the_run_and_says_what_was_stuck() {
    let topo = load_ok(CHAIN);
    let mut sim = topo.build().unwrap();
    sim.set_time_limit(SimTime::from_ns(10));
    let err = sim.run().unwrap_err();
    let SimError::TimeLimit(state) = &err else {
        panic!("expected a time limit, got {err}");
    };
    // The last event at or before 10 ns is S0 blocking at 7 ns.
    assert_eq!(state.time, SimTime::from_ns(7));
    assert!(
        state
            .blocked
            .iter()
            .any(|b| b.module == "S0" && b.reason.contains("blocked sending"))
    );
    assert!(
        state
            .full_links
            .contains(&"S0.out -> S1.in (1/1)".to_owned())
    );
}

#[test]
fn link_latency_and_width_serialise_transactions() {
    // 200 MHz (5 ns cycles); tokens are 16 bytes; width 8 B/cycle -> 2 cycles each;
    // latency 3 cycles. Three tokens sent at t=0 back to back (interval 0, depth 8):
    // visible at (2+3), (4+3), (6+3) cycles = 25, 35, 45 ns.
    let topo = load_ok(
        "
clock_mhz: 200
modules:
  source: {kind: source, count: 3, interval_cycles: 0}
  sink: {kind: sink}
links:
  - {from: source.out, to: sink.in, depth: 8, latency_cycles: 3, width_bytes: 8}
",
    );
    let mut sim = topo.build().unwrap();
    let rec = Recorder::default();
    sim.set_observer(Box::new(rec.clone()));
    sim.run().unwrap();
    assert_eq!(rec.send_times_ns(0), vec![0, 0, 0]);
    assert_eq!(rec.recv_times_ps(0), vec![25_000, 35_000, 45_000]);
}

#[test]
fn clock_domains_mix_in_one_simulation() {
    // Source at 200 MHz (5,000 ps) puts 2 tokens 1 cycle apart; a stage at 1200 MHz
    // (833 ps) holds each 6 cycles = 4,998 ps. Token 0: 0 -> 4,998; token 1 enters at
    // 5,000 -> 9,998.
    let topo = load_ok(
        "
clock_mhz: 200
modules:
  source: {kind: source, count: 2, interval_cycles: 1}
  fast: {kind: stage, service_cycles: 6, clock_mhz: 1200}
  sink: {kind: sink}
links:
  - {from: source.out, to: fast.in, depth: 2}
  - {from: fast.out, to: sink.in, depth: 2}
",
    );
    assert_eq!(topo.clock_domains().len(), 2);
    let mut sim = topo.build().unwrap();
    let rec = Recorder::default();
    sim.set_observer(Box::new(rec.clone()));
    let summary = sim.run().unwrap();
    assert_eq!(rec.recv_times_ps(1), vec![4_998, 9_998]);
    assert_eq!(summary.end_time, SimTime::from_ps(9_998));
}

#[test]
fn observed_runs_are_deterministic_and_observation_changes_nothing() {
    let run = |observe: bool| {
        let topo = crate::support::load_text(CHAIN, &["source.count=50"]).unwrap();
        let mut sim = topo.build().unwrap();
        let rec = Recorder::default();
        if observe {
            sim.set_observer(Box::new(rec.clone()));
        }
        let summary = sim.run().unwrap();
        let log = rec.0.lock().unwrap().clone();
        (summary, log)
    };
    let (s1, log1) = run(true);
    let (s2, log2) = run(true);
    let (s3, _) = run(false);
    assert!(!log1.is_empty());
    assert_eq!(log1, log2, "two observed runs saw different events");
    assert_eq!(s1, s2);
    assert_eq!(s1, s3, "observing changed the result");
}
