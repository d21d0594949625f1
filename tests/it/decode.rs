//! Decode steps of a decoder LLM (SmolLM2-135M, GPT-2-small) against the arithmetic of the
//! bytes they move: a step at batch 1 is bound by streaming its weights, the KV cache and
//! the lm_head, at the bandwidth the DRAM model itself sustains on a sequential stream
//! (measured here with `stasim dram`, the trace replay); N:M shrinks the weight bytes, and
//! so the step.

use std::process::Command;

use stasim::generate::{self, Generation};
use stasim::run::WorkloadArgs;
use stasim::topology::{self, Source};

/// A decoder's shape (its Hugging Face config) and the layers a test simulates.
struct Shape {
    model: &'static str,
    /// Hidden, q heads, kv heads, head size, FFN, vocabulary.
    d: u64,
    h: u64,
    hkv: u64,
    dh: u64,
    f: u64,
    v: u64,
    /// `d x f` matrices of the FFN: 3 for SwiGLU (gate, up, down), 2 for GELU.
    ffn_mats: u64,
    /// Layers simulated (the lm_head always runs): enough for the weights to matter.
    layers: u64,
}

/// SmolLM2-135M (`HuggingFaceTB/SmolLM2-135M-Instruct`).
const SMOLLM2: Shape = Shape {
    model: "smollm2-135m",
    d: 576,
    h: 9,
    hkv: 3,
    dh: 64,
    f: 1536,
    v: 49152,
    ffn_mats: 3,
    layers: 8,
};

/// GPT-2-small (`openai-community/gpt2`): multi-head attention, a GELU FFN, the lm_head
/// tied to its 50257 x 768 token embedding.
const GPT2: Shape = Shape {
    model: "gpt2-small",
    d: 768,
    h: 12,
    hkv: 12,
    dh: 64,
    f: 3072,
    v: 50257,
    ffn_mats: 2,
    layers: 3,
};

fn args_of(m: &Shape, pattern: &str, batch: i64, context: Option<i64>) -> WorkloadArgs {
    WorkloadArgs {
        model: Some(m.model.into()),
        seq: Some(16),
        batch: Some(batch),
        layers: Some(m.layers as i64),
        pattern: Some(pattern.into()),
        context,
        ..WorkloadArgs::default()
    }
}

/// One decode step of `m` at context `c`: its latency, us, and its byte ledger.
fn step_of(m: &Shape, pattern: &str, c: i64, batch: i64) -> (f64, generate::Ledger) {
    let r = crate::support::run_report("sta", args_of(m, pattern, batch, Some(c)), &[]);
    (r.total_time_us, generate::ledger(&r.workload, &r))
}

fn step(pattern: &str, c: i64, batch: i64) -> (f64, generate::Ledger) {
    step_of(&SMOLLM2, pattern, c, batch)
}

/// KV cache bytes of `m` a token a layer at 16 bits: K and V of every key/value head.
fn kv_token_layer_bytes(m: &Shape) -> u64 {
    2 * m.hkv * m.dh * 2
}

/// The linear weights of `m`'s simulated layers: qkv, proj and the FFN's matrices.
fn params(m: &Shape) -> u64 {
    (m.d * (m.h + 2 * m.hkv) * m.dh + m.h * m.dh * m.d + m.ffn_mats * m.d * m.f) * m.layers
}

/// Bytes a decode step of `m` must move at batch `b` with `keep` of every 4 weights kept
/// (4: dense) at context `c`, 16-bit values: weight values and indices (2 bits a kept value
/// under 2:4), the dense lm_head (the tied embedding), K and V of `c + 1` tokens read and
/// this token's written.
fn step_bytes_of(m: &Shape, keep: u64, c: u64, b: u64) -> u64 {
    let kept = params(m) * keep / 4;
    let index_bits = if keep == 4 { 0 } else { 2 };
    let weights = kept * 2 + kept * index_bits / 8;
    let lm_head = m.d * m.v * 2;
    let kv = kv_token_layer_bytes(m) * ((c + 1) + 1) * b * m.layers;
    weights + lm_head + kv
}

fn step_bytes(keep: u64, c: u64, b: u64) -> u64 {
    step_bytes_of(&SMOLLM2, keep, c, b)
}

/// The sequential-read bandwidth of the reference design's DRAM, GB/s, from the replay:
/// measured once for every test that asks (tests run in parallel and would share its folder).
fn streaming_gbps() -> f64 {
    static GBPS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *GBPS.get_or_init(measure_streaming_gbps)
}

fn measure_streaming_gbps() -> f64 {
    let dir = crate::support::tmp_dir("decode", "stream");
    let trace = dir.join("seq.trace");
    let bin = env!("CARGO_BIN_EXE_stasim");
    let gen_out = Command::new(bin)
        .args([
            "dram",
            "--gen",
            "sequential-reads",
            "--count",
            "200000",
            "--out",
        ])
        .arg(&trace)
        .output()
        .unwrap();
    assert!(gen_out.status.success(), "{gen_out:?}");
    let out = Command::new(bin)
        .args(["dram", "--json", "--trace"])
        .arg(&trace)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    j["bandwidth_gbps"].as_f64().unwrap()
}

