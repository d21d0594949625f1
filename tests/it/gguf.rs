//! The GGUF reader (`stasim::gguf`): small files written here (by a writer independent of the
//! reader) with every value type and every dequantisable tensor type, checked against
//! hand-computed values; malformed files (truncated, huge counts, bad magic, unknown types, a
//! seeded mutation fuzz) give errors with offsets and never panic; the real SmolLM2-135M GGUF
//! (scripts/fetch-smollm2.sh) has the published shapes, and its tensors dequantise bit for bit
//! as the `gguf` Python package does; the numpy reference forward pass (tests/py) runs and is
//! deterministic.

use std::path::{Path, PathBuf};
use std::process::Command;

use stasim::gguf::{Array, Gguf, GgufError, Value, ValueType};

use crate::support::{SplitMix64, assert_no_panics, tmp_dir};

// ---------------------------------------------------------------------------------------------
// A minimal GGUF writer (the format as documented in ggml's docs/gguf.md), for test files.

/// GGUF value type ids.
const T_U8: u32 = 0;
const T_I8: u32 = 1;
const T_U16: u32 = 2;
const T_I16: u32 = 3;
const T_U32: u32 = 4;
const T_I32: u32 = 5;
const T_F32: u32 = 6;
const T_BOOL: u32 = 7;
const T_STR: u32 = 8;
const T_ARRAY: u32 = 9;
const T_U64: u32 = 10;
const T_I64: u32 = 11;
const T_F64: u32 = 12;

/// ggml tensor type ids.
const G_F32: u32 = 0;
const G_F16: u32 = 1;
const G_Q4_0: u32 = 2;
const G_Q4_1: u32 = 3;
const G_Q8_0: u32 = 8;
const G_Q4_K: u32 = 12;
const G_BF16: u32 = 30;

/// A GGUF string: `u64` length, bytes.
fn gstr(s: &str) -> Vec<u8> {
    let mut b = (s.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(s.as_bytes());
    b
}

/// An array value: element type, count, the elements' bytes.
fn garray(elem: u32, count: u64, elems: &[u8]) -> Vec<u8> {
    let mut b = elem.to_le_bytes().to_vec();
    b.extend_from_slice(&count.to_le_bytes());
    b.extend_from_slice(elems);
    b
}

struct Writer {
    version: u32,
    alignment: u64,
    kvs: Vec<u8>,
    n_kv: u64,
    tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
}

impl Writer {
    fn new() -> Self {
        Writer {
            version: 3,
            alignment: 32,
            kvs: Vec::new(),
            n_kv: 0,
            tensors: Vec::new(),
        }
    }

    /// A key/value with the value's raw bytes.
    fn kv(&mut self, key: &str, ty: u32, value: &[u8]) -> &mut Self {
        self.kvs.extend(gstr(key));
        self.kvs.extend(ty.to_le_bytes());
        self.kvs.extend_from_slice(value);
        self.n_kv += 1;
        self
    }

    fn kv_u32(&mut self, key: &str, v: u32) -> &mut Self {
        self.kv(key, T_U32, &v.to_le_bytes())
    }

    fn kv_f32(&mut self, key: &str, v: f32) -> &mut Self {
        self.kv(key, T_F32, &v.to_le_bytes())
    }

    fn kv_str(&mut self, key: &str, v: &str) -> &mut Self {
        self.kv(key, T_STR, &gstr(v))
    }

    /// Sets `general.alignment` (a u32 key) and aligns the data with it.
    fn alignment(&mut self, a: u32) -> &mut Self {
        self.alignment = a.into();
        self.kv_u32("general.alignment", a)
    }

    fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, data: Vec<u8>) -> &mut Self {
        self.tensors.push((name.into(), dims.to_vec(), ty, data));
        self
    }

    fn pad(b: &mut Vec<u8>, align: u64) {
        while !(b.len() as u64).is_multiple_of(align) {
            b.push(0);
        }
    }

    /// The file's bytes and the absolute offset of each tensor's data.
    fn build(&self) -> (Vec<u8>, Vec<u64>) {
        let mut b = b"GGUF".to_vec();
        b.extend(self.version.to_le_bytes());
        b.extend((self.tensors.len() as u64).to_le_bytes());
        b.extend(self.n_kv.to_le_bytes());
        b.extend_from_slice(&self.kvs);
        let mut rel = 0u64;
        let mut rels = Vec::new();
        for (name, dims, ty, data) in &self.tensors {
            b.extend(gstr(name));
            b.extend((dims.len() as u32).to_le_bytes());
            for d in dims {
                b.extend(d.to_le_bytes());
            }
            b.extend(ty.to_le_bytes());
            b.extend(rel.to_le_bytes());
            rels.push(rel);
            rel = (rel + data.len() as u64).next_multiple_of(self.alignment);
        }
        if !self.tensors.is_empty() {
            Self::pad(&mut b, self.alignment);
        }
        let start = b.len() as u64;
        for (_, _, _, data) in &self.tensors {
            Self::pad(&mut b, self.alignment);
            b.extend_from_slice(data);
        }
        (b, rels.iter().map(|r| start + r).collect())
    }

    fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, self.build().0).unwrap();
        p
    }
}

// Hand-made blocks and their values, computed here from the ggml block layouts.

/// A Q8_0 block: f16 d = 0x3800 (0.5), q[i] = i - 16; element i = (i - 16) / 2.
fn q8_0_block() -> (Vec<u8>, Vec<f32>) {
    let mut b = vec![0x00, 0x38];
    b.extend((0..32).map(|i| (i - 16i32) as i8 as u8));
    (b, (0..32).map(|i| (i - 16) as f32 * 0.5).collect())
}

/// A Q4_0 block: f16 d = 0x4000 (2.0); byte j = j | (15 - j) << 4: element j (low nibble) is
/// (j - 8) * 2, element j + 16 (high nibble) is (15 - j - 8) * 2.
fn q4_0_block() -> (Vec<u8>, Vec<f32>) {
    let mut b = vec![0x00, 0x40];
    b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    let low = (0..16).map(|j| (j - 8) as f32 * 2.0);
    let high = (0..16).map(|j| (7 - j) as f32 * 2.0);
    (b, low.chain(high).collect())
}

