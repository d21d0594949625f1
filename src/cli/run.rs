//! `stasim run [TOPOLOGY]`: simulate a workload on STA and report.

use std::path::PathBuf;

use stasim::Error;
use stasim::kernel::SimTime;
use stasim::report::table;
use stasim::run::{FunctionalArgs, WorkloadArgs, data_plane, resolve_workload, simulate};
use stasim::topology::{self, InputError, Origin, Source, Topology};
use stasim::trace::TraceOptions;

/// Arguments of `run`.
#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// Topology file or built-in name (default: the reference design `sta`).
    #[arg(default_value = "sta")]
    pub topology: String,
    /// Model preset: bert-base, bert-large, deit-small, minilm-l6, gpt2-small.
    #[arg(long)]
    pub model: Option<String>,
    /// Sequence length (tokens).
    #[arg(long)]
    pub seq: Option<i64>,
    /// Batch size.
    #[arg(long)]
    pub batch: Option<i64>,
    /// Layers to simulate (default: all of the model's).
    #[arg(long)]
    pub layers: Option<i64>,
    /// N:M pattern: `2:4`, `dense`, or `qkv=2:8,proj=2:8,ffn1=1:8,ffn2=1:8`.
    #[arg(long)]
    pub pattern: Option<String>,
    /// Run a pruned checkpoint (`.stanm` from `stasim prune`): its shapes and per-layer patterns.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// With --checkpoint of a family: the member to run (default the densest).
    #[arg(long, value_name = "N:M")]
    pub member: Option<String>,
    /// Override a parameter: INSTANCE.PARAM=VALUE (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Write report.json and ops.csv into this folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Draw the charts (PNG and SVG) into this folder (default `plots/`).
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = "plots")]
    pub plots: Option<PathBuf>,
    /// Write a VCD waveform (default `traces/<topology>-<model>.vcd`).
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "")]
    pub vcd: Option<String>,
    /// Write a Perfetto / Chrome trace JSON (default `traces/<topology>-<model>.json`).
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "")]
    pub perfetto: Option<String>,
    /// Add `op_name` string signals to the VCD (Surfer shows them; GTKWave may not read them).
    #[arg(long)]
    pub vcd_strings: bool,
    /// Trace only START..END, each in engine cycles (`2000`) or with a unit (`10us`).
    #[arg(long, value_name = "START..END")]
    pub trace_window: Option<String>,
    /// Trace only these modules, comma-separated (`pe_array,dram`).
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    pub trace_modules: Option<Vec<String>>,
    /// Layer shown by the Gantt chart.
    #[arg(long, default_value_t = 0)]
    pub gantt_layer: usize,
    /// Print the full report as JSON on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Stop with an error (exit 1) if simulated time passes this, e.g. `50ms`.
    #[arg(long, value_name = "DURATION")]
    pub max_time: Option<String>,
    /// Carry real values through the run and check them against an f64 reference
    /// (exit 1 above --tolerance). For small models and a few layers.
    #[arg(long)]
    pub functional: bool,
    /// Seed of the functional run's input (and of preset weights).
    #[arg(long, default_value_t = 1, requires = "functional")]
    pub seed: u64,
    /// Largest relative error of the model output a functional run accepts.
    #[arg(long, default_value_t = stasim::functional::DEFAULT_TOLERANCE, requires = "functional")]
    pub tolerance: f64,
}

fn write_file(path: &std::path::Path, text: &str) -> Result<(), Error> {
    // Write to a temporary name, then rename: a failed run never leaves a file that looks complete.
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            InputError::new(
                format!("cannot write `{}`: {e}", path.display()),
                Origin::CommandLine(format!(
                    "--out {}",
                    path.parent()
                        .map_or(String::new(), |p| p.display().to_string())
                )),
                "",
            )
            .with_hint("choose a folder you can write to")
            .into()
        })
}

