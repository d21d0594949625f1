//! The latency charts of a sweep: latency against the PE array's peak (`latency_vs_pe`) or
//! the DRAM's peak bandwidth (`latency_vs_dram`), under the compute and memory floors.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{CAPTION, Data, Run};
use crate::plot::{FONT, PALETTE, Res, err, legend};

/// What a latency chart plots along x.
#[derive(Copy, Clone)]
pub(super) enum Along {
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
pub(super) struct Latency<'a> {
    context: String,
    along: Along,
    x_key: String,
    /// Label and points (sorted along x) of each line.
    lines: Vec<(String, Vec<&'a Run>)>,
}

impl<'a> Latency<'a> {
    pub(super) fn new(
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

    pub(super) fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Res {
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
