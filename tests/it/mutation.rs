//! Seeded mutation ("fuzz") tests of the command-line and topology readers: topology YAML,
//! `--set` overrides, N:M patterns and the workload flags. Thousands of inputs derived from
//! the built-in topologies (byte flips, deletions, duplications, numbers replaced by extreme
//! values, huge strings, ...) go through the library's load, validate, workload and plan
//! path; each must end in `Ok` or a clean input error, never a panic. A few go through the
//! binary, which must exit 0, 1 or 2. The generator is SplitMix64 with fixed seeds, so a
//! failure names the seed and case that reproduce it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::Command;

use crate::support::SplitMix64;
use stasim::run::{WorkloadArgs, resolve_workload, runs_workload};
use stasim::topology::{self, BUILTIN, SetOverride, Source, Topology, dot};
use stasim::workload::{Pattern, Patterns};

/// Cases per test: fewer in a debug build, so plain `cargo test` stays quick.
const fn cases(release: usize) -> usize {
    if cfg!(debug_assertions) {
        release / 10
    } else {
        release
    }
}

/// Values that break naive arithmetic, as YAML scalars.
const EXTREMES: &[&str] = &[
    "0",
    "-1",
    "1",
    "2",
    "3",
    "7",
    "255",
    "256",
    "65536",
    "1e300",
    "-1e300",
    "1e-300",
    "1e-9",
    ".inf",
    "-.inf",
    ".nan",
    "0.5",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "0x7fffffffffffffff",
    "1_000",
    "~",
    "null",
    "true",
    "''",
    "[]",
    "{}",
    "[0]",
    "[4, 4, 4]",
    "[1e300]",
    "ddr4-3200",
    "dense",
    "1:1",
    "1:4294967295",
];

/// Characters that matter to YAML.
const SYNTAX: &[u8] = b" :{}[],-#\n\t'\"&*!|>%@`?\\";

/// A long value (a pasted blob): 100,000 characters (10,000 in a debug build).
fn huge() -> String {
    "x".repeat(if cfg!(debug_assertions) {
        10_000
    } else {
        100_000
    })
}

/// One random edit of `text`.
fn mutate_once(rng: &mut SplitMix64, text: &mut Vec<u8>) {
    let n = text.len().max(1);
    let at = rng.below(n).min(text.len());
    match rng.below(9) {
        0 => {
            if let Some(b) = text.get_mut(at) {
                *b = if rng.below(2) == 0 {
                    *rng.pick(SYNTAX)
                } else {
                    rng.below(256) as u8
                };
            }
        }
        1 => {
            let len = 1 + rng.below(40);
            let end = (at + len).min(text.len());
            text.drain(at..end);
        }
        2 => {
            let len = 1 + rng.below(80);
            let end = (at + len).min(text.len());
            let copy = text[at..end].to_vec();
            let to = rng.below(n).min(text.len());
            text.splice(to..to, copy);
        }
        3..=5 => {
            // Replace a number (or the word after a `: `) by an extreme value.
            let digits: Vec<usize> = text
                .iter()
                .enumerate()
                .filter(|(i, b)| {
                    b.is_ascii_digit() && (*i == 0 || !text[i - 1].is_ascii_alphanumeric())
                })
                .map(|(i, _)| i)
                .collect();
            if digits.is_empty() {
                return;
            }
            let start = *rng.pick(&digits);
            let mut end = start;
            while end < text.len() && (text[end].is_ascii_alphanumeric() || text[end] == b'.') {
                end += 1;
            }
            let v = rng.pick(EXTREMES).as_bytes().to_vec();
            text.splice(start..end, v);
        }
        6 => {
            // Duplicate a whole line (repeated keys, repeated links).
            let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
            let i = rng.below(lines.len());
            let mut out: Vec<u8> = Vec::with_capacity(text.len() * 2);
            for (j, l) in lines.iter().enumerate() {
                out.extend_from_slice(l);
                out.push(b'\n');
                if j == i {
                    out.extend_from_slice(l);
                    out.push(b'\n');
                }
            }
            *text = out;
        }
        7 => {
            let s = huge();
            text.splice(at..at, s.into_bytes());
        }
        _ => {
            // Swap two lines.
            let mut lines: Vec<Vec<u8>> = text.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
            let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
            lines.swap(a, b);
            *text = lines.join(&b'\n');
        }
    }
}

fn mutate(rng: &mut SplitMix64, base: &str) -> String {
    let mut t = base.as_bytes().to_vec();
    for _ in 0..1 + rng.below(3) {
        mutate_once(rng, &mut t);
    }
    String::from_utf8_lossy(&t).into_owned()
}

/// What a reader may do with an input: accept it or refuse it cleanly.
#[derive(Debug, Default)]
struct Tally {
    ok: usize,
    refused: usize,
    panics: Vec<String>,
}

