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

/// One preset's numbers, written out from Ramulator 2's presets (see
/// `src/sta/dram/standards.rs` for the file and preset names), in tCK unless named.
struct P {
    name: &'static str,
    tck_ps: u64,
    nbl: u64,
    burst_bytes: u64,
    cl: u64,
    rcd: u64,
    rp: u64,
    ras: u64,
    rc: u64,
    rtp: u64,
    ccd_l: u64,
    rtrs: u64,
    rfc_ns: u64,
    refi_ns: u64,
    row_bytes: u64,
    banks_per_rank: u64,
    ranks: u64,
}

const PRESETS: &[P] = &[
    P {
        name: "ddr4-2400",
        tck_ps: 833,
        nbl: 4,
        burst_bytes: 64,
        cl: 16,
        rcd: 16,
        rp: 16,
        ras: 39,
        rc: 55,
        rtp: 9,
        ccd_l: 6,
        rtrs: 2,
        rfc_ns: 350,
        refi_ns: 7800,
        row_bytes: 8192,
        banks_per_rank: 16,
        ranks: 2,
    },
    P {
        name: "ddr4-3200",
        tck_ps: 625,
        nbl: 4,
        burst_bytes: 64,
        cl: 22,
        rcd: 22,
        rp: 22,
        ras: 52,
        rc: 74,
        rtp: 12,
        ccd_l: 8,
        rtrs: 2,
        rfc_ns: 350,
        refi_ns: 7800,
        row_bytes: 8192,
        banks_per_rank: 16,
        ranks: 2,
    },
    P {
        name: "ddr5-4800",
        tck_ps: 416,
        nbl: 8,
        burst_bytes: 64,
        cl: 34,
        rcd: 34,
        rp: 34,
        ras: 77,
        rc: 111,
        rtp: 18,
        ccd_l: 12,
        rtrs: 2,
        rfc_ns: 295,
        refi_ns: 3900,
        row_bytes: 4096,
        banks_per_rank: 32,
        ranks: 1,
    },
    P {
        name: "lpddr5-6400",
        tck_ps: 1250,
        nbl: 2,
        burst_bytes: 32,
        cl: 17,
        rcd: 15,
        rp: 15,
        ras: 34,
        rc: 49,
        rtp: 8,
        ccd_l: 4,
        rtrs: 2,
        rfc_ns: 280,
        refi_ns: 3906,
        row_bytes: 2048,
        banks_per_rank: 16,
        ranks: 1,
    },
    P {
        name: "hbm2-2000",
        tck_ps: 1000,
        nbl: 2,
        burst_bytes: 32,
        cl: 14,
        rcd: 14,
        rp: 14,
        ras: 34,
        rc: 48,
        rtp: 5,
        ccd_l: 4,
        rtrs: 2,
        rfc_ns: 160,
        refi_ns: 3900,
        row_bytes: 1024,
        banks_per_rank: 16,
        ranks: 1,
    },
    P {
        name: "hbm3-6400",
        tck_ps: 625,
        nbl: 2,
        burst_bytes: 32,
        cl: 20,
        rcd: 31,
        rp: 26,
        ras: 45,
        rc: 72,
        rtp: 9,
        ccd_l: 4,
        rtrs: 1,
        rfc_ns: 350,
        refi_ns: 3900,
        row_bytes: 1024,
        banks_per_rank: 16,
        ranks: 1,
    },
];

/// A generator fast enough not to be the limit (its own 2.4 GHz clock) driving one DRAM.
fn fast_topo(traffic: &str, dram: &str) -> String {
    format!(
        "clock_mhz: 200
modules:
  gen: {{kind: mem_traffic, clock_mhz: 2400, {traffic}}}
  dram: {{kind: dram, {dram}}}
links:
  - {{from: gen.req, to: dram.in0, depth: 64}}
  - {{from: dram.out0, to: gen.resp, depth: 64, latency_cycles: 1}}
"
    )
}

/// (last response, first request) of a run, ps, and the run's DRAM statistic reader.
fn span(yaml: &str) -> (u64, u64, impl Fn(&str) -> u64) {
    let (t, sim, _) = run_ok(yaml, &[]);
    let last = stat_u64(&t, &sim, "dram", "last_done_ps");
    let first = stat_u64(&t, &sim, "gen", "first_issue_ps");
    (last, first, move |s: &str| stat_u64(&t, &sim, "dram", s))
}

