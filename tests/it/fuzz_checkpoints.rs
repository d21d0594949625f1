//! Seeded mutation tests of the checkpoint readers: safetensors (`prune`, and `--verify`
//! against a mutated source) and `.stanm` (the timing run's reader, a workload from it, the
//! functional reader, `--verify`, and for some a functional weight set, data plane and run).
//!
//! Thousands of inputs are derived from small generated checkpoints: byte flips,
//! truncations, junk appended, and header JSON edits with extreme numbers (0, -1, 2^32, 2^63,
//! 2^64-1, 1e300, ...), huge shapes, wrong dtypes, offsets past the end, renamed, removed and
//! duplicated tensors, bad patterns and configs, a mutated `config.json` beside the source.
//! `.stanm` header and data edits get a fresh length and CRC-32 so they reach the checks
//! behind the checksum. Each input must give `Ok` or a clean error, never a panic (caught
//! in-process with `catch_unwind`); raw damage to a `.stanm` must always be an error (the
//! checksum). A few go through the binary: exit 0, 1 or 2, nothing panicked. The PRNG is
//! SplitMix64 with a fixed seed, so every run tries the same inputs.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use safetensors::Dtype;
use serde_json::{Value, json};
use stasim::functional::DEFAULT_TOLERANCE;
use stasim::functional::weights::ModelWeights;
use stasim::run::{FunctionalArgs, WorkloadArgs, data_plane, resolve_workload, simulate};
use stasim::workload::stanm::{Scheme, load_model, prune_checkpoint, read_tensors, verify};
use stasim::workload::{Pattern, Patterns};

use crate::stanm::{BLOBS, Parts, join, remove_tensor, small_checkpoint, split, write_new};
use crate::support::{SplitMix64, tmp_dir};

/// Inputs per reader: 2400 safetensors and 4000 `.stanm` files in release (a few seconds); a
/// debug build tries an eighth of them. `STASIM_FUZZ_SCALE=N` tries N times as many (the
/// same seed: the first inputs are the same ones).
fn inputs(release: usize) -> usize {
    let scale = std::env::var("STASIM_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(1);
    let n = if cfg!(debug_assertions) {
        release / 8
    } else {
        release
    };
    n * scale
}

/// Extreme JSON values: numbers at every boundary, and things that are not numbers.
const EXTREMES: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3",
    "7",
    "255",
    "256",
    "65535",
    "4294967295",
    "4294967296",
    "1099511627776",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "1e300",
    "-1e300",
    "0.5",
    "null",
    "true",
    "\"7\"",
    "[]",
    "{}",
];

const DTYPES: &[&str] = &[
    "F32", "F16", "BF16", "F64", "I64", "I32", "U8", "BOOL", "F4", "F6_E2M3", "F8_E4M3", "C64",
    "F33", "", "f32",
];

const PATTERNS: &[&str] = &[
    "2:4",
    "1:4",
    "3:4",
    "4:8",
    "2:8",
    "1:8",
    "1:256",
    "3:512",
    "1:1024",
    "0:4",
    "5:4",
    "dense",
    "1:1",
    "4:4",
    "x",
    "",
    "1:0",
    "1:4294967295",
    "4294967295:4294967295",
    "2:4:8",
    "-1:4",
];

const ROLES: &[&str] = &[
    "attention.self.query.weight",
    "attention.self.key.weight",
    "attention.self.value.weight",
    "attention.output.dense.weight",
    "intermediate.dense.weight",
    "output.dense.weight",
    "output.dense.bias",
    "output.LayerNorm.weight",
    "attention.output.LayerNorm.bias",
];

fn extreme(rng: &mut SplitMix64) -> Value {
    serde_json::from_str(rng.pick::<&str>(EXTREMES)).unwrap()
}

/// A number: an extreme, or one near `near` (a real size or offset).
fn number(rng: &mut SplitMix64, near: u64) -> Value {
    if rng.chance(2) {
        extreme(rng)
    } else {
        json!(near.saturating_add(rng.below(5) as u64).saturating_sub(2))
    }
}

