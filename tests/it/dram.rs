//! The DDR4 model against closed-form DDR4 arithmetic (timings from STA.md, in tCK).

use crate::support::{Recorder, load_text, run_ok, stat_u64};

/// DDR4-2400: tCK = 833 ps (the model's rounding of 0.833 ns).
const TCK: u64 = 833;
const BURST: u64 = 4; // BL8 on a DDR bus: 4 tCK

fn topo(traffic: &str, dram: &str) -> String {
    format!(
        "clock_mhz: 200
modules:
  gen: {{kind: mem_traffic, {traffic}}}
  dram: {{kind: dram, {dram}}}
links:
  - {{from: gen.req, to: dram.in0, depth: 64}}
  - {{from: dram.out0, to: gen.resp, depth: 64, latency_cycles: 1}}
"
    )
}

/// Time from the request entering the DRAM to the DRAM sending its response, ps.
fn unloaded_latency_ps(yaml: &str) -> u64 {
    let t = load_text(yaml, &[]).unwrap();
    let mut sim = t.build().unwrap();
    let rec = Recorder::default();
    sim.set_observer(Box::new(rec.clone()));
    sim.run().unwrap();
    let req = rec.send_times_ns(0);
    let log = rec.0.lock().unwrap();
    let resp_ps = log
        .iter()
        .find_map(|s| match s {
            crate::support::Seen::Send { at_ps, link: 1, .. } => Some(*at_ps),
            _ => None,
        })
        .unwrap();
    resp_ps - req[0] * 1000
}

#[test]
fn unloaded_read_costs_trcd_plus_tcl_plus_burst() {
    let lat = unloaded_latency_ps(&topo(
        "requests: 1, bytes: 64, outstanding: 1",
        "preset: ddr4-2400",
    ));
    assert_eq!(lat, (16 + 16 + BURST) * TCK); // 29.988 ns
    let lat = unloaded_latency_ps(&topo(
        "requests: 1, bytes: 64, outstanding: 1",
        "preset: ddr4-3200",
    ));
    assert_eq!(lat, (22 + 22 + BURST) * 625); // 30.0 ns
}

#[test]
fn unloaded_write_costs_trcd_plus_tcwl_plus_burst() {
    let lat = unloaded_latency_ps(&topo(
        "requests: 1, bytes: 64, outstanding: 1, write: true",
        "",
    ));
    assert_eq!(lat, (16 + 12 + BURST) * TCK);
}

#[test]
fn a_long_sequential_read_reaches_90_percent_of_peak() {
    // 8 MiB in 4 KiB requests, 4 outstanding: about 437 us, so ~56 refreshes per rank.
    let y = topo("requests: 2048, bytes: 4096, outstanding: 4", "");
    let (t, sim, _) = run_ok(&y, &[]);
    let bytes = stat_u64(&t, &sim, "dram", "bytes_read");
    assert_eq!(bytes, 8 << 20);
    let span_ps =
        stat_u64(&t, &sim, "dram", "last_done_ps") - stat_u64(&t, &sim, "gen", "first_issue_ps");
    let gbps = bytes as f64 / (span_ps as f64 / 1000.0);
    let peak = 2.0 * 8.0 / (TCK as f64 / 1000.0); // two 8-byte beats per tCK = 19.2 GB/s
    assert!(
        gbps >= 0.9 * peak,
        "{gbps:.2} GB/s against a peak of {peak:.2}"
    );
    assert!(gbps <= peak, "{gbps:.2} GB/s exceeds the peak {peak:.2}");
    // Refresh every 7.8 us on each of 2 ranks blocked the stream.
    let refreshes = stat_u64(&t, &sim, "dram", "refreshes");
    let expected = 2 * (span_ps / 7_800_000);
    assert!(
        refreshes >= expected - 2 && refreshes <= expected + 2,
        "{refreshes} vs {expected}"
    );
    // Sequential: almost every burst is a row hit.
    let hits = stat_u64(&t, &sim, "dram", "row_hits");
    assert!(hits as f64 >= 0.95 * (bytes / 64) as f64, "{hits} hits");
}

#[test]
fn reads_to_one_bank_in_different_rows_are_bound_by_trc() {
    // Row stride of the mapping (1 channel, 4 bank groups, 128 columns, 4 banks, 2 ranks):
    // 64 B * 4 * 128 * 4 * 2 = 256 KiB: every read hits the same bank in a new row.
    // Each needs PRE (>= ACT + tRAS) and ACT (>= PRE + tRP), so ACTs are tRAS + tRP = tRC
    // = 55 tCK apart; read k finishes at ACT_k + tRCD + tCL + burst.
    let n = 100u64;
    let y = topo(
        &format!("pattern: stride, stride_bytes: 262144, requests: {n}, bytes: 64, outstanding: 8"),
        "",
    );
    let (t, sim, _) = run_ok(&y, &[]);
    let last = stat_u64(&t, &sim, "dram", "last_done_ps");
    assert_eq!(last, ((n - 1) * 55 + 16 + 16 + BURST) * TCK);
    assert_eq!(stat_u64(&t, &sim, "dram", "row_conflicts"), n - 1);
}

#[test]
fn two_channels_nearly_double_sequential_bandwidth() {
    let y1 = topo("requests: 512, bytes: 4096, outstanding: 8", "channels: 1");
    let y2 = topo("requests: 512, bytes: 4096, outstanding: 8", "channels: 2");
    let span = |y: &str| {
        let (t, sim, _) = run_ok(y, &[]);
        stat_u64(&t, &sim, "dram", "last_done_ps") - stat_u64(&t, &sim, "gen", "first_issue_ps")
    };
    let ratio = span(&y1) as f64 / span(&y2) as f64;
    assert!(ratio > 1.8 && ratio <= 2.05, "speed-up {ratio:.2}");
}

#[test]
fn fr_fcfs_beats_fcfs_on_random_reads_over_few_rows() {
    // Random 64 B reads over 2 MiB (a few rows per bank), 32 outstanding: serving row hits
    // first saves precharge/activate pairs and finishes sooner than strict arrival order.
    let yaml = |policy: &str| {
        topo(
            "pattern: random, region_bytes: 2097152, requests: 4000, bytes: 64, outstanding: 32, seed: 7",
            &format!("policy: {policy}"),
        )
    };
    let run = |policy| {
        let (t, sim, _) = run_ok(&yaml(policy), &[]);
        (
            stat_u64(&t, &sim, "dram", "last_done_ps"),
            stat_u64(&t, &sim, "dram", "activates"),
        )
    };
    let (fr_time, fr_acts) = run("fr-fcfs");
    let (fc_time, fc_acts) = run("fcfs");
    assert!(
        fr_acts < fc_acts,
        "activates: fr-fcfs {fr_acts}, fcfs {fc_acts}"
    );
    assert!(
        fr_time < fc_time,
        "finish: fr-fcfs {fr_time} ps, fcfs {fc_time} ps"
    );
}

#[test]
fn dram_geometry_must_be_powers_of_two() {
    let y = topo("requests: 1", "ranks: 3");
    let t = load_text(&y, &[]).unwrap();
    let err = t.build().err().expect("ranks: 3 must be refused");
    assert!(
        err.message.contains("`ranks` = 3 must be a power of two"),
        "{err}"
    );
}
