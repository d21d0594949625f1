//! Mutation test of the sweep file loader: thousands of seeded mutations of the sweeps in
//! `sweeps/` and of the sweep tests (byte edits, deleted, repeated and swapped lines, keys
//! set to extreme values, long strings, truncations), each loaded in-process
//! (`stasim::sweep::from_text`; no point runs), and every setting a sweep can make (each
//! module parameter, workload key and file key) at every extreme value. Each must load as a
//! sweep its runner can run without panicking, or be refused with a clean error; never
//! panic, never exhaust memory (each test runs in a child process with a 4 GiB address-space
//! limit). A sample goes through the binary (`--dry-run`: exit 0 for what loads, 2 for what
//! is refused).

use std::path::{Path, PathBuf};

use crate::support::{SplitMix64, tmp_dir};
use crate::sweep::{QUICK_POINT, SMALL, sweep};

/// Values at and beyond every edge: zero, negatives, huge, non-finite, 2^63, empty, paths,
/// patterns that divide by zero or overflow a byte.
const EXTREMES: [&str; 40] = [
    "0",
    "-1",
    "1e300",
    "-1e300",
    "1e-300",
    ".inf",
    "-.inf",
    ".nan",
    "9223372036854775808",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "4611686018427387904",
    "2305843009213693952",
    "4294967296",
    "65536",
    "4097",
    "100001",
    "0.0",
    "-0",
    "''",
    "\"\"",
    "~",
    "[]",
    "{}",
    "[[]]",
    "{a: {b: c}}",
    ".",
    "..",
    "a/b",
    "../../x",
    "/dev/null",
    "0:0",
    "1:0",
    "0:4",
    "5:4",
    "1:256",
    "1:512",
    "1:18446744073709551616",
    "&a [*a]",
];

/// Top-level keys of a sweep file, and keys a point or axis may set.
const KEYS: [&str; 16] = [
    "name",
    "topology",
    "workload",
    "set",
    "axes",
    "points",
    "jobs",
    "timeout_s",
    "model",
    "seq",
    "batch",
    "layers",
    "pattern",
    "pe_array.rows",
    "dram.channels",
    "controller.zzz",
];

/// The sweeps in `sweeps/`, made quick to check (two values on the first axis, one on the
/// others, one layer of 16 tokens), and the sweeps of these tests: what the mutations start
/// from.
fn mutation_seeds() -> Vec<String> {
    let mut seeds = vec![
        SMALL.to_string(),
        format!("topology: sta-small\npoints:\n  - {QUICK_POINT}\n  - {{model: minilm-l6, layers: 1, seq: 8, pattern: 1:4, dram.channels: 2}}\n"),
        "topology: sta-small\nworkload: {model: minilm-l6, layers: 1, seq: 8}\nset: [dram.channels=2, pe_array.rows=8]\naxes:\n  pattern: [2:4, 1:8]\n  batch: [1, 2]\njobs: 3\ntimeout_s: 0.5\n".to_string(),
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no sweeps in {}", dir.display());
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let mut out = String::new();
        let mut workload = false;
        let mut axis_values = 2;
        for line in text.lines() {
            let line = if let Some(rest) = line.strip_prefix("workload: {") {
                workload = true;
                let kept: Vec<&str> = rest
                    .trim_end_matches('}')
                    .split(", ")
                    .filter(|kv| !kv.starts_with("seq:") && !kv.starts_with("layers:"))
                    .collect();
                format!("workload: {{layers: 1, seq: 16, {}}}", kept.join(", "))
            } else if line.starts_with("  ") && line.ends_with(']') && line.contains(": [") {
                let (key, list) = line.split_once(": [").unwrap();
                let values: Vec<&str> = list
                    .trim_end_matches(']')
                    .split(", ")
                    .take(axis_values)
                    .collect();
                axis_values = 1;
                format!("{key}: [{}]", values.join(", "))
            } else {
                line.to_string()
            };
            out.push_str(&line);
            out.push('\n');
        }
        if !workload {
            out.push_str("workload: {layers: 1, seq: 16}\n");
        }
        seeds.push(out);
    }
    seeds
}

