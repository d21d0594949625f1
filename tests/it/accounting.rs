//! Accounting a reader can trust: the PE array's states partition the run exactly, the three
//! per-op times relate as defined (src/report/mod.rs), the VCD's `state` and `busy` agree
//! with the report, every module instance is reported, and DRAM energy is the DRAM's.

use std::path::Path;

use crate::support::tmp_dir;
use crate::trace::changes;
use stasim::report::{OpReport, Report};
use stasim::run::{WorkloadArgs, resolve_workload, simulate};
use stasim::topology::{self, SetOverride, Source};
use stasim::trace::TraceOptions;

fn run_traced(topo: &str, args: WorkloadArgs, sets: &[&str], trace: Option<&Path>) -> Report {
    let sets: Vec<SetOverride> = sets
        .iter()
        .map(|s| SetOverride::parse(s).unwrap())
        .collect();
    let t = topology::load(&Source::read(topo).unwrap(), &sets).unwrap_or_else(|e| panic!("{e}"));
    let w = resolve_workload(&t, &args).unwrap_or_else(|e| panic!("{e}"));
    let opts = trace.map(|dir| TraceOptions {
        vcd: Some(dir.join("run.vcd")),
        perfetto: Some(dir.join("run.json")),
        vcd_strings: true,
        ..TraceOptions::default()
    });
    simulate(&t, &w, None, opts.as_ref(), None)
        .unwrap_or_else(|e| panic!("{e}"))
        .report
}

fn run(topo: &str, args: WorkloadArgs, sets: &[&str]) -> Report {
    run_traced(topo, args, sets, None)
}

fn ops(r: &Report) -> impl Iterator<Item = &OpReport> {
    r.layers.iter().flat_map(|l| &l.ops)
}

/// The identities every report must satisfy, whatever the design.
fn check_partition(r: &Report, what: &str) {
    let t = &r.pe_time;
    assert_eq!(t.array_cycles, r.total_cycles, "{what}: one PE array");
    // Every cycle in exactly one state: computing, four waits, idle.
    let states = t.busy_cycles
        + t.dram_cycles
        + t.buffer_cycles
        + t.softmax_cycles
        + t.downstream_cycles
        + t.idle_cycles;
    assert_eq!(states, r.total_cycles, "{what}: states {t:?}");
    // The per-op split of the same cycles: pe_cycles of all ops plus idle.
    let pe: u64 = ops(r).map(|o| o.pe_cycles).sum();
    assert_eq!(
        pe + t.idle_cycles,
        r.total_cycles,
        "{what}: pe_cycles + idle"
    );
    for o in ops(r) {
        assert_eq!(
            o.pe_cycles,
            o.pe_busy_cycles()
                + o.stall_dram_cycles
                + o.stall_buffer_cycles
                + o.stall_softmax_cycles
                + o.stall_downstream_cycles
        );
        assert_eq!(
            o.span_cycles,
            o.end_cycle - o.start_cycle,
            "{what}: {}",
            o.name
        );
        // With one PE array, everything it did for an op lies within the op's span.
        assert!(
            o.span_cycles >= o.pe_cycles,
            "{what}: L{}.{} span {} < pe {}",
            o.layer,
            o.name,
            o.span_cycles,
            o.pe_cycles
        );
    }
    let busy: u64 = ops(r).map(|o| o.pe_busy_cycles()).sum();
    assert_eq!(busy, t.busy_cycles, "{what}");
    let critical: u64 = ops(r).map(|o| o.critical_cycles).sum();
    assert_eq!(critical, r.total_cycles, "{what}: critical_cycles");
    let layers: u64 = r.layers.iter().map(|l| l.critical_cycles).sum();
    assert_eq!(layers, r.total_cycles, "{what}: layers' critical_cycles");
    // Computing takes at least the useful MACs at R*C*L a cycle of the array's clock (less
    // under a report cycle per op that the rounding may give a neighbouring state, when
    // the array's clock is not the report clock).
    let p = &r.pe_arrays[0];
    let slack = ops(r).count() as f64;
    let busy_us = (t.busy_cycles as f64 + slack) / r.clock_mhz;
    let floor_us = r.macs as f64 / p.multipliers as f64 / p.clock_mhz;
    assert!(busy_us >= floor_us, "{what}: {busy_us} < {floor_us} us");
}

