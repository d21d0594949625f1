//! The `.stanm` format on disk: its layout and CRC-32 checked by an independent reading, and
//! every reader (timing run, functional weights, `--verify`, the CLI) refusing damaged,
//! truncated, old and inconsistent files with a clear error. Also the helpers to take a file
//! apart and put it back together with a fresh length and checksum (used by the mutation
//! tests too).

use std::path::{Path, PathBuf};

use safetensors::Dtype;
use serde_json::{Value, json};
use stasim::functional::weights::ModelWeights;
use stasim::run::{WorkloadArgs, resolve_workload};
use stasim::workload::stanm::{Scheme, load_model, prune_checkpoint, read_tensors, verify};
use stasim::workload::{Pattern, Patterns};

use crate::support::{CkptShape, bert_checkpoint, tmp_dir};

/// The CRC-32 table of the IEEE polynomial (reflected, 0xEDB88320), as zlib and PNG use.
const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut b = 0;
        while b < 8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            b += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// CRC-32 (IEEE), written here independently of the crate stasim uses.
pub fn crc32(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!0u32, |c, &b| {
        CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8)
    })
}

/// A `.stanm` file taken apart: the header as JSON and the data section.
#[derive(Clone, Debug)]
pub struct Parts {
    /// The 8-byte magic.
    pub magic: Vec<u8>,
    /// The header.
    pub header: Value,
    /// The data section.
    pub data: Vec<u8>,
}

/// Takes a well-formed file apart, checking its layout on the way: magic, header length,
/// `data_bytes`, the file length, the CRC-32 of everything before the last four bytes.
pub fn split(bytes: &[u8]) -> Parts {
    assert!(bytes.len() >= 20);
    let h = u64::from_le_bytes(bytes[8..16].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[16..16 + h]).unwrap();
    let d = header["data_bytes"].as_u64().unwrap() as usize;
    assert_eq!(
        bytes.len(),
        16 + h + d + 4,
        "magic, length, header, data, CRC"
    );
    let body = &bytes[..bytes.len() - 4];
    let stored = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().unwrap());
    assert_eq!(
        stored,
        crc32(body),
        "the last 4 bytes are the CRC-32 of the rest"
    );
    Parts {
        magic: bytes[..8].to_vec(),
        header,
        data: bytes[16 + h..16 + h + d].to_vec(),
    }
}

/// Puts a file together: magic, the header's length, header, data, CRC-32 of all that.
pub fn join(p: &Parts) -> Vec<u8> {
    let json = serde_json::to_vec(&p.header).unwrap();
    let mut out = p.magic.clone();
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&p.data);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Writes `bytes` to a new file at `path`. Rewriting a file in place (`O_TRUNC`) makes ext4
/// flush it on close (its `auto_da_alloc`), a disk write per input: remove it first.
pub fn write_new(path: &Path, bytes: &[u8]) {
    let _ = std::fs::remove_file(path);
    std::fs::write(path, bytes).unwrap();
}

/// The blob keys of a header entry.
pub const BLOBS: [&str; 4] = ["values", "indices", "tags", "data"];

/// Removes tensor `i` of the header and its blobs from the data, moving later offsets down
/// and `data_bytes` with them: a well-formed file without that tensor. Does nothing (and
/// says so) when the entry's blobs are not where a well-formed file has them.
pub fn remove_tensor(p: &mut Parts, i: usize) -> bool {
    let t = &p.header["tensors"][i];
    let spans: Vec<(u64, u64)> = BLOBS
        .iter()
        .filter_map(|k| Some((t[k][0].as_u64()?, t[k][1].as_u64()?)))
        .collect();
    let start = spans.iter().map(|s| s.0).min().unwrap_or(u64::MAX);
    let len = spans.iter().try_fold(0u64, |a, s| a.checked_add(s.1));
    let d = p.header["data_bytes"].as_u64();
    let (Some(len), Some(d)) = (len, d) else {
        return false;
    };
    if start
        .checked_add(len)
        .is_none_or(|e| e > p.data.len() as u64)
        || len > d
    {
        return false;
    }
    p.header["tensors"].as_array_mut().unwrap().remove(i);
    p.data.drain(start as usize..(start + len) as usize);
    for e in p.header["tensors"].as_array_mut().unwrap() {
        for k in BLOBS {
            if let Some(o) = e[k][0].as_u64().filter(|&o| o >= start + len) {
                e[k][0] = json!(o - len);
            }
        }
    }
    p.header["data_bytes"] = json!(d - len);
    true
}