/// One to three random edits of `text`.
fn mutate(rng: &mut SplitMix64, text: &str) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(b.len() + 1);
        let lines: Vec<&[u8]> = b.split(|&c| c == b'\n').collect();
        let line = rng.below(lines.len());
        match rng.below(12) {
            0 if at < b.len() => b[at] ^= 1 << rng.below(8),
            1 if at < b.len() => b[at] = *rng.pick(b": {}[],-'\"#&*!|>%@`\n\t09.e\\\x00\xff"),
            2 => {
                let end = (at + 1 + rng.below(8)).min(b.len());
                b.drain(at.min(end)..end);
            }
            3 => {
                let s = *rng.pick(&[
                    ":", " ", "\n", "-", "[", "]", "{", "}", ",", "'", "\"", "#", "&a", "*a",
                    "!!str",
                ]);
                b.splice(at..at, s.bytes());
            }
            4 => {
                // A word or number becomes an extreme value.
                let word = |c: u8| c.is_ascii_alphanumeric() || b"._:-".contains(&c);
                let start = (0..at)
                    .rev()
                    .take_while(|&i| word(b[i]))
                    .last()
                    .unwrap_or(at);
                let end = (at..b.len()).find(|&i| !word(b[i])).unwrap_or(b.len());
                b.splice(start..end, rng.pick(&EXTREMES).bytes());
            }
            5 => {
                let mut l = lines.clone();
                l.insert(line, lines[line]);
                b = l.join(&b'\n');
            }
            6 => {
                let mut l = lines.clone();
                l.remove(line);
                b = l.join(&b'\n');
            }
            7 => {
                let mut l = lines.clone();
                let other = rng.below(lines.len());
                l.swap(line, other);
                b = l.join(&b'\n');
            }
            8 => {
                // A key, at the top or in a block, set to an extreme value.
                let indent = *rng.pick(&["", "  ", "  - "]);
                let new = format!("{indent}{}: {}", rng.pick(&KEYS), rng.pick(&EXTREMES));
                let mut l = lines.clone();
                l.insert(line, new.as_bytes());
                b = l.join(&b'\n');
            }
            9 => {
                // A long value.
                let long = "x".repeat(1 + rng.below(20_000));
                let new = format!("{}: {long}", rng.pick(&KEYS));
                let mut l = lines.clone();
                l.insert(line, new.as_bytes());
                b = l.join(&b'\n');
            }
            10 => {
                // A top-level value (the file's own, or a new key) becomes an extreme value.
                let key = *rng.pick(&["name", "jobs", "timeout_s", "topology"]);
                let new = format!("{key}: {}", rng.pick(&EXTREMES));
                let mut l: Vec<&[u8]> = lines
                    .iter()
                    .copied()
                    .filter(|l| !l.starts_with(format!("{key}:").as_bytes()))
                    .collect();
                l.push(new.as_bytes());
                b = l.join(&b'\n');
            }
            _ => b.truncate(at),
        }
    }
    b
}

/// What a loaded sweep must be for its run not to panic, checked independently of the
/// loader: runs at once that tokio's semaphore can count (`usize::MAX >> 3`), a timeout a
/// `Duration` can hold, a name that is one folder name, points that exist.
fn runnable(s: &stasim::sweep::Sweep) -> Result<(), String> {
    let name_ok = !s.name.is_empty()
        && s.name != "."
        && s.name != ".."
        && !s.name.contains(['/', '\\', '\0']);
    let timeout_ok = s.timeout_s > 0.0
        && std::time::Duration::try_from_secs_f64(s.timeout_s).is_ok_and(|d| d.as_secs() < 1 << 40);
    if (1..=usize::MAX >> 3).contains(&s.jobs) && timeout_ok && name_ok && !s.points.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "loaded but cannot run: jobs {}, timeout_s {}, name {:?}, {} points",
            s.jobs,
            s.timeout_s,
            s.name,
            s.points.len()
        ))
    }
}

