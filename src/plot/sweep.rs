//! Charts of a sweep's results (`stasim sweep plot DIR`, and at the end of every sweep), as
//! PNG and SVG, drawn from the points' reports only.
//!
//! - `speedup_vs_pattern`: speedup over the dense point, per op class and for the whole
//!   model, against the N:M pattern, with the ideal `M/N` of the linear layers. An op's
//!   time is the PE-array time attributed to it, `busy + stall` cycles (the stalls are the
//!   waits for DRAM, buffers, softmax or downstream while the array worked on that op);
//!   these times partition a run, so the classes add up to the whole.
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
//!
//! A chart is drawn when its axis varies. Every other axis is held at the base design's
//! value (the sweep's `reference`) when the sweep has it, else at its first value; the
//! caption says what was held.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Deserialize;

use super::{Draw, FONT, PALETTE, Res, err, legend, prepare, render};
use crate::sweep::results::Results;

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
    seq: u64,
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
    name: String,
    kind: String,
    busy_cycles: u64,
    stall_dram_cycles: u64,
    stall_buffer_cycles: u64,
    stall_softmax_cycles: u64,
    stall_downstream_cycles: u64,
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
            let class = op_class(&op.name);
            let cycles = op.busy_cycles
                + op.stall_dram_cycles
                + op.stall_buffer_cycles
                + op.stall_softmax_cycles
                + op.stall_downstream_cycles;
            match out.iter_mut().find(|(c, _)| *c == class) {
                Some(entry) => entry.1 += cycles,
                None => out.push((class, cycles)),
            }
        }
        out
    }
}

/// The class an op is charted under.
fn op_class(name: &str) -> &'static str {
    match name {
        "qkv" => "Q, K, V projections",
        "proj" => "output projection",
        "ffn1" => "FFN up (ffn1)",
        "ffn2" => "FFN down (ffn2)",
        "scores" | "pv" => "attention (QKᵀ, PV)",
        _ => "other matmuls",
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
    /// Varied keys and their values, in first-appearance order.
    axes: Vec<(String, Vec<String>)>,
    reference: Vec<(String, String)>,
}

