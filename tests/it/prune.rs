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

/// Kept weights of one row of `k` inputs with `n:m`, counted independently of the pruner:
/// every full group keeps `n`, the short last group `min(n, its length)`.
fn kept_per_row(k: u64, n: u64, m: u64) -> u64 {
    k / m * n + (k % m).min(n)
}

/// Index bits for a group of `m`: the smallest `b` with `2^b >= m`.
fn bits_for(m: u64) -> u64 {
    (0..64).find(|&b| 1u64 << b >= m).unwrap()
}

#[test]
fn large_m_patterns_keep_the_independently_counted_weights() {
    // K = 24 (one short group) and K = 1100 (full groups of 256/300/512/1024 plus a short
    // one): before offsets were u32, a group length of 512 truncated to 8 bits kept nothing.
    let dir = tmp_dir("prune", "large-m");
    let src = bert_checkpoint(
        &dir,
        Dtype::F32,
        &CkptShape {
            d: 24,
            f: 1100,
            layers: 1,
            heads: None,
            complete: false,
        },
    );
    let schemes: Vec<Vec<Pattern>> = vec![
        vec![pat("1:256")],
        vec![pat("5:300")],
        vec![pat("3:512")],
        vec![pat("1:1024")],
        vec![pat("4:512"), pat("2:512"), pat("1:512")],
    ];
    for fam in schemes {
        let name = fam
            .iter()
            .map(|p| format!("{}of{}", p.n, p.m))
            .collect::<Vec<_>>()
            .join("-");
        let out = dir.join(format!("{name}.stanm"));
        let scheme = if fam.len() == 1 {
            Scheme::Patterns(stasim::workload::Patterns::uniform(fam[0]))
        } else {
            Scheme::Family(fam.clone())
        };
        let r = prune_checkpoint(&src, &scheme, &out, 1).unwrap();
        for t in &r.tensors {
            let [rows, k] = t.shape;
            let (rows, k64) = (rows as u64, k as u64);
            let m = u64::from(fam[0].m);
            let slots = k64.div_ceil(m) * u64::from(fam[0].n) * rows;
            let tag_bits = if fam.len() > 1 {
                bits_for(fam.len() as u64)
            } else {
                0
            };
            assert_eq!(
                t.family_bytes,
                slots * 2 + (slots * bits_for(m)).div_ceil(8) + (slots * tag_bits).div_ceil(8),
                "{name} {}: values, ceil(log2 M)-bit indices, tags",
                t.name
            );
            // Every member, decoded from the file, keeps exactly the counted weights.
            for (j, p) in fam.iter().enumerate() {
                let want = rows * kept_per_row(k64, u64::from(p.n), m);
                let member = stasim::workload::stanm::read_tensors(&out, Some(*p)).unwrap();
                let (_, _, stored) = member.iter().find(|(n, _, _)| *n == t.name).unwrap();
                let stasim::workload::stanm::StoredTensor::Pruned { slots, .. } = stored else {
                    panic!("{} is not pruned", t.name);
                };
                let kept = slots.iter().filter(|s| s.0 != 0.0).count() as u64;
                assert_eq!(kept, want, "{name} {} member {p}", t.name);
                assert!(t.members[j].kept_magnitude > 0.0, "{name} {p}");
                assert!(slots.iter().all(|s| (s.1 as u64) < m.min(k64)));
            }
        }
        let v = verify(&out, Some(&src)).unwrap();
        assert_eq!(v.bit_exact_against_source, Some(true), "{name}: {v:?}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `path` (an F32 safetensors file) rewritten with `edit` applied to tensor `name`'s values.
fn rewrite_tensor(path: &Path, name: &str, edit: impl FnOnce(&mut Vec<f32>)) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut owned: Vec<(String, Vec<usize>, Dtype, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec(), v.dtype(), v.data().to_vec()))
        .collect();
    let t = owned.iter_mut().find(|t| t.0 == name).unwrap();
    let mut v: Vec<f32> =
        t.3.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
    edit(&mut v);
    t.3 = encode(&v, Dtype::F32);
    let views: Vec<(String, TensorView<'_>)> = owned
        .iter()
        .map(|(n, s, d, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    serialize_to_file(views, None, path).unwrap();
}

fn two_four() -> Scheme {
    Scheme::Patterns(stasim::workload::Patterns::uniform(pat("2:4")))
}

fn cli(args: &[&str]) -> (Option<i32>, String) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_stasim"))
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    (o.status.code(), err)
}

#[test]
fn values_that_cannot_be_stored_are_refused_naming_tensor_and_index() {
    let dir = tmp_dir("prune", "nan");
    let q = "encoder.layer.1.attention.self.query.weight";
    for (value, want) in [
        (f32::NAN, "NaN"),
        (f32::INFINITY, "infinite"),
        (-1e5, "overflows f16"),
    ] {
        let src = checkpoint(&dir, Dtype::F32);
        rewrite_tensor(&src, q, |v| v[3 * 24 + 5] = value); // [3, 5] of a 24 x 24 weight
        let out = dir.join("x.stanm");
        std::fs::write(&out, "old").unwrap();
        let e = prune_checkpoint(&src, &two_four(), &out, 1)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(q) && e.contains("[3, 5]") && e.contains(want),
            "{value}: {e}"
        );
        // The failed prune left the old file and no temporary.
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "old");
        let (code, err) = cli(&[
            "prune",
            src.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, Some(2), "{err}");
    }
    // A NaN in a dense tensor (a LayerNorm) is refused too; 65504 (f16's largest) is kept.
    let src = checkpoint(&dir, Dtype::F32);
    rewrite_tensor(
        &src,
        "encoder.layer.0.attention.output.LayerNorm.weight",
        |v| v[2] = f32::NAN,
    );
    let e = prune_checkpoint(&src, &two_four(), &dir.join("y.stanm"), 1).unwrap_err();
    let e = e.to_string();
    assert!(
        e.contains("attention.output.LayerNorm.weight`") && e.contains("[2]") && e.contains("NaN"),
        "{e}"
    );
    let src = checkpoint(&dir, Dtype::F32);
    rewrite_tensor(&src, q, |v| v[0] = 65504.0);
    prune_checkpoint(&src, &two_four(), &dir.join("z.stanm"), 1).unwrap();
    let mut entries: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, ["model.safetensors", "x.stanm", "z.stanm"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn prune_refuses_to_overwrite_its_source() {
    let dir = tmp_dir("prune", "same");
    let src = checkpoint(&dir, Dtype::F32);
    let before = std::fs::read(&src).unwrap();
    std::os::unix::fs::symlink(&src, dir.join("link.stanm")).unwrap();
    std::fs::hard_link(&src, dir.join("hard.stanm")).unwrap();
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let through_dotdot = dir.join("sub/../model.safetensors");
    let relative_to = |p: &Path| p.to_str().unwrap().to_owned();
    for out in [
        src.clone(),
        dir.join("link.stanm"),
        dir.join("hard.stanm"),
        through_dotdot,
    ] {
        let e = prune_checkpoint(&src, &two_four(), &out, 1).unwrap_err();
        assert!(
            matches!(&e, stasim::workload::stanm::PruneError::Input(m) if m.contains("is the source checkpoint")),
            "{}: {e}",
            out.display()
        );
        let (code, err) = cli(&["prune", &relative_to(&src), "--out", &relative_to(&out)]);
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains("is the source checkpoint"), "{err}");
        assert_eq!(std::fs::read(&src).unwrap(), before, "the source is intact");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn concurrent_prunes_to_one_path_never_mix() {
    // Each run writes its own temporary: both succeed and the file is wholly one of them.
    let dir = tmp_dir("prune", "race");
    let src = bert_checkpoint(
        &dir,
        Dtype::F32,
        &CkptShape {
            d: 64,
            f: 256,
            layers: 2,
            heads: None,
            complete: false,
        },
    );
    let out = dir.join("out.stanm");
    let alone = |p: &str, name: &str| {
        let o = dir.join(name);
        let s = Scheme::Patterns(stasim::workload::Patterns::uniform(pat(p)));
        prune_checkpoint(&src, &s, &o, 1).unwrap();
        std::fs::read(o).unwrap()
    };
    let (a, b) = (alone("2:4", "a.stanm"), alone("1:4", "b.stanm"));
    for round in 0..4 {
        let barrier = std::sync::Barrier::new(2);
        std::thread::scope(|s| {
            for p in ["2:4", "1:4"] {
                let (barrier, src, out) = (&barrier, &src, &out);
                s.spawn(move || {
                    let scheme = Scheme::Patterns(stasim::workload::Patterns::uniform(pat(p)));
                    barrier.wait();
                    prune_checkpoint(src, &scheme, out, 1).unwrap();
                });
            }
        });
        let got = std::fs::read(&out).unwrap();
        assert!(got == a || got == b, "round {round}: a mix of two runs");
        verify(&out, Some(&src)).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["a.stanm", "b.stanm", "model.safetensors", "out.stanm"],
            "no temporary is left"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn output_failures_name_the_file_and_exit_1() {
    let dir = tmp_dir("prune", "output");
    let src = checkpoint(&dir, Dtype::F32);
    let s = src.to_str().unwrap();
    // A folder that does not exist, or a folder as the file: refused up front (exit 2).
    let missing = dir.join("no/such/x.stanm");
    let (code, err) = cli(&["prune", s, "--out", missing.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("no/such/x.stanm") && err.contains("does not exist"),
        "{err}"
    );
    let (code, err) = cli(&["prune", s, "--out", dir.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("it is a folder"), "{err}");
    if !Path::new("/dev/full").exists() {
        eprintln!("skipped: /dev/full is not there, the disk-full cases did not run");
        return;
    }
    // A full disk while writing: an output error naming the file, exit 1.
    let (code, err) = cli(&["prune", s, "--out", "/dev/full"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("/dev/full"), "{err}");
    // stdout on a full disk: an output error naming stdout, not a panic.
    let out = dir.join("ok.stanm");
    for args in [
        vec!["prune", s, "--out", out.to_str().unwrap(), "--json"],
        vec!["prune", s, "--out", out.to_str().unwrap()],
        vec!["prune", "--verify", out.to_str().unwrap(), s, "--json"],
        vec!["prune", "--verify", out.to_str().unwrap()],
    ] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_stasim"))
            .args(&args)
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("`stdout`") && !err.contains("panicked"),
            "{err}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_bad_config_json_beside_the_checkpoint_is_an_error_naming_it() {
    let dir = tmp_dir("prune", "config");
    let src = checkpoint(&dir, Dtype::F32);
    let config = dir.join("config.json");
    for (text, want) in [
        ("{\"num_attention_heads\": 0}", "`num_attention_heads` = 0"),
        (
            "{\"num_attention_heads\": -2}",
            "`num_attention_heads` = -2",
        ),
        ("{\"num_attention_heads\": \"12\"}", "whole number"),
        ("{\"num_attention_heads\": 1e300}", "whole number"),
        (
            "{\"num_attention_heads\": 5}",
            "does not divide the hidden size 24",
        ),
        (
            "{\"hidden_size\": 768}",
            "`hidden_size` = 768, but the checkpoint's tensors have 24",
        ),
        ("{\"num_hidden_layers\": 12}", "`num_hidden_layers` = 12"),
        ("{\"num_attention_heads\": 2,", "not valid JSON"),
        ("[2]", "not a JSON object"),
    ] {
        std::fs::write(&config, text).unwrap();
        let e = prune_checkpoint(&src, &two_four(), &dir.join("x.stanm"), 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("config.json") && e.contains(want), "{text}: {e}");
        let (code, err) = cli(&["prune", src.to_str().unwrap(), "--out", "/dev/null"]);
        assert_eq!(code, Some(2), "{text}: {err}");
    }
    // Heads 0 reached a run before (a division by zero); a good config gives its heads.
    std::fs::write(&config, "{\"num_attention_heads\": 3, \"hidden_size\": 24}").unwrap();
    let out = dir.join("ok.stanm");
    prune_checkpoint(&src, &two_four(), &out, 1).unwrap();
    let (model, _) = stasim::workload::stanm::load_model(&out, None).unwrap();
    assert_eq!((model.hidden, model.heads), (24, 3));
    // Without a config.json: heads is the largest divisor of hidden up to hidden / 64.
    std::fs::remove_file(&config).unwrap();
    for (d, heads) in [(24usize, 1u64), (200, 2), (384, 6)] {
        let sub = dir.join(format!("d{d}"));
        std::fs::create_dir_all(&sub).unwrap();
        let s = bert_checkpoint(
            &sub,
            Dtype::F16,
            &CkptShape {
                d,
                f: 8,
                layers: 1,
                heads: None,
                complete: false,
            },
        );
        let o = sub.join("p.stanm");
        prune_checkpoint(&s, &two_four(), &o, 1).unwrap();
        let (model, _) = stasim::workload::stanm::load_model(&o, None).unwrap();
        assert_eq!(model.heads, heads, "d = {d}");
        assert_eq!(d as u64 % model.heads, 0);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn verify_against_another_source_is_a_mismatch_not_a_panic() {
    let dir = tmp_dir("prune", "verify");
    let shape = |f| CkptShape {
        d: 24,
        f,
        layers: 2,
        heads: None,
        complete: false,
    };
    let (da, db) = (dir.join("a"), dir.join("b"));
    std::fs::create_dir_all(&da).unwrap();
    std::fs::create_dir_all(&db).unwrap();
    let a = bert_checkpoint(&da, Dtype::F32, &shape(40));
    let b = bert_checkpoint(&db, Dtype::F32, &shape(48));
    let (pa, pb) = (dir.join("a.stanm"), dir.join("b.stanm"));
    prune_checkpoint(&a, &family(), &pa, 1).unwrap();
    prune_checkpoint(&b, &family(), &pb, 1).unwrap();
    // A larger file than its "source" sliced out of range before; a smaller one matched.
    for (file, source) in [(&pb, &a), (&pa, &b)] {
        let v = verify(file, Some(source)).unwrap();
        assert_eq!(v.bit_exact_against_source, Some(false));
        let m = v.mismatch.unwrap();
        assert!(
            m.contains("intermediate.dense.weight") && m.contains("in the source"),
            "{m}"
        );
        let (code, err) = cli(&[
            "prune",
            "--verify",
            file.to_str().unwrap(),
            source.to_str().unwrap(),
        ]);
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("does not match its source"), "{err}");
    }
    // One weight changed in the source: the member and element are named.
    let q = "encoder.layer.0.attention.self.query.weight";
    rewrite_tensor(&a, q, |v| v[7] = 5.0);
    let m = verify(&pa, Some(&a)).unwrap().mismatch.unwrap();
    assert!(m.contains(q) && m.contains("[0, 7]"), "{m}");
    // A dense tensor changed, and a source with one more tensor.
    let e = "embeddings.word_embeddings.weight";
    rewrite_tensor(&b, e, |v| v[0] += 1.0);
    let m = verify(&pb, Some(&b)).unwrap().mismatch.unwrap();
    assert!(m.contains(e) && m.contains("bytes differ"), "{m}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn zero_size_short_and_incomplete_weights_are_refused() {
    let dir = tmp_dir("prune", "zero");
    let make = |name: &str, d, f, layers| {
        let sub = dir.join(name);
        std::fs::create_dir_all(&sub).unwrap();
        bert_checkpoint(
            &sub,
            Dtype::F32,
            &CkptShape {
                d,
                f,
                layers,
                heads: None,
                complete: false,
            },
        )
    };
    let out = dir.join("x.stanm");
    let cases: Vec<(PathBuf, Scheme, &str)> = vec![
        (make("f0", 8, 0, 1), two_four(), "both at least 1"),
        (make("d0", 0, 8, 1), two_four(), "both at least 1"),
        // N > K: every row would be padded to N slots.
        (
            make("k3", 3, 8, 1),
            Scheme::Family(vec![pat("4:8")]),
            "fewer than the N = 4",
        ),
        (
            make("huge-n", 8, 8, 1),
            Scheme::Family(vec![pat("4000000000:4294967295")]),
            "fewer than the N = 4000000000",
        ),
        (
            make("fam", 8, 8, 1),
            Scheme::Family(vec![pat("1:8"), pat("2:8")]),
            "densest to sparsest",
        ),
    ];
    for (src, scheme, want) in &cases {
        let e = prune_checkpoint(src, scheme, &out, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{}: {e}", src.display());
        assert!(!out.exists());
    }
    // A layer without its FFN down weight.
    let src = make("missing", 8, 8, 2);
    rewrite_without(&src, "encoder.layer.1.output.dense.weight");
    let e = prune_checkpoint(&src, &two_four(), &out, 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("layer 1 has no `output.dense.weight`"), "{e}");
    let (code, err) = cli(&["prune", src.to_str().unwrap(), "--out", "/dev/null"]);
    assert_eq!(code, Some(2), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

/// `path` rewritten without tensor `name`.
fn rewrite_without(path: &Path, name: &str) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let views: Vec<(String, TensorView<'_>)> = st
        .tensors()
        .into_iter()
        .filter(|(n, _)| n != name)
        .collect();
    serialize_to_file(views, None, path).unwrap();
}