/// What loading `text` gives: a sweep that can run, a refusal with its rendered message
/// (`Ok(Err)`), or a panic or a loaded sweep that cannot run (`Err`).
fn load_mutant(text: &str) -> Result<Result<usize, String>, String> {
    // In a memory-limited child, leave the input where the parent can show it if it aborts.
    if let Some(last) = std::env::var_os(CHILD) {
        std::fs::write(last, text).unwrap();
    }
    std::panic::catch_unwind(|| {
        stasim::sweep::from_text(Path::new("mutant.yaml"), text)
            .map(|s| runnable(&s).map(|()| s.points.len()))
            .map_err(|e| e.to_string())
    })
    .map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default()
    })
    .and_then(|loaded| match loaded {
        Ok(runs) => runs.map(Ok),
        Err(refused) => Ok(Err(refused)),
    })
}

#[test]
fn splitmix64_gives_the_reference_sequence() {
    // The first outputs for seed 0 of the reference C implementation (Vigna).
    let mut r = SplitMix64(0);
    assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
    assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    assert_eq!(r.next_u64(), 0x06c4_5d18_8009_454f);
}

/// Set in the memory-limited child: where it writes each input before loading it.
const CHILD: &str = "STASIM_MUTATION_TEST_LAST_INPUT";

/// Most address space a mutation test may use: an input that would take more fails the
/// test instead of exhausting the machine's memory.
const MEMORY_LIMIT_BYTES: u64 = 4 << 30;