/// A Q4_1 block: f16 d = 0x3400 (0.25), f16 m = 0xBC00 (-1.0); byte j = j | (15 - j) << 4:
/// element j is j / 4 - 1, element j + 16 is (15 - j) / 4 - 1.
fn q4_1_block() -> (Vec<u8>, Vec<f32>) {
    let mut b = vec![0x00, 0x34, 0x00, 0xBC];
    b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    let low = (0..16).map(|j| j as f32 * 0.25 - 1.0);
    let high = (0..16).map(|j| (15 - j) as f32 * 0.25 - 1.0);
    (b, low.chain(high).collect())
}

/// f16 bit patterns and their values: 1, -2, 0.5, 65504 (the largest), 2^-24 (the smallest
/// subnormal), -0.
fn f16_cases() -> (Vec<u8>, Vec<f32>) {
    let bits: [u16; 6] = [0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001, 0x8000];
    let vals = vec![1.0, -2.0, 0.5, 65504.0, 2f32.powi(-24), -0.0];
    (bits.iter().flat_map(|b| b.to_le_bytes()).collect(), vals)
}

/// bf16 bit patterns (the top half of an f32) and their values: 1, -3, 3.140625, 2^-126.
fn bf16_cases() -> (Vec<u8>, Vec<f32>) {
    let bits: [u16; 4] = [0x3F80, 0xC040, 0x4049, 0x0080];
    let vals = vec![1.0, -3.0, 3.140625, 2f32.powi(-126)];
    (bits.iter().flat_map(|b| b.to_le_bytes()).collect(), vals)
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A small valid file with metadata of several types and a tensor of each supported type.
fn small_file() -> Writer {
    let mut w = Writer::new();
    let (q8, _) = q8_0_block();
    let (q40, _) = q4_0_block();
    let (q41, _) = q4_1_block();
    let (h, _) = f16_cases();
    let (bh, _) = bf16_cases();
    let names: Vec<u8> = ["a", "bc", ""].iter().flat_map(|s| gstr(s)).collect();
    w.kv_str("general.architecture", "llama")
        .kv_u32("llama.block_count", 2)
        .kv_f32("llama.rope.freq_base", 10000.0)
        .kv("tokenizer.ggml.tokens", T_ARRAY, &garray(T_STR, 3, &names))
        .tensor(
            "t.f32",
            &[3, 2],
            G_F32,
            f32_bytes(&[1.0, 2.0, 3.0, -4.0, 5.5, 6.0]),
        )
        .tensor("t.f16", &[6], G_F16, h)
        .tensor("t.bf16", &[4], G_BF16, bh)
        .tensor("t.q8_0", &[32, 2], G_Q8_0, [q8.clone(), q8].concat())
        .tensor("t.q4_0", &[32], G_Q4_0, q40)
        .tensor("t.q4_1", &[64], G_Q4_1, [q41.clone(), q41].concat());
    w
}

fn open_err(path: &Path) -> GgufError {
    match Gguf::open(path) {
        Ok(_) => panic!("{} opened, expected an error", path.display()),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------------------------------
// Unit level: values.

#[test]
fn every_supported_tensor_type_dequantises_to_the_hand_computed_values() {
    let dir = tmp_dir("gguf", "types");
    let path = small_file().write(&dir, "small.gguf");
    let g = Gguf::open(&path).unwrap();
    let (_, q8) = q8_0_block();
    let (_, q40) = q4_0_block();
    let (_, q41) = q4_1_block();
    let cases: Vec<(&str, Vec<usize>, Vec<f32>)> = vec![
        ("t.f32", vec![2, 3], vec![1.0, 2.0, 3.0, -4.0, 5.5, 6.0]),
        ("t.f16", vec![6], f16_cases().1),
        ("t.bf16", vec![4], bf16_cases().1),
        ("t.q8_0", vec![2, 32], [q8.clone(), q8].concat()),
        ("t.q4_0", vec![32], q40),
        ("t.q4_1", vec![64], [q41.clone(), q41].concat()),
    ];
    for (name, shape, want) in cases {
        let (s, got) = g.tensor_f32(name).unwrap();
        assert_eq!(s, shape, "{name}");
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want), "{name}: {got:?} != {want:?}");
    }
    // Spot checks of the nibble order, spelled out: Q4_0 byte 0 is 0xF0 (low 0, high 15), so
    // element 0 is (0 - 8) * 2 = -16 and element 16 is (15 - 8) * 2 = 14.
    let (_, q4) = g.tensor_f32("t.q4_0").unwrap();
    assert_eq!(
        (q4[0], q4[1], q4[15], q4[16], q4[31]),
        (-16.0, -14.0, 14.0, 14.0, -16.0)
    );
}

#[test]
fn tensor_infos_give_gguf_order_dims_types_offsets_and_sizes() {
    let dir = tmp_dir("gguf", "infos");
    let w = small_file();
    let (bytes, offsets) = w.build();
    let path = dir.join("small.gguf");
    std::fs::write(&path, &bytes).unwrap();
    let g = Gguf::open(&path).unwrap();
    assert_eq!(g.version(), 3);
    assert_eq!(g.alignment(), 32);
    assert_eq!(g.file_bytes(), bytes.len() as u64);
    let names: Vec<&str> = g.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["t.f32", "t.f16", "t.bf16", "t.q8_0", "t.q4_0", "t.q4_1"]
    );
    // Sizes: 3*2*4, 6*2, 4*2, 2 blocks * 34, 18, 2 blocks * 20.
    let sizes: Vec<u64> = g.tensors().iter().map(|t| t.bytes).collect();
    assert_eq!(sizes, [24, 12, 8, 68, 18, 40]);
    let got: Vec<u64> = g.tensors().iter().map(|t| t.offset).collect();
    assert_eq!(got, offsets);
    assert_eq!(g.data_offset(), offsets[0]);
    assert!(g.data_offset().is_multiple_of(32));
    let t = g.tensor("t.f32").unwrap();
    assert_eq!(
        (t.dims.clone(), t.ty.name, t.shape()),
        (vec![3, 2], "F32", vec![2, 3])
    );
    assert!(g.tensor("nope").is_none());
    let e = g.tensor_f32("nope").unwrap_err();
    assert!(e.to_string().contains("no tensor `nope`"), "{e}");
}