impl Data {
    fn new(r: &Results) -> Result<Data, String> {
        let mut points = Vec::new();
        for p in r.points.iter().filter(|p| p.status == "ok") {
            let Some(report) = &p.report else { continue };
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

const CAPTION: u32 = 22;

/// Speedup of each class and of the whole model over the dense point, per sparse pattern.
struct Speedup {
    context: String,
    patterns: Vec<String>,
    /// Each class, then the whole model: one speedup per pattern.
    series: Vec<(String, Vec<f64>)>,
    /// `M/N` per pattern.
    ideal: Vec<Option<f64>>,
}

impl Speedup {
    fn new(d: &Data, key: &str, patterns: &[String]) -> Result<Speedup, String> {
        let held = d.held(&[key]);
        let slice = d.slice(&held);
        let at = |p: &str| {
            slice
                .iter()
                .find(|x| x.value(key) == Some(p))
                .map(|x| &x.run)
        };
        let dense = at("dense").ok_or("the sweep has no dense point to compare with")?;
        let sparse: Vec<(&String, &Run)> = patterns
            .iter()
            .filter(|p| *p != "dense")
            .filter_map(|p| Some((p, at(p)?)))
            .collect();
        if sparse.is_empty() {
            return Err("the sweep has no sparse point".into());
        }
        let mut series: Vec<(String, Vec<f64>)> = dense
            .class_cycles()
            .iter()
            .map(|(class, base)| {
                let values = sparse
                    .iter()
                    .map(|(_, run)| {
                        let cycles = run
                            .class_cycles()
                            .iter()
                            .find(|(c, _)| c == class)
                            .map_or(0, |x| x.1);
                        *base as f64 / cycles.max(1) as f64
                    })
                    .collect();
                ((*class).to_owned(), values)
            })
            .collect();
        series.push((
            "whole model".into(),
            sparse
                .iter()
                .map(|(_, run)| dense.total_cycles as f64 / run.total_cycles.max(1) as f64)
                .collect(),
        ));
        Ok(Speedup {
            context: d.context(&held),
            patterns: sparse.iter().map(|(p, _)| (*p).clone()).collect(),
            series,
            ideal: sparse
                .iter()
                .map(|(p, _)| nm(p).map(|(n, m)| m / n))
                .collect(),
        })
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Res {
        root.fill(&WHITE).map_err(err)?;
        let ymax = self
            .series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .chain(self.ideal.iter().flatten().copied())
            .fold(1.0, f64::max)
            * 1.3;
        let mut chart = categories(
            root,
            format!("Speedup over dense by N:M pattern — {}", self.context),
            (PATTERN_AXIS, &self.patterns),
            ymax,
            "speedup over dense (×)",
        )?;
        let width = 0.84 / self.series.len() as f64;
        for (si, (label, values)) in self.series.iter().enumerate() {
            let whole = si + 1 == self.series.len();
            let color = if whole {
                RGBColor(60, 60, 60)
            } else {
                PALETTE[si % PALETTE.len()]
            };
            let x0 = |pi: usize| pi as f64 - 0.42 + si as f64 * width;
            chart
                .draw_series(values.iter().enumerate().map(|(pi, v)| {
                    Rectangle::new([(x0(pi), 0.0), (x0(pi) + width * 0.9, *v)], color.filled())
                }))
                .map_err(err)?
                .label(label.clone())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled())
                });
            if whole {
                chart
                    .draw_series(values.iter().enumerate().map(|(pi, v)| {
                        // The text hangs below `y`, about `lift` tall: above the bar, or
                        // above the ideal line when that would cross it.
                        let lift = ymax * 0.035;
                        let y = match self.ideal[pi] {
                            Some(m) if m > *v && m < v + 1.5 * lift => m + 1.2 * lift,
                            _ => v + lift,
                        };
                        Text::new(format!("{v:.2}×"), (x0(pi) - width * 0.3, y), (FONT, 14))
                    }))
                    .map_err(err)?;
            }
        }
        chart
            .draw_series(self.ideal.iter().enumerate().filter_map(|(pi, m)| {
                m.map(|m| {
                    PathElement::new(
                        vec![(pi as f64 - 0.45, m), (pi as f64 + 0.45, m)],
                        BLACK.stroke_width(2),
                    )
                })
            }))
            .map_err(err)?
            .label("ideal M/N for the linear layers")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(2)));
        legend(&mut chart, SeriesLabelPosition::UpperLeft, 14)?;
        root.present().map_err(err)
    }
}

type BarChart<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// The x description of charts against the pattern.
const PATTERN_AXIS: &str = "N:M pattern of the linear layers";

/// A bar chart's frame: one category per label along x, `0..ymax` up.
fn categories<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    caption: String,
    (x_desc, labels): (&str, &'a [String]),
    ymax: f64,
    y_desc: &str,
) -> Result<BarChart<'a, DB>, String> {
    let n = labels.len();
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FONT, CAPTION))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .y_label_formatter(&|y| format!("{y}"))
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|x| category(labels, *x))
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 18))
        .draw()
        .map_err(err)?;
    Ok(chart)
}

