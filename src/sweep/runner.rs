//! Runs a sweep's points as child processes through tokio: at most `jobs` at once, each with
//! a timeout, a progress bar (indicatif: done, running, failed, ETA) on a terminal.
//!
//! A finished point's report is written at once to `points/NNNN.json`; `results.json` and
//! `results.csv` are rewritten when the sweep ends. Ctrl-C or SIGTERM stops launching
//! points, stops the running ones (their children are killed), and writes the results of
//! every finished point with `interrupted: true`. A failed or timed-out point is recorded
//! with its error and the sweep goes on; so is a point whose task panicked (an internal
//! error), never dropped, and an infeasible point (found when the sweep was loaded), which
//! is recorded as failed with exit code 2 without running.
//!
//! Children die with the sweep: on Linux each gets the parent-death signal SIGKILL, so a
//! sweep killed without warning (SIGKILL, OOM killer) takes its running points with it.
//! They run in their own process group, so a terminal's Ctrl-C reaches only the sweep,
//! which stops them itself and records what finished.
//!
//! A results folder belongs to one sweep. The sweep holds its lock ([`FolderLock`]) while it
//! writes, so a second sweep into it is refused. `sweep.json`, written when a run starts,
//! lists every point and the sweep's content hash; a folder that holds another sweep (another
//! hash) is refused, whatever `--resume` or `--shard` says. A folder that already holds
//! finished points of this run's shard is refused unless `resume` is set; then each point
//! whose `points/NNNN.json` exists is kept and only the others run. Point files are written
//! atomically and only for successful runs, so this also finishes a sweep killed without
//! warning. Another shard of the same sweep run into the same folder adds its points to
//! the ones there (`shard: merged`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::lock::FolderLock;
use super::results::{PointResult, Results};
use super::{Point, Sweep};
use crate::Error;
use crate::io::{create_folder, write_atomic};
use crate::topology::{InputError, Origin};

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

/// Name of the file that says which sweep a results folder holds.
const MANIFEST: &str = "sweep.json";

/// `sweep.json`: which sweep a results folder holds.
#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
struct Manifest {
    sweep: String,
    points_total: usize,
    /// [`Sweep::hash`]; empty in folders written before there was one.
    #[serde(default)]
    hash: String,
    /// `(index, settings)` of every point.
    points: Vec<(usize, Vec<(String, String)>)>,
}

impl Manifest {
    fn of(sweep: &Sweep) -> Manifest {
        Manifest {
            sweep: sweep.name.clone(),
            points_total: sweep.points.len(),
            hash: sweep.hash.clone(),
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

/// An input error about results folder `dir` (exit 2).
fn folder_error(dir: &Path, message: String, hint: &str) -> Error {
    InputError::new(message, Origin::CommandLine(dir.display().to_string()), "")
        .with_hint(hint)
        .into()
}

/// Which sweep a results folder holds, by what it recorded.
struct Identity {
    sweep: String,
    points_total: usize,
    hash: String,
    /// The file that says so.
    file: PathBuf,
}

/// The sweep `dir` holds: from `sweep.json` (a sweep ran there), else `results.json` (a
/// merge wrote it); `None` for a folder with neither and no point files (a new folder). A
/// folder with point files but neither record cannot be matched to any sweep.
fn identity(dir: &Path) -> Result<Option<Identity>, Error> {
    let unreadable = |file: &Path, why: String| {
        folder_error(
            dir,
            format!(
                "`{}` is unreadable ({why}), so the results in `{}` cannot be matched to a sweep",
                file.display(),
                dir.display()
            ),
            "give another --out, or remove the folder to start over",
        )
    };
    let manifest = dir.join(MANIFEST);
    if manifest.exists() {
        let m: Manifest = std::fs::read_to_string(&manifest)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
            .map_err(|why| unreadable(&manifest, why))?;
        return Ok(Some(Identity {
            sweep: m.sweep,
            points_total: m.points_total,
            hash: m.hash,
            file: manifest,
        }));
    }
    let results = dir.join("results.json");
    if results.exists() {
        let r = Results::read(dir).map_err(|why| unreadable(&results, why))?;
        return Ok(Some(Identity {
            sweep: r.sweep,
            points_total: r.points_total,
            hash: r.sweep_hash,
            file: results,
        }));
    }
    let has_points = std::fs::read_dir(dir.join("points")).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "json"))
    });
    if has_points {
        return Err(unreadable(&manifest, "missing".into()));
    }
    Ok(None)
}

