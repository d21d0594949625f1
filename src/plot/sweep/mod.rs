//! Charts of a sweep's results (`stasim sweep plot DIR`, and at the end of every sweep), as
//! PNG and SVG, drawn from the points' reports only.
//!
//! - `speedup_vs_pattern`: speedup over the dense point, per op class and for the whole
//!   model, against the N:M pattern, with the ideal `M/N` of the linear layers. An op's
//!   time is its `pe_cycles`, the PE-array time charged to it: busy plus the waits for
//!   DRAM, buffers, softmax or the accumulator with its passes (see [`crate::report`]);
//!   these times and the array's idle time partition a run, so the classes add up to
//!   nearly the whole.
//! - `speedup_by_model` (a sweep varying `model` and `pattern`): each model's whole-model
//!   speedup over its own dense run, one bar per sparse pattern.
//! - `energy_vs_pattern`: energy per inference against the pattern, stacked by action
//!   (MACs, SRAM, DRAM, static), with the total and the dense-equivalent GOPS/W.
//! - `latency_vs_pe`: latency against the PE array's peak (`pe_array.*` axis), one line per
//!   DRAM setting, under two floors: compute `useful MACs / peak MAC rate` and memory
//!   `DRAM bytes / peak DRAM bandwidth`. A filled marker is a compute-bound point (PE
//!   utilisation >= DRAM utilisation `avg / peak bandwidth`), a hollow one memory-bound.
//! - `latency_vs_dram`: latency against the DRAM's peak bandwidth (`dram.*` axis), one
//!   line per PE-array setting, same floors and markers.
//! - `speedup_vs_context` (a sweep of decode steps varying `pattern` and `context` and/or
//!   `batch`): each sparse pattern's whole-step speedup over the dense step at the same
//!   context and batch against `context x batch`, with `speedup_vs_context.csv` beside it
//!   (see [`context`]).
//!
//! Only finished points are charted: failed, infeasible and timed-out points are left out
//! (and counted, [`Written::failed_points`]). A sweep of a topology without a controller
//! has no workload to chart.
//!
//! A chart is drawn when its axis varies. Every other axis is held at the base design's
//! value (the sweep's `reference`) when the sweep has it, else at its first value; the
//! caption says what was held.

mod bars;
mod context;
mod latency;

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use serde::Deserialize;

use self::bars::{ByModel, EnergyBars, Speedup};
use self::context::ContextSpeedup;
use self::latency::{Along, Latency};
use super::{Draw, FONT, Res, err, prepare, render};
use crate::model::{LinearClass, Role};
use crate::sweep::results::Results;

/// Caption font size of the sweep charts.
const CAPTION: u32 = 22;

/// The parts of a point's report the charts read.
#[derive(Deserialize)]
struct Run {
    total_time_us: f64,
    total_cycles: u64,
    macs: u64,
    peak_gmacs: f64,
    pe_utilization: f64,
    dram: Dram,
    energy: Energy,
    layers: Vec<Layer>,
    workload: WorkloadInfo,
}

#[derive(Deserialize)]
struct WorkloadInfo {
    model: ModelInfo,
    seq: u64,
    batch: u64,
    /// Absent in reports written before decode steps.
    #[serde(default)]
    phase: Option<PhaseInfo>,
}

#[derive(Deserialize)]
struct ModelInfo {
    name: String,
}

/// `{"phase": "decode", "context": C}` or `{"phase": "prefill"}`.
#[derive(Deserialize)]
struct PhaseInfo {
    /// Tokens in the KV cache of a decode step; none for a prefill.
    #[serde(default)]
    context: Option<u64>,
}

#[derive(Deserialize)]
struct Dram {
    bytes_read: u64,
    bytes_written: u64,
    avg_gbps: f64,
    peak_gbps: f64,
}

#[derive(Deserialize)]
struct Energy {
    total_uj: f64,
    dynamic: Dynamic,
    static_pj: f64,
    gops_per_w_dense: f64,
}