/// Parses `START..END`: engine cycles, or durations with a unit.
fn parse_window(text: &str, clock: stasim::kernel::Clock) -> Result<(SimTime, SimTime), Error> {
    let bad = |msg: String| {
        super::arg_error(
            format!("bad --trace-window `{text}`: {msg}"),
            &format!("--trace-window {text}"),
            "write START..END in engine cycles (2000..5000) or with units (10us..20us)",
        )
    };
    let (a, b) = text
        .split_once("..")
        .ok_or_else(|| bad("expected START..END".into()))?;
    let one = |s: &str| -> Result<SimTime, Error> {
        let s = s.trim();
        match s.parse::<u64>() {
            Ok(c) => clock
                .cycles_checked(stasim::kernel::Cycles(c))
                .ok_or_else(|| {
                    bad(format!(
                        "{c} cycles of {} ps reach past the end of simulated time (2^62 ps)",
                        clock.period().as_ps()
                    ))
                }),
            Err(_) => SimTime::parse(s).map_err(bad),
        }
    };
    let (start, end) = (one(a)?, one(b)?);
    if start > end {
        return Err(bad(format!("START ({start}) is after END ({end})")));
    }
    Ok((start, end))
}

/// The trace options of `a` (`label`, the model, names default trace files).
fn trace_options(a: &Args, topo: &Topology, label: Option<&str>) -> Result<TraceOptions, Error> {
    let default_trace = |ext: &str| match label {
        Some(l) => format!("traces/{}-{l}.{ext}", topo.name),
        None => format!("traces/{}.{ext}", topo.name),
    };
    let trace_path = |arg: &Option<String>, ext: &str| -> Result<Option<PathBuf>, Error> {
        let Some(v) = arg else { return Ok(None) };
        let p = PathBuf::from(if v.is_empty() {
            default_trace(ext)
        } else {
            v.clone()
        });
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                super::arg_error(
                    format!("cannot create `{}`: {e}", dir.display()),
                    &p.display().to_string(),
                    "choose a folder you can write to",
                )
            })?;
        }
        Ok(Some(p))
    };
    let window = match &a.trace_window {
        None => None,
        Some(text) => Some(parse_window(text, topo.clock)?),
    };
    Ok(TraceOptions {
        vcd: trace_path(&a.vcd, "vcd")?,
        perfetto: trace_path(&a.perfetto, "json")?,
        window,
        modules: a.trace_modules.clone(),
        vcd_strings: a.vcd_strings,
    })
}

/// Flags that describe a workload, with whether each was given.
fn workload_flags(a: &Args) -> Vec<(&'static str, bool)> {
    vec![
        ("--model", a.model.is_some()),
        ("--seq", a.seq.is_some()),
        ("--batch", a.batch.is_some()),
        ("--layers", a.layers.is_some()),
        ("--pattern", a.pattern.is_some()),
        ("--checkpoint", a.checkpoint.is_some()),
        ("--member", a.member.is_some()),
        ("--functional", a.functional),
        ("--plots", a.plots.is_some()),
        ("--out", a.out.is_some()),
        ("--gantt-layer", a.gantt_layer != 0),
    ]
}

/// Runs a topology without a controller: no workload, so the flags of one are refused, and
/// the output says what ran (modules, links, simulated end).
fn run_plain(a: &Args, topo: &Topology) -> Result<(), Error> {
    if let Some((flag, _)) = workload_flags(a).into_iter().find(|(_, given)| *given) {
        return Err(super::arg_error(
            format!(
                "topology `{}` has no controller, so it runs no workload: {flag} does not apply",
                topo.name
            ),
            flag,
            "drop the workload flags (--model, --seq, --batch, --layers, --pattern, --checkpoint, --member, --functional) and the workload outputs (--out, --plots, --gantt-layer); use --json for the run's record, or a topology with a `controller` (e.g. `sta`)",
        ));
    }
    let max_time = a.max_time.as_deref().map(super::parse_time).transpose()?;
    let trace = trace_options(a, topo, None)?;
    let outcome = stasim::run::simulate_plain(topo, max_time, Some(&trace))?;
    if a.json {
        let json = serde_json::to_string_pretty(&outcome.report).unwrap_or_default();
        println!("{json}");
    } else {
        print!("{}", stasim::report::plain::summary(&outcome.report));
        println!(
            "\n  simulated in {:.3} s wall ({} events, {:.1} M events/s)",
            outcome.wall_s,
            outcome.report.events,
            outcome.report.events as f64 / outcome.wall_s.max(1e-9) / 1e6
        );
    }
    Ok(())
}

