//! Legends that cover no data. A chart records what it draws ([`Ink`]: bars, lines, markers,
//! text, in pixels) and the labels of its legend; [`Ink::legend`] then puts the legend box
//! in the first of the chart's preferred places (corners, edge middles) that overlaps none
//! of it, or, when every place is taken, where it hides the least. Charts leave room for
//! it with [`headroom`].

use plotters::coord::ranged1d::Ranged;
use plotters::prelude::*;

use super::{FONT, Res, err};

/// Pixel rectangle `(x0, y0, x1, y1)`, backend coordinates.
type Px = (i32, i32, i32, i32);

/// plotters' legend layout: label lines `1.25` font sizes apart, each `size / 1.24` tall;
/// a 30 px column for the swatches; a 10 px margin inside the box; 5 px from the plot's edge.
const LINE_SPACING: f64 = 1.25;
const SWATCH_PX: i32 = 30;
const MARGIN_PX: i32 = 10;
const INSET_PX: i32 = 5;

/// Pixel height of a legend of `rows` labels at `font` px.
fn legend_height(rows: usize, font: u32) -> i32 {
    let font = f64::from(font);
    let lines = (rows.max(1) - 1) as f64 * font * LINE_SPACING;
    lines.round() as i32 + (font / 1.24) as i32 + 2 * MARGIN_PX
}

/// The factor to multiply a linear y axis's data maximum by so that the data stays below a
/// legend of `rows` labels at `font` px in an upper corner, on a plot about `plot_px` tall.
pub(super) fn headroom(rows: usize, font: u32, plot_px: u32) -> f64 {
    let taken = f64::from(legend_height(rows, font) + 2 * INSET_PX) / f64::from(plot_px);
    1.0 / (1.0 - taken.min(0.6))
}

/// The top of a log y axis running from `lo` whose data reach `top`, leaving room above the
/// data for a legend of `rows` labels at `font` px (the same fraction of the height as
/// [`headroom`], in decades).
pub(super) fn log_top(lo: f64, top: f64, rows: usize, font: u32, plot_px: u32) -> f64 {
    lo * (top / lo).powf(headroom(rows, font, plot_px))
}

/// What a chart has drawn, in pixels, and its legend's labels.
#[derive(Default)]
pub(super) struct Ink {
    rects: Vec<Px>,
    labels: Vec<String>,
}

/// The chart types the charts use (linear or log axes of f64).
type Chart<'a, DB, X, Y> = ChartContext<'a, DB, Cartesian2d<X, Y>>;

impl Ink {
    /// A label of the legend, recorded (to size the box) and returned for `.label(..)`.
    pub(super) fn label(&mut self, text: impl Into<String>) -> String {
        let text = text.into();
        self.labels.push(text.clone());
        text
    }

    /// A filled rectangle between two data corners.
    pub(super) fn rect<DB, X, Y>(&mut self, c: &Chart<DB, X, Y>, a: (f64, f64), b: (f64, f64))
    where
        DB: DrawingBackend,
        X: Ranged<ValueType = f64>,
        Y: Ranged<ValueType = f64>,
    {
        let (p, q) = (c.backend_coord(&a), c.backend_coord(&b));
        self.rects
            .push((p.0.min(q.0), p.1.min(q.1), p.0.max(q.0), p.1.max(q.1)));
    }

    /// A line through data points, `half_px` either side, sampled every few pixels.
    pub(super) fn path<DB, X, Y>(
        &mut self,
        c: &Chart<DB, X, Y>,
        points: impl IntoIterator<Item = (f64, f64)>,
        half_px: i32,
    ) where
        DB: DrawingBackend,
        X: Ranged<ValueType = f64>,
        Y: Ranged<ValueType = f64>,
    {
        let px: Vec<(i32, i32)> = points.into_iter().map(|p| c.backend_coord(&p)).collect();
        let mut dot = |(x, y): (i32, i32)| {
            self.rects
                .push((x - half_px, y - half_px, x + half_px, y + half_px));
        };
        if let [only] = px[..] {
            dot(only);
        }
        for w in px.windows(2) {
            let (a, b) = (w[0], w[1]);
            let steps = ((b.0 - a.0).abs().max((b.1 - a.1).abs()) / 3).max(1);
            for i in 0..=steps {
                let t = f64::from(i) / f64::from(steps);
                let lerp = |u: i32, v: i32| u + (f64::from(v - u) * t).round() as i32;
                dot((lerp(a.0, b.0), lerp(a.1, b.1)));
            }
        }
    }