impl Tally {
    fn check(&self, what: &str) {
        assert!(
            self.panics.is_empty(),
            "{} of {} {what} inputs panicked; first ones:\n{}",
            self.panics.len(),
            self.ok + self.refused + self.panics.len(),
            self.panics
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n---\n")
        );
        // The mutations must reach both outcomes, or they test nothing.
        assert!(self.ok > 0 && self.refused > 0, "{what}: {self:?}");
    }
}

/// Builds `t` as a run would, on a small version of its workload (one layer, short
/// sequence) so that thousands of plans stay fast; the workload's own checks run first.
fn build(t: &Topology, wargs: &WorkloadArgs) -> Result<(), String> {
    let _ = dot::to_dot(t);
    if !runs_workload(t) {
        return stasim::run::build(t, None, None)
            .map(drop)
            .map_err(|e| e.to_string());
    }
    let mut w = resolve_workload(t, wargs).map_err(|e| e.to_string())?;
    w.layers = 1;
    w.seq = w.seq.min(48);
    w.batch = w.batch.min(2);
    w.per_layer.truncate(1);
    stasim::run::build(t, Some(&w), None)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Loads `text` with `sets` and builds it; `Err` carries the rendered error.
fn exercise(text: &str, sets: &[SetOverride], wargs: &WorkloadArgs) -> Result<(), String> {
    let src = Source {
        path: "mutant.yaml".into(),
        text: text.to_owned(),
    };
    let t = topology::load(&src, sets).map_err(|e| e.to_string())?;
    build(&t, wargs)
}

/// Runs `f` on one input, recording a panic with the input that caused it.
fn record(tally: &mut Tally, label: impl Fn() -> String, f: impl FnOnce() -> Result<(), String>) {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => tally.ok += 1,
        Ok(Err(msg)) => {
            // A clean error says what is wrong in a bounded message.
            let short = |s: &str| s.chars().take(400).collect::<String>();
            assert!(
                msg.starts_with("error: "),
                "{}: {}",
                short(&label()),
                short(&msg)
            );
            assert!(
                msg.len() < 8_000,
                "{}: a {}-byte message: {}",
                short(&label()),
                msg.len(),
                short(&msg)
            );
            tally.refused += 1;
        }
        Err(p) => {
            let why = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            let input: String = label().chars().take(600).collect();
            tally.panics.push(format!("{why}\ninput: {input}"));
        }
    }
}

#[test]
fn mutated_topology_files_load_or_fail_cleanly() {
    let mut tally = Tally::default();
    let mut rng = SplitMix64(0x5EED_0001);
    for case in 0..cases(4_000) {
        let (name, base) = BUILTIN[case % BUILTIN.len()];
        let text = mutate(&mut rng, base);
        record(
            &mut tally,
            || format!("case {case} from `{name}`:\n{text}"),
            || exercise(&text, &[], &WorkloadArgs::default()),
        );
    }
    tally.check("topology");
}

/// Keys a `--set` may name: every parameter of every module of the built-in topologies,
/// the top-level keys, energy keys, and some that do not exist.
fn set_keys() -> Vec<String> {
    let mut keys = vec![
        "clock_mhz".to_owned(),
        "name".into(),
        "energy.mac_pj".into(),
        "energy.static_mw".into(),
        "energy.nope".into(),
        "nope.rows".into(),
        "a.b.c".into(),
        ".".into(),
    ];
    for (_, text) in BUILTIN {
        let src = Source {
            path: "b".into(),
            text: (*text).into(),
        };
        let t = topology::load(&src, &[]).unwrap();
        for m in &t.modules {
            keys.push(format!("{}.clock_mhz", m.name));
            keys.push(format!("{}.static_mw", m.name));
            keys.push(format!("{}.kind", m.name));
            for p in m.spec.params {
                keys.push(format!("{}.{}", m.name, p.name));
            }
        }
    }
    keys
}

#[test]
fn mutated_set_overrides_apply_or_fail_cleanly() {
    let keys = set_keys();
    let mut tally = Tally::default();
    let mut rng = SplitMix64(0x5EED_0002);
    for case in 0..cases(4_000) {
        let (name, base) = BUILTIN[case % BUILTIN.len()];
        let n = 1 + rng.below(3);
        let args: Vec<String> = (0..n)
            .map(|_| {
                let key = rng.pick(&keys).clone();
                let value = match rng.below(4) {
                    0 => {
                        let v = *rng.pick(EXTREMES);
                        mutate(&mut rng, v)
                    }
                    1 => format!("[{}, {}]", rng.pick(EXTREMES), rng.pick(EXTREMES)),
                    _ => (*rng.pick(EXTREMES)).to_owned(),
                };
                match rng.below(12) {
                    0 => key,
                    1 => format!("{key}=="),
                    _ => format!("{key}={value}"),
                }
            })
            .collect();
        record(
            &mut tally,
            || format!("case {case} on `{name}`: --set {}", args.join(" --set ")),
            || {
                let sets = args
                    .iter()
                    .map(|a| SetOverride::parse(a))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())?;
                exercise(base, &sets, &WorkloadArgs::default())
            },
        );
    }
    tally.check("--set");
}

