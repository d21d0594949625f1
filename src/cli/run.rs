//! `stasim run [TOPOLOGY]`: simulate a workload on STA and report.

use std::path::{Path, PathBuf};

use stasim::Error;
use stasim::kernel::SimTime;
use stasim::report::table;
use stasim::run::{FunctionalArgs, WorkloadArgs, data_plane, resolve_workload, simulate};
use stasim::topology::{self, Source, Topology};
use stasim::trace::TraceOptions;

/// Arguments of `run`.
#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// Topology file or built-in name (default: the reference design `sta`).
    #[arg(default_value = "sta")]
    pub topology: String,
    /// Model preset (bert-base, bert-large, deit-small, minilm-l6, gpt2-small, smollm2-135m,
    /// qwen2.5-0.5b, llama-3.2-1b, llama-3.1-8b) or a Hugging Face `config.json`.
    #[arg(long)]
    pub model: Option<String>,
    /// Sequence length (tokens; a decoder's prompt).
    #[arg(long)]
    pub seq: Option<i64>,
    /// A decoder's prompt length, tokens (the same as --seq).
    #[arg(long, conflicts_with = "seq")]
    pub prompt: Option<i64>,
    /// Decode steps after the prefill (one token per sequence each): reports TTFT, TPOT,
    /// tokens/s and every step's byte ledger.
    #[arg(long)]
    pub generate: Option<i64>,
    /// Simulate one decode step of a decoder (a Llama-family model or GPT-2) with this many
    /// tokens already in the KV cache (instead of the prefill).
    #[arg(long, conflicts_with = "generate")]
    pub context: Option<i64>,
    /// Threads simulating decode steps at once (default: the machine's cores).
    #[arg(long, requires = "generate")]
    pub threads: Option<usize>,
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
    /// Draw the charts (PNG and SVG) into this folder (default `out/plots/`).
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = "out/plots")]
    pub plots: Option<PathBuf>,
    /// Write a VCD waveform (default `out/traces/<topology>-<model>.vcd`).
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "")]
    pub vcd: Option<String>,
    /// Write a Perfetto / Chrome trace JSON (default `out/traces/<topology>-<model>.json`).
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

/// The folder every default output goes into (ignored by git, never a committed sample).
pub const DEFAULT_OUT: &str = "out";

/// Makes `dir` ready for outputs before the run: a file where a folder is wanted is bad
/// input (exit 2); a folder that cannot be created is an output failure (exit 1).
fn output_folder(dir: &Path, flag: &str) -> Result<(), Error> {
    if dir.exists() && !dir.is_dir() {
        return Err(super::arg_error(
            format!("`{}` is a file, not a folder", dir.display()),
            &format!("{flag} {}", dir.display()),
            "give a folder for the outputs (it is created if missing)",
        ));
    }
    stasim::io::create_folder(dir).map_err(Error::from)
}

/// Checks before the run that `path` can take an output file (a folder there, or a file
/// where its folder should be, is bad input); creates its folder if missing.
fn output_file(path: &Path, flag: &str) -> Result<(), Error> {
    let bad = |msg: String| {
        super::arg_error(
            msg,
            &format!("{flag} {}", path.display()),
            "name a file to write, in a folder (a missing folder is created)",
        )
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if dir.exists() && !dir.is_dir() {
            return Err(bad(format!(
                "cannot write `{}`: `{}` is not a folder",
                path.display(),
                dir.display()
            )));
        }
        stasim::io::create_folder(dir)?;
    }
    stasim::io::check_output_path(path).map_err(|e| bad(e.to_string()))
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
    let trace_path =
        |arg: &Option<String>, flag: &str, ext: &str| -> Result<Option<PathBuf>, Error> {
            let Some(v) = arg else { return Ok(None) };
            let p = if v.is_empty() {
                let name = match label {
                    Some(l) => format!("{}-{l}.{ext}", topo.name),
                    None => format!("{}.{ext}", topo.name),
                };
                Path::new(DEFAULT_OUT).join("traces").join(name)
            } else {
                PathBuf::from(v)
            };
            output_file(&p, flag)?;
            Ok(Some(p))
        };
    let window = match &a.trace_window {
        None => None,
        Some(text) => Some(parse_window(text, topo.clock)?),
    };
    Ok(TraceOptions {
        vcd: trace_path(&a.vcd, "--vcd", "vcd")?,
        perfetto: trace_path(&a.perfetto, "--perfetto", "json")?,
        window,
        modules: a.trace_modules.clone(),
        vcd_strings: a.vcd_strings,
    })
}

