//! The latency charts of a sweep: latency against the PE array's peak (`latency_vs_pe`) or
//! the DRAM's peak bandwidth (`latency_vs_dram`), under the compute and memory floors.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{CAPTION, Data, Run};
use crate::plot::legend::Ink;
use crate::plot::{FONT, PALETTE, Res, err, one_two_five};

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
        // Room below the data for the legend (or above, wherever it covers nothing).
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
        let mut ink = Ink::default();
        let floor: Vec<(f64, f64)> = (0..=40)
            .map(|i| {
                let x = xlo * (xhi / xlo).powf(f64::from(i) / 40.0);
                (x, work / (x * 1e9) * 1e3)
            })
            .collect();
        ink.path(&chart, floor.iter().copied(), 1);
        chart
            .draw_series(DashedLineSeries::new(floor, 10, 6, grey.stroke_width(2)))
            .map_err(err)?
            .label(ink.label(match along {
                Along::Pe => "compute floor: useful MACs / PE peak",
                Along::Dram => "memory floor: DRAM bytes / peak bandwidth",
            }))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], grey.stroke_width(2))
            });
        let at = |r: &&Run| (along.x(r), r.latency_ms());
        let pixels: Vec<Vec<(i32, i32)>> = self
            .lines
            .iter()
            .map(|(_, runs)| runs.iter().map(|r| chart.backend_coord(&at(r))).collect())
            .collect();
        for (li, (label, runs)) in self.lines.iter().enumerate() {
            let color = PALETTE[li % PALETTE.len()];
            let points: Vec<(f64, f64)> = runs.iter().map(at).collect();
            ink.path(&chart, points.iter().copied(), 1);
            // A stretch that runs exactly along earlier lines is dashed, with gaps where
            // they show through; a marker on earlier markers is smaller, leaving them as rings.
            let mut solid: Vec<(f64, f64)> = Vec::new();
            for k in 0..points.len() {
                let rank = if k + 1 < points.len() {
                    segment_rank(&pixels, li, k)
                } else {
                    0
                };
                if solid.is_empty() {
                    solid.push(points[k]);
                }
                if rank > 0 {
                    dash(root, pixels[li][k], pixels[li][k + 1], rank, color)?;
                }
                if rank > 0 || k + 1 == points.len() {
                    if solid.len() > 1 {
                        chart
                            .draw_series(std::iter::once(PathElement::new(
                                std::mem::take(&mut solid),
                                color.stroke_width(2),
                            )))
                            .map_err(err)?;
                    }
                    solid.clear();
                } else {
                    solid.push(points[k + 1]);
                }
            }
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), u32>>())
                .map_err(err)?
                .label(ink.label(label.clone()))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            for (k, r) in runs.iter().enumerate() {
                let radius = 6 - 2 * point_rank(&pixels, li, k).min(2) as u32;
                let fill = if r.compute_bound() { color } else { WHITE };
                ink.marker(&chart, at(r), 6);
                chart
                    .draw_series([
                        Circle::new(at(r), radius, fill.filled()),
                        Circle::new(at(r), radius, color.stroke_width(2)),
                    ])
                    .map_err(err)?;
            }
            // This line's own floor: memory along PE size, compute along bandwidth.
            let own = match along {
                Along::Pe => runs[0].memory_floor_ms(),
                Along::Dram => runs[0].compute_floor_ms(),
            };
            ink.path(&chart, [(xlo, own), (xhi, own)], 1);
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
            .label(ink.label(own_label))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], grey.mix(0.7).stroke_width(1))
            });
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), u32>>())
            .map_err(err)?
            .label(ink.label("filled: compute-bound (PE busier than DRAM); hollow: memory-bound"))
            .legend(move |(x, y)| Circle::new((x + 7, y), 5, grey.filled()));
        use SeriesLabelPosition::*;
        ink.legend(
            &mut chart,
            13,
            &[LowerLeft, UpperRight, LowerRight, UpperLeft],
        )?;
        root.present().map_err(err)
    }
}