fn shape(rng: &mut SplitMix64) -> Value {
    let n = rng.below(5);
    Value::Array((0..n).map(|_| number(rng, 8)).collect())
}

fn tensor_name(rng: &mut SplitMix64) -> String {
    let layer = *rng.pick(&["0", "1", "2", "99", "18446744073709551615", "+1", "x"]);
    let prefix = *rng.pick(&["", "", "bert.", "roberta."]);
    format!("{prefix}encoder.layer.{layer}.{}", rng.pick(ROLES))
}

/// Replaces a random node of `v` (any depth) with an extreme value, or removes it.
fn mutate_anywhere(rng: &mut SplitMix64, v: &mut Value) {
    let stop = rng.chance(3);
    match v {
        Value::Object(m) if !m.is_empty() && !stop => {
            let key = m.keys().nth(rng.below(m.len())).unwrap().clone();
            if rng.chance(4) {
                m.remove(&key);
            } else if let Some(child) = m.get_mut(&key) {
                mutate_anywhere(rng, child);
            }
        }
        Value::Array(a) if !a.is_empty() && !stop => {
            let i = rng.below(a.len());
            if rng.chance(4) {
                a.remove(i);
            } else {
                mutate_anywhere(rng, &mut a[i]);
            }
        }
        _ => *v = extreme(rng),
    }
}

// ---------------------------------------------------------------------------------------
// safetensors
// ---------------------------------------------------------------------------------------

/// A safetensors file taken apart: its header JSON and data.
fn st_split(bytes: &[u8]) -> (Value, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (
        serde_json::from_slice(&bytes[8..8 + n]).unwrap(),
        bytes[8 + n..].to_vec(),
    )
}

fn st_join(header: &Value, data: &[u8], length: Option<u64>) -> Vec<u8> {
    let json = serde_json::to_vec(header).unwrap();
    let mut out = length.unwrap_or(json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&json);
    out.extend_from_slice(data);
    out
}

/// One mutated safetensors file, and what was done to it.
fn mutate_safetensors(rng: &mut SplitMix64, base: &[u8]) -> (&'static str, Vec<u8>) {
    let mut b = base.to_vec();
    match rng.below(10) {
        0 => {
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(b.len());
                b[i] ^= 1 + rng.below(255) as u8;
            }
            ("byte flips", b)
        }
        1 => {
            b.truncate(rng.below(b.len()));
            ("truncated", b)
        }
        2 => {
            let n = 1 + rng.below(64);
            b.extend((0..n).map(|_| rng.next_u64() as u8));
            ("junk appended", b)
        }
        kind => {
            let (mut h, data) = st_split(&b);
            let len = data.len() as u64;
            let keys: Vec<String> = h.as_object().unwrap().keys().cloned().collect();
            let key = rng.pick(&keys).clone();
            let what = match kind {
                3 => {
                    h[&key]["shape"] = shape(rng);
                    "shape"
                }
                4 => {
                    h[&key]["dtype"] = if rng.chance(4) {
                        extreme(rng)
                    } else {
                        json!(rng.pick(DTYPES))
                    };
                    "dtype"
                }
                5 => {
                    h[&key]["data_offsets"] = json!([number(rng, len / 2), number(rng, len)]);
                    "offsets"
                }
                6 => {
                    let t = h.as_object_mut().unwrap().remove(&key).unwrap();
                    if !rng.chance(3) {
                        h[tensor_name(rng)] = t;
                    }
                    "renamed or removed"
                }
                7 => {
                    mutate_anywhere(rng, &mut h);
                    "any node"
                }
                8 => {
                    let (hb, junk) = (st_join(&h, &data, None), rng.next_u64());
                    let n = u64::from_le_bytes(hb[..8].try_into().unwrap());
                    let length = match rng.below(3) {
                        0 => junk,
                        1 => n.wrapping_add(rng.below(9) as u64).wrapping_sub(4),
                        _ => serde_json::from_str::<Value>(rng.pick::<&str>(EXTREMES))
                            .ok()
                            .and_then(|v| v.as_u64())
                            .unwrap_or(u64::MAX),
                    };
                    return ("header length", st_join(&h, &data, Some(length)));
                }
                _ => {
                    h = extreme(rng);
                    "whole header"
                }
            };
            (what, st_join(&h, &data, None))
        }
    }
}