/// The label of category `x` (a bar group's centre), empty between groups.
fn category(labels: &[String], x: f64) -> String {
    let i = x.round();
    if (x - i).abs() < 0.01 && i >= 0.0 {
        labels.get(i as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

/// Energy per inference by action, per pattern.
struct EnergyBars {
    context: String,
    patterns: Vec<String>,
    /// Per pattern: MAC, SRAM, DRAM and static energy (mJ), total (mJ), GOPS/W (dense-equivalent).
    bars: Vec<([f64; 4], f64, f64)>,
}

impl EnergyBars {
    const PARTS: [&str; 4] = [
        "MACs",
        "SRAM reads and writes",
        "DRAM bytes and activates",
        "static",
    ];

    fn new(d: &Data, key: &str, patterns: &[String]) -> Result<EnergyBars, String> {
        let held = d.held(&[key]);
        let slice = d.slice(&held);
        let mj = |pj: f64| pj * 1e-9;
        let (patterns, bars): (Vec<String>, Vec<_>) = patterns
            .iter()
            .filter_map(|p| {
                let e = &slice.iter().find(|x| x.value(key) == Some(p))?.run.energy;
                let parts = [
                    mj(e.dynamic.mac_pj),
                    mj(e.dynamic.sram_pj),
                    mj(e.dynamic.dram_pj),
                    mj(e.static_pj),
                ];
                Some((p.clone(), (parts, e.total_uj / 1000.0, e.gops_per_w_dense)))
            })
            .unzip();
        if patterns.len() < 2 {
            return Err("fewer than two patterns to compare".into());
        }
        Ok(EnergyBars {
            context: d.context(&held),
            patterns,
            bars,
        })
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Res {
        root.fill(&WHITE).map_err(err)?;
        let ymax = self.bars.iter().map(|b| b.1).fold(0.0, f64::max) * 1.3 + 1e-9;
        let mut chart = categories(
            root,
            format!("Energy per inference by N:M pattern — {}", self.context),
            (PATTERN_AXIS, &self.patterns),
            ymax,
            "energy per inference (mJ)",
        )?;
        root.draw(&Text::new(
            "* dense-equivalent: the dense model's operations per joule",
            (110, 72),
            (FONT, 13),
        ))
        .map_err(err)?;
        for (ai, part) in Self::PARTS.iter().enumerate() {
            let color = PALETTE[ai % PALETTE.len()];
            chart
                .draw_series(self.bars.iter().enumerate().map(|(bi, (e, _, _))| {
                    let y0: f64 = e[..ai].iter().sum();
                    Rectangle::new(
                        [(bi as f64 - 0.3, y0), (bi as f64 + 0.3, y0 + e[ai])],
                        color.filled(),
                    )
                }))
                .map_err(err)?
                .label(*part)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled())
                });
        }
        chart
            .draw_series(
                self.bars
                    .iter()
                    .enumerate()
                    .map(|(bi, (_, total, gops_w))| {
                        Text::new(
                            format!("{total:.1} mJ, {gops_w:.0} GOPS/W*"),
                            (bi as f64 - 0.36, total + ymax * 0.03),
                            (FONT, 13),
                        )
                    }),
            )
            .map_err(err)?;
        legend(&mut chart, SeriesLabelPosition::UpperRight, 14)?;
        root.present().map_err(err)
    }
}

/// Whole-model speedup of each sparse pattern over the same model's dense run, per model.
struct ByModel {
    context: String,
    models: Vec<String>,
    /// Each sparse pattern and its speedup per model (`None`: a point is missing).
    series: Vec<(String, Vec<Option<f64>>)>,
}

impl ByModel {
    fn new(
        d: &Data,
        (model_key, models): (&str, &[String]),
        (pattern_key, patterns): (&str, &[String]),
    ) -> Result<ByModel, String> {
        let held = d.held(&[model_key, pattern_key]);
        let slice = d.slice(&held);
        let run = |m: &str, p: &str| {
            slice
                .iter()
                .find(|x| x.value(model_key) == Some(m) && x.value(pattern_key) == Some(p))
                .map(|x| &x.run)
        };
        let cycles = |m: &str, p: &str| run(m, p).map(|r| r.total_cycles as f64);
        let models: Vec<&String> = models
            .iter()
            .filter(|m| cycles(m, "dense").is_some())
            .collect();
        if models.is_empty() {
            return Err("no model has a dense point to compare with".into());
        }
        let series: Vec<(String, Vec<Option<f64>>)> = patterns
            .iter()
            .filter(|p| *p != "dense")
            .map(|p| {
                let speedups = models
                    .iter()
                    .map(|m| Some(cycles(m, "dense")? / cycles(m, p)?.max(1.0)))
                    .collect();
                (p.clone(), speedups)
            })
            .filter(|(_, v): &(String, Vec<Option<f64>>)| v.iter().any(Option::is_some))
            .collect();
        if series.is_empty() {
            return Err("the sweep has no sparse point".into());
        }
        Ok(ByModel {
            context: d.context(&held),
            // Each model with the sequence length it ran at.
            models: models
                .iter()
                .map(|m| match run(m, "dense") {
                    Some(r) => format!("{m}, s={}", r.workload.seq),
                    None => (*m).clone(),
                })
                .collect(),
            series,
        })
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Res {
        root.fill(&WHITE).map_err(err)?;
        let ymax = self
            .series
            .iter()
            .flat_map(|(_, v)| v.iter().flatten().copied())
            .fold(1.0, f64::max)
            * 1.35;
        let mut chart = categories(
            root,
            format!("Whole-model speedup over dense by model — {}", self.context),
            ("model", &self.models),
            ymax,
            "speedup over the model's dense run (×)",
        )?;
        let width = 0.84 / self.series.len() as f64;
        for (si, (pattern, values)) in self.series.iter().enumerate() {
            let color = PALETTE[si % PALETTE.len()];
            let x0 = |mi: usize| mi as f64 - 0.42 + si as f64 * width;
            let bars = values
                .iter()
                .enumerate()
                .filter_map(|(mi, v)| Some((mi, (*v)?)));
            chart
                .draw_series(bars.clone().map(|(mi, v)| {
                    Rectangle::new([(x0(mi), 0.0), (x0(mi) + width * 0.9, v)], color.filled())
                }))
                .map_err(err)?
                .label(match nm(pattern) {
                    Some((n, m)) => format!("{pattern} (ideal {:.0}×)", m / n),
                    None => pattern.clone(),
                })
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled())
                });
            chart
                .draw_series(bars.map(|(mi, v)| {
                    Text::new(
                        format!("{v:.2}×"),
                        (x0(mi) - width * 0.1, v + ymax * 0.035),
                        (FONT, 12),
                    )
                }))
                .map_err(err)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft, 14)?;
        root.present().map_err(err)
    }
}

