//! Helpers shared by the tests: a recording observer and topology loading from text.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use stasim::kernel::{ActorId, LinkId, LinkSpec, Observer, ProbeValue, SimTime};
use stasim::topology::{self, InputError, SetOverride, Source, Topology};
use stasim::txn::Transaction;

/// One observed kernel hook call.
#[derive(Clone, Debug, PartialEq)]
pub enum Seen {
    Send {
        at_ps: u64,
        link: u32,
        id: u64,
        visible_ps: u64,
    },
    Recv {
        at_ps: u64,
        link: u32,
        id: u64,
    },
    Probe {
        at_ps: u64,
        actor: u32,
        signal: &'static str,
        value: String,
    },
}

/// Records every hook call into a shared log.
#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Vec<Seen>>>);

fn id_of(m: &Transaction) -> u64 {
    match m {
        Transaction::Token(t) => t.id,
        Transaction::MemReq(r) => r.id,
        Transaction::MemResp(r) => r.id,
        #[allow(unreachable_patterns)]
        _ => u64::MAX,
    }
}

impl Observer<Transaction> for Recorder {
    fn on_start(&mut self, _actors: &[String], _links: &[LinkSpec]) {}
    fn on_send(&mut self, now: SimTime, link: LinkId, msg: &Transaction, visible_at: SimTime) {
        self.0.lock().unwrap().push(Seen::Send {
            at_ps: now.as_ps(),
            link: link.0,
            id: id_of(msg),
            visible_ps: visible_at.as_ps(),
        });
    }
    fn on_recv(&mut self, now: SimTime, link: LinkId, msg: &Transaction) {
        self.0.lock().unwrap().push(Seen::Recv {
            at_ps: now.as_ps(),
            link: link.0,
            id: id_of(msg),
        });
    }
    fn on_probe(&mut self, now: SimTime, actor: ActorId, signal: &'static str, value: ProbeValue) {
        self.0.lock().unwrap().push(Seen::Probe {
            at_ps: now.as_ps(),
            actor: actor.0,
            signal,
            value: format!("{value:?}"),
        });
    }
}

impl Recorder {
    /// Times (ns) at which transactions were sent on `link`.
    pub fn send_times_ns(&self, link: u32) -> Vec<u64> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|s| match s {
                Seen::Send { at_ps, link: l, .. } if *l == link => Some(at_ps / 1000),
                _ => None,
            })
            .collect()
    }
    /// Times (ps) at which transactions were received from `link`.
    pub fn recv_times_ps(&self, link: u32) -> Vec<u64> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|s| match s {
                Seen::Recv { at_ps, link: l, .. } if *l == link => Some(*at_ps),
                _ => None,
            })
            .collect()
    }
}

/// Loads a topology from YAML text with overrides.
pub fn load_text(yaml: &str, sets: &[&str]) -> Result<Topology, InputError> {
    let src = Source {
        path: "test.yaml".into(),
        text: yaml.into(),
    };
    let sets: Vec<SetOverride> = sets
        .iter()
        .map(|s| SetOverride::parse(s))
        .collect::<Result<_, _>>()?;
    topology::load(&src, &sets)
}

/// Loads a topology that must be valid.
pub fn load_ok(yaml: &str) -> Topology {
    match load_text(yaml, &[]) {
        Ok(t) => t,
        Err(e) => panic!("topology should load:\n{e}"),
    }
}

/// Runs a topology and returns it with its finished simulation.
pub fn run_ok(
    yaml: &str,
    sets: &[&str],
) -> (
    Topology,
    stasim::kernel::Simulation<Transaction>,
    stasim::kernel::RunSummary,
) {
    let topo = load_text(yaml, sets).unwrap_or_else(|e| panic!("{e}"));
    let mut sim = topo.build().unwrap_or_else(|e| panic!("{e}"));
    let summary = sim.run().unwrap_or_else(|e| panic!("{e}"));
    (topo, sim, summary)
}

/// A statistic of module `name` as an integer.
pub fn stat_u64(
    topo: &Topology,
    sim: &stasim::kernel::Simulation<Transaction>,
    name: &str,
    stat: &str,
) -> u64 {
    let idx = topo
        .module_index(name)
        .unwrap_or_else(|| panic!("no module {name}"));
    sim.actor_stats(ActorId(idx as u32))
        .into_iter()
        .find_map(|(n, v)| match v {
            stasim::kernel::StatValue::U64(x) if n == stat => Some(x),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no u64 stat {stat} on {name}"))
}

/// Seeded values uniform in [-0.1, 0.1) (xorshift64).
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
        })
        .collect()
}

