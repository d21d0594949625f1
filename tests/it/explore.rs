//! `stasim explore` on the real SmolLM2 (skipped, visibly, without it): its recorded values
//! against `stasim eval` and `stasim run` of the same patterns, its frontier against a
//! brute-force Pareto check of every point it measured, its caches (a second run measures
//! nothing and writes the same bytes), and its errors.

use std::path::Path;
use std::process::{Command, Output};

fn stasim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stasim"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A row of points.csv: stage, patterns `qkv=..,proj=..,ffn1=..,ffn2=..`, value bits, latency,
/// perplexity, on the frontier.
#[derive(Clone, Debug, PartialEq)]
struct Row {
    stage: String,
    patterns: String,
    value_bits: u32,
    latency_us: f64,
    perplexity: f64,
    frontier: bool,
}

fn rows(path: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "stage,qkv,proj,ffn1,ffn2,value_bits,latency_us,perplexity,predicted_latency_us,predicted_perplexity,frontier"
        )
    );
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 11, "{l}");
            Row {
                stage: f[0].into(),
                patterns: format!("qkv={},proj={},ffn1={},ffn2={}", f[1], f[2], f[3], f[4]),
                value_bits: f[5].parse().unwrap(),
                latency_us: f[6].parse().unwrap(),
                perplexity: f[7].parse().unwrap(),
                frontier: f[10] == "1",
            }
        })
        .collect()
}

fn json_f64(out: &str, key: &str) -> f64 {
    let j: serde_json::Value = serde_json::from_str(out).unwrap();
    j[key].as_f64().unwrap()
}

