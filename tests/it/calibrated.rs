//! Calibrated pruning of the real SmolLM2-135M end to end (`stasim prune --method`, then
//! `stasim eval`): the activation-aware methods beat magnitude at 2:4 as the published
//! one-shot results say (Llama-2-7B 2:4: magnitude 54.6, Wanda 11.0, SparseGPT 10.2), the
//! same inputs give a byte-identical file, and bad arguments are exit-2 errors.
//!
//! The tests calibrate on 256 tokens (two windows of 128) and score 96 evaluation tokens,
//! so they take about a minute a method; the README's table uses the defaults (2048
//! calibration tokens, 1024 evaluation tokens).

use std::path::Path;
use std::process::{Command, Output};

fn stasim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stasim"))
        .args(args)
        .output()
        .unwrap()
}

/// `stasim prune GGUF --method M --pattern 2:4` on 256 calibration tokens, into `out`.
fn prune(gguf: &Path, method: &str, out: &Path) {
    let o = stasim(&[
        "prune",
        gguf.to_str().unwrap(),
        "--method",
        method,
        "--pattern",
        "2:4",
        "--calibration-tokens",
        "256",
        "--calibration-window",
        "128",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "prune --method {method}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `stasim eval FILE --tokens 96 --window 48 --json`: its perplexity.
fn perplexity(file: &Path) -> f64 {
    let o = stasim(&[
        "eval",
        file.to_str().unwrap(),
        "--tokens",
        "96",
        "--window",
        "48",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    j["perplexity"].as_f64().unwrap()
}

#[test]
fn wanda_and_sparsegpt_beat_magnitude_at_2_4_on_the_real_smollm2() {
    let Some(gguf) = crate::support::smollm2_and_text() else {
        return;
    };
    let dir = crate::support::tmp_dir("calibrated", "methods");
    let mut ppl = Vec::new();
    for method in ["magnitude", "wanda", "sparsegpt"] {
        let out = dir.join(format!("{method}.stanm"));
        prune(&gguf, method, &out);
        ppl.push(perplexity(&out));
    }
    let dense = perplexity(&gguf);
    let [magnitude, wanda, sparsegpt] = ppl[..] else {
        unreachable!()
    };
    eprintln!(
        "SmolLM2 2:4, 96 evaluation tokens: dense {dense:.2}, magnitude {magnitude:.2}, \
         wanda {wanda:.2}, sparsegpt {sparsegpt:.2}"
    );
    // Every pruning loses quality; the activation-aware ones lose several times less
    // (measured with these settings: dense 50.1, magnitude 5055, Wanda 279, SparseGPT 261).
    for (name, p) in [
        ("magnitude", magnitude),
        ("wanda", wanda),
        ("sparsegpt", sparsegpt),
    ] {
        assert!(p > dense, "{name} {p} against dense {dense}");
    }
    assert!(
        wanda < magnitude / 2.0,
        "wanda {wanda}, magnitude {magnitude}"
    );
    assert!(
        sparsegpt < magnitude / 2.0,
        "sparsegpt {sparsegpt}, magnitude {magnitude}"
    );
}

#[test]
fn a_calibrated_prune_repeated_is_byte_identical() {
    let Some(gguf) = crate::support::smollm2_and_text() else {
        return;
    };
    let dir = crate::support::tmp_dir("calibrated", "repeat");
    let (a, b) = (dir.join("a.stanm"), dir.join("b.stanm"));
    prune(&gguf, "wanda", &a);
    prune(&gguf, "wanda", &b);
    assert!(
        std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
        "two prunes of the same inputs differ"
    );
}

#[test]
fn bad_calibration_arguments_are_exit_2_errors_naming_the_flag() {
    let missing = stasim(&["prune", "/nonexistent.gguf", "--method", "wanda"]);
    assert_eq!(missing.status.code(), Some(2));
    let unknown = stasim(&["prune", "/nonexistent.gguf", "--method", "obs"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("--method"));
    let Some(gguf) = crate::support::smollm2_and_text() else {
        return;
    };
    let g = gguf.to_str().unwrap();
    let out = crate::support::tmp_dir("calibrated", "bad").join("x.stanm");
    let o = out.to_str().unwrap();
    for (args, flag) in [
        (
            vec!["--method", "wanda", "--calibration-tokens", "0"],
            "--calibration-tokens",
        ),
        (
            vec!["--method", "wanda", "--calibration-window", "1"],
            "--calibration-window",
        ),
        (
            vec![
                "--method",
                "sparsegpt",
                "--calibration-tokens",
                "100",
                "--calibration-window",
                "128",
            ],
            "--calibration",
        ),
        (
            vec!["--method", "sparsegpt", "--error-inputs", "seeded"],
            "--error-inputs",
        ),
    ] {
        let mut full = vec!["prune", g, "--out", o];
        full.extend(&args);
        let r = stasim(&full);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?} does not name {flag}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!out.exists(), "{args:?} wrote {o}");
    }
}
