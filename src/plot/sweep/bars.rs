//! The bar charts of a sweep: speedup over dense per op class (`speedup_vs_pattern`), per
//! model (`speedup_by_model`), and energy per inference by action (`energy_vs_pattern`).

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{Data, Frame, Run, frame, nm, with_ideal};
use crate::plot::legend::{Ink, headroom};
use crate::plot::{FONT, PALETTE, PLOT_PX, Res, err};

/// Speedup of each class and of the whole model over the dense point, per sparse pattern.
pub(super) struct Speedup {
    context: String,
    patterns: Vec<String>,
    /// Each class, then the whole model: one speedup per pattern.
    series: Vec<(String, Vec<f64>)>,
    /// `M/N` per pattern.
    ideal: Vec<Option<f64>>,
}

impl Speedup {
    pub(super) fn new(d: &Data, key: &str, patterns: &[String]) -> Result<Speedup, String> {
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

    pub(super) fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Res {
        root.fill(&WHITE).map_err(err)?;
        let ymax = self
            .series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .chain(self.ideal.iter().flatten().copied())
            .fold(1.0, f64::max)
            * headroom(self.series.len() + 1, 14, PLOT_PX).max(1.3);
        let mut chart = categories(
            root,
            format!("Speedup over dense by N:M pattern — {}", self.context),
            (PATTERN_AXIS, &self.patterns),
            ymax,
            "speedup over dense (×) of pe_cycles; whole model: of latency",
        )?;
        let width = 0.84 / self.series.len() as f64;
        let mut ink = Ink::default();
        for (si, (label, values)) in self.series.iter().enumerate() {
            let whole = si + 1 == self.series.len();
            let color = if whole {
                RGBColor(60, 60, 60)
            } else {
                PALETTE[si % PALETTE.len()]
            };
            let x0 = |pi: usize| pi as f64 - 0.42 + si as f64 * width;
            let bar = |pi: usize, v: f64| [(x0(pi), 0.0), (x0(pi) + width * 0.9, v)];
            for (pi, v) in values.iter().enumerate() {
                let [a, b] = bar(pi, *v);
                ink.rect(&chart, a, b);
            }
            chart
                .draw_series(
                    values
                        .iter()
                        .enumerate()
                        .map(|(pi, v)| Rectangle::new(bar(pi, *v), color.filled())),
                )
                .map_err(err)?
                .label(ink.label(label.clone()))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled())
                });
            if whole {
                let mut labels = Vec::new();
                for (pi, v) in values.iter().enumerate() {
                    // The text hangs below `y`, about `lift` tall: above the bar, or
                    // above the ideal line when that would cross it.
                    let lift = ymax * 0.035;
                    let y = match self.ideal[pi] {
                        Some(m) if m > *v && m < v + 1.5 * lift => m + 1.2 * lift,
                        _ => v + lift,
                    };
                    let (text, at) = (format!("{v:.2}×"), (x0(pi) - width * 0.3, y));
                    ink.text(&chart, at, &text, 14);
                    labels.push(Text::new(text, at, (FONT, 14)));
                }
                chart.draw_series(labels).map_err(err)?;
            }
        }
        let ideal: Vec<Vec<(f64, f64)>> = self
            .ideal
            .iter()
            .enumerate()
            .filter_map(|(pi, m)| m.map(|m| vec![(pi as f64 - 0.45, m), (pi as f64 + 0.45, m)]))
            .collect();
        for line in &ideal {
            ink.path(&chart, line.iter().copied(), 1);
        }
        chart
            .draw_series(
                ideal
                    .into_iter()
                    .map(|line| PathElement::new(line, BLACK.stroke_width(2))),
            )
            .map_err(err)?
            .label(ink.label("ideal M/N for the linear layers"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(2)));
        ink.legend(&mut chart, 14, &UPPER_FIRST)?;
        root.present().map_err(err)
    }
}

/// Legend places of the bar charts: above the bars first.
const UPPER_FIRST: [SeriesLabelPosition; 5] = [
    SeriesLabelPosition::UpperLeft,
    SeriesLabelPosition::UpperRight,
    SeriesLabelPosition::UpperMiddle,
    SeriesLabelPosition::MiddleRight,
    SeriesLabelPosition::MiddleLeft,
];

/// The x description of charts against the pattern.
const PATTERN_AXIS: &str = "N:M pattern of the linear layers";

