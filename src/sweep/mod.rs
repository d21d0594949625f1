//! Design-space sweeps (`stasim sweep SWEEP.yaml`): a base run and the axes to vary, each
//! point run as its own `stasim run --json` child process.
//!
//! ```yaml
//! name: patterns                  # default: the file stem
//! topology: sta                   # file or built-in name
//! workload: {model: bert-base, seq: 128}   # base: model, seq, batch, layers, pattern, context
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
//! Every point is checked before any run starts. Settings no run could take are errors of
//! the sweep file (exit 2, nothing runs): bad YAML, an unknown key or parameter, a value of
//! the wrong type or outside its parameter's range, an unknown model or a malformed
//! pattern, a workload key on a topology without a controller. A point whose settings are
//! each valid but whose design cannot run (building it fails: a buffer too small for one
//! tile, an unsupported M, a DRAM smaller than the tensors) is *infeasible*: it is recorded
//! as a failed point with its error and exit code 2, as `stasim run` would fail, and the
//! others run. A sweep with no feasible point at all is refused like a bad file.
//!
//! On a topology without a `controller` (a traffic generator driving a DRAM, the
//! `pipeline` benchmark) each point runs the modules as `stasim run` does and records the
//! plain report: when the run ended, every module's statistics, every link's traffic.
//! A point is numbered by its position (product first, then `points`); `--shard I/N` runs
//! the points whose number is `I` modulo `N`, so shards are disjoint and cover the sweep.
//!
//! The name is a folder name (no path separators, not empty, `.` or `..`); `jobs`,
//! `timeout_s` and the number of points have ranges ([`MAX_JOBS`], [`MAX_TIMEOUT_S`],
//! [`MAX_POINTS`]). A loaded sweep carries a content hash of every point's settings (see
//! [`Sweep::hash`]) that tells its results folders and shards from another sweep's.

pub mod hash;
pub mod lock;
pub mod results;
pub mod runner;

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::component::Value;
use crate::run::{WorkloadArgs, resolve_workload};
use crate::topology::raw::OrderedMap;
use crate::topology::{self, InputError, Origin, SetOverride, Source};

/// Workload keys an axis may vary (everything else is a `--set` key).
pub const WORKLOAD_KEYS: [&str; 6] = ["model", "seq", "batch", "layers", "pattern", "context"];

/// Most runs at once (`jobs`, `--jobs`): far more than any machine's cores, far below what
/// tokio's semaphore can count.
pub const MAX_JOBS: usize = 4096;

/// Longest per-run timeout, seconds (about 116 days).
pub const MAX_TIMEOUT_S: f64 = 1e7;

/// Largest sweep file, bytes (a sweep of [`MAX_POINTS`] listed points fits).
pub const MAX_FILE_BYTES: usize = crate::io::MAX_TEXT_INPUT_BYTES;

/// Longest sweep name, bytes (a folder name on common filesystems).
pub const MAX_NAME_BYTES: usize = 255;

/// Most points in one sweep (each is checked, by planning its run, before any starts).
pub const MAX_POINTS: usize = 100_000;

/// `axes:` as written: key -> located values.
type Axes = OrderedMap<Spanned<Vec<Spanned<Value>>>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    #[serde(default)]
    name: Option<Spanned<String>>,
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
    /// Why the point cannot run (its design cannot run the workload: a buffer too small for
    /// one tile, an unsupported M, a DRAM too small), as `stasim run` would say it; found
    /// when the sweep is loaded, recorded as a failed point when it runs.
    pub infeasible: Option<String>,
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
    /// Content hash (32 hex digits) of what the points run: the topology's text and every
    /// point's settings (workload and `--set`, base and varied, in key order), point by
    /// point. Not the name, `jobs` or `timeout_s`, which do not change results.
    pub hash: String,
}

/// Checks a number of runs at once (`jobs:` or `--jobs`): 1 to [`MAX_JOBS`].
pub fn check_jobs(jobs: i128) -> Result<usize, String> {
    if (1..=MAX_JOBS as i128).contains(&jobs) {
        Ok(jobs as usize)
    } else {
        Err(format!(
            "jobs = {jobs} is out of range: runs at once are 1 to {MAX_JOBS}"
        ))
    }
}

/// Checks a per-run timeout in seconds: more than 0, at most [`MAX_TIMEOUT_S`].
pub fn check_timeout_s(timeout_s: f64) -> Result<Duration, String> {
    if timeout_s > 0.0 && timeout_s <= MAX_TIMEOUT_S {
        Ok(Duration::from_secs_f64(timeout_s))
    } else {
        Err(format!(
            "timeout_s = {timeout_s} is out of range: seconds per run, more than 0 and at most \
             {MAX_TIMEOUT_S:e}"
        ))
    }
}

