//! Calibrated pruning of the real SmolLM2-135M end to end (`stasim prune --method`, then
//! `stasim eval`): the activation-aware methods beat magnitude at 2:4 as the published
//! one-shot results say (Llama-2-7B 2:4: magnitude 54.6, Wanda 11.0, SparseGPT 10.2), the
//! same inputs give a byte-identical file, and bad arguments are exit-2 errors.
//!
//! The same for MiniLM (`stasim prune MINILM --method`, then `stasim eval` of the mean
//! cosine of its sentence embeddings to the dense model's), Wanda's first-layer masks against
//! the inputs' norms computed here, and the files repeated byte for byte.
//!
//! The SmolLM2 tests calibrate on 256 tokens (two windows of 128) and score 96 evaluation
//! tokens, so they take about a minute a method; the README's table uses the defaults (2048
//! calibration tokens, 1024 evaluation tokens). The MiniLM ones calibrate on sentences of at
//! most 512 tokens in all and score 64 held-out sentences: seconds a method.

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
        crate::support::assert_input_error(&stasim(&full), &args, flag);
        assert!(!out.exists(), "{args:?} wrote {o}");
    }
}

/// `stasim prune MINILM --pattern 2:4 --method M --calibration-tokens 512 [more]` into `out`.
fn prune_minilm(model: &Path, method: &str, out: &Path, more: &[&str]) -> Output {
    let mut args = vec![
        "prune",
        model.to_str().unwrap(),
        "--method",
        method,
        "--calibration-tokens",
        "512",
        "--out",
        out.to_str().unwrap(),
    ];
    if !more.contains(&"--family") {
        args.extend(["--pattern", "2:4"]);
    }
    args.extend(more);
    let o = stasim(&args);
    assert!(
        o.status.success(),
        "prune --method {method}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

#[test]
fn wanda_and_sparsegpt_beat_magnitude_at_2_4_on_the_real_minilm() {
    let Some(model) = crate::support::minilm_and_text() else {
        return;
    };
    let dir = crate::support::tmp_dir("calibrated", "minilm-methods");
    let mut cos = Vec::new();
    for method in ["magnitude", "wanda", "sparsegpt"] {
        let out = dir.join(format!("{method}.stanm"));
        prune_minilm(&model, method, &out, &[]);
        let j = crate::encoder::eval_json(&out, &model, 64, &[]);
        cos.push(j["mean_cosine"].as_f64().unwrap());
    }
    let [magnitude, wanda, sparsegpt] = cos[..] else {
        unreachable!()
    };
    eprintln!(
        "MiniLM 2:4, 64 held-out sentences, mean cosine to dense: magnitude {magnitude:.4}, \
         wanda {wanda:.4}, sparsegpt {sparsegpt:.4}"
    );
    // Measured with these settings: magnitude 0.642, Wanda 0.747, SparseGPT 0.799.
    assert!(wanda > magnitude, "wanda {wanda}, magnitude {magnitude}");
    assert!(
        sparsegpt > magnitude,
        "sparsegpt {sparsegpt}, magnitude {magnitude}"
    );
    assert!(sparsegpt < 1.0 && wanda < 1.0);
}

#[test]
fn a_calibrated_minilm_prune_repeated_is_byte_identical_and_magnitude_keeps_its_file() {
    let Some(model) = crate::support::minilm_and_text() else {
        return;
    };
    let dir = crate::support::tmp_dir("calibrated", "minilm-repeat");
    let (a, b) = (dir.join("a.stanm"), dir.join("b.stanm"));
    let fam = ["--family", "2:4,1:4"];
    let ra = prune_minilm(&model, "sparsegpt", &a, &fam);
    prune_minilm(&model, "sparsegpt", &b, &fam);
    assert!(
        std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
        "two prunes of the same inputs differ"
    );
    // The family's report has the sparser member's error pruned alone beside the inherited.
    let report = String::from_utf8_lossy(&ra.stdout);
    assert!(
        report.contains("pruned alone from the dense weights"),
        "{report}"
    );
    // Magnitude chooses by |w| alone: calibrated (the error on real activations) or not,
    // the same file.
    let (seeded, calibrated) = (dir.join("seeded.stanm"), dir.join("calibrated.stanm"));
    prune_minilm(&model, "magnitude", &seeded, &[]);
    prune_minilm(
        &model,
        "magnitude",
        &calibrated,
        &["--error-inputs", "calibration"],
    );
    assert!(std::fs::read(&seeded).unwrap() == std::fs::read(&calibrated).unwrap());
}

#[test]
fn wanda_on_minilm_keeps_by_weight_times_the_norm_of_the_real_first_layer_inputs() {
    use stasim::eval::tokenizer::WordPiece;
    use stasim::workload::stanm::{StoredTensor, read_tensors};
    let Some(model) = crate::support::minilm_and_text() else {
        return;
    };
    let dir = crate::support::tmp_dir("calibrated", "minilm-wanda");
    let out = dir.join("wanda.stanm");
    prune_minilm(&model, "wanda", &out, &[]);
    // Layer 0's Q, K and V see the embedding LayerNorm of the calibration sentences:
    // computed here in f64 from the safetensors, with the column norms Wanda weighs by.
    let tok = WordPiece::from_file(&model.with_file_name("tokenizer.json")).unwrap();
    let text = stasim::eval::text::load(
        &stasim::eval::text::default_dir(),
        stasim::eval::text::Split::Calibration,
    )
    .unwrap();
    let sentences =
        stasim::eval::calibrate::calibration_sentences(&text, |s| tok.encode(s), 512).unwrap();
    let bytes = std::fs::read(&model).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let get = |name: &str| -> Vec<f64> {
        st.tensor(name)
            .unwrap()
            .data()
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())))
            .collect()
    };
    let d = 384;
    let (word, pos, ty) = (
        get("embeddings.word_embeddings.weight"),
        get("embeddings.position_embeddings.weight"),
        get("embeddings.token_type_embeddings.weight"),
    );
    let (g, b) = (
        get("embeddings.LayerNorm.weight"),
        get("embeddings.LayerNorm.bias"),
    );
    let mut sq = vec![0.0f64; d];
    for s in &sentences {
        for (p, &t) in s.iter().enumerate() {
            let x: Vec<f64> = (0..d)
                .map(|j| word[t as usize * d + j] + ty[j] + pos[p * d + j])
                .collect();
            let mean = x.iter().sum::<f64>() / d as f64;
            let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d as f64;
            for j in 0..d {
                let y = (x[j] - mean) / (var + 1e-12).sqrt() * g[j] + b[j];
                sq[j] += y * y;
            }
        }
    }
    let stored = read_tensors(&out, None).unwrap();
    for part in ["query", "key", "value"] {
        let name = format!("encoder.layer.0.attention.self.{part}.weight");
        let w = get(&name);
        let slots = stored
            .iter()
            .find_map(|(n, _, t)| match t {
                StoredTensor::Pruned { slots, .. } if *n == name => Some(slots.clone()),
                _ => None,
            })
            .unwrap();
        // Each group of 4 inputs of a row keeps the 2 largest |w_j| ||X_j|| (2 slots).
        let mut differ = 0;
        for (gi, group) in slots.chunks_exact(2).enumerate() {
            let (r, c0) = (gi / (d / 4), gi % (d / 4) * 4);
            let mut order: Vec<usize> = (0..4).collect();
            let score = |o: usize| w[r * d + c0 + o].abs() * sq[c0 + o].sqrt();
            order.sort_by(|&x, &y| score(y).total_cmp(&score(x)).then(x.cmp(&y)));
            let mut want = order[..2].to_vec();
            want.sort_unstable();
            let mut got: Vec<usize> = group.iter().map(|s| s.1 as usize).collect();
            got.sort_unstable();
            if got != want {
                differ += 1;
            }
        }
        // f32 against f64 activations may swap a near-tie: at most a few of 36,864 groups.
        eprintln!("{name}: {differ} of {} groups differ", slots.len() / 2);
        assert!(differ <= 4, "{name}: {differ} groups keep other weights");
    }
}

#[test]
fn bad_minilm_calibration_arguments_are_exit_2_errors_naming_the_flag_or_file() {
    let Some(model) = crate::support::minilm_and_text() else {
        return;
    };
    let m = model.to_str().unwrap();
    let dir = crate::support::tmp_dir("calibrated", "minilm-bad");
    let out = dir.join("x.stanm");
    let o = out.to_str().unwrap();
    let pruned = dir.join("pruned.stanm");
    prune_minilm(&model, "magnitude", &pruned, &[]);
    let p = pruned.to_str().unwrap();
    for (args, names) in [
        (
            vec![
                "prune",
                m,
                "--out",
                o,
                "--method",
                "wanda",
                "--calibration-tokens",
                "63",
            ],
            "--calibration-tokens",
        ),
        (
            vec![
                "prune",
                m,
                "--out",
                o,
                "--method",
                "sparsegpt",
                "--error-inputs",
                "seeded",
            ],
            "--error-inputs",
        ),
        (
            vec!["prune", p, "--out", o, "--method", "wanda"],
            "pruned.stanm",
        ),
    ] {
        crate::support::assert_input_error(&stasim(&args), &args, names);
        assert!(!out.exists(), "{args:?} wrote {o}");
    }
}
