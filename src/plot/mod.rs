//! Charts from a [`Report`] (never from a live simulation), as PNG and SVG, drawn with
//! plotters and an embedded DejaVu Sans font so they render on machines without fonts.
//!
//! - `latency_by_layer`: the PE array's time charged to each layer's ops (`pe_cycles`),
//!   stacked by state: computing sparse x dense, computing dense x dense, waiting for DRAM,
//!   a buffer, the softmax, the accumulator; the idle time (in no layer) is in the x label,
//!   so the bars and the idle time add up to the run;
//! - `dram_bandwidth`: DRAM bandwidth over time against the DRAM's peak;
//! - `pe_utilization`: PE-array utilisation over time;
//! - `gantt_layerN`: which module worked on (or held, waiting) which operation, for layer N;
//! - `roofline`: each matmul by arithmetic intensity (MACs per DRAM byte) and achieved
//!   throughput over its PE-array cycles (`pe_cycles`), under the compute roof and the
//!   bandwidth roof.
//!
//! Every chart that shows a time per op uses `pe_cycles` (see [`crate::report`]), as the
//! summary's "where the time went" does, and says so.
//!
//! Charts of a whole sweep (many reports) are in [`sweep`]; of a generation (prefill and
//! decode steps) in [`generation`].

pub mod frontier;
pub mod generation;
mod legend;
pub mod sweep;
mod text;

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use self::legend::{Ink, headroom};
use crate::report::{OpReport, Report};
use crate::workload::OpKind;

const FONT: &str = "sans-serif";
static FONT_ONCE: Once = Once::new();

fn register_font() {
    FONT_ONCE.call_once(|| {
        // The bytes are a valid TTF shipped with the crate; a failure would only mean no text.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, text::TTF);
    });
}

/// Chart size in pixels.
const SIZE: (u32, u32) = (1000, 560);

const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

type Res = Result<(), String>;

/// A drawing error as a sentence (plotters' errors display their cause).
fn err<E: std::fmt::Display>(e: E) -> String {
    format!("cannot draw the chart: {e}")
}

/// Height in pixels of the plotting area of a chart (the image less margins, caption and
/// x labels), to size legends against.
pub(super) const PLOT_PX: u32 = 430;

/// Corners in the order most charts prefer for their legend.
const CORNERS: [SeriesLabelPosition; 4] = [
    SeriesLabelPosition::UpperRight,
    SeriesLabelPosition::UpperLeft,
    SeriesLabelPosition::LowerRight,
    SeriesLabelPosition::LowerLeft,
];

/// Ticks at 1, 2, 5 times the powers of ten within `lo..hi` (for log axes).
pub(super) fn one_two_five(lo: f64, hi: f64) -> Vec<f64> {
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

/// A tick label of a log axis: whole numbers from 1 up, else as many decimals as needed.
fn log_tick(v: &f64) -> String {
    if *v >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// The stacks of `latency_by_layer`: a label, a colour, and an op's cycles in that state.
type StateStack = (&'static str, RGBColor, fn(&OpReport) -> u64);

const STATE_STACKS: [StateStack; 6] = [
    (
        "computing sparse x dense (linear)",
        RGBColor(31, 119, 180),
        |o| {
            if o.kind == OpKind::SparseDense {
                o.pe_busy_cycles()
            } else {
                0
            }
        },
    ),
    (
        "computing dense x dense (attention, dense linear)",
        RGBColor(255, 127, 14),
        |o| {
            if o.kind == OpKind::SparseDense {
                0
            } else {
                o.pe_busy_cycles()
            }
        },
    ),
    ("waiting for DRAM", RGBColor(214, 39, 40), |o| {
        o.stall_dram_cycles
    }),
    ("waiting for a buffer", RGBColor(148, 103, 189), |o| {
        o.stall_buffer_cycles
    }),
    ("waiting for the softmax", RGBColor(44, 160, 44), |o| {
        o.stall_softmax_cycles
    }),
    (
        "waiting for the accumulator",
        RGBColor(127, 127, 127),
        |o| o.stall_downstream_cycles,
    ),
];

fn latency_by_layer<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &Report) -> Res {
    root.fill(&WHITE).map_err(err)?;
    let us_per_cycle = 1.0 / r.clock_mhz;
    let n = r.layers.len();
    let totals: Vec<Vec<f64>> = r
        .layers
        .iter()
        .map(|l| {
            STATE_STACKS
                .iter()
                .map(|(_, _, cycles)| l.ops.iter().map(|o| cycles(o) as f64 * us_per_cycle).sum())
                .collect()
        })
        .collect();
    let ymax = totals
        .iter()
        .map(|t| t.iter().sum::<f64>())
        .fold(0.0, f64::max)
        * headroom(STATE_STACKS.len(), 15, PLOT_PX)
        + 1e-9;
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!(
                "PE-array time per layer by state — {} on {}",
                r.workload.model.name, r.topology
            ),
            (FONT, 24),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc(format!(
            "layer (PE array idle, no pass: {:.1} µs of {:.1} µs, in no layer)",
            r.pe_time.idle_cycles as f64 * us_per_cycle,
            r.pe_time.array_cycles as f64 * us_per_cycle
        ))
        .y_desc("PE-array time charged to the layer's ops (µs)")
        .x_labels(n.min(24))
        .x_label_formatter(&|x| format!("{}", x.round() as i64))
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 18))
        .draw()
        .map_err(err)?;
    let mut ink = Ink::default();
    for (ki, (label, color, _)) in STATE_STACKS.iter().enumerate() {
        let color = *color;
        let mut bars: Vec<Rectangle<(f64, f64)>> = Vec::new();
        for (li, t) in totals.iter().enumerate() {
            let y0: f64 = t[..ki].iter().sum();
            let corners = [(li as f64 - 0.35, y0), (li as f64 + 0.35, y0 + t[ki])];
            ink.rect(&chart, corners[0], corners[1]);
            bars.push(Rectangle::new(corners, color.filled()));
        }
        chart
            .draw_series(bars)
            .map_err(err)?
            .label(ink.label(*label))
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
    }
    ink.legend(&mut chart, 15, &CORNERS)?;
    root.present().map_err(err)
}