#[derive(Deserialize)]
struct Dynamic {
    mac_pj: f64,
    sram_pj: f64,
    dram_pj: f64,
}

#[derive(Deserialize)]
struct Layer {
    ops: Vec<Op>,
}

#[derive(Deserialize)]
struct Op {
    /// Absent in reports written before the model IR.
    #[serde(default)]
    role: Option<Role>,
    kind: String,
    pe_cycles: u64,
}

impl Run {
    fn latency_ms(&self) -> f64 {
        self.total_time_us / 1000.0
    }

    /// Whether the PE array was busier than the DRAM.
    fn compute_bound(&self) -> bool {
        self.pe_utilization >= self.dram.avg_gbps / self.dram.peak_gbps
    }

    /// `useful MACs / peak MAC rate`, ms.
    fn compute_floor_ms(&self) -> f64 {
        self.macs as f64 / (self.peak_gmacs * 1e9) * 1e3
    }

    /// `DRAM bytes / peak DRAM bandwidth`, ms.
    fn memory_floor_ms(&self) -> f64 {
        (self.dram.bytes_read + self.dram.bytes_written) as f64 / (self.dram.peak_gbps * 1e9) * 1e3
    }

    /// PE-array cycles attributed to each matmul class, in first-appearance order.
    fn class_cycles(&self) -> Vec<(&'static str, u64)> {
        let mut out: Vec<(&'static str, u64)> = Vec::new();
        for op in self.layers.iter().flat_map(|l| &l.ops) {
            if op.kind != "sparse_dense" && op.kind != "dense_dense" {
                continue;
            }
            let class = op_class(op.role);
            let cycles = op.pe_cycles;
            match out.iter_mut().find(|(c, _)| *c == class) {
                Some(entry) => entry.1 += cycles,
                None => out.push((class, cycles)),
            }
        }
        out
    }
}

/// The class an op is charted under.
fn op_class(role: Option<Role>) -> &'static str {
    let Some(role) = role else {
        return "matmuls (a report without op roles)";
    };
    match role {
        Role::Linear {
            class: LinearClass::Qkv,
        } => "Q, K, V projections",
        Role::Linear {
            class: LinearClass::Proj,
        } => "output projection",
        Role::Linear {
            class: LinearClass::Ffn1,
        } => "FFN up (ffn1)",
        Role::Linear {
            class: LinearClass::Ffn2,
        } => "FFN down (ffn2)",
        Role::Linear {
            class: LinearClass::LmHead,
        } => "lm_head",
        Role::Scores | Role::Pv => "attention (QKᵀ, PV)",
        Role::Softmax | Role::Vector { .. } => "other ops",
    }
}

/// One finished point.
struct Point {
    params: Vec<(String, String)>,
    run: Run,
}

