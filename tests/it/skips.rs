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

/// Runs test `name` alone with `env` set; its output must say it skipped, giving `reason`.
pub(crate) fn assert_skips(name: &str, env: &[(&str, &str)], reason: &str) {
    let out = run_alone(name, env);
    assert_skip_reason(name, &out, reason);
}

/// `out`, the output of test `name` run alone, says it skipped giving `reason`. On a machine
/// where a file the test needs first has not been fetched (`scripts/fetch-*.sh`), the test
/// skips for that before it gets to `reason`: accepted, with a note saying so (CI fetches
/// every file, so there the reason itself is checked).
fn assert_skip_reason(name: &str, out: &str, reason: &str) {
    assert!(
        out.contains("skipped:"),
        "{name} did not say it skipped: {out}"
    );
    if out.contains(reason) {
        return;
    }
    let unfetched = out
        .lines()
        .find(|l| l.contains("skipped:") && l.contains("(run scripts/fetch-"));
    match unfetched {
        Some(line) => eprintln!(
            "note: {name} skipped for a file not fetched, so its skip for \"{reason}\" was not \
             checked here: {line}"
        ),
        None => panic!("{name} skipped without giving \"{reason}\": {out}"),
    }
}

#[test]
fn tests_needing_the_real_minilm_say_skipped_when_it_is_absent() {
    for name in [
        "prune::the_real_minilm_checkpoint_prunes_and_round_trips",
        "functional::the_real_minilm_checkpoint_matches_the_reference",
        "encoder::the_real_minilm_sentence_embeddings_match_numpy",
        "encoder::a_pruned_minilm_family_loads_each_member_as_numpy_computes_it",
    ] {
        let env = [("STASIM_MINILM", "/nonexistent/model.safetensors")];
        assert_skips(name, &env, "/nonexistent/model.safetensors not found");
    }
}

#[test]
fn minilm_quality_tests_say_skipped_without_minilm_or_the_text() {
    for name in [
        "encoder::eval_of_minilm_against_itself_is_cosine_one_and_a_pruned_one_is_below",
        "encoder::bad_encoder_eval_arguments_are_exit_2_errors_naming_the_file_or_flag",
        "calibrated::wanda_and_sparsegpt_beat_magnitude_at_2_4_on_the_real_minilm",
        "calibrated::a_calibrated_minilm_prune_repeated_is_byte_identical_and_magnitude_keeps_its_file",
        "calibrated::wanda_on_minilm_keeps_by_weight_times_the_norm_of_the_real_first_layer_inputs",
        "calibrated::bad_minilm_calibration_arguments_are_exit_2_errors_naming_the_flag_or_file",
    ] {
        let env = [("STASIM_MINILM", "/nonexistent/model.safetensors")];
        assert_skips(name, &env, "/nonexistent/model.safetensors not found");
        assert_skips(
            name,
            &[("STASIM_TEXT", "/nonexistent/text")],
            "fetch-text.sh",
        );
    }
}

#[test]
fn the_minilm_numpy_tests_say_skipped_without_python() {
    for name in [
        "encoder::the_real_minilm_sentence_embeddings_match_numpy",
        "encoder::a_pruned_minilm_family_loads_each_member_as_numpy_computes_it",
    ] {
        let env = [("STASIM_PYTHON", "/nonexistent/python3")];
        assert_skips(name, &env, "numpy and tokenizers is not available");
    }
}

#[test]
fn the_gnu_parallel_test_says_skipped_when_parallel_is_absent() {
    let name = "sweep::gnu_parallel_runs_the_shards";
    assert_skips(
        name,
        &[("PATH", "/nonexistent")],
        "GNU parallel is not installed",
    );
}

#[test]
fn the_systemc_test_says_skipped_when_gxx_is_absent() {
    let name = "benches::the_systemc_pipeline_reproduces_5t_plus_10_and_5t_minus_115";
    assert_skips(name, &[("PATH", "/nonexistent")], "needs g++ and SystemC");
}

#[test]
fn calibrated_pruning_and_explorer_tests_say_skipped_without_smollm2_or_the_text() {
    for name in [
        "calibrated::wanda_and_sparsegpt_beat_magnitude_at_2_4_on_the_real_smollm2",
        "calibrated::a_calibrated_prune_repeated_is_byte_identical",
        "explore::the_explorer_records_what_eval_and_run_give_and_its_frontier_is_the_pareto_set",
        "explore::eight_bit_values_are_searched_as_a_whole_and_recorded_as_run_and_eval_give_them",
    ] {
        let env = [("STASIM_SMOLLM2", "/nonexistent/smollm2.gguf")];
        assert_skips(name, &env, "/nonexistent/smollm2.gguf not found");
        assert_skips(
            name,
            &[("STASIM_TEXT", "/nonexistent/text")],
            "fetch-text.sh",
        );
    }
}
