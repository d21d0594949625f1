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
    let ids = j["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect()
        })
        .collect();
    let embs = j["embeddings"]
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
        .collect();
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

#[test]
fn the_real_minilm_sentence_embeddings_match_numpy() {
    let Some(model) = crate::support::minilm_path() else {
        return;
    };
    let Some(py) = crate::support::python_with(
        "numpy, tokenizers",
        "numpy and tokenizers",
        "numpy tokenizers",
    ) else {
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
    let Some(model) = crate::support::minilm_path() else {
        return;
    };
    let Some(py) = crate::support::python_with(
        "numpy, tokenizers",
        "numpy and tokenizers",
        "numpy tokenizers",
    ) else {
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
