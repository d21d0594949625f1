//! Sweeps: points run as child processes give the same reports as runs by hand; shards
//! merge into the whole; bad sweeps are refused before any run; timeouts and Ctrl-C keep
//! every finished result.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::tmp_dir;
use stasim::sweep::results::Results;

const BIN: &str = env!("CARGO_BIN_EXE_stasim");

/// A point that runs far past a 5 s limit (Llama-3.1-8B, a 2048-token prefill: over 40 s on
/// this machine; BERT-large at 512 tokens, once minutes, now takes about 4 s).
pub const LONG_POINT: &str = "{model: llama-3.1-8b, seq: 2048}";

/// A point that runs for a fraction of a second, even in a debug build.
pub const QUICK_POINT: &str = "{model: minilm-l6, layers: 1, seq: 16}";

pub const SMALL: &str = "name: small
topology: sta-small
workload: {model: minilm-l6, layers: 1, seq: 16}
axes:
  pattern: [dense, 2:4, 1:8]
  pe_array.rows: [4, 8]
points:
  - {pattern: 2:8, dram.channels: 2}
jobs: 2
";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

pub fn sweep(args: &[&str]) -> std::process::Output {
    Command::new(BIN).arg("sweep").args(args).output().unwrap()
}

#[test]
fn point_reports_are_byte_identical_to_runs_by_hand() {
    let dir = tmp_dir("sweep", "identical");
    let file = write(&dir, "s.yaml", SMALL);
    let out = dir.join("out");
    let o = sweep(&[file.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = Results::read(&out).unwrap();
    assert_eq!(r.points.len(), 7);
    assert!(r.points.iter().all(|p| p.status == "ok"));
    assert_eq!(
        r.points[6].params,
        vec![
            ("pattern".into(), "2:8".into()),
            ("dram.channels".into(), "2".into())
        ]
    );
    // Point 3 is (2:4, rows 8): the same run by hand.
    let by_hand = Command::new(BIN)
        .args([
            "run",
            "sta-small",
            "--json",
            "--model",
            "minilm-l6",
            "--layers",
            "1",
        ])
        .args([
            "--seq",
            "16",
            "--pattern",
            "2:4",
            "--set",
            "pe_array.rows=8",
        ])
        .output()
        .unwrap();
    let file3 = std::fs::read(out.join("points/0003.json")).unwrap();
    assert_eq!(file3, by_hand.stdout);
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 8);
    assert!(csv.starts_with("index,pattern,pe_array.rows,dram.channels,status,latency_us"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn shards_are_disjoint_and_merge_into_the_whole_sweep() {
    let dir = tmp_dir("sweep", "shards");
    let file = write(&dir, "s.yaml", SMALL);
    let f = file.to_str().unwrap();
    let whole = dir.join("whole");
    assert!(
        sweep(&[f, "--out", whole.to_str().unwrap()])
            .status
            .success()
    );
    let mut parts = Vec::new();
    for i in 0..3 {
        let d = dir.join(format!("part{i}"));
        let o = sweep(&[
            f,
            "--shard",
            &format!("{i}/3"),
            "--out",
            d.to_str().unwrap(),
        ]);
        assert!(o.status.success());
        let r = Results::read(&d).unwrap();
        assert!(r.points.iter().all(|p| p.index % 3 == i));
        parts.push(d);
    }
    let merged = dir.join("merged");
    let mut args: Vec<&str> = vec!["merge"];
    args.extend(parts.iter().map(|p| p.to_str().unwrap()));
    args.extend(["--out", merged.to_str().unwrap()]);
    assert!(sweep(&args).status.success());
    let (a, b) = (
        Results::read(&whole).unwrap(),
        Results::read(&merged).unwrap(),
    );
    assert_eq!(a.points.len(), b.points.len());
    for (x, y) in a.points.iter().zip(&b.points) {
        assert_eq!(
            (x.index, &x.params, &x.report),
            (y.index, &y.params, &y.report)
        );
    }
    // The same shard twice is refused.
    let twice = sweep(&[
        "merge",
        parts[0].to_str().unwrap(),
        parts[0].to_str().unwrap(),
        "--out",
        dir.join("x").to_str().unwrap(),
    ]);
    assert_eq!(twice.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn gnu_parallel_runs_the_shards() {
    if Command::new("parallel").arg("--version").output().is_err() {
        crate::support::skipped("GNU parallel is not installed (CI installs it)");
        return;
    }
    let dir = tmp_dir("sweep", "parallel");
    let file = write(&dir, "s.yaml", SMALL);
    let o = Command::new("parallel")
        .current_dir(&dir)
        .args(["--will-cite", "--halt", "now,fail=1"])
        .arg(format!(
            "{BIN} sweep {} --shard {{}}/2 --out r{{}}",
            file.display()
        ))
        .args([":::", "0", "1"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = sweep(&[
        "merge",
        dir.join("r0").to_str().unwrap(),
        dir.join("r1").to_str().unwrap(),
        "--out",
        dir.join("all").to_str().unwrap(),
    ]);
    assert!(m.status.success());
    let r = Results::read(&dir.join("all")).unwrap();
    assert_eq!(
        r.points.iter().map(|p| p.index).collect::<Vec<_>>(),
        (0..7).collect::<Vec<_>>()
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_sweeps_are_refused_before_any_run() {
    let dir = tmp_dir("sweep", "bad");
    let cases = [
        (
            "unknown.yaml",
            "topology: sta-small\naxes:\n  pe_aray.rows: [4, 8]\n",
            "unknown module `pe_aray`",
            "3:18",
        ),
        (
            "empty.yaml",
            "topology: sta-small\naxes:\n  pattern: []\n",
            "axis `pattern` has no values",
            "3:3",
        ),
        // An unsupported M in every point: no point can run.
        (
            "badm.yaml",
            "topology: sta-small\nworkload: {model: minilm-l6, layers: 1, seq: 8}\naxes:\n  pattern: [2:3, 1:3]\n",
            "no point of the sweep can run (2 of 2 are infeasible); the first, point 0: module `controller` (kind `controller`): pattern 2:3",
            "4:13",
        ),
        // A value no point could take (wrong type, out of range) beside a good one.
        (
            "type.yaml",
            "topology: sta-small\nworkload: {model: minilm-l6, layers: 1, seq: 8}\naxes:\n  pe_array.rows: [4, x]\n",
            "point 1: bad value for `pe_array.rows`: expected an integer",
            "4:22",
        ),
        (
            "range.yaml",
            "topology: sta-small\nworkload: {model: minilm-l6, layers: 1, seq: 8}\naxes:\n  pe_array.rows: [4, 0]\n",
            "point 1: bad value for `pe_array.rows`: 0 is out of range",
            "4:22",
        ),
        // A base setting that makes every point infeasible.
        (
            "base.yaml",
            "topology: sta-small\nworkload: {model: minilm-l6, layers: 1, seq: 8}\nset: [pe_array.cols=64, weight_buffer.bank_bytes=64]\naxes:\n  pattern: [2:4, 1:4]\n",
            "no point of the sweep can run (2 of 2 are infeasible)",
            "",
        ),
        // A workload key on a topology without a controller.
        (
            "plain.yaml",
            "topology: pipeline\naxes:\n  seq: [8, 16]\n",
            "topology `pipeline` has no controller, so it runs no workload: `seq` does not apply",
            "3:9",
        ),
    ];
    for (name, text, msg, loc) in cases {
        let f = write(&dir, name, text);
        let out = dir.join(format!("out-{name}"));
        let o = sweep(&[f.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains(msg) && err.contains(&format!("{name}:{loc}")),
            "{name}: {err}"
        );
        assert!(err.contains("hint:"), "{name}: {err}");
        assert!(!out.exists(), "{name}: a run started");
    }
    let f = write(&dir, "ok.yaml", SMALL);
    for shard in ["3/2", "x", "1/0", "-1/2"] {
        let o = sweep(&[f.to_str().unwrap(), &format!("--shard={shard}")]);
        assert_eq!(o.status.code(), Some(2), "--shard {shard}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("bad --shard"));
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_timed_out_point_is_recorded_and_the_sweep_goes_on() {
    let dir = tmp_dir("sweep", "timeout");
    // Point 0 runs far past the limit (`LONG_POINT`), point 1 for a fraction of a second
    // even in a debug build: a 5 s limit stops the first only.
    let f = write(
        &dir,
        "t.yaml",
        &format!("topology: sta\npoints:\n  - {LONG_POINT}\n  - {QUICK_POINT}\ntimeout_s: 5\n"),
    );
    let out = dir.join("out");
    let o = sweep(&[
        f.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--jobs",
        "1",
    ]);
    assert!(o.status.success());
    let r = Results::read(&out).unwrap();
    assert_eq!(r.points[0].status, "timeout");
    assert!(
        r.points[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("timeout_s")
    );
    assert_eq!(r.points[1].status, "ok");
    let _ = std::fs::remove_dir_all(dir);
}

/// `stasim run ARGS` by hand: (exit code, stdout, stderr).
fn run_by_hand(args: &[String]) -> (Option<i32>, Vec<u8>, String) {
    let o = Command::new(BIN).args(args).output().unwrap();
    (
        o.status.code(),
        o.stdout,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn an_infeasible_point_is_recorded_as_failed_and_the_others_run() {
    let dir = tmp_dir("sweep", "infeasible");
    // Rows 48 and 64 need a 48 (64) x 3072 activation tile for ffn2, more than a 256 KiB
    // bank holds, on today's planner; M = 3 is not among the PE array's supported M; 16
    // DRAM rows hold 4 MiB, less than one layer's tensors.
    let text = "name: inf
topology: sta
workload: {model: bert-base, layers: 1, seq: 64}
axes:
  pe_array.rows: [8, 16, 48, 64]
points:
  - {pattern: '1:3'}
  - {dram.rows: 16}
jobs: 2
";
    let f = write(&dir, "s.yaml", text);
    let out = dir.join("out");
    let o = sweep(&[f.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(0), "{stdout}{stderr}");
    let r = Results::read(&out).unwrap();
    assert_eq!(r.points.len(), 6);
    let base = [
        "run",
        "sta",
        "--json",
        "--model",
        "bert-base",
        "--layers",
        "1",
    ];
    let settings: [&[&str]; 6] = [
        &["--set", "pe_array.rows=8"],
        &["--set", "pe_array.rows=16"],
        &["--set", "pe_array.rows=48"],
        &["--set", "pe_array.rows=64"],
        &["--pattern", "1:3"],
        &["--set", "dram.rows=16"],
    ];
    let mut infeasible = 0;
    for (p, extra) in r.points.iter().zip(settings) {
        let args: Vec<String> = base
            .iter()
            .chain(["--seq", "64"].iter())
            .chain(extra)
            .map(|a| a.to_string())
            .collect();
        let (code, by_hand, why) = run_by_hand(&args);
        match code {
            // A feasible point: its report is the run's by hand.
            Some(0) => {
                assert_eq!(p.status, "ok", "{extra:?}: {:?}", p.error);
                let file = out.join(format!("points/{:04}.json", p.index));
                assert_eq!(std::fs::read(file).unwrap(), by_hand, "{extra:?}");
            }
            // An infeasible one: failed with exit code 2 and the error the run gives, placed
            // in the sweep file; it wrote no point file.
            Some(2) => {
                infeasible += 1;
                assert_eq!(p.status, "failed", "{extra:?}");
                assert_eq!(p.exit_code, Some(2), "{extra:?}");
                assert!(p.report.is_none());
                let error = p.error.as_deref().unwrap();
                assert_eq!(error.lines().next(), why.lines().next(), "{extra:?}");
                assert!(
                    error.contains("s.yaml:") && error.contains("hint:"),
                    "{error}"
                );
                assert!(!out.join(format!("points/{:04}.json", p.index)).exists());
            }
            other => panic!("{extra:?}: by hand exits {other:?}: {why}"),
        }
    }
    // Whatever the planner can tile, M = 3 and a 4 MiB DRAM cannot run; rows 8 can.
    assert_eq!(r.points[0].status, "ok");
    for i in [4, 5] {
        assert_eq!(r.points[i].exit_code, Some(2), "point {i}");
    }
    let e4 = r.points[4].error.as_deref().unwrap();
    assert!(
        e4.contains("needs M = 3") && e4.contains("s.yaml:7:15"),
        "{e4}"
    );
    let e5 = r.points[5].error.as_deref().unwrap();
    assert!(
        e5.contains("bytes of DRAM") && e5.contains("s.yaml:8:17"),
        "{e5}"
    );
    assert!(
        stdout.contains(&format!(
            "6 points run ({} ok, {infeasible} failed, {infeasible} of them infeasible designs)",
            6 - infeasible
        )) && stdout.contains(&format!("{infeasible} of 6 points left out of the charts")),
        "{stdout}"
    );
    // The CSV row of each failed point carries the first line of its error.
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let row4 = csv.lines().find(|l| l.starts_with("4,")).unwrap();
    assert!(
        row4.contains(",failed,") && row4.contains("needs M = 3"),
        "{row4}"
    );
    // A dry run says which points are infeasible.
    let o = sweep(&[f.to_str().unwrap(), "--dry-run"]);
    let listed = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        listed
            .matches("infeasible, will be recorded as failed")
            .count(),
        infeasible,
        "{listed}"
    );
    // Charts drawn again from the folder skip the failed points too.
    let o = sweep(&["plot", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("left out of the charts"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A traffic generator driving a DRAM: no controller, no workload.
const TRAFFIC: &str = "name: traffic
clock_mhz: 200
modules:
  gen: {kind: mem_traffic, pattern: random, requests: 500, bytes: 64, outstanding: 16}
  dram: {kind: dram}
links:
  - {from: gen.req, to: dram.in0, depth: 64}
  - {from: dram.out0, to: gen.resp, depth: 64, latency_cycles: 1}
";

#[test]
fn a_sweep_of_a_topology_without_a_controller_runs_its_modules_and_records_the_end() {
    let dir = tmp_dir("sweep", "plain");
    let topo = write(&dir, "traffic.yaml", TRAFFIC);
    let text = format!(
        "topology: {}\naxes:\n  dram.channels: [1, 2]\n  gen.outstanding: [1, 16]\njobs: 2\n",
        topo.display()
    );
    let f = write(&dir, "t.yaml", &text);
    let out = dir.join("out");
    let o = sweep(&[f.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("no charts: the points ran no workload"),
        "{stdout}"
    );
    let r = Results::read(&out).unwrap();
    assert_eq!(r.points.len(), 4);
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    for (p, row) in r.points.iter().zip(csv.lines().skip(1)) {
        assert_eq!(p.status, "ok", "{:?}", p.error);
        // The record is the plain report of the same run by hand.
        let mut args: Vec<String> = vec!["run".into(), topo.display().to_string(), "--json".into()];
        for (k, v) in &p.params {
            args.extend(["--set".into(), format!("{k}={v}")]);
        }
        let (code, by_hand, why) = run_by_hand(&args);
        assert_eq!(code, Some(0), "{why}");
        let file = out.join(format!("points/{:04}.json", p.index));
        assert_eq!(std::fs::read(file).unwrap(), by_hand);
        let report = p.report.as_ref().unwrap();
        assert!(report.get("workload").is_none() && report["end_ps"].as_u64().unwrap() > 0);
        // 500 reads of 64 bytes each, whatever the DRAM.
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(cells[column("dram.bytes_read")], "32000", "{row}");
        assert_eq!(cells[column("gen.completed")], "500", "{row}");
        assert_eq!(
            cells[column("latency_us")].parse::<f64>().unwrap(),
            report["total_time_us"].as_f64().unwrap()
        );
        assert_eq!(
            cells[column("events")],
            report["events"].as_u64().unwrap().to_string()
        );
    }
    // One request in flight at a time is slower than sixteen, on either DRAM.
    let end = |i: usize| {
        r.points[i].report.as_ref().unwrap()["end_ps"]
            .as_u64()
            .unwrap()
    };
    assert!(end(0) > end(1) && end(2) > end(3));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn ctrl_c_keeps_every_finished_point_in_loadable_results() {
    let dir = tmp_dir("sweep", "ctrlc");
    // One quick run, then seven two-layer BERT-base runs, one at a time: the first finishes
    // long before the others.
    let f = write(
        &dir,
        "c.yaml",
        "name: c\ntopology: sta\nworkload: {model: bert-base, layers: 2}\npoints:\n  - {pattern: dense, model: minilm-l6, layers: 1, seq: 16}\n  - {pattern: 2:4}\n  - {pattern: 2:8}\n  - {pattern: 1:8}\n  - {pattern: 1:4}\n  - {pattern: 4:8}\n  - {pattern: 3:8}\n  - {pattern: 1:16}\njobs: 1\n",
    );
    let out = dir.join("out");
    let mut child = Command::new(BIN)
        .args(["sweep", f.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the first finished point, then interrupt.
    let first = out.join("points/0000.json");
    let t0 = std::time::Instant::now();
    while !first.exists() && t0.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(first.exists());
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    let r = Results::read(&out).unwrap();
    assert!(r.interrupted);
    assert!(
        !r.points.is_empty() && r.points.len() < 8,
        "{} points",
        r.points.len()
    );
    assert!(
        r.points
            .iter()
            .all(|p| p.status == "ok" && p.report.is_some())
    );

    // The same command again is refused: it would mix two runs in one folder.
    let kept: Vec<(usize, Vec<u8>)> = r
        .points
        .iter()
        .map(|p| {
            let file = out.join(format!("points/{:04}.json", p.index));
            (p.index, std::fs::read(file).unwrap())
        })
        .collect();
    let again = Command::new(BIN)
        .args(["sweep", f.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--resume"));
    // A changed sweep cannot resume into this folder.
    let changed = write(
        &dir,
        "changed.yaml",
        "name: c\ntopology: sta\nworkload: {model: bert-base}\naxes:\n  pattern: [dense, 2:4]\n",
    );
    let o = Command::new(BIN)
        .args([
            "sweep",
            changed.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .arg("--resume")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("holds another sweep"));
    // --resume keeps the finished points, byte for byte, and runs only the rest.
    let o = Command::new(BIN)
        .args(["sweep", f.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .args(["--resume", "--no-plots", "--jobs", "2"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains(&format!(
            "{} points run ({} ok, 0 failed)",
            8 - kept.len(),
            8 - kept.len()
        )) && stdout.contains(&format!("{} kept from the earlier run", kept.len())),
        "{stdout}"
    );
    let done = Results::read(&out).unwrap();
    assert!(!done.interrupted);
    assert_eq!(done.points.len(), 8);
    assert!(done.points.iter().all(|p| p.status == "ok"));
    for (i, bytes) in &kept {
        let file = out.join(format!("points/{i:04}.json"));
        assert_eq!(
            &std::fs::read(file).unwrap(),
            bytes,
            "point {i} kept as it was"
        );
    }
    // Every point's report is the run's own (same as a run by hand, tested above): the
    // pattern in each report is the point's.
    for p in &done.points {
        let pattern = &p.params[0].1;
        assert_eq!(
            p.report.as_ref().unwrap()["workload"]["patterns"]["qkv"],
            pattern.as_str(),
            "point {}",
            p.index
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Polls `done` every 20 ms for up to `limit_s` seconds; whether it became true.
fn eventually(limit_s: u64, mut done: impl FnMut() -> bool) -> bool {
    let t0 = std::time::Instant::now();
    while t0.elapsed().as_secs() < limit_s {
        if done() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    done()
}

/// `/proc/PID/stat` fields after the command name: state, parent, ...
fn proc_stat(pid: i32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// Running (not ended, not a zombie) processes whose parent is `pid` (Linux `/proc`).
fn children_of(pid: u32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| proc_stat(p).is_some_and(|f| f[0] != "Z" && f[1] == pid.to_string()))
        .collect()
}

/// Whether `pid` is a running process (not ended, not a zombie).
fn alive(pid: i32) -> bool {
    proc_stat(pid).is_some_and(|f| f[0] != "Z")
}

/// A sweep of `points` long runs, all at once, started in the background into `out`;
/// returns once its children run, with their ids.
fn start_long_sweep(dir: &Path, out: &Path, points: usize) -> (std::process::Child, Vec<i32>) {
    let list: String = (0..points)
        .map(|i| format!("  - {{model: bert-large, seq: 512, layers: {}}}\n", 24 - i))
        .collect();
    let f = write(
        dir,
        "long.yaml",
        &format!("name: long\ntopology: sta\npoints:\n{list}jobs: {points}\n"),
    );
    let mut child = Command::new(BIN)
        .args(["sweep", f.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let id = child.id();
    let mut kids = Vec::new();
    let started = eventually(120, || {
        kids = children_of(id);
        kids.len() == points
    });
    if !started {
        let _ = child.kill();
        panic!("the sweep did not start its {points} points: {kids:?}");
    }
    (child, kids)
}

/// Kills what a test left running (only if it failed).
fn kill_all(pids: &[i32]) {
    for &p in pids {
        if alive(p) {
            unsafe {
                libc::kill(p, libc::SIGKILL);
            }
        }
    }
}

/// Whether this system has Linux's `/proc` (the tests that watch a sweep's children need
/// it); else says the test is skipped.
fn have_proc() -> bool {
    let ok = Path::new("/proc/self/stat").exists();
    if !ok {
        eprintln!("skipped: no /proc to watch a sweep's children (Linux only)");
    }
    ok
}

#[test]
fn a_killed_sweep_takes_its_running_points_with_it() {
    if !have_proc() {
        return;
    }
    let dir = tmp_dir("sweep", "sigkill");
    let out = dir.join("out");
    let (mut sweep, kids) = start_long_sweep(&dir, &out, 2);
    unsafe {
        libc::kill(sweep.id() as i32, libc::SIGKILL);
    }
    let _ = sweep.wait();
    // Each run would go on for minutes on its own.
    let gone = eventually(10, || kids.iter().all(|&p| !alive(p)));
    kill_all(&kids);
    assert!(
        gone,
        "points still running after their sweep was killed: {kids:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sigterm_stops_a_sweep_like_ctrl_c() {
    if !have_proc() {
        return;
    }
    let dir = tmp_dir("sweep", "sigterm");
    let f = write(
        &dir,
        "t.yaml",
        &format!("name: t\ntopology: sta\npoints:\n  - {QUICK_POINT}\n  - {LONG_POINT}\njobs: 1\n"),
    );
    let out = dir.join("out");
    let mut child = Command::new(BIN)
        .args(["sweep", f.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let id = child.id();
    // Point 0 done and point 1 running.
    let mut kids = Vec::new();
    let ready = eventually(120, || {
        kids = children_of(id);
        out.join("points/0000.json").exists() && !kids.is_empty()
    });
    assert!(ready, "point 1 never started");
    unsafe {
        libc::kill(id as i32, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    let gone = eventually(10, || kids.iter().all(|&p| !alive(p)));
    kill_all(&kids);
    assert_eq!(status.code(), Some(1), "{status}");
    assert!(gone, "point 1 still running: {kids:?}");
    let r = Results::read(&out).unwrap();
    assert!(r.interrupted);
    assert_eq!(r.points.len(), 1);
    assert_eq!((r.points[0].index, r.points[0].status.as_str()), (0, "ok"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_results_folder_a_running_sweep_holds_is_refused_to_others() {
    if !have_proc() {
        return;
    }
    let dir = tmp_dir("sweep", "locked");
    let out = dir.join("out");
    // A finished small sweep, to merge from.
    let small = write(&dir, "s.yaml", SMALL);
    let done = dir.join("done");
    let o = sweep(&[
        small.to_str().unwrap(),
        "--out",
        done.to_str().unwrap(),
        "--no-plots",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let (mut running, kids) = start_long_sweep(&dir, &out, 1);
    let held = format!("`{}` is in use: another sweep holds it", out.display());
    let results_before = std::fs::read(out.join("sweep.json")).unwrap();
    let long = dir.join("long.yaml");
    let attempts = [
        // Another sweep into the folder, and the same one (as a second shard, or resumed).
        vec![small.to_str().unwrap(), "--out", out.to_str().unwrap()],
        vec![
            long.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--resume",
        ],
        // A merge into it.
        vec![
            "merge",
            done.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    ];
    let mut outcomes = Vec::new();
    for args in &attempts {
        let o = sweep(args);
        outcomes.push((
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ));
    }
    // Reading it (a merge from it, its charts) waits for the sweep to end.
    let merged = dir.join("merged");
    let from = sweep(&[
        "merge",
        out.to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ]);
    let plot = sweep(&["plot", out.to_str().unwrap()]);
    unsafe {
        libc::kill(running.id() as i32, libc::SIGKILL);
    }
    let _ = running.wait();
    kill_all(&kids);
    for (args, (code, err)) in attempts.iter().zip(&outcomes) {
        assert_eq!(*code, Some(2), "{args:?}: {err}");
        assert!(err.contains(&held), "{args:?}: {err}");
    }
    for o in [&from, &plot] {
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains("is being written: another sweep holds it"),
            "{err}"
        );
    }
    assert!(!merged.join("results.json").exists());
    assert_eq!(
        std::fs::read(out.join("sweep.json")).unwrap(),
        results_before
    );
    // The lock ends with the process that held it, even killed.
    let lock = std::fs::File::open(out.join("sweep.lock")).unwrap();
    assert!(
        lock.try_lock().is_ok(),
        "the killed sweep's lock outlived it"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// SMALL with other base settings: the same name, axes and number of points.
fn small_but(from: &str, to: &str) -> String {
    assert!(SMALL.contains(from));
    SMALL.replace(from, to)
}

#[test]
fn a_folder_of_a_sweep_with_other_settings_is_never_adopted() {
    let dir = tmp_dir("sweep", "adopt");
    let a = write(&dir, "a.yaml", SMALL);
    // Same name, axes and number of points; another sequence length, topology or --set.
    let others = [
        write(&dir, "seq.yaml", &small_but("seq: 16", "seq: 32")),
        write(
            &dir,
            "topo.yaml",
            &small_but("topology: sta-small", "topology: sta"),
        ),
        write(
            &dir,
            "set.yaml",
            &small_but("jobs: 2", "set: [dram.channels=2]\njobs: 2"),
        ),
    ];
    let whole = dir.join("whole");
    let w = whole.to_str().unwrap();
    let o = sweep(&[a.to_str().unwrap(), "--out", w, "--no-plots"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let before = std::fs::read(whole.join("results.json")).unwrap();
    for b in &others {
        let b = b.to_str().unwrap();
        for extra in [
            &["--resume"][..],
            &["--shard", "1/2"],
            &["--shard", "1/2", "--resume"],
        ] {
            let mut args = vec![b, "--out", w, "--no-plots"];
            args.extend(extra);
            let o = sweep(&args);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
            assert!(
                err.contains("holds another sweep") && err.contains("`small` (7 points"),
                "{args:?}: {err}"
            );
        }
    }
    assert_eq!(std::fs::read(whole.join("results.json")).unwrap(), before);
    // A shard of another sweep into a folder holding only a shard of the first.
    let part = dir.join("part");
    let p = part.to_str().unwrap();
    assert!(
        sweep(&[
            a.to_str().unwrap(),
            "--shard",
            "0/2",
            "--out",
            p,
            "--no-plots"
        ])
        .status
        .success()
    );
    let o = sweep(&[
        others[0].to_str().unwrap(),
        "--shard",
        "1/2",
        "--out",
        p,
        "--no-plots",
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_second_shard_of_the_same_sweep_adds_its_points_to_the_folder() {
    let dir = tmp_dir("sweep", "second");
    let f = write(&dir, "s.yaml", SMALL);
    let f = f.to_str().unwrap();
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    for shard in ["0/2", "1/2"] {
        let r = sweep(&[f, "--shard", shard, "--out", o, "--no-plots"]);
        assert_eq!(
            r.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&r.stderr)
        );
    }
    let r = Results::read(&out).unwrap();
    assert_eq!(
        r.points.iter().map(|p| p.index).collect::<Vec<_>>(),
        (0..7).collect::<Vec<_>>()
    );
    assert_eq!(r.shard, "merged");
    assert!(r.points.iter().all(|p| p.status == "ok"));
    // Each report is its own point's: its pattern and PE rows (point 6 is 2:8 on 8 rows).
    for p in &r.points {
        let pattern = &p.params[0].1;
        assert_eq!(
            p.report.as_ref().unwrap()["workload"]["patterns"]["qkv"],
            pattern.as_str(),
            "point {}",
            p.index
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn merge_refuses_shards_of_different_sweeps_and_its_own_inputs_as_output() {
    let dir = tmp_dir("sweep", "merge");
    let a = write(&dir, "a.yaml", SMALL);
    let b = write(&dir, "b.yaml", &small_but("seq: 16", "seq: 32"));
    let (r0, r1, b1) = (dir.join("r0"), dir.join("r1"), dir.join("b1"));
    for (file, shard, out) in [(&a, "0/2", &r0), (&a, "1/2", &r1), (&b, "1/2", &b1)] {
        let o = sweep(&[
            file.to_str().unwrap(),
            "--shard",
            shard,
            "--out",
            out.to_str().unwrap(),
            "--no-plots",
        ]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let r0_results = std::fs::read(r0.join("results.json")).unwrap();
    let merge = |inputs: &[&Path], out: &Path| {
        let mut args = vec!["merge".to_string()];
        args.extend(inputs.iter().map(|p| p.display().to_string()));
        args.extend(["--out".into(), out.display().to_string()]);
        Command::new(BIN).arg("sweep").args(&args).output().unwrap()
    };
    // Same name and size, other settings.
    let mixed = dir.join("mixed");
    let o = merge(&[&r0, &b1], &mixed);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("hold different sweeps") && err.contains(&b1.display().to_string()),
        "{err}"
    );
    assert!(!mixed.join("results.json").exists());
    // The output is an input, spelled another way or through a symlink.
    let link = dir.join("link");
    std::os::unix::fs::symlink(&r0, &link).unwrap();
    for out in [dir.join(".").join("r0"), link.clone()] {
        let o = merge(&[&r0, &r1], &out);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("is one of its inputs"), "{err}");
    }
    // A shard's own folder, not an input, is not an output either.
    let o = merge(&[&r1], &r0);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("sweep's own results folder"), "{err}");
    assert_eq!(std::fs::read(r0.join("results.json")).unwrap(), r0_results);
    // The right merge, then again into the same output, works.
    let all = dir.join("all");
    for _ in 0..2 {
        let o = merge(&[&r0, &r1], &all);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert_eq!(Results::read(&all).unwrap().points.len(), 7);
    let o = merge(&[&b1], &all);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn out_of_range_sweep_values_are_refused_at_load() {
    let dir = tmp_dir("sweep", "range");
    let base = "topology: sta-small\nworkload: {model: minilm-l6, layers: 1, seq: 16}\npoints:\n  - {pattern: dense}\n";
    let cases: Vec<(String, &str, &str)> = vec![
        ("timeout_s: .inf".into(), "timeout_s", "out of range"),
        ("timeout_s: 1e300".into(), "timeout_s", "out of range"),
        ("timeout_s: .nan".into(), "timeout_s", "out of range"),
        ("timeout_s: -.inf".into(), "timeout_s", "out of range"),
        ("timeout_s: 0".into(), "timeout_s", "out of range"),
        ("timeout_s: -1".into(), "timeout_s", "out of range"),
        ("timeout_s: 10000001".into(), "timeout_s", "out of range"),
        ("jobs: 0".into(), "jobs", "out of range"),
        ("jobs: -1".into(), "jobs", "out of range"),
        ("jobs: 4097".into(), "jobs", "out of range"),
        ("jobs: 2305843009213693952".into(), "jobs", "out of range"), // tokio's limit + 1
        ("jobs: 9223372036854775807".into(), "jobs", "out of range"),
        ("name: ''".into(), "name", "not a folder name"),
        ("name: .".into(), "name", "not a folder name"),
        ("name: '..'".into(), "name", "not a folder name"),
        ("name: a/b".into(), "name", "not a path"),
        ("name: ../../etc".into(), "name", "not a path"),
        ("name: 'a\\b'".into(), "name", "not a path"),
        ("name: \"a\\tb\"".into(), "name", "not a path"),
        (
            format!("name: {}", "n".repeat(256)),
            "name",
            "more than 255",
        ),
        // 10^6 points: refused before one is made.
        (
            format!(
                "axes:\n{}",
                (0..6)
                    .map(|i| format!("  pe_array.rows{i}: [1,2,3,4,5,6,7,8,9,10]\n"))
                    .collect::<String>()
            ),
            "axes",
            "more than 100000",
        ),
    ];
    for (i, (extra, key, msg)) in cases.iter().enumerate() {
        let text = format!("{base}{extra}\n");
        let name = format!("case{i}.yaml");
        let f = write(&dir, &name, &text);
        let out = dir.join(format!("out{i}"));
        let o = sweep(&[f.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra}: {err}");
        // Where: the line of the value (the base has 4 lines), or of the first axis.
        let line = if *key == "axes" { 6 } else { 5 };
        assert!(
            err.contains(msg)
                && err.contains(&format!("{name}:{line}:"))
                && err.contains(&format!("key: {key}"))
                && err.contains("hint:"),
            "{extra}: {err}"
        );
        assert!(!out.exists(), "{extra}: a run started");
    }
    // A file without end, one too long, one that is not text.
    let long = write(
        &dir,
        "long.yaml",
        &format!("{base}#{}\n", "x".repeat(16 << 20)),
    );
    let binary = dir.join("binary.yaml");
    std::fs::write(&binary, b"topology: sta\xff\n").unwrap();
    for (file, msg) in [
        (Path::new("/dev/zero"), "longer than 16 MiB"),
        (long.as_path(), "longer than 16 MiB"),
        (binary.as_path(), "not UTF-8"),
    ] {
        if !file.exists() {
            eprintln!("skipped: no {}", file.display());
            continue;
        }
        let o = sweep(&[file.to_str().unwrap(), "--dry-run"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains(msg) && err.contains(&file.display().to_string()),
            "{err}"
        );
    }
    // A name taken from the file name is checked too.
    let f = write(&dir, "..yaml", base);
    let o = sweep(&[f.to_str().unwrap(), "--dry-run"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("named after its file"), "{err}");
    // --jobs is held to the same range.
    let f = write(&dir, "ok.yaml", base);
    for jobs in ["0", "4097", "2305843009213693952", "18446744073709551615"] {
        let o = sweep(&[
            f.to_str().unwrap(),
            "--jobs",
            jobs,
            "--out",
            dir.join("j").to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "--jobs {jobs}: {err}");
        assert!(
            err.contains("bad --jobs") && err.contains("out of range"),
            "--jobs {jobs}: {err}"
        );
    }
    assert!(!dir.join("j").exists());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_sweep_whose_points_all_fail_exits_1() {
    let dir = tmp_dir("sweep", "allfail");
    // Two runs of minutes each, with a limit of a tenth of a second.
    let f = write(
        &dir,
        "f.yaml",
        &format!(
            "name: f\ntopology: sta\npoints:\n  - {LONG_POINT}\n  - {LONG_POINT}\njobs: 2\ntimeout_s: 0.1\n"
        ),
    );
    let out = dir.join("out");
    let o = sweep(&[f.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("every point failed (2 of 2)"), "{err}");
    // The failures are recorded all the same.
    let r = Results::read(&out).unwrap();
    assert_eq!(r.points.len(), 2);
    assert!(r.points.iter().all(|p| p.status == "timeout"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_sweep_prints_to_a_full_stdout_with_an_error_not_a_panic() {
    let dir = tmp_dir("sweep", "full");
    let f = write(&dir, "s.yaml", SMALL);
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        eprintln!("skipped: no /dev/full");
        return;
    };
    let o = Command::new(BIN)
        .args(["sweep", f.to_str().unwrap(), "--dry-run"])
        .stdout(full)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_file_as_the_results_folder_is_bad_input_and_an_unwritable_folder_a_failed_output() {
    let dir = tmp_dir("sweep", "outfile");
    let f = write(&dir, "s.yaml", SMALL);
    let file = write(&dir, "notes.txt", "mine\n");
    for args in [
        vec![f.to_str().unwrap(), "--out", file.to_str().unwrap()],
        vec![
            "merge",
            dir.to_str().unwrap(),
            "--out",
            file.to_str().unwrap(),
        ],
    ] {
        let o = sweep(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!("`{}`", file.display())),
            "{args:?}: {err}"
        );
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine\n");
    // A folder that cannot be made is a failed output (exit 1), named.
    let nowhere = "/proc/self/stasim-results";
    let o = sweep(&[f.to_str().unwrap(), "--out", nowhere]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(nowhere), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_sweep_hash_covers_what_the_points_run_and_nothing_else() {
    let hash = |text: &str| {
        stasim::sweep::from_text(Path::new("h.yaml"), text)
            .unwrap_or_else(|e| panic!("{e}"))
            .hash
    };
    let base = "topology: sta-small\nworkload: {model: minilm-l6, layers: 1, seq: 16}\nset: [dram.channels=2, pe_array.rows=8]\npoints:\n  - {pattern: dense}\n  - {pattern: 2:4}\n";
    let h = hash(base);
    assert_eq!(h.len(), 32);
    assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
    // Not what does not change a result: name, jobs, timeout_s, the order of settings.
    let same = [
        format!("name: other\njobs: 3\ntimeout_s: 9\n{base}"),
        base.replace(
            "set: [dram.channels=2, pe_array.rows=8]",
            "set: [pe_array.rows=8, dram.channels=2]",
        ),
        base.replace(
            "{model: minilm-l6, layers: 1, seq: 16}",
            "{seq: 16, model: minilm-l6, layers: 1}",
        ),
        // A point setting a value the base already has.
        base.replace("{pattern: dense}", "{pattern: dense, seq: 16}"),
    ];
    for text in &same {
        assert_eq!(hash(text), h, "{text}");
    }
    // Everything that does: a base value, a point's value, the order of the points, the
    // topology.
    let differ = [
        base.replace("seq: 16", "seq: 32"),
        base.replace("dram.channels=2", "dram.channels=4"),
        base.replace("{pattern: 2:4}", "{pattern: 1:4}"),
        base.replace(
            "{pattern: dense}\n  - {pattern: 2:4}",
            "{pattern: 2:4}\n  - {pattern: dense}",
        ),
        base.replace("topology: sta-small", "topology: sta"),
    ];
    for text in &differ {
        assert_ne!(hash(text), h, "{text}");
    }
}