/// Pieces patterns are made of, good and bad.
const PATTERN_PIECES: &[&str] = &[
    "1",
    "2",
    "4",
    "8",
    "16",
    "0",
    "-1",
    "256",
    "512",
    "1024",
    "4294967295",
    "4294967296",
    "99999999999999999999",
    ":",
    "::",
    "=",
    ",",
    "dense",
    "DENSE",
    "qkv",
    "proj",
    "ffn1",
    "ffn2",
    "attn",
    " ",
    "",
    "2:4",
    "1:8",
    "qkv=2:8",
    "1.5",
    "+3",
    "ⅷ",
    "\u{0}",
];

#[test]
fn mutated_patterns_parse_or_fail_cleanly() {
    let mut tally = Tally::default();
    let mut rng = SplitMix64(0x5EED_0003);
    let small = Source::read("sta-small").unwrap();
    let topo = topology::load(&small, &[]).unwrap();
    for case in 0..cases(4_000) {
        let n = 1 + rng.below(12);
        let text: String = (0..n).map(|_| *rng.pick(PATTERN_PIECES)).collect();
        let text = if rng.below(4) == 0 {
            mutate(&mut rng, &text)
        } else {
            text
        };
        record(
            &mut tally,
            || format!("case {case}: --pattern {text:?}"),
            || {
                let _ = Pattern::parse(&text);
                let _ = Patterns::parse(&text);
                build(
                    &topo,
                    &WorkloadArgs {
                        pattern: Some(text.clone()),
                        ..WorkloadArgs::default()
                    },
                )
            },
        );
    }
    tally.check("pattern");
}

/// Workload sizes at and beyond every limit.
const SIZES: &[i64] = &[
    i64::MIN,
    -1,
    0,
    1,
    2,
    3,
    17,
    129,
    1 << 16,
    (1 << 16) + 1,
    1 << 20,
    (1 << 20) + 1,
    1 << 32,
    i64::MAX,
];

#[test]
fn extreme_workload_sizes_are_planned_or_refused_before_allocating() {
    let mut tally = Tally::default();
    let models = stasim::workload::preset_names();
    for (name, _) in BUILTIN {
        let topo = topology::load(&Source::read(name).unwrap(), &[]).unwrap();
        if !runs_workload(&topo) {
            continue;
        }
        for (i, &seq) in SIZES.iter().enumerate() {
            // Batches at the limits; large allowed batches would only make the test slow.
            for batch in [i64::MIN, -1, 0, 1, 3, 1 << 16, (1 << 16) + 1, i64::MAX] {
                let wargs = WorkloadArgs {
                    model: Some(models[i % models.len()].to_owned()),
                    seq: Some(seq),
                    batch: Some(batch),
                    layers: Some(if i % 4 == 0 {
                        SIZES[(i + 3) % SIZES.len()]
                    } else {
                        1
                    }),
                    ..WorkloadArgs::default()
                };
                record(
                    &mut tally,
                    || format!("`{name}` with {wargs:?}"),
                    || {
                        // The full workload is planned (or refused) here, not a small one.
                        let w = resolve_workload(&topo, &wargs).map_err(|e| e.to_string())?;
                        let w = stasim::workload::Workload { layers: 1, ..w };
                        topo.build_with(Some(&w), None)
                            .map(drop)
                            .map_err(|e| e.to_string())
                    },
                );
            }
        }
    }
    tally.check("workload size");
}

/// Runs the binary; returns its exit code.
fn exit_code(args: &[&str]) -> i32 {
    let out = Command::new(env!("CARGO_BIN_EXE_stasim"))
        .args(args)
        .output()
        .expect("the stasim binary runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked"),
        "stasim {} panicked:\n{err}",
        args.join(" ")
    );
    out.status.code().unwrap_or(-1)
}

#[test]
fn mutated_topologies_through_the_binary_exit_0_1_or_2() {
    let dir = crate::support::tmp_dir("mutation", "binary");
    let mut rng = SplitMix64(0x5EED_0004);
    let mut codes = [0usize; 3];
    for case in 0..cases(96).max(24) {
        let (_, base) = BUILTIN[case % BUILTIN.len()];
        let path = dir.join(format!("m{case}.yaml"));
        std::fs::write(&path, mutate(&mut rng, base)).unwrap();
        let p = path.to_str().unwrap();
        let cmd: &[&str] = match case % 3 {
            0 => &["check", p],
            1 => &["graph", p],
            _ => &["check", p, "--set", "clock_mhz=1e-3"],
        };
        let code = exit_code(cmd);
        assert!(
            (0..=2).contains(&code),
            "stasim {cmd:?} exited {code}; input kept at {p}"
        );
        codes[code as usize] += 1;
        let _ = std::fs::remove_file(&path);
    }
    assert!(codes[0] > 0 && codes[2] > 0, "{codes:?}");
    let _ = std::fs::remove_dir_all(dir);
}