/// A `config.json` beside the source: mostly none, else random keys with extreme values.
fn mutate_config(rng: &mut SplitMix64, dir: &Path) {
    let path = dir.join("config.json");
    if rng.chance(3) {
        let mut c = json!({"num_attention_heads": 2, "hidden_size": 8,
                           "intermediate_size": 12, "num_hidden_layers": 2});
        mutate_anywhere(rng, &mut c);
        let mut text = serde_json::to_vec(&c).unwrap();
        if rng.chance(8) {
            text.truncate(rng.below(text.len()));
        }
        write_new(&path, &text);
    } else {
        let _ = std::fs::remove_file(path);
    }
}

// ---------------------------------------------------------------------------------------
// .stanm
// ---------------------------------------------------------------------------------------

/// How a `.stanm` was mutated, and whether every reader must refuse it.
struct Mutated {
    kind: &'static str,
    bytes: Vec<u8>,
    must_fail: bool,
}

fn mutate_stanm(rng: &mut SplitMix64, base: &[u8], good: &Parts) -> Mutated {
    let raw = |kind, bytes| Mutated {
        kind,
        bytes,
        must_fail: true,
    };
    let mut b = base.to_vec();
    match rng.below(12) {
        // Raw damage: the checksum, the lengths or the version must catch every one.
        0 => {
            let i = rng.below(b.len());
            b[i] ^= 1 + rng.below(255) as u8;
            raw("raw byte flip", b)
        }
        1 => {
            b.truncate(rng.below(b.len()));
            raw("raw truncation", b)
        }
        2 => {
            b.extend((0..1 + rng.below(16)).map(|_| rng.next_u64() as u8));
            raw("raw junk appended", b)
        }
        3 => {
            let mut p = good.clone();
            p.magic = rng
                .pick(&[
                    &b"STANM001"[..],
                    b"STANM003",
                    b"STANM000",
                    b"STANM\xff\xff\xff",
                ])
                .to_vec();
            raw("other version", join(&p))
        }
        // Behind the checksum (a fresh length and CRC-32): one edit, or two or three.
        n => {
            let mut p = good.clone();
            let edits = if n >= 10 { 2 + rng.below(2) } else { 1 };
            let mut kind = "";
            for _ in 0..edits {
                kind = edit_stanm(rng, &mut p);
            }
            Mutated {
                kind: if edits > 1 { "several edits" } else { kind },
                bytes: join(&p),
                must_fail: false,
            }
        }
    }
}

/// Sets `key` of the object at JSON pointer `parent` (nothing if an earlier edit made it
/// something else).
fn set(v: &mut Value, parent: &str, key: &str, new: Value) {
    if let Some(o) = v.pointer_mut(parent).and_then(Value::as_object_mut) {
        o.insert(key.to_owned(), new);
    }
}

