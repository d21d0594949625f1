//! Runs a sweep's points as child processes through tokio: at most `jobs` at once, each with
//! a timeout, a progress bar (indicatif: done, running, failed, ETA) on a terminal.
//!
//! A finished point's report is written at once to `points/NNNN.json`; `results.json` and
//! `results.csv` are rewritten when the sweep ends. Ctrl-C stops launching points, stops the
//! running ones (their children are killed), and writes the results of every finished point
//! with `interrupted: true`. A failed or timed-out point is recorded with its error and the
//! sweep goes on.
//!
//! `sweep.json`, written when a run starts, lists every point of the sweep. A folder that
//! already holds finished points of this run's shard is refused unless `resume` is set; then
//! each point whose `points/NNNN.json` exists is kept (after checking that `sweep.json`
//! describes the same points) and only the others run. Point files are written atomically
//! and only for successful runs, so this also finishes a sweep killed without warning.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::results::{PointResult, Results, write_atomic};
use super::{Point, Sweep};

/// How to run a sweep.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The `stasim` binary the points run (normally this one).
    pub exe: PathBuf,
    /// Output folder.
    pub out: PathBuf,
    /// `(I, N)`: run only points with `index % N == I`.
    pub shard: Option<(usize, usize)>,
    /// Runs at once (overrides the sweep file).
    pub jobs: Option<usize>,
    /// Show a progress bar (when stderr is a terminal).
    pub progress: bool,
    /// Keep the finished points already in `out` and run only the others.
    pub resume: bool,
}

/// `sweep.json`: which sweep a results folder holds.
#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
struct Manifest {
    sweep: String,
    points_total: usize,
    /// `(index, settings)` of every point.
    points: Vec<(usize, Vec<(String, String)>)>,
}

impl Manifest {
    fn of(sweep: &Sweep) -> Manifest {
        Manifest {
            sweep: sweep.name.clone(),
            points_total: sweep.points.len(),
            points: sweep
                .points
                .iter()
                .map(|p| (p.index, p.params.clone()))
                .collect(),
        }
    }
}

fn point_file(out: &Path, index: usize) -> PathBuf {
    out.join("points").join(format!("{index:04}.json"))
}

/// The finished points of `points` already in `out`, as results (`resume`), after checking
/// that the folder holds this sweep; an error if there are some and `resume` is off.
fn finished_points(
    sweep: &Sweep,
    points: &[Point],
    opts: &RunOptions,
) -> Result<Vec<PointResult>, String> {
    let out = &opts.out;
    let present: Vec<&Point> = points
        .iter()
        .filter(|p| point_file(out, p.index).exists())
        .collect();
    if present.is_empty() {
        return Ok(Vec::new());
    }
    if !opts.resume {
        return Err(format!(
            "`{}` already holds {} finished points of this sweep; add --resume to keep them and \
             run the rest, or give another --out",
            out.display(),
            present.len()
        ));
    }
    let manifest_path = out.join("sweep.json");
    let old: Manifest = std::fs::read_to_string(&manifest_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| {
            format!(
                "cannot resume: `{}` is missing or unreadable, so the points in `{}` cannot be \
                 matched to this sweep",
                manifest_path.display(),
                out.display()
            )
        })?;
    if old != Manifest::of(sweep) {
        return Err(format!(
            "cannot resume: `{}` holds sweep `{}` ({} points), not this sweep `{}` ({} points) \
             with the same settings",
            out.display(),
            old.sweep,
            old.points_total,
            sweep.name,
            sweep.points.len()
        ));
    }
    // Wall times of the earlier run, when it wrote its results.
    let earlier = Results::read(out).ok();
    let wall = |i: usize| {
        earlier
            .as_ref()
            .and_then(|r| r.points.iter().find(|p| p.index == i))
            .map_or(0.0, |p| p.wall_s)
    };
    present
        .into_iter()
        .map(|p| {
            let file = point_file(out, p.index);
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read `{}`: {e}", file.display()))?;
            let report = serde_json::from_str(&text)
                .map_err(|e| format!("`{}` is not a report: {e}", file.display()))?;
            Ok(PointResult {
                index: p.index,
                params: p.params.clone(),
                status: "ok".into(),
                exit_code: Some(0),
                error: None,
                wall_s: wall(p.index),
                report: Some(report),
            })
        })
        .collect()
}

