//! Design-space sweeps (`stasim sweep SWEEP.yaml`): a base run and the axes to vary, each
//! point run as its own `stasim run --json` child process.
//!
//! ```yaml
//! name: patterns                  # default: the file stem
//! topology: sta                   # file or built-in name
//! workload: {model: bert-base, seq: 128}   # base settings: model, seq, batch, layers, pattern
//! set: [dram.channels=1]          # base --set overrides
//! axes:                           # full product, first axis outermost ...
//!   pattern: [dense, "2:4", "2:8"]
//!   pe_array.rows: [8, 16, 32]    # any --set key
//! points:                         # ... and/or a list of points
//!   - {pattern: "1:8", dram.channels: 2}
//! jobs: 2                         # runs at once (default: the number of cores)
//! timeout_s: 600                  # per run
//! ```
//!
//! Every point is checked before any run starts: its `--set` keys and values against the
//! topology, its workload (model, pattern support, shapes) against the planner's rules.
//! A point is numbered by its position (product first, then `points`); `--shard I/N` runs
//! the points whose number is `I` modulo `N`, so shards are disjoint and cover the sweep.

pub mod results;
pub mod runner;

use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::component::Value;
use crate::run::{WorkloadArgs, resolve_workload};
use crate::topology::raw::OrderedMap;
use crate::topology::{self, InputError, Origin, SetOverride, Source};

/// Workload keys an axis may vary (everything else is a `--set` key).
pub const WORKLOAD_KEYS: [&str; 5] = ["model", "seq", "batch", "layers", "pattern"];

/// `axes:` as written: key -> located values.
type Axes = OrderedMap<Spanned<Vec<Spanned<Value>>>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    #[serde(default)]
    name: Option<String>,
    topology: Spanned<String>,
    #[serde(default)]
    workload: Option<OrderedMap<Spanned<Value>>>,
    #[serde(default)]
    set: Vec<Spanned<String>>,
    #[serde(default)]
    axes: Option<Spanned<Axes>>,
    #[serde(default)]
    points: Vec<Spanned<OrderedMap<Spanned<Value>>>>,
    #[serde(default)]
    jobs: Option<Spanned<i64>>,
    #[serde(default)]
    timeout_s: Option<Spanned<f64>>,
}

/// One point: its number and its settings, in order (`key`, value as written on the
/// command line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Point {
    /// Position in the sweep, from 0.
    pub index: usize,
    /// The varied settings.
    pub params: Vec<(String, String)>,
}

/// A validated sweep.
#[derive(Clone, Debug)]
pub struct Sweep {
    /// Name.
    pub name: String,
    /// Topology argument (path or built-in name), as `stasim run` takes it.
    pub topology: String,
    /// Base settings (workload keys and `--set` keys alike).
    pub base: Vec<(String, String)>,
    /// Every point.
    pub points: Vec<Point>,
    /// The base design's value of each varied key, where known (charts hold these fixed).
    pub reference: Vec<(String, String)>,
    /// Runs at once.
    pub jobs: usize,
    /// Per-run timeout, seconds.
    pub timeout_s: f64,
}

impl Point {
    /// The `stasim run` arguments of this point on `sweep`'s base.
    pub fn run_args(&self, sweep: &Sweep) -> Vec<String> {
        let mut args = vec!["run".to_string(), sweep.topology.clone(), "--json".into()];
        let mut settings: Vec<(String, String)> = sweep.base.clone();
        for (k, v) in &self.params {
            settings.retain(|(bk, _)| bk != k);
            settings.push((k.clone(), v.clone()));
        }
        for (k, v) in settings {
            if WORKLOAD_KEYS.contains(&k.as_str()) {
                args.push(format!("--{k}"));
                args.push(v);
            } else {
                args.push("--set".into());
                args.push(format!("{k}={v}"));
            }
        }
        args
    }
}

/// Parses `I/N` (`0 <= I < N`).
pub fn parse_shard(text: &str) -> Result<(usize, usize), InputError> {
    let bad = |why: &str| {
        InputError::new(
            format!("bad --shard `{text}`: {why}"),
            Origin::CommandLine(format!("--shard {text}")),
            "",
        )
        .with_hint("write I/N with 0 <= I < N, e.g. --shard 0/4 (Slurm: $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT with --array=0-3)")
    };
    let (i, n) = text.split_once('/').ok_or_else(|| bad("expected I/N"))?;
    let i: usize = i
        .trim()
        .parse()
        .map_err(|_| bad("I is not a whole number"))?;
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| bad("N is not a whole number"))?;
    if n == 0 {
        return Err(bad("N must be at least 1"));
    }
    if i >= n {
        return Err(bad("I must be less than N"));
    }
    Ok((i, n))
}

