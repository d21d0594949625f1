//! Charts of a generation ([`GenerationReport`], `stasim run --generate G --plots`):
//!
//! - `decode_step_latency`: every decode step's latency against its context (the tokens in
//!   the KV cache), with the TTFT in the caption;
//! - `decode_step_bytes`: every step's DRAM bytes stacked by class (weight values, weight
//!   indices, lm_head, KV read, KV write, activations) against its context: the KV cache's
//!   share grows with the context, which N:M does not shrink;
//! - `decode_step_ops`: the last step's time by op (cycles each moved the finish line, over
//!   all layers), coloured by what bound the op (ops that never moved it left out).

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::legend::{Ink, headroom};
use super::{CORNERS, Draw, FONT, PLOT_PX, Res, err, prepare, render};
use crate::generate::{GenerationReport, Ledger};

/// Which chart.
#[derive(Copy, Clone)]
enum Chart {
    Latency,
    Bytes,
    Ops,
}

/// The byte classes, bottom to top, with their colours.
type ByteClass = (&'static str, RGBColor, fn(&Ledger) -> u64);
const CLASSES: [ByteClass; 6] = [
    ("weight values", RGBColor(31, 119, 180), |l| l.weight_values),
    ("weight indices", RGBColor(174, 199, 232), |l| {
        l.weight_indices
    }),
    ("lm_head", RGBColor(255, 127, 14), |l| l.lm_head),
    ("KV read", RGBColor(214, 39, 40), |l| l.kv_read),
    ("KV write", RGBColor(255, 152, 150), |l| l.kv_write),
    ("activations", RGBColor(127, 127, 127), |l| l.activations),
];

/// The bounds, with their colours.
const BOUNDS: [(&str, RGBColor); 7] = [
    ("compute", RGBColor(31, 119, 180)),
    ("DRAM", RGBColor(214, 39, 40)),
    ("buffer", RGBColor(148, 103, 189)),
    ("softmax", RGBColor(44, 160, 44)),
    ("accumulator", RGBColor(127, 127, 127)),
    ("vector unit", RGBColor(255, 127, 14)),
    ("", RGBColor(0, 0, 0)),
];

fn caption(r: &GenerationReport, what: &str) -> String {
    let w = &r.workload;
    format!(
        "{what} — {} on {}, batch {}, {}",
        w.model.name, r.topology, w.batch, w.patterns.qkv
    )
}

/// The contexts of the steps and their range on the x axis.
fn x_range(r: &GenerationReport) -> (f64, f64) {
    let first = r.steps.first().map_or(0, |s| s.context) as f64;
    let last = r.steps.last().map_or(0, |s| s.context) as f64;
    (first - 0.5, last + 0.5)
}

/// Axes of a chart against the steps' contexts: `y_desc` from 0 to `ymax`.
fn against_context<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    r: &GenerationReport,
    title: String,
    y_desc: &str,
    ymax: f64,
) -> Result<ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>, String> {
    let (x0, x1) = x_range(r);
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 22))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(x0..x1, 0f64..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        // Contexts are whole tokens: ticks between them get no label.
        .x_label_formatter(&|x| {
            if (x - x.round()).abs() < 1e-6 {
                format!("{x:.0}")
            } else {
                String::new()
            }
        })
        .x_desc("context (tokens in the KV cache)")
        .y_desc(y_desc)
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 18))
        .draw()
        .map_err(err)?;
    Ok(chart)
}

fn latency<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &GenerationReport) -> Res {
    root.fill(&WHITE).map_err(err)?;
    let points: Vec<(f64, f64)> = r
        .steps
        .iter()
        .map(|s| (s.context as f64, s.time_us / 1e3))
        .collect();
    let ymax = points.iter().map(|p| p.1).fold(0.0, f64::max) * headroom(1, 15, PLOT_PX) + 1e-9;
    let title = format!(
        "{} (TTFT {:.2} ms)",
        caption(r, "Decode step latency"),
        r.ttft_ms
    );
    let mut chart = against_context(root, r, title, "step latency (ms)", ymax)?;
    let blue = RGBColor(31, 119, 180);
    let mut ink = Ink::default();
    ink.path(&chart, points.iter().copied(), 1);
    chart
        .draw_series(LineSeries::new(points.clone(), blue.stroke_width(2)))
        .map_err(err)?
        .label(ink.label("simulated, one run a step"))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], blue.stroke_width(2)));
    if points.len() <= 64 {
        for p in &points {
            ink.marker(&chart, *p, 3);
        }
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 3, blue.filled())))
            .map_err(err)?;
    }
    ink.legend(&mut chart, 15, &CORNERS)?;
    root.present().map_err(err)
}