#[test]
fn pe_states_add_up_to_the_total_cycles_on_the_default_run() {
    let r = run("sta", WorkloadArgs::default(), &[]);
    check_partition(&r, "default run");
    // P.V (BERT-base, s = 128, 12 heads): 8 x 4 tiles of 16 x 16 per head, each a pass over
    // K = 128 at L = 8 MACs a cycle: 12 * 32 * 16 = 6,144 busy cycles a layer. Its PE time
    // covers them and the wait for the softmax's P rows; its critical time is small (the
    // next op's work overlaps it).
    for pv in ops(&r).filter(|o| o.name == "pv") {
        assert_eq!(pv.pe_busy_cycles(), 12 * 32 * 16);
        assert_eq!(pv.busy_cycles, 12 * 32 * 16);
        assert!(pv.pe_cycles >= pv.busy_cycles);
        assert!(pv.stall_softmax_cycles > 0, "{pv:?}");
        assert!(pv.critical_cycles < pv.pe_cycles);
    }
    // Nearly all the run has a pass in hand: idle only before the first and after the last.
    assert!(r.pe_time.idle_cycles < 1000, "{:?}", r.pe_time);
}

#[test]
fn pe_states_add_up_to_the_total_cycles_on_a_dram_bound_design() {
    // A 64 x 64 array (16x the compute) on one DDR4-2400 channel, dense weights. (At 32 x 32
    // the out-of-order controller, at 88 % of peak, leaves compute and DRAM waits level.)
    let args = WorkloadArgs {
        layers: Some(1),
        pattern: Some("dense".into()),
        ..WorkloadArgs::default()
    };
    let r = run("sta", args, &["pe_array.rows=64", "pe_array.cols=64"]);
    check_partition(&r, "DRAM-bound");
    assert!(
        r.pe_time.dram_cycles > r.pe_time.busy_cycles,
        "{:?}",
        r.pe_time
    );
    // The same on an array clocked apart from the report clock (300 MHz against 200): its
    // passes end between report edges, and the states still add up exactly.
    let args = WorkloadArgs {
        layers: Some(1),
        ..WorkloadArgs::default()
    };
    let r = run(
        "sta-small",
        args,
        &[
            "pe_array.rows=8",
            "pe_array.cols=8",
            "pe_array.clock_mhz=300",
        ],
    );
    check_partition(&r, "PE array at 300 MHz");
    assert!(r.pe_time.dram_cycles > 0);
    // Utilisation counts the array's own cycles: at most 100 %.
    assert!(
        r.pe_utilization > 0.3 && r.pe_utilization <= 1.0,
        "{}",
        r.pe_utilization
    );
}

/// Picoseconds `changes` spends at each value, until `end_ps` (the last change at one time
/// wins).
fn time_at_values(changes: &[(u64, String)], end_ps: u64) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    for (i, (t, v)) in changes.iter().enumerate() {
        let next = changes.get(i + 1).map_or(end_ps, |c| c.0);
        match out.iter_mut().find(|(w, _)| w == v) {
            Some(e) => e.1 += next - t,
            None => out.push((v.clone(), next - t)),
        }
    }
    out
}