/// Checks a sweep name, which names its default results folder `results/NAME`.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        Err(format!("sweep name `{name}` is not a folder name"))
    } else if name.len() > MAX_NAME_BYTES {
        Err(format!(
            "the sweep name is {} bytes long, more than {MAX_NAME_BYTES} (the longest folder name)",
            name.len()
        ))
    } else if let Some(c) = name
        .chars()
        .find(|&c| c == '/' || c == '\\' || c.is_control())
    {
        Err(format!(
            "sweep name `{}` contains {c:?}: a name is one folder name, not a path",
            name.escape_debug()
        ))
    } else {
        Ok(())
    }
}

/// The hash of [`Sweep::hash`]: `settings` holds each point's settings in point order.
fn sweep_hash(topology_text: &str, settings: &[Vec<(String, String)>]) -> String {
    let mut h = hash::StableHash::new();
    h.field("stasim sweep v1")
        .field(topology_text)
        .u64(settings.len() as u64);
    for point in settings {
        // What the run sees: one value per key (the last given), in key order.
        let mut canonical: Vec<&(String, String)> = Vec::new();
        for s in point.iter().rev() {
            if !canonical.iter().any(|c| c.0 == s.0) {
                canonical.push(s);
            }
        }
        canonical.sort();
        h.u64(canonical.len() as u64);
        for (k, v) in canonical {
            h.field(k).field(v);
        }
    }
    h.hex()
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
            "context" => wargs.context = Some(int()?),
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

/// Error `e` of one point with `settings`, its message after `what` (e.g. `point 3`) if
/// given, placed at the setting it names, else at `fallback`; `text` is the sweep file's.
fn point_error(
    e: &InputError,
    what: Option<&str>,
    settings: &[Setting],
    fallback: &Origin,
    text: &str,
) -> InputError {
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
        .map_or_else(|| fallback.clone(), |s| s.2.clone());
    let message = match what {
        Some(w) => format!("{w}: {}", e.message),
        None => e.message.clone(),
    };
    InputError::new(message, origin, e.key.clone())
        .with_hint(
            e.hint
                .clone()
                .unwrap_or_else(|| "see `stasim models` and `stasim run --help`".into()),
        )
        .with_source(text)
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
                ("context", Some(w)) => match w.phase {
                    crate::workload::Phase::Decode { context } => context.to_string(),
                    crate::workload::Phase::Prefill => "prefill".into(),
                },
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
    let bad = |why: String| {
        InputError::new(
            format!("cannot read sweep file `{p}`: {why}"),
            Origin::CommandLine(p.clone()),
            "",
        )
        .with_hint("give the path of a sweep YAML file (see the README, \"Sweeps\")")
    };
    let text = crate::io::read_text_input(path).map_err(bad)?;
    from_text(path, &text)
}

/// Validates the sweep file `text` read from `path` (named in errors; its stem is the
/// default name). Every point is checked, nothing runs.
pub fn from_text(path: &Path, text: &str) -> Result<Sweep, InputError> {
    let p = path.display().to_string();
    let raw: RawSweep = serde_saphyr::from_str(text).map_err(|e| {
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
        .with_source(text)
    })?;
    let err = |msg: String, l: &serde_saphyr::Location, key: String, hint: &str| {
        InputError::new(msg, at(&p, l), key)
            .with_hint(hint)
            .with_source(text)
    };
    let name = match &raw.name {
        Some(n) => {
            check_name(&n.value).map_err(|m| {
                err(
                    m,
                    &n.referenced,
                    "name".into(),
                    "a name such as `bert-patterns`; results go to results/NAME",
                )
            })?;
            n.value.clone()
        }
        None => {
            let stem = path
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
            check_name(&stem).map_err(|m| {
                InputError::new(
                    format!("{m} (the sweep is named after its file)"),
                    Origin::CommandLine(p.clone()),
                    "name",
                )
                .with_hint("give the sweep a `name:`")
            })?;
            stem
        }
    };
    let jobs = match &raw.jobs {
        None => std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_JOBS),
        Some(j) => check_jobs(j.value.into())
            .map_err(|m| err(m, &j.referenced, "jobs".into(), "omit it to use every core"))?,
    };
    let timeout_s = match &raw.timeout_s {
        None => 3600.0,
        Some(t) => {
            check_timeout_s(t.value).map_err(|m| {
                err(
                    m,
                    &t.referenced,
                    "timeout_s".into(),
                    "seconds per run, e.g. 600",
                )
            })?;
            t.value
        }
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
            .with_source(text));
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
    // Points: the product of the axes, then the listed points (counted before they are made).
    let count = raw
        .axes
        .iter()
        .flat_map(|a| a.value.0.iter())
        .map(|(_, values)| values.value.len())
        .try_fold(None::<usize>, |n, len| {
            n.unwrap_or(1).checked_mul(len).map(Some)
        })
        .and_then(|product| product.unwrap_or(0).checked_add(raw.points.len()));
    if count.is_none_or(|n| n > MAX_POINTS) {
        let (l, key) = match &raw.axes {
            Some(a) => (&a.referenced, "axes"),
            None => (&raw.topology.referenced, "points"),
        };
        return Err(err(
            format!(
                "the sweep has {} points, more than {MAX_POINTS}",
                count.map_or_else(|| "too many".into(), |n| n.to_string())
            ),
            l,
            key.into(),
            "split it into several sweeps, or use fewer values per axis",
        ));
    }
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
    // Check every point as `stasim run` would, before running any: settings that no run
    // could take are the sweep file's errors; a design that cannot run its workload is an
    // infeasible point, recorded as failed when the sweep runs.
    let mut points = Vec::with_capacity(combos.len());
    let mut hashed: Vec<Vec<(String, String)>> = Vec::with_capacity(combos.len());
    let mut first_infeasible: Option<(InputError, Vec<Setting>, Origin)> = None;
    for (index, combo) in combos.into_iter().enumerate() {
        let mut settings = base.clone();
        for s in &combo {
            settings.retain(|b| b.0 != s.0);
            settings.push(s.clone());
        }
        hashed.push(
            settings
                .iter()
                .map(|(k, v, _)| (k.clone(), v.clone()))
                .collect(),
        );
        let what = format!("point {index}");
        // An error that names none of the settings is placed at the point's own values (the
        // last one varied), else at `topology:`.
        let fallback = combo
            .last()
            .map_or_else(|| at(&p, &raw.topology.referenced), |s| s.2.clone());
        let at_point = |e: InputError| point_error(&e, Some(&what), &settings, &fallback, text);
        let (wargs, sets) = run_settings(&settings, text)?;
        let topo = topology::load(&src, &sets).map_err(at_point)?;
        let built = if crate::run::runs_workload(&topo) {
            let w = resolve_workload(&topo, &wargs).map_err(at_point)?;
            // Building plans the run: an unsupported M or a buffer too small shows here,
            // and so does a DRAM too small for the tensors.
            crate::run::build(&topo, Some(&w), None)
        } else {
            if let Some((k, _, origin)) = settings
                .iter()
                .find(|s| WORKLOAD_KEYS.contains(&s.0.as_str()))
            {
                return Err(InputError::new(
                    format!(
                        "topology `{}` has no controller, so it runs no workload: `{k}` does not apply",
                        topo.name
                    ),
                    origin.clone(),
                    k.clone(),
                )
                .with_hint(format!(
                    "sweep `--set` keys only (e.g. `dram.channels`): each point runs the topology's modules as `stasim run {}` does and records when it ends; or use a topology with a `controller` (e.g. `sta`)",
                    raw.topology.value
                ))
                .with_source(text));
            }
            crate::run::build(&topo, None, None)
        };
        let infeasible = match built {
            Ok(_) => None,
            Err(e) => {
                // As `stasim run` says it, placed in the sweep file (the record has the
                // point's number).
                let shown = point_error(&e, None, &settings, &fallback, text).to_string();
                if first_infeasible.is_none() {
                    first_infeasible = Some((e, settings.clone(), fallback.clone()));
                }
                Some(shown)
            }
        };
        points.push(Point {
            index,
            params: combo.into_iter().map(|(k, v, _)| (k, v)).collect(),
            infeasible,
        });
    }
    if points.iter().all(|pt| pt.infeasible.is_some())
        && let Some((e, settings, fallback)) = first_infeasible
    {
        let n = points.len();
        return Err(point_error(
            &e,
            Some(&format!(
                "no point of the sweep can run ({n} of {n} are infeasible); the first, point 0"
            )),
            &settings,
            &fallback,
            text,
        ));
    }
    let mut varied: Vec<String> = Vec::new();
    for p in &points {
        for (k, _) in &p.params {
            if !varied.contains(k) {
                varied.push(k.clone());
            }
        }
    }
    let reference = reference_values(&src, &base, &varied, text);
    Ok(Sweep {
        name,
        topology: raw.topology.value.clone(),
        base: base.into_iter().map(|(k, v, _)| (k, v)).collect(),
        points,
        reference,
        jobs,
        timeout_s,
        hash: sweep_hash(&src.text, &hashed),
    })
}
