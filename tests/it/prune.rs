//! Pruning checkpoints: first principles on small seeded checkpoints with the real tensor
//! names, and the real MiniLM-L6 file when it has been fetched (scripts/fetch-minilm.sh).

use std::path::{Path, PathBuf};

use crate::support::{CkptShape, bert_checkpoint, encode, tmp_dir, values};
use safetensors::Dtype;
use safetensors::{serialize_to_file, tensor::TensorView};
use stasim::workload::Pattern;
use stasim::workload::prune::{Mask, prune_family, unpack};
use stasim::workload::stanm::{Scheme, prune_checkpoint, verify};

/// A 2-layer BERT-style checkpoint: hidden 24, FFN 40 (K = 40 for ffn2: not a multiple of 16).
fn checkpoint(dir: &Path, dtype: Dtype) -> PathBuf {
    bert_checkpoint(
        dir,
        dtype,
        &CkptShape {
            d: 24,
            f: 40,
            layers: 2,
            heads: None,
            complete: false,
        },
    )
}

fn pat(s: &str) -> Pattern {
    Pattern::parse(s).unwrap()
}

fn family() -> Scheme {
    Scheme::Family(vec![pat("4:8"), pat("2:8"), pat("1:8")])
}

#[test]
fn every_group_keeps_at_most_n_and_family_masks_are_nested() {
    let w = values(7 * 21, 3); // 7 rows, K = 21: a short last group of 5
    let masks: Vec<Mask> = prune_family(&w, 7, 21, &[pat("4:8"), pat("2:8"), pat("1:8")]);
    for m in &masks {
        for (i, g) in m.kept.iter().enumerate() {
            let len = 8.min(21 - (i % 3) * 8);
            assert!(
                g.len() == (m.pattern.n as usize).min(len),
                "group {i} of {}",
                m.pattern
            );
        }
    }
    for r in 0..7 {
        for c in 0..21 {
            if masks[2].keeps(r, c) {
                assert!(masks[1].keeps(r, c), "1:8 keeps ({r},{c}) but 2:8 does not");
            }
            if masks[1].keeps(r, c) {
                assert!(masks[0].keeps(r, c), "2:8 keeps ({r},{c}) but 4:8 does not");
            }
        }
    }
}