#[test]
fn every_preset_answers_an_idle_read_after_trcd_plus_cl_plus_burst() {
    // The request arrives at t = 0, a clock edge: no arrival cycle is charged; ACT issues on
    // that edge, RD tRCD later, data CL after RD for nBL cycles.
    for p in PRESETS {
        let y = topo(
            &format!("requests: 1, bytes: {}, outstanding: 1", p.burst_bytes),
            &format!("preset: {}", p.name),
        );
        let (last, first, _) = span(&y);
        assert_eq!(first, 0, "{}", p.name);
        assert_eq!(last, (p.rcd + p.cl + p.nbl) * p.tck_ps, "{}", p.name);
    }
}

#[test]
fn every_preset_serves_random_rows_of_one_bank_one_per_row_cycle() {
    // Rows of one bank (the default mapping puts the row above rank, bank, column, group):
    // ACT_k+1 >= PRE_k + tRP, PRE_k >= max(ACT_k + tRAS, RD_k + tRTP), RD_k = ACT_k + tRCD,
    // and ACT_k+1 >= ACT_k + tRC.
    let n = 20u64;
    for p in PRESETS {
        let stride = p.row_bytes * p.banks_per_rank * p.ranks;
        let y = topo(
            &format!(
                "pattern: stride, stride_bytes: {stride}, requests: {n}, bytes: {}, outstanding: 8",
                p.burst_bytes
            ),
            &format!("preset: {}, refresh: false", p.name),
        );
        let (last, _, stat) = span(&y);
        let per_row = p.rc.max(p.ras.max(p.rcd + p.rtp) + p.rp);
        assert_eq!(
            last,
            ((n - 1) * per_row + p.rcd + p.cl + p.nbl) * p.tck_ps,
            "{}",
            p.name
        );
        assert_eq!(stat("row_conflicts"), n - 1, "{}", p.name);
        assert_eq!(stat("row_misses"), 1, "{}", p.name);
    }
}

#[test]
fn close_page_turns_row_conflicts_into_misses_at_the_same_pace() {
    // Auto-precharge closes the row as early as an explicit PRE would have: same times,
    // every access a miss.
    let n = 20u64;
    let y = topo(
        &format!("pattern: stride, stride_bytes: 262144, requests: {n}, bytes: 64, outstanding: 8"),
        "refresh: false, page_policy: close",
    );
    let (last, _, stat) = span(&y);
    assert_eq!(last, ((n - 1) * 55 + 16 + 16 + BURST) * TCK);
    assert_eq!(stat("row_conflicts"), 0);
    assert_eq!(stat("row_misses"), n);
}

#[test]
fn a_stream_in_one_bank_group_moves_a_line_per_max_of_burst_and_tccd_l() {
    // Ramulator's RoBaRaCoCh puts the column right above the channel: one row-long request
    // stays in one bank of one bank group, so column commands are max(nBL, tCCD_L) apart.
    for p in PRESETS {
        let lines = p.row_bytes / p.burst_bytes;
        let y = topo(
            &format!("requests: 1, bytes: {}, outstanding: 1", p.row_bytes),
            &format!("preset: {}, refresh: false, mapping: RoBaRaCoCh", p.name),
        );
        let (last, _, stat) = span(&y);
        let per_line = p.nbl.max(p.ccd_l);
        assert_eq!(
            last,
            (p.rcd + p.cl + p.nbl + (lines - 1) * per_line) * p.tck_ps,
            "{}",
            p.name
        );
        assert_eq!(stat("row_hits"), lines - 1, "{}", p.name);
    }
}

#[test]
fn two_ranks_alternating_move_a_line_per_burst_plus_trtrs() {
    // Rank as the lowest field: consecutive lines alternate ranks, each a row hit after the
    // first two ACTs; the data bus idles tRTRS at every rank switch.
    let lines = 64u64;
    for p in PRESETS {
        let y = topo(
            &format!(
                "requests: 1, bytes: {}, outstanding: 1",
                lines * p.burst_bytes
            ),
            &format!(
                "preset: {}, ranks: 2, refresh: false, mapping: rochbabgcora",
                p.name
            ),
        );
        let (last, _, stat) = span(&y);
        assert_eq!(
            last,
            (p.rcd + p.cl + p.nbl + (lines - 1) * (p.nbl + p.rtrs)) * p.tck_ps,
            "{}",
            p.name
        );
        assert_eq!(stat("activates"), 2, "{}", p.name);
    }
}