fn at(path: &str, l: &serde_saphyr::Location) -> Origin {
    Origin::File {
        path: path.to_owned(),
        line: l.line() as u32,
        column: l.column() as u32,
    }
}

/// A setting: key, value text, where it is written.
type Setting = (String, String, Origin);

/// Splits settings into `stasim run`'s workload arguments and `--set` overrides.
fn run_settings(
    settings: &[Setting],
    text: &str,
) -> Result<(WorkloadArgs, Vec<SetOverride>), InputError> {
    let mut wargs = WorkloadArgs::default();
    let mut sets = Vec::new();
    for (k, v, origin) in settings {
        let located = |msg: String, hint: &str| {
            InputError::new(msg, origin.clone(), k.clone())
                .with_hint(hint)
                .with_source(text)
        };
        let int = || {
            v.parse::<i64>().map_err(|_| {
                located(
                    format!("`{k}` = `{v}` is not a whole number"),
                    "give a positive integer",
                )
            })
        };
        match k.as_str() {
            "model" => wargs.model = Some(v.clone()),
            "pattern" => wargs.pattern = Some(v.clone()),
            "seq" => wargs.seq = Some(int()?),
            "batch" => wargs.batch = Some(int()?),
            "layers" => wargs.layers = Some(int()?),
            _ => sets.push(SetOverride::parse(&format!("{k}={v}")).map_err(|e| {
                located(
                    format!("`{k}`: {}", e.message),
                    e.hint.as_deref().unwrap_or("see `stasim models`"),
                )
            })?),
        }
    }
    Ok((wargs, sets))
}

/// The base design's value of each of `keys` (the values charts hold fixed when another
/// axis varies), as an axis would write it; keys it cannot name are left out.
fn reference_values(
    src: &Source,
    base: &[Setting],
    keys: &[String],
    text: &str,
) -> Vec<(String, String)> {
    let Ok((wargs, sets)) = run_settings(base, text) else {
        return Vec::new();
    };
    let Ok(topo) = topology::load(src, &sets) else {
        return Vec::new();
    };
    let w = resolve_workload(&topo, &wargs).ok();
    keys.iter()
        .filter_map(|k| {
            let value = match (k.as_str(), &w) {
                ("model", Some(w)) => w.model.name.to_string(),
                ("pattern", Some(w)) => w.patterns.qkv.to_string(),
                ("seq", Some(w)) => w.seq.to_string(),
                ("batch", Some(w)) => w.batch.to_string(),
                ("layers", Some(w)) => w.layers.to_string(),
                _ => {
                    let (inst, param) = k.split_once('.')?;
                    let m = topo.modules.iter().find(|m| m.name == inst)?;
                    m.params.iter().find(|(n, _)| *n == param)?.1.to_string()
                }
            };
            Some((k.clone(), value))
        })
        .collect()
}

