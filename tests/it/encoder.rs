//! The f32 encoder pass and sentence embedding (`src/eval/encoder.rs`) on the real MiniLM
//! against an independent float64 numpy implementation (tests/py/minilm_reference.py: the
//! safetensors read by hand, Hugging Face's `tokenizers`): the token ids equal, every
//! embedding component within 1e-4 and each cosine above 0.99999; for the dense checkpoint,
//! and for a `.stanm` family pruned from it (each member against numpy on a safetensors whose
//! linears the test pruned itself, by magnitude with inheritance, values rounded to f16).

use std::path::{Path, PathBuf};
use std::process::Command;

use stasim::eval::encoder::{Encoder, cosine};
use stasim::eval::tokenizer::WordPiece;
use stasim::workload::Pattern;
use stasim::workload::prune::{apply, prune_family};
use stasim::workload::stanm::{Scheme, prune_checkpoint};

/// Sentences of different lengths, punctuation, an apostrophe, an accent and a rare word.
const SENTENCES: [&str; 4] = [
    "A man is eating food.",
    "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer.",
    "Café crème, s'il vous plaît!",
    "Antidisestablishmentarianism",
];

/// numpy's token ids and embeddings of `SENTENCES` with the weights of `model`.
fn numpy(py: &str, model: &Path, minilm_dir: &Path) -> (Vec<Vec<u32>>, Vec<Vec<f64>>) {
    let o = Command::new(py)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/minilm_reference.py"))
        .arg("--model")
        .arg(model)
        .arg("--tokenizer")
        .arg(minilm_dir.join("tokenizer.json"))
        .arg("--config")
        .arg(minilm_dir.join("config.json"))
        .args(SENTENCES)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = |key: &str| -> Vec<Vec<f64>> {
        j[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                s.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect()
            })
            .collect()
    };
    // Token ids are small integers: exact in f64.
    let ids = rows("ids")
        .into_iter()
        .map(|r| r.into_iter().map(|v| v as u32).collect())
        .collect();
    let embs = rows("embeddings");
    (ids, embs)
}

/// Ours against numpy's: ids equal, components within 1e-4, cosines above 0.99999.
fn assert_matches(
    enc: &Encoder,
    tok: &WordPiece,
    theirs: &(Vec<Vec<u32>>, Vec<Vec<f64>>),
    what: &str,
) {
    let ids: Vec<Vec<u32>> = SENTENCES.iter().map(|s| tok.encode(s)).collect();
    assert_eq!(ids, theirs.0, "{what}: token ids");
    let ours = enc.sentence_embeddings(&ids).unwrap();
    for (i, (a, b)) in ours.iter().zip(&theirs.1).enumerate() {
        assert_eq!(a.len(), b.len());
        let diff = a
            .iter()
            .zip(b)
            .fold(0.0f64, |m, (x, y)| m.max((f64::from(*x) - y).abs()));
        let b32: Vec<f32> = b.iter().map(|&v| v as f32).collect();
        let cos = cosine(a, &b32);
        eprintln!("{what}, sentence {i}: max |stasim - numpy| = {diff:e}, cosine {cos}");
        assert!(
            diff <= 1e-4,
            "{what}, sentence {i}: component off by {diff}"
        );
        assert!(cos > 0.99999, "{what}, sentence {i}: cosine {cos}");
    }
}

/// MiniLM's safetensors and a Python with numpy and tokenizers (`None`, said skipped, without
/// either).
fn minilm_and_numpy() -> Option<(PathBuf, String)> {
    let model = crate::support::minilm_path()?;
    let py = crate::support::python_with(
        "numpy, tokenizers",
        "numpy and tokenizers",
        "numpy tokenizers",
    )?;
    Some((model, py))
}

#[test]
fn the_real_minilm_sentence_embeddings_match_numpy() {
    let Some((model, py)) = minilm_and_numpy() else {
        return;
    };
    let dir = model.parent().unwrap().to_path_buf();
    let theirs = numpy(&py, &model, &dir);
    let tok = WordPiece::from_file(&dir.join("tokenizer.json")).unwrap();
    let enc = Encoder::from_file(&model, None).unwrap();
    assert_matches(&enc, &tok, &theirs, "dense");
    // Batching does not change a bit: each sentence alone gives the same embedding.
    let ids: Vec<Vec<u32>> = SENTENCES.iter().map(|s| tok.encode(s)).collect();
    let all = enc.sentence_embeddings(&ids).unwrap();
    for (i, s) in ids.iter().enumerate() {
        let alone = enc.sentence_embeddings(std::slice::from_ref(s)).unwrap();
        assert_eq!(alone[0], all[i], "sentence {i} alone");
    }
}