#[test]
fn sizes_follow_the_formula_and_round_trips_are_bit_exact() {
    for dtype in [Dtype::F32, Dtype::F16, Dtype::BF16] {
        let dir = tmp_dir("prune", &format!("rt-{dtype:?}"));
        let src = checkpoint(&dir, dtype);
        for (scheme, name) in [
            (
                Scheme::Patterns(stasim::workload::Patterns::uniform(pat("2:4"))),
                "24",
            ),
            (family(), "fam"),
        ] {
            let out = dir.join(format!("{name}.stanm"));
            let r = prune_checkpoint(&src, &scheme, &out, 1).unwrap();
            assert_eq!(r.tensors.len(), 2 * 6);
            for t in &r.tensors {
                let [rows, k] = t.shape;
                for m in &t.members {
                    let p = pat(&m.pattern);
                    // STA.md: ceil(K/M) * N * Nout * (b + ceil(log2 M)) / 8, b = 16.
                    let bits = (k as u64).div_ceil(u64::from(p.m))
                        * u64::from(p.n)
                        * rows as u64
                        * (16 + p.index_bits());
                    assert_eq!(m.bytes, bits.div_ceil(8), "{} {}", t.name, m.pattern);
                    assert!(m.kept_magnitude > 0.0 && m.kept_magnitude <= 1.0);
                    assert!(
                        m.rel_error >= 0.0 && m.rel_error < 1.0,
                        "{} {}",
                        t.name,
                        m.rel_error
                    );
                }
                // A family: densest values + indices, plus ceil(log2 3) = 2 tag bits a slot.
                if t.members.len() == 3 {
                    let slots = (k as u64).div_ceil(8) * 4 * rows as u64;
                    let expect = slots * 2 + (slots * 3).div_ceil(8) + (slots * 2).div_ceil(8);
                    assert_eq!(t.family_bytes, expect, "{}", t.name);
                    let separate: u64 = t.members.iter().map(|m| m.bytes).sum();
                    assert!(t.family_bytes < separate);
                }
            }
            let v = verify(&out, Some(&src)).unwrap();
            assert_eq!(v.bit_exact_against_source, Some(true), "{dtype:?} {name}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn unpacked_members_keep_at_most_n_of_each_group() {
    let dir = tmp_dir("prune", "members");
    let src = checkpoint(&dir, Dtype::F32);
    let out = dir.join("fam.stanm");
    prune_checkpoint(&src, &family(), &out, 1).unwrap();
    // Decode through the public format reader and count non-zeros per group.
    let v = verify(&out, None).unwrap();
    assert_eq!(v.members, 2 * 6 * 3);
    let w = values(24 * 40, 99);
    let masks = prune_family(&w, 24, 40, &[pat("4:8"), pat("2:8"), pat("1:8")]);
    let packed = stasim::workload::prune::pack(&w, &masks);
    for (member, n) in [(0usize, 1usize), (1, 2), (2, 4)] {
        let got = unpack(&packed, 24, 40, pat("4:8"), 3, member).unwrap();
        for r in 0..24 {
            for g in 0..5 {
                let nz = (0..8).filter(|o| got[r * 40 + g * 8 + o] != 0.0).count();
                assert!(nz <= n, "member {member}: row {r} group {g} keeps {nz}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_checkpoints_are_clear_errors_naming_file_and_tensor() {
    let dir = tmp_dir("prune", "bad");
    let src = checkpoint(&dir, Dtype::F32);
    let bytes = std::fs::read(&src).unwrap();
    let trunc = dir.join("trunc.safetensors");
    std::fs::write(&trunc, &bytes[..bytes.len() / 2]).unwrap();
    let scheme = Scheme::Patterns(stasim::workload::Patterns::uniform(pat("2:4")));
    let e = prune_checkpoint(&trunc, &scheme, &dir.join("x.stanm"), 1)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("trunc.safetensors") && e.contains("not a valid safetensors file"),
        "{e}"
    );
    assert!(!dir.join("x.stanm").exists() && !dir.join("x.stanm.partial").exists());
    // A linear weight with an integer dtype, and one that is not 2-D.
    let ints: Vec<u8> = (0..24 * 24).flat_map(|i: i32| i.to_le_bytes()).collect();
    let flat = encode(&values(24, 1), Dtype::F32);
    let bad = dir.join("bad.safetensors");
    serialize_to_file(
        vec![
            (
                "encoder.layer.0.attention.self.query.weight".to_string(),
                TensorView::new(Dtype::I32, vec![24, 24], &ints).unwrap(),
            ),
            (
                "encoder.layer.0.output.dense.weight".to_string(),
                TensorView::new(Dtype::F32, vec![24], &flat).unwrap(),
            ),
        ],
        None,
        &bad,
    )
    .unwrap();
    let e = prune_checkpoint(&bad, &scheme, &dir.join("y.stanm"), 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.safetensors"), "{e}");
    assert!(e.contains("encoder.layer.0."), "{e}");
    // The CLI: exit code 2 for a truncated file and for N > M.
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_stasim"))
            .args(args)
            .output()
            .unwrap()
    };
    assert_eq!(
        cli(&["prune", trunc.to_str().unwrap()]).status.code(),
        Some(2)
    );
    assert_eq!(
        cli(&["prune", src.to_str().unwrap(), "--pattern", "5:4"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        cli(&["prune", src.to_str().unwrap(), "--pattern", "2:1"])
            .status
            .code(),
        Some(2)
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The real MiniLM-L6 checkpoint, when `scripts/fetch-minilm.sh` has fetched it (or
/// `STASIM_MINILM` points at it). Skipped, with a message, otherwise.
#[test]
fn the_real_minilm_checkpoint_prunes_and_round_trips() {
    let Some(path) = crate::support::minilm_path() else {
        return;
    };
    let dir = tmp_dir("prune", "minilm");
    let out = dir.join("minilm.stanm");
    let r = prune_checkpoint(&path, &family(), &out, 1).unwrap();
    assert_eq!(
        r.tensors.len(),
        6 * 6,
        "6 layers x (q, k, v, proj, ffn1, ffn2)"
    );
    let dense: u64 = r.tensors.iter().map(|t| t.dense_bytes).sum();
    assert_eq!(dense, 6 * 2 * (4 * 384 * 384 + 2 * 384 * 1536));
    let v = verify(&out, Some(&path)).unwrap();
    assert_eq!(v.bit_exact_against_source, Some(true));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_run_from_a_pruned_file_uses_its_patterns_and_byte_counts() {
    use stasim::run::{WorkloadArgs, resolve_workload, simulate};
    let dir = tmp_dir("prune", "run");
    let src = checkpoint(&dir, Dtype::F32);
    let out = dir.join("fam.stanm");
    let r = prune_checkpoint(&src, &family(), &out, 1).unwrap();
    let topo =
        stasim::topology::load(&stasim::topology::Source::read("sta-small").unwrap(), &[]).unwrap();
    for (member, j) in [("4:8", 0usize), ("2:8", 1), ("1:8", 2)] {
        let args = WorkloadArgs {
            checkpoint: Some(out.clone()),
            member: Some(member.into()),
            seq: Some(8),
            ..WorkloadArgs::default()
        };
        let w = resolve_workload(&topo, &args).unwrap();
        assert_eq!((w.model.hidden, w.model.ffn, w.model.layers), (24, 40, 2));
        assert!(
            w.ops()
                .iter()
                .filter(|o| o.k > 0 && o.name != "scores" && o.name != "pv")
                .all(|o| o.pattern == pat(member))
        );
        let rep = simulate(&topo, &w, None, None, None).unwrap().report;
        // Weight traffic is the pruned file's byte count for that member, every weight read once.
        let file_bytes: u64 = r.tensors.iter().map(|t| t.members[j].bytes).sum();
        assert_eq!(rep.weight_bytes_planned, file_bytes, "member {member}");
        assert!(rep.dram.bytes_read >= file_bytes);
    }
    let bad = WorkloadArgs {
        checkpoint: Some(out.clone()),
        member: Some("2:4".into()),
        ..WorkloadArgs::default()
    };
    let e = resolve_workload(&topo, &bad).unwrap_err();
    assert!(e.message.contains("has no member 2:4"), "{}", e.message);
    let _ = std::fs::remove_dir_all(dir);
}