/// The trace files a run wrote.
fn trace_files(t: &TraceOptions) -> Vec<PathBuf> {
    [&t.vcd, &t.perfetto]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
}

/// Lists the files written, on stderr (so `--json` keeps stdout pure JSON).
fn list_written(files: &[PathBuf]) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    for p in files {
        let _ = writeln!(err, "wrote {}", p.display());
    }
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
    list_written(&trace_files(&trace));
    if a.json {
        let json = serde_json::to_string_pretty(&outcome.report)
            .map_err(|e| Error::Output(format!("cannot encode the report as JSON: {e}")))?;
        outln!("{json}");
    } else {
        out!("{}", stasim::report::plain::summary(&outcome.report));
        outln!(
            "\n  simulated in {:.3} s wall ({} events, {:.1} M events/s)",
            outcome.wall_s,
            outcome.report.events,
            outcome.report.events as f64 / outcome.wall_s.max(1e-9) / 1e6
        );
    }
    Ok(())
}

/// Runs a prefill and `generate` decode steps (`run --generate`); with `--functional`, then
/// the same with values through the engine, every run checked.
fn run_generation(
    a: &Args,
    topo: &Topology,
    w: &stasim::workload::Workload,
    wargs: &WorkloadArgs,
    generate: i64,
) -> Result<(), Error> {
    let refused = [
        ("--vcd", a.vcd.is_some()),
        ("--perfetto", a.perfetto.is_some()),
        ("--max-time", a.max_time.is_some()),
    ];
    if let Some((flag, _)) = refused.iter().find(|(_, given)| *given) {
        return Err(super::arg_error(
            format!("{flag} does not apply to a generation run (--generate) yet"),
            flag,
            "run the prefill alone (drop --generate) for traces",
        ));
    }
    if !(0..=stasim::workload::MAX_SEQ as i64).contains(&generate) {
        return Err(super::arg_error(
            format!(
                "--generate {generate} must be in 0..={}",
                stasim::workload::MAX_SEQ
            ),
            &format!("--generate {generate}"),
            "e.g. --generate 128",
        ));
    }
    let threads = match a.threads {
        Some(0) => {
            return Err(super::arg_error(
                "--threads 0: at least one thread is needed",
                "--threads 0",
                "e.g. --threads 2",
            ));
        }
        Some(t) => t,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let files = a
        .out
        .as_ref()
        .map(|dir| (dir.join("generation.json"), dir.join("steps.csv")));
    if let (Some(dir), Some((json, csv))) = (&a.out, &files) {
        output_folder(dir, "--out")?;
        output_file(json, "--out")?;
        output_file(csv, "--out")?;
    }
    if let Some(dir) = &a.plots {
        output_folder(dir, "--plots")?;
    }
    // Values first: a functional run too big or with bad weights is refused before the
    // timing runs.
    let values = match functional_args(a)? {
        Some(f) => Some(stasim::run::functional_generation(
            topo,
            w,
            wargs,
            &f,
            generate as u64,
        )?),
        None => None,
    };
    let runs = generate as u64 + 1;
    let bar = indicatif::ProgressBar::new(runs);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:30} {pos}/{len} runs (prefill + steps)  {elapsed} elapsed, ETA {eta}",
    ) {
        bar.set_style(style);
    }
    let t0 = std::time::Instant::now();
    let g = stasim::generate::Generation {
        generate: generate as u64,
        threads,
    };
    let report = stasim::generate::run(topo, w, g, &|n| bar.set_position(n))?;
    bar.finish_and_clear();
    let wall_s = t0.elapsed().as_secs_f64();
    let json = match &values {
        None => serde_json::to_string_pretty(&report),
        Some(v) => serde_json::to_string_pretty(
            &serde_json::json!({ "generation": &report, "functional": v }),
        ),
    }
    .map_err(|e| Error::Output(format!("cannot encode the report as JSON: {e}")))?;
    if let Some((jpath, cpath)) = &files {
        stasim::io::write_atomic(jpath, format!("{json}\n").as_bytes())?;
        stasim::io::write_atomic(cpath, stasim::report::generation::csv(&report).as_bytes())?;
        list_written(&[jpath.clone(), cpath.clone()]);
    }
    if let Some(dir) = &a.plots {
        let charts = stasim::plot::generation::write_all(&report, dir).map_err(Error::Output)?;
        list_written(&charts);
    }
    if a.json {
        outln!("{json}");
    } else {
        out!("{}", stasim::report::generation::summary(&report));
        outln!("\n  simulated {runs} runs in {wall_s:.3} s wall on {threads} threads");
        if let Some(v) = &values {
            out!("{}", functional_generation_summary(v));
        }
    }
    match values {
        Some(v) if !v.passed => Err(Error::Check(format!(
            "a run's output is above the tolerance {:.1e}: {}",
            v.tolerance,
            v.runs
                .iter()
                .filter(|r| !r.functional.passed)
                .map(|r| format!(
                    "{} (rel. error {:.3e})",
                    r.run, r.functional.output_rel_error
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        _ => Ok(()),
    }
}

/// The text of a functional generation: each run's error, and the greedy tokens.
fn functional_generation_summary(v: &stasim::functional::EngineGeneration) -> String {
    use std::fmt::Write;
    let mut s = format!(
        "\nfunctional generation (values through the engine, each run against the f64 reference; weights {}, tolerance {:.1e}):\n  {:<10} {:>8} {:>12} {:>16} {:>7}\n",
        v.weights, v.tolerance, "run", "context", "cycles", "logits rel.err", "passed"
    );
    for r in &v.runs {
        let _ = writeln!(
            s,
            "  {:<10} {:>8} {:>12} {:>16.3e} {:>7}",
            r.run,
            r.context,
            r.cycles,
            r.functional.output_rel_error,
            if r.functional.passed { "yes" } else { "NO" }
        );
    }
    for (b, (p, t)) in v.prompts.iter().zip(&v.tokens).enumerate() {
        let _ = writeln!(s, "  sequence {b}: prompt {p:?} -> greedy tokens {t:?}");
    }
    s
}

/// The functional run's settings, if `--functional` (a bad tolerance is an input error).
fn functional_args(a: &Args) -> Result<Option<FunctionalArgs>, Error> {
    if !a.functional {
        return Ok(None);
    }
    if a.tolerance.is_nan() || a.tolerance <= 0.0 {
        return Err(super::arg_error(
            format!("--tolerance {} must be positive", a.tolerance),
            &format!("--tolerance {}", a.tolerance),
            "e.g. --tolerance 0.01",
        ));
    }
    Ok(Some(FunctionalArgs {
        seed: a.seed,
        tolerance: a.tolerance,
    }))
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
        seq: a.seq.or(a.prompt),
        batch: a.batch,
        layers: a.layers,
        pattern: a.pattern.clone(),
        checkpoint: a.checkpoint.clone(),
        member: a.member.clone(),
        context: a.context,
    };
    let w = resolve_workload(&topo, &wargs)?;
    if let Some(g) = a.generate {
        return run_generation(a, &topo, &w, &wargs, g);
    }
    let plane = match functional_args(a)? {
        Some(f) => Some(data_plane(&w, &wargs, &f)?),
        None => None,
    };
    let report_files = a
        .out
        .as_ref()
        .map(|dir| (dir.join("report.json"), dir.join("ops.csv")));
    if let (Some(dir), Some((report, ops))) = (&a.out, &report_files) {
        output_folder(dir, "--out")?;
        output_file(report, "--out")?;
        output_file(ops, "--out")?;
    }
    if let Some(dir) = &a.plots {
        output_folder(dir, "--plots")?;
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
    let json = serde_json::to_string_pretty(&outcome.report)
        .map_err(|e| Error::Output(format!("cannot encode the report as JSON: {e}")))?;
    let mut written = trace_files(&trace);
    if let Some((report, ops)) = &report_files {
        stasim::io::write_atomic(report, format!("{json}\n").as_bytes())?;
        stasim::io::write_atomic(ops, table::csv(&outcome.report).as_bytes())?;
        written.extend([report.clone(), ops.clone()]);
    }
    if let Some(dir) = &a.plots {
        let charts =
            stasim::plot::write_all(&outcome.report, dir, a.gantt_layer).map_err(Error::Output)?;
        written.extend(charts);
    }
    list_written(&written);
    if a.json {
        outln!("{json}");
    } else {
        out!("{}", table::summary(&outcome.report));
        outln!(
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