fn over_time<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &Report,
    title: &str,
    y_desc: &str,
    values: &[f64],
    roof: Option<(f64, String)>,
) -> Res {
    root.fill(&WHITE).map_err(err)?;
    let ms = r.timeline.bucket_us / 1000.0;
    let tmax = (values.len() as f64 * ms).max(1e-9);
    let vmax = values.iter().copied().fold(0.0, f64::max);
    let rows = 1 + usize::from(roof.is_some());
    let ymax =
        roof.as_ref().map_or(vmax, |(y, _)| y.max(vmax)) * headroom(rows, 15, PLOT_PX) + 1e-9;
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("{title} — {} on {}", r.workload.model.name, r.topology),
            (FONT, 24),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..tmax, 0f64..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("simulated time (ms)")
        .y_desc(y_desc)
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 18))
        .draw()
        .map_err(err)?;
    let blue = RGBColor(31, 119, 180);
    let mut ink = Ink::default();
    let points: Vec<(f64, f64)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| ((i as f64 + 0.5) * ms, *v))
        .collect();
    ink.path(&chart, points.iter().copied(), 1);
    chart
        .draw_series(LineSeries::new(points, blue.stroke_width(2)))
        .map_err(err)?
        .label(ink.label(format!("measured, {:.1} µs buckets", r.timeline.bucket_us)))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], blue.stroke_width(2)));
    if let Some((y, label)) = roof {
        let red = RGBColor(214, 39, 40);
        ink.path(&chart, [(0.0, y), (tmax, y)], 1);
        // Dashed and drawn last, so that data running along the roof shows between dashes.
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, y), (tmax, y)],
                8,
                6,
                red.stroke_width(2),
            ))
            .map_err(err)?
            .label(ink.label(label))
            .legend(move |(x, yy)| {
                PathElement::new(vec![(x, yy), (x + 18, yy)], red.stroke_width(2))
            });
    }
    ink.legend(&mut chart, 15, &CORNERS)?;
    root.present().map_err(err)
}