/// A bar chart's frame: one category per label along x, `0..ymax` up.
fn categories<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    caption: String,
    (x_desc, labels): (&str, &'a [String]),
    ymax: f64,
    y_desc: &str,
) -> Result<Frame<'a, DB, std::ops::Range<f64>>, String> {
    let n = labels.len();
    frame(
        root,
        caption,
        (-0.5f64..(n as f64 - 0.5), x_desc, n * 2 + 1),
        &|x| category(labels, *x),
        (0.0..ymax, y_desc),
    )
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
pub(super) struct EnergyBars {
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

    pub(super) fn new(d: &Data, key: &str, patterns: &[String]) -> Result<EnergyBars, String> {
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

    pub(super) fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Res {
        root.fill(&WHITE).map_err(err)?;
        let ymax = self.bars.iter().map(|b| b.1).fold(0.0, f64::max)
            * headroom(Self::PARTS.len(), 14, PLOT_PX).max(1.3)
            + 1e-9;
        let mut chart = categories(
            root,
            format!("Energy per inference by N:M pattern — {}", self.context),
            (PATTERN_AXIS, &self.patterns),
            ymax,
            "energy per inference (mJ)",
        )?;
        let mut ink = Ink::default();
        let note = "* dense-equivalent: the dense model's operations per joule";
        ink.text_px((110, 72), note, 13);
        root.draw(&Text::new(note, (110, 72), (FONT, 13)))
            .map_err(err)?;
        for (ai, part) in Self::PARTS.iter().enumerate() {
            let color = PALETTE[ai % PALETTE.len()];
            let bar = |bi: usize, e: &[f64; 4]| {
                let y0: f64 = e[..ai].iter().sum();
                [(bi as f64 - 0.3, y0), (bi as f64 + 0.3, y0 + e[ai])]
            };
            for (bi, (e, _, _)) in self.bars.iter().enumerate() {
                let [a, b] = bar(bi, e);
                ink.rect(&chart, a, b);
            }
            chart
                .draw_series(
                    self.bars
                        .iter()
                        .enumerate()
                        .map(|(bi, (e, _, _))| Rectangle::new(bar(bi, e), color.filled())),
                )
                .map_err(err)?
                .label(ink.label(*part))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled())
                });
        }
        let mut totals = Vec::new();
        for (bi, (_, total, gops_w)) in self.bars.iter().enumerate() {
            let text = format!("{total:.1} mJ, {gops_w:.0} GOPS/W*");
            let at = (bi as f64 - 0.36, total + ymax * 0.03);
            ink.text(&chart, at, &text, 13);
            totals.push(Text::new(text, at, (FONT, 13)));
        }
        chart.draw_series(totals).map_err(err)?;
        ink.legend(&mut chart, 14, &UPPER_FIRST[1..])?;
        root.present().map_err(err)
    }
}

/// Whole-model speedup of each sparse pattern over the same model's dense run, per model.
pub(super) struct ByModel {
    context: String,
    models: Vec<String>,
    /// Each sparse pattern and its speedup per model (`None`: a point is missing).
    series: Vec<(String, Vec<Option<f64>>)>,
}

impl ByModel {
    pub(super) fn new(
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

    pub(super) fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Res {
        root.fill(&WHITE).map_err(err)?;
        let ymax = self
            .series
            .iter()
            .flat_map(|(_, v)| v.iter().flatten().copied())
            .fold(1.0, f64::max)
            * headroom(self.series.len(), 14, PLOT_PX).max(1.35);
        let mut chart = categories(
            root,
            format!("Whole-model speedup over dense by model — {}", self.context),
            ("model", &self.models),
            ymax,
            "speedup over the model's dense run (×)",
        )?;
        let width = 0.84 / self.series.len() as f64;
        let mut ink = Ink::default();
        for (si, (pattern, values)) in self.series.iter().enumerate() {
            let color = PALETTE[si % PALETTE.len()];
            let x0 = |mi: usize| mi as f64 - 0.42 + si as f64 * width;
            let bars = values
                .iter()
                .enumerate()
                .filter_map(|(mi, v)| Some((mi, (*v)?)));
            let bar = |mi: usize, v: f64| [(x0(mi), 0.0), (x0(mi) + width * 0.9, v)];
            for (mi, v) in bars.clone() {
                let [a, b] = bar(mi, v);
                ink.rect(&chart, a, b);
                let at = (x0(mi) - width * 0.1, v + ymax * 0.035);
                ink.text(&chart, at, &format!("{v:.2}×"), 12);
            }
            chart
                .draw_series(
                    bars.clone()
                        .map(|(mi, v)| Rectangle::new(bar(mi, v), color.filled())),
                )
                .map_err(err)?
                .label(ink.label(with_ideal(pattern)))
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
        ink.legend(&mut chart, 14, &UPPER_FIRST)?;
        root.present().map_err(err)
    }
}