#[test]
fn a_pruned_minilm_family_loads_each_member_as_numpy_computes_it() {
    let Some((model, py)) = minilm_and_numpy() else {
        return;
    };
    let dir = model.parent().unwrap().to_path_buf();
    let tmp = crate::support::tmp_dir("encoder", "family");
    let family: Vec<Pattern> = ["2:4", "1:4"]
        .iter()
        .map(|p| Pattern::parse(p).unwrap())
        .collect();
    let stanm = tmp.join("minilm.stanm");
    prune_checkpoint(&model, &Scheme::Family(family.clone()), &stanm, 1).unwrap();
    let tok = WordPiece::from_file(&dir.join("tokenizer.json")).unwrap();
    // The test's own pruning: every linear weight's members by magnitude (inherited), kept
    // values rounded to f16, written into a safetensors copy for numpy.
    let bytes = std::fs::read(&model).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for (j, p) in family.iter().enumerate() {
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>, safetensors::Dtype)> = Vec::new();
        for (name, view) in st.tensors() {
            let data = match stasim::workload::checkpoint::classify(&name) {
                Some(_) => {
                    let w: Vec<f32> = view
                        .data()
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                        .collect();
                    let (rows, k) = (view.shape()[0], view.shape()[1]);
                    let masks = prune_family(&w, rows, k, &family);
                    crate::support::encode(&apply(&w, &masks[j]), safetensors::Dtype::F32)
                }
                None => view.data().to_vec(),
            };
            tensors.push((name, view.shape().to_vec(), data, view.dtype()));
        }
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
            .iter()
            .map(|(n, s, b, dt)| {
                (
                    n.clone(),
                    safetensors::tensor::TensorView::new(*dt, s.clone(), b).unwrap(),
                )
            })
            .collect();
        let pruned = tmp.join(format!("pruned-{}of{}.safetensors", p.n, p.m));
        safetensors::serialize_to_file(views, None, &pruned).unwrap();
        let theirs = numpy(&py, &pruned, &dir);
        let enc = Encoder::from_file(&stanm, Some(*p)).unwrap();
        assert_matches(&enc, &tok, &theirs, &format!("member {p}"));
    }
    // A member the family does not have is an error naming it.
    let e = Encoder::from_file(&stanm, Some(Pattern::parse("2:8").unwrap()))
        .err()
        .unwrap();
    assert!(e.contains("2:8"), "{e}");
}

#[test]
fn an_encoder_file_that_is_not_one_is_an_error_not_a_panic() {
    let dir = crate::support::tmp_dir("encoder", "bad");
    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"not a checkpoint at all").unwrap();
    let e = Encoder::from_file(&junk, None).err().unwrap();
    assert!(e.contains("junk.safetensors"), "{e}");
    // A BERT checkpoint without embedding tables: an error naming the missing tensor.
    let shape = crate::support::CkptShape {
        d: 64,
        f: 128,
        layers: 1,
        heads: Some(4),
        complete: true,
    };
    let ckpt = crate::support::bert_checkpoint(&dir, safetensors::Dtype::F32, &shape);
    let e = Encoder::from_file(&ckpt, None).err().unwrap();
    assert!(e.contains("position_embeddings"), "{e}");
    let e = Encoder::from_file(&ckpt, Some(Pattern::parse("2:4").unwrap()))
        .err()
        .unwrap();
    assert!(e.contains("not a .stanm"), "{e}");
}

fn stasim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stasim"))
        .args(args)
        .output()
        .unwrap()
}