/// Runs `body` in a child process (this test binary running only the test `name`, of this
/// module) whose address space is limited to [`MEMORY_LIMIT_BYTES`] (an allocation beyond
/// it aborts the child); fails if the child fails. In that child, runs `body`.
fn with_memory_limit(name: &str, body: impl FnOnce()) {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(CHILD).is_some() {
        body();
        return;
    }
    let test = format!(
        "{}::{name}",
        module_path!().split_once("::").map_or("", |m| m.1)
    );
    let dir = tmp_dir("sweep", name);
    let last = dir.join("last-input.yaml");
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([
        test.as_str(),
        "--exact",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env(CHILD, &last);
    // SAFETY: setrlimit is async-signal-safe; the closure allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: MEMORY_LIMIT_BYTES,
                rlim_max: MEMORY_LIMIT_BYTES,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    eprint!("{err}");
    assert!(
        o.status.success() && out.contains("1 passed"),
        "{test} in a child limited to {} GiB: {} (SIGABRT: an allocation beyond the \
         limit)\n{out}\nthe last input it loaded (the one at fault if it aborted):\n{}",
        MEMORY_LIMIT_BYTES >> 30,
        o.status,
        std::fs::read_to_string(&last).unwrap_or_default()
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn every_setting_at_every_extreme_loads_or_is_refused_and_never_panics() {
    with_memory_limit(
        "every_setting_at_every_extreme_loads_or_is_refused_and_never_panics",
        || {
            // Every key a sweep may set: workload keys and every parameter of the topology's
            // modules (in a point), and the file's own keys.
            let src = stasim::topology::Source::read("sta-small").unwrap();
            let topo = stasim::topology::load(&src, &[]).unwrap();
            let mut point_keys: Vec<String> =
                stasim::sweep::WORKLOAD_KEYS.map(String::from).to_vec();
            for m in &topo.modules {
                point_keys.extend(m.params.iter().map(|(p, _)| format!("{}.{p}", m.name)));
            }
            let base = "topology: sta-small\nworkload: {model: minilm-l6, layers: 1, seq: 16}\n";
            let mut texts: Vec<String> = Vec::new();
            for key in &point_keys {
                for x in EXTREMES {
                    texts.push(format!("{base}points:\n  - {{{key}: {x}}}\n"));
                }
            }
            for key in [
                "name",
                "topology",
                "jobs",
                "timeout_s",
                "set",
                "axes",
                "points",
                "workload",
            ] {
                for x in EXTREMES {
                    texts.push(format!(
                        "{base}points:\n  - {{pattern: dense}}\n{key}: {x}\n"
                    ));
                }
            }
            // A debug build checks every seventh (7 is prime to the number of extremes, so every
            // extreme is checked for some key).
            let step = if cfg!(debug_assertions) { 7 } else { 1 };
            let t0 = std::time::Instant::now();
            let mut panics = Vec::new();
            let mut checked = 0;
            for text in texts.iter().step_by(step) {
                checked += 1;
                if let Err(p) = load_mutant(text) {
                    panics.push(format!("{p}\n{text}"));
                }
            }
            eprintln!(
                "{checked} settings at extremes: {} panicked, in {:.2} s",
                panics.len(),
                t0.elapsed().as_secs_f64()
            );
            crate::support::assert_no_panics(&panics);
        },
    );
}

#[test]
fn mutated_sweep_files_load_or_are_refused_and_never_panic() {
    with_memory_limit(
        "mutated_sweep_files_load_or_are_refused_and_never_panic",
        || {
            let seeds = mutation_seeds();
            for (i, s) in seeds.iter().enumerate() {
                assert!(
                    load_mutant(s).is_ok_and(|r| r.is_ok()),
                    "seed {i} does not load:\n{s}"
                );
            }
            let per_seed = if cfg!(debug_assertions) { 100 } else { 400 };
            let mut rng = SplitMix64(0x5eed_0011);
            let (mut loaded, mut refused) = (0, 0);
            let mut panics = Vec::new(); // or loaded sweeps that cannot run
            let mut samples: Vec<(Vec<u8>, bool)> = Vec::new();
            let t0 = std::time::Instant::now();
            for (s, seed) in seeds.iter().enumerate() {
                for i in 0..per_seed {
                    let bytes = mutate(&mut rng, seed);
                    // Sweep files are UTF-8 (`load` refuses others cleanly; the binary check below
                    // sends some).
                    let text = String::from_utf8_lossy(&bytes);
                    let outcome = load_mutant(&text);
                    let ok = matches!(outcome, Ok(Ok(_)));
                    match outcome {
                        Ok(Ok(_)) => loaded += 1,
                        Ok(Err(msg)) => {
                            assert!(msg.starts_with("error: "), "{msg}");
                            refused += 1;
                        }
                        Err(p) => panics.push(format!("seed {s}, mutant {i}: {p}\n{text}")),
                    }
                    if i % (per_seed / 8) == 0 {
                        samples.push((text.into_owned().into_bytes(), ok));
                    }
                }
            }
            eprintln!(
                "{} mutants: {loaded} loaded, {refused} refused, {} panicked or cannot run, in {:.2} s",
                loaded + refused + panics.len(),
                panics.len(),
                t0.elapsed().as_secs_f64()
            );
            assert!(
                panics.is_empty(),
                "{} panics or loaded sweeps that cannot run; first:\n{}",
                panics.len(),
                panics[0]
            );
            assert!(
                loaded > 0 && refused > 0,
                "{loaded} loaded, {refused} refused"
            );
            // Some through the binary (`--dry-run`): 0 when the loader took it, else 2; and files
            // that are not UTF-8.
            let dir = tmp_dir("sweep", "mutants");
            samples.push((b"topology: sta\xff\xfe\n".to_vec(), false));
            samples.push((b"\x00\x01\x02".to_vec(), false));
            for (i, (bytes, ok)) in samples.iter().enumerate() {
                let f = dir.join(format!("m{i}.yaml"));
                std::fs::write(&f, bytes).unwrap();
                let o = sweep(&[f.to_str().unwrap(), "--dry-run"]);
                assert_eq!(
                    o.status.code(),
                    Some(if *ok { 0 } else { 2 }),
                    "{}:\n{}\n{}",
                    f.display(),
                    String::from_utf8_lossy(bytes),
                    String::from_utf8_lossy(&o.stderr)
                );
            }
            let _ = std::fs::remove_dir_all(dir);
        },
    );
}