/// A small complete checkpoint (d = 8, 2 heads, f = 12, 2 layers) in `dir`.
pub fn small_checkpoint(dir: &Path, dtype: Dtype) -> PathBuf {
    bert_checkpoint(
        dir,
        dtype,
        &CkptShape {
            d: 8,
            f: 12,
            layers: 2,
            heads: Some(2),
            complete: true,
        },
    )
}

fn pat(s: &str) -> Pattern {
    Pattern::parse(s).unwrap()
}

/// `src` pruned 2:4 into `dir/NAME`.
pub fn pruned(src: &Path, dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    prune_checkpoint(
        src,
        &Scheme::Patterns(Patterns::uniform(pat("2:4"))),
        &out,
        1,
    )
    .unwrap();
    out
}

/// Runs the binary; returns (exit code, stdout, stderr).
pub fn cli(args: &[&str]) -> (Option<i32>, String, String) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_stasim"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Every reader refuses `path`, each with a message containing `want`.
fn refused_by_every_reader(path: &Path, want: &str) {
    let what = path.display().to_string();
    let e = load_model(path, None).unwrap_err();
    assert!(e.contains(&what) && e.contains(want), "load_model: {e}");
    let e = read_tensors(path, None).unwrap_err();
    assert!(e.contains(want), "read_tensors: {e}");
    let e = verify(path, None).unwrap_err();
    assert!(e.contains(want), "verify: {e}");
    let e = ModelWeights::from_stanm(path, None, 1).unwrap_err();
    assert!(e.contains(want), "from_stanm: {e}");
}

