//! Runs a sweep's points as child processes through tokio: at most `jobs` at once, each with
//! a timeout, a progress bar (indicatif: done, running, failed, ETA) on a terminal.
//!
//! A finished point's report is written at once to `points/NNNN.json`; `results.json` and
//! `results.csv` are rewritten when the sweep ends. Ctrl-C stops launching points, stops the
//! running ones (their children are killed), and writes the results of every finished point
//! with `interrupted: true`. A failed or timed-out point is recorded with its error and the
//! sweep goes on.

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
                        let file = out.join("points").join(format!("{:04}.json", point.index));
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

/// Runs the sweep (or its shard) and writes its results into `opts.out`.
pub fn run(sweep: &Sweep, opts: &RunOptions) -> Result<Results, String> {
    std::fs::create_dir_all(opts.out.join("points"))
        .map_err(|e| format!("cannot create `{}`: {e}", opts.out.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the tokio runtime: {e}"))?;
    rt.block_on(run_async(sweep, opts))
}

async fn run_async(sweep: &Sweep, opts: &RunOptions) -> Result<Results, String> {
    let points: Vec<Point> = sweep
        .points
        .iter()
        .filter(|p| opts.shard.is_none_or(|(i, n)| p.index % n == i))
        .cloned()
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
    let mut done: Vec<PointResult> = Vec::with_capacity(total);
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
    Ok(results)
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