impl Point {
    fn value(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A sweep's finished points and its axes.
struct Data {
    sweep: String,
    points: Vec<Point>,
    /// Points that did not finish (failed, infeasible, timed out): not charted.
    failed: usize,
    /// Points that ran no workload (a topology without a controller): nothing to chart.
    plain: usize,
    /// Varied keys and their values, in first-appearance order.
    axes: Vec<(String, Vec<String>)>,
    reference: Vec<(String, String)>,
}

impl Data {
    fn new(r: &Results) -> Result<Data, String> {
        let mut points = Vec::new();
        let failed = r.points.iter().filter(|p| p.status != "ok").count();
        let mut plain = 0;
        for p in r.points.iter().filter(|p| p.status == "ok") {
            let Some(report) = &p.report else { continue };
            if crate::sweep::results::is_plain(report) {
                plain += 1;
                continue;
            }
            let run = Run::deserialize(report)
                .map_err(|e| format!("point {}: not a stasim report: {e}", p.index))?;
            points.push(Point {
                params: p.params.clone(),
                run,
            });
        }
        let mut axes: Vec<(String, Vec<String>)> = Vec::new();
        for p in &points {
            for (k, v) in &p.params {
                let i = match axes.iter().position(|(a, _)| a == k) {
                    Some(i) => i,
                    None => {
                        axes.push((k.clone(), Vec::new()));
                        axes.len() - 1
                    }
                };
                if !axes[i].1.contains(v) {
                    axes[i].1.push(v.clone());
                }
            }
        }
        Ok(Data {
            sweep: r.sweep.clone(),
            points,
            failed,
            plain,
            axes,
            reference: r.reference.clone(),
        })
    }

    /// The first varied key that `is` accepts.
    fn axis(&self, is: impl Fn(&str) -> bool) -> Option<&(String, Vec<String>)> {
        self.axes.iter().find(|(k, v)| is(k) && v.len() > 1)
    }

    /// The values every axis except `free` is held at.
    fn held(&self, free: &[&str]) -> Vec<(String, String)> {
        self.axes
            .iter()
            .filter(|(k, _)| !free.contains(&k.as_str()))
            .map(|(k, values)| {
                let reference = self
                    .reference
                    .iter()
                    .find(|(rk, rv)| rk == k && values.contains(rv));
                let v = reference.map_or_else(|| values[0].clone(), |(_, rv)| rv.clone());
                (k.clone(), v)
            })
            .collect()
    }

    /// The points where every held axis has its held value.
    fn slice(&self, held: &[(String, String)]) -> Vec<&Point> {
        self.points
            .iter()
            .filter(|p| held.iter().all(|(k, v)| p.value(k) == Some(v.as_str())))
            .collect()
    }

    /// The caption's tail: the sweep and the held values.
    fn context(&self, held: &[(String, String)]) -> String {
        if held.is_empty() {
            format!("sweep {}", self.sweep)
        } else {
            let h: Vec<String> = held.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("sweep {}, {}", self.sweep, h.join(", "))
        }
    }
}

/// `(n, m)` of a pattern written `N:M`.
fn nm(pattern: &str) -> Option<(f64, f64)> {
    let (n, m) = pattern.split_once(':')?;
    Some((n.trim().parse().ok()?, m.trim().parse().ok()?))
}

/// A pattern's legend label with its ideal speedup `M/N`.
fn with_ideal(pattern: &str) -> String {
    match nm(pattern) {
        Some((n, m)) => format!("{pattern} (ideal {:.0}×)", m / n),
        None => pattern.to_owned(),
    }
}

/// A chart with a linear y axis `y`, `x` along (any f64 axis: a range, a range with key
/// points) with `x_labels` tick labels written by `x_label`; no vertical mesh lines.
type Frame<'a, DB, X> =
    ChartContext<'a, DB, Cartesian2d<<X as AsRangedCoord>::CoordDescType, RangedCoordf64>>;

/// The frame of a sweep chart: caption, axes and their descriptions, the mesh drawn.
fn frame<'a, DB, X>(
    root: &'a DrawingArea<DB, Shift>,
    caption: String,
    (x, x_desc, x_labels): (X, &str, usize),
    x_label: &dyn Fn(&f64) -> String,
    (y, y_desc): (std::ops::Range<f64>, &str),
) -> Result<Frame<'a, DB, X>, String>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FONT, CAPTION))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        // Rounded to 9 decimals: a tick like 0.6000000000000001 reads 0.6.
        .y_label_formatter(&|y| format!("{}", (y * 1e9).round() / 1e9))
        .x_labels(x_labels)
        .x_label_formatter(x_label)
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 18))
        .draw()
        .map_err(err)?;
    Ok(chart)
}

