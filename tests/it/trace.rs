//! Traces and charts: the VCD read back with a real waveform reader (wellen, the library
//! of the Surfer viewer) and checked against the report; Perfetto JSON parsed; determinism;
//! bad trace options.

use std::path::Path;
use std::process::Command;

use crate::support::tmp_dir;
use stasim::report::Report;
use stasim::run::{WorkloadArgs, resolve_workload, simulate};
use stasim::topology::{self, Source};
use stasim::trace::TraceOptions;

pub(crate) fn traced_run(dir: &Path, window: Option<(u64, u64)>) -> Report {
    let t = topology::load(&Source::read("sta-small").unwrap(), &[]).unwrap();
    let w = resolve_workload(&t, &WorkloadArgs::default()).unwrap();
    let opts = TraceOptions {
        vcd: Some(dir.join("run.vcd")),
        perfetto: Some(dir.join("run.json")),
        window: window.map(|(a, b)| {
            (
                stasim::kernel::SimTime::from_ps(a),
                stasim::kernel::SimTime::from_ps(b),
            )
        }),
        modules: None,
        vcd_strings: true,
    };
    simulate(&t, &w, None, Some(&opts), None).unwrap().report
}

/// `(time ps, value)` changes of `scope.name` in a VCD, read with wellen (also used by
/// tests/it/accounting.rs).
pub(crate) fn changes(path: &Path, scope: &str, name: &str) -> Vec<(u64, String)> {
    let mut wave = wellen::simple::read(path).expect("wellen reads the VCD");
    let var = wave
        .hierarchy()
        .lookup_var(&["stasim", scope], name)
        .unwrap_or_else(|| panic!("no signal {scope}.{name}"));
    let sig = wave.hierarchy()[var].signal_ref();
    wave.load_signals(&[sig]);
    let times = wave.time_table().to_vec();
    let s = wave.get_signal(sig).unwrap();
    s.iter_changes()
        .map(|(i, v)| {
            let text = match v {
                wellen::SignalValueRef::Real(x) => format!("{x}"),
                wellen::SignalValueRef::String(s) => s.to_owned(),
                other => other.to_bit_string().unwrap_or_default(),
            };
            (times[i as usize], text)
        })
        .collect()
}

fn value_at(ch: &[(u64, String)], t: u64) -> Option<&str> {
    ch.iter()
        .take_while(|(ct, _)| *ct <= t)
        .last()
        .map(|(_, v)| v.as_str())
}

fn bits(v: &str) -> u64 {
    u64::from_str_radix(v, 2).unwrap()
}