/// Reads and validates a sweep file: every point is checked before anything runs.
pub fn load(path: &Path) -> Result<Sweep, InputError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        InputError::new(
            format!("cannot read sweep file `{p}`: {e}"),
            Origin::CommandLine(p.clone()),
            "",
        )
        .with_hint("give the path of a sweep YAML file (see the README, \"Sweeps\")")
    })?;
    let raw: RawSweep = serde_saphyr::from_str(&text).map_err(|e| {
        let (line, column) = e
            .location()
            .map_or((0, 0), |l| (l.line() as u32, l.column() as u32));
        InputError::new(
            e.without_snippet().to_string(),
            Origin::File {
                path: p.clone(),
                line,
                column,
            },
            "",
        )
        .with_hint("keys: name, topology, workload, set, axes, points, jobs, timeout_s")
        .with_source(&text)
    })?;
    let err = |msg: String, l: &serde_saphyr::Location, key: String, hint: &str| {
        InputError::new(msg, at(&p, l), key)
            .with_hint(hint)
            .with_source(&text)
    };
    let mut base: Vec<Setting> = raw
        .workload
        .iter()
        .flat_map(|m| m.0.iter())
        .map(|(k, v)| (k.value.clone(), v.value.to_string(), at(&p, &v.referenced)))
        .collect();
    for (k, _, o) in &base {
        if !WORKLOAD_KEYS.contains(&k.as_str()) {
            return Err(InputError::new(
                format!("unknown workload key `{k}`"),
                o.clone(),
                format!("workload.{k}"),
            )
            .with_hint(format!("workload keys: {}", WORKLOAD_KEYS.join(", ")))
            .with_source(&text));
        }
    }
    for s in &raw.set {
        let Some((k, v)) = s.value.split_once('=') else {
            return Err(err(
                format!("`{}` is not KEY=VALUE", s.value),
                &s.referenced,
                "set".into(),
                "write INSTANCE.PARAM=VALUE",
            ));
        };
        base.push((k.trim().into(), v.trim().into(), at(&p, &s.referenced)));
    }
    // Points: the product of the axes, then the listed points.
    let mut combos: Vec<Vec<Setting>> = vec![Vec::new()];
    let mut any_axis = false;
    if let Some(axes) = &raw.axes {
        for (key, values) in &axes.value.0 {
            any_axis = true;
            if values.value.is_empty() {
                return Err(err(
                    format!("axis `{}` has no values", key.value),
                    &key.referenced,
                    format!("axes.{}", key.value),
                    "give at least one value, e.g. [8, 16, 32], or remove the axis",
                ));
            }
            let file = p.as_str();
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    values.value.iter().map(move |v| {
                        let mut c = c.clone();
                        c.push((
                            key.value.clone(),
                            v.value.to_string(),
                            at(file, &v.referenced),
                        ));
                        c
                    })
                })
                .collect();
        }
    }
    if !any_axis {
        combos.clear();
    }
    for pt in &raw.points {
        combos.push(
            pt.value
                .0
                .iter()
                .map(|(k, v)| (k.value.clone(), v.value.to_string(), at(&p, &v.referenced)))
                .collect(),
        );
    }
    if combos.is_empty() {
        return Err(InputError::new(
            "the sweep has no points",
            Origin::File {
                path: p.clone(),
                line: 0,
                column: 0,
            },
            "axes",
        )
        .with_hint("add `axes:` (a product) or `points:` (a list)"));
    }
    let src = Source::read(&raw.topology.value).map_err(|e| {
        err(
            format!("topology `{}`: {}", raw.topology.value, e.message),
            &raw.topology.referenced,
            "topology".into(),
            "a topology file path (relative to where stasim runs) or a built-in name",
        )
    })?;
    // Validate every point as `stasim run` would, before running any.
    let mut points = Vec::with_capacity(combos.len());
    for (index, combo) in combos.into_iter().enumerate() {
        let mut settings = base.clone();
        for s in &combo {
            settings.retain(|b| b.0 != s.0);
            settings.push(s.clone());
        }
        let (wargs, sets) = run_settings(&settings, &text)?;
        let at_point = |e: InputError, settings: &[Setting]| {
            let origin = settings
                .iter()
                .rev()
                .find(|s| {
                    let module = s.0.split('.').next().unwrap_or(&s.0);
                    e.key.starts_with(&s.0)
                        || e.message.contains(&s.0)
                        || e.key.ends_with(&format!(".{module}"))
                        || e.message.contains(&format!("`{module}`"))
                })
                .map_or_else(|| at(&p, &raw.topology.referenced), |s| s.2.clone());
            InputError::new(
                format!("point {index}: {}", e.message),
                origin,
                e.key.clone(),
            )
            .with_hint(
                e.hint
                    .clone()
                    .unwrap_or_else(|| "see `stasim models` and `stasim run --help`".into()),
            )
            .with_source(&text)
        };
        let topo = topology::load(&src, &sets).map_err(|e| at_point(e, &settings))?;
        let w = resolve_workload(&topo, &wargs).map_err(|e| at_point(e, &settings))?;
        w.validate()
            .map_err(|m| at_point(InputError::new(m, Origin::Builtin, ""), &settings))?;
        // Building plans the run: an unsupported M or a buffer too small shows here.
        topo.build_with(Some(&w), None)
            .map_err(|e| at_point(e, &settings))?;
        points.push(Point {
            index,
            params: combo.into_iter().map(|(k, v, _)| (k, v)).collect(),
        });
    }
    let jobs = match &raw.jobs {
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        Some(j) if j.value >= 1 => j.value as usize,
        Some(j) => {
            return Err(err(
                format!("`jobs` = {} must be at least 1", j.value),
                &j.referenced,
                "jobs".into(),
                "omit it to use every core",
            ));
        }
    };
    let timeout_s = match &raw.timeout_s {
        None => 3600.0,
        Some(t) if t.value > 0.0 => t.value,
        Some(t) => {
            return Err(err(
                format!("`timeout_s` = {} must be positive", t.value),
                &t.referenced,
                "timeout_s".into(),
                "seconds per run, e.g. 600",
            ));
        }
    };
    let mut varied: Vec<String> = Vec::new();
    for p in &points {
        for (k, _) in &p.params {
            if !varied.contains(k) {
                varied.push(k.clone());
            }
        }
    }
    let reference = reference_values(&src, &base, &varied, &text);
    let name = raw.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map_or_else(|| "sweep".into(), |s| s.to_string_lossy().into_owned())
    });
    Ok(Sweep {
        name,
        topology: raw.topology.value.clone(),
        base: base.into_iter().map(|(k, v, _)| (k, v)).collect(),
        points,
        reference,
        jobs,
        timeout_s,
    })
}