/// One edit of the header or data of a (perhaps already edited) file; returns what it was.
fn edit_stanm(rng: &mut SplitMix64, p: &mut Parts) -> &'static str {
    let tensors = p.header["tensors"].as_array().map_or(0, Vec::len);
    if tensors == 0 {
        mutate_anywhere(rng, &mut p.header);
        return "any node";
    }
    let t = rng.below(tensors);
    let at = format!("/tensors/{t}");
    let data_len = p.data.len() as u64;
    let h = &mut p.header;
    match rng.below(9) {
        0 => {
            let key = *rng.pick(&["hidden", "heads", "ffn", "layers"]);
            if rng.chance(8) {
                set(h, "", "config", extreme(rng));
            } else {
                let n = number(rng, 8);
                set(h, "/config", key, n);
            }
            "config"
        }
        1 => {
            let n = number(rng, data_len);
            set(h, "", "data_bytes", n);
            "data_bytes"
        }
        2 => {
            let s = shape(rng);
            set(h, &at, "shape", s);
            "shape"
        }
        3 => {
            let n = rng.below(4);
            let list = Value::Array((0..n).map(|_| json!(rng.pick(PATTERNS))).collect());
            set(h, &at, "patterns", list);
            "patterns"
        }
        4 => {
            let k = *rng.pick(&BLOBS);
            let span = json!([number(rng, data_len / 2), number(rng, 64)]);
            set(h, &at, k, span);
            "offsets"
        }
        5 => {
            let (key, v) = match rng.below(4) {
                0 => ("name", json!(tensor_name(rng))),
                1 => ("layer", number(rng, 1)),
                2 => (
                    "class",
                    json!(rng.pick(&["qkv", "proj", "ffn1", "ffn2", "x"])),
                ),
                _ => ("dtype", json!(rng.pick(DTYPES))),
            };
            set(h, &at, key, v);
            "name, layer, class or dtype"
        }
        6 => {
            match rng.below(3) {
                // A well-formed file without it, if its blobs are still in place.
                0 if remove_tensor(p, t) => {}
                1 => {
                    let e = p.header["tensors"][t].clone();
                    if let Some(a) = p.header["tensors"].as_array_mut() {
                        a.push(e);
                    }
                }
                _ => {
                    if let Some(a) = p.header["tensors"].as_array_mut() {
                        a.remove(t);
                    }
                }
            }
            "tensor removed or duplicated"
        }
        7 => {
            mutate_anywhere(rng, h);
            "any node"
        }
        _ => {
            if !p.data.is_empty() {
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(p.data.len());
                    p.data[i] ^= 1 + rng.below(255) as u8;
                }
            }
            "data flips"
        }
    }
}

/// Outcomes by kind of mutation: (accepted, refused).
#[derive(Default)]
struct Tally(BTreeMap<&'static str, (usize, usize)>);

impl Tally {
    fn add(&mut self, kind: &'static str, ok: bool) {
        let e = self.0.entry(kind).or_default();
        if ok { e.0 += 1 } else { e.1 += 1 }
    }
    fn print(&self, what: &str) {
        eprintln!("{what}: kind -> (accepted, refused)");
        for (k, (a, r)) in &self.0 {
            eprintln!("  {k:<32} {a:>5} {r:>5}");
        }
    }
}

/// Runs `f`, turning a panic into its message.
fn no_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default()
    })
}

/// Keeps a panicking input for a rerun and records it.
fn record(panics: &mut Vec<String>, dir: &Path, i: usize, what: &str, bytes: &[u8], msg: &str) {
    let keep = dir.join(format!("panic-{i}.bin"));
    std::fs::write(&keep, bytes).unwrap();
    panics.push(format!(
        "input {i} ({what}, kept as {}): {msg}",
        keep.display()
    ));
}

/// The small checkpoints the mutations start from.
struct Bases {
    dir: PathBuf,
    src: PathBuf,
    safetensors: Vec<Vec<u8>>,
    stanm: Vec<Vec<u8>>,
}

fn bases(name: &str) -> Bases {
    let dir = tmp_dir("fuzz", name);
    let f16_dir = dir.join("f16");
    std::fs::create_dir_all(&f16_dir).unwrap();
    let src = small_checkpoint(&dir, Dtype::F32);
    let src16 = small_checkpoint(&f16_dir, Dtype::F16);
    let mut stanm = Vec::new();
    for (i, scheme) in [
        Scheme::Patterns(Patterns::uniform(Pattern::parse("2:4").unwrap())),
        Scheme::Family(
            ["4:8", "2:8", "1:8"]
                .map(|p| Pattern::parse(p).unwrap())
                .to_vec(),
        ),
        Scheme::Patterns(Patterns::uniform(Pattern::parse("1:300").unwrap())),
    ]
    .iter()
    .enumerate()
    {
        let out = dir.join(format!("base{i}.stanm"));
        prune_checkpoint(if i == 1 { &src16 } else { &src }, scheme, &out, 1).unwrap();
        stanm.push(std::fs::read(&out).unwrap());
    }
    Bases {
        safetensors: vec![std::fs::read(&src).unwrap(), std::fs::read(&src16).unwrap()],
        stanm,
        src,
        dir,
    }
}

