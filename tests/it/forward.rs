//! The fast f32 forward pass (`src/eval/forward.rs`) against the simulator's f64 reference
//! (`stasim::functional::generate`, itself checked against numpy on the real SmolLM2): the
//! last position's logits and the greedy tokens.

use stasim::eval::forward::Model;
use stasim::functional::generate;
use stasim::functional::llama_weights::LlamaWeights;
use stasim::functional::weights::ModelWeights;
use stasim::run::{WorkloadArgs, resolve_workload};
use stasim::topology::{self, Source};
use stasim::workload::Workload;

fn workload(layers: i64, seq: usize) -> Workload {
    let t = topology::load(&Source::read("sta").unwrap(), &[]).unwrap();
    let args = WorkloadArgs {
        model: Some("smollm2-135m".into()),
        layers: Some(layers),
        seq: Some(seq as i64),
        pattern: Some("dense".into()),
        ..WorkloadArgs::default()
    };
    resolve_workload(&t, &args).unwrap()
}

/// The f32 pass's greedy continuation of `prompt` by `n` tokens (each step recomputes the
/// whole sequence) and its logits at the prompt's last position.
fn fast_greedy(m: &Model, prompt: &[u32], n: usize) -> (Vec<u32>, Vec<f32>) {
    let mut seq = prompt.to_vec();
    let v = m.vocab();
    let mut first = Vec::new();
    for step in 0..n {
        let logits = m.logits(&seq).unwrap();
        let last = &logits[(seq.len() - 1) * v..];
        if step == 0 {
            first = last.to_vec();
        }
        // Argmax, ties to the lower id (as the reference).
        let best = (0..v).fold(0, |b, i| if last[i] > last[b] { i } else { b });
        seq.push(best as u32);
    }
    (seq[prompt.len()..].to_vec(), first)
}

/// Max |f32 - f64| over max |f64|.
fn rel_diff(fast: &[f32], reference: &[f64]) -> f64 {
    assert_eq!(fast.len(), reference.len());
    let max = reference.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let diff = fast
        .iter()
        .zip(reference)
        .fold(0.0f64, |m, (a, b)| m.max((f64::from(*a) - b).abs()));
    diff / max
}

fn check(w: &Workload, weights: LlamaWeights, prompt: &[u32], n: usize) {
    let fast = Model::of_workload(&weights, w).unwrap();
    let (tokens, logits) = fast_greedy(&fast, prompt, n);
    let reference = generate(w, &ModelWeights::decoder(weights), &[prompt.to_vec()], n).unwrap();
    let rel = rel_diff(&logits, &reference.prefill_logits[0]);
    eprintln!("f32 forward: last-position logits max rel. difference {rel:e}, tokens {tokens:?}");
    assert!(rel < 1e-4, "logits differ by {rel:e} of the largest");
    assert_eq!(tokens, reference.tokens[0]);
    // Deterministic: the same bits again.
    assert_eq!(fast.logits(prompt).unwrap(), fast.logits(prompt).unwrap());
}

#[test]
fn the_f32_forward_pass_matches_the_f64_reference_on_seeded_weights() {
    let prompt = [17, 4000, 9, 31000, 2, 77, 5];
    let w = workload(2, prompt.len());
    check(&w, LlamaWeights::seeded(&w, 3).unwrap(), &prompt, 6);
}

#[test]
fn the_f32_forward_pass_of_the_real_smollm2_matches_the_f64_reference() {
    let Some(path) = crate::support::smollm2_path() else {
        return;
    };
    // "The capital of France is".
    let prompt = [504, 3575, 282, 4649, 314];
    let w = workload(30, prompt.len());
    check(&w, LlamaWeights::from_gguf(&path, &w).unwrap(), &prompt, 8);
}

#[test]
fn a_token_outside_the_vocabulary_is_an_error() {
    let w = workload(1, 2);
    let m = Model::of_workload(&LlamaWeights::seeded(&w, 1).unwrap(), &w).unwrap();
    let err = m.logits(&[1, m.vocab() as u32]).unwrap_err();
    assert!(err.contains("outside the vocabulary"), "{err}");
}

#[test]
fn perplexity_is_the_exponential_of_the_mean_negative_log_likelihood_over_windows() {
    let w = workload(1, 4);
    let m = Model::of_workload(&LlamaWeights::seeded(&w, 5).unwrap(), &w).unwrap();
    let tokens: Vec<u32> = (0..11).map(|i| (i * 7919 % 49152) as u32).collect();
    // Windows of 4: [0..4), [4..8), [8..11): 3 + 3 + 2 predictions, each from its window.
    let (ppl, n) = m.perplexity(&tokens, 4).unwrap();
    assert_eq!(n, 8);
    let v = m.vocab();
    let mut nll = 0.0f64;
    for win in tokens.chunks(4) {
        let logits = m.logits(win).unwrap();
        for t in 1..win.len() {
            let row: Vec<f64> = logits[(t - 1) * v..t * v]
                .iter()
                .map(|&x| f64::from(x))
                .collect();
            let lse = row.iter().map(|x| x.exp()).sum::<f64>().ln();
            nll += lse - row[win[t] as usize];
        }
    }
    // Compared as mean log-likelihoods (seeded weights give very large perplexities).
    let (got, want) = (ppl.ln(), nll / 8.0);
    assert!((got / want - 1.0).abs() < 1e-9, "{got} against {want}");
    assert!(m.perplexity(&tokens, 1).is_err());
    assert!(m.perplexity(&tokens[..1], 4).is_err());
}

/// `stasim eval FILE --tokens 96 --window 48 --json`: its perplexity.
fn eval_ppl(file: &std::path::Path) -> f64 {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stasim"))
        .arg("eval")
        .arg(file)
        .args(["--tokens", "96", "--window", "48", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["predicted"], 94);
    j["perplexity"].as_f64().unwrap()
}

#[test]
fn stasim_eval_scores_the_dense_gguf_better_than_its_2_4_magnitude_pruning() {
    let Some(gguf) = crate::support::smollm2_and_text() else {
        return;
    };
    let Some(pruned) = crate::support::smollm2_2of4() else {
        return;
    };
    let (dense, sparse) = (eval_ppl(&gguf), eval_ppl(&pruned));
    eprintln!(
        "SmolLM2 perplexity, 96 evaluation tokens: dense {dense:.2}, 2:4 magnitude {sparse:.2}"
    );
    // A real language model predicts Shakespeare far better than chance (49,152 tokens);
    // one-shot magnitude 2:4 of every linear layer loses much of that.
    assert!(dense > 1.0 && dense < 200.0, "dense {dense}");
    assert!(sparse > 2.0 * dense, "2:4 {sparse} against dense {dense}");
}

#[test]
fn stasim_eval_refuses_bad_arguments() {
    let bin = env!("CARGO_BIN_EXE_stasim");
    let missing = std::process::Command::new(bin)
        .args(["eval", "/nonexistent.gguf"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    let Some(gguf) = crate::support::smollm2_and_text() else {
        return;
    };
    let bad = std::process::Command::new(bin)
        .arg("eval")
        .arg(&gguf)
        .args(["--window", "1"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--window"));
}
