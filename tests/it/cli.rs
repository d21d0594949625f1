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