fn gantt<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &Report, layer: usize) -> Res {
    root.fill(&WHITE).map_err(err)?;
    let Some(l) = r.layers.get(layer) else {
        return Err(format!("the run has no layer {layer}"));
    };
    let mut modules: Vec<String> = Vec::new();
    for o in &l.ops {
        for u in &o.units {
            if !modules.contains(&u.module) {
                modules.push(u.module.clone());
            }
        }
    }
    let us = |c: u64| (c as f64 - l.start_cycle as f64) / r.clock_mhz;
    // Room on the right for the legend.
    let xmax = us(l.end_cycle).max(1e-9) * 1.3;
    let n = modules.len().max(1);
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!(
                "Layer {layer}: when each module worked on (or held) each op — {}",
                r.workload.model.name
            ),
            (FONT, 24),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(130)
        .build_cartesian_2d(0f64..xmax, -0.5f64..(n as f64 - 0.5))
        .map_err(err)?;
    let names = modules.clone();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc("time since the layer started (µs)")
        .y_labels(n)
        .y_label_formatter(&move |y| {
            let i = y.round();
            if (y - i).abs() < 0.01 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 18))
        .draw()
        .map_err(err)?;
    let mut ink = Ink::default();
    for (oi, o) in l.ops.iter().enumerate() {
        let color = PALETTE[oi % PALETTE.len()];
        let mut bars: Vec<Rectangle<(f64, f64)>> = Vec::new();
        for u in &o.units {
            // Three lanes per module so that overlapping operations stay visible.
            let Some(row) = modules.iter().position(|m| *m == u.module) else {
                continue;
            };
            let top = row as f64 + 0.39 - (oi % 3) as f64 * 0.26;
            let corners = [
                (us(u.start_cycle), top - 0.24),
                (us(u.end_cycle.max(u.start_cycle + 1)), top),
            ];
            ink.rect(&chart, corners[0], corners[1]);
            bars.push(Rectangle::new(corners, color.filled()));
        }
        chart
            .draw_series(bars)
            .map_err(err)?
            .label(ink.label(o.name.clone()))
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
    }
    ink.legend(&mut chart, 14, &CORNERS)?;
    root.present().map_err(err)
}

fn roofline<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &Report) -> Res {
    root.fill(&WHITE).map_err(err)?;
    // One point per matmul class (summed over layers): MACs per DRAM byte, and GMAC/s over
    // the PE-array time charged to it (computing and waiting with its passes).
    let mut points: Vec<(String, OpKind, f64, f64)> = Vec::new();
    let names: Vec<String> = r.layers.first().map_or(Vec::new(), |l| {
        l.ops.iter().map(|o| o.name.clone()).collect()
    });
    for name in names {
        let ops: Vec<_> = r
            .layers
            .iter()
            .flat_map(|l| &l.ops)
            .filter(|o| o.name == name)
            .collect();
        let Some(first) = ops.first() else { continue };
        let macs: u64 = ops.iter().map(|o| o.macs).sum();
        let bytes: u64 = ops.iter().map(|o| o.dram_bytes).sum();
        let cycles: u64 = ops.iter().map(|o| o.pe_cycles).sum();
        if macs == 0 || bytes == 0 || cycles == 0 {
            continue;
        }
        let secs = cycles as f64 / (r.clock_mhz * 1e6);
        points.push((
            name,
            first.kind,
            macs as f64 / bytes as f64,
            macs as f64 / secs / 1e9,
        ));
    }
    let peak = r.peak_gmacs;
    let bw = r.dram.peak_gbps;
    let xmin = points
        .iter()
        .map(|p| p.2)
        .fold(f64::INFINITY, f64::min)
        .min(peak / bw / 10.0)
        .max(1e-3)
        / 2.0;
    let xmax = points
        .iter()
        .map(|p| p.2)
        .fold(0.0, f64::max)
        .max(peak / bw * 10.0)
        * 2.0;
    let ymin = points
        .iter()
        .map(|p| p.3)
        .fold(f64::INFINITY, f64::min)
        .min(bw * xmin)
        .max(1e-3)
        / 2.0;
    // Room above the compute roof for the legend (no point can be above the roofs).
    let ymax = legend::log_top(ymin, peak * 1.5, points.len() + 1, 15, PLOT_PX);
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!(
                "Roofline, throughput over PE-array cycles — {} on {}",
                r.workload.model.name, r.topology
            ),
            (FONT, 24),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(
            (xmin..xmax)
                .log_scale()
                .with_key_points(one_two_five(xmin, xmax)),
            (ymin..ymax)
                .log_scale()
                .with_key_points(one_two_five(ymin, ymax)),
        )
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("arithmetic intensity (useful MACs per DRAM byte, log)")
        .y_desc("MACs / PE-array cycles charged to the op (GMAC/s, log)")
        .x_label_formatter(&log_tick)
        .y_label_formatter(&log_tick)
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 18))
        .draw()
        .map_err(err)?;
    let red = RGBColor(214, 39, 40);
    let knee = peak / bw;
    let roofs = vec![(xmin, bw * xmin), (knee, peak), (xmax, peak)];
    let mut ink = Ink::default();
    ink.path(&chart, roofs.iter().copied(), 1);
    chart
        .draw_series(LineSeries::new(roofs, red.stroke_width(2)))
        .map_err(err)?
        .label(ink.label(format!(
            "roofs: {peak:.1} GMAC/s compute, {bw:.1} GB/s DRAM"
        )))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], red.stroke_width(2)));
    for (i, (name, kind, x, y)) in points.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let label = format!(
            "{name} ({})",
            if *kind == OpKind::SparseDense {
                "sparse"
            } else {
                "dense"
            }
        );
        ink.marker(&chart, (*x, *y), 7);
        chart
            .draw_series(std::iter::once(Circle::new((*x, *y), 7, color.filled())))
            .map_err(err)?
            .label(ink.label(label))
            .legend(move |(lx, ly)| Circle::new((lx + 7, ly), 6, color.filled()));
    }
    ink.legend(&mut chart, 15, &CORNERS)?;
    root.present().map_err(err)
}

