//! `stasim sweep SWEEP.yaml`, `stasim sweep merge DIR... --out DIR` and
//! `stasim sweep plot DIR [--out DIR]`.

use std::path::PathBuf;

use stasim::Error;
use stasim::sweep::{self, runner};

/// Arguments of `sweep`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The sweep file; or `merge` followed by result folders of shards; or `plot` followed
    /// by one result folder.
    pub file: String,
    /// With `merge`: the result folders to join; with `plot`: the result folder to chart.
    pub dirs: Vec<PathBuf>,
    /// Output folder (default `results/<sweep name>`; with `merge`, required; with `plot`,
    /// default `DIR/plots`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Run only the I-th of N deterministic slices (points with index % N == I).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Runs at once (default: the sweep file's `jobs`, else the number of cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Check the sweep and list its points without running them.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not draw the charts after the sweep.
    #[arg(long)]
    pub no_plots: bool,
    /// Keep the finished points already in the output folder and run only the others
    /// (after Ctrl-C, a timeout of the whole job, or a lost machine).
    #[arg(long)]
    pub resume: bool,
}

/// Draws the sweep charts of `r` into `dir` and says what was drawn and what was not.
fn plot(r: &sweep::results::Results, dir: &std::path::Path) -> Result<(), Error> {
    let w = stasim::plot::sweep::write_all(r, dir).map_err(Error::Output)?;
    let pngs = w
        .files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "png"))
        .count();
    if pngs == 0 {
        outln!("charts: none");
    } else {
        outln!("charts: {pngs} (PNG and SVG) in {}", dir.display());
    }
    for f in w
        .files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "csv"))
    {
        outln!("  with its numbers: {}", f.display());
    }
    for (name, why) in &w.skipped {
        outln!("  no {name}: {why}");
    }
    if w.failed_points > 0 {
        outln!(
            "  {} of {} points left out of the charts: they did not finish (failed, infeasible or timed out)",
            w.failed_points,
            r.points.len()
        );
    }
    Ok(())
}

/// The first line of an error, without its `error: ` tag.
fn first_line(error: &str) -> &str {
    let line = error.lines().next().unwrap_or("");
    line.strip_prefix("error: ").unwrap_or(line)
}