#[test]
fn mutated_safetensors_checkpoints_never_panic() {
    let b = bases("st");
    let t0 = std::time::Instant::now();
    let work = b.dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let path = work.join("model.safetensors");
    let good = b.dir.join("base0.stanm");
    let scheme = Scheme::Patterns(Patterns::uniform(Pattern::parse("2:4").unwrap()));
    let family = Scheme::Family(["2:8", "1:8"].map(|p| Pattern::parse(p).unwrap()).to_vec());
    let mut rng = SplitMix64(0x5AFE_7E45);
    let (mut tally, mut panics) = (Tally::default(), Vec::new());
    let count = inputs(2400);
    for i in 0..count {
        let base = rng.pick(&b.safetensors).clone();
        let (kind, bytes) = mutate_safetensors(&mut rng, &base);
        write_new(&path, &bytes);
        mutate_config(&mut rng, &work);
        let s = if rng.chance(2) { &scheme } else { &family };
        let with_verify = rng.chance(3);
        let outcome = no_panic(|| {
            let pruned = prune_checkpoint(&path, s, Path::new("/dev/null"), 1).is_ok();
            if with_verify {
                // The good file against a mutated source: a mismatch or an error.
                let _ = verify(&good, Some(&path));
            }
            pruned
        });
        match outcome {
            Ok(ok) => tally.add(kind, ok),
            Err(m) => record(&mut panics, &b.dir, i, kind, &bytes, &m),
        }
    }
    tally.print(&format!(
        "{count} mutated safetensors in {:.2} s",
        t0.elapsed().as_secs_f64()
    ));
    crate::support::assert_no_panics(&panics);
    // The mutations do reach the pruner: some inputs are accepted, some refused.
    let (ok, refused) = tally.0.values().fold((0, 0), |a, v| (a.0 + v.0, a.1 + v.1));
    assert!(ok > 0 && refused > 0, "{ok} accepted, {refused} refused");
    let _ = std::fs::remove_dir_all(&b.dir);
}

#[test]
fn mutated_stanm_files_never_panic_and_damage_is_always_refused() {
    let b = bases("stanm");
    let t0 = std::time::Instant::now();
    let topo =
        stasim::topology::load(&stasim::topology::Source::read("sta-small").unwrap(), &[]).unwrap();
    let goods: Vec<Parts> = b.stanm.iter().map(|s| split(s)).collect();
    let path = b.dir.join("mutated.stanm");
    let f = FunctionalArgs {
        seed: 1,
        tolerance: DEFAULT_TOLERANCE,
    };
    let mut rng = SplitMix64(0x57A7_0002);
    let (mut tally, mut panics, mut undetected) = (Tally::default(), Vec::new(), Vec::new());
    let mut simulated = 0;
    let count = inputs(4000);
    for i in 0..count {
        let which = rng.below(goods.len());
        let m = mutate_stanm(&mut rng, &b.stanm[which], &goods[which]);
        write_new(&path, &m.bytes);
        let member = rng.chance(4).then(|| {
            Pattern::parse(rng.pick::<&str>(&["4:8", "2:8", "1:8", "2:4", "1:300"])).unwrap()
        });
        let deep = i % 8 == 0;
        let simulate_it = deep && simulated < 8;
        let outcome = no_panic(|| {
            let model = load_model(&path, member);
            let args = WorkloadArgs {
                checkpoint: Some(path.clone()),
                member: member.map(|p| p.to_string()),
                seq: Some(4),
                ..WorkloadArgs::default()
            };
            let workload = resolve_workload(&topo, &args).ok().inspect(|w| {
                let _ = w.ops();
            });
            let tensors = read_tensors(&path, member).is_ok();
            let verified = verify(&path, None).is_ok();
            let mut ran = false;
            if deep {
                let layers = model.as_ref().map_or(2, |m| m.0.layers.min(4));
                let _ = ModelWeights::from_stanm(&path, member, layers);
                if let Some(w) = &workload
                    && let Ok(plane) = data_plane(w, &args, &f)
                    && simulate_it
                {
                    let limit = stasim::kernel::SimTime::parse("1ms").ok();
                    let _ = simulate(&topo, w, limit, None, Some((&plane, DEFAULT_TOLERANCE)));
                    ran = true;
                }
            }
            (model.is_ok() || tensors || verified, tensors, ran)
        });
        match outcome {
            Ok((any, all_values, ran)) => {
                simulated += usize::from(ran);
                if m.must_fail && any {
                    undetected.push(format!("input {i} ({})", m.kind));
                }
                tally.add(m.kind, all_values);
            }
            Err(msg) => record(&mut panics, &b.dir, i, m.kind, &m.bytes, &msg),
        }
    }
    tally.print(&format!(
        "{count} mutated .stanm files in {:.2} s ({simulated} simulated; accepted = \
         every value read)",
        t0.elapsed().as_secs_f64()
    ));
    crate::support::assert_no_panics(&panics);
    assert!(
        undetected.is_empty(),
        "raw damage read as a good file: {}",
        undetected.join(", ")
    );
    let (ok, refused) = tally.0.values().fold((0, 0), |a, v| (a.0 + v.0, a.1 + v.1));
    assert!(ok > 0 && refused > 0, "{ok} accepted, {refused} refused");
    assert!(simulated > 0, "no mutated file reached a functional run");
    let _ = std::fs::remove_dir_all(&b.dir);
}