#[test]
fn refresh_derates_a_stream_by_trfc_over_trefi() {
    // A sequential stream on one rank for about 20 refresh intervals, with and without
    // refresh. Each refresh stops the rank for tRFC, plus at most the drain before it
    // (RD to PRE, tRP) and the restart after it (tRCD + CL + nBL).
    for p in PRESETS {
        let peak_bytes_per_ns = p.burst_bytes as f64 / (p.nbl * p.tck_ps) as f64 * 1000.0;
        let requests = (20.0 * p.refi_ns as f64 * peak_bytes_per_ns / 4096.0).ceil() as u64;
        let run = |refresh: bool| {
            let y = fast_topo(
                &format!("requests: {requests}, bytes: 4096, outstanding: 16"),
                &format!("preset: {}, ranks: 1, refresh: {refresh}", p.name),
            );
            let (last, first, stat) = span(&y);
            (last - first, stat("refreshes"))
        };
        let (off, none) = run(false);
        let (on, n) = run(true);
        assert_eq!(none, 0);
        assert!((18..=22).contains(&n), "{}: {n} refreshes", p.name);
        let rfc_ps = (p.rfc_ns * 1000).div_ceil(p.tck_ps) * p.tck_ps;
        let lost = on - off;
        let most = n * (rfc_ps + (p.rtp + p.rp + p.rcd + p.cl + p.nbl) * p.tck_ps);
        assert!(
            lost >= n * p.rfc_ns * 1000 && lost <= most,
            "{}: {n} refreshes cost {lost} ps, expected {}..={most}",
            p.name,
            n * p.rfc_ns * 1000
        );
        let derating = off as f64 / on as f64;
        let closed = 1.0 - p.rfc_ns as f64 / p.refi_ns as f64;
        // Off the closed form by at most the drain and restart per refresh, and one refresh
        // in 20 for where the stream starts and ends between two refreshes.
        let refi_ps = (p.refi_ns * 1000) as f64;
        let slack = ((p.rtp + p.rp + p.rcd + p.cl + p.nbl) * p.tck_ps) as f64 / refi_ps
            + p.rfc_ns as f64 / p.refi_ns as f64 / 20.0;
        assert!(
            (derating - closed).abs() <= slack,
            "{}: bandwidth x {derating:.4} with refresh, closed form x {closed:.4}",
            p.name
        );
    }
}

#[test]
fn random_reads_over_1_gib_reach_80_percent_of_peak_on_ddr4_2400() {
    // Uniform random 64 B reads over 1 GiB, default queue depths (32 reads, 32 writes), two
    // ranks: FR-FCFS keeps enough ACTs ahead of the data bus.
    let n = if cfg!(debug_assertions) {
        8_000
    } else {
        40_000
    };
    let y = fast_topo(
        &format!(
            "pattern: random, region_bytes: 1073741824, requests: {n}, bytes: 64, outstanding: 256, seed: 3"
        ),
        "",
    );
    let (last, first, stat) = span(&y);
    let gbps = (n * 64) as f64 / ((last - first) as f64 / 1000.0);
    let peak = 2.0 * 8.0 / (TCK as f64 / 1000.0);
    assert!(
        gbps > 0.8 * peak,
        "{gbps:.2} GB/s of {peak:.2} ({:.1} %)",
        100.0 * gbps / peak
    );
    // Random rows: nearly every read needs an ACT.
    assert!(stat("activates") as f64 > 0.9 * n as f64);
    assert_eq!(stat("reads"), n);
}

#[test]
fn row_statistics_add_up_to_the_column_commands() {
    let y = fast_topo(
        "pattern: random, region_bytes: 4194304, requests: 3000, bytes: 128, outstanding: 64, seed: 9",
        "",
    );
    let (_, _, stat) = span(&y);
    assert_eq!(stat("reads"), 6000);
    assert_eq!(
        stat("row_hits") + stat("row_misses") + stat("row_conflicts"),
        stat("reads") + stat("writes")
    );
    assert_eq!(stat("bytes_read"), 6000 * 64);
}

#[test]
fn a_bad_mapping_is_refused_with_the_forms_it_accepts() {
    let y = topo("requests: 1", "mapping: rorobabgcoch");
    let t = load_text(&y, &[]).unwrap();
    let err = t.build().err().expect("a repeated field must be refused");
    assert!(
        err.message.contains("each of ro ch ra bg ba co once"),
        "{err}"
    );
    assert!(err.message.contains("RoBaRaCoCh"), "{err}");
}