/// Runs `run`.
pub fn run(a: &Args) -> Result<(), Error> {
    let src = Source::read(&a.topology)?;
    let topo = topology::load(&src, &super::parse_sets(&a.sets)?)?;
    if !stasim::run::runs_workload(&topo) {
        return run_plain(a, &topo);
    }
    let wargs = WorkloadArgs {
        model: a.model.clone(),
        seq: a.seq,
        batch: a.batch,
        layers: a.layers,
        pattern: a.pattern.clone(),
        checkpoint: a.checkpoint.clone(),
        member: a.member.clone(),
    };
    let w = resolve_workload(&topo, &wargs)?;
    let plane = if a.functional {
        if a.tolerance.is_nan() || a.tolerance <= 0.0 {
            return Err(super::arg_error(
                format!("--tolerance {} must be positive", a.tolerance),
                &format!("--tolerance {}", a.tolerance),
                "e.g. --tolerance 0.01",
            ));
        }
        let f = FunctionalArgs {
            seed: a.seed,
            tolerance: a.tolerance,
        };
        Some(data_plane(&w, &wargs, &f)?)
    } else {
        None
    };
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::from(
                InputError::new(
                    format!("cannot create `{}`: {e}", dir.display()),
                    Origin::CommandLine(format!("--out {}", dir.display())),
                    "",
                )
                .with_hint("choose a folder you can write to"),
            )
        })?;
    }
    if a.plots.is_some() && a.gantt_layer as u64 >= w.layers {
        return Err(super::arg_error(
            format!(
                "--gantt-layer {} but the run simulates {} layers",
                a.gantt_layer, w.layers
            ),
            &format!("--gantt-layer {}", a.gantt_layer),
            format!("pick a layer in 0..{}", w.layers),
        ));
    }
    let max_time = a.max_time.as_deref().map(super::parse_time).transpose()?;
    let trace = trace_options(a, &topo, Some(&w.model.name))?;
    let outcome = simulate(
        &topo,
        &w,
        max_time,
        Some(&trace),
        plane.as_ref().map(|p| (p, a.tolerance)),
    )?;
    let json = serde_json::to_string_pretty(&outcome.report).unwrap_or_default();
    if let Some(dir) = &a.out {
        write_file(&dir.join("report.json"), &format!("{json}\n"))?;
        write_file(&dir.join("ops.csv"), &table::csv(&outcome.report))?;
    }
    if let Some(dir) = &a.plots {
        stasim::plot::write_all(&outcome.report, dir, a.gantt_layer).map_err(|msg| {
            Error::from(
                InputError::new(
                    format!("cannot draw the charts: {msg}"),
                    Origin::CommandLine(format!("--plots {}", dir.display())),
                    "",
                )
                .with_hint(
                    "choose a folder you can write to; --gantt-layer must name a simulated layer",
                ),
            )
        })?;
    }
    if a.json {
        println!("{json}");
    } else {
        print!("{}", table::summary(&outcome.report));
        println!(
            "\n  simulated in {:.3} s wall ({} events, {:.1} M events/s)",
            outcome.wall_s,
            outcome.events,
            outcome.events as f64 / outcome.wall_s.max(1e-9) / 1e6
        );
    }
    match &outcome.report.functional {
        Some(f) if !f.passed => Err(Error::Check(format!(
            "the model output's relative error is {:.3e} (max |error| {:.3e}), above the tolerance {:.1e}{}",
            f.output_rel_error,
            f.output_max_abs_error,
            f.tolerance,
            match f.tensors.iter().find(|t| t.non_finite > 0) {
                Some(t) => format!(
                    "; `{}` holds {} values never written (a consumer ran before its producer?)",
                    t.name, t.non_finite
                ),
                None => String::new(),
            }
        ))),
        _ => Ok(()),
    }
}