/// `stasim eval FILE --dense DENSE --sentences N --json ...`, which must succeed.
pub(crate) fn eval_json(file: &Path, dense: &Path, n: usize, more: &[&str]) -> serde_json::Value {
    let n = n.to_string();
    let mut args = vec![
        "eval",
        file.to_str().unwrap(),
        "--dense",
        dense.to_str().unwrap(),
        "--sentences",
        &n,
        "--json",
    ];
    args.extend(more);
    let o = stasim(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn eval_of_minilm_against_itself_is_cosine_one_and_a_pruned_one_is_below() {
    let Some(model) = crate::support::minilm_and_text() else {
        return;
    };
    let j = eval_json(&model, &model, 16, &[]);
    for key in ["mean_cosine", "min_cosine", "p10_cosine"] {
        assert_eq!(j[key].as_f64(), Some(1.0), "{key}: {j}");
    }
    assert_eq!(j["sentences"].as_u64(), Some(16));
    assert_eq!(j["patterns"], "dense,dense,dense,dense");
    // The tokens are those of the first 16 sentences of the rule, counted independently of
    // the CLI: the text's sentences encoded, 8 to 64 ids kept.
    let tok = WordPiece::from_file(&model.with_file_name("tokenizer.json")).unwrap();
    let t = stasim::eval::text::load(
        &stasim::eval::text::default_dir(),
        stasim::eval::text::Split::Evaluation,
    )
    .unwrap();
    let want: usize = stasim::eval::text::sentences(&t)
        .iter()
        .map(|s| tok.encode(s).len())
        .filter(|n| (8..=64).contains(n))
        .take(16)
        .sum();
    assert_eq!(j["tokens"].as_u64(), Some(want as u64));
    let dir = crate::support::tmp_dir("encoder", "eval");
    let fam = dir.join("fam.stanm");
    let scheme = Scheme::Family(vec![
        Pattern::parse("2:4").unwrap(),
        Pattern::parse("1:4").unwrap(),
    ]);
    prune_checkpoint(&model, &scheme, &fam, 1).unwrap();
    let two = eval_json(&fam, &model, 16, &[]);
    let one = eval_json(&fam, &model, 16, &["--member", "1:4"]);
    assert_eq!(two["patterns"], "2:4,2:4,2:4,2:4");
    assert_eq!(one["patterns"], "1:4,1:4,1:4,1:4");
    let (c2, c1) = (
        two["mean_cosine"].as_f64().unwrap(),
        one["mean_cosine"].as_f64().unwrap(),
    );
    eprintln!("MiniLM magnitude, 16 sentences: 2:4 mean cosine {c2}, 1:4 {c1}");
    assert!(c1 < c2 && c2 < 1.0, "1:4 {c1}, 2:4 {c2}");
    let (min, p10) = (
        two["min_cosine"].as_f64().unwrap(),
        two["p10_cosine"].as_f64().unwrap(),
    );
    assert!(min <= p10 && p10 <= c2, "{min} {p10} {c2}");
}

#[test]
fn bad_encoder_eval_arguments_are_exit_2_errors_naming_the_file_or_flag() {
    let Some(model) = crate::support::minilm_and_text() else {
        return;
    };
    let m = model.to_str().unwrap();
    let dir = crate::support::tmp_dir("encoder", "eval-bad");
    // MiniLM's first three layers only, without its config.json (so 6 heads are assumed):
    // another model, pruned.
    let bytes = std::fs::read(&model).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let keep: Vec<(String, safetensors::tensor::TensorView<'_>)> = st
        .tensors()
        .into_iter()
        .filter(|(n, _)| {
            !["3", "4", "5"]
                .iter()
                .any(|l| n.contains(&format!("layer.{l}.")))
        })
        .collect();
    let small = dir.join("small.safetensors");
    safetensors::serialize_to_file(keep, None, &small).unwrap();
    let other = dir.join("small.stanm");
    let two = Pattern::parse("2:4").unwrap();
    prune_checkpoint(
        &small,
        &Scheme::Patterns(stasim::workload::Patterns::uniform(two)),
        &other,
        1,
    )
    .unwrap();
    let o = other.to_str().unwrap();
    for (args, names) in [
        (
            vec!["eval", m, "--dense", m, "--sentences", "0"],
            "--sentences",
        ),
        (
            vec!["eval", m, "--dense", m, "--sentences", "100000"],
            "--sentences",
        ),
        (
            vec!["eval", m, "--dense", "/nonexistent/dense.safetensors"],
            "--dense",
        ),
        (
            vec!["eval", o, "--dense", m, "--sentences", "4"],
            "small.stanm",
        ),
        (
            vec!["eval", m, "--dense", m, "--member", "2:4"],
            "not a .stanm",
        ),
    ] {
        crate::support::assert_input_error(&stasim(&args), &args, names);
    }
}