#[test]
fn vcd_signals_agree_with_the_report() {
    let dir = tmp_dir("trace", "agree");
    let r = traced_run(&dir, None);
    let vcd = dir.join("run.vcd");
    let period = 5_000; // 200 MHz
    // In the middle of each matmul's compute span the PE array works on that op.
    let op = changes(&vcd, "pe_array", "op");
    let busy = changes(&vcd, "pe_array", "busy");
    for (i, o) in r.layers[0].ops.iter().enumerate() {
        if o.macs == 0 || o.name == "scores" || o.name == "pv" {
            continue; // scores and P.V interleave by head
        }
        let mid = (o.compute_start_cycle + o.compute_end_cycle) / 2 * period;
        assert_eq!(
            value_at(&op, mid).map(bits),
            Some(i as u64),
            "op at {mid} ps ({})",
            o.name
        );
        assert_eq!(
            value_at(&busy, mid),
            Some("1"),
            "busy at {mid} ps ({})",
            o.name
        );
        // With `vcd_strings`, the op's name too (a string signal, as Surfer shows it).
        let names = changes(&vcd, "pe_array", "op_name");
        assert_eq!(
            value_at(&names, mid),
            Some(format!("L0.{}", o.name).as_str())
        );
    }
    // Operand links hold at most their depth (1) of offered parts.
    let occ = changes(&vcd, "links", "weight_buffer_operand__pe_array_weights");
    assert!(!occ.is_empty());
    assert!(occ.iter().all(|(_, v)| bits(v) <= 1));
    // DRAM: a bounded number of bursts in flight on its one channel; bandwidth <= peak
    // (the VCD prints it to 3 decimals).
    let inflight = changes(&vcd, "dram", "inflight");
    assert!(inflight.iter().any(|(_, v)| bits(v) > 0));
    assert!(inflight.iter().all(|(_, v)| bits(v) <= 8));
    // Each buffer holds at most its two banks (sta-small: 2 x 32 KiB); the weight buffer
    // prefetches beyond one bank at some point.
    for buffer in ["weight_buffer", "act_buffer"] {
        let used = changes(&vcd, buffer, "bytes_used");
        assert!(used.iter().all(|(_, v)| bits(v) <= 2 * 32768), "{buffer}");
        assert!(
            used.iter().any(|(_, v)| bits(v) > 0),
            "{buffer} never loaded"
        );
    }
    let used = changes(&vcd, "weight_buffer", "bytes_used");
    assert!(
        used.iter().any(|(_, v)| bits(v) > 32768),
        "the weight buffer never prefetched beyond one bank"
    );
    // Per-pass utilisation of the PE array: a real in (0, 1].
    let util = changes(&vcd, "pe_array", "utilization");
    assert!(!util.is_empty());
    assert!(util.iter().all(|(_, v)| {
        let x: f64 = v.parse().unwrap();
        x > 0.0 && x <= 1.0
    }));
    let gbps = changes(&vcd, "dram", "gbps");
    assert!(
        gbps.iter()
            .all(|(_, v)| v.parse::<f64>().unwrap() <= r.dram.peak_gbps + 0.001)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn perfetto_json_has_op_spans_and_a_bandwidth_counter() {
    let dir = tmp_dir("trace", "perfetto");
    let _ = traced_run(&dir, None);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap())
            .expect("valid JSON");
    let events = v.as_array().unwrap();
    let pe_tid = events
        .iter()
        .find(|e| e["ph"] == "M" && e["args"]["name"] == "pe_array")
        .map(|e| e["tid"].clone())
        .expect("a pe_array track");
    assert!(
        events
            .iter()
            .any(|e| e["ph"] == "X" && e["tid"] == pe_tid && e["name"] == "L0.qkv")
    );
    assert!(
        events
            .iter()
            .any(|e| e["ph"] == "C" && e["name"] == "DRAM bandwidth")
    );
    // A span per tile (PE pass) on its own track.
    let tiles_tid = events
        .iter()
        .find(|e| e["ph"] == "M" && e["args"]["name"] == "pe_array tiles")
        .map(|e| e["tid"].clone())
        .expect("a pe_array tiles track");
    let tiles = events
        .iter()
        .filter(|e| e["ph"] == "X" && e["tid"] == tiles_tid)
        .count();
    assert!(tiles > 1000, "{tiles} tile spans");
    assert!(
        events
            .iter()
            .filter(|e| e["ph"] == "X")
            .all(|e| e["dur"].as_f64().unwrap() > 0.0)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_trace_window_keeps_only_its_changes() {
    let dir = tmp_dir("trace", "window");
    let (a, b) = (100_000_000u64, 200_000_000u64); // 100 us .. 200 us
    let _ = traced_run(&dir, Some((a, b)));
    let busy = changes(&dir.join("run.vcd"), "pe_array", "busy");
    assert!(!busy.is_empty());
    assert!(
        busy.iter().all(|(t, _)| *t >= a && *t <= b),
        "{:?}",
        &busy[..busy.len().min(3)]
    );
    // The value in force at the window start is dumped there.
    assert_eq!(busy[0].0, a);
    let _ = std::fs::remove_dir_all(dir);
}

fn stasim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stasim"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn traces_and_charts_are_byte_identical_across_runs() {
    let (d1, d2) = (tmp_dir("trace", "det1"), tmp_dir("trace", "det2"));
    for d in [&d1, &d2] {
        let o = stasim(&[
            "run",
            "sta-small",
            "--vcd",
            d.join("t.vcd").to_str().unwrap(),
            "--perfetto",
            d.join("t.json").to_str().unwrap(),
            "--plots",
            d.join("plots").to_str().unwrap(),
            "--out",
            d.to_str().unwrap(),
        ]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    for f in [
        "t.vcd",
        "t.json",
        "report.json",
        "plots/latency_by_layer.png",
        "plots/roofline.svg",
        "plots/gantt_layer0.png",
    ] {
        let a = std::fs::read(d1.join(f)).unwrap();
        let b = std::fs::read(d2.join(f)).unwrap();
        assert!(!a.is_empty(), "{f} is empty");
        assert!(a == b, "{f} differs between two runs");
    }
    let _ = std::fs::remove_dir_all(d1);
    let _ = std::fs::remove_dir_all(d2);
}

#[test]
fn bad_trace_options_exit_2_and_leave_no_file() {
    let d = tmp_dir("trace", "bad");
    let vcd = d.join("x.vcd");
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", "sta-small", "--vcd", "/dev/null/x.vcd"],
            "`/dev/null` is not a folder",
        ),
        (
            &[
                "run",
                "sta-small",
                "--vcd",
                vcd.to_str().unwrap(),
                "--trace-window",
                "500..100",
            ],
            "is after END",
        ),
        (
            &[
                "run",
                "sta-small",
                "--vcd",
                vcd.to_str().unwrap(),
                "--trace-modules",
                "pe_aray",
            ],
            "did you mean `pe_array`?",
        ),
    ];
    for (args, want) in cases {
        let o = stasim(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let left: Vec<_> = std::fs::read_dir(&d).unwrap().collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn dram_bank_states_change_at_the_closed_form_command_times() {
    // Reads to one bank in rows 0, 1, 2, ... (row stride 256 KiB): ACT k at k * tRC.
    let yaml = "clock_mhz: 200
modules:
  gen: {kind: mem_traffic, pattern: stride, stride_bytes: 262144, requests: 6, bytes: 64, outstanding: 8}
  dram: {kind: dram, clock_mhz: 1200}
links:
  - {from: gen.req, to: dram.in0, depth: 8}
  - {from: dram.out0, to: gen.resp, depth: 8, latency_cycles: 1}
";
    let dir = tmp_dir("trace", "banks");
    let src = Source {
        path: "banks.yaml".into(),
        text: yaml.into(),
    };
    let t = topology::load(&src, &[]).unwrap();
    let w = resolve_workload(&t, &WorkloadArgs::default()).unwrap();
    let opts = TraceOptions {
        vcd: Some(dir.join("b.vcd")),
        ..TraceOptions::default()
    };
    simulate(&t, &w, None, Some(&opts), None).unwrap();
    let bank = changes(&dir.join("b.vcd"), "dram", "bank0");
    let acts: Vec<(u64, i64)> = bank
        .iter()
        .map(|(t, v)| (*t, u64::from_str_radix(v, 2).unwrap() as i64))
        .filter(|(_, row)| *row >= 0)
        .collect();
    let trc_ps = 55 * 833;
    let expect: Vec<(u64, i64)> = (0..6).map(|k| (k as u64 * trc_ps, k)).collect();
    assert_eq!(acts, expect);
    // Between two ACTs the bank is precharged (-1) at ACT + tRAS (39 tCK).
    let pres: Vec<u64> = bank
        .iter()
        .filter(|(_, v)| u64::from_str_radix(v, 2).unwrap() as i64 == -1)
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(
        pres,
        (0..5).map(|k| k * trc_ps + 39 * 833).collect::<Vec<_>>()
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn tracing_does_not_change_the_results() {
    let dir = tmp_dir("trace", "same");
    let traced = traced_run(&dir, None);
    let t = topology::load(&Source::read("sta-small").unwrap(), &[]).unwrap();
    let w = resolve_workload(&t, &WorkloadArgs::default()).unwrap();
    let plain = simulate(&t, &w, None, None, None).unwrap().report;
    assert_eq!(
        serde_json::to_string(&traced).unwrap(),
        serde_json::to_string(&plain).unwrap()
    );
    let _ = std::fs::remove_dir_all(dir);
}
