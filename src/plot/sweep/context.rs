//! `speedup_vs_context`: the N:M speedup of a decode step against the tokens it attends,
//! `context x batch`, for a sweep of decode steps (`context`) that varies `pattern` and
//! `context` and/or `batch`.
//!
//! A point's time is its report's total latency (`total_time_us`: the whole step, every
//! layer, the lm_head, the KV-cache reads and writes). A sparse pattern's speedup at a
//! context `C` and batch `B` is over the dense point at the same `C` and `B` (every other
//! axis held, as the other sweep charts hold them):
//!
//! ```text
//! speedup(P, C, B) = latency(dense, C, B) / latency(P, C, B)
//! ```
//!
//! x is `C x B`, the cached tokens the step's attention reads (each sequence also attends
//! to its new token), on a log axis when it spans more than 10x. One line per pattern
//! (colour); when both context and batch vary, one line per pattern and batch along the
//! contexts, each batch with its own marker and dash. N:M shrinks the weights, which stream
//! once a step whatever the batch, but neither the KV cache (`2 kv_heads head_dim` values a
//! token a layer, for `C x B` tokens) nor the dense lm_head, so the speedup falls as
//! `C x B` grows.
//!
//! `speedup_vs_context.csv` beside the chart: one row a charted sparse point, `pattern,
//! context, batch, dense_latency_us, latency_us, speedup`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use super::{Data, frame, with_ideal};
use crate::plot::legend::{Ink, headroom};
use crate::plot::{PALETTE, PLOT_PX, Res, err};
use crate::sweep::results::csv_field;

/// One sparse point and the dense point at its context and batch.
struct Row {
    pattern: String,
    context: u64,
    batch: u64,
    dense_us: f64,
    us: f64,
}

impl Row {
    /// `context x batch`.
    fn tokens(&self) -> f64 {
        (self.context * self.batch) as f64
    }

    fn speedup(&self) -> f64 {
        self.dense_us / self.us
    }
}

/// A line: its label, the index of its pattern (colour) and batch (marker and dash), and
/// its points `(context x batch, speedup)`.
type Line = (String, usize, usize, Vec<(f64, f64)>);

/// Whole-step speedup over dense of each sparse pattern, per context and batch.
pub(super) struct ContextSpeedup {
    caption: String,
    /// Sparse patterns, in the sweep's order.
    patterns: Vec<String>,
    /// The batches with a line each; empty (one line a pattern) unless both axes vary.
    batches: Vec<u64>,
    /// By pattern, batch, context.
    rows: Vec<Row>,
}

