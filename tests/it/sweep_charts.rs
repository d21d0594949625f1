//! Sweep charts: drawn after a sweep and by `stasim sweep plot`, from the points' reports,
//! holding the other axes at the base design; the numbers they print are recomputed here
//! from `results.json`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::tmp_dir;
use serde_json::Value;
use stasim::sweep::results::Results;

const BIN: &str = env!("CARGO_BIN_EXE_stasim");

/// Runs `stasim sweep ARGS`, returns (exit code, stdout, stderr).
fn stasim_sweep(args: &[&str]) -> (Option<i32>, String, String) {
    let o = Command::new(BIN).arg("sweep").args(args).output().unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Writes `text` as a sweep file in `dir` and runs it into `dir/out` with `extra` flags.
fn run_sweep(dir: &Path, text: &str, extra: &[&str]) -> (PathBuf, String) {
    let file = dir.join("s.yaml");
    std::fs::write(&file, text).unwrap();
    let out = dir.join("out");
    let mut args = vec![file.to_str().unwrap(), "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = stasim_sweep(&args);
    assert_eq!(code, Some(0), "{stderr}");
    (out, stdout)
}

/// The report of the point with these settings.
fn report<'a>(r: &'a Results, settings: &[(&str, &str)]) -> &'a Value {
    let p = r
        .points
        .iter()
        .find(|p| {
            settings
                .iter()
                .all(|(k, v)| p.params.iter().any(|(pk, pv)| pk == k && pv == v))
        })
        .unwrap_or_else(|| panic!("no point {settings:?}"));
    p.report.as_ref().unwrap()
}

fn u(v: &Value, path: &[&str]) -> f64 {
    path.iter()
        .fold(v, |v, k| &v[k])
        .as_f64()
        .unwrap_or_else(|| panic!("no {path:?}"))
}

const GRID: &str = "name: grid
topology: sta-small
workload: {model: minilm-l6, layers: 1, seq: 16}
axes:
  pattern: [dense, 2:4, 1:4]
  pe_array.rows: [2, 4]
  dram.channels: [1, 2]
jobs: 2
";