/// Refuses a folder that holds another sweep than `sweep`.
fn check_same_sweep(sweep: &Sweep, dir: &Path, id: &Identity) -> Result<(), Error> {
    if id.hash == sweep.hash {
        return Ok(());
    }
    let theirs = if id.hash.is_empty() {
        "no sweep hash: written by an older stasim".to_string()
    } else {
        format!("sweep hash {}", id.hash)
    };
    Err(folder_error(
        dir,
        format!(
            "`{}` holds another sweep: `{}` ({} points, {theirs}, says `{}`), not this sweep `{}` \
             ({} points, sweep hash {}); the topology or some point's settings differ",
            dir.display(),
            id.sweep,
            id.points_total,
            id.file.display(),
            sweep.name,
            sweep.points.len(),
            sweep.hash
        ),
        "a results folder holds one sweep: give another --out, or remove the folder to start over",
    ))
}

/// The result recorded by `points/NNNN.json` of point `p` (a finished run), with the wall
/// time of the run that wrote it if `earlier` results have it.
fn load_point(out: &Path, p: &Point, earlier: Option<&Results>) -> Result<PointResult, Error> {
    let file = point_file(out, p.index);
    let bad = |why: String| {
        folder_error(
            out,
            why,
            "remove the file to run the point again (add --resume)",
        )
    };
    let text = std::fs::read_to_string(&file)
        .map_err(|e| bad(format!("cannot read `{}`: {e}", file.display())))?;
    let report = serde_json::from_str(&text)
        .map_err(|e| bad(format!("`{}` is not a report: {e}", file.display())))?;
    let wall_s = earlier
        .and_then(|r| r.points.iter().find(|q| q.index == p.index))
        .map_or(0.0, |q| q.wall_s);
    Ok(PointResult {
        index: p.index,
        params: p.params.clone(),
        status: "ok".into(),
        exit_code: Some(0),
        error: None,
        wall_s,
        report: Some(report),
    })
}

/// Makes a child get SIGKILL when the thread that started it (the sweep's) ends, however
/// it ends.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut tokio::process::Command) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the child between fork and exec; it only makes
    // async-signal-safe system calls and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // The sweep ended before the call above took effect: no signal will come.
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut tokio::process::Command) {}

