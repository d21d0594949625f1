//! The tokenisers of src/eval/tokenizer.rs against an independent implementation, Hugging
//! Face's `tokenizers` (Python, tests/py/tokenizer_reference.py): SmolLM2's byte-level BPE
//! built there from the GGUF's tables read by the `gguf` package, MiniLM's WordPiece from its
//! own tokenizer.json. Ids must agree exactly, string by string; decoding too. Byte-level
//! round trips are checked on seeded random UTF-8 text.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use stasim::eval::tokenizer::{ByteBpe, WordPiece, byte_to_char};

use crate::stanm::cli as stasim;
use crate::support::{SplitMix64, minilm_path, python_with, skipped, smollm2_path};

/// Texts both tokenisers are checked on: words, digits, punctuation, contractions, leading
/// and trailing spaces, newlines and tabs, accents, emoji, CJK, Greek and Cyrillic, odd
/// whitespace, control characters, code, special-token text, an empty and a 300-letter word,
/// 20,000 spaces (one piece of the byte-level pre-tokeniser) and the README.
fn texts() -> Vec<String> {
    let mut t: Vec<String> = [
        "The capital of France is",
        "Hello, world! 12345",
        "   leading spaces, and trailing   ",
        "line one\nline two\n\n\tTabbed\r\nend",
        "Café naïve façade — “quotes” déjà vu, Ångström",
        "emoji 🙂👍🏽 and 日本語のテキスト",
        "I'm sure they'll say it's 3.14159, isn't it? We've, you're, he'd",
        "x=1+2*3; if (a<b) { return a->c; } // 0x1F",
        "unaffable antidisestablishmentarianism",
        "non\u{a0}breaking\u{2003}em space\u{3000}ideographic",
        "Ελληνικά и русский текст",
        "\u{7}bell\u{b}vt\u{85}nel\u{200b}zero-width",
        "1,000,000 ½ ² ٣ 2026-12-02",
        "[MASK] and [CLS] inside <|im_start|>user<|im_end|>",
        "",
        " ",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    t.push("a".repeat(300));
    t.push(format!("{}x", " ".repeat(20_000)));
    // A long real text: this repository's README (about 90 kB of prose, tables and code).
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    t.push(std::fs::read_to_string(readme).unwrap());
    t
}

/// The reference's ids and decoded texts of `texts`.
fn reference(py: &str, model: &str, path: &Path, texts: &[String]) -> (Vec<Vec<u32>>, Vec<String>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/tokenizer_reference.py");
    let req = serde_json::json!({ "model": model, "path": path, "texts": texts });
    let mut child = Command::new(py)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(req.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "reference failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids = v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        })
        .collect();
    let decoded = v["decoded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    (ids, decoded)
}

/// MiniLM's tokenizer.json, next to the weights scripts/fetch-minilm.sh fetches.
fn minilm_tokenizer() -> Option<PathBuf> {
    let p = minilm_path()?.with_file_name("tokenizer.json");
    if p.exists() {
        Some(p)
    } else {
        skipped(&format!(
            "{} not found (run scripts/fetch-minilm.sh)",
            p.display()
        ));
        None
    }
}

#[test]
fn smollm2_ids_match_hugging_face_tokenizers() {
    let Some(gguf) = smollm2_path() else { return };
    let Some(py) = python_with("tokenizers, gguf", "tokenizers and gguf", "tokenizers gguf") else {
        return;
    };
    let bpe = ByteBpe::from_gguf_file(&gguf).unwrap();
    assert_eq!(bpe.pre_name, "smollm");
    let texts = texts();
    let (want, decoded) = reference(&py, "smollm2", &gguf, &texts);
    assert_eq!(want.len(), texts.len());
    for (i, t) in texts.iter().enumerate() {
        let ids = bpe.encode(t);
        assert_eq!(ids, want[i], "ids of {t:?}");
        assert_eq!(bpe.decode(&ids).unwrap(), decoded[i], "decoding of {t:?}");
    }
    // The reference's ids of the first text are the five tokens of these pieces.
    let pieces = ["The", "Ġcapital", "Ġof", "ĠFrance", "Ġis"];
    let got: Vec<&str> = bpe
        .encode(&texts[0])
        .iter()
        .map(|&id| bpe.token(id).unwrap())
        .collect();
    assert_eq!(got, pieces);
}

#[test]
fn minilm_ids_match_hugging_face_tokenizers() {
    let Some(path) = minilm_tokenizer() else {
        return;
    };
    let Some(py) = python_with("tokenizers", "tokenizers", "tokenizers") else {
        return;
    };
    let wp = WordPiece::from_file(&path).unwrap();
    let texts = texts();
    let (want, decoded) = reference(&py, "minilm", &path, &texts);
    for (i, t) in texts.iter().enumerate() {
        let ids = wp.encode(t);
        assert_eq!(ids, want[i], "ids of {t:?}");
        assert_eq!(wp.decode(&ids).unwrap(), decoded[i], "decoding of {t:?}");
    }
    // [CLS] = 101 and [SEP] = 102 in BERT's uncased vocabulary; the 300-letter word is
    // longer than max_input_chars_per_word (100), so it is one [UNK] (100).
    assert_eq!(wp.encode(&"a".repeat(300)), [101, 100, 102]);
    assert_eq!(wp.encode(""), [101, 102]);
}

/// Seeded random text: characters from ASCII, Latin-1, general scripts, CJK, emoji and the
/// supplementary planes, skipping the bytes `bpe` has no token for.
fn random_text(rng: &mut SplitMix64, missing: &[u8]) -> String {
    let ranges: [(u32, u32); 6] = [
        (0x20, 0x7e),
        (0x0, 0x1f),
        (0xa0, 0x2ff),
        (0x370, 0x2fff),
        (0x4e00, 0x9fff),
        (0x1f300, 0x10ffff),
    ];
    let mut s = String::new();
    while s.chars().count() < 1 + rng.below(40) {
        let (lo, hi) = *rng.pick(&ranges);
        let Some(c) = char::from_u32(lo + rng.below((hi - lo + 1) as usize) as u32) else {
            continue; // a surrogate
        };
        let mut buf = [0; 4];
        if c.encode_utf8(&mut buf)
            .bytes()
            .all(|b| !missing.contains(&b))
        {
            s.push(c);
        }
    }
    s
}

#[test]
fn smollm2_round_trips_random_utf8_exactly() {
    let Some(gguf) = smollm2_path() else { return };
    let bpe = ByteBpe::from_gguf_file(&gguf).unwrap();
    let missing = bpe.missing_bytes();
    // The 21 bytes SmolLM2 has no token for (tests/py: the vocabulary read by gguf): six
    // control characters, the lead bytes 0xf1 0xf2 and bytes that never occur in UTF-8.
    let mut want = vec![0x04, 0x06, 0x13, 0x14, 0x16, 0x1d, 0xc0, 0xc1, 0xf1, 0xf2];
    want.extend(0xf5..=0xff);
    assert_eq!(missing, want);
    let mut rng = SplitMix64(15);
    for _ in 0..300 {
        let t = random_text(&mut rng, &missing);
        let ids = bpe.encode(&t);
        assert!(ids.len() <= t.len(), "{t:?}: more tokens than bytes");
        assert_eq!(bpe.decode_bytes(&ids).unwrap(), t.as_bytes(), "{t:?}");
    }
    // A dropped byte is the only loss: "a\u{4}b" decodes to "ab".
    assert_eq!(bpe.decode(&bpe.encode("a\u{4}b")).unwrap(), "ab");
    assert!(bpe.decode(&[u32::MAX]).is_err());
}

#[test]
fn the_byte_table_is_gpt2s() {
    // GPT-2's encoder.py: printable bytes stand for themselves; the 68 others, in order,
    // for U+0100.. (so space, the 33rd of them, is U+0120 `Ġ` and newline U+010A `Ċ`).
    let t = byte_to_char();
    assert_eq!(t[b'A' as usize], 'A');
    assert_eq!(t[0xe9], 'é');
    assert_eq!(t[0], '\u{100}');
    assert_eq!(t[b'\n' as usize], 'Ċ');
    assert_eq!(t[b' ' as usize], 'Ġ');
    assert_eq!(t[0x7f], '\u{121}');
    assert_eq!(t[0xad], '\u{143}');
    let mut all: Vec<char> = t.to_vec();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 256);
}

#[test]
fn the_cli_prints_ids_and_refuses_bad_input() {
    let (code, _, err) = stasim(&[
        "tokenize",
        "--model",
        "minilm",
        "--file",
        "/nonexistent",
        "x",
    ]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("/nonexistent not found") && err.contains("hint"),
        "{err}"
    );
    let (code, _, _) = stasim(&["tokenize", "--model", "gpt5", "x"]);
    assert_eq!(code, Some(2));
    let Some(path) = minilm_tokenizer() else {
        return;
    };
    let p = path.to_str().unwrap();
    // "the cat" is two whole words of BERT's uncased vocabulary: 1996 and 4937.
    let (code, out, err) = stasim(&[
        "tokenize", "--model", "minilm", "--file", p, "--decode", "The cat",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "101 1996 4937 102\n\"the cat\"\n");
    // A GGUF is not a tokenizer.json: exit 2 naming the file.
    if let Some(gguf) = smollm2_path() {
        let g = gguf.to_str().unwrap();
        let (code, _, err) = stasim(&["tokenize", "--model", "minilm", "--file", g, "x"]);
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains(g), "{err}");
    }
}

#[test]
fn tokenizer_tests_say_skipped_when_models_or_python_are_absent() {
    for (name, env) in [
        (
            "tokenizer::smollm2_ids_match_hugging_face_tokenizers",
            ("STASIM_SMOLLM2", "/nonexistent/smollm2.gguf"),
        ),
        (
            "tokenizer::smollm2_round_trips_random_utf8_exactly",
            ("STASIM_SMOLLM2", "/nonexistent/smollm2.gguf"),
        ),
        (
            "tokenizer::minilm_ids_match_hugging_face_tokenizers",
            ("STASIM_MINILM", "/nonexistent/model.safetensors"),
        ),
        (
            "tokenizer::minilm_ids_match_hugging_face_tokenizers",
            ("STASIM_PYTHON", "/nonexistent/python3"),
        ),
    ] {
        crate::skips::assert_skips(name, &[env], "/nonexistent/");
    }
}