/// The charts, each drawable on any plotters backend.
#[derive(Copy, Clone, Debug)]
enum Chart {
    LatencyByLayer,
    DramBandwidth,
    PeUtilization,
    Gantt(usize),
    Roofline,
}

impl Chart {
    fn file_name(self) -> String {
        match self {
            Chart::LatencyByLayer => "latency_by_layer".into(),
            Chart::DramBandwidth => "dram_bandwidth".into(),
            Chart::PeUtilization => "pe_utilization".into(),
            Chart::Gantt(layer) => format!("gantt_layer{layer}"),
            Chart::Roofline => "roofline".into(),
        }
    }

    fn draw<DB: DrawingBackend>(self, area: &DrawingArea<DB, Shift>, r: &Report) -> Res {
        match self {
            Chart::LatencyByLayer => latency_by_layer(area, r),
            Chart::DramBandwidth => over_time(
                area,
                r,
                "DRAM bandwidth over time",
                "bandwidth (GB/s)",
                &r.timeline.dram_gbps,
                Some((
                    r.dram.peak_gbps,
                    format!("DRAM peak {:.1} GB/s", r.dram.peak_gbps),
                )),
            ),
            Chart::PeUtilization => {
                let util: Vec<f64> = r
                    .timeline
                    .pe_utilization
                    .iter()
                    .map(|u| 100.0 * u)
                    .collect();
                over_time(
                    area,
                    r,
                    "PE-array utilisation over time",
                    "utilisation (% of useful MACs)",
                    &util,
                    Some((100.0, "all multipliers busy (100 %)".to_owned())),
                )
            }
            Chart::Gantt(layer) => gantt(area, r, layer),
            Chart::Roofline => roofline(area, r),
        }
    }
}

/// A chart that can be drawn on any plotters backend.
trait Draw {
    /// File name without extension.
    fn file_name(&self) -> String;
    /// Draws on `area`.
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Res;
}

/// Draws `chart` as `DIR/NAME.png` and `DIR/NAME.svg`. Each is drawn in memory and written
/// with [`crate::io::write_atomic`], so a failure never leaves a half-drawn chart in place of
/// an older one. The PNG is encoded exactly as plotters' own file backend does (the `image`
/// crate's PNG encoder with its defaults).
fn render(chart: &impl Draw, dir: &Path) -> Result<[PathBuf; 2], String> {
    let name = chart.file_name();
    let (w, h) = SIZE;
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    chart.draw(&text::Png(BitMapBackend::with_buffer(&mut rgb, SIZE)).into_drawing_area())?;
    let mut png = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut png),
        &rgb,
        w,
        h,
        image::ColorType::Rgb8,
    )
    .map_err(|e| format!("cannot encode the chart `{name}` as PNG: {e}"))?;
    let mut svg = String::new();
    chart.draw(&SVGBackend::with_string(&mut svg, SIZE).into_drawing_area())?;
    let write = |ext: &str, bytes: &[u8]| -> Result<PathBuf, String> {
        let path = dir.join(format!("{name}.{ext}"));
        crate::io::write_atomic(&path, bytes).map_err(|e| e.to_string())?;
        Ok(path)
    };
    Ok([write("png", &png)?, write("svg", svg.as_bytes())?])
}

/// Creates the output folder (and registers the font).
fn prepare(dir: &Path) -> Res {
    register_font();
    crate::io::create_folder(dir).map_err(|e| e.to_string())
}

impl Draw for (Chart, &Report) {
    fn file_name(&self) -> String {
        self.0.file_name()
    }
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Res {
        self.0.draw(area, self.1)
    }
}

/// Writes every chart of `r` into `dir` (PNG and SVG); `gantt_layer` picks the layer of
/// the Gantt chart. Returns the files written.
pub fn write_all(r: &Report, dir: &Path, gantt_layer: usize) -> Result<Vec<PathBuf>, String> {
    prepare(dir)?;
    let charts = [
        Chart::LatencyByLayer,
        Chart::DramBandwidth,
        Chart::PeUtilization,
        Chart::Gantt(gantt_layer),
        Chart::Roofline,
    ];
    let mut files = Vec::new();
    for c in charts {
        files.extend(render(&(c, r), dir)?);
    }
    Ok(files)
}