/// A sweep chart with its data.
enum SweepChart<'a> {
    Speedup(Speedup),
    ByModel(ByModel),
    Energy(EnergyBars),
    LatencyVsPe(Latency<'a>),
    LatencyVsDram(Latency<'a>),
    Context(ContextSpeedup),
}

impl Draw for SweepChart<'_> {
    fn file_name(&self) -> String {
        match self {
            SweepChart::Speedup(_) => "speedup_vs_pattern",
            SweepChart::ByModel(_) => "speedup_by_model",
            SweepChart::Energy(_) => "energy_vs_pattern",
            SweepChart::LatencyVsPe(_) => "latency_vs_pe",
            SweepChart::LatencyVsDram(_) => "latency_vs_dram",
            SweepChart::Context(_) => "speedup_vs_context",
        }
        .into()
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Res {
        match self {
            SweepChart::Speedup(c) => c.draw(area),
            SweepChart::ByModel(c) => c.draw(area),
            SweepChart::Energy(c) => c.draw(area),
            SweepChart::LatencyVsPe(c) | SweepChart::LatencyVsDram(c) => c.draw(area),
            SweepChart::Context(c) => c.draw(area),
        }
    }
}

/// What [`write_all`] did.
#[derive(Debug, Default)]
pub struct Written {
    /// Files written.
    pub files: Vec<PathBuf>,
    /// Charts not drawn, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Points left out of every chart because they did not finish (failed, infeasible,
    /// timed out).
    pub failed_points: usize,
}

/// Writes every chart the sweep's axes allow into `dir` (PNG and SVG); a chart the data
/// cannot support (no dense point, an axis that does not vary) is listed as skipped.
pub fn write_all(r: &Results, dir: &Path) -> Result<Written, String> {
    let d = Data::new(r)?;
    let mut out = Written {
        failed_points: d.failed,
        ..Written::default()
    };
    if d.points.is_empty() && d.plain > 0 {
        let why = "the points ran no workload (a topology without a controller); their end \
                   times and module statistics are in results.csv";
        out.skipped = vec![("charts".to_owned(), why.to_owned())];
        return Ok(out);
    }
    let pattern = d.axis(|k| k == "pattern");
    let model = d.axis(|k| k == "model");
    let pe = d.axis(|k| k.starts_with("pe_array.")).map(|a| a.0.as_str());
    let dram = d.axis(|k| k.starts_with("dram.")).map(|a| a.0.as_str());
    let not_varied = |what: &str| Err(format!("the sweep does not vary {what}"));
    let by_model = match (model, pattern) {
        (Some((mk, mv)), Some((pk, pv))) => {
            ByModel::new(&d, (mk, mv), (pk, pv)).map(SweepChart::ByModel)
        }
        (None, _) => not_varied("`model`"),
        (_, None) => not_varied("`pattern`"),
    };
    let steps = d.axis(|k| k == "context" || k == "batch");
    let by_context = match (pattern, steps) {
        (Some((pk, pv)), Some(_)) => ContextSpeedup::new(&d, pk, pv).map(SweepChart::Context),
        (None, _) => not_varied("`pattern`"),
        (_, None) => not_varied("`context` or `batch`"),
    };
    let candidates: [(&str, Result<SweepChart, String>); 6] = [
        (
            "speedup_vs_pattern",
            pattern.map_or_else(
                || not_varied("`pattern`"),
                |(k, v)| Speedup::new(&d, k, v).map(SweepChart::Speedup),
            ),
        ),
        ("speedup_by_model", by_model),
        (
            "energy_vs_pattern",
            pattern.map_or_else(
                || not_varied("`pattern`"),
                |(k, v)| EnergyBars::new(&d, k, v).map(SweepChart::Energy),
            ),
        ),
        (
            "latency_vs_pe",
            pe.map_or_else(
                || not_varied("a `pe_array.*` key"),
                |k| Latency::new(&d, Along::Pe, k, dram).map(SweepChart::LatencyVsPe),
            ),
        ),
        (
            "latency_vs_dram",
            dram.map_or_else(
                || not_varied("a `dram.*` key"),
                |k| Latency::new(&d, Along::Dram, k, pe).map(SweepChart::LatencyVsDram),
            ),
        ),
        ("speedup_vs_context", by_context),
    ];
    for (name, chart) in candidates {
        match chart {
            Ok(c) => {
                if out.files.is_empty() {
                    prepare(dir)?;
                }
                out.files.extend(render(&c, dir)?);
                if let SweepChart::Context(c) = &c {
                    out.files.push(c.write_csv(dir)?);
                }
            }
            Err(why) => out.skipped.push((name.to_owned(), why)),
        }
    }
    Ok(out)
}