#[test]
fn mutated_checkpoints_through_the_binary_exit_0_1_or_2() {
    let b = bases("cli");
    let bin = env!("CARGO_BIN_EXE_stasim");
    let mut rng = SplitMix64(0xC11_0003);
    let goods: Vec<Parts> = b.stanm.iter().map(|s| split(s)).collect();
    let work = b.dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let (st, sn) = (work.join("model.safetensors"), work.join("m.stanm"));
    let out = work.join("out.stanm");
    let mut codes: BTreeMap<i32, usize> = BTreeMap::new();
    let mut check = |args: &[&str], what: &str| {
        let o = std::process::Command::new(bin).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        let code = o.status.code();
        assert!(
            matches!(code, Some(0..=2)) && !err.contains("panicked"),
            "{what}: {args:?} ended with {code:?}:\n{err}"
        );
        *codes.entry(code.unwrap_or(-1)).or_default() += 1;
    };
    // The unmutated inputs run (exit 0), then mutated ones.
    check(
        &[
            "prune",
            b.src.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        "base",
    );
    let base_stanm = b.dir.join("base0.stanm");
    check(
        &[
            "run",
            "sta-small",
            "--seq",
            "4",
            "--checkpoint",
            base_stanm.to_str().unwrap(),
        ],
        "base",
    );
    for i in 0..12 {
        let (kind, bytes) = mutate_safetensors(&mut rng, &b.safetensors[i % 2]);
        write_new(&st, &bytes);
        check(
            &[
                "prune",
                st.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            kind,
        );
        let which = i % goods.len();
        let m = mutate_stanm(&mut rng, &b.stanm[which], &goods[which]);
        write_new(&sn, &m.bytes);
        let s = sn.to_str().unwrap();
        let functional = if i % 2 == 0 { "--functional" } else { "--json" };
        check(
            &[
                "run",
                "sta-small",
                "--seq",
                "4",
                "--checkpoint",
                s,
                functional,
            ],
            m.kind,
        );
        check(&["prune", "--verify", s, b.src.to_str().unwrap()], m.kind);
    }
    eprintln!("exit codes: {codes:?}");
    assert!(
        codes.get(&0).is_some_and(|&n| n >= 2) && codes.contains_key(&2),
        "{codes:?}"
    );
    let _ = std::fs::remove_dir_all(&b.dir);
}