#[test]
fn the_explorer_records_what_eval_and_run_give_and_its_frontier_is_the_pareto_set() {
    let Some(gguf) = crate::support::smollm2_and_text() else {
        return;
    };
    let Some(two4) = crate::support::smollm2_2of4() else {
        return;
    };
    let Some(two8) = crate::support::smollm2_pruned("2:8") else {
        return;
    };
    let dir = crate::support::tmp_dir("explore", "run");
    let (g, a, b, d) = (
        gguf.to_str().unwrap(),
        two4.to_str().unwrap(),
        two8.to_str().unwrap(),
        dir.to_str().unwrap(),
    );
    let args = [
        "explore", g, "--from", a, "--from", b, "--tokens", "64", "--window", "64", "--budget",
        "6", "--out", d,
    ];
    let first = stasim(&args);
    let out = ok(&first);
    assert!(
        out.contains("every frontier point re-simulated and re-evaluated to its recorded values"),
        "{out}"
    );
    let pts = rows(&dir.join("points.csv"));
    // Probes of 3 options (dense, 2:4, 2:8): dense, 2 uniform, 4 x 2 single-class.
    let probes = ["dense", "uniform", "single"];
    assert_eq!(
        pts.iter()
            .filter(|r| probes.contains(&r.stage.as_str()))
            .count(),
        11
    );
    // At most one challenger a uniform pattern.
    assert!(pts.iter().filter(|r| r.stage == "challenger").count() <= 2);
    let refined = pts.iter().filter(|r| r.stage == "refined").count();
    assert!((1..=6).contains(&refined), "{refined} refined points");
    let mut seen: Vec<&str> = pts.iter().map(|r| r.patterns.as_str()).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), pts.len(), "a candidate measured twice");

    // The frontier is every point no other beats (at least as fast and as good, better in
    // one), by brute force.
    for (i, r) in pts.iter().enumerate() {
        let dominated = pts.iter().enumerate().any(|(j, s)| {
            let le = s.latency_us <= r.latency_us && s.perplexity <= r.perplexity;
            let lt = s.latency_us < r.latency_us || s.perplexity < r.perplexity;
            j != i && le && (lt || j < i)
        });
        assert_eq!(r.frontier, !dominated, "{r:?}");
    }
    let mut front: Vec<Row> = pts.iter().filter(|r| r.frontier).cloned().collect();
    front.sort_by(|x, y| x.latency_us.total_cmp(&y.latency_us));
    assert_eq!(rows(&dir.join("frontier.csv")), front);

    let find = |p: &str| pts.iter().find(|r| r.patterns == p).unwrap().clone();
    let dense = find("qkv=dense,proj=dense,ffn1=dense,ffn2=dense");
    let u24 = find("qkv=2:4,proj=2:4,ffn1=2:4,ffn2=2:4");
    let u28 = find("qkv=2:8,proj=2:8,ffn1=2:8,ffn2=2:8");
    // Perplexities: the uniform points are their files' models, the dense point the GGUF's.
    let eval = |f: &str| {
        json_f64(
            &ok(&stasim(&[
                "eval", f, "--tokens", "64", "--window", "64", "--json",
            ])),
            "perplexity",
        )
    };
    assert_eq!(dense.perplexity, eval(g));
    assert_eq!(u24.perplexity, eval(a));
    assert_eq!(u28.perplexity, eval(b));
    // Latencies: the decode step `stasim run` simulates for the same patterns.
    let run = |p: &str| {
        json_f64(
            &ok(&stasim(&[
                "run",
                "--model",
                "smollm2-135m",
                "--context",
                "512",
                "--pattern",
                p,
                "--json",
            ])),
            "total_time_us",
        )
    };
    assert_eq!(u28.latency_us, run("2:8"));
    let mixed = pts.iter().find(|r| r.stage == "refined").unwrap().clone();
    assert_eq!(mixed.latency_us, run(&mixed.patterns));
    // Fewer weight bytes make every decode step faster: each single-class point beats dense,
    // 2:8 beats 2:4 in every class.
    for r in pts.iter().filter(|r| r.stage == "single") {
        assert!(r.latency_us < dense.latency_us, "{r:?}");
        let other = r.patterns.replace("2:8", "2:4");
        if other != r.patterns {
            assert!(r.latency_us < find(&other).latency_us, "{r:?}");
        }
    }
    let png = std::fs::read(dir.join("frontier.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    // A second run takes every value from the caches and writes the same files.
    let before: Vec<Vec<u8>> = ["points.csv", "frontier.csv", "explore.json", "frontier.png"]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    let second = stasim(&args);
    ok(&second);
    let err = String::from_utf8_lossy(&second.stderr);
    let n = pts.len();
    assert!(
        err.contains(&format!(
            "({n} latencies and {n} perplexities from the caches)"
        )),
        "{err}"
    );
    for (f, b) in ["points.csv", "frontier.csv", "explore.json", "frontier.png"]
        .iter()
        .zip(before)
    {
        assert_eq!(std::fs::read(dir.join(f)).unwrap(), b, "{f} changed");
    }
}

#[test]
fn eight_bit_values_are_searched_as_a_whole_and_recorded_as_run_and_eval_give_them() {
    let Some(gguf) = crate::support::smollm2_and_text() else {
        return;
    };
    let Some(two8) = crate::support::smollm2_pruned("2:8") else {
        return;
    };
    let dir = crate::support::tmp_dir("explore", "bits");
    let (g, b, d) = (
        gguf.to_str().unwrap(),
        two8.to_str().unwrap(),
        dir.to_str().unwrap(),
    );
    let out = ok(&stasim(&[
        "explore",
        g,
        "--from",
        b,
        "--tokens",
        "64",
        "--window",
        "64",
        "--budget",
        "2",
        "--value-bits",
        "16,8",
        "--out",
        d,
    ]));
    assert!(out.contains("values of 16 or 8 bits"), "{out}");
    let pts = rows(&dir.join("points.csv"));
    let at = |bits: u32| -> Vec<&Row> { pts.iter().filter(|r| r.value_bits == bits).collect() };
    let (p16, p8) = (at(16), at(8));
    // Each width is a search of its own: the same probes (dense, 2:8, 4 single-class).
    assert_eq!(p16.len() + p8.len(), pts.len());
    let probes = |v: &[&Row]| {
        v.iter()
            .filter(|r| r.stage != "refined" && r.stage != "challenger")
            .count()
    };
    assert_eq!((probes(&p16), probes(&p8)), (6, 6));
    // Half the bytes of every tensor: each probe's decode step is faster at 8 bits, and
    // rounding to 8 bits changes the model (a different perplexity).
    for r in &p8 {
        if let Some(w) = p16.iter().find(|w| w.patterns == r.patterns) {
            assert!(r.latency_us < w.latency_us, "{r:?} vs {w:?}");
            assert_ne!(r.perplexity, w.perplexity, "{r:?}");
        }
    }
    // The 8-bit latency is what `stasim run` simulates with `value_bits: 8` in the topology.
    let text = std::fs::read_to_string(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("topologies/sta.yaml"),
    )
    .unwrap();
    assert!(text.contains("\n  value_bits: 16"));
    let topo8 = dir.join("sta8.yaml");
    std::fs::write(
        &topo8,
        text.replace("\n  value_bits: 16", "\n  value_bits: 8"),
    )
    .unwrap();
    let u8_28 = p8
        .iter()
        .find(|r| r.patterns == "qkv=2:8,proj=2:8,ffn1=2:8,ffn2=2:8")
        .unwrap();
    let run = ok(&stasim(&[
        "run",
        topo8.to_str().unwrap(),
        "--model",
        "smollm2-135m",
        "--context",
        "512",
        "--pattern",
        "2:8",
        "--json",
    ]));
    assert_eq!(u8_28.latency_us, json_f64(&run, "total_time_us"));
    // The 8-bit perplexity is `stasim eval --value-bits 8`'s.
    let eval = ok(&stasim(&[
        "eval",
        b,
        "--tokens",
        "64",
        "--window",
        "64",
        "--value-bits",
        "8",
        "--json",
    ]));
    assert_eq!(u8_28.perplexity, json_f64(&eval, "perplexity"));
    // A width the simulator has no datapath for is refused.
    let bad = stasim(&["explore", g, "--from", b, "--value-bits", "4", "--out", d]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("16 or 8"));
}

#[test]
fn the_explorer_refuses_bad_arguments_with_exit_2() {
    let missing = stasim(&[
        "explore",
        "/nonexistent.gguf",
        "--from",
        "/nonexistent.stanm",
    ]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent.gguf"));
    // --from is required.
    assert_eq!(
        stasim(&["explore", "/nonexistent.gguf"]).status.code(),
        Some(2)
    );
    let Some(gguf) = crate::support::smollm2_and_text() else {
        return;
    };
    let Some(two4) = crate::support::smollm2_2of4() else {
        return;
    };
    let dir = crate::support::tmp_dir("explore", "bad");
    let (g, a, d) = (
        gguf.to_str().unwrap(),
        two4.to_str().unwrap(),
        dir.to_str().unwrap(),
    );
    let no_pattern = stasim(&["explore", g, "--from", a, "--patterns", "3:8", "--out", d]);
    assert_eq!(no_pattern.status.code(), Some(2));
    let e = String::from_utf8_lossy(&no_pattern.stderr);
    assert!(e.contains("3:8") && e.contains("2:4"), "{e}");
    let bad_tokens = stasim(&["explore", g, "--from", a, "--tokens", "1", "--out", d]);
    assert_eq!(bad_tokens.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_tokens.stderr).contains("--tokens"));
    // A GGUF given where a .stanm is expected.
    let not_stanm = stasim(&["explore", g, "--from", g, "--out", d]);
    assert_eq!(not_stanm.status.code(), Some(2));
}
