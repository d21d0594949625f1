//! Functional decode: values of Llama-family decoders through the simulated STA (prefill and
//! decode steps with the KV cache) against the f64 reference, the reference's KV-cache
//! generation against recomputing the whole sequence, and, on the real SmolLM2-135M GGUF,
//! the reference against an independent numpy implementation (tests/py/smollm2_reference.py,
//! reading the file with the `gguf` Python package's own dequantiser).

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use stasim::functional::llama_weights::LlamaWeights;
use stasim::functional::weights::ModelWeights;
use stasim::functional::{DEFAULT_TOLERANCE, DataPlane, DecoderInputs, FunctionalReport, generate};
use stasim::run::{WorkloadArgs, resolve_workload, simulate};
use stasim::topology::{self, Source, Topology};
use stasim::workload::{Phase, Workload};

fn topo(name: &str) -> Topology {
    topology::load(&Source::read(name).unwrap(), &[]).unwrap()
}

fn workload(t: &Topology, layers: i64, seq: i64, batch: i64, pattern: &str) -> Workload {
    let args = WorkloadArgs {
        model: Some("smollm2-135m".into()),
        layers: Some(layers),
        seq: Some(seq),
        batch: Some(batch),
        pattern: Some(pattern.into()),
        ..WorkloadArgs::default()
    };
    resolve_workload(t, &args).unwrap()
}

/// Every tensor written and close to the reference, the logits within the tolerance.
fn assert_close(f: &FunctionalReport, what: &str) {
    assert!(f.passed, "{what}: {f:#?}");
    for t in &f.tensors {
        assert_eq!(t.non_finite, 0, "{what}: {} has unwritten values", t.name);
        assert!(
            t.rel_error < 4e-3,
            "{what}: {} rel error {}",
            t.name,
            t.rel_error
        );
    }
}

/// Runs `w` through the simulator with values; returns the data plane after the run.
fn run_values(
    t: &Topology,
    w: &Workload,
    weights: &ModelWeights,
    inputs: Option<DecoderInputs>,
    what: &str,
) -> DataPlane {
    let dp = DataPlane::with_inputs(w, weights.clone(), 7, what.into(), inputs).unwrap();
    let plane = Arc::new(Mutex::new(dp));
    let report = simulate(t, w, None, None, Some((&plane, DEFAULT_TOLERANCE)))
        .unwrap()
        .report;
    let f = report.functional.unwrap();
    assert_close(&f, what);
    Arc::try_unwrap(plane).ok().unwrap().into_inner().unwrap()
}

fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as u32
}

/// The prefill of `prompt` (per sequence), then `steps` decode steps, each fed the token the
/// engine's logits chose and the cache the engine's previous run left; every run checked
/// against the reference. Returns the engine's greedy tokens.
fn engine_generation(
    t: &Topology,
    w: &Workload,
    weights: &ModelWeights,
    prompt: &[Vec<u32>],
    steps: usize,
) -> Vec<Vec<u32>> {
    let p = prompt[0].len();
    let inputs = DecoderInputs {
        tokens: prompt.to_vec(),
        cache: None,
    };
    let mut dp = run_values(t, w, weights, Some(inputs), "prefill");
    let mut tokens: Vec<Vec<u32>> = dp.logits().iter().map(|l| vec![argmax(l)]).collect();
    for s in 0..steps {
        let cache = dp.kv_cache();
        assert_eq!(cache.tokens, p + s);
        let mut step = w.clone();
        step.phase = Phase::Decode {
            context: (p + s) as u64,
        };
        let inputs = DecoderInputs {
            tokens: tokens.iter().map(|t| vec![t[s]]).collect(),
            cache: Some(cache.clone()),
        };
        dp = run_values(t, &step, weights, Some(inputs), &format!("decode step {s}"));
        // The cache after the step is the one before it and this step's row.
        let after = dp.kv_cache();
        assert_eq!(after.tokens, p + s + 1);
        for (l, (before, now)) in cache.values.iter().zip(&after.values).enumerate() {
            for (b, (x, y)) in before.iter().zip(now).enumerate() {
                assert_eq!(
                    &y[..x.len()],
                    &x[..],
                    "layer {l} sequence {b}: old rows changed"
                );
                assert!(
                    y[x.len()..].iter().all(|v| v.is_finite()),
                    "new row unwritten"
                );
            }
        }
        for (seq, l) in tokens.iter_mut().zip(dp.logits()) {
            seq.push(argmax(&l));
        }
    }
    tokens
}