/// Runs one point; never fails (errors are recorded in the result).
async fn run_point(
    exe: PathBuf,
    sweep: Arc<Sweep>,
    point: Point,
    out: PathBuf,
    limit: Duration,
) -> PointResult {
    let t0 = Instant::now();
    let mut cmd = tokio::process::Command::new(&exe);
    cmd.args(point.run_args(&sweep))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    cmd.process_group(0);
    die_with_parent(&mut cmd);
    let mut result = failed(&point, String::new());
    result.error = None;
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            result.error = Some(format!("cannot start `{}`: {e}", exe.display()));
            return result;
        }
    };
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
                        match write_atomic(&file, stdout.as_bytes()) {
                            Ok(()) => {
                                result.status = "ok".into();
                                result.report = Some(v);
                            }
                            Err(e) => result.error = Some(e.to_string()),
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

/// The failed result of an infeasible point (see [`Point::infeasible`]): its error, and
/// the exit code `stasim run` gives it (2, bad input); it does not run.
fn infeasible(point: &Point, error: &str) -> PointResult {
    PointResult {
        exit_code: Some(2),
        ..failed(point, error.to_owned())
    }
}

/// A failed result of `point` with `error`.
fn failed(point: &Point, error: String) -> PointResult {
    PointResult {
        index: point.index,
        params: point.params.clone(),
        status: "failed".into(),
        exit_code: None,
        error: Some(error),
        wall_s: 0.0,
        report: None,
    }
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

/// Ends on Ctrl-C (SIGINT) or SIGTERM (a batch system's stop); never, where neither can
/// be caught.
async fn interrupt_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// What a sweep run produced.
#[derive(Debug)]
pub struct Outcome {
    /// Every finished point in the folder: this run's shard, kept or run now, and any
    /// other shard's run into the same folder before.
    pub results: Results,
    /// Indices of the points of this run's shard kept from an earlier run (`resume`).
    pub kept: Vec<usize>,
    /// Indices of the points run now.
    pub ran: Vec<usize>,
    /// The folder's lock, held until the outcome is dropped (so charts drawn into the
    /// folder afterwards are still this sweep's).
    pub lock: FolderLock,
}

/// Runs the sweep (or its shard) and writes its results into `opts.out`. A folder another
/// sweep holds, or that holds another sweep, is refused before any point runs.
pub fn run(sweep: &Sweep, opts: &RunOptions) -> Result<Outcome, Error> {
    let jobs = opts.jobs.unwrap_or(sweep.jobs);
    let jobs = super::check_jobs(jobs as i128).map_err(|m| {
        InputError::new(m, Origin::CommandLine(format!("--jobs {jobs}")), "jobs")
            .with_hint("omit it to use every core")
    })?;
    let limit = super::check_timeout_s(sweep.timeout_s)
        .map_err(|m| InputError::new(m, Origin::Builtin, "timeout_s"))?;
    let lock = FolderLock::exclusive(&opts.out)?;
    create_folder(&opts.out.join("points"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Failed(format!("cannot start the tokio runtime: {e}")))?;
    rt.block_on(run_async(sweep, opts, jobs, limit, lock))
}

async fn run_async(
    sweep: &Sweep,
    opts: &RunOptions,
    jobs: usize,
    limit: Duration,
    lock: FolderLock,
) -> Result<Outcome, Error> {
    let out = &opts.out;
    if let Some(id) = identity(out)? {
        check_same_sweep(sweep, out, &id)?;
    }
    let earlier = Results::read(out)
        .ok()
        .filter(|r| r.sweep_hash == sweep.hash);
    let (mine, others): (Vec<&Point>, Vec<&Point>) = sweep
        .points
        .iter()
        .partition(|p| opts.shard.is_none_or(|(i, n)| p.index % n == i));
    let present: Vec<&Point> = mine
        .iter()
        .copied()
        .filter(|p| point_file(out, p.index).exists())
        .collect();
    if !present.is_empty() && !opts.resume {
        return Err(folder_error(
            out,
            format!(
                "`{}` already holds {} finished points of this sweep",
                out.display(),
                present.len()
            ),
            "add --resume to keep them and run the rest, or give another --out",
        ));
    }
    let kept = present
        .iter()
        .map(|p| load_point(out, p, earlier.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    // Points of other shards run into this folder before: their records, else their files.
    let mut carried = Vec::new();
    for p in others {
        if let Some(r) = earlier
            .as_ref()
            .and_then(|r| r.points.iter().find(|q| q.index == p.index))
        {
            carried.push(r.clone());
        } else if point_file(out, p.index).exists() {
            carried.push(load_point(out, p, earlier.as_ref())?);
        }
    }
    let kept_indices: Vec<usize> = kept.iter().map(|p| p.index).collect();
    let manifest = serde_json::to_string_pretty(&Manifest::of(sweep))
        .map_err(|e| Error::Output(e.to_string()))?;
    write_atomic(&out.join(MANIFEST), format!("{manifest}\n").as_bytes())?;
    let points: Vec<Point> = mine
        .into_iter()
        .filter(|p| !kept_indices.contains(&p.index))
        .cloned()
        .collect();
    let ran: Vec<usize> = points.iter().map(|p| p.index).collect();
    let bar = progress_bar(points.len(), opts.progress);
    let shared = Arc::new(sweep.clone());
    let permits = Arc::new(Semaphore::new(jobs.min(Semaphore::MAX_PERMITS)));
    let (tx, rx) = mpsc::unbounded_channel::<usize>(); // a point started
    let mut set = JoinSet::new();
    let mut tasks = HashMap::new();
    for p in points {
        let (exe, sw, out, permits, tx) = (
            opts.exe.clone(),
            shared.clone(),
            out.clone(),
            permits.clone(),
            tx.clone(),
        );
        let point = p.clone();
        let task = set.spawn(async move {
            if let Some(why) = &p.infeasible {
                let _ = tx.send(p.index);
                return infeasible(&p, why);
            }
            let _permit = permits.acquire_owned().await.ok();
            let _ = tx.send(p.index);
            run_point(exe, sw, p, out, limit).await
        });
        tasks.insert(task.id(), point);
    }
    drop(tx);
    let (mut done, interrupted) = collect(set, tasks, rx, &bar, interrupt_signal()).await;
    bar.finish_and_clear();
    let shard = if !carried.is_empty() {
        "merged".into()
    } else {
        opts.shard
            .map_or_else(|| "all".into(), |(i, n)| format!("{i}/{n}"))
    };
    done.extend(kept);
    done.extend(carried);
    done.sort_by_key(|r| r.index);
    let results = Results {
        sweep: sweep.name.clone(),
        points_total: sweep.points.len(),
        sweep_hash: sweep.hash.clone(),
        shard,
        interrupted,
        reference: sweep.reference.clone(),
        points: done,
    };
    results.write(out)?;
    Ok(Outcome {
        results,
        kept: kept_indices,
        ran,
        lock,
    })
}

/// The text of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Waits for every point task of `set` (`tasks` says which point each is), counting
/// starts from `started`, until all end or `interrupt` does (then the running points are
/// stopped). Returns the results of the points that ended, and whether it was interrupted.
/// A task that panicked is a failed point (an internal error), never a lost one.
async fn collect(
    mut set: JoinSet<PointResult>,
    tasks: HashMap<tokio::task::Id, Point>,
    mut started: mpsc::UnboundedReceiver<usize>,
    bar: &indicatif::ProgressBar,
    interrupt: impl Future<Output = ()>,
) -> (Vec<PointResult>, bool) {
    let mut done: Vec<PointResult> = Vec::new();
    let (mut running, mut failures) = (0usize, 0usize);
    let mut interrupted = false;
    tokio::pin!(interrupt);
    loop {
        tokio::select! {
            () = &mut interrupt, if !interrupted => {
                interrupted = true;
                set.abort_all(); // kills running children (kill_on_drop)
            }
            Some(_) = started.recv() => running += 1,
            joined = set.join_next() => {
                let r = match joined {
                    None => break,
                    Some(Ok(r)) => r,
                    Some(Err(e)) => match tasks.get(&e.id()) {
                        Some(point) if e.is_panic() => {
                            let why = panic_message(e.into_panic().as_ref());
                            failed(point, format!("internal error: the point's task panicked: {why}"))
                        }
                        _ => { // aborted (interrupted)
                            running = running.saturating_sub(1);
                            continue;
                        }
                    },
                };
                running = running.saturating_sub(1);
                if r.status != "ok" {
                    failures += 1;
                }
                done.push(r);
                bar.inc(1);
            }
        }
        bar.set_message(format!("{running} running, {failures} failed"));
    }
    (done, interrupted)
}

/// Merges the results in `dirs` into `out`. Refused (exit 2): an output folder that is one
/// of the inputs (by canonical path) or a sweep's own run folder or holds another sweep;
/// inputs that are not shards of one sweep (name, size, content hash) or repeat a point;
/// an input a running sweep is writing; an output another sweep or merge holds.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<Results, Error> {
    super::lock::check_folder_path(out)?;
    if let Ok(canonical_out) = out.canonicalize() {
        for d in dirs {
            if d.canonicalize().is_ok_and(|c| c == canonical_out) {
                return Err(folder_error(
                    out,
                    format!(
                        "the merge output `{}` is one of its inputs (`{}`): merging would \
                         replace that shard's results",
                        out.display(),
                        d.display()
                    ),
                    "give a new folder as --out",
                ));
            }
        }
    }
    let _reading = dirs
        .iter()
        .map(|d| FolderLock::shared(d))
        .collect::<Result<Vec<_>, _>>()?;
    let parts = dirs
        .iter()
        .map(|d| {
            Results::read(d)
                .map(|r| (d.display().to_string(), r))
                .map_err(|m| folder_error(d, m, "give folders that `stasim sweep` wrote"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let merged = Results::merge(parts).map_err(|m| {
        folder_error(
            out,
            m,
            "merge the shards of one sweep, each once, run with the same sweep file",
        )
    })?;
    let _writing = FolderLock::exclusive(out)?;
    if out.join(MANIFEST).exists() {
        return Err(folder_error(
            out,
            format!(
                "`{}` is a sweep's own results folder (it has {MANIFEST}): merging into it \
                 would replace that run's results",
                out.display()
            ),
            "give a new folder as --out (or that folder as one of the inputs)",
        ));
    }
    if let Some(id) = identity(out)?
        && id.hash != merged.sweep_hash
    {
        return Err(folder_error(
            out,
            format!(
                "`{}` holds the merged results of another sweep: `{}` ({} points)",
                out.display(),
                id.sweep,
                id.points_total
            ),
            "give a new folder as --out",
        ));
    }
    merged.write(out)?;
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_point_task_is_a_failed_point_not_a_lost_one() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (done, interrupted) = rt.block_on(async {
            let mut set = JoinSet::new();
            let mut tasks = HashMap::new();
            let point = Point {
                index: 3,
                params: vec![("pattern".into(), "2:4".into())],
                infeasible: None,
            };
            let p = point.clone();
            let fine = set.spawn(async move { failed(&p, "a normal failure".into()) });
            tasks.insert(fine.id(), point.clone());
            let point7 = Point {
                index: 7,
                params: vec![],
                infeasible: None,
            };
            let boom = set.spawn(async {
                if true {
                    panic!("boom at point seven");
                }
                failed(
                    &Point {
                        index: 0,
                        params: vec![],
                        infeasible: None,
                    },
                    String::new(),
                )
            });
            tasks.insert(boom.id(), point7);
            let (_tx, rx) = mpsc::unbounded_channel();
            collect(
                set,
                tasks,
                rx,
                &indicatif::ProgressBar::hidden(),
                std::future::pending(),
            )
            .await
        });
        assert!(!interrupted);
        let mut indices: Vec<usize> = done.iter().map(|r| r.index).collect();
        indices.sort_unstable();
        assert_eq!(indices, [3, 7]);
        let seven = done.iter().find(|r| r.index == 7).unwrap();
        assert_eq!(seven.status, "failed");
        let error = seven.error.as_deref().unwrap();
        assert!(
            error.contains("panicked") && error.contains("boom at point seven"),
            "{error}"
        );
    }
}