/// Pixels apart within which two drawn points coincide.
const SAME_PX: i32 = 2;

fn same(a: (i32, i32), b: (i32, i32)) -> bool {
    (a.0 - b.0).abs() <= SAME_PX && (a.1 - b.1).abs() <= SAME_PX
}

/// How many lines before `line` have a marker where its point `k` is.
fn point_rank(pixels: &[Vec<(i32, i32)>], line: usize, k: usize) -> usize {
    let p = pixels[line][k];
    pixels[..line]
        .iter()
        .filter(|other| other.iter().any(|&q| same(p, q)))
        .count()
}

/// How many lines before `line` run along its segment from point `k` to `k + 1`.
fn segment_rank(pixels: &[Vec<(i32, i32)>], line: usize, k: usize) -> usize {
    let (a, b) = (pixels[line][k], pixels[line][k + 1]);
    pixels[..line]
        .iter()
        .filter(|other| {
            other
                .windows(2)
                .any(|w| (same(a, w[0]) && same(b, w[1])) || (same(a, w[1]) && same(b, w[0])))
        })
        .count()
}

/// Dash length of a line drawn along others, pixels.
const DASH_PX: f64 = 8.0;

/// The line of rank `rank` (the number of lines under it) from `a` to `b`: dashes `DASH_PX`
/// long, one in every `rank + 1`, at offset `rank`, so the lines under it show in turn.
fn dash<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    a: (i32, i32),
    b: (i32, i32),
    rank: usize,
    color: RGBColor,
) -> Res {
    let (dx, dy) = (f64::from(b.0 - a.0), f64::from(b.1 - a.1));
    let len = dx.hypot(dy);
    let period = DASH_PX * (rank + 1) as f64;
    let at = |t: f64| {
        let t = (t / len).clamp(0.0, 1.0);
        (a.0 + (dx * t).round() as i32, a.1 + (dy * t).round() as i32)
    };
    let mut start = DASH_PX * rank as f64;
    while start < len {
        root.draw(&PathElement::new(
            vec![at(start), at(start + DASH_PX)],
            color.stroke_width(2),
        ))
        .map_err(err)?;
        start += period;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_along_earlier_lines_are_ranked_by_how_many_lie_under_them() {
        // Three lines over the same first segment; the third also runs along the second's
        // second segment (within a pixel), the first turns away.
        let pixels = vec![
            vec![(0, 100), (50, 80), (100, 10)],
            vec![(0, 100), (50, 80), (100, 60)],
            vec![(1, 100), (50, 81), (100, 61)],
        ];
        assert_eq!(segment_rank(&pixels, 0, 0), 0);
        assert_eq!(segment_rank(&pixels, 1, 0), 1);
        assert_eq!(segment_rank(&pixels, 1, 1), 0);
        assert_eq!(segment_rank(&pixels, 2, 0), 2);
        assert_eq!(segment_rank(&pixels, 2, 1), 1);
        assert_eq!(point_rank(&pixels, 2, 2), 1);
        assert_eq!(point_rank(&pixels, 1, 2), 0);
    }

    #[test]
    fn a_dashed_line_leaves_gaps_for_the_lines_under_it() {
        let (w, h) = (80u32, 10u32);
        let mut buf = vec![255u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
            dash(&root, (0, 5), (64, 5), 1, RGBColor(200, 0, 0)).unwrap();
            root.present().unwrap();
        }
        let red = |x: usize| buf[(5 * w as usize + x) * 3 + 1] < 100;
        // Rank 1: dashes 8 px long every 16 px, starting after one dash length.
        for x in 0..64 {
            let on = (x / 8) % 2 == 1;
            // Dash ends may light the pixel either side.
            if x % 8 != 0 && x % 8 != 7 {
                assert_eq!(red(x), on, "column {x}");
            }
        }
    }
}
