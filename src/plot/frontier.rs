//! The explorer's chart `frontier`: perplexity (log) against the simulated decode-step
//! latency of every candidate measured ([`crate::explore`]): measured points in grey, the
//! uniform patterns marked and named, the frontier's points joined fastest first.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::legend::{Ink, log_top};
use super::{CORNERS, Draw, FONT, PLOT_PX, Res, err, log_tick, one_two_five, prepare, render};
use crate::explore::Outcome;

struct Frontier<'a>(&'a Outcome);

/// Ticks of the perplexity axis: 1, 2, 5 times the powers of ten over up to three decades,
/// the powers of ten alone over more.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let all = one_two_five(lo, hi);
    if hi / lo <= 1e3 {
        return all;
    }
    all.into_iter()
        .filter(|t| (t.log10() - t.log10().round()).abs() < 1e-9)
        .collect()
}

impl Draw for Frontier<'_> {
    fn file_name(&self) -> String {
        "frontier".into()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Res {
        let o = self.0;
        root.fill(&WHITE).map_err(err)?;
        let ms: Vec<(f64, f64)> = o
            .points
            .iter()
            .map(|p| (p.measured.latency_us / 1e3, p.measured.perplexity))
            .collect();
        let fold = |f: fn(f64, f64) -> f64, init: f64, pick: fn(&(f64, f64)) -> f64| {
            ms.iter().map(pick).fold(init, f)
        };
        let (x0, x1) = (
            fold(f64::min, f64::INFINITY, |p| p.0),
            fold(f64::max, 0.0, |p| p.0),
        );
        let (y0, y1) = (
            fold(f64::min, f64::INFINITY, |p| p.1),
            fold(f64::max, 0.0, |p| p.1),
        );
        let pad = ((x1 - x0) * 0.06).max(0.05);
        let (xmin, xmax) = ((x0 - pad).max(0.0), x1 + pad);
        let ymin = (y0 / 1.3).max(1e-3);
        let ymax = log_top(ymin, y1 * 1.3, 3, 15, PLOT_PX);
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Perplexity against simulated decode-step latency (per-class N:M)",
                (FONT, 24),
            )
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(
                xmin..xmax,
                (ymin..ymax).log_scale().with_key_points(ticks(ymin, ymax)),
            )
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("decode-step latency (ms, simulated)")
            .y_desc("perplexity on the evaluation text (log)")
            .y_label_formatter(&|v| {
                if *v >= 1e5 {
                    format!("1e{}", v.log10().round())
                } else {
                    log_tick(v)
                }
            })
            .label_style((FONT, 16))
            .axis_desc_style((FONT, 18))
            .draw()
            .map_err(err)?;
        let mut ink = Ink::default();
        let grey = RGBColor(160, 160, 160);
        for &p in &ms {
            ink.marker(&chart, p, 4);
        }
        chart
            .draw_series(ms.iter().map(|&p| Circle::new(p, 4, grey.filled())))
            .map_err(err)?
            .label(ink.label("candidate measured"))
            .legend(move |(x, y)| Circle::new((x + 7, y), 4, grey.filled()));
        let blue = RGBColor(31, 119, 180);
        let front: Vec<(f64, f64)> = o.frontier.iter().map(|&i| ms[i]).collect();
        ink.path(&chart, front.iter().copied(), 2);
        chart
            .draw_series(LineSeries::new(front.clone(), blue.stroke_width(2)))
            .map_err(err)?
            .label(ink.label("frontier (measured)"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], blue.stroke_width(2))
            });
        chart
            .draw_series(front.iter().map(|&p| Circle::new(p, 5, blue.filled())))
            .map_err(err)?;
        let orange = RGBColor(255, 127, 14);
        let uniform: Vec<usize> = (0..o.points.len()).filter(|&i| o.is_uniform(i)).collect();
        for &i in &uniform {
            ink.marker(&chart, ms[i], 8);
        }
        chart
            .draw_series(
                uniform
                    .iter()
                    .map(|&i| TriangleMarker::new(ms[i], 8, orange.filled())),
            )
            .map_err(err)?
            .label(ink.label("uniform pattern"))
            .legend(move |(x, y)| TriangleMarker::new((x + 7, y), 6, orange.filled()));
        for &i in &uniform {
            let name = o.name(i);
            let at = chart.backend_coord(&ms[i]);
            let at = (at.0 + 9, at.1 - 20);
            ink.text_px(at, &name, 15);
            root.draw(&Text::new(name, at, (FONT, 15).into_font().color(&BLACK)))
                .map_err(err)?;
        }
        ink.legend(&mut chart, 15, &CORNERS)?;
        root.present().map_err(err)
    }
}

/// Draws `frontier.png` and `frontier.svg` of `o` into `dir`.
pub fn write(o: &Outcome, dir: &Path) -> Result<Vec<PathBuf>, String> {
    prepare(dir)?;
    Ok(render(&Frontier(o), dir)?.to_vec())
}