#[test]
fn metadata_of_every_value_type_reads_back() {
    let dir = tmp_dir("gguf", "values");
    let mut w = Writer::new();
    let u32s: Vec<u8> = [7u32, 8, 9].iter().flat_map(|v| v.to_le_bytes()).collect();
    let strs: Vec<u8> = ["x", "yz"].iter().flat_map(|s| gstr(s)).collect();
    // An array of two arrays of u8: [[1, 2], []].
    let inner = [garray(T_U8, 2, &[1, 2]), garray(T_U8, 0, &[])].concat();
    w.kv("u8", T_U8, &[200])
        .kv("i8", T_I8, &[0x80])
        .kv("u16", T_U16, &60000u16.to_le_bytes())
        .kv("i16", T_I16, &(-300i16).to_le_bytes())
        .kv_u32("u32", 4_000_000_000)
        .kv("i32", T_I32, &(-5i32).to_le_bytes())
        .kv_f32("f32", 1e-5)
        .kv("bool", T_BOOL, &[1])
        .kv_str("str", "héllo")
        .kv("u64", T_U64, &u64::MAX.to_le_bytes())
        .kv("i64", T_I64, &i64::MIN.to_le_bytes())
        .kv("f64", T_F64, &0.1f64.to_le_bytes())
        .kv("arr.u32", T_ARRAY, &garray(T_U32, 3, &u32s))
        .kv("arr.str", T_ARRAY, &garray(T_STR, 2, &strs))
        .kv("arr.arr", T_ARRAY, &garray(T_ARRAY, 2, &inner))
        .alignment(64)
        .tensor("w", &[2], G_F32, f32_bytes(&[1.0, 2.0]));
    let g = Gguf::open(w.write(&dir, "values.gguf")).unwrap();
    assert_eq!(g.metadata("u8"), Some(&Value::U8(200)));
    assert_eq!(g.metadata("i8"), Some(&Value::I8(-128)));
    assert_eq!(g.metadata("u16"), Some(&Value::U16(60000)));
    assert_eq!(g.metadata("i16"), Some(&Value::I16(-300)));
    assert_eq!(g.get_u64("u32"), Some(4_000_000_000));
    assert_eq!(g.get_i64("i32"), Some(-5));
    assert_eq!(g.get_u64("i32"), None, "a negative int is not a u64");
    assert_eq!(g.get_f64("f32"), Some(f64::from(1e-5f32)));
    assert_eq!(g.get_bool("bool"), Some(true));
    assert_eq!(g.get_str("str"), Some("héllo"));
    assert_eq!(g.get_u64("u64"), Some(u64::MAX));
    assert_eq!(g.get_i64("i64"), Some(i64::MIN));
    assert_eq!(g.get_f64("f64"), Some(0.1));
    assert_eq!(
        g.metadata("arr.u32"),
        Some(&Value::Array(Array::U32(vec![7, 8, 9])))
    );
    assert_eq!(
        g.metadata("arr.u32").unwrap().as_u64_array(),
        Some(vec![7, 8, 9])
    );
    assert_eq!(g.get_str_array("arr.str"), Some(vec!["x", "yz"]));
    let nested = g.metadata("arr.arr").unwrap().as_array().unwrap();
    assert_eq!(
        nested,
        &Array::Array(vec![Array::U8(vec![1, 2]), Array::U8(vec![])])
    );
    assert_eq!((nested.len(), nested.elem_type()), (2, ValueType::Array));
    assert_eq!(g.get_str("u8"), None);
    assert_eq!(g.metadata_all().len(), 16);
    // general.alignment = 64 moves the data section and the tensor to a multiple of 64.
    assert_eq!(g.alignment(), 64);
    assert!(g.data_offset().is_multiple_of(64) && g.data_offset() > 0);
    assert_eq!(g.tensor_f32("w").unwrap().1, [1.0, 2.0]);
}

#[test]
fn version_2_files_are_read_and_version_1_is_refused() {
    let dir = tmp_dir("gguf", "versions");
    let mut w = small_file();
    w.version = 2;
    let g = Gguf::open(w.write(&dir, "v2.gguf")).unwrap();
    assert_eq!(g.version(), 2);
    assert_eq!(g.tensors().len(), 6);
    w.version = 1;
    let e = open_err(&w.write(&dir, "v1.gguf"));
    assert_eq!(e.offset, Some(4));
    assert!(e.to_string().contains("version 1 is not supported"), "{e}");
    w.version = 3u32.swap_bytes();
    let e = open_err(&w.write(&dir, "be.gguf"));
    assert!(e.to_string().contains("big-endian"), "{e}");
    w.version = 99;
    let e = open_err(&w.write(&dir, "v99.gguf"));
    assert!(e.to_string().contains("unknown GGUF version 99"), "{e}");
}

