//! Decode steps of a Llama-family model against the arithmetic of the bytes they move: a
//! step at batch 1 is bound by streaming its weights, the KV cache and the lm_head, at the
//! bandwidth the DRAM model itself sustains on a sequential stream (measured here with
//! `stasim dram`, the trace replay); N:M shrinks the weight bytes, and so the step.

use std::process::Command;

use stasim::generate::{self, Generation};
use stasim::run::WorkloadArgs;
use stasim::topology::{self, Source};

/// SmolLM2-135M's shape (its Hugging Face config): hidden, q heads, kv heads, head size,
/// FFN, vocabulary.
const D: u64 = 576;
const H: u64 = 9;
const HKV: u64 = 3;
const DH: u64 = 64;
const F: u64 = 1536;
const V: u64 = 49152;

/// Layers simulated (the lm_head always runs): enough for the weights to matter.
const LAYERS: u64 = 8;

fn args(pattern: &str, batch: i64, context: Option<i64>) -> WorkloadArgs {
    WorkloadArgs {
        model: Some("smollm2-135m".into()),
        seq: Some(16),
        batch: Some(batch),
        layers: Some(LAYERS as i64),
        pattern: Some(pattern.into()),
        context,
        ..WorkloadArgs::default()
    }
}

/// One decode step at context `c`: its latency, us, and its byte ledger.
fn step(pattern: &str, c: i64, batch: i64) -> (f64, generate::Ledger) {
    let a = args(pattern, batch, Some(c));
    let r = crate::support::run_report("sta", a, &[]);
    (r.total_time_us, generate::ledger(&r.workload, &r))
}

/// Bytes a decode step must move at batch `b` with `keep` of every 4 weights kept (4:
/// dense) at context `c`, 16-bit values: weight values and indices (2 bits a kept value
/// under 2:4), the dense lm_head (the tied embedding), K and V of `c + 1` tokens read and
/// this token's written.
fn step_bytes(keep: u64, c: u64, b: u64) -> u64 {
    let params = (D * (H + 2 * HKV) * DH + H * DH * D + 3 * D * F) * LAYERS;
    let kept = params * keep / 4;
    let index_bits = if keep == 4 { 0 } else { 2 };
    let weights = kept * 2 + kept * index_bits / 8;
    let lm_head = D * V * 2;
    let kv = 2 * HKV * DH * 2 * ((c + 1) + 1) * b * LAYERS;
    weights + lm_head + kv
}

/// The sequential-read bandwidth of the reference design's DRAM, GB/s, from the replay.
fn streaming_gbps() -> f64 {
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

#[test]
fn a_decode_step_at_batch_1_streams_its_bytes_at_the_bandwidth_the_dram_sustains() {
    let gbps = streaming_gbps();
    for c in [128, 1000] {
        let (us, l) = step("2:4", c, 1);
        // The ledger's classes are the arithmetic's (KV write: one token's K and V).
        let bytes = step_bytes(2, c as u64, 1);
        assert_eq!(
            l.weight_values + l.weight_indices + l.lm_head + l.kv_read + l.kv_write,
            bytes
        );
        let expect_us = bytes as f64 / gbps / 1e3;
        let err = us / expect_us - 1.0;
        assert!(
            err.abs() < 0.05,
            "context {c}: {us:.1} us simulated, {expect_us:.1} us from bytes / {gbps:.2} GB/s ({:+.1} %)",
            100.0 * err
        );
    }
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
    let params = (D * (H + 2 * HKV) * DH + H * DH * D + 3 * D * F) * LAYERS;
    params * keep / 4 + D * V + 2 * H * DH * (c + 1) * LAYERS
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

#[test]
fn a_generation_steps_through_the_contexts_after_its_prompt() {
    let src = Source::read("sta").unwrap();
    let t = topology::load(&src, &[]).unwrap();
    let w = stasim::run::resolve_workload(&t, &args("2:4", 1, None)).unwrap();
    let g = Generation {
        generate: 2,
        threads: 2,
    };
    let r = generate::run(&t, &w, g, &|_| {}).unwrap();
    assert_eq!(r.kv_bytes_per_token_layer, 768);
    let contexts: Vec<u64> = r.steps.iter().map(|s| s.context).collect();
    assert_eq!(contexts, [16, 17]);
    // Each step is the decode step of its context run alone.
    for s in &r.steps {
        let (us, l) = step("2:4", s.context as i64, 1);
        assert_eq!((s.time_us, &s.ledger), (us, &l));
    }
    assert_eq!(r.ttft_ms, r.prefill.time_us / 1e3);
    let tpot = r.tpot.unwrap();
    assert_eq!(tpot.last_ms, r.steps[1].time_us / 1e3);
}

#[test]
fn an_encoder_refuses_to_generate() {
    let out = Command::new(env!("CARGO_BIN_EXE_stasim"))
        .args(["run", "--model", "bert-base", "--generate", "4"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
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
