//! Functional runs: real values through the simulated STA against an f64 reference, on
//! several seeds and on shapes that are not multiples of the tile sizes or of M.

use safetensors::Dtype;
use stasim::functional::weights::ModelWeights;
use stasim::functional::{DEFAULT_TOLERANCE, FunctionalReport};
use stasim::report::Report;
use stasim::run::{FunctionalArgs, WorkloadArgs, data_plane, resolve_workload, simulate};
use stasim::topology::{self, Source, Topology};
use stasim::workload::Pattern;
use stasim::workload::prune::{apply, prune};
use stasim::workload::stanm::{Scheme, prune_checkpoint};

use crate::support::{CkptShape, bert_checkpoint, tmp_dir};

fn topo(name: &str) -> Topology {
    topology::load(&Source::read(name).unwrap(), &[]).unwrap()
}

/// A functional run; returns the report (with its functional part) and the same run's
/// report without values.
fn run_both(t: &Topology, args: &WorkloadArgs, seed: u64) -> (Report, Report) {
    let w = resolve_workload(t, args).unwrap();
    let f = FunctionalArgs {
        seed,
        tolerance: DEFAULT_TOLERANCE,
    };
    let plane = data_plane(&w, args, &f).unwrap();
    let with = simulate(t, &w, None, None, Some((&plane, DEFAULT_TOLERANCE)))
        .unwrap()
        .report;
    let without = simulate(t, &w, None, None, None).unwrap().report;
    (with, without)
}

/// Every tensor written, every tensor close to the reference, the output within tolerance.
fn assert_close(f: &FunctionalReport, what: &str) {
    assert!(f.passed, "{what}: {f:#?}");
    for t in &f.tensors {
        assert_eq!(t.non_finite, 0, "{what}: {} has unwritten values", t.name);
        // f16 unit roundoff is 2^-11 = 4.9e-4; a stored tensor is a few roundings away.
        assert!(
            t.rel_error < 4e-3,
            "{what}: {} rel error {}",
            t.name,
            t.rel_error
        );
    }
    assert!(f.output_rel_error <= f.tolerance);
}

/// Timing is the same with and without values: the reports differ only by `functional`.
fn assert_same_timing(mut with: Report, without: Report, what: &str) {
    assert!(with.functional.take().is_some());
    assert_eq!(
        serde_json::to_string(&with).unwrap(),
        serde_json::to_string(&without).unwrap(),
        "{what}: values changed the timing"
    );
}

#[test]
fn seeded_presets_match_the_reference_on_several_seeds_and_patterns() {
    let t = topo("sta-small");
    for (seed, pattern, seq) in [
        (1, "2:4", 16),
        (2, "1:8", 13),
        (3, "dense", 9),
        (4, "3:8", 21),
    ] {
        let args = WorkloadArgs {
            model: Some("minilm-l6".into()),
            layers: Some(2),
            seq: Some(seq),
            pattern: Some(pattern.into()),
            ..WorkloadArgs::default()
        };
        let what = format!("seed {seed}, {pattern}, s = {seq}");
        let (with, without) = run_both(&t, &args, seed);
        let f = with.functional.clone().unwrap();
        assert_eq!(f.seed, seed);
        assert_close(&f, &what);
        assert_same_timing(with, without, &what);
    }
}

#[test]
fn causal_attention_and_batches_match_the_reference() {
    let t = topo("sta-small");
    let args = WorkloadArgs {
        model: Some("gpt2-small".into()),
        layers: Some(1),
        seq: Some(11),
        batch: Some(2),
        pattern: Some("2:4".into()),
        ..WorkloadArgs::default()
    };
    let (with, without) = run_both(&t, &args, 5);
    assert_close(with.functional.as_ref().unwrap(), "gpt2 causal, batch 2");
    assert_same_timing(with, without, "gpt2");
}