#[test]
fn the_vcd_state_signal_shows_the_stalls_and_busy_is_high_exactly_while_computing() {
    let dir = tmp_dir("accounting", "vcd");
    let args = WorkloadArgs {
        pattern: Some("dense".into()),
        ..WorkloadArgs::default()
    };
    // sta-small on a 16 x 16 array: DRAM-bound stretches between compute.
    let r = run_traced(
        "sta-small",
        args,
        &["pe_array.rows=16", "pe_array.cols=16"],
        Some(&dir),
    );
    let vcd = dir.join("run.vcd");
    let period = 5_000; // 200 MHz
    let end = (r.total_time_us * 1e6).round() as u64;
    let busy = time_at_values(&changes(&vcd, "pe_array", "busy"), end);
    let high = busy.iter().find(|(v, _)| v == "1").map_or(0, |e| e.1);
    assert_eq!(high, r.pe_time.busy_cycles * period, "busy high {high} ps");
    // `state` (integer codes), and with string signals `state_name`.
    let state = changes(&vcd, "pe_array", "state");
    let names = changes(&vcd, "pe_array", "state_name");
    assert_eq!(state.len(), names.len());
    assert_eq!(state[0].0, 0, "a state from time 0");
    let by_code = time_at_values(&state, end);
    let ps_of = |code: u64| {
        by_code
            .iter()
            .find(|(v, _)| u64::from_str_radix(v, 2).unwrap() == code)
            .map_or(0, |e| e.1)
    };
    assert_eq!(ps_of(1), r.pe_time.busy_cycles * period, "computing");
    let t = &r.pe_time;
    for (code, cycles, what) in [
        (0, t.idle_cycles, "idle"),
        (2, t.dram_cycles, "DRAM"),
        (3, t.buffer_cycles, "buffer"),
        (4, t.softmax_cycles, "softmax"),
        (5, t.downstream_cycles, "accumulator"),
    ] {
        // Waits start and end between edges; the report rounds each op's share of a state
        // to whole cycles (cumulatively), so a state's total is within one cycle per op of
        // its time in the VCD.
        let ps = ps_of(code);
        let ops = r.layers.iter().map(|l| l.ops.len() as u64).sum::<u64>();
        assert!(
            ps.div_ceil(period).abs_diff(cycles) <= ops.max(1),
            "{what}: {ps} ps in the VCD, {cycles} cycles in the report"
        );
    }
    assert!(t.dram_cycles > 1000, "{t:?}");
    let total: u64 = by_code.iter().map(|e| e.1).sum();
    assert_eq!(total, end, "the state signal covers the run");
    let name_times = time_at_values(&names, end);
    for (name, code) in [("computing", 1), ("wait_dram", 2)] {
        let ps = name_times
            .iter()
            .find(|(v, _)| v == name)
            .map_or(0, |e| e.1);
        assert_eq!(ps, ps_of(code), "{name}");
    }
    // Busy is high exactly when the state is computing.
    let busy_ch = changes(&vcd, "pe_array", "busy");
    let value_at = |ch: &[(u64, String)], t: u64| {
        ch.iter()
            .take_while(|(ct, _)| *ct <= t)
            .last()
            .map(|(_, v)| v.clone())
    };
    for (t, v) in state.iter().step_by(7) {
        let computing = u64::from_str_radix(v, 2).unwrap() == 1;
        assert_eq!(
            value_at(&busy_ch, *t).as_deref(),
            Some(if computing { "1" } else { "0" }),
            "at {t} ps"
        );
    }
    // Perfetto: the waits as spans on a track of their own, as long as the VCD's.
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    let events = v.as_array().unwrap();
    let tid = events
        .iter()
        .find(|e| e["ph"] == "M" && e["args"]["name"] == "pe_array waits")
        .map(|e| e["tid"].clone())
        .expect("a pe_array waits track");
    let dram_us: f64 = events
        .iter()
        .filter(|e| e["ph"] == "X" && e["tid"] == tid && e["name"] == "waiting for DRAM")
        .map(|e| e["dur"].as_f64().unwrap())
        .sum();
    assert!(
        (dram_us * 1e6 - ps_of(2) as f64).abs() < 1.0,
        "{dram_us} us vs {} ps",
        ps_of(2)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_topology_with_two_drams_reports_both_and_sums_them() {
    let two = run(
        "topologies/sta-two-drams.yaml",
        WorkloadArgs::default(),
        &[],
    );
    let names: Vec<&str> = two.drams.iter().map(|d| d.module.as_str()).collect();
    assert_eq!(names, ["dram", "dram_out"]);
    let (main, out) = (&two.drams[0].traffic, &two.drams[1].traffic);
    // `dram` serves the weight and activation loads, `dram_out` the output buffer's writes.
    assert!(main.bytes_read > 0 && main.bytes_written == 0, "{main:?}");
    assert!(out.bytes_written > 0, "{out:?}");
    let d = &two.dram;
    assert_eq!(d.bytes_read, main.bytes_read + out.bytes_read);
    assert_eq!(d.bytes_written, main.bytes_written + out.bytes_written);
    assert_eq!(d.activates, main.activates + out.activates);
    // The same traffic as the one-DRAM design, now split over two, at twice its peak.
    let one = run("sta-small", WorkloadArgs::default(), &[]);
    assert_eq!(one.drams.len(), 1);
    assert!(
        (d.peak_gbps - 2.0 * one.dram.peak_gbps).abs() < 1e-9,
        "{}",
        d.peak_gbps
    );
    assert!((main.peak_gbps - one.dram.peak_gbps).abs() < 1e-9);
    assert_eq!(
        (d.bytes_read, d.bytes_written),
        (one.dram.bytes_read, one.dram.bytes_written)
    );
    // The bandwidth timeline holds both DRAMs' bytes.
    let bucket_s = two.timeline.bucket_us * 1e-6;
    let moved: f64 = two
        .timeline
        .dram_gbps
        .iter()
        .map(|g| g * 1e9 * bucket_s)
        .sum();
    let bytes = (d.bytes_read + d.bytes_written) as f64;
    assert!((moved - bytes).abs() < 1e-6 * bytes, "{moved} vs {bytes}");
    // Each DRAM's energy is its own traffic.
    let t = &two.energy.table;
    for dm in &two.drams {
        let e = two
            .energy
            .per_module
            .iter()
            .find(|m| m.module == dm.module)
            .unwrap();
        let expect = (dm.traffic.bytes_read + dm.traffic.bytes_written) as f64 * t.dram_pj_per_byte
            + dm.traffic.activates as f64 * t.dram_activate_pj;
        assert!(
            (e.dynamic_pj - expect).abs() <= 1e-9 * expect,
            "{}",
            dm.module
        );
    }
    check_partition(&two, "two DRAMs");
}

#[test]
fn dram_traffic_energy_is_charged_to_the_dram_module() {
    let r = run("sta-small", WorkloadArgs::default(), &[]);
    let (e, t, a) = (&r.energy, &r.energy.table, &r.energy.actions);
    let of = |name: &str| e.per_module.iter().find(|m| m.module == name).unwrap();
    // The DRAM: the bytes it moved and its activates.
    let dram = a.dram_bytes as f64 * t.dram_pj_per_byte + a.activates as f64 * t.dram_activate_pj;
    assert!((of("dram").dynamic_pj - dram).abs() <= 1e-9 * dram);
    // The modules' dynamic energies add up to the run's (nothing dynamic is unattributed).
    let dynamic = e.dynamic.mac_pj + e.dynamic.sram_pj + e.dynamic.dram_pj;
    let per_module: f64 = e.per_module.iter().map(|m| m.dynamic_pj).sum();
    assert!(
        (per_module - dynamic).abs() < 1e-9 * dynamic,
        "{per_module} vs {dynamic}"
    );
    // A buffer's energy is its SRAM traffic only: the ops' energy less the DRAM bytes they
    // requested is what the other modules are charged.
    let per_op: f64 = ops(&r).map(|o| o.energy_pj).sum();
    let requested: u64 = ops(&r).map(|o| o.dram_bytes).sum();
    let others = per_module - of("dram").dynamic_pj;
    let expect = per_op - requested as f64 * t.dram_pj_per_byte;
    assert!(
        (others - expect).abs() < 1e-9 * dynamic,
        "{others} vs {expect}"
    );
    assert!(of("weight_buffer").dynamic_pj < 0.1 * of("dram").dynamic_pj);
}