/// What a latency chart plots along x.
#[derive(Copy, Clone)]
enum Along {
    /// The PE array's peak MAC rate (GMAC/s).
    Pe,
    /// The DRAM's peak bandwidth (GB/s).
    Dram,
}

impl Along {
    fn resource(self) -> &'static str {
        match self {
            Along::Pe => "PE array's peak",
            Along::Dram => "DRAM's peak bandwidth",
        }
    }

    fn x(self, r: &Run) -> f64 {
        match self {
            Along::Pe => r.peak_gmacs,
            Along::Dram => r.dram.peak_gbps,
        }
    }
}

/// Latency against one resource, one line per setting of another axis.
struct Latency<'a> {
    context: String,
    along: Along,
    x_key: String,
    /// Label and points (sorted along x) of each line.
    lines: Vec<(String, Vec<&'a Run>)>,
}

impl<'a> Latency<'a> {
    fn new(
        d: &'a Data,
        along: Along,
        x_key: &str,
        series_key: Option<&str>,
    ) -> Result<Latency<'a>, String> {
        let free: Vec<&str> = std::iter::once(x_key).chain(series_key).collect();
        let held = d.held(&free);
        let slice = d.slice(&held);
        let series_values: Vec<Option<&String>> = match series_key {
            Some(s) => d
                .axes
                .iter()
                .find(|(k, _)| k == s)
                .map_or(Vec::new(), |(_, v)| v.iter().map(Some).collect()),
            None => vec![None],
        };
        let lines: Vec<(String, Vec<&Run>)> = series_values
            .iter()
            .filter_map(|sv| {
                let mut runs: Vec<&Run> = slice
                    .iter()
                    .filter(|p| match (series_key, sv) {
                        (Some(k), Some(v)) => p.value(k) == Some(v.as_str()),
                        _ => true,
                    })
                    .map(|p| &p.run)
                    .collect();
                runs.sort_by(|a, b| along.x(a).total_cmp(&along.x(b)));
                let first = runs.first()?;
                let label = match along {
                    Along::Pe => format!("DRAM {:.1} GB/s", first.dram.peak_gbps),
                    Along::Dram => format!("PE array {:.1} GMAC/s", first.peak_gmacs),
                };
                let label = match (series_key, sv) {
                    (Some(k), Some(v)) => format!("{label} ({k}={v})"),
                    _ => label,
                };
                Some((label, runs))
            })
            .collect();
        let distinct = |runs: &Vec<&Run>| runs.windows(2).any(|w| along.x(w[0]) < along.x(w[1]));
        if !lines.iter().any(|(_, runs)| distinct(runs)) {
            return Err(format!(
                "`{x_key}` does not change the {}",
                along.resource()
            ));
        }
        Ok(Latency {
            context: d.context(&held),
            along,
            x_key: x_key.to_owned(),
            lines,
        })
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Res {
        root.fill(&WHITE).map_err(err)?;
        let along = self.along;
        let all = || self.lines.iter().flat_map(|(_, r)| r.iter());
        let (xmin, xmax) = all().fold((f64::INFINITY, 0.0f64), |(lo, hi), r| {
            (lo.min(along.x(r)), hi.max(along.x(r)))
        });
        let ys = || all().flat_map(|r| [r.latency_ms(), r.compute_floor_ms(), r.memory_floor_ms()]);
        // Room below the data for the legend.
        let ymin = ys().fold(f64::INFINITY, f64::min) / 8.0;
        let ymax = ys().fold(0.0, f64::max) * 2.5;
        let (xlo, xhi) = (xmin / 1.3, xmax * 1.3);
        // Ticks at the settings swept.
        let mut xs: Vec<f64> = all().map(|r| along.x(r)).collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let (title, x_desc) = match along {
            Along::Pe => (
                "Latency against PE-array size",
                "PE-array peak (GMAC/s, log)",
            ),
            Along::Dram => (
                "Latency against DRAM bandwidth",
                "DRAM peak bandwidth (GB/s, log)",
            ),
        };
        let mut chart = ChartBuilder::on(root)
            .caption(format!("{title} — {}", self.context), (FONT, CAPTION))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(
                (xlo..xhi).log_scale().with_key_points(xs),
                (ymin..ymax)
                    .log_scale()
                    .with_key_points(one_two_five(ymin, ymax)),
            )
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(format!("{x_desc}, varied by {}", self.x_key))
            .y_desc("latency per inference (ms, log)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y}"))
            .label_style((FONT, 16))
            .axis_desc_style((FONT, 18))
            .draw()
            .map_err(err)?;
        // The floor shared by every line: compute along PE size, memory along bandwidth.
        let r0 = self.lines[0].1[0];
        let work = match along {
            Along::Pe => r0.macs as f64,
            Along::Dram => (r0.dram.bytes_read + r0.dram.bytes_written) as f64,
        };
        let grey = RGBColor(90, 90, 90);
        chart
            .draw_series(DashedLineSeries::new(
                (0..=40).map(|i| {
                    let x = xlo * (xhi / xlo).powf(f64::from(i) / 40.0);
                    (x, work / (x * 1e9) * 1e3)
                }),
                10,
                6,
                grey.stroke_width(2),
            ))
            .map_err(err)?
            .label(match along {
                Along::Pe => "compute floor: useful MACs / PE peak",
                Along::Dram => "memory floor: DRAM bytes / peak bandwidth",
            })
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], grey.stroke_width(2))
            });
        for (li, (label, runs)) in self.lines.iter().enumerate() {
            let color = PALETTE[li % PALETTE.len()];
            let at = |r: &&Run| (along.x(r), r.latency_ms());
            chart
                .draw_series(LineSeries::new(runs.iter().map(at), color.stroke_width(2)))
                .map_err(err)?
                .label(label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart
                .draw_series(runs.iter().map(|r| {
                    let fill = if r.compute_bound() { color } else { WHITE };
                    Circle::new(at(r), 6, fill.filled())
                }))
                .map_err(err)?;
            chart
                .draw_series(
                    runs.iter()
                        .map(|r| Circle::new(at(r), 6, color.stroke_width(2))),
                )
                .map_err(err)?;
            // This line's own floor: memory along PE size, compute along bandwidth.
            let own = match along {
                Along::Pe => runs[0].memory_floor_ms(),
                Along::Dram => runs[0].compute_floor_ms(),
            };
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(xlo, own), (xhi, own)],
                    4,
                    5,
                    color.mix(0.7).stroke_width(1),
                ))
                .map_err(err)?;
        }
        let own_label = match along {
            Along::Pe => "memory floor of each line: DRAM bytes / its peak bandwidth",
            Along::Dram => "compute floor of each line: useful MACs / its PE peak",
        };
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), u32>>())
            .map_err(err)?
            .label(own_label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], grey.mix(0.7).stroke_width(1))
            });
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), u32>>())
            .map_err(err)?
            .label("filled: compute-bound (PE busier than DRAM); hollow: memory-bound")
            .legend(move |(x, y)| Circle::new((x + 7, y), 5, grey.filled()));
        legend(&mut chart, SeriesLabelPosition::LowerLeft, 13)?;
        root.present().map_err(err)
    }
}