#[test]
fn an_unsupported_tensor_type_is_an_error_naming_it_and_the_supported_ones() {
    let dir = tmp_dir("gguf", "unsupported");
    let mut w = Writer::new();
    // Q4_K: 256 elements in 144 bytes; the reader sizes it but cannot dequantise it.
    w.tensor("k", &[256], G_Q4_K, vec![0; 144]);
    let g = Gguf::open(w.write(&dir, "q4k.gguf")).unwrap();
    assert_eq!(g.tensor("k").unwrap().bytes, 144);
    assert_eq!(g.tensor_bytes("k").unwrap().len(), 144);
    let e = g.tensor_f32("k").unwrap_err().to_string();
    for s in ["Q4_K", "tensor `k`", "F32, F16, BF16, Q8_0, Q4_0, Q4_1"] {
        assert!(e.contains(s), "{e} lacks {s}");
    }
    // An id ggml does not define at all is refused when the file is opened, at the id.
    let mut w = Writer::new();
    w.tensor("x", &[4], 4, vec![0; 16]);
    let (bytes, _) = w.build();
    let path = dir.join("id4.gguf");
    std::fs::write(&path, &bytes).unwrap();
    let e = open_err(&path);
    // header 24, name 8 + 1, n_dims 4, one dim 8: the type id is at 45.
    assert_eq!(e.offset, Some(45), "{e}");
    assert!(e.to_string().contains("unknown ggml tensor type 4"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Unit level: malformed files.

/// A file of a header and one key/value `key` of type `ty` with raw `value` bytes.
fn one_kv(dir: &Path, name: &str, ty: u32, value: &[u8]) -> PathBuf {
    let mut w = Writer::new();
    w.kv("key", ty, value);
    w.write(dir, name)
}

#[test]
fn malformed_headers_are_errors_at_the_offending_byte() {
    let dir = tmp_dir("gguf", "malformed");
    // Bad magic.
    let p = dir.join("magic.gguf");
    std::fs::write(&p, b"GGML\x03\0\0\0").unwrap();
    let e = open_err(&p);
    assert_eq!(e.offset, Some(0));
    assert!(e.to_string().contains("not a GGUF file"), "{e}");
    // Empty file.
    let p = dir.join("empty.gguf");
    std::fs::write(&p, b"").unwrap();
    assert_eq!(open_err(&p).offset, Some(0));
    // Missing file.
    let e = open_err(&dir.join("absent.gguf"));
    assert!(e.to_string().contains("cannot open"), "{e}");

    // The key/value starts at 24: key length 8 + 3 bytes "key", type 4: the value is at 39.
    let cases: Vec<(&str, u32, Vec<u8>, u64, &str)> = vec![
        (
            "strlen",
            T_STR,
            (1u64 << 60).to_le_bytes().to_vec(),
            39,
            "length",
        ),
        (
            "arrcount",
            T_ARRAY,
            garray(T_U64, u64::MAX / 4, &[]),
            43,
            "array element count",
        ),
        (
            "arrstr",
            T_ARRAY,
            garray(T_STR, 1 << 40, &[]),
            43,
            "array element count",
        ),
        ("valtype", 13, vec![0; 8], 35, "unknown value type 13"),
        (
            "elemtype",
            T_ARRAY,
            garray(99, 0, &[]),
            39,
            "unknown value type 99",
        ),
        ("bool", T_BOOL, vec![2], 39, "bool byte is 2"),
        (
            "utf8",
            T_STR,
            [2u64.to_le_bytes().to_vec(), vec![0xff, 0xfe]].concat(),
            47,
            "UTF-8",
        ),
        ("short", T_U64, vec![1, 2, 3], 39, "file ends"),
        // A bool array: element type 39, count 43, elements from 51; the second is bad.
        (
            "boolarr",
            T_ARRAY,
            garray(T_BOOL, 2, &[1, 3]),
            52,
            "bool byte is 3",
        ),
    ];
    for (name, ty, value, offset, text) in cases {
        let e = open_err(&one_kv(&dir, &format!("{name}.gguf"), ty, &value));
        let s = e.to_string();
        assert_eq!(e.offset, Some(offset), "{name}: {s}");
        assert!(s.contains(text) && s.contains("key `key`"), "{name}: {s}");
        assert!(
            s.contains(&format!("{name}.gguf at byte {offset}")),
            "{name}: {s}"
        );
    }

    // Arrays nested deeper than the limit (each level: element type ARRAY, count 1).
    let mut nested = Vec::new();
    for _ in 0..20 {
        nested.extend(T_ARRAY.to_le_bytes());
        nested.extend(1u64.to_le_bytes());
    }
    let e = open_err(&one_kv(&dir, "nested.gguf", T_ARRAY, &nested));
    assert!(e.to_string().contains("nest more than 8"), "{e}");

    // Huge tensor and key/value counts in the header (at 8 and 16).
    let mut b = small_file().build().0;
    b[8..16].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    let p = dir.join("ntensors.gguf");
    std::fs::write(&p, &b).unwrap();
    let e = open_err(&p);
    assert_eq!(e.offset, Some(8), "{e}");
    assert!(e.to_string().contains("tensor count"), "{e}");
    let mut b = small_file().build().0;
    b[16..24].copy_from_slice(&(1u64 << 50).to_le_bytes());
    std::fs::write(&p, &b).unwrap();
    let e = open_err(&p);
    assert_eq!(e.offset, Some(16), "{e}");
    assert!(e.to_string().contains("key/value count"), "{e}");

    // A duplicate key.
    let mut w = Writer::new();
    w.kv_u32("k", 1).kv_u32("k", 2);
    let e = open_err(&w.write(&dir, "dup.gguf"));
    // header 24; the first key/value: key 8 + 1, type 4, value 4; the second key at 41.
    assert_eq!(e.offset, Some(24 + 9 + 4 + 4), "{e}");
    assert!(e.to_string().contains("appears twice"), "{e}");

    // A non-power-of-two alignment.
    let mut w = Writer::new();
    w.kv_u32("general.alignment", 48);
    let e = open_err(&w.write(&dir, "align.gguf"));
    assert!(e.to_string().contains("general.alignment"), "{e}");
}

#[test]
fn bad_tensor_infos_are_errors_naming_the_tensor() {
    let dir = tmp_dir("gguf", "badinfo");
    let f = f32_bytes(&[0.0; 4]);
    let cases: Vec<(&str, Writer, &str)> = vec![
        (
            "dims5",
            {
                let mut w = Writer::new();
                w.tensor("a", &[1, 1, 1, 1, 4], G_F32, f.clone());
                w
            },
            "5 dimensions",
        ),
        (
            "overflow",
            {
                let mut w = Writer::new();
                w.tensor("a", &[1 << 32, 1 << 32, 4], G_F32, f.clone());
                w
            },
            "overflow",
        ),
        (
            "block",
            {
                let mut w = Writer::new();
                w.tensor("a", &[33], G_Q8_0, vec![0; 68]);
                w
            },
            "not a multiple of Q8_0's block of 32",
        ),
        (
            "extent",
            {
                let mut w = Writer::new();
                w.tensor("a", &[8], G_F32, f.clone());
                w
            },
            "runs past the end of the file",
        ),
        (
            "dupname",
            {
                let mut w = Writer::new();
                w.tensor("a", &[4], G_F32, f.clone())
                    .tensor("a", &[4], G_F32, f.clone());
                w
            },
            "appears twice",
        ),
    ];
    for (name, w, text) in cases {
        let e = open_err(&w.write(&dir, &format!("{name}.gguf")));
        let s = e.to_string();
        assert!(s.contains(text) && s.contains("tensor `a`"), "{name}: {s}");
        assert!(e.offset.is_some(), "{name}: {s}");
    }
    // A misaligned data offset: patch the first tensor's relative offset (the last 8 bytes
    // of its info: header 24, name 9, n_dims 4, dim 8, type 4) to 4.
    let mut w = Writer::new();
    w.tensor("a", &[4], G_F32, f.clone())
        .tensor("b", &[4], G_F32, f);
    let mut b = w.build().0;
    let at = 24 + 9 + 4 + 8 + 4;
    b[at..at + 8].copy_from_slice(&4u64.to_le_bytes());
    let p = dir.join("misaligned.gguf");
    std::fs::write(&p, &b).unwrap();
    let e = open_err(&p);
    assert_eq!(e.offset, Some(at as u64), "{e}");
    assert!(
        e.to_string().contains("not a multiple of the alignment 32"),
        "{e}"
    );
}

#[test]
fn every_truncation_of_a_valid_file_is_an_error_with_an_offset() {
    let dir = tmp_dir("gguf", "truncated");
    let (bytes, _) = small_file().build();
    let path = dir.join("cut.gguf");
    for len in 0..bytes.len() {
        std::fs::write(&path, &bytes[..len]).unwrap();
        let e = open_err(&path);
        assert!(e.offset.is_some_and(|o| o <= len as u64), "{len}: {e}");
        assert!(e.to_string().contains("cut.gguf at byte"), "{len}: {e}");
    }
    std::fs::write(&path, &bytes).unwrap();
    assert!(Gguf::open(&path).is_ok());
}

#[test]
fn mutated_files_give_errors_or_values_and_never_panic() {
    // A fixed seed: the same mutations every run.
    let mut rng = SplitMix64(0x6767_7566);
    let iterations = if cfg!(debug_assertions) { 300 } else { 1500 };
    let dir = tmp_dir("gguf", "fuzz");
    let (valid, _) = small_file().build();
    let path = dir.join("m.gguf");
    let mut panics = Vec::new();
    let (mut opened, mut refused) = (0, 0);
    for i in 0..iterations {
        let mut b = valid.clone();
        for _ in 0..1 + rng.below(4) {
            if b.is_empty() {
                break;
            }
            let at = rng.below(b.len());
            match rng.below(5) {
                // A random byte.
                0 => b[at] = rng.next_u64() as u8,
                // A huge or random u64 (counts, lengths, dims, offsets).
                1 if at + 8 <= b.len() => {
                    let random = rng.next_u64();
                    let v = *rng.pick(&[u64::MAX, 1 << 62, 1 << 32, random, 0]);
                    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
                }
                // A small u32 (types, dimension counts).
                2 if at + 4 <= b.len() => {
                    b[at..at + 4].copy_from_slice(&(rng.below(40) as u32).to_le_bytes())
                }
                3 => b.truncate(at),
                _ => b.insert(at, rng.next_u64() as u8),
            }
        }
        std::fs::write(&path, &b).unwrap();
        let r = std::panic::catch_unwind(|| match Gguf::open(&path) {
            Ok(g) => {
                for t in g.tensors() {
                    let _ = g.tensor_f32(&t.name);
                }
                let _ = g.llama_hyper();
                true
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                false
            }
        });
        match r {
            Ok(true) => opened += 1,
            Ok(false) => refused += 1,
            Err(p) => panics.push(format!("iteration {i}: {p:?}")),
        }
    }
    eprintln!("{iterations} mutated files: {opened} opened, {refused} refused");
    assert_no_panics(&panics);
    // The fuzz exercised both paths.
    assert!(
        opened > 0 && refused > 0,
        "opened {opened}, refused {refused}"
    );
}

#[test]
fn llama_hyper_names_the_missing_key() {
    let dir = tmp_dir("gguf", "hyper");
    let mut w = Writer::new();
    w.kv_str("general.architecture", "qwen2")
        .kv_u32("qwen2.block_count", 2)
        .kv_u32("qwen2.embedding_length", 64)
        .kv_u32("qwen2.feed_forward_length", 128)
        .kv_u32("qwen2.attention.head_count", 4);
    let g = Gguf::open(w.write(&dir, "partial.gguf")).unwrap();
    let e = g.llama_hyper().unwrap_err().to_string();
    assert!(e.contains("qwen2.attention.layer_norm_rms_epsilon"), "{e}");
    w.kv_f32("qwen2.attention.layer_norm_rms_epsilon", 1e-6)
        .kv_u32("qwen2.attention.head_count_kv", 3);
    let g = Gguf::open(w.write(&dir, "gqa.gguf")).unwrap();
    let e = g.llama_hyper().unwrap_err().to_string();
    assert!(e.contains("3 key/value heads do not divide the 4"), "{e}");
    let mut w2 = Writer::new();
    w2.kv_str("general.architecture", "qwen2")
        .kv_u32("qwen2.block_count", 2)
        .kv_u32("qwen2.embedding_length", 64)
        .kv_u32("qwen2.feed_forward_length", 128)
        .kv_u32("qwen2.attention.head_count", 4)
        .kv_u32("qwen2.attention.head_count_kv", 2)
        .kv_f32("qwen2.attention.layer_norm_rms_epsilon", 1e-6)
        .kv("qwen2.context_length", T_U64, &32768u64.to_le_bytes())
        .tensor(
            "token_embd.weight",
            &[64, 100],
            G_F32,
            vec![0; 64 * 100 * 4],
        )
        .tensor("output.weight", &[64, 100], G_F32, vec![0; 64 * 100 * 4])
        .tensor("blk.0.attn_q.bias", &[64], G_F32, vec![0; 64 * 4]);
    let h = Gguf::open(w2.write(&dir, "full.gguf"))
        .unwrap()
        .llama_hyper()
        .unwrap();
    assert_eq!(
        (h.layers, h.hidden, h.ffn, h.heads, h.kv_heads, h.head_dim),
        (2, 64, 128, 4, 2, 16)
    );
    // No rope.freq_base: llama.cpp's default; no vocab_size or token list: token_embd's ne[1].
    assert_eq!(
        (h.rope_freq_base, h.vocab, h.context_length),
        (10000.0, 100, 32768)
    );
    assert_eq!(h.rms_eps, f64::from(1e-6f32));
    assert!(h.untied_lm_head && h.attn_bias);
    assert_eq!((h.architecture.as_str(), h.rope_dims), ("qwen2", 16));
}

// ---------------------------------------------------------------------------------------------
// `stasim prune model.gguf`: a tiny Llama written here.

/// The tiny Llama's shape: d 8, 2 heads and 1 key/value head of 4, f 12, 2 blocks, V 16.
pub(crate) const TINY: (u64, u64, u64, u64, u64, u64, u64) = (8, 2, 1, 4, 12, 2, 16);

/// The value of element `i` of tensor number `t` of the tiny Llama: distinct magnitudes in
/// each group of 4 (`i * 7 mod 31` differs for 4 neighbours), signs alternating.
pub(crate) fn tiny_value(t: u64, i: u64) -> f32 {
    let m = ((i * 7 + t * 3) % 31) as f32 / 16.0 + 0.03125;
    if (i + t).is_multiple_of(2) { m } else { -m }
}

/// A tiny `llama` GGUF (F32 tensors, [`TINY`] shape, values [`tiny_value`]) in `dir`; with
/// `untied` an `output.weight`. Returns the path and each tensor's `(name, [out, in] or [n])`
/// in file order.
pub(crate) fn tiny_llama(
    dir: &Path,
    name: &str,
    untied: bool,
) -> (PathBuf, Vec<(String, Vec<u64>)>) {
    let (d, h, hkv, dh, f, layers, v) = TINY;
    let mut w = Writer::new();
    w.kv_str("general.architecture", "llama")
        .kv_u32("llama.block_count", layers as u32)
        .kv_u32("llama.embedding_length", d as u32)
        .kv_u32("llama.feed_forward_length", f as u32)
        .kv_u32("llama.attention.head_count", h as u32)
        .kv_u32("llama.attention.head_count_kv", hkv as u32)
        .kv_u32("llama.context_length", 64)
        .kv_u32("llama.vocab_size", v as u32)
        .kv_f32("llama.rope.freq_base", 10000.0)
        .kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5);
    let mut shapes: Vec<(String, Vec<u64>)> = vec![
        ("token_embd.weight".into(), vec![v, d]),
        ("output_norm.weight".into(), vec![d]),
    ];
    if untied {
        shapes.push(("output.weight".into(), vec![v, d]));
    }
    for l in 0..layers {
        for (part, shape) in [
            ("attn_norm", vec![d]),
            ("attn_q", vec![h * dh, d]),
            ("attn_k", vec![hkv * dh, d]),
            ("attn_v", vec![hkv * dh, d]),
            ("attn_output", vec![d, h * dh]),
            ("ffn_norm", vec![d]),
            ("ffn_gate", vec![f, d]),
            ("ffn_up", vec![f, d]),
            ("ffn_down", vec![d, f]),
        ] {
            shapes.push((format!("blk.{l}.{part}.weight"), shape));
        }
    }
    for (t, (name, shape)) in shapes.iter().enumerate() {
        let n: u64 = shape.iter().product();
        let vals: Vec<f32> = (0..n).map(|i| tiny_value(t as u64, i)).collect();
        // GGUF dims: the fastest-varying (inputs) first.
        let dims: Vec<u64> = shape.iter().rev().copied().collect();
        w.tensor(name, &dims, G_F32, f32_bytes(&vals));
    }
    (w.write(dir, name), shapes)
}

#[test]
fn a_tiny_llama_gguf_prunes_into_a_decoder_stanm_with_its_config_and_values() {
    let dir = tmp_dir("gguf", "prune-tiny");
    let (src, shapes) = tiny_llama(&dir, "tiny.gguf", false);
    let out = dir.join("tiny.stanm");
    let (code, stdout, stderr) = crate::stanm::cli(&[
        "prune",
        src.to_str().unwrap(),
        "--pattern",
        "2:4",
        "--error-inputs",
        "seeded",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("total over 14 pruned weights (6 tensors kept dense)"),
        "{stdout}"
    );
    let p = crate::stanm::split(&std::fs::read(&out).unwrap());
    let c = &p.header["config"];
    let (d, h, hkv, dh, f, layers, v) = TINY;
    assert_eq!(
        [&c["hidden"], &c["heads"], &c["ffn"], &c["layers"]].map(|x| x.as_u64().unwrap()),
        [d, h, f, layers]
    );
    let dc = &c["decoder"];
    assert_eq!(
        [
            &dc["kv_heads"],
            &dc["head_dim"],
            &dc["vocab"],
            &dc["max_context"]
        ]
        .map(|x| x.as_u64().unwrap()),
        [hkv, dh, v, 64]
    );
    assert_eq!(dc["rope_theta"].as_f64(), Some(10000.0));
    assert!((dc["rms_eps"].as_f64().unwrap() - 1e-5).abs() < 1e-10);
    assert_eq!(dc["tied_embeddings"], true);
    assert_eq!(dc["qk_rows_permuted"], true);
    // Tables f16, vectors f32; the seven linears of each block pruned.
    for e in p.header["tensors"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        let pruned = e.get("layer").is_some();
        let linear = LINEAR
            .iter()
            .any(|l| name.ends_with(&format!("{l}.weight")));
        assert_eq!(pruned, linear, "{name}");
        if !pruned {
            let want = if e["shape"].as_array().unwrap().len() == 2 {
                "F16"
            } else {
                "F32"
            };
            assert_eq!(e["dtype"], want, "{name}");
        }
    }
    // Every kept value is the source's rounded to f16, two a group of 4, the two largest.
    let stored = stasim::workload::stanm::read_tensors(&out, None).unwrap();
    for (t, (name, shape)) in shapes.iter().enumerate() {
        let (_, got_shape, got) = stored.iter().find(|x| &x.0 == name).unwrap();
        assert_eq!(
            got_shape.iter().map(|&x| x as u64).collect::<Vec<_>>(),
            *shape
        );
        match got {
            stasim::workload::stanm::StoredTensor::Pruned { slots, .. } => {
                let (rows, k) = (shape[0], shape[1]);
                assert_eq!(slots.len() as u64, rows * k / 4 * 2, "{name}");
                for (g, pair) in slots.chunks(2).enumerate() {
                    let (row, g0) = (g as u64 / (k / 4), g as u64 % (k / 4) * 4);
                    let src: Vec<f32> = (0..4)
                        .map(|j| tiny_value(t as u64, row * k + g0 + j))
                        .collect();
                    let mut order: Vec<usize> = (0..4).collect();
                    order.sort_by(|&a, &b| src[b].abs().total_cmp(&src[a].abs()).then(a.cmp(&b)));
                    let mut kept: Vec<usize> = pair.iter().map(|s| s.1 as usize).collect();
                    kept.sort_unstable();
                    let mut want: Vec<usize> = order[..2].to_vec();
                    want.sort_unstable();
                    assert_eq!(kept, want, "{name} group {g}");
                    for &(val, off) in pair {
                        assert_eq!(
                            val,
                            half::f16::from_f32(src[off as usize]).to_f32(),
                            "{name}"
                        );
                    }
                }
            }
            stasim::workload::stanm::StoredTensor::Dense(vals) => {
                let f16 = shape.len() == 2;
                for (i, &x) in vals.iter().enumerate() {
                    let s = tiny_value(t as u64, i as u64);
                    let want = if f16 {
                        half::f16::from_f32(s).to_f32()
                    } else {
                        s
                    };
                    assert_eq!(x, want, "{name}[{i}]");
                }
            }
            stasim::workload::stanm::StoredTensor::Other => panic!("{name} not decoded"),
        }
    }
}

#[test]
fn bad_gguf_inputs_to_prune_are_exit_2_naming_the_file_and_the_problem() {
    let dir = tmp_dir("gguf", "prune-bad");
    let (good, _) = tiny_llama(&dir, "good.gguf", false);
    let bytes = std::fs::read(&good).unwrap();
    let truncated = dir.join("truncated.gguf");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let no_keys = small_file().write(&dir, "nokeys.gguf");
    let mut gpt2 = Writer::new();
    gpt2.kv_str("general.architecture", "gpt2")
        .kv_u32("gpt2.block_count", 1)
        .kv_u32("gpt2.embedding_length", 8)
        .kv_u32("gpt2.feed_forward_length", 8)
        .kv_u32("gpt2.attention.head_count", 2)
        .kv_u32("gpt2.context_length", 8)
        .kv_u32("gpt2.vocab_size", 4)
        .kv_f32("gpt2.attention.layer_norm_rms_epsilon", 1e-5);
    let gpt2 = gpt2.write(&dir, "gpt2.gguf");
    let out = dir.join("out.stanm");
    for (file, want) in [
        (&truncated, "truncated.gguf"),
        (&no_keys, "llama.embedding_length"),
        (
            &gpt2,
            "`gpt2`; stasim prunes the Llama family: llama, mistral, qwen2",
        ),
    ] {
        let (code, _, stderr) = crate::stanm::cli(&[
            "prune",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, Some(2), "{}: {stderr}", file.display());
        assert!(stderr.contains(want), "{}: {stderr}", file.display());
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!out.exists(), "nothing is written for bad input");
    }
}

// ---------------------------------------------------------------------------------------------
// The real SmolLM2-135M-Instruct (Q4_1).

fn py_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(name)
}

/// The linear weights of a block (not the norms).
const LINEAR: [&str; 7] = [
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_output",
    "ffn_gate",
    "ffn_up",
    "ffn_down",
];

#[test]
fn the_real_smollm2_gguf_has_the_published_shapes_and_parameter_counts() {
    let Some(path) = crate::support::smollm2_path() else {
        return;
    };
    let g = Gguf::open(&path).unwrap();
    let h = g.llama_hyper().unwrap();
    assert_eq!(h.architecture, "llama");
    assert_eq!(
        (
            h.layers, h.hidden, h.ffn, h.heads, h.kv_heads, h.head_dim, h.vocab
        ),
        (30, 576, 1536, 9, 3, 64, 49152)
    );
    assert_eq!((h.rope_freq_base, h.context_length), (100000.0, 8192));
    assert_eq!(h.rms_eps, f64::from(1e-5f32));
    assert!(!h.untied_lm_head, "SmolLM2 ties its lm_head to token_embd");
    assert!(!h.attn_bias);
    assert_eq!(h.rope_dims, 64);
    assert_eq!(
        g.get_str_array("tokenizer.ggml.tokens").unwrap().len(),
        49152
    );
    // 30 blocks of 9 tensors, token_embd and output_norm.
    assert_eq!(g.tensors().len(), 30 * 9 + 2);
    let mut linear = 0u64;
    for b in 0..30 {
        for n in LINEAR {
            let t = g.tensor(&format!("blk.{b}.{n}.weight")).unwrap();
            assert_eq!(t.ty.name, "Q4_1", "{}", t.name);
            linear += t.elems();
        }
    }
    // Per block: q, o 576x576; k, v 576x192; gate, up, down 576x1536.
    let per_block = 2 * 576 * 576 + 2 * 576 * 192 + 3 * 576 * 1536;
    assert_eq!(linear, 30 * per_block);
    assert_eq!(linear, 106_168_320);
    let e = g.tensor("token_embd.weight").unwrap();
    assert_eq!(
        (e.elems(), e.ty.name, e.shape()),
        (28_311_552, "Q8_0", vec![49152, 576])
    );
    // The tensors tile the data section in order with at most alignment padding, and the last
    // ends at the end of the file.
    let mut ts: Vec<_> = g.tensors().iter().collect();
    ts.sort_by_key(|t| t.offset);
    assert_eq!(ts[0].offset, g.data_offset());
    for w in ts.windows(2) {
        assert!(
            w[1].offset >= w[0].offset + w[0].bytes && w[1].offset < w[0].offset + w[0].bytes + 32
        );
    }
    let last = ts.last().unwrap();
    assert_eq!(last.offset + last.bytes, g.file_bytes());
    assert_eq!(g.file_bytes(), 98_362_432);

    // Every tensor (release; the first three blocks in a debug build) dequantises to finite
    // values of the right count.
    let blocks = if cfg!(debug_assertions) { 3 } else { 30 };
    let mut names = vec!["token_embd.weight".to_string(), "output_norm.weight".into()];
    for b in 0..blocks {
        for n in LINEAR.iter().chain(&["attn_norm", "ffn_norm"]) {
            names.push(format!("blk.{b}.{n}.weight"));
        }
    }
    for n in &names {
        let (shape, v) = g.tensor_f32(n).unwrap();
        assert_eq!(v.len(), shape.iter().product::<usize>(), "{n}");
        assert_eq!(v.len() as u64, g.tensor(n).unwrap().elems(), "{n}");
        assert!(v.iter().all(|x| x.is_finite()), "{n}");
    }
}

/// Runs `tests/py/gguf_dequant.py` on `file` for `specs` (`NAME[:ROWS]`) into `dir`; returns
/// its JSON.
fn python_dequant(py: &str, file: &Path, dir: &Path, specs: &[&str]) -> serde_json::Value {
    let o = Command::new(py)
        .arg(py_script("gguf_dequant.py"))
        .arg(file)
        .arg(dir)
        .args(specs)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Checks stasim's dequantisation of each of `specs` in `file` against the Python package's:
/// shape, offset, size and every value bit for bit. Returns the largest absolute difference
/// (0 when it passes) and the number of values compared.
fn compare_with_python(py: &str, file: &Path, dir: &Path, specs: &[&str]) -> (f64, usize) {
    let g = Gguf::open(file).unwrap();
    let info = python_dequant(py, file, dir, specs);
    let (mut max_diff, mut compared) = (0f64, 0);
    for spec in specs {
        let name = spec.split(':').next().unwrap();
        let t = g.tensor(name).unwrap();
        let p = &info[name];
        assert_eq!(p["type"], t.ty.name, "{name}");
        assert_eq!(p["offset"], t.offset, "{name}");
        assert_eq!(p["n_bytes"], t.bytes, "{name}");
        let (shape, values) = g.tensor_f32(name).unwrap();
        let py_shape: Vec<usize> = p["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(py_shape[1..], shape[1..], "{name}");
        let n: usize = py_shape.iter().product();
        let theirs: Vec<f32> = std::fs::read(dir.join(format!("{name}.f32")))
            .unwrap()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(theirs.len(), n, "{name}");
        let ours = &values[..n];
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            max_diff = max_diff.max((f64::from(*a) - f64::from(*b)).abs());
            assert_eq!(
                a.to_bits(),
                b.to_bits(),
                "{name}[{i}]: stasim {a}, gguf {b}"
            );
        }
        compared += n;
    }
    (max_diff, compared)
}

#[test]
fn the_small_test_file_dequantises_as_the_python_gguf_package_does() {
    let Some(py) = crate::support::python_with_gguf() else {
        return;
    };
    let dir = tmp_dir("gguf", "py-small");
    let path = small_file().write(&dir, "small.gguf");
    let specs = ["t.f32", "t.f16", "t.bf16", "t.q8_0", "t.q4_0", "t.q4_1"];
    let (diff, n) = compare_with_python(&py, &path, &dir, &specs);
    assert_eq!((diff, n), (0.0, 6 + 6 + 4 + 64 + 32 + 64));
}

#[test]
fn the_real_smollm2_tensors_dequantise_as_the_python_gguf_package_does() {
    let Some(path) = crate::support::smollm2_path() else {
        return;
    };
    let Some(py) = crate::support::python_with_gguf() else {
        return;
    };
    let dir = tmp_dir("gguf", "py-real");
    let specs = [
        "blk.0.attn_q.weight",
        "blk.17.attn_v.weight",
        "blk.29.ffn_down.weight",
        "token_embd.weight:64",
        "output_norm.weight",
        "blk.0.attn_norm.weight",
    ];
    let (diff, n) = compare_with_python(&py, &path, &dir, &specs);
    eprintln!("stasim vs gguf (Python): {n} values, largest difference {diff:e}");
    assert_eq!(n, 576 * 576 + 192 * 576 + 576 * 1536 + 64 * 576 + 576 + 576);
    assert_eq!(diff, 0.0);
}

#[test]
fn the_numpy_reference_forward_pass_is_sane_and_deterministic() {
    let Some(path) = crate::support::smollm2_path() else {
        return;
    };
    let Some(py) = crate::support::python_with_gguf() else {
        return;
    };
    let dir = tmp_dir("gguf", "py-reference");
    // "The capital of France is" in SmolLM2's vocabulary (no tokenizer in stasim yet).
    let ids = [504u64, 3575, 282, 4649, 314];
    let id_list = ids.map(|i| i.to_string()).join(",");
    // Two runs at once (the machine's cores are otherwise idle while Python loads the file).
    let runs: Vec<_> = ["a", "b"]
        .iter()
        .map(|tag| {
            let out = dir.join(format!("logits-{tag}.bin"));
            let child = Command::new(&py)
                .arg(py_script("smollm2_reference.py"))
                .arg("--model")
                .arg(&path)
                .args(["--ids", &id_list, "--generate", "16", "--top", "20"])
                .arg("--logits-out")
                .arg(&out)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (child, out)
        })
        .collect();
    let outs: Vec<(Vec<u8>, Vec<u8>)> = runs
        .into_iter()
        .map(|(child, file)| {
            let o = child.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            (o.stdout, std::fs::read(file).unwrap())
        })
        .collect();
    assert_eq!(outs[0], outs[1], "two runs of the reference differ");
    let (stdout, logits) = &outs[0];
    let j: serde_json::Value = serde_json::from_slice(stdout).unwrap();
    let logits: Vec<f64> = logits
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(logits.len(), 49152);
    assert!(logits.iter().all(|x| x.is_finite()));
    let got_ids: Vec<u64> = j["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(got_ids, ids);
    // The top 20: the 20 largest logits of the file, largest first.
    let top: Vec<(usize, f64)> = j["logits_last_top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap() as usize, p[1].as_f64().unwrap()))
        .collect();
    assert_eq!(top.len(), 20);
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    // The JSON's decimal values are Python's shortest round-trip form; serde_json (without
    // its float_roundtrip feature) may parse them 1 ulp off, hence the 1e-15 relative bound.
    for (k, &(id, v)) in top.iter().enumerate() {
        let want = logits[order[k]];
        assert_eq!(id, order[k], "top {k}");
        assert!(
            (v - want).abs() <= 1e-15 * want.abs(),
            "top {k}: {v} != {want}"
        );
    }
    let generated: Vec<usize> = j["generated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(generated.len(), 16);
    assert!(generated.iter().all(|&t| t < 49152));
    assert_eq!(generated[0], order[0], "greedy starts with the argmax");
    // A working forward pass completes the sentence: the first generated token, looked up in
    // the file's own vocabulary, is " Paris" (GPT-2 byte-level BPE writes the space as Ġ).
    let vocab = Gguf::open(&path).unwrap();
    let tokens = vocab.get_str_array("tokenizer.ggml.tokens").unwrap();
    eprintln!(
        "reference: top {:?}, generated {generated:?} = {:?}",
        &top[..3],
        j["generated_text"]
    );
    assert_eq!(tokens[generated[0]], "ĠParis");
}

#[test]
fn the_gguf_tests_needing_the_model_or_python_say_skipped_without_them() {
    let model = [
        "gguf::the_real_smollm2_gguf_has_the_published_shapes_and_parameter_counts",
        "gguf::the_real_smollm2_tensors_dequantise_as_the_python_gguf_package_does",
        "gguf::the_numpy_reference_forward_pass_is_sane_and_deterministic",
    ];
    for name in model {
        let out = crate::skips::run_alone(name, &[("STASIM_SMOLLM2", "/nonexistent/smollm2.gguf")]);
        assert!(
            out.contains("skipped:") && out.contains("/nonexistent/smollm2.gguf not found"),
            "{name}: {out}"
        );
    }
    for name in [
        model[1],
        model[2],
        "gguf::the_small_test_file_dequantises_as_the_python_gguf_package_does",
    ] {
        let env = [("STASIM_PYTHON", "/nonexistent/python3")];
        crate::skips::assert_skips(name, &env, "numpy and gguf is not available");
    }
}
