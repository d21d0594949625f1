//! Trace replay (`stasim dram --trace`), the canonical trace generator (`--gen`) and the
//! `mem_traffic` generator's patterns, against DDR4 arithmetic written out here.
//!
//! DDR4-2400 (JESD79-4, speed bin 2400R, as in STA.md): tCK = 0.833 ns, CL = tRCD = tRP =
//! 16, tRAS = 39, tRC = 55, tRTP = 9, BL8 (4 tCK on the bus), tRFC = 350 ns, tREFI = 7.8 us;
//! x64 channel: 2 x 8 bytes per tCK.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use stasim::kernel::{LinkId, LinkSpec, Observer, SimTime};
use stasim::replay::trace::TraceReader;
use stasim::txn::Transaction;

use crate::support::{SplitMix64, load_text, skipped, stat_u64, tmp_dir};

const TCK_NS: f64 = 0.833;
const PEAK_GBPS: f64 = 2.0 * 8.0 / TCK_NS;

fn stasim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stasim"))
        .args(args)
        .output()
        .expect("the stasim binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `stasim dram --trace FILE --json ARGS...` must succeed; its report.
fn replay_json(trace: &Path, args: &[&str]) -> serde_json::Value {
    let t = trace.to_str().unwrap();
    let mut all = vec!["dram", "--trace", t, "--json"];
    all.extend_from_slice(args);
    let o = stasim(&all);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("the report is JSON")
}

/// Writes a canonical trace with `stasim dram --gen`.
fn write_case(dir: &Path, case: &str, count: u64) -> std::path::PathBuf {
    let path = dir.join(format!("{case}.trace"));
    let n = count.to_string();
    let o = stasim(&[
        "dram",
        "--gen",
        case,
        "--count",
        &n,
        "--out",
        path.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    path
}

fn f(v: &serde_json::Value, key: &str) -> f64 {
    v.pointer(key)
        .and_then(serde_json::Value::as_f64)
        .unwrap_or_else(|| panic!("no number at {key} in {v}"))
}

/// 300 requests, a third of them writes, at random unaligned addresses below 2^40.
fn sample_requests() -> Vec<(u64, bool)> {
    let mut r = SplitMix64(11);
    (0..300)
        .map(|_| (r.next_u64() >> 24, r.chance(3)))
        .collect()
}

#[test]
fn every_trace_format_parses_to_the_same_requests() {
    let dir = tmp_dir("replay", "formats");
    let reqs = sample_requests();
    let mut rw = String::from("# a comment, then a blank line\n\n");
    let mut ram = String::new();
    let mut ds3 = String::new();
    for (i, &(a, w)) in reqs.iter().enumerate() {
        rw += &format!("{} {a:#x}\n", if w { "W" } else { "R" });
        ram += &format!("{}\t{a:#X}\r\n", if w { "ST" } else { "LD" });
        ds3 += &format!("  {a:#x} {} {}\n", if w { "WRITE" } else { "READ" }, 3 * i);
    }
    rw.pop(); // the last line without its newline
    let expect: Vec<(u64, bool)> = reqs.iter().map(|&(a, w)| (a / 64 * 64, w)).collect();
    for (name, text, format) in [
        ("rw", &rw, "rw"),
        ("ramulator", &ram, "ramulator"),
        ("dramsim3", &ds3, "dramsim3"),
    ] {
        let path = dir.join(format!("{name}.trace"));
        std::fs::write(&path, text).unwrap();
        let mut reader = TraceReader::open(path.to_str().unwrap()).unwrap();
        let mut got = Vec::new();
        let mut cycles = Vec::new();
        while let Some(r) = reader.next_request().unwrap() {
            got.push((r.addr, r.write));
            cycles.extend(r.cycle);
        }
        assert_eq!(got, expect, "{name}");
        assert_eq!(reader.format().map(|f| f.name()), Some(format));
        if name == "dramsim3" {
            assert_eq!(cycles, (0..300).map(|i| 3 * i).collect::<Vec<u64>>());
        } else {
            assert!(cycles.is_empty());
        }
    }
    // Without cycles the three are the same replay: everything but the file and format.
    let strip = |mut v: serde_json::Value| {
        v["trace"] = serde_json::Value::Null;
        v["format"] = serde_json::Value::Null;
        v
    };
    let a = strip(replay_json(&dir.join("rw.trace"), &[]));
    let b = strip(replay_json(&dir.join("ramulator.trace"), &[]));
    assert_eq!(a, b);
    assert_eq!(a["requests"], 300);
    assert_eq!(
        a["writes"],
        expect.iter().filter(|r| r.1).count() as u64,
        "{a}"
    );
}

#[test]
fn dramsim3_cycles_hold_requests_back_until_their_cycle() {
    // Two reads 5,000 cycles apart (4.2 us, before the first refresh at 7.8 us): the second
    // arrives at cycle 5,000 (plus the one tCK the request link takes), long after the
    // first has finished, and hits the row the first opened.
    let dir = tmp_dir("replay", "cycles");
    let path = dir.join("t.trace");
    std::fs::write(&path, "0x0 READ 0\n0x0 READ 5000\n").unwrap();
    let v = replay_json(&path, &[]);
    let last_ns = f(&v, "/last_data_ns");
    // tCL + burst after its arrival.
    let expect = (5_000.0 + 1.0 + 16.0 + 4.0) * TCK_NS;
    assert!((last_ns - expect).abs() < 1e-6, "{last_ns} vs {expect}");
    assert_eq!(v["row_hits"], 1);
}

#[test]
fn bad_trace_lines_exit_2_naming_file_line_and_column() {
    let dir = tmp_dir("replay", "bad");
    let long = format!("R 0x{}\n", "4".repeat(5000));
    let cases: &[(&str, &str, u32, u32, &str)] = &[
        ("unknown", "R 0x40\nX 0x80\n", 2, 1, "`X`"),
        (
            "hex",
            "R 0x40\n\nW 0x4g0\n",
            3,
            3,
            "not a hexadecimal address",
        ),
        (
            "mixed",
            "R 0x40\nLD 0x80\n",
            2,
            1,
            "`rw` format (detected on line 1)",
        ),
        ("no_addr", "W\n", 1, 2, "missing the address"),
        ("extra", "R 0x40 0x80\n", 1, 8, "unexpected `0x80`"),
        ("wide", "R 0x10000000000000000\n", 1, 3, "64 bits"),
        ("no_cycle", "0x40 READ\n", 1, 10, "missing the cycle"),
        ("bad_cycle", "0x40 READ 12x\n", 1, 11, "not a cycle number"),
        ("bad_op", "0x40 FETCH 3\n", 1, 6, "not `READ` or `WRITE`"),
        ("long", &long, 1, 4096, "longer than 4096 bytes"),
    ];
    for &(name, text, line, col, needle) in cases {
        let path = dir.join(format!("{name}.trace"));
        std::fs::write(&path, text).unwrap();
        let o = stasim(&["dram", "--trace", path.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        let at = format!("{}:{line}:{col}", path.display());
        assert!(err.contains(&at), "{name}: expected {at} in\n{err}");
        assert!(
            err.contains(needle),
            "{name}: expected {needle:?} in\n{err}"
        );
        assert!(err.contains("hint:"), "{name}: no hint in\n{err}");
        assert!(o.stdout.is_empty(), "{name}: printed a report");
    }
    // No request at all, no file, a key of no DRAM, a bad DRAM value, a bad mapping.
    let empty = dir.join("empty.trace");
    std::fs::write(&empty, "# nothing\n\n").unwrap();
    let e = empty.to_str().unwrap();
    for (args, needle) in [
        (vec!["dram", "--trace", e], "has no requests"),
        (
            vec!["dram", "--trace", "/nonexistent/t.trace"],
            "cannot read trace",
        ),
        (
            vec!["dram", "--trace", e, "--set", "pe_array.rows=4"],
            "names no part",
        ),
        (
            vec!["dram", "--trace", e, "--set", "dram.queue_depth=0"],
            "queue_depth",
        ),
        (vec!["dram", "--trace", e, "--preset", "ddr9-1"], "ddr9-1"),
        (
            vec!["dram", "--trace", e, "--mapping", "no-such-map"],
            "mapping",
        ),
        (
            vec!["dram", "--gen", "sequential", "--out", e],
            "unknown trace case",
        ),
    ] {
        let o = stasim(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn an_idle_read_costs_trcd_plus_cl_plus_burst() {
    // DDR4-2400: tRCD + CL + BL/2 = 16 + 16 + 4 tCK of 0.833 ns = 29.988 ns; DDR4-3200
    // (tCK 0.625 ns, 22-22-22): 22 + 22 + 4 = 48 tCK = 30.0 ns. No arrival cycle is
    // charged: the latency runs from the controller taking the request.
    let dir = tmp_dir("replay", "idle");
    let trace = write_case(&dir, "idle-read", 1);
    for (preset, expect_ns) in [
        ("ddr4-2400", (16.0 + 16.0 + 4.0) * 0.833),
        ("ddr4-3200", (22.0 + 22.0 + 4.0) * 0.625),
    ] {
        let v = replay_json(&trace, &["--preset", preset]);
        for key in ["mean", "p50", "p99", "min", "max"] {
            let got = f(&v, &format!("/read_latency_ns/{key}"));
            assert!((got - expect_ns).abs() < 1e-9, "{preset} {key}: {got}");
        }
        let span = f(&v, "/span_ns");
        assert!((span - expect_ns).abs() < 1e-9, "{preset}: span {span}");
        let bw = f(&v, "/bandwidth_gbps");
        assert!((bw - 64.0 / expect_ns).abs() < 1e-9, "{preset}: {bw}");
        assert_eq!(v["activates"], 1);
        assert_eq!(v["row_misses"], 1);
    }
}

#[test]
fn a_sequential_read_stream_runs_at_peak_less_refresh() {
    // The model's mapping puts bank groups in the lowest bits above the burst, so
    // consecutive lines alternate bank groups: column commands tCCD_S = 4 tCK apart, one
    // burst (4 tCK) each, the bus never idles; both ranks refresh together, blocking the
    // channel tRFC of every tREFI. Closed form: peak * (1 - tRFC/tREFI)
    // = 19.208 * (1 - 350/7800) = 18.346 GB/s.
    let dir = tmp_dir("replay", "sequential");
    let n = if cfg!(debug_assertions) {
        40_000
    } else {
        200_000
    };
    let trace = write_case(&dir, "sequential-reads", n);
    let v = replay_json(&trace, &[]);
    let expect = PEAK_GBPS * (1.0 - 350.0 / 7800.0);
    let bw = f(&v, "/bandwidth_gbps");
    assert!(
        (bw - expect).abs() < 0.02 * expect,
        "{bw:.3} GB/s against the closed form {expect:.3}"
    );
    assert_eq!(v["bytes"], 64 * n);
    // A row holds 8 KiB / 64 B = 128 lines: at least one activate per 128 reads.
    let acts = v["activates"].as_u64().unwrap();
    assert!(acts >= n / 128, "{acts} activates for {n} reads");
    // A refresh closes at most the 32 banks of the two ranks.
    let refreshes = v["refreshes"].as_u64().unwrap();
    assert!(
        acts <= n / 128 + 1 + 32 * refreshes,
        "{acts} activates, {refreshes} refreshes"
    );
    // Refresh every 7.8 us on each of the two ranks, over the whole span.
    let refs = v["refreshes"].as_u64().unwrap() as f64;
    let expect_refs = 2.0 * f(&v, "/last_data_ns") / 7800.0;
    assert!(
        (refs - expect_refs).abs() <= 2.0,
        "{refs} refreshes, {expect_refs:.1} expected"
    );
}

#[test]
fn random_rows_of_one_bank_cost_one_row_cycle_each() {
    // Every read opens a new row of bank 0: one per max(tRC, max(tRAS, tRCD + tRTP) + tRP)
    // = max(55, max(39, 25) + 16) = 55 tCK, less refresh: 64 B / (55 * 0.833 ns)
    // * (1 - 350/7800) = 1.334 GB/s.
    let dir = tmp_dir("replay", "bank");
    let trace = write_case(&dir, "bank-rows", 3_000);
    let v = replay_json(&trace, &[]);
    let expect = 64.0 / (55.0 * TCK_NS) * (1.0 - 350.0 / 7800.0);
    let bw = f(&v, "/bandwidth_gbps");
    assert!(
        (bw - expect).abs() < 0.02 * expect,
        "{bw:.4} vs {expect:.4}"
    );
    let acts = v["activates"].as_u64().unwrap();
    assert!(acts >= 2_990, "{acts} activates for 3,000 rows");
}

#[test]
fn a_replay_is_byte_identical_run_to_run() {
    let dir = tmp_dir("replay", "determinism");
    let trace = write_case(&dir, "random-reads", 5_000);
    let t = trace.to_str().unwrap();
    for args in [
        vec!["dram", "--trace", t],
        vec!["dram", "--trace", t, "--json"],
    ] {
        let a = stasim(&args);
        let b = stasim(&args);
        assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
        assert!(!a.stdout.is_empty());
        assert_eq!(a.stdout, b.stdout, "{args:?}");
    }
}

#[test]
fn canonical_traces_are_deterministic_and_shaped_as_documented() {
    let dir = tmp_dir("replay", "canonical");
    let read = |p: &Path| -> Vec<(u64, bool)> {
        let mut r = TraceReader::open(p.to_str().unwrap()).unwrap();
        std::iter::from_fn(|| r.next_request().unwrap())
            .map(|q| (q.addr, q.write))
            .collect()
    };
    let a = write_case(&dir, "random-reads", 2_000);
    let bytes = std::fs::read(&a).unwrap();
    let a2 = write_case(&dir.join(".."), "random-reads", 2_000);
    assert_eq!(bytes, std::fs::read(&a2).unwrap());
    let random = read(&a);
    assert_eq!(random.len(), 2_000);
    assert!(
        random
            .iter()
            .all(|&(x, w)| x % 64 == 0 && x < 1 << 30 && !w)
    );
    // SplitMix64 seed 1, multiply-shift onto the 2^24 lines of 1 GiB.
    let mut r = SplitMix64(1);
    for &(x, _) in &random[..20] {
        let line = ((u128::from(r.next_u64()) * (1u128 << 24)) >> 64) as u64;
        assert_eq!(x, line * 64);
    }
    let mixed = read(&write_case(&dir, "sequential-mixed", 999));
    for (k, &(x, w)) in mixed.iter().enumerate() {
        assert_eq!((x, w), (64 * k as u64, k % 3 == 2));
    }
    let rows = read(&write_case(&dir, "bank-rows", 1_000));
    assert!(
        rows.iter()
            .all(|&(x, _)| x % (1 << 18) == 0 && x >> 18 < 65_536)
    );
    assert!(rows.windows(2).all(|p| p[0].0 != p[1].0));
    assert_eq!(read(&write_case(&dir, "idle-read", 1)), vec![(0, false)]);
}

/// Records every request the generator sends: (time ps, address, write).
#[derive(Clone, Default)]
struct Requests(Arc<Mutex<Vec<(u64, u64, bool)>>>);

impl Observer<Transaction> for Requests {
    fn on_start(&mut self, _actors: &[String], _links: &[LinkSpec]) {}
    fn on_send(&mut self, now: SimTime, _link: LinkId, msg: &Transaction, _visible: SimTime) {
        if let Transaction::MemReq(r) = msg {
            self.0.lock().unwrap().push((now.as_ps(), r.addr, r.write));
        }
    }
    fn on_recv(&mut self, _now: SimTime, _link: LinkId, _msg: &Transaction) {}
    fn on_probe(
        &mut self,
        _now: SimTime,
        _actor: stasim::kernel::ActorId,
        _signal: &'static str,
        _value: stasim::kernel::ProbeValue,
    ) {
    }
}

/// Runs `mem_traffic` with `params` against a default DRAM; the requests it sent, and its
/// `reads` and `writes` statistics.
fn traffic(params: &str) -> (Vec<(u64, u64, bool)>, u64, u64) {
    let yaml = format!(
        "clock_mhz: 1000
modules:
  gen: {{kind: mem_traffic, {params}}}
  dram: {{kind: dram}}
links:
  - {{from: gen.req, to: dram.in0, depth: 4}}
  - {{from: dram.out0, to: gen.resp, depth: 64, latency_cycles: 1}}
"
    );
    let t = load_text(&yaml, &[]).unwrap_or_else(|e| panic!("{e}"));
    let mut sim = t.build().unwrap_or_else(|e| panic!("{e}"));
    let rec = Requests::default();
    sim.set_observer(Box::new(rec.clone()));
    sim.run().unwrap_or_else(|e| panic!("{e}"));
    let log = rec.0.lock().unwrap().clone();
    (
        log,
        stat_u64(&t, &sim, "gen", "reads"),
        stat_u64(&t, &sim, "gen", "writes"),
    )
}

#[test]
fn mem_traffic_random_pattern_is_splitmix64_and_reproducible_by_seed() {
    let p = "pattern: random, requests: 400, bytes: 64, region_bytes: 1073741824, seed: 9";
    let (a, _, _) = traffic(p);
    let (b, _, _) = traffic(p);
    assert_eq!(a, b, "the same seed gives the same run");
    let (c, _, _) = traffic(&p.replace("seed: 9", "seed: 10"));
    let addrs = |v: &[(u64, u64, bool)]| v.iter().map(|r| r.1).collect::<Vec<_>>();
    assert_ne!(addrs(&a), addrs(&c), "another seed, other addresses");
    // SplitMix64 seed 9, multiply-shift onto the 2^24 lines of the region.
    let mut r = SplitMix64(9);
    let expect: Vec<u64> = (0..400)
        .map(|_| (((u128::from(r.next_u64()) * (1u128 << 24)) >> 64) as u64) * 64)
        .collect();
    assert_eq!(addrs(&a), expect);
}

#[test]
fn mem_traffic_read_write_mix_matches_its_ratio() {
    // Interleaved 2:1: request k writes exactly when k mod 3 = 2.
    let (log, reads, writes) = traffic("pattern: sequential, requests: 300, mix: [2, 1]");
    assert_eq!((reads, writes), (200, 100));
    for (k, r) in log.iter().enumerate() {
        assert_eq!(r.2, k % 3 == 2, "request {k}");
        assert_eq!(r.1, 64 * k as u64);
    }
    // Drawn at random 3:1 over 4,000 requests: a quarter writes, within 3 standard
    // deviations (sqrt(4000 * 0.25 * 0.75) = 27).
    let (log, reads, writes) =
        traffic("pattern: random, requests: 4000, mix: [3, 1], mix_order: random, seed: 5");
    assert_eq!(reads + writes, 4000);
    assert_eq!(writes, log.iter().filter(|r| r.2).count() as u64);
    assert!(
        (writes as i64 - 1000).abs() <= 82,
        "{writes} writes of 4000"
    );
    // `write: true` is all writes; giving it with a mix is refused.
    let (_, reads, writes) = traffic("requests: 50, write: true");
    assert_eq!((reads, writes), (0, 50));
    let bad = load_text(
        "clock_mhz: 1000
modules:
  gen: {kind: mem_traffic, write: true, mix: [1, 1]}
  dram: {kind: dram}
links:
  - {from: gen.req, to: dram.in0}
  - {from: dram.out0, to: gen.resp, latency_cycles: 1}
",
        &[],
    )
    .unwrap()
    .build();
    assert!(bad.is_err_and(|e| e.to_string().contains("not both")));
}

#[test]
fn mem_traffic_fixed_rate_offers_request_k_at_k_intervals() {
    // 20 ns apart, 3.2 GB/s: far below the channel's peak, so none is held back.
    let (log, _, _) = traffic("pattern: sequential, requests: 100, interval_ps: 20000");
    let times: Vec<u64> = log.iter().map(|r| r.0).collect();
    assert_eq!(times, (0..100).map(|k| k * 20_000).collect::<Vec<u64>>());
}

#[test]
fn replay_passes_the_mapping_to_the_dram() {
    // Until the DRAM has a `mapping` parameter, --mapping is an unknown-parameter error.
    let models = stasim(&["models", "dram"]);
    let text = String::from_utf8_lossy(&models.stdout);
    if !text.contains("mapping") {
        skipped("the `dram` kind has no `mapping` parameter yet");
        return;
    }
    let dir = tmp_dir("replay", "mapping");
    let trace = write_case(&dir, "idle-read", 1);
    let v = replay_json(&trace, &[]);
    let default = v["dram"]["mapping"]
        .as_str()
        .expect("the mapping is reported")
        .to_owned();
    let again = replay_json(&trace, &["--mapping", &default]);
    assert_eq!(again["dram"]["mapping"], default.as_str());
}

#[test]
fn mem_traffic_reports_the_replay_statistics() {
    // One read through the replay's wiring (request link 1 cycle, response link 0): the
    // same arrival-to-last-beat latency and bandwidth as `stasim dram` (36 tCK).
    let yaml = "clock_mhz: 1000
modules:
  gen: {kind: mem_traffic, requests: 1, clock_mhz: 1200.480192}
  dram: {kind: dram}
links:
  - {from: gen.req, to: dram.in0, depth: 1, latency_cycles: 1}
  - {from: dram.out0, to: gen.resp, depth: 4}
";
    let t = load_text(yaml, &[]).unwrap_or_else(|e| panic!("{e}"));
    let mut sim = t.build().unwrap_or_else(|e| panic!("{e}"));
    sim.run().unwrap_or_else(|e| panic!("{e}"));
    let lat_ps = 36 * 833;
    for stat in [
        "read_latency_p50_ps",
        "read_latency_p99_ps",
        "read_latency_max_ps",
    ] {
        assert_eq!(stat_u64(&t, &sim, "gen", stat), lat_ps, "{stat}");
    }
    assert_eq!(stat_u64(&t, &sim, "gen", "first_arrival_ps"), 833);
    assert_eq!(stat_u64(&t, &sim, "gen", "last_data_ps"), 833 + lat_ps);
    assert_eq!(
        (
            stat_u64(&t, &sim, "gen", "reads"),
            stat_u64(&t, &sim, "gen", "writes")
        ),
        (1, 0)
    );
    let stats = sim.actor_stats(stasim::kernel::ActorId(0));
    let bw = stats
        .iter()
        .find_map(|(n, v)| match v {
            stasim::kernel::StatValue::F64(x) if *n == "bandwidth_gbps" => Some(*x),
            _ => None,
        })
        .unwrap();
    assert!((bw - 64.0 / 29.988).abs() < 1e-9, "{bw}");
}
