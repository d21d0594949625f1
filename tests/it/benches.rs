//! The SystemC side of the kernel comparison (benches/systemc/pipeline.cpp) reproduces
//! BENCH.md's exact times, so `benches/compare-systemc.sh` compares two correct kernels.
//! Needs g++ and Debian's libsystemc-dev; says "skipped" without them.

use std::process::Command;

use crate::support::{skipped, tmp_dir};

#[test]
fn the_systemc_pipeline_reproduces_5t_plus_10_and_5t_minus_115() {
    let have = |tool: &str| Command::new(tool).arg("--version").output().is_ok();
    let systemc = std::path::Path::new("/usr/include/systemc.h").exists()
        || Command::new("pkg-config")
            .args(["--exists", "systemc"])
            .status()
            .is_ok_and(|s| s.success());
    if !have("g++") || !systemc {
        skipped("needs g++ and SystemC (apt-get install -y libsystemc-dev g++)");
        return;
    }
    let dir = tmp_dir("benches", "systemc");
    let bin = dir.join("systemc-pipeline");
    let built = Command::new("bash")
        .arg("benches/systemc/build.sh")
        .arg(&bin)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    for t in [1u64, 2, 41, 1000] {
        let o = Command::new(&bin)
            .arg(t.to_string())
            .env("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1")
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        let line = out.lines().find(|l| l.starts_with("RESULT ")).unwrap_or("");
        // BENCH.md: the last arrival at 5T + 10 ns; tx_{T-1} enters F0 at 5T - 115 for
        // T >= 41. By hand for T = 1 and 2: one transaction crosses the five stages in
        // 1 + 2 + 3 + 4 + 5 = 15 ns and enters F0 at 0; the second follows the slowest
        // stage, 5 ns later, and enters F0 at 1 ns.
        let last_put = match t {
            1 => 0,
            2 => 1,
            _ => 5 * t - 115,
        };
        let want = format!(
            "RESULT framework=systemc T={t} sim_end_ns={} source_last_put_ns={last_put} received={t} ok=1 ",
            5 * t + 10
        );
        assert!(line.starts_with(&want), "T={t}: {line}");
        assert!(o.status.success());
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `benches/ab-run.sh` (the README's run-speed table) times each binary's default run and
/// reports its median against the first; with too few arguments it exits 2.
#[test]
fn the_run_speed_script_reports_a_median_per_binary() {
    let bin = env!("CARGO_BIN_EXE_stasim");
    let o = Command::new("bash")
        .args(["benches/ab-run.sh", "1", bin, bin])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    for l in &lines {
        assert!(l.starts_with(&format!("{bin}: median ")), "{l}");
        assert!(l.contains(" s (") && l.contains(", 1 runs), "), "{l}");
    }
    assert!(lines[0].ends_with("1.00x the first"), "{}", lines[0]);
    let bad = Command::new("bash")
        .args(["benches/ab-run.sh", "1", bin])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// `benches/golden.sh` (the byte-identity check behind every speed change of the DRAM
/// model) writes its 62 outputs, and two runs of one binary give byte-identical files:
/// every report, trace and replay it covers is deterministic.
#[test]
fn the_golden_outputs_are_complete_and_deterministic() {
    let bin = env!("CARGO_BIN_EXE_stasim");
    let dir = tmp_dir("benches", "golden");
    let mut files = Vec::new();
    for side in ["a", "b"] {
        let out = dir.join(side);
        let o = Command::new("bash")
            .arg("benches/golden.sh")
            .arg(bin)
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let said = String::from_utf8_lossy(&o.stdout);
        assert!(said.starts_with("62 outputs in "), "{said}");
        let mut these = Vec::new();
        let mut stack = vec![out.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    these.push(p.strip_prefix(&out).unwrap().to_path_buf());
                }
            }
        }
        these.sort();
        files.push((out, these));
    }
    let ((a, names_a), (b, names_b)) = (&files[0], &files[1]);
    assert_eq!(names_a, names_b);
    // 62 outputs in 65 files: the traced run also writes its VCD and Perfetto trace, and the
    // `--out` run writes report.json and ops.csv.
    assert_eq!(names_a.len(), 65, "{names_a:?}");
    for name in names_a {
        let (x, y) = (
            std::fs::read(a.join(name)).unwrap(),
            std::fs::read(b.join(name)).unwrap(),
        );
        assert!(!x.is_empty(), "{} is empty", name.display());
        assert!(x == y, "{} differs between two runs", name.display());
    }
    let bad = Command::new("bash")
        .args(["benches/golden.sh", bin])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(dir);
}
