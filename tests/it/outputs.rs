//! Outputs never destroy or corrupt: every writer goes through `stasim::io` (devices and
//! FIFOs written in place, symlinks followed, unique temporaries, folders refused before the
//! run, temporaries removed on SIGINT / SIGTERM), stdout failures and output failures exit 1
//! naming the file, and default outputs stay out of the checkout (in `out/`).

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::support::tmp_dir;

/// A quick run: one layer of MiniLM on the small design.
const QUICK: [&str; 8] = [
    "run",
    "sta-small",
    "--model",
    "minilm-l6",
    "--layers",
    "1",
    "--seq",
    "32",
];

fn stasim_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stasim"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the stasim binary runs")
}

fn quick(dir: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&str> = QUICK.to_vec();
    args.extend_from_slice(extra);
    stasim_in(dir, &args)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every name in `dir` (recursively, relative), sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if p.is_dir() && !p.is_symlink() {
                walk(root, &p, out);
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v.sort();
    v
}

fn no_temporaries(dir: &Path) {
    let names = tree(dir);
    assert!(
        names
            .iter()
            .all(|n| !n.contains(".partial") && !n.contains(".body")),
        "temporary files left in {}: {names:?}",
        dir.display()
    );
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

#[test]
fn dev_null_stays_a_device_when_traced_to() {
    let d = tmp_dir("outputs", "devnull");
    let o = quick(&d, &["--vcd", "/dev/null", "--perfetto", "/dev/null"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let kind = std::fs::symlink_metadata("/dev/null").unwrap().file_type();
    assert!(
        kind.is_char_device(),
        "/dev/null is still a character device"
    );
    assert!(
        tree(Path::new("/dev"))
            .iter()
            .all(|n| !n.contains(".partial"))
    );
}

#[test]
fn a_fifo_receives_the_trace_and_stays_a_fifo() {
    let d = tmp_dir("outputs", "fifo");
    let fifo = d.join("trace.json");
    mkfifo(&fifo);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let o = quick(&d, &["--perfetto", fifo.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let bytes = reader.join().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("valid JSON through the FIFO");
    assert!(v.as_array().is_some_and(|a| a.len() > 10));
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert_eq!(tree(&d), ["trace.json"]);
}

#[test]
fn a_symlinked_output_replaces_its_target_and_keeps_the_link() {
    let d = tmp_dir("outputs", "symlink");
    let elsewhere = d.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("real.json"), "old").unwrap();
    std::fs::create_dir_all(d.join("res")).unwrap();
    std::os::unix::fs::symlink("../elsewhere/real.json", d.join("res/report.json")).unwrap();
    let o = quick(&d, &["--out", "res"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let link = d.join("res/report.json");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let text = std::fs::read_to_string(elsewhere.join("real.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).expect("the target holds the report");
    assert!(v.get("total_cycles").is_some(), "{text:.200}");
    no_temporaries(&d);
}

#[test]
fn a_folder_given_as_a_file_is_refused_before_the_run() {
    let d = tmp_dir("outputs", "folder");
    std::fs::create_dir_all(d.join("t.vcd")).unwrap();
    std::fs::create_dir_all(d.join("o/report.json")).unwrap();
    for args in [
        vec!["--vcd", "t.vcd"],
        vec!["--perfetto", "t.vcd"],
        vec!["--out", "o"],
    ] {
        let o = quick(&d, &args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("it is a folder, not a file"), "{err}");
        assert!(
            o.stdout.is_empty(),
            "nothing ran: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    // `--out` naming a file (not a folder) is bad input too.
    std::fs::write(d.join("plain"), "x").unwrap();
    let o = quick(&d, &["--out", "plain"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is a file, not a folder"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(d.join("plain")).unwrap(), "x");
    no_temporaries(&d);
}

#[test]
fn concurrent_runs_into_one_path_each_leave_a_whole_file() {
    let d = tmp_dir("outputs", "concurrent");
    let spawn = |seq: &str| {
        let mut args: Vec<String> = QUICK.iter().map(|s| s.to_string()).collect();
        args[7] = seq.to_owned();
        args.extend([
            "--out".into(),
            "res".into(),
            "--perfetto".into(),
            "t.json".into(),
        ]);
        Command::new(env!("CARGO_BIN_EXE_stasim"))
            .current_dir(&d)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let runs: Vec<_> = ["32", "48", "64", "16"].iter().map(|s| spawn(s)).collect();
    for r in runs {
        let o = r.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("res/report.json")).unwrap())
            .expect("report.json is one run's whole JSON");
    let seq = report["workload"]["seq"].as_u64().expect("workload.seq");
    assert!([16, 32, 48, 64].contains(&seq), "{seq}");
    let _: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("t.json")).unwrap()).expect("whole trace");
    no_temporaries(&d);
}

#[test]
fn stdout_failures_exit_1_without_a_panic() {
    let d = tmp_dir("outputs", "devfull");
    for args in [
        QUICK.iter().copied().chain(["--json"]).collect::<Vec<_>>(),
        QUICK.to_vec(),
        vec!["models"],
        vec!["check", "pipeline"],
        vec!["graph", "pipeline"],
        vec!["bench", "pipeline", "-t", "100"],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_stasim"))
            .current_dir(&d)
            .args(&args)
            .stdout(full)
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("cannot write to standard output"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn a_trace_that_cannot_be_written_exits_1_naming_the_file() {
    let d = tmp_dir("outputs", "full-trace");
    let o = quick(&d, &["--vcd", "/dev/full"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot write `/dev/full`"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn sigint_and_sigterm_remove_the_temporaries_of_a_run() {
    for (sig, name) in [(libc::SIGINT, "int"), (libc::SIGTERM, "term")] {
        let d = tmp_dir("outputs", &format!("sig{name}"));
        // Long enough to be interrupted while the traces are being written.
        let mut child = Command::new(env!("CARGO_BIN_EXE_stasim"))
            .current_dir(&d)
            .args([
                "run",
                "--model",
                "bert-large",
                "--seq",
                "512",
                "--vcd",
                "t.vcd",
                "--perfetto",
                "t.json",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the run has its temporaries open.
        let mut seen = false;
        for _ in 0..2000 {
            if tree(&d).iter().any(|n| n.contains(".partial")) {
                seen = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(seen, "the run opened its temporary files");
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, sig) };
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(sig),
            "{status:?}: the run died of the signal"
        );
        assert_eq!(tree(&d), Vec::<String>::new(), "no file left behind");
    }
}

#[test]
fn the_main_job_writes_into_out_and_lists_every_file() {
    let d = tmp_dir("outputs", "main-job");
    let o = stasim_in(&d, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let expected: Vec<PathBuf> = [
        "out/report.json",
        "out/ops.csv",
        "out/traces/sta-bert-base.vcd",
        "out/traces/sta-bert-base.json",
        "out/plots/latency_by_layer.png",
        "out/plots/roofline.svg",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    for p in &expected {
        assert!(d.join(p).is_file(), "{} written", p.display());
        assert!(
            err.lines().any(|l| l == format!("wrote {}", p.display())),
            "{} listed in: {err}",
            p.display()
        );
    }
    let listed = err.lines().filter(|l| l.starts_with("wrote ")).count();
    let files = tree(&d).iter().filter(|n| d.join(n).is_file()).count();
    assert_eq!(
        listed, files,
        "every file written is listed, and only those"
    );
    let top: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(top, ["out"], "nothing outside out/");
}

#[test]
fn odd_module_names_keep_their_own_vcd_scope_and_valid_perfetto_json() {
    let d = tmp_dir("outputs", "names");
    // `a b` and `a_b` sanitise alike; `links` is the links scope's name; a newline and a
    // quote must be escaped in JSON.
    let yaml = r#"
name: names
clock_mhz: 1000
modules:
  source: {kind: source, count: 20, interval_cycles: 1}
  "a b": {kind: stage, service_cycles: 1}
  a_b: {kind: stage, service_cycles: 2}
  links: {kind: stage, service_cycles: 1}
  "q\"x\ny": {kind: stage, service_cycles: 1}
  sink: {kind: sink}
links:
  - {from: source.out, to: "a b.in"}
  - {from: "a b.out", to: a_b.in}
  - {from: a_b.out, to: links.in}
  - {from: links.out, to: "q\"x\ny.in"}
  - {from: "q\"x\ny.out", to: sink.in}
"#;
    std::fs::write(d.join("names.yaml"), yaml).unwrap();
    let o = stasim_in(
        &d,
        &[
            "run",
            "names.yaml",
            "--vcd",
            "n.vcd",
            "--perfetto",
            "n.json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let wave = wellen::simple::read(d.join("n.vcd")).expect("wellen reads the VCD");
    let h = wave.hierarchy();
    let top = h.scopes().next().expect("the stasim scope");
    let mut scopes: Vec<String> = h[top].scopes(h).map(|s| h[s].name(h).to_owned()).collect();
    scopes.sort();
    let mut want = [
        "a_b", "a_b_2", "links", "links_2", "q_x_y", "sink", "source",
    ];
    want.sort();
    // Modules whose signals never change have no scope; the stages all do.
    for s in ["a_b", "a_b_2", "links", "links_2", "q_x_y"] {
        assert!(scopes.iter().any(|x| x == s), "scope {s} in {scopes:?}");
    }
    assert!(
        scopes.iter().all(|x| want.contains(&x.as_str())),
        "{scopes:?}"
    );
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("n.json")).unwrap()).expect("valid JSON");
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "thread_name")
        .filter_map(|e| e["args"]["name"].as_str())
        .collect();
    assert!(names.contains(&"q\"x\ny"), "{names:?}");
    assert!(names.contains(&"a b"), "{names:?}");
}
