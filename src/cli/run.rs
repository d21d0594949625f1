//! `stasim run [TOPOLOGY]`: simulate a workload on STA and report.

use std::path::PathBuf;

use stasim::Error;
use stasim::report::table;
use stasim::run::{WorkloadArgs, resolve_workload, simulate};
use stasim::topology::{self, InputError, Origin, Source};

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
    /// Override a parameter: INSTANCE.PARAM=VALUE (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Write report.json and ops.csv into this folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Draw the charts (PNG and SVG) into this folder.
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    /// Layer shown by the Gantt chart.
    #[arg(long, default_value_t = 0)]
    pub gantt_layer: usize,
    /// Print the full report as JSON on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Stop with an error (exit 1) if simulated time passes this, e.g. `50ms`.
    #[arg(long, value_name = "DURATION")]
    pub max_time: Option<String>,
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

/// Runs `run`.
pub fn run(a: &Args) -> Result<(), Error> {
    let src = Source::read(&a.topology)?;
    let topo = topology::load(&src, &super::parse_sets(&a.sets)?)?;
    let w = resolve_workload(
        &topo,
        &WorkloadArgs {
            model: a.model.clone(),
            seq: a.seq,
            batch: a.batch,
            layers: a.layers,
            pattern: a.pattern.clone(),
        },
    )?;
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
    let max_time = a.max_time.as_deref().map(super::parse_time).transpose()?;
    let outcome = simulate(&topo, &w, max_time)?;
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
    Ok(())
}