/// `v` encoded little endian as `dtype` (F16, BF16, else F32).
pub fn encode(v: &[f32], dtype: safetensors::Dtype) -> Vec<u8> {
    use safetensors::Dtype;
    match dtype {
        Dtype::F16 => v
            .iter()
            .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
            .collect(),
        Dtype::BF16 => v
            .iter()
            .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
            .collect(),
        _ => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

/// Shape of a generated BERT-style checkpoint.
pub struct CkptShape {
    /// Hidden size.
    pub d: usize,
    /// FFN size.
    pub f: usize,
    /// Layers.
    pub layers: usize,
    /// Heads, written to a `config.json` beside the file (else stasim assumes `d / 64`).
    pub heads: Option<usize>,
    /// Every bias and both LayerNorms (what a functional run needs), not just some.
    pub complete: bool,
}

/// Writes `dir/model.safetensors`: a seeded BERT-style encoder with the real tensor names
/// (linear weights in `dtype`, the rest F32).
pub fn bert_checkpoint(
    dir: &std::path::Path,
    dtype: safetensors::Dtype,
    shape: &CkptShape,
) -> std::path::PathBuf {
    use safetensors::{Dtype, serialize_to_file, tensor::TensorView};
    let (d, f) = (shape.d, shape.f);
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>, Dtype)> = Vec::new();
    let mut seed = 7;
    let mut add = |name: String, shape: Vec<usize>, dt: Dtype| {
        seed += 1;
        let n: usize = shape.iter().product();
        tensors.push((name, shape, encode(&values(n, seed), dt), dt));
    };
    add(
        "embeddings.word_embeddings.weight".into(),
        vec![50, d],
        Dtype::F32,
    );
    for l in 0..shape.layers {
        let p = format!("encoder.layer.{l}.");
        for n in ["query", "key", "value"] {
            add(format!("{p}attention.self.{n}.weight"), vec![d, d], dtype);
            add(format!("{p}attention.self.{n}.bias"), vec![d], Dtype::F32);
        }
        add(
            format!("{p}attention.output.dense.weight"),
            vec![d, d],
            dtype,
        );
        add(
            format!("{p}attention.output.LayerNorm.weight"),
            vec![d],
            Dtype::F32,
        );
        add(format!("{p}intermediate.dense.weight"), vec![f, d], dtype);
        add(format!("{p}output.dense.weight"), vec![d, f], dtype);
        if shape.complete {
            for (name, n) in [
                ("attention.output.dense.bias", d),
                ("attention.output.LayerNorm.bias", d),
                ("intermediate.dense.bias", f),
                ("output.dense.bias", d),
                ("output.LayerNorm.weight", d),
                ("output.LayerNorm.bias", d),
            ] {
                add(format!("{p}{name}"), vec![n], Dtype::F32);
            }
        }
    }
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, s, b, dt)| (n.clone(), TensorView::new(*dt, s.clone(), b).unwrap()))
        .collect();
    let path = dir.join("model.safetensors");
    serialize_to_file(views, None, &path).unwrap();
    if let Some(h) = shape.heads {
        std::fs::write(
            dir.join("config.json"),
            format!("{{\"num_attention_heads\": {h}}}"),
        )
        .unwrap();
    }
    path
}

/// Says that the running test is skipped, and why, where `cargo test` shows it: libtest
/// captures (and hides) what a passing test prints with `eprintln!`, but not a direct write
/// to stderr.
pub fn skipped(reason: &str) {
    use std::io::Write;
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("a test");
    let _ = writeln!(std::io::stderr(), "skipped: {name}: {reason}");
}

/// A model file a fetch script puts under `~/.cache/stasim/` (or at `$env`), if it is
/// there; else says the test is skipped, naming the script.
fn cached_model(env: &str, cache_path: &str, script: &str) -> Option<PathBuf> {
    let path = std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/stasim")
            .join(cache_path)
    });
    if path.exists() {
        Some(path)
    } else {
        skipped(&format!("{} not found (run {script})", path.display()));
        None
    }
}

/// Where scripts/fetch-minilm.sh puts MiniLM-L6 (or `$STASIM_MINILM`), if it is there; else
/// says the test is skipped.
pub fn minilm_path() -> Option<PathBuf> {
    cached_model(
        "STASIM_MINILM",
        "minilm/model.safetensors",
        "scripts/fetch-minilm.sh",
    )
}

/// Where scripts/fetch-smollm2.sh puts the SmolLM2 GGUF (or `$STASIM_SMOLLM2`), if it is
/// there; else says the test is skipped.
pub fn smollm2_path() -> Option<PathBuf> {
    cached_model(
        "STASIM_SMOLLM2",
        "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "scripts/fetch-smollm2.sh",
    )
}

/// The SmolLM2 GGUF when the calibration and evaluation text is fetched too (what calibrated
/// pruning and perplexity need); else says the test is skipped, naming the missing script.
pub fn smollm2_and_text() -> Option<PathBuf> {
    with_text(smollm2_path()?)
}

