//! Sweeps: points run as child processes give the same reports as runs by hand; shards
//! merge into the whole; bad sweeps are refused before any run; timeouts and Ctrl-C keep
//! every finished result.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::tmp_dir;
use stasim::sweep::results::Results;

const BIN: &str = env!("CARGO_BIN_EXE_stasim");

const SMALL: &str = "name: small
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

fn sweep(args: &[&str]) -> std::process::Output {
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
        (
            "badm.yaml",
            "topology: sta-small\nworkload: {model: minilm-l6, layers: 1, seq: 8}\naxes:\n  pattern: [2:4, 1:3]\n",
            "needs M = 3",
            "4:18",
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
    let f = write(
        &dir,
        "t.yaml",
        "topology: sta\nworkload: {model: bert-large, seq: 512}\npoints:\n  - {layers: 24}\n  - {layers: 1, seq: 8, model: minilm-l6}\ntimeout_s: 2\n",
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

#[test]
fn ctrl_c_keeps_every_finished_point_in_loadable_results() {
    let dir = tmp_dir("sweep", "ctrlc");
    // Eight BERT-base runs of about a second each, one at a time (one layer in a debug build,
    // about as long).
    let layers = if cfg!(debug_assertions) { 1 } else { 12 };
    let f = write(
        &dir,
        "c.yaml",
        &format!(
            "topology: sta\nworkload: {{model: bert-base, layers: {layers}}}\naxes:\n  pattern: [dense, 2:4, 2:8, 1:8, 1:4, 4:8, 3:8, 1:16]\njobs: 1\n"
        ),
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
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot resume"));
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
