//! The `stasim` binary: outputs and exit codes (0 ok, 1 simulation failed, 2 bad input).

use std::process::{Command, Output};

fn stasim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stasim"))
        .args(args)
        .output()
        .expect("the stasim binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bench_pipeline_prints_the_result_line_with_exact_times() {
    let o = stasim(&["bench", "pipeline", "--transactions", "1000"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let line = out
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .expect("a RESULT line");
    assert!(
        line.starts_with("RESULT framework=stasim T=1000 sim_end_ns=5010 source_last_put_ns=4885 received=1000 ok=1 wall_s="),
        "{line}"
    );
    assert!(line.contains(" stage_events_per_s="), "{line}");
}

#[test]
fn check_summarises_a_valid_topology() {
    let o = stasim(&["check", "topologies/pipeline.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("topology `pipeline` is valid"), "{out}");
    assert!(out.contains("modules: 7"), "{out}");
    assert!(out.contains("links: 6"), "{out}");
    assert!(out.contains("clock domains: 1"), "{out}");
}

#[test]
fn check_rejects_bad_input_with_exit_code_2() {
    let dir = std::env::temp_dir().join(format!("stasim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "clock_mhz: 100\nmodules:\n  a: {kind: sorce}\n").unwrap();
    let o = stasim(&["check", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("error: unknown module kind `sorce` for `a`"),
        "{err}"
    );
    assert!(err.contains("bad.yaml:3:13"), "{err}");
    assert!(err.contains("did you mean `source`?"), "{err}");
    let o = stasim(&["check", "no/such/file.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    let o = stasim(&["check", "pipeline", "--set", "S0.nope=1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--set S0.nope=1"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_time_limit_exits_with_code_1_and_names_the_blocked_modules() {
    let o = stasim(&["bench", "pipeline", "-t", "1000", "--max-time", "2us"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("time limit reached"), "{err}");
    assert!(err.contains("S4: holding token #"), "{err}");
    assert!(err.contains("full links:"), "{err}");
    let o = stasim(&["bench", "pipeline", "-t", "10", "--max-time", "soon"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn graph_prints_dot() {
    let o = stasim(&["graph", "pipeline"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.starts_with("digraph \"pipeline\" {"), "{out}");
    assert!(out.contains("\"S4\" -> \"sink\""), "{out}");
}

#[test]
fn models_lists_kinds_ports_and_parameters_with_units() {
    let o = stasim(&["models"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    for want in [
        "source:",
        "stage:",
        "sink:",
        "service_cycles",
        "cycles",
        "default 1",
    ] {
        assert!(out.contains(want), "missing `{want}` in\n{out}");
    }
    let o = stasim(&["models", "stag"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("did you mean `stage`?"));
}

#[test]
fn bench_output_is_deterministic_apart_from_wall_time() {
    let strip = |o: Output| {
        stdout(&o)
            .lines()
            .filter(|l| l.starts_with("RESULT"))
            .map(|l| l.split(" wall_s=").next().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let a = strip(stasim(&["bench", "pipeline", "-t", "5000"]));
    let b = strip(stasim(&["bench", "pipeline", "-t", "5000"]));
    assert_eq!(a, b);
    assert_eq!(a.len(), 1);
}

#[test]
fn run_reports_json_and_writes_outputs() {
    let dir = std::env::temp_dir().join(format!("stasim-run-{}", std::process::id()));
    let o = stasim(&["run", "sta-small", "--json", "--out", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    for key in [
        "total_cycles",
        "total_time_us",
        "clock_mhz",
        "macs",
        "dense_macs",
        "pe_utilization",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    for key in ["bytes_read", "bytes_written", "avg_gbps"] {
        assert!(v["dram"].get(key).is_some(), "missing dram.{key}");
    }
    let op = &v["layers"][0]["ops"][0];
    for key in [
        "name",
        "kind",
        "pattern",
        "macs",
        "start_cycle",
        "end_cycle",
        "span_cycles",
        "pe_cycles",
        "critical_cycles",
        "stall_dram_cycles",
    ] {
        assert!(op.get(key).is_some(), "missing layers[].ops[].{key}");
    }
    assert_eq!(op["kind"], "sparse_dense");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(file, v);
    let csv = std::fs::read_to_string(dir.join("ops.csv")).unwrap();
    assert!(csv.starts_with("layer,op,kind,pattern,macs"), "{csv}");
    assert_eq!(
        csv.lines().count(),
        1 + 10,
        "one row per op of the one layer"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn run_rejects_bad_workloads_and_hardware_with_exit_code_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["run", "sta-small", "--pattern", "2:32"], "needs M = 32"),
        (
            &["run", "sta-small", "--pattern", "5:4"],
            "N must be between 1 and M",
        ),
        (
            &["run", "sta-small", "--pattern", "1:1"],
            "M must be at least 2",
        ),
        (
            &["run", "sta-small", "--seq", "0"],
            "`seq` = 0 must be at least 1",
        ),
        (
            &["run", "sta-small", "--model", "bert-tiny"],
            "unknown model `bert-tiny`",
        ),
        (
            &[
                "run",
                "sta-small",
                "--set",
                "pe_array.cols=64",
                "--set",
                "weight_buffer.bank_bytes=64",
            ],
            // One 4 x 64 tile of 2:4 weights: 2 x 64 x (16 + 2) / 8 = 288 bytes.
            "set `weight_buffer.bank_bytes` to at least 288",
        ),
    ];
    for (args, want) in cases {
        let o = stasim(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
    // A missing link: drop the softmax's output from the reference topology.
    let dir = std::env::temp_dir().join(format!("stasim-miss-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string("topologies/sta.yaml").unwrap();
    let cut: String = text
        .lines()
        .filter(|l| !l.contains("from: softmax.out"))
        .map(|l| format!("{l}\n"))
        .collect();
    let path = dir.join("missing.yaml");
    std::fs::write(&path, cut).unwrap();
    let o = stasim(&["run", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("port `softmax.out` (output, `tile`) is not connected"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(dir);
}