    /// A marker of `radius_px` at a data point.
    pub(super) fn marker<DB, X, Y>(&mut self, c: &Chart<DB, X, Y>, at: (f64, f64), radius_px: i32)
    where
        DB: DrawingBackend,
        X: Ranged<ValueType = f64>,
        Y: Ranged<ValueType = f64>,
    {
        self.path(c, [at], radius_px);
    }

    /// Text of `font` px whose upper-left corner is at a data point (plotters' `Text`).
    pub(super) fn text<DB, X, Y>(
        &mut self,
        c: &Chart<DB, X, Y>,
        at: (f64, f64),
        text: &str,
        font: u32,
    ) where
        DB: DrawingBackend,
        X: Ranged<ValueType = f64>,
        Y: Ranged<ValueType = f64>,
    {
        let p = c.backend_coord(&at);
        self.text_px(p, text, font);
    }

    /// Text of `font` px whose upper-left corner is at pixel `p` of the image.
    pub(super) fn text_px(&mut self, p: (i32, i32), text: &str, font: u32) {
        let (w, h) = (FONT, font).into_font().box_size(text).unwrap_or((0, 0));
        self.rects.push((p.0, p.1, p.0 + w as i32, p.1 + h as i32));
    }

    /// Pixel size of the legend box.
    fn legend_size(&self, font: u32) -> (i32, i32) {
        let style = (FONT, font).into_font();
        let text_w = self
            .labels
            .iter()
            .map(|l| style.box_size(l).map_or(0, |(w, _)| w as i32))
            .max()
            .unwrap_or(0);
        (
            text_w + SWATCH_PX + 2 * MARGIN_PX,
            legend_height(self.labels.len(), font),
        )
    }

    /// Pixels of drawn ink under `r`.
    fn covered(&self, r: Px) -> i64 {
        self.rects
            .iter()
            .map(|q| {
                let w = (r.2.min(q.2) - r.0.max(q.0)).max(0);
                let h = (r.3.min(q.3) - r.1.max(q.1)).max(0);
                i64::from(w) * i64::from(h)
            })
            .sum()
    }

    /// Where in `prefer` (in order) the legend covers no ink, else the place covering least.
    fn place(&self, plot: Px, size: (i32, i32), prefer: &[SeriesLabelPosition]) -> usize {
        use SeriesLabelPosition::*;
        let (w, h) = size;
        let rect = |pos: &SeriesLabelPosition| -> Px {
            let x = match pos {
                UpperLeft | MiddleLeft | LowerLeft => plot.0 + INSET_PX,
                UpperMiddle | MiddleMiddle | LowerMiddle => (plot.0 + plot.2 - w) / 2,
                UpperRight | MiddleRight | LowerRight => plot.2 - w - INSET_PX,
                Coordinate(x, _) => plot.0 + x,
            };
            let y = match pos {
                UpperLeft | UpperMiddle | UpperRight => plot.1 + INSET_PX,
                MiddleLeft | MiddleMiddle | MiddleRight => (plot.1 + plot.3 - h) / 2,
                LowerLeft | LowerMiddle | LowerRight => plot.3 - h - INSET_PX,
                Coordinate(_, y) => plot.1 + y,
            };
            (x, y, x + w, y + h)
        };
        let costs: Vec<i64> = prefer.iter().map(|p| self.covered(rect(p))).collect();
        costs
            .iter()
            .position(|&c| c == 0)
            .or_else(|| (0..costs.len()).min_by_key(|&i| costs[i]))
            .unwrap_or(0)
    }

    /// Draws the legend (labels at `font` px) at the first place of `prefer` that covers
    /// nothing drawn.
    pub(super) fn legend<'a, DB, X, Y>(
        &self,
        chart: &mut Chart<'a, DB, X, Y>,
        font: u32,
        prefer: &[SeriesLabelPosition],
    ) -> Res
    where
        DB: DrawingBackend + 'a,
        X: Ranged<ValueType = f64>,
        Y: Ranged<ValueType = f64>,
    {
        let (xs, ys) = chart.plotting_area().get_pixel_range();
        let plot = (xs.start, ys.start, xs.end, ys.end);
        let i = self.place(plot, self.legend_size(font), prefer);
        let pos = match prefer.get(i) {
            Some(p) => clone_position(p),
            None => SeriesLabelPosition::UpperRight,
        };
        chart
            .configure_series_labels()
            .position(pos)
            .label_font((FONT, font))
            .legend_area_size(SWATCH_PX)
            .margin(MARGIN_PX)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(err)
    }
}