fn bytes<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &GenerationReport) -> Res {
    root.fill(&WHITE).map_err(err)?;
    let mb = |b: u64| b as f64 / 1e6;
    let ymax = r
        .steps
        .iter()
        .map(|s| mb(s.ledger.total()))
        .fold(0.0, f64::max)
        * headroom(CLASSES.len(), 15, PLOT_PX)
        + 1e-9;
    let title = caption(r, "DRAM bytes of each decode step");
    let mut chart = against_context(root, r, title, "DRAM traffic (MB, read + written)", ymax)?;
    let mut ink = Ink::default();
    let mut base: Vec<f64> = vec![0.0; r.steps.len()];
    for (label, color, of) in CLASSES {
        let mut bars = Vec::new();
        for (i, s) in r.steps.iter().enumerate() {
            let (x, h) = (s.context as f64, mb(of(&s.ledger)));
            let corners = [(x - 0.45, base[i]), (x + 0.45, base[i] + h)];
            ink.rect(&chart, corners[0], corners[1]);
            bars.push(Rectangle::new(corners, color.filled()));
            base[i] += h;
        }
        chart
            .draw_series(bars)
            .map_err(err)?
            .label(ink.label(label))
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
    }
    ink.legend(&mut chart, 15, &CORNERS)?;
    root.present().map_err(err)
}

fn ops<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &GenerationReport) -> Res {
    root.fill(&WHITE).map_err(err)?;
    let cycles: u64 = r.last_ops.iter().map(|o| o.critical_cycles).sum();
    let share = |c: u64| 100.0 * c as f64 / cycles.max(1) as f64;
    let ymax = r
        .last_ops
        .iter()
        .map(|o| share(o.critical_cycles))
        .fold(0.0, f64::max)
        * headroom(BOUNDS.len(), 15, PLOT_PX)
        + 1e-9;
    // Ops that never moved the finish line (most vector ops) are left out.
    let shown: Vec<&crate::generate::OpBound> = r
        .last_ops
        .iter()
        .filter(|o| o.critical_cycles > 0)
        .collect();
    let n = shown.len();
    let names: Vec<String> = shown.iter().map(|o| o.name.clone()).collect();
    let what = if r.steps.is_empty() {
        "The prefill's time by op"
    } else {
        "The last decode step's time by op"
    };
    let mut chart = ChartBuilder::on(root)
        .caption(caption(r, what), (FONT, 22))
        .margin(20)
        .x_label_area_size(70)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0f64..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n.max(1))
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_desc("op (all layers; ops that never moved the finish line left out)")
        .y_desc("share of the step (%, cycles it moved the finish line)")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 18))
        .draw()
        .map_err(err)?;
    let mut ink = Ink::default();
    for (bound, color) in BOUNDS {
        let bars: Vec<_> = shown
            .iter()
            .enumerate()
            .filter(|(_, o)| o.bound == bound)
            .map(|(i, o)| {
                let corners = [
                    (i as f64 - 0.35, 0.0),
                    (i as f64 + 0.35, share(o.critical_cycles)),
                ];
                ink.rect(&chart, corners[0], corners[1]);
                Rectangle::new(corners, color.filled())
            })
            .collect();
        if bars.is_empty() {
            continue;
        }
        chart
            .draw_series(bars)
            .map_err(err)?
            .label(ink.label(format!("bound by {bound}")))
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
    }
    ink.legend(&mut chart, 15, &CORNERS)?;
    root.present().map_err(err)
}

impl Draw for (Chart, &GenerationReport) {
    fn file_name(&self) -> String {
        match self.0 {
            Chart::Latency => "decode_step_latency",
            Chart::Bytes => "decode_step_bytes",
            Chart::Ops => "decode_step_ops",
        }
        .into()
    }
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Res {
        match self.0 {
            Chart::Latency => latency(area, self.1),
            Chart::Bytes => bytes(area, self.1),
            Chart::Ops => ops(area, self.1),
        }
    }
}

/// Writes the charts of `r` into `dir` (PNG and SVG; the step charts only with decode
/// steps). Returns the files written.
pub fn write_all(r: &GenerationReport, dir: &Path) -> Result<Vec<PathBuf>, String> {
    prepare(dir)?;
    let mut charts = vec![Chart::Ops];
    if !r.steps.is_empty() {
        charts.splice(0..0, [Chart::Latency, Chart::Bytes]);
    }
    let mut files = Vec::new();
    for c in charts {
        files.extend(render(&(c, r), dir)?);
    }
    Ok(files)
}