impl ContextSpeedup {
    pub(super) fn new(d: &Data, key: &str, patterns: &[String]) -> Result<ContextSpeedup, String> {
        let held = d.held(&[key, "context", "batch"]);
        // (pattern, context, batch, latency in µs) of every point charted.
        let mut steps: Vec<(&str, u64, u64, f64)> = Vec::new();
        let slice = d.slice(&held);
        for p in &slice {
            let w = &p.run.workload;
            let Some(context) = w.phase.as_ref().and_then(|ph| ph.context) else {
                return Err(
                    "its points are prefills: `context x batch` needs decode steps \
                            (a decoder with `context`)"
                        .into(),
                );
            };
            let pattern = p.value(key).unwrap_or_default();
            steps.push((pattern, context, w.batch, p.run.total_time_us));
        }
        if !steps.iter().any(|s| s.0 == "dense") {
            return Err("the sweep has no dense point to compare with".into());
        }
        let mut rows = Vec::new();
        for (pi, pattern) in patterns.iter().filter(|p| *p != "dense").enumerate() {
            for &(_, context, batch, us) in steps.iter().filter(|s| s.0 == pattern) {
                let dense = steps
                    .iter()
                    .find(|s| s.0 == "dense" && s.1 == context && s.2 == batch);
                if let Some(&(_, _, _, dense_us)) = dense {
                    let row = Row {
                        pattern: pattern.clone(),
                        context,
                        batch,
                        dense_us,
                        us,
                    };
                    rows.push((pi, row));
                }
            }
        }
        rows.sort_by_key(|(pi, r)| (*pi, r.batch, r.context));
        let rows: Vec<Row> = rows.into_iter().map(|(_, r)| r).collect();
        let distinct = |of: fn(&Row) -> u64| {
            let mut v: Vec<u64> = rows.iter().map(of).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let (contexts, batches) = (distinct(|r| r.context), distinct(|r| r.batch));
        if rows.is_empty() {
            return Err("no sparse point has a dense point at its context and batch".into());
        }
        if contexts.len() < 2 && batches.len() < 2 {
            return Err(format!(
                "every charted point has context {} and batch {}",
                contexts[0], batches[0]
            ));
        }
        // The model, unless a held axis names it.
        let mut caption = match slice.first() {
            Some(p) if !held.iter().any(|(k, _)| k == "model") => {
                format!("{}, {}", p.run.workload.model.name, d.context(&held))
            }
            _ => d.context(&held),
        };
        if contexts.len() == 1 {
            let _ = write!(caption, ", context {}", contexts[0]);
        }
        if batches.len() == 1 {
            let _ = write!(caption, ", batch {}", batches[0]);
        }
        let mut sparse: Vec<String> = Vec::new();
        for r in &rows {
            if !sparse.contains(&r.pattern) {
                sparse.push(r.pattern.clone());
            }
        }
        Ok(ContextSpeedup {
            caption,
            patterns: sparse,
            batches: if contexts.len() > 1 && batches.len() > 1 {
                batches
            } else {
                Vec::new()
            },
            rows,
        })
    }

    /// Each line, its points along x.
    fn lines(&self) -> Vec<Line> {
        let mut lines = Vec::new();
        for (pi, pattern) in self.patterns.iter().enumerate() {
            let of = self.rows.iter().filter(|r| r.pattern == *pattern);
            let groups: Vec<(String, usize, Vec<&Row>)> = if self.batches.is_empty() {
                vec![(with_ideal(pattern), 0, of.collect())]
            } else {
                let of: Vec<&Row> = of.collect();
                self.batches
                    .iter()
                    .enumerate()
                    .map(|(bi, b)| {
                        let label = format!("{}, batch {b}", with_ideal(pattern));
                        (
                            label,
                            bi,
                            of.iter().copied().filter(|r| r.batch == *b).collect(),
                        )
                    })
                    .collect()
            };
            for (label, bi, mut rows) in groups {
                if rows.is_empty() {
                    continue;
                }
                rows.sort_by(|a, b| a.tokens().total_cmp(&b.tokens()));
                let points = rows.iter().map(|r| (r.tokens(), r.speedup())).collect();
                lines.push((label, pi, bi, points));
            }
        }
        lines
    }

    pub(super) fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Res {
        let mut xs: Vec<f64> = self.rows.iter().map(Row::tokens).collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let (lo, hi) = (xs[0], xs[xs.len() - 1]);
        let desc = "tokens attended per step: context × batch";
        if hi > 10.0 * lo {
            // Ticks at the tokens swept.
            let x = (lo / 1.4..hi * 1.4).log_scale().with_key_points(xs);
            self.plot(root, x, &format!("{desc} (log)"))
        } else {
            let pad = (hi - lo).max(1.0) * 0.08;
            self.plot(root, lo - pad..hi + pad, desc)
        }
    }

    /// Draws the chart with `x` along.
    fn plot<DB, X>(&self, root: &DrawingArea<DB, Shift>, x: X, x_desc: &str) -> Res
    where
        DB: DrawingBackend,
        X: AsRangedCoord<Value = f64>,
        X::CoordDescType: ValueFormatter<f64>,
    {
        root.fill(&WHITE).map_err(err)?;
        let lines = self.lines();
        let ymax = self.rows.iter().map(Row::speedup).fold(1.0, f64::max)
            * headroom(lines.len() + 1, 14, PLOT_PX).max(1.2);
        let mut chart = frame(
            root,
            format!("Decode-step speedup over dense — {}", self.caption),
            (x, x_desc, 10),
            &|x| format!("{x:.0}"),
            (0.0..ymax, "whole-step speedup over dense (×, of latency)"),
        )?;
        let mut ink = Ink::default();
        let grey = RGBColor(90, 90, 90);
        let range = chart.x_range();
        let one = vec![(range.start, 1.0), (range.end, 1.0)];
        ink.path(&chart, one.iter().copied(), 1);
        chart
            .draw_series(DashedLineSeries::new(one, 8, 6, grey.stroke_width(1)))
            .map_err(err)?
            .label(ink.label("dense (1×)"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], grey.stroke_width(1))
            });
        for (label, pi, bi, points) in lines {
            let color = PALETTE[pi % PALETTE.len()];
            ink.path(&chart, points.iter().copied(), 1);
            let stroke = color.stroke_width(2);
            // The first batch solid, the others dashed.
            if bi == 0 {
                chart.draw_series(LineSeries::new(points.clone(), stroke))
            } else {
                chart.draw_series(DashedLineSeries::new(points.clone(), 9, 5, stroke))
            }
            .map_err(err)?;
            for &p in &points {
                ink.marker(&chart, p, 6);
                let at = chart.backend_coord(&p);
                root.draw(&Polygon::new(marker(at, bi), color.filled()))
                    .map_err(err)?;
            }
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), u32>>())
                .map_err(err)?
                .label(ink.label(label))
                .legend(move |(x, y)| {
                    let gap = if bi == 0 { 0 } else { 6 };
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (9 - gap / 2, 0)], stroke)
                        + PathElement::new(vec![(9 + gap / 2, 0), (18, 0)], stroke)
                        + Polygon::new(marker((9, 0), bi), color.filled())
                });
        }
        use SeriesLabelPosition::*;
        ink.legend(
            &mut chart,
            14,
            &[UpperRight, LowerLeft, UpperLeft, LowerRight, MiddleRight],
        )?;
        root.present().map_err(err)
    }

    /// Writes `speedup_vs_context.csv` into `dir` ([`crate::io::write_atomic`]).
    pub(super) fn write_csv(&self, dir: &Path) -> Result<PathBuf, String> {
        let mut out = String::from("pattern,context,batch,dense_latency_us,latency_us,speedup\n");
        for r in &self.rows {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{}",
                csv_field(&r.pattern),
                r.context,
                r.batch,
                r.dense_us,
                r.us,
                r.speedup()
            );
        }
        let path = dir.join("speedup_vs_context.csv");
        crate::io::write_atomic(&path, out.as_bytes()).map_err(|e| e.to_string())?;
        Ok(path)
    }
}

/// The corners of the marker of batch `bi` centred at pixel `at`: a circle (a 12-gon), a
/// triangle, a square, a diamond.
fn marker(at: (i32, i32), bi: usize) -> Vec<(i32, i32)> {
    let corners: Vec<(f64, f64)> = match bi % 4 {
        0 => (0..12)
            .map(|i| {
                let a = f64::from(i) * std::f64::consts::PI / 6.0;
                (5.5 * a.cos(), 5.5 * a.sin())
            })
            .collect(),
        1 => vec![(0.0, -7.0), (6.0, 4.0), (-6.0, 4.0)],
        2 => vec![(-5.0, -5.0), (5.0, -5.0), (5.0, 5.0), (-5.0, 5.0)],
        _ => vec![(0.0, -7.0), (7.0, 0.0), (0.0, 7.0), (-7.0, 0.0)],
    };
    corners
        .into_iter()
        .map(|(dx, dy)| (at.0 + dx.round() as i32, at.1 + dy.round() as i32))
        .collect()
}
