//! Tests that skip say so where `cargo test` shows it: each skipping test is run again in a
//! child test process with what it needs taken away, and its output must say "skipped".

use std::process::Command;

/// Runs the one test `name` of this binary with `env` set; returns its stdout and stderr.
pub(crate) fn run_alone(name: &str, env: &[(&str, &str)]) -> String {
    let exe = std::env::current_exe().unwrap();
    let o = Command::new(exe)
        .args([name, "--exact", "--test-threads", "1"])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(o.status.success(), "{name} failed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(text.contains("1 passed"), "{name} did not run: {text}");
    text
}

#[test]
fn tests_needing_the_real_minilm_say_skipped_when_it_is_absent() {
    for name in [
        "prune::the_real_minilm_checkpoint_prunes_and_round_trips",
        "functional::the_real_minilm_checkpoint_matches_the_reference",
    ] {
        let out = run_alone(name, &[("STASIM_MINILM", "/nonexistent/model.safetensors")]);
        assert!(
            out.contains("skipped:") && out.contains("/nonexistent/model.safetensors not found"),
            "{name}: {out}"
        );
    }
}

#[test]
fn the_gnu_parallel_test_says_skipped_when_parallel_is_absent() {
    let name = "sweep::gnu_parallel_runs_the_shards";
    let out = run_alone(name, &[("PATH", "/nonexistent")]);
    assert!(
        out.contains("skipped:") && out.contains("GNU parallel is not installed"),
        "{out}"
    );
}

#[test]
fn the_systemc_test_says_skipped_when_gxx_is_absent() {
    let name = "benches::the_systemc_pipeline_reproduces_5t_plus_10_and_5t_minus_115";
    let out = run_alone(name, &[("PATH", "/nonexistent")]);
    assert!(
        out.contains("skipped:") && out.contains("needs g++ and SystemC"),
        "{out}"
    );
}

#[test]
fn calibrated_pruning_tests_say_skipped_without_smollm2_or_the_text() {
    for name in [
        "calibrated::wanda_and_sparsegpt_beat_magnitude_at_2_4_on_the_real_smollm2",
        "calibrated::a_calibrated_prune_repeated_is_byte_identical",
    ] {
        let out = run_alone(name, &[("STASIM_SMOLLM2", "/nonexistent/smollm2.gguf")]);
        assert!(
            out.contains("skipped:") && out.contains("/nonexistent/smollm2.gguf not found"),
            "{name}: {out}"
        );
        let out = run_alone(name, &[("STASIM_TEXT", "/nonexistent/text")]);
        assert!(
            out.contains("skipped:") && out.contains("fetch-text.sh"),
            "{name}: {out}"
        );
    }
}