/// MiniLM's safetensors when the calibration and evaluation text is fetched too; else says
/// the test is skipped, naming the missing script.
pub fn minilm_and_text() -> Option<PathBuf> {
    with_text(minilm_path()?)
}

/// `model` if the calibration and evaluation text is fetched; else says the test is skipped.
fn with_text(model: PathBuf) -> Option<PathBuf> {
    if !stasim::eval::text::default_dir().join("COMPLETE").exists() {
        skipped("the calibration and evaluation text is not fetched (run scripts/fetch-text.sh)");
        return None;
    }
    Some(model)
}

/// The Python interpreter (`$STASIM_PYTHON`, else `python3`) if it imports numpy and gguf;
/// else says the test is skipped.
pub fn python_with_gguf() -> Option<String> {
    python_with("numpy, gguf", "numpy and gguf", "numpy gguf")
}

/// The Python interpreter (`$STASIM_PYTHON`, else `python3`) if it runs `import MODULES`;
/// else says the test is skipped: "PY with WHAT is not available (CI installs them: python3
/// -m pip install PIP)".
pub fn python_with(modules: &str, what: &str, pip: &str) -> Option<String> {
    let py = std::env::var("STASIM_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = std::process::Command::new(&py)
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Some(py)
    } else {
        skipped(&format!(
            "{py} with {what} is not available (CI installs them: python3 -m pip install {pip})"
        ));
        None
    }
}

/// Asserts that the command run with `args` gave `r`: exit 2 (bad input), an error naming
/// `names` (the flag, key or file at fault), no panic.
pub fn assert_input_error(r: &std::process::Output, args: &dyn std::fmt::Debug, names: &str) {
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(names), "{args:?} does not name {names}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
}

/// A fresh, empty temporary folder for one test: `stasim-GROUP-PID-NAME`.
pub fn tmp_dir(group: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("stasim-{group}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// SplitMix64 for reproducible mutation tests: the seed, stepped by the library's generator
/// (`stasim::rng::SplitMix64`, the one implementation of the sequence).
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut g = stasim::rng::SplitMix64::new(self.0);
        let x = g.next_u64();
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        x
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// True one time in `one_in`.
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Fails with every panic message collected by a mutation test, if there was any.
pub fn assert_no_panics(panics: &[String]) {
    assert!(
        panics.is_empty(),
        "{} panics:\n{}",
        panics.len(),
        panics.join("\n")
    );
}

/// The report of a run of built-in or file topology `topo` with `args` and `--set` values
/// `sets` (panics with the error on failure).
pub fn run_report(
    topo: &str,
    args: stasim::run::WorkloadArgs,
    sets: &[&str],
) -> stasim::report::Report {
    use stasim::topology::{self, SetOverride, Source};
    let src = Source::read(topo).unwrap();
    let sets: Vec<SetOverride> = sets
        .iter()
        .map(|s| SetOverride::parse(s).unwrap())
        .collect();
    let t = topology::load(&src, &sets).unwrap_or_else(|e| panic!("{e}"));
    let w = stasim::run::resolve_workload(&t, &args).unwrap_or_else(|e| panic!("{e}"));
    stasim::run::simulate(&t, &w, None, None, None)
        .unwrap_or_else(|e| panic!("{e}"))
        .report
}

/// The real SmolLM2 GGUF pruned 2:4 by `stasim prune`, or `None` when the GGUF is not there
/// (see [`smollm2_pruned`]).
pub fn smollm2_2of4() -> Option<PathBuf> {
    smollm2_pruned("2:4")
}

/// The real SmolLM2 GGUF pruned by magnitude to `pattern` in every class by `stasim prune`
/// (once per test binary and pattern, into a temporary folder), or `None` when the GGUF is
/// not there (the test is skipped and says so).
pub fn smollm2_pruned(pattern: &str) -> Option<PathBuf> {
    static PRUNED: std::sync::Mutex<std::collections::BTreeMap<String, PathBuf>> =
        std::sync::Mutex::new(std::collections::BTreeMap::new());
    let src = smollm2_path()?;
    let mut done = PRUNED.lock().unwrap_or_else(|e| e.into_inner());
    let path = done.entry(pattern.to_owned()).or_insert_with(|| {
        let tag = pattern.replace(':', "of");
        let out = tmp_dir("smollm2", &tag).join(format!("smollm2-{tag}.stanm"));
        let p = stasim::workload::Pattern::parse(pattern).unwrap();
        let scheme =
            stasim::workload::stanm::Scheme::Patterns(stasim::workload::Patterns::uniform(p));
        stasim::gguf::prune::prune_gguf(&src, &scheme, &out, 1, None, &mut |_| {}).unwrap();
        out
    });
    Some(path.clone())
}