/// Runs one point; never fails (errors are recorded in the result).
async fn run_point(exe: PathBuf, sweep: Arc<Sweep>, point: Point, out: PathBuf) -> PointResult {
    let t0 = Instant::now();
    let mut cmd = tokio::process::Command::new(&exe);
    cmd.args(point.run_args(&sweep))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut result = PointResult {
        index: point.index,
        params: point.params.clone(),
        status: "failed".into(),
        exit_code: None,
        error: None,
        wall_s: 0.0,
        report: None,
    };
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            result.error = Some(format!("cannot start `{}`: {e}", exe.display()));
            return result;
        }
    };
    let limit = Duration::from_secs_f64(sweep.timeout_s);
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Err(_) => {
            result.status = "timeout".into();
            result.error = Some(format!("no result after {} s (timeout_s)", sweep.timeout_s));
        }
        Ok(Err(e)) => result.error = Some(format!("the run failed to complete: {e}")),
        Ok(Ok(o)) => {
            result.exit_code = o.status.code();
            let stdout = String::from_utf8_lossy(&o.stdout);
            if o.status.success() {
                match serde_json::from_str(&stdout) {
                    Ok(v) => {
                        let file = point_file(&out, point.index);
                        match write_atomic(&file, &stdout) {
                            Ok(()) => {
                                result.status = "ok".into();
                                result.report = Some(v);
                            }
                            Err(e) => result.error = Some(e),
                        }
                    }
                    Err(e) => result.error = Some(format!("the run printed no report: {e}")),
                }
            } else {
                let err = String::from_utf8_lossy(&o.stderr).trim().to_string();
                result.error = Some(if err.is_empty() {
                    format!("exit status {}", o.status)
                } else {
                    err
                });
            }
        }
    }
    result.wall_s = t0.elapsed().as_secs_f64();
    result
}

fn progress_bar(total: usize, show: bool) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:30} {pos}/{len} done  {msg}  {elapsed} elapsed, ETA {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// What a sweep run produced.
#[derive(Debug)]
pub struct Outcome {
    /// Every finished point of the run's shard, kept or run now.
    pub results: Results,
    /// Indices of the points kept from an earlier run (`resume`).
    pub kept: Vec<usize>,
}

/// Runs the sweep (or its shard) and writes its results into `opts.out`.
pub fn run(sweep: &Sweep, opts: &RunOptions) -> Result<Outcome, String> {
    std::fs::create_dir_all(opts.out.join("points"))
        .map_err(|e| format!("cannot create `{}`: {e}", opts.out.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the tokio runtime: {e}"))?;
    rt.block_on(run_async(sweep, opts))
}

async fn run_async(sweep: &Sweep, opts: &RunOptions) -> Result<Outcome, String> {
    let mine: Vec<Point> = sweep
        .points
        .iter()
        .filter(|p| opts.shard.is_none_or(|(i, n)| p.index % n == i))
        .cloned()
        .collect();
    let kept = finished_points(sweep, &mine, opts)?;
    let kept_indices: Vec<usize> = kept.iter().map(|p| p.index).collect();
    let manifest = serde_json::to_string_pretty(&Manifest::of(sweep)).map_err(|e| e.to_string())?;
    write_atomic(&opts.out.join("sweep.json"), &format!("{manifest}\n"))?;
    let points: Vec<Point> = mine
        .into_iter()
        .filter(|p| !kept_indices.contains(&p.index))
        .collect();
    let jobs = opts.jobs.unwrap_or(sweep.jobs).max(1);
    let total = points.len();
    let bar = progress_bar(total, opts.progress);
    let shared = Arc::new(sweep.clone());
    let permits = Arc::new(Semaphore::new(jobs));
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, bool)>(); // (index, started)
    let mut set = JoinSet::new();
    for p in points {
        let (exe, sw, out, permits, tx) = (
            opts.exe.clone(),
            shared.clone(),
            opts.out.clone(),
            permits.clone(),
            tx.clone(),
        );
        set.spawn(async move {
            let _permit = permits.acquire_owned().await.ok();
            let _ = tx.send((p.index, true));
            run_point(exe, sw, p, out).await
        });
    }
    drop(tx);
    let mut done: Vec<PointResult> = kept;
    let (mut running, mut failed) = (0usize, 0usize);
    let mut interrupted = false;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c, if !interrupted => {
                interrupted = true;
                set.abort_all(); // kills running children (kill_on_drop)
            }
            Some((_, started)) = rx.recv() => {
                if started { running += 1; }
            }
            joined = set.join_next() => {
                match joined {
                    None => break,
                    Some(Ok(r)) => {
                        running = running.saturating_sub(1);
                        if r.status != "ok" { failed += 1; }
                        done.push(r);
                        bar.inc(1);
                    }
                    Some(Err(_)) => { running = running.saturating_sub(1); } // aborted
                }
            }
        }
        bar.set_message(format!("{running} running, {failed} failed"));
    }
    bar.finish_and_clear();
    done.sort_by_key(|r| r.index);
    let results = Results {
        sweep: sweep.name.clone(),
        points_total: sweep.points.len(),
        shard: opts
            .shard
            .map_or_else(|| "all".into(), |(i, n)| format!("{i}/{n}")),
        interrupted,
        reference: sweep.reference.clone(),
        points: done,
    };
    results.write(&opts.out)?;
    Ok(Outcome {
        results,
        kept: kept_indices,
    })
}

/// Merges the results in `dirs` into `out`.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<Results, String> {
    let parts = dirs
        .iter()
        .map(|d| Results::read(d))
        .collect::<Result<Vec<_>, _>>()?;
    let merged = Results::merge(parts)?;
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create `{}`: {e}", out.display()))?;
    merged.write(out)?;
    Ok(merged)
}