#[test]
fn the_file_is_magic_length_header_data_and_a_crc32_of_them() {
    let dir = tmp_dir("stanm", "layout");
    let src = small_checkpoint(&dir, Dtype::F32);
    let out = pruned(&src, &dir, "m.stanm");
    let bytes = std::fs::read(&out).unwrap();
    let parts = split(&bytes); // checks length and CRC independently
    assert_eq!(&parts.magic, b"STANM002");
    assert_eq!(parts.header["format"], "stanm-2");
    assert_eq!(
        parts.header["config"],
        json!({"hidden": 8, "heads": 2, "ffn": 12, "layers": 2})
    );
    // Taken apart and put back together, it is the same file to every reader.
    std::fs::create_dir_all(dir.join("again")).unwrap();
    let again = dir.join("again/m.stanm");
    std::fs::write(&again, join(&parts)).unwrap();
    assert_eq!(split(&std::fs::read(&again).unwrap()).header, parts.header);
    assert_eq!(
        load_model(&again, None).unwrap(),
        load_model(&out, None).unwrap()
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn truncated_and_damaged_files_are_refused_by_every_reader() {
    let dir = tmp_dir("stanm", "damage");
    let src = small_checkpoint(&dir, Dtype::F32);
    let out = pruned(&src, &dir, "m.stanm");
    let bytes = std::fs::read(&out).unwrap();
    let h = u64::from_le_bytes(bytes[8..16].try_into().unwrap()) as usize;
    let bad = dir.join("bad.stanm");
    // Truncated right after the header (it ran with exit 0 before), in the data, and by one
    // byte.
    for (cut, want) in [
        (16 + h, "truncated"),
        (16 + h + 7, "truncated"),
        (bytes.len() - 1, "truncated"),
        (10, "too short"),
    ] {
        write_new(&bad, &bytes[..cut]);
        refused_by_every_reader(&bad, want);
    }
    // One flipped byte after the magic: in the header length, the header (every 11th byte),
    // the data (every byte) or the CRC itself.
    let positions = (8..16 + h).step_by(11).chain(16 + h..bytes.len());
    for i in positions {
        let mut b = bytes.clone();
        b[i] ^= 0x10;
        write_new(&bad, &b);
        let e = load_model(&bad, None).unwrap_err();
        if i >= 16 + h && i < bytes.len() - 4 {
            assert!(e.contains("checksum mismatch"), "byte {i}: {e}");
        }
    }
    let mut b = bytes.clone();
    let mid = 16 + h + (bytes.len() - 20 - h) / 2;
    b[mid] ^= 1;
    write_new(&bad, &b);
    refused_by_every_reader(&bad, "checksum mismatch");
    // Through the binary: bad input, exit 2, naming the file; no panic.
    std::fs::write(&bad, &bytes[..16 + h]).unwrap();
    let (code, _, err) = cli(&["run", "sta-small", "--checkpoint", bad.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("bad.stanm") && err.contains("truncated"),
        "{err}"
    );
    let (code, _, err) = cli(&["prune", "--verify", bad.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn old_and_unknown_versions_and_other_files_are_clear_errors() {
    let dir = tmp_dir("stanm", "version");
    let src = small_checkpoint(&dir, Dtype::F32);
    let out = pruned(&src, &dir, "m.stanm");
    let good = split(&std::fs::read(&out).unwrap());
    let bad = dir.join("v.stanm");
    for (magic, want) in [
        (&b"STANM001"[..], "format version 1"),
        (&b"STANM003"[..], "format version 3"),
        (&b"STANMxyz"[..], "not a .stanm file"),
        (&b"GGUF\0\0\0\0"[..], "not a .stanm file"),
    ] {
        let mut p = good.clone();
        p.magic = magic.to_vec();
        write_new(&bad, &join(&p));
        refused_by_every_reader(&bad, want);
    }
    let mut p = good.clone();
    p.magic = b"STANM001".to_vec();
    write_new(&bad, &join(&p));
    assert!(load_model(&bad, None).unwrap_err().contains("re-prune"));
    // The header's own format name must agree.
    let mut p = good.clone();
    p.header["format"] = json!("stanm-1");
    write_new(&bad, &join(&p));
    refused_by_every_reader(&bad, "format `stanm-1`");
    // A safetensors file, a folder and a FIFO are not .stanm files.
    refused_by_every_reader(&src, "not a .stanm file");
    refused_by_every_reader(&dir, "not a regular file");
    let _ = std::fs::remove_dir_all(dir);
}

/// `good` with `edit` applied to its header, written to `path` with a fresh length and CRC.
fn with_header(good: &Parts, path: &Path, edit: impl FnOnce(&mut Value)) {
    let mut p = good.clone();
    edit(&mut p.header);
    write_new(path, &join(&p));
}

/// Index of tensor `name` in the header.
fn index_of(h: &Value, name: &str) -> usize {
    h["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .position(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

#[test]
fn headers_are_checked_against_the_data_and_the_config_against_the_tensors() {
    let dir = tmp_dir("stanm", "header");
    let src = small_checkpoint(&dir, Dtype::F32);
    let out = pruned(&src, &dir, "m.stanm");
    let good = split(&std::fs::read(&out).unwrap());
    let bad = dir.join("h.stanm");
    let q0 = index_of(&good.header, "encoder.layer.0.attention.self.query.weight");
    let ln = index_of(&good.header, "encoder.layer.0.output.LayerNorm.weight");
    let big = 1u64 << 40;
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        // Sizes that would have been allocated before anything was checked.
        (
            "2^64-1 layers",
            Box::new(|h| h["config"]["layers"] = json!(u64::MAX)),
            "config.layers = 18446744073709551615, but the file's 12 linear weights are of 2 layers",
        ),
        (
            "2^40 layers",
            Box::new(move |h| h["config"]["layers"] = json!(big)),
            "config.layers = 1099511627776, but the file's 12 linear weights are of 2 layers",
        ),
        (
            "an FFN of 2^40",
            Box::new(move |h| h["config"]["ffn"] = json!(big)),
            "ffn 1099511627776) needs [1099511627776, 8]",
        ),
        (
            "a weight claiming [2^40, 8]",
            Box::new(move |h| h["tensors"][q0]["shape"] = json!([big, 8])),
            "`values` is 64 bytes long, its shape and patterns need 8796093022208",
        ),
        (
            "a shape whose product overflows",
            Box::new(move |h| h["tensors"][q0]["shape"] = json!([u64::MAX, u64::MAX])),
            "more slots than can be counted",
        ),
        (
            "a dense tensor whose size overflows",
            Box::new(move |h| h["tensors"][ln]["shape"] = json!([1u64 << 62, 8])),
            "no size in whole bytes",
        ),
        // The config itself.
        (
            "no heads",
            Box::new(|h| h["config"]["heads"] = json!(0)),
            "config.heads = 0",
        ),
        (
            "heads not dividing hidden",
            Box::new(|h| h["config"]["heads"] = json!(3)),
            "config.heads = 3 does not divide config.hidden = 8",
        ),
        (
            "hidden 0",
            Box::new(|h| h["config"]["hidden"] = json!(0)),
            "config.hidden = 0",
        ),
        (
            "no config",
            Box::new(|h| {
                h.as_object_mut().unwrap().remove("config");
            }),
            "no model configuration",
        ),
        (
            "a weight in a layer past config.layers",
            Box::new(|h| h["config"]["layers"] = json!(1)),
            "is in layer 1, but config.layers = 1",
        ),
        // Offsets, lengths and patterns against the data.
        (
            "values past the end",
            Box::new(move |h| h["tensors"][q0]["values"][0] = json!(u64::MAX)),
            "starts at offset 18446744073709551615",
        ),
        (
            "a short values blob",
            Box::new(move |h| h["tensors"][q0]["values"][1] = json!(2)),
            "`values` is 2 bytes long",
        ),
        (
            "a data length that is not the file's",
            Box::new(|h| {
                let d = h["data_bytes"].as_u64().unwrap();
                h["data_bytes"] = json!(d + 1);
            }),
            "the file holds",
        ),
        (
            "a dense pattern",
            Box::new(move |h| h["tensors"][q0]["patterns"] = json!(["dense"])),
            "sparse N:M",
        ),
        (
            "N > M",
            Box::new(move |h| h["tensors"][q0]["patterns"] = json!(["5:4"])),
            "N = 5",
        ),
        (
            "a family of two M",
            Box::new(move |h| h["tensors"][q0]["patterns"] = json!(["2:4", "1:8"])),
            "share one M",
        ),
        (
            "another pattern than the data was written with",
            Box::new(move |h| h["tensors"][q0]["patterns"] = json!(["1:4"])),
            "its shape and patterns need",
        ),
        (
            "a zero-size weight",
            Box::new(move |h| h["tensors"][q0]["shape"] = json!([0, 8])),
            "both at least 1",
        ),
        (
            "an unknown dtype",
            Box::new(move |h| h["tensors"][ln]["dtype"] = json!("F33")),
            "dtype `F33`",
        ),
        (
            "a tensor twice",
            Box::new(move |h| {
                let t = h["tensors"][ln].clone();
                h["tensors"].as_array_mut().unwrap().push(t);
            }),
            "appears twice",
        ),
        (
            "a layer that is not the name's",
            Box::new(move |h| h["tensors"][q0]["layer"] = json!(1)),
            "not a linear weight of that layer",
        ),
        (
            "an unknown value type",
            Box::new(|h| h["values"] = json!("f32")),
            "values are `f32`",
        ),
    ];
    let topo =
        stasim::topology::load(&stasim::topology::Source::read("sta-small").unwrap(), &[]).unwrap();
    for (what, edit, want) in &cases {
        with_header(&good, &bad, edit);
        let e = load_model(&bad, None).expect_err(what);
        assert!(e.contains("h.stanm") && e.contains(want), "{what}: {e}");
        assert!(read_tensors(&bad, None).is_err(), "{what}");
        assert!(verify(&bad, None).is_err(), "{what}");
        let args = WorkloadArgs {
            checkpoint: Some(bad.clone()),
            seq: Some(4),
            ..WorkloadArgs::default()
        };
        let e = resolve_workload(&topo, &args).expect_err(what);
        assert!(e.message.contains(want), "{what}: {}", e.message);
    }
    // Through the binary: exit 2 for a few, never a panic.
    for (what, edit, _) in cases.iter().take(6) {
        with_header(&good, &bad, edit);
        let (code, _, err) = cli(&[
            "run",
            "sta-small",
            "--checkpoint",
            bad.to_str().unwrap(),
            "--seq",
            "4",
        ]);
        assert_eq!(code, Some(2), "{what}: {err}");
        assert!(!err.contains("panicked"), "{what}: {err}");
    }
    // A layer without one of its weights (a well-formed file otherwise).
    let mut p = good.clone();
    let f1 = index_of(&p.header, "encoder.layer.1.output.dense.weight");
    assert!(remove_tensor(&mut p, f1));
    write_new(&bad, &join(&p));
    let e = load_model(&bad, None).unwrap_err();
    assert!(e.contains("layer 1 has no `output.dense.weight`"), "{e}");
    // A dense tensor removed the same way still reads: the helper keeps files well-formed.
    let mut p = good.clone();
    assert!(remove_tensor(&mut p, ln));
    write_new(&bad, &join(&p));
    load_model(&bad, None).unwrap();
    assert!(read_tensors(&bad, None).is_ok());
    // The unedited file is fine (the checks are not merely refusing everything).
    load_model(&out, None).unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn stored_values_that_are_not_finite_are_refused_on_read() {
    // A file with a valid checksum whose stored f16 is NaN (no pruning writes one).
    let dir = tmp_dir("stanm", "nan");
    let src = small_checkpoint(&dir, Dtype::F32);
    let out = pruned(&src, &dir, "m.stanm");
    let mut p = split(&std::fs::read(&out).unwrap());
    let q0 = index_of(&p.header, "encoder.layer.0.attention.self.query.weight");
    let at = p.header["tensors"][q0]["values"][0].as_u64().unwrap() as usize;
    p.data[at..at + 2].copy_from_slice(&half::f16::NAN.to_le_bytes());
    let bad = dir.join("nan.stanm");
    write_new(&bad, &join(&p));
    load_model(&bad, None).unwrap(); // the timing run needs no values
    let e = read_tensors(&bad, None).unwrap_err();
    assert!(e.contains("query.weight") && e.contains("NaN"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------------------------------
// Decoder files (pruned from a GGUF).

/// The tiny Llama of the GGUF tests pruned 2:4 into `dir`.
fn tiny_decoder(dir: &Path, untied: bool) -> PathBuf {
    let (src, _) = crate::gguf::tiny_llama(dir, "tiny.gguf", untied);
    let out = dir.join(if untied { "untied.stanm" } else { "tied.stanm" });
    stasim::gguf::prune::prune_gguf(
        &src,
        &Scheme::Patterns(Patterns::uniform(pat("2:4"))),
        &out,
        1,
        None,
        &mut |_| {},
    )
    .unwrap();
    out
}

/// The timing reader and the tensor reader both refuse `path` with `want`.
fn refused_by_both(path: &Path, want: &str) {
    let e = load_model(path, None).unwrap_err();
    assert!(e.contains(want), "load_model: {e}");
    let e = read_tensors(path, None).unwrap_err();
    assert!(e.contains(want), "read_tensors: {e}");
}

#[test]
fn a_decoder_header_is_checked_for_its_seven_linears_and_its_tables() {
    let dir = tmp_dir("stanm", "decoder-header");
    let (d, h, hkv, dh, f, layers, _) = crate::gguf::TINY;
    let tied = tiny_decoder(&dir, false);
    let untied = tiny_decoder(&dir, true);
    // Both read back as decoders of the GGUF's shape.
    for path in [&tied, &untied] {
        let (m, per_layer) = load_model(path, None).unwrap();
        let dec = m.decoder.as_ref().unwrap();
        assert_eq!((m.hidden, m.heads, m.ffn, m.layers), (d, h, f, layers));
        assert_eq!((dec.kv_heads, dec.head_dim), (hkv, dh));
        assert!(m.causal);
        assert_eq!(
            per_layer,
            vec![Patterns::uniform(pat("2:4")); layers as usize]
        );
    }
    let good = split(&std::fs::read(&tied).unwrap());
    let bad = dir.join("bad.stanm");
    // A block without its K projection.
    let mut p = good.clone();
    let k1 = index_of(&p.header, "blk.1.attn_k.weight");
    assert!(remove_tensor(&mut p, k1));
    write_new(&bad, &join(&p));
    refused_by_both(&bad, "layer 1 has no `attn_k.weight`");
    // Key/value heads that do not divide the heads.
    with_header(&good, &bad, |h| {
        h["config"]["decoder"]["kv_heads"] = json!(3)
    });
    refused_by_both(&bad, "kv_heads = 3 does not divide config.heads = 2");
    // A head size other than the K projection's rows give.
    with_header(&good, &bad, |h| {
        h["config"]["decoder"]["head_dim"] = json!(2)
    });
    refused_by_both(&bad, "needs [4, 8]");
    // An untied lm_head that is not there, and one that is there but should not be.
    with_header(&good, &bad, |h| {
        h["config"]["decoder"]["tied_embeddings"] = json!(false)
    });
    refused_by_both(&bad, "the decoder has no `output.weight`");
    let good_untied = split(&std::fs::read(&untied).unwrap());
    with_header(&good_untied, &bad, |h| {
        h["config"]["decoder"]["tied_embeddings"] = json!(true)
    });
    refused_by_both(&bad, "`output.weight` is present");
    // A vocabulary the embedding does not have.
    with_header(&good, &bad, |h| h["config"]["decoder"]["vocab"] = json!(17));
    refused_by_both(
        &bad,
        "`token_embd.weight` is F16 [16, 8]; the decoder needs",
    );
    // An encoder's names in a decoder's file, and a decoder's names without its config.
    with_header(&good, &bad, |h| {
        h["config"].as_object_mut().unwrap().remove("decoder");
    });
    refused_by_both(&bad, "not a linear weight of that layer (`encoder.layer.0.");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_real_smollm2_gguf_prunes_to_2_of_4_with_the_published_counts_and_its_values() {
    let Some(gguf) = crate::support::smollm2_path() else {
        return;
    };
    let Some(path) = crate::support::smollm2_2of4() else {
        return;
    };
    // The published shape (HuggingFaceTB/SmolLM2-135M-Instruct config.json).
    let (d, h, hkv, dh, f, layers, vocab) = (576u64, 9u64, 3u64, 64u64, 1536u64, 30u64, 49152u64);
    let per_layer = d * h * dh + 2 * (d * hkv * dh) + h * dh * d + 3 * d * f;
    assert_eq!(layers * per_layer, 106_168_320);
    assert_eq!(vocab * d, 28_311_552);
    let p = split(&std::fs::read(&path).unwrap());
    let c = &p.header["config"];
    assert_eq!(
        [&c["hidden"], &c["heads"], &c["ffn"], &c["layers"]].map(|x| x.as_u64().unwrap()),
        [d, h, f, layers]
    );
    let dc = &c["decoder"];
    assert_eq!(
        [&dc["kv_heads"], &dc["head_dim"], &dc["vocab"]].map(|x| x.as_u64().unwrap()),
        [hkv, dh, vocab]
    );
    assert_eq!(dc["rope_theta"].as_f64(), Some(100_000.0));
    assert!((dc["rms_eps"].as_f64().unwrap() - 1e-5).abs() < 1e-10);
    assert_eq!(dc["tied_embeddings"], true);
    let elems = |e: &Value| -> u64 {
        e["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .product()
    };
    let tensors = p.header["tensors"].as_array().unwrap();
    let pruned: Vec<&Value> = tensors
        .iter()
        .filter(|e| e.get("layer").is_some())
        .collect();
    assert_eq!(pruned.len() as u64, 7 * layers);
    assert_eq!(pruned.iter().map(|e| elems(e)).sum::<u64>(), 106_168_320);
    for e in &pruned {
        assert_eq!(e["patterns"], json!(["2:4"]));
        // Half the weights kept, 2 bytes each.
        assert_eq!(e["values"][1].as_u64().unwrap(), elems(e) / 2 * 2);
    }
    let embd = &tensors[index_of(&p.header, "token_embd.weight")];
    assert_eq!((elems(embd), &embd["dtype"]), (28_311_552, &json!("F16")));
    assert!(tensors.iter().all(|e| e["name"] != "output.weight"), "tied");
    // Every group of 4 keeps 2, the two largest |w|, at the dequantised GGUF values rounded
    // to f16 (first and last block).
    let g = stasim::gguf::Gguf::open(&gguf).unwrap();
    let stored = stasim::workload::stanm::read_tensors_where(&path, None, |n| {
        n.starts_with("blk.0.") || n.starts_with("blk.29.")
    })
    .unwrap();
    let mut checked = 0;
    for (name, shape, t) in &stored.tensors {
        let stasim::workload::stanm::StoredTensor::Pruned { slots, .. } = t else {
            continue;
        };
        let (src_shape, src) = g.tensor_f32(name).unwrap();
        assert_eq!(&src_shape, shape);
        let k = shape[1];
        assert_eq!(slots.len(), shape[0] * k / 2, "{name}");
        for (gi, pair) in slots.chunks(2).enumerate() {
            let base = gi / (k / 4) * k + gi % (k / 4) * 4;
            let group = &src[base..base + 4];
            let min_kept = pair
                .iter()
                .map(|s| group[s.1 as usize].abs())
                .fold(f32::INFINITY, f32::min);
            assert_ne!(pair[0].1, pair[1].1, "{name}: two distinct positions");
            for (j, x) in group.iter().enumerate() {
                if !pair.iter().any(|s| s.1 as usize == j) {
                    assert!(
                        x.abs() <= min_kept,
                        "{name} group {gi}: a larger |w| dropped"
                    );
                }
            }
            for &(v, o) in pair {
                assert_eq!(v, half::f16::from_f32(group[o as usize]).to_f32(), "{name}");
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 14);
}

#[test]
fn a_pruned_smollm2_stanm_times_exactly_as_the_preset_with_its_pattern() {
    let Some(path) = crate::support::smollm2_2of4() else {
        return;
    };
    let t = stasim::topology::load(&stasim::topology::Source::read("sta").unwrap(), &[]).unwrap();
    // A decode step at context 128 and a short prefill, two layers each.
    for (context, seq) in [(Some(128), None), (None, Some(16))] {
        let ck = resolve_workload(
            &t,
            &WorkloadArgs {
                checkpoint: Some(path.clone()),
                layers: Some(2),
                context,
                seq,
                ..WorkloadArgs::default()
            },
        )
        .unwrap();
        let preset = resolve_workload(
            &t,
            &WorkloadArgs {
                model: Some("smollm2-135m".into()),
                pattern: Some("2:4".into()),
                layers: Some(2),
                context,
                seq,
                ..WorkloadArgs::default()
            },
        )
        .unwrap();
        assert_eq!(ck.phase, preset.phase);
        assert_eq!(ck.patterns_of(1), preset.patterns_of(1));
        let a = stasim::run::simulate(&t, &ck, None, None, None)
            .unwrap()
            .report;
        let b = stasim::run::simulate(&t, &preset, None, None, None)
            .unwrap()
            .report;
        assert_eq!(
            a.total_cycles, b.total_cycles,
            "context {context:?} seq {seq:?}"
        );
        assert_eq!(a.dram.bytes_read, b.dram.bytes_read);
        assert_eq!(a.dram.bytes_written, b.dram.bytes_written);
    }
}