/// `m`'s decode steps at batch 1, 2:4, contexts 128 and 1000: the ledger's classes are
/// the arithmetic's, and the latency is within 5 % of the bytes at the streaming bandwidth.
fn steps_stream_their_bytes(m: &Shape) {
    let gbps = streaming_gbps();
    for c in [128, 1000] {
        let (us, l) = step_of(m, "2:4", c, 1);
        // The ledger's classes are the arithmetic's (KV write: one token's K and V).
        let bytes = step_bytes_of(m, 2, c as u64, 1);
        assert_eq!(
            l.weight_values + l.weight_indices + l.lm_head + l.kv_read + l.kv_write,
            bytes,
            "{}",
            m.model
        );
        let expect_us = bytes as f64 / gbps / 1e3;
        let err = us / expect_us - 1.0;
        assert!(
            err.abs() < 0.05,
            "{} context {c}: {us:.1} us simulated, {expect_us:.1} us from bytes / {gbps:.2} GB/s ({:+.1} %)",
            m.model,
            100.0 * err
        );
    }
}

#[test]
fn a_decode_step_at_batch_1_streams_its_bytes_at_the_bandwidth_the_dram_sustains() {
    steps_stream_their_bytes(&SMOLLM2);
}

#[test]
fn a_gpt2_decode_step_at_batch_1_streams_its_bytes_at_the_bandwidth_the_dram_sustains() {
    steps_stream_their_bytes(&GPT2);
}

#[test]
fn a_gpt2_step_reads_and_writes_3072_kv_bytes_a_token_a_layer() {
    // 2 (K, V) x 12 heads x 64 x 2 bytes.
    assert_eq!(kv_token_layer_bytes(&GPT2), 3072);
    let (c, b) = (100, 2);
    let (_, l) = step_of(&GPT2, "dense", c, b);
    let per_token_layer = 3072 * b as u64 * GPT2.layers;
    assert_eq!(l.kv_write, per_token_layer, "{l:?}");
    assert_eq!(l.kv_read, per_token_layer * (c as u64 + 1), "{l:?}");
    // The lm_head streams once for the batch: the 50257 x 768 tied embedding.
    assert_eq!(l.lm_head, 50257 * 768 * 2);
}

#[test]
fn the_2_4_over_dense_step_time_follows_the_byte_ratio_at_context_128() {
    let (sparse, _) = step("2:4", 128, 1);
    let (dense, _) = step("dense", 128, 1);
    let time_ratio = sparse / dense;
    let byte_ratio = step_bytes(2, 128, 1) as f64 / step_bytes(4, 128, 1) as f64;
    assert!(
        (time_ratio / byte_ratio - 1.0).abs() < 0.03,
        "time ratio {time_ratio:.4}, byte ratio {byte_ratio:.4}"
    );
}

#[test]
fn the_n_m_speedup_falls_as_context_times_batch_grows() {
    // (context, batch) with context x batch growing: the KV cache, which N:M does not
    // shrink, takes a growing share of the step.
    let points = [(16, 1), (512, 1), (512, 4), (2048, 4)];
    let mut last = f64::INFINITY;
    for (c, b) in points {
        let speedup = step("dense", c, b).0 / step("2:4", c, b).0;
        assert!(
            speedup < last,
            "context {c} batch {b}: speedup {speedup:.4} after {last:.4}"
        );
        assert!(speedup > 1.0, "context {c} batch {b}: {speedup:.4}");
        last = speedup;
    }
}

/// MACs of one sequence's decode step at context `c` with `keep` of every 4 weights kept:
/// the kept linear weights, the dense lm_head, and attention (`QKᵀ` and `PV`: `2 h dh (c +
/// 1)` a layer).
fn step_macs(keep: u64, c: u64) -> u64 {
    let m = &SMOLLM2;
    params(m) * keep / 4 + m.d * m.v + 2 * m.h * m.dh * (c + 1) * m.layers
}

#[test]
fn a_batch_sweep_turns_compute_bound_at_the_knee_of_the_arithmetic() {
    // Arithmetic: the weights stream once per step whatever the batch, so the step costs
    // max(bytes / bandwidth, B x MACs / peak rate); the knee is where the two meet. Peak of
    // sta.yaml's PE array: 16 x 16 x 8 MACs a cycle at 200 MHz.
    let peak_macs_per_s = 16.0 * 16.0 * 8.0 * 200e6;
    let c = 16;
    let memory_us = step_bytes(2, c, 1) as f64 / streaming_gbps() / 1e3;
    let compute_us_per_seq = step_macs(2, c) as f64 / peak_macs_per_s * 1e6;
    let knee_arith = memory_us / compute_us_per_seq;
    // Simulated: the flat level at batch 1 against the compute-bound line through the two
    // largest batches (well past the knee).
    let (flat, _) = step("2:4", c as i64, 1);
    let (t1, _) = step("2:4", c as i64, 128);
    let (t2, _) = step("2:4", c as i64, 192);
    let slope = (t2 - t1) / 64.0;
    let knee = 128.0 - (t1 - flat) / slope;
    // Below the knee a step stays near its batch-1 time; far past it, time grows with B.
    let (below, _) = step("2:4", c as i64, 16);
    assert!(
        below < flat * 1.1,
        "batch 16: {below:.1} us against {flat:.1} us"
    );
    assert!(t2 > 1.4 * t1, "batch 192 {t2:.1} us, batch 128 {t1:.1} us");
    assert!(
        (knee / knee_arith - 1.0).abs() < 0.15,
        "knee at batch {knee:.1} simulated, {knee_arith:.1} from the arithmetic"
    );
}