/// `SeriesLabelPosition` is not `Clone`.
fn clone_position(p: &SeriesLabelPosition) -> SeriesLabelPosition {
    use SeriesLabelPosition::*;
    match p {
        UpperLeft => UpperLeft,
        MiddleLeft => MiddleLeft,
        LowerLeft => LowerLeft,
        UpperMiddle => UpperMiddle,
        MiddleMiddle => MiddleMiddle,
        LowerMiddle => LowerMiddle,
        UpperRight => UpperRight,
        MiddleRight => MiddleRight,
        LowerRight => LowerRight,
        Coordinate(x, y) => Coordinate(*x, *y),
    }
}

/// A throwaway chart on a bitmap of `size` whose x and y run over `0..1`, for tests.
#[cfg(test)]
fn with_unit_chart<T>(
    size: (u32, u32),
    f: impl FnOnce(
        &mut Chart<
            '_,
            BitMapBackend<'_>,
            plotters::coord::types::RangedCoordf64,
            plotters::coord::types::RangedCoordf64,
        >,
    ) -> T,
) -> T {
    use plotters::coord::Shift;
    let mut buf = vec![255u8; (size.0 * size.1 * 3) as usize];
    let root: DrawingArea<BitMapBackend<'_>, Shift> =
        BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
    let mut chart = ChartBuilder::on(&root)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)
        .unwrap();
    f(&mut chart)
}

#[cfg(test)]
mod tests {
    use super::*;
    use SeriesLabelPosition::*;

    const ALL: [SeriesLabelPosition; 4] = [UpperRight, UpperLeft, LowerRight, LowerLeft];

    fn chosen(ink: &Ink, plot: Px, size: (i32, i32)) -> usize {
        ink.place(plot, size, &ALL)
    }

    #[test]
    fn the_legend_goes_to_the_first_preferred_corner_with_no_data() {
        super::super::register_font();
        with_unit_chart((400, 300), |c| {
            let (xs, ys) = c.plotting_area().get_pixel_range();
            let plot = (xs.start, ys.start, xs.end, ys.end);
            let mut ink = Ink::default();
            // A bar filling the right half up to 90 %: both right corners are taken.
            ink.rect(c, (0.5, 0.0), (1.0, 0.9));
            // A line along the bottom of the left half.
            ink.path(c, [(0.0, 0.05), (0.5, 0.05)], 1);
            assert_eq!(chosen(&ink, plot, (100, 60)), 1, "upper left is free");
            // A marker in the upper left too: nothing is free; the least covered place is
            // the upper left (a few pixels of the marker) rather than the filled right.
            ink.marker(c, (0.05, 0.95), 4);
            assert_eq!(chosen(&ink, plot, (100, 60)), 1);
        });
    }

    #[test]
    fn a_line_through_a_place_takes_it_between_its_ends() {
        super::super::register_font();
        with_unit_chart((400, 300), |c| {
            let (xs, ys) = c.plotting_area().get_pixel_range();
            let plot = (xs.start, ys.start, xs.end, ys.end);
            let mut ink = Ink::default();
            // Across the middle, edge to edge: only its two ends are given, and neither is
            // inside the middle place.
            ink.path(c, [(0.0, 0.5), (1.0, 0.5)], 1);
            let prefer = [MiddleMiddle, UpperMiddle];
            assert_eq!(
                ink.place(plot, (100, 60), &prefer),
                1,
                "the middle is taken"
            );
        });
    }

    #[test]
    fn headroom_leaves_the_legends_height_free_above_the_data() {
        // 4 rows at 15 px: 3 * 18.75 + 12 + 20 = 88 px, plus 5 px above and below.
        let f = headroom(4, 15, 430);
        assert!((f - 430.0 / (430.0 - 98.0)).abs() < 1e-9, "{f}");
        assert_eq!(legend_height(4, 15), 88);
    }
}