/// Runs `sweep`.
pub fn run(a: &Args) -> Result<(), Error> {
    // `merge` and `plot` only write files: interrupted, they remove their temporaries like
    // `run` does. A sweep handles Ctrl-C and SIGTERM itself (keeping finished points).
    if a.file == "merge" || a.file == "plot" {
        stasim::io::remove_temporaries_on_signals();
    }
    if a.file == "merge" {
        let out = a.out.clone().ok_or_else(|| {
            super::arg_error(
                "`sweep merge` needs --out DIR",
                "sweep merge",
                "e.g. stasim sweep merge r0 r1 --out all",
            )
        })?;
        if a.dirs.is_empty() {
            return Err(super::arg_error(
                "`sweep merge` needs the result folders to join",
                "sweep merge",
                "e.g. stasim sweep merge r0 r1 --out all",
            ));
        }
        let r = runner::merge(&a.dirs, &out)?;
        let missing = r.points_total.saturating_sub(r.points.len());
        outln!(
            "merged {} of {} points of `{}` into {}{}",
            r.points.len(),
            r.points_total,
            r.sweep,
            out.display(),
            if missing > 0 {
                format!(" ({missing} missing)")
            } else {
                String::new()
            }
        );
        return Ok(());
    }
    if a.file == "plot" {
        let [dir] = a.dirs.as_slice() else {
            return Err(super::arg_error(
                "`sweep plot` takes one result folder",
                "sweep plot",
                "e.g. stasim sweep plot results/bert-base-100",
            ));
        };
        // Not while a sweep is still writing the folder.
        let _reading = sweep::lock::FolderLock::shared(dir)?;
        let r = sweep::results::Results::read(dir).map_err(|m| {
            super::arg_error(m, "sweep plot", "give a folder that `stasim sweep` wrote")
        })?;
        let charts = a.out.clone().unwrap_or_else(|| dir.join("plots"));
        sweep::lock::check_folder_path(&charts)?;
        return plot(&r, &charts);
    }
    if !a.dirs.is_empty() {
        return Err(super::arg_error(
            format!("unexpected arguments after the sweep file: {:?}", a.dirs),
            &a.file,
            "one sweep file per run; `stasim sweep merge DIR...` joins results",
        ));
    }
    if let Some(j) = a.jobs {
        sweep::check_jobs(j as i128).map_err(|m| {
            super::arg_error(
                format!("bad --jobs: {m}"),
                &format!("--jobs {j}"),
                "omit it to use the sweep file's `jobs` (else every core)",
            )
        })?;
    }
    let shard = a.shard.as_deref().map(sweep::parse_shard).transpose()?;
    let s = sweep::load(std::path::Path::new(&a.file))?;
    if a.dry_run {
        for p in &s.points {
            if shard.is_none_or(|(i, n)| p.index % n == i) {
                outln!("{:4}  stasim {}", p.index, p.run_args(&s).join(" "));
                if let Some(why) = &p.infeasible {
                    outln!(
                        "      infeasible, will be recorded as failed: {}",
                        first_line(why)
                    );
                }
            }
        }
        return Ok(());
    }
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("results").join(&s.name));
    let exe = std::env::current_exe()
        .map_err(|e| Error::Failed(format!("cannot find the stasim binary: {e}")))?;
    let opts = runner::RunOptions {
        exe,
        out: out.clone(),
        shard,
        jobs: a.jobs,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        resume: a.resume,
    };
    let t0 = std::time::Instant::now();
    let outcome = runner::run(&s, &opts)?;
    let r = &outcome.results;
    let ran: Vec<_> = r
        .points
        .iter()
        .filter(|p| outcome.ran.contains(&p.index))
        .collect();
    let failed = ran.iter().filter(|p| p.status != "ok").count();
    // Failed as bad input: the design cannot run (found at load, or by the run itself).
    let infeasible = ran
        .iter()
        .filter(|p| p.status != "ok" && p.exit_code == Some(2))
        .count();
    let serial: f64 = ran.iter().map(|p| p.wall_s).sum();
    let wall = t0.elapsed().as_secs_f64();
    outln!(
        "sweep `{}`: {} points run ({} ok, {failed} failed{}) in {wall:.1} s wall ({serial:.1} s of runs, {:.2}x){}, results in {}",
        r.sweep,
        ran.len(),
        ran.len() - failed,
        if infeasible > 0 {
            format!(", {infeasible} of them infeasible designs")
        } else {
            String::new()
        },
        serial / wall.max(1e-9),
        if outcome.kept.is_empty() {
            String::new()
        } else {
            format!(", {} kept from the earlier run", outcome.kept.len())
        },
        out.display()
    );
    for p in r.points.iter().filter(|p| p.status != "ok") {
        let first = first_line(p.error.as_deref().unwrap_or(""));
        outln!("  point {} {}: {first}", p.index, p.status);
    }
    if r.interrupted {
        return Err(Error::Failed(format!(
            "interrupted: {} finished points kept in {} (run the same command with --resume to finish)",
            r.points.iter().filter(|p| p.status == "ok").count(),
            out.display()
        )));
    }
    // Nothing to show for the run: every point of its shard failed.
    let shard_ok = r
        .points
        .iter()
        .filter(|p| outcome.ran.contains(&p.index) || outcome.kept.contains(&p.index))
        .any(|p| p.status == "ok");
    if !ran.is_empty() && !shard_ok {
        return Err(Error::Failed(format!(
            "every point failed ({} of {}); the errors are in {}",
            ran.len(),
            ran.len(),
            out.join("results.csv").display()
        )));
    }
    if !a.no_plots {
        plot(r, &out.join("plots"))?;
    }
    Ok(())
}