/// Ticks at 1, 2, 5 times the powers of ten within `lo..hi`.
fn one_two_five(lo: f64, hi: f64) -> Vec<f64> {
    let mut ticks = Vec::new();
    let mut decade = 10f64.powi(lo.log10().floor() as i32);
    while decade <= hi {
        for m in [1.0, 2.0, 5.0] {
            let t = m * decade;
            if (lo..=hi).contains(&t) {
                ticks.push(t);
            }
        }
        decade *= 10.0;
    }
    ticks
}

/// A sweep chart with its data.
enum SweepChart<'a> {
    Speedup(Speedup),
    ByModel(ByModel),
    Energy(EnergyBars),
    LatencyVsPe(Latency<'a>),
    LatencyVsDram(Latency<'a>),
}

impl Draw for SweepChart<'_> {
    fn file_name(&self) -> String {
        match self {
            SweepChart::Speedup(_) => "speedup_vs_pattern",
            SweepChart::ByModel(_) => "speedup_by_model",
            SweepChart::Energy(_) => "energy_vs_pattern",
            SweepChart::LatencyVsPe(_) => "latency_vs_pe",
            SweepChart::LatencyVsDram(_) => "latency_vs_dram",
        }
        .into()
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Res {
        match self {
            SweepChart::Speedup(c) => c.draw(area),
            SweepChart::ByModel(c) => c.draw(area),
            SweepChart::Energy(c) => c.draw(area),
            SweepChart::LatencyVsPe(c) | SweepChart::LatencyVsDram(c) => c.draw(area),
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
}

/// Writes every chart the sweep's axes allow into `dir` (PNG and SVG); a chart the data
/// cannot support (no dense point, an axis that does not vary) is listed as skipped.
pub fn write_all(r: &Results, dir: &Path) -> Result<Written, String> {
    let d = Data::new(r)?;
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
    let candidates: [(&str, Result<SweepChart, String>); 5] = [
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
    ];
    let mut out = Written::default();
    for (name, chart) in candidates {
        match chart {
            Ok(c) => {
                if out.files.is_empty() {
                    prepare(dir)?;
                }
                out.files.extend(render(&c, dir)?);
            }
            Err(why) => out.skipped.push((name.to_owned(), why)),
        }
    }
    Ok(out)
}