#[test]
fn a_ragged_pruned_checkpoint_matches_the_reference_for_every_family_member() {
    // d = 36 (3 heads of 12), f = 70: K is not a multiple of 8 (36, 70) nor of 4 (70), and
    // neither d, f nor s = 13 is a multiple of the 4 x 4 tiles of sta-small.
    let dir = tmp_dir("func", "ragged");
    let src = bert_checkpoint(
        &dir,
        Dtype::F16,
        &CkptShape {
            d: 36,
            f: 70,
            layers: 2,
            heads: Some(3),
            complete: true,
        },
    );
    let out = dir.join("fam.stanm");
    let fam = ["4:8", "2:8", "1:8"].map(|p| Pattern::parse(p).unwrap());
    prune_checkpoint(&src, &Scheme::Family(fam.to_vec()), &out, 1).unwrap();
    let t = topo("sta-small");
    for member in ["4:8", "2:8", "1:8"] {
        let args = WorkloadArgs {
            checkpoint: Some(out.clone()),
            member: Some(member.into()),
            seq: Some(13),
            ..WorkloadArgs::default()
        };
        let (with, without) = run_both(&t, &args, 11);
        let f = with.functional.clone().unwrap();
        assert!(f.weights.ends_with("fam.stanm"));
        assert_eq!(f.tensors.len(), 2 * 6);
        assert_close(&f, member);
        assert_same_timing(with, without, member);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_index_multiplexers_compute_the_pruned_dense_product() {
    // Independent of the simulation: the stored slots, applied through the index muxes,
    // equal the product with the pruned dense matrix of `prune::apply` (K = 21: a short
    // last group).
    // K = 1100 with M of 300 and 512: offsets beyond a byte (they wrapped at 256 before).
    for (p, out, k) in [
        ("2:4", 5usize, 21usize),
        ("1:8", 5, 21),
        ("3:8", 5, 21),
        ("5:300", 3, 1100),
        ("3:512", 3, 1100),
    ] {
        let w: Vec<f32> = crate::support::values(out * k, 42);
        let pat = Pattern::parse(p).unwrap();
        let mask = prune(&w, out, k, pat, None);
        let dense = apply(&w, &mask);
        let lin = stasim::functional::weights::Linear {
            out,
            k,
            pattern: pat,
            slots: stasim::workload::prune::unpack_slots(
                &stasim::workload::prune::pack(&w, std::slice::from_ref(&mask)),
                out,
                k,
                pat,
                1,
                0,
                pat.n as usize,
            )
            .unwrap(),
            bias: vec![0.0; out],
        };
        lin.check(p).unwrap();
        let a: Vec<f32> = (0..k).map(|i| (i as f32 * 0.37).sin()).collect();
        for c in 0..out {
            let expect: f64 = (0..k)
                .map(|i| f64::from(dense[c * k + i]) * f64::from(a[i]))
                .sum();
            let got = f64::from(lin.mac(c, &a, 0..lin.k));
            assert!(
                (got - expect).abs() < 1e-5,
                "{p} column {c}: {got} vs {expect}"
            );
        }
        assert_eq!(
            lin.dense_f64(),
            dense.iter().map(|&x| f64::from(x)).collect::<Vec<_>>()
        );
    }
}

#[test]
fn wrong_weights_fail_the_check() {
    // The check can fail: a data plane whose weights differ from the reference's (one
    // index changed after the run) gives errors far above the tolerance.
    let t = topo("sta-small");
    let args = WorkloadArgs {
        model: Some("minilm-l6".into()),
        layers: Some(1),
        seq: Some(8),
        ..WorkloadArgs::default()
    };
    let w = resolve_workload(&t, &args).unwrap();
    let f = FunctionalArgs {
        seed: 1,
        tolerance: DEFAULT_TOLERANCE,
    };
    let plane = data_plane(&w, &args, &f).unwrap();
    simulate(&t, &w, None, None, Some((&plane, DEFAULT_TOLERANCE))).unwrap();
    let mut weights: ModelWeights = plane.lock().unwrap().weights().clone();
    for s in weights.layers[0].ffn2.slots.iter_mut() {
        s.1 = (s.1 + 1) % 4; // every index multiplexer selects the wrong activation
    }
    let good = plane.lock().unwrap().report(DEFAULT_TOLERANCE);
    assert!(good.passed);
    let swapped = plane
        .lock()
        .unwrap()
        .with_weights(weights)
        .report(DEFAULT_TOLERANCE);
    assert!(!swapped.passed, "{swapped:#?}");
    assert!(swapped.output_rel_error > 0.1);
}

#[test]
fn functional_cli_reports_and_exits_1_above_the_tolerance() {
    let bin = env!("CARGO_BIN_EXE_stasim");
    let base = [
        "run",
        "sta-small",
        "--model",
        "minilm-l6",
        "--layers",
        "1",
        "--seq",
        "8",
        "--functional",
    ];
    let ok = std::process::Command::new(bin).args(base).output().unwrap();
    assert_eq!(ok.status.code(), Some(0));
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(
        text.contains("functional check") && text.contains("PASSED"),
        "{text}"
    );
    let tight = std::process::Command::new(bin)
        .args(base)
        .args(["--tolerance", "1e-9"])
        .output()
        .unwrap();
    assert_eq!(tight.status.code(), Some(1));
    let err = String::from_utf8_lossy(&tight.stderr);
    assert!(err.contains("above the tolerance"), "{err}");
    // Bad input: a negative tolerance is refused before running.
    let neg = std::process::Command::new(bin)
        .args(base)
        .args(["--tolerance=-1"])
        .output()
        .unwrap();
    assert_eq!(
        neg.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&neg.stderr)
    );
}

#[test]
fn a_checkpoint_without_biases_or_layernorm_is_a_clear_error() {
    let dir = tmp_dir("func", "incomplete");
    let src = bert_checkpoint(
        &dir,
        Dtype::F32,
        &CkptShape {
            d: 24,
            f: 40,
            layers: 1,
            heads: Some(2),
            complete: false,
        },
    );
    let out = dir.join("p.stanm");
    prune_checkpoint(
        &src,
        &Scheme::Patterns(stasim::workload::Patterns::uniform(
            Pattern::parse("2:4").unwrap(),
        )),
        &out,
        1,
    )
    .unwrap();
    let t = topo("sta-small");
    let args = WorkloadArgs {
        checkpoint: Some(out.clone()),
        seq: Some(8),
        ..WorkloadArgs::default()
    };
    let w = resolve_workload(&t, &args).unwrap();
    let f = FunctionalArgs {
        seed: 1,
        tolerance: DEFAULT_TOLERANCE,
    };
    let Err(e) = data_plane(&w, &args, &f) else {
        panic!("a checkpoint without biases was accepted")
    };
    assert!(
        e.message.contains("p.stanm")
            && e.message.contains("attention.output.dense.bias` not found"),
        "{}",
        e.message
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_real_minilm_checkpoint_matches_the_reference() {
    let Some(path) = crate::support::minilm_path() else {
        return;
    };
    let dir = tmp_dir("func", "minilm");
    let out = dir.join("minilm-2-4.stanm");
    let scheme = Scheme::Patterns(stasim::workload::Patterns::uniform(
        Pattern::parse("2:4").unwrap(),
    ));
    prune_checkpoint(&path, &scheme, &out, 1).unwrap();
    let args = WorkloadArgs {
        checkpoint: Some(out.clone()),
        layers: Some(2),
        seq: Some(32),
        ..WorkloadArgs::default()
    };
    let (with, without) = run_both(&topo("sta"), &args, 3);
    assert_close(with.functional.as_ref().unwrap(), "MiniLM 2:4");
    assert_same_timing(with, without, "MiniLM");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn inconsistent_weights_are_errors_before_a_functional_run() {
    // Files with a valid checksum whose weights a functional run cannot use: a LayerNorm
    // shift of the wrong length (only the LayerNorm scale was checked before), and a
    // zero-size weight (a panic in the reference before).
    use crate::stanm::{join, small_checkpoint, split};
    use serde_json::json;
    let dir = tmp_dir("func", "inconsistent");
    let src = small_checkpoint(&dir, Dtype::F32);
    let out = crate::stanm::pruned(&src, &dir, "m.stanm");
    let good = split(&std::fs::read(&out).unwrap());
    let t = topo("sta-small");
    let args = WorkloadArgs {
        checkpoint: Some(out.clone()),
        seq: Some(4),
        ..WorkloadArgs::default()
    };
    let f = FunctionalArgs {
        seed: 1,
        tolerance: DEFAULT_TOLERANCE,
    };
    let w = resolve_workload(&t, &args).unwrap();
    assert!(data_plane(&w, &args, &f).is_ok(), "the unedited file runs");
    let index = |h: &serde_json::Value, name: &str| {
        h["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .position(|t| t["name"] == name)
            .unwrap()
    };
    let bad = dir.join("bad.stanm");
    // The header says a LayerNorm shift has 4 values (its blob shrinks with it).
    let mut p = good.clone();
    let beta = index(&p.header, "encoder.layer.0.output.LayerNorm.bias");
    let (o, l) = (
        p.header["tensors"][beta]["data"][0].as_u64().unwrap() as usize,
        p.header["tensors"][beta]["data"][1].as_u64().unwrap() as usize,
    );
    p.data.drain(o + 16..o + l);
    p.header["tensors"][beta]["shape"] = json!([4]);
    p.header["tensors"][beta]["data"][1] = json!(16);
    for e in p.header["tensors"].as_array_mut().unwrap() {
        for k in crate::stanm::BLOBS {
            if let Some(x) = e[k][0].as_u64().filter(|&x| x as usize > o) {
                e[k][0] = json!(x - (l as u64 - 16));
            }
        }
    }
    let d = p.header["data_bytes"].as_u64().unwrap();
    p.header["data_bytes"] = json!(d - (l as u64 - 16));
    std::fs::write(&bad, join(&p)).unwrap();
    let args = WorkloadArgs {
        checkpoint: Some(bad.clone()),
        seq: Some(4),
        ..WorkloadArgs::default()
    };
    let w = resolve_workload(&t, &args).unwrap(); // the timing run needs no LayerNorm
    let Err(e) = data_plane(&w, &args, &f) else {
        panic!("a LayerNorm of 4 values was accepted")
    };
    assert!(
        e.message
            .contains("LayerNorm.bias` is not a floating-point vector of the hidden size 8"),
        "{}",
        e.message
    );
    // A zero-size weight: refused when the file is read, by the functional run too.
    let mut p = good.clone();
    let q = index(&p.header, "encoder.layer.0.attention.self.query.weight");
    p.header["tensors"][q]["shape"] = json!([8, 0]);
    std::fs::write(&bad, join(&p)).unwrap();
    let e = ModelWeights::from_stanm(&bad, None, 1).unwrap_err();
    assert!(e.contains("both at least 1"), "{e}");
    let bin = env!("CARGO_BIN_EXE_stasim");
    let o = std::process::Command::new(bin)
        .args([
            "run",
            "sta-small",
            "--seq",
            "4",
            "--functional",
            "--checkpoint",
        ])
        .arg(&bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_pruned_smollm2_stanm_holds_the_ggufs_weights_and_generates_through_the_engine() {
    use stasim::functional::llama_weights::LlamaWeights;
    let Some(gguf) = crate::support::smollm2_path() else {
        return;
    };
    let Some(path) = crate::support::smollm2_2of4() else {
        return;
    };
    // The .stanm's weights (slots unpacked, Q and K rows un-permuted) are the GGUF's pruned
    // 2:4 by the GGUF loader, slot for slot; its embedding is the GGUF's rounded to f16.
    let t = topo("sta");
    let args = |checkpoint: bool| WorkloadArgs {
        checkpoint: checkpoint.then(|| path.clone()),
        model: (!checkpoint).then(|| "smollm2-135m".into()),
        pattern: (!checkpoint).then(|| "2:4".into()),
        layers: Some(2),
        seq: Some(4),
        ..WorkloadArgs::default()
    };
    let ours =
        LlamaWeights::from_stanm(&path, None, &resolve_workload(&t, &args(true)).unwrap()).unwrap();
    let theirs =
        LlamaWeights::from_gguf(&gguf, &resolve_workload(&t, &args(false)).unwrap()).unwrap();
    assert_eq!(ours.layers.len(), 2);
    for (l, (a, b)) in ours.layers.iter().zip(&theirs.layers).enumerate() {
        for (what, x, y) in [
            ("qkv", &a.qkv, &b.qkv),
            ("o_proj", &a.o_proj, &b.o_proj),
            ("gate", &a.gate, &b.gate),
            ("up", &a.up, &b.up),
            ("down", &a.down, &b.down),
        ] {
            assert_eq!(
                (x.out, x.k, x.pattern),
                (y.out, y.k, y.pattern),
                "{l} {what}"
            );
            assert!(x.slots == y.slots, "layer {l} {what}: slots differ");
            assert_eq!(x.bias, y.bias);
        }
        assert_eq!(a.attn_norm, b.attn_norm);
        assert_eq!(a.ffn_norm, b.ffn_norm);
    }
    assert_eq!(ours.final_norm, theirs.final_norm);
    assert!(ours.lm_head.is_none());
    assert!(
        ours.embedding
            .slots
            .iter()
            .zip(&theirs.embedding.slots)
            .all(|(x, y)| x.0 == half::f16::from_f32(y.0).to_f32()),
        "the embedding is the GGUF's rounded to f16"
    );
    // The CLI: prefill of 4 tokens and 2 decode steps with values, every run within the
    // tolerance, and the same cycles as the timing runs (values never change timing).
    let (code, out, err) = crate::stanm::cli(&[
        "run",
        "--checkpoint",
        path.to_str().unwrap(),
        "--layers",
        "2",
        "--prompt",
        "4",
        "--generate",
        "2",
        "--functional",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    let runs = j["functional"]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    let timing: Vec<u64> = std::iter::once(&j["generation"]["prefill"])
        .chain(j["generation"]["steps"].as_array().unwrap())
        .map(|s| s["cycles"].as_u64().unwrap())
        .collect();
    for (i, r) in runs.iter().enumerate() {
        let f = &r["functional"];
        assert_eq!(f["passed"], true, "{r}");
        assert!(f["output_rel_error"].as_f64().unwrap() <= DEFAULT_TOLERANCE);
        assert_eq!(r["context"].as_u64().unwrap(), [0, 4, 5][i]);
        assert_eq!(r["cycles"].as_u64().unwrap(), timing[i], "run {i}");
    }
    let tokens = j["functional"]["tokens"][0].as_array().unwrap();
    assert_eq!(tokens.len(), 3);
    assert!(tokens.iter().all(|x| x.as_u64().unwrap() < 49_152));
}

#[test]
fn functional_generation_is_refused_when_too_big_counting_the_lm_head() {
    // SmolLM2's 30 layers of weights are 106 M values and its embedding 28 M: over the
    // limit of 2^27 = 134 M only with the embedding counted.
    let (d, h, hkv, dh, f, layers, vocab) =
        (576u128, 9u128, 3u128, 64u128, 1536u128, 30u128, 49152u128);
    let weights = layers * ((h + 2 * hkv) * dh * d + d * h * dh + 3 * d * f) + vocab * d;
    assert!(weights > 1 << 27 && weights - vocab * d < 1 << 27);
    let (code, _, err) = crate::stanm::cli(&[
        "run",
        "sta-small",
        "--model",
        "smollm2-135m",
        "--prompt",
        "2",
        "--generate",
        "1",
        "--functional",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("more than the limit of 134217728"), "{err}");
}