#[test]
fn a_sweep_draws_its_charts_holding_the_other_axes_at_the_base_design() {
    let dir = tmp_dir("charts", "grid");
    let (out, stdout) = run_sweep(&dir, GRID, &[]);
    assert!(stdout.contains("charts: 4 (PNG and SVG)"), "{stdout}");
    let r = Results::read(&out).unwrap();
    // sta-small's own values: pattern 2:4 (its workload), 4 PE rows, 1 DRAM channel.
    let reference: Vec<(String, String)> = [
        ("pattern", "2:4"),
        ("pe_array.rows", "4"),
        ("dram.channels", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(r.reference, reference);
    let plots = out.join("plots");
    for name in [
        "speedup_vs_pattern",
        "energy_vs_pattern",
        "latency_vs_pe",
        "latency_vs_dram",
    ] {
        let png = std::fs::read(plots.join(format!("{name}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}");
        // IHDR: width and height, big-endian, at bytes 16..24.
        assert_eq!(
            &png[16..24],
            &[0, 0, 3, 232, 0, 0, 2, 48],
            "{name} is 1000 x 560"
        );
        let svg = std::fs::read_to_string(plots.join(format!("{name}.svg"))).unwrap();
        assert!(svg.starts_with("<svg"), "{name}");
    }
    // Drawn under temporary names and renamed: none is left behind.
    let names: Vec<String> = std::fs::read_dir(&plots)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 8, "{names:?}");
    assert!(names.iter().all(|n| !n.contains(".partial")), "{names:?}");
    let svg = |name: &str| std::fs::read_to_string(plots.join(format!("{name}.svg"))).unwrap();

    // Speedup: held at 4 rows and 1 channel; whole model = dense cycles / sparse cycles.
    let speedup = svg("speedup_vs_pattern");
    assert!(speedup.contains("pe_array.rows=4, dram.channels=1"));
    let held = [("pe_array.rows", "4"), ("dram.channels", "1")];
    let cycles = |p: &str| {
        let mut s = held.to_vec();
        s.push(("pattern", p));
        u(report(&r, &s), &["total_cycles"])
    };
    for p in ["2:4", "1:4"] {
        let label = format!("{:.2}×", cycles("dense") / cycles(p));
        assert!(speedup.contains(&label), "speedup label {label} for {p}");
    }
    // Energy: each pattern's total, in mJ.
    let energy = svg("energy_vs_pattern");
    for p in ["dense", "2:4", "1:4"] {
        let mut s = held.to_vec();
        s.push(("pattern", p));
        let mj = u(report(&r, &s), &["energy", "total_uj"]) / 1000.0;
        assert!(
            energy.contains(&format!("{mj:.1} mJ")),
            "energy label for {p}"
        );
    }
    // Latency charts: one line per setting of the other resource axis, pattern held.
    let pe = svg("latency_vs_pe");
    assert!(pe.contains("pattern=2:4"));
    assert!(pe.contains("(dram.channels=1)") && pe.contains("(dram.channels=2)"));
    let dram = svg("latency_vs_dram");
    assert!(dram.contains("(pe_array.rows=2)") && dram.contains("(pe_array.rows=4)"));

    // The charts' premise: the PE time attributed to matmul ops (busy + stalls) adds up
    // to the run, so the per-class speedups account for the whole.
    for p in &r.points {
        let rep = p.report.as_ref().unwrap();
        let mut attributed = 0.0;
        for op in rep["layers"].as_array().unwrap().iter().flat_map(|l| {
            l["ops"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|o| o["kind"] == "sparse_dense" || o["kind"] == "dense_dense")
        }) {
            attributed += [
                "busy_cycles",
                "stall_dram_cycles",
                "stall_buffer_cycles",
                "stall_softmax_cycles",
                "stall_downstream_cycles",
            ]
            .iter()
            .map(|k| u(op, &[k]))
            .sum::<f64>();
        }
        let total = u(rep, &["total_cycles"]);
        assert!(
            attributed <= total && attributed >= 0.95 * total,
            "point {}: attributed {attributed} of {total}",
            p.index
        );
    }

    // `sweep plot` redraws the same charts elsewhere, byte for byte.
    let again = dir.join("again");
    let (code, stdout, stderr) = stasim_sweep(&[
        "plot",
        out.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("charts: 4"));
    for f in ["speedup_vs_pattern.svg", "latency_vs_dram.png"] {
        assert_eq!(
            std::fs::read(plots.join(f)).unwrap(),
            std::fs::read(again.join(f)).unwrap(),
            "{f}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn charts_the_axes_cannot_support_are_named_with_the_reason() {
    let dir = tmp_dir("charts", "partial");
    let text = "topology: sta-small
workload: {model: minilm-l6, layers: 1, seq: 16}
axes:
  pattern: [2:4, 1:4]
jobs: 2
";
    let (out, stdout) = run_sweep(&dir, text, &["--no-plots"]);
    assert!(!stdout.contains("charts:"));
    assert!(!out.join("plots").exists());
    let (code, stdout, stderr) = stasim_sweep(&["plot", out.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("charts: 1 (PNG and SVG)"), "{stdout}");
    assert!(stdout.contains("no speedup_vs_pattern: the sweep has no dense point"));
    assert!(stdout.contains("no latency_vs_pe: the sweep does not vary a `pe_array.*` key"));
    assert!(stdout.contains("no latency_vs_dram: the sweep does not vary a `dram.*` key"));
    assert!(out.join("plots/energy_vs_pattern.png").exists());

    // A sweep of sequence lengths has no chart: none drawn, no folder made.
    let dir2 = tmp_dir("charts", "none");
    let text = "topology: sta-small
workload: {model: minilm-l6, layers: 1}
axes:
  seq: [8, 16]
";
    let (out2, stdout) = run_sweep(&dir2, text, &[]);
    assert!(stdout.contains("charts: none"), "{stdout}");
    assert_eq!(stdout.matches("\n  no ").count(), 6, "{stdout}");
    assert!(!out2.join("plots").exists());
    let _ = std::fs::remove_dir_all(dir2);

    // Not a results folder: exit 2, naming the file it looked for.
    let (code, _, stderr) = stasim_sweep(&["plot", dir.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("results.json"), "{stderr}");
    let (code, _, stderr) = stasim_sweep(&["plot"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("one result folder"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_sweep_of_models_and_patterns_draws_each_models_speedup() {
    let dir = tmp_dir("charts", "models");
    let text = "topology: sta-small
workload: {layers: 1, seq: 16}
axes:
  model: [minilm-l6, deit-small]
  pattern: [dense, 2:4, 1:8]
jobs: 2
";
    let (out, stdout) = run_sweep(&dir, text, &[]);
    assert!(stdout.contains("charts: 3 (PNG and SVG)"), "{stdout}");
    let r = Results::read(&out).unwrap();
    let svg = std::fs::read_to_string(out.join("plots/speedup_by_model.svg")).unwrap();
    for m in ["minilm-l6", "deit-small"] {
        assert!(svg.contains(&format!("{m}, s=16")), "label of {m}");
        let cycles = |p: &str| {
            u(
                report(&r, &[("model", m), ("pattern", p)]),
                &["total_cycles"],
            )
        };
        for p in ["2:4", "1:8"] {
            let label = format!("{:.2}×", cycles("dense") / cycles(p));
            assert!(svg.contains(&label), "{m} {p}: {label}");
        }
    }
    assert!(svg.contains("1:8 (ideal 8×)"));
    let _ = std::fs::remove_dir_all(dir);
}

/// A decode-step sweep of SmolLM2 (one layer) at batch 1: `pattern` and the listed `axes`.
fn decode_sweep(axes: &str) -> String {
    format!(
        "topology: sta
workload: {{model: smollm2-135m, layers: 1, batch: 1, context: 64}}
axes:
  pattern: [dense, 2:4]
{axes}jobs: 2
"
    )
}

#[test]
fn a_decode_sweep_draws_the_speedup_against_context_times_batch() {
    let dir = tmp_dir("charts", "context");
    let (out, stdout) = run_sweep(&dir, &decode_sweep("  context: [64, 1024]\n"), &[]);
    assert!(stdout.contains("speedup_vs_context.csv"), "{stdout}");
    let plots = out.join("plots");
    let png = std::fs::read(plots.join("speedup_vs_context.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&png[16..24], &[0, 0, 3, 232, 0, 0, 2, 48], "1000 x 560");
    let svg = std::fs::read_to_string(plots.join("speedup_vs_context.svg")).unwrap();
    assert!(svg.starts_with("<svg"));
    // The caption names the model and the batch every point ran at.
    assert!(svg.contains("smollm2-135m") && svg.contains("batch 1"));
    assert!(svg.contains("context × batch"));

    // Each row's speedup is the dense step's latency over the pattern's, both read from
    // the points' reports here; x is context x batch from the reports.
    let r = Results::read(&out).unwrap();
    let csv = std::fs::read_to_string(plots.join("speedup_vs_context.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("pattern,context,batch,dense_latency_us,latency_us,speedup")
    );
    let mut speedups = Vec::new();
    for (line, context) in lines.by_ref().zip(["64", "1024"]) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f[..3], ["2:4", context, "1"], "{line}");
        let at = |p: &str| report(&r, &[("pattern", p), ("context", context)]);
        for p in ["dense", "2:4"] {
            assert_eq!(
                u(at(p), &["workload", "phase", "context"]),
                context.parse::<f64>().unwrap()
            );
            assert_eq!(u(at(p), &["workload", "batch"]), 1.0);
        }
        let dense = u(at("dense"), &["total_time_us"]);
        let sparse = u(at("2:4"), &["total_time_us"]);
        let num = |i: usize| f[i].parse::<f64>().unwrap();
        assert_eq!((num(3), num(4)), (dense, sparse), "{line}");
        let speedup = dense / sparse;
        assert!(
            (num(5) - speedup).abs() <= 1e-12 * speedup,
            "{line}: {speedup}"
        );
        speedups.push(speedup);
    }
    assert_eq!(lines.next(), None, "one row a sparse point");
    // N:M shrinks the weights, not the KV cache: the gain falls as the cache grows.
    assert!(speedups[0] > 1.0 && speedups[1] > 1.0, "{speedups:?}");
    assert!(speedups[1] < speedups[0], "{speedups:?}");

    // Neither context nor batch varied: no chart, no CSV, and the reason.
    let dir2 = tmp_dir("charts", "context-held");
    let (out2, stdout) = run_sweep(&dir2, &decode_sweep(""), &[]);
    assert!(
        stdout.contains("no speedup_vs_context: the sweep does not vary `context` or `batch`"),
        "{stdout}"
    );
    assert!(out2.join("plots/speedup_vs_pattern.png").exists());
    assert!(!out2.join("plots/speedup_vs_context.png").exists());
    assert!(!out2.join("plots/speedup_vs_context.csv").exists());
    let _ = std::fs::remove_dir_all(dir2);

    // Prefills varying the batch have no context to chart against: named, not drawn.
    let dir3 = tmp_dir("charts", "context-prefill");
    let text = "topology: sta-small
workload: {model: minilm-l6, layers: 1, seq: 16}
axes:
  pattern: [dense, 2:4]
  batch: [1, 2]
jobs: 2
";
    let (out3, stdout) = run_sweep(&dir3, text, &[]);
    assert!(
        stdout.contains("no speedup_vs_context: its points are prefills"),
        "{stdout}"
    );
    assert!(!out3.join("plots/speedup_vs_context.csv").exists());
    let _ = std::fs::remove_dir_all(dir3);
    let _ = std::fs::remove_dir_all(dir);
}
