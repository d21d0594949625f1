//! Text in PNG charts. plotters' bitmap text (its `ab_glyph` font path) draws each glyph's
//! ink at the pen position, dropping the glyph's left side bearing: a narrow glyph such as
//! `1` or `.` sits at the left of its advance and leaves a gap after it ("1 9.2 GB/s",
//! "rows=1 6"). [`Png`] wraps a backend and draws text itself with the same layout (pen
//! advances and kerning, anchors, rotation) but each glyph placed at its pen position plus
//! its bearing, at sub-pixel precision. Everything else is passed through unchanged. SVG
//! charts are not affected (they hold text, laid out by the viewer).

use ab_glyph::{Font, FontRef, ScaleFont, point};
use plotters::prelude::DrawingBackend;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};

/// The font every chart uses (DejaVu Sans), embedded in the binary.
pub(super) const TTF: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// A bitmap backend whose text is drawn with each glyph's side bearing.
pub(super) struct Png<B>(pub B);

/// Calls `pixel(x, y, coverage)` for every pixel of `text` at `size` px, laid out from
/// (0, 0) the way plotters lays it out: pen advances plus kerning, the baseline `size / 2`
/// below the top.
fn rasterize(text: &str, size: f64, mut pixel: impl FnMut(i32, i32, f32)) {
    let Ok(font) = FontRef::try_from_slice(TTF) else {
        return;
    };
    let font = font.as_scaled(size as f32);
    let mut pen = 0f32;
    let mut prev = None;
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = prev {
            pen += font.kern(p, id);
        }
        prev = Some(id);
        let glyph = id.with_scale_and_position(font.scale(), point(pen, 0.0));
        if let Some(outline) = font.outline_glyph(glyph) {
            // `draw` gives pixels relative to the outline's pixel bounds, which include
            // the pen position and the bearing.
            let bounds = outline.px_bounds();
            let (x0, y0) = (
                bounds.min.x as i32,
                (size as f32 / 2.0 + bounds.min.y) as i32,
            );
            outline.draw(|x, y, coverage| {
                if coverage > 0.0 {
                    pixel(x0 + x as i32, y0 + y as i32, coverage);
                }
            });
        }
        pen += font.h_advance(id);
    }
}

impl<B: DrawingBackend> DrawingBackend for Png<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }
    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.ensure_prepared()
    }
    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.present()
    }
    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_pixel(point, color)
    }
    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_line(from, to, style)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_path(path, style)
    }
    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_circle(center, radius, style, fill)
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.fill_polygon(vert, style)
    }
    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.blit_bitmap(pos, size, src)
    }

    /// plotters' own `draw_text` (anchor, rotation, clipping to the image), with the glyphs
    /// from [`rasterize`].
    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let ((min_x, min_y), (max_x, max_y)) = style
            .layout_box(text)
            .map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
        let (width, height) = (max_x - min_x, max_y - min_y);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -width,
            HPos::Center => -width / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let trans = style.transform();
        let (w, h) = self.get_size();
        let mut result = Ok(());
        rasterize(text, style.size(), |x, y, coverage| {
            let (x, y) = trans.transform(x + dx - min_x, y + dy - min_y);
            let (x, y) = (pos.0 + x, pos.1 + y);
            if result.is_ok() && x >= 0 && x < w as i32 && y >= 0 && y < h as i32 {
                let c = BackendColor {
                    alpha: color.alpha * f64::from(coverage),
                    rgb: color.rgb,
                };
                result = self.0.draw_pixel((x, y), c);
            }
        });
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::prelude::*;

    const W: u32 = 400;
    const H: u32 = 80;
    const SIZE: f64 = 40.0;

    /// The columns holding ink after drawing `text` at (10, 10) on a white image.
    fn ink_columns(text: &str) -> Vec<bool> {
        let mut buf = vec![255u8; (W * H * 3) as usize];
        {
            let root = Png(BitMapBackend::with_buffer(&mut buf, (W, H))).into_drawing_area();
            crate::plot::register_font();
            root.draw(&Text::new(text, (10, 10), (super::super::FONT, SIZE)))
                .unwrap();
            root.present().unwrap();
        }
        (0..W as usize)
            .map(|x| (0..H as usize).any(|y| buf[(y * W as usize + x) * 3] < 160))
            .collect()
    }

    /// Start columns of the runs of ink.
    fn starts(cols: &[bool]) -> Vec<usize> {
        (0..cols.len())
            .filter(|&x| cols[x] && (x == 0 || !cols[x - 1]))
            .collect()
    }

    #[test]
    fn each_glyph_starts_at_its_pen_position_plus_its_bearing() {
        // DejaVu Sans (units per em 2048): `1` advance 1303, left bearing 225; `.` advance
        // 651, bearing 219; `9` bearing 129 (from the font's hmtx table). At a scale of
        // SIZE px per (ascent - descent) = 1901 + 483 units, one unit is SIZE / 2384 px.
        let px = SIZE / 2384.0;
        let s = starts(&ink_columns("1.9"));
        assert_eq!(s.len(), 3, "{s:?}");
        let expect = [
            10.0 + 225.0 * px,
            10.0 + (1303.0 + 219.0) * px,
            10.0 + (1303.0 + 651.0 + 129.0) * px,
        ];
        for (got, want) in s.iter().zip(expect) {
            // Anti-aliasing can light the column before the bearing's.
            assert!(
                (*got as f64 - want).abs() <= 1.5,
                "ink at {s:?}, expected about {expect:?}"
            );
        }
    }
}