#[test]
fn seeded_decoder_prefill_and_decode_steps_through_the_engine_match_the_reference() {
    let t = topo("sta-small");
    for (pattern, seq, batch) in [("2:4", 6, 2), ("dense", 5, 1)] {
        let w = workload(&t, 2, seq, batch, pattern);
        let weights = ModelWeights::seeded(&w, 3).unwrap();
        let prompt: Vec<Vec<u32>> = (0..batch as u32)
            .map(|b| {
                (0..seq as u32)
                    .map(|i| (b * 7919 + i * 104_729) % 49_152)
                    .collect()
            })
            .collect();
        let tokens = engine_generation(&t, &w, &weights, &prompt, 2);
        assert_eq!(tokens.len(), batch as usize);
        assert!(tokens.iter().all(|s| s.len() == 3));
    }
}

#[test]
fn reference_generation_with_the_cache_equals_recomputing_the_whole_sequence() {
    // Independent of the cache: step t's logits must be the prefill logits of the prompt
    // followed by the tokens generated so far (positions, rotary and the append all agree).
    let t = topo("sta-small");
    let w = workload(&t, 2, 4, 2, "2:4");
    let weights = ModelWeights::seeded(&w, 11).unwrap();
    let prompt = vec![vec![5u32, 900, 17, 4000], vec![49_151, 3, 3, 12_345]];
    let g = generate(&w, &weights, &prompt, 4).unwrap();
    assert_eq!(g.step_logits.len(), 3);
    for (step, logits) in g.step_logits.iter().enumerate() {
        let full: Vec<Vec<u32>> = prompt
            .iter()
            .zip(&g.tokens)
            .map(|(p, t)| p.iter().chain(&t[..=step]).copied().collect())
            .collect();
        let again = generate(&w, &weights, &full, 1).unwrap();
        for (b, (a, e)) in logits.iter().zip(&again.prefill_logits).enumerate() {
            let max = e.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            let diff = a
                .iter()
                .zip(e)
                .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
            assert!(
                diff <= 1e-9 * max,
                "step {step} sequence {b}: {diff} (max {max})"
            );
        }
    }
}

/// "The capital of France is" in SmolLM2's vocabulary.
const PROMPT: [u32; 5] = [504, 3575, 282, 4649, 314];

#[test]
fn the_real_smollm2_reference_matches_numpy_in_logits_and_16_greedy_tokens() {
    let Some(path) = crate::support::smollm2_path() else {
        return;
    };
    let Some(py) = crate::support::python_with_gguf() else {
        return;
    };
    let dir = crate::support::tmp_dir("decode_values", "numpy");
    let logits_file = dir.join("logits.bin");
    let ids = PROMPT.map(|i| i.to_string()).join(",");
    // numpy in a child process while stasim's reference runs here.
    let child = Command::new(&py)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/smollm2_reference.py"))
        .arg("--model")
        .arg(&path)
        .args(["--ids", &ids, "--generate", "16", "--top", "5"])
        .arg("--logits-out")
        .arg(&logits_file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = topo("sta");
    let w = workload(&t, 30, PROMPT.len() as i64, 1, "dense");
    let weights = ModelWeights::decoder(LlamaWeights::from_gguf(&path, &w).unwrap());
    let ours = generate(&w, &weights, &[PROMPT.to_vec()], 16).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let theirs: Vec<f64> = std::fs::read(&logits_file)
        .unwrap()
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let mine = &ours.prefill_logits[0];
    assert_eq!(mine.len(), theirs.len());
    let max = theirs.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let diff = mine
        .iter()
        .zip(&theirs)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    eprintln!(
        "SmolLM2 last-position logits: max |stasim - numpy| = {diff:e}, max |logit| = {max}, ratio {:e}",
        diff / max
    );
    assert!(
        diff <= 1e-6 * max,
        "logits differ: {diff} (max |logit| {max})"
    );
    let generated: Vec<u32> = j["generated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    eprintln!("SmolLM2 greedy tokens: {:?}", ours.tokens[0]);
    assert_eq!(ours.tokens[0], generated);
}

#[test]
fn the_real_smollm2_weights_run_through_the_engine_for_prefill_and_decode_steps() {
    let Some(path) = crate::support::smollm2_path() else {
        return;
    };
    let t = topo("sta-small");
    for pattern in ["dense", "2:4"] {
        let w = workload(&t, 2, PROMPT.len() as i64, 1, pattern);
        let weights = ModelWeights::decoder(LlamaWeights::from_gguf(&path, &w).unwrap());
        let tokens = engine_generation(&t, &w, &weights, &[PROMPT.to_vec()], 2);
        assert_eq!(tokens[0].len(), 3);
    }
}