/// Runs a generation of 2 steps after `m`'s 16-token prompt and checks it steps through
/// the contexts, each step the decode step of its context run alone; returns the report.
fn generation_steps_through_its_contexts(m: &Shape) -> generate::GenerationReport {
    let src = Source::read("sta").unwrap();
    let t = topology::load(&src, &[]).unwrap();
    let w = stasim::run::resolve_workload(&t, &args_of(m, "2:4", 1, None)).unwrap();
    let g = Generation {
        generate: 2,
        threads: 2,
    };
    let r = generate::run(&t, &w, g, &|_| {}).unwrap();
    assert_eq!(r.kv_bytes_per_token_layer, kv_token_layer_bytes(m));
    let contexts: Vec<u64> = r.steps.iter().map(|s| s.context).collect();
    assert_eq!(contexts, [16, 17]);
    // Each step is the decode step of its context run alone.
    for s in &r.steps {
        let (us, l) = step_of(m, "2:4", s.context as i64, 1);
        assert_eq!((s.time_us, &s.ledger), (us, &l));
    }
    assert_eq!(r.ttft_ms, r.prefill.time_us / 1e3);
    let tpot = r.tpot.as_ref().unwrap();
    assert_eq!(tpot.last_ms, r.steps[1].time_us / 1e3);
    r
}

#[test]
fn a_generation_steps_through_the_contexts_after_its_prompt() {
    let r = generation_steps_through_its_contexts(&SMOLLM2);
    assert_eq!(r.kv_bytes_per_token_layer, 768);
}

#[test]
fn a_gpt2_generation_prefill_ends_in_the_first_tokens_logits() {
    let r = generation_steps_through_its_contexts(&GPT2);
    assert_eq!(r.kv_bytes_per_token_layer, 3072);
    // TTFT includes the lm_head (the plain GPT-2 prefill run has none), and the prompt's
    // 16 tokens of K and V are written.
    let p = &r.prefill.ledger;
    assert_eq!(p.lm_head, 768 * 50257 * 2);
    assert_eq!(p.kv_write, 3072 * 16 * GPT2.layers);
    let plain = crate::support::run_report("sta", args_of(&GPT2, "2:4", 1, None), &[]);
    assert_eq!(generate::ledger(&plain.workload, &plain).lm_head, 0);
}

/// `stasim run` with `a`: its exit code and stderr.
fn stasim_run(a: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stasim"))
        .arg("run")
        .args(a)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn gpt2_runs_past_its_1024_positions_are_input_errors() {
    let gpt2 = ["--model", "gpt2-small", "--layers", "1"];
    // A step at context 1023 holds 1024 tokens: the limit, accepted.
    let (code, err) = stasim_run(&[&gpt2[..], &["--context", "1023", "--json"]].concat());
    assert_eq!(code, Some(0), "{err}");
    for extra in [
        &["--context", "1024"][..],
        &["--prompt", "1000", "--generate", "25"],
    ] {
        let (code, err) = stasim_run(&[&gpt2[..], extra].concat());
        assert_eq!(code, Some(2), "{extra:?}: {err}");
        assert!(err.contains("1024 learned positions"), "{extra:?}: {err}");
        assert!(err.contains("hint"), "{extra:?}: {err}");
    }
}

#[test]
fn an_encoder_refuses_to_generate() {
    let (code, err) = stasim_run(&["--model", "bert-base", "--generate", "4"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--generate needs a decoder"), "{err}");
    assert!(err.contains("smollm2-135m"), "{err}");
}

#[test]
fn a_generation_report_is_the_same_on_one_thread_and_on_two() {
    let src = Source::read("sta").unwrap();
    let t = topology::load(&src, &[]).unwrap();
    let w = stasim::run::resolve_workload(
        &t,
        &WorkloadArgs {
            model: Some("smollm2-135m".into()),
            seq: Some(8),
            layers: Some(1),
            ..WorkloadArgs::default()
        },
    )
    .unwrap();
    let run = |threads| {
        let g = Generation {
            generate: 3,
            threads,
        };
        serde_json::to_string(&generate::run(&t, &w, g, &|_| {}).unwrap()).unwrap()
    };
    assert_eq!(run(1), run(2));
}
