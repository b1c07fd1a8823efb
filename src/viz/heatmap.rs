//! A saliency map drawn over its image: percentile clipping, a colormap,
//! alpha blending and optional box outlines.

use super::{Colormap, SaliencyMap};
use crate::data::{draw, BoundingBox};
use image::{Rgb, RgbImage};

#[derive(Clone, Debug)]
pub struct HeatmapStyle {
    pub colormap: Colormap,
    /// Values above this percentile of |value| saturate the colormap.
    pub clip_percentile: f64,
    /// Heatmap opacity over the image, 0..=1.
    pub alpha: f32,
    pub boxes: Vec<BoundingBox>,
    pub box_color: Rgb<u8>,
    pub box_width: f32,
}

impl Default for HeatmapStyle {
    fn default() -> Self {
        HeatmapStyle {
            colormap: Colormap::Inferno,
            clip_percentile: 99.0,
            alpha: 0.6,
            boxes: vec![],
            box_color: Rgb([0, 255, 0]),
            box_width: 2.0,
        }
    }
}

/// The map (resampled to the image's size if needed) blended over `base`.
pub fn render(map: &SaliencyMap, base: &RgbImage, style: &HeatmapStyle) -> RgbImage {
    let (w, h) = base.dimensions();
    let map = map.resized(w, h);
    let clip = map.percentile_abs(style.clip_percentile).max(f32::MIN_POSITIVE);
    // Signed maps centre zero on the diverging map's neutral colour.
    let signed = map.signed || style.colormap == Colormap::Diverging;
    let mut out = base.clone();
    for (x, y, px) in out.enumerate_pixels_mut() {
        let v = map.at(x, y);
        let t = if signed { 0.5 + 0.5 * (v / clip).clamp(-1.0, 1.0) } else { (v.abs() / clip).min(1.0) };
        let c = style.colormap.at(t);
        for i in 0..3 {
            px.0[i] = (px.0[i] as f32 * (1.0 - style.alpha) + c.0[i] as f32 * style.alpha).round() as u8;
        }
    }
    for b in &style.boxes {
        draw::outline_rect(&mut out, b.x0, b.y0, b.x1, b.y1, style.box_width, style.box_color);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_pixels_get_hot_colours() {
        let base = RgbImage::from_pixel(10, 10, Rgb([128, 128, 128]));
        let mut v = vec![0.0; 100];
        v[55] = 5.0;
        let map = SaliencyMap::new(10, 10, v, false);
        let style = HeatmapStyle { alpha: 1.0, clip_percentile: 100.0, ..Default::default() };
        let img = render(&map, &base, &style);
        assert_eq!(*img.get_pixel(5, 5), Colormap::Inferno.at(1.0));
        assert_eq!(*img.get_pixel(0, 0), Colormap::Inferno.at(0.0));
        // alpha 0 leaves the image alone; boxes are drawn on top
        let style = HeatmapStyle { alpha: 0.0, boxes: vec![BoundingBox::new(1.0, 1.0, 8.0, 8.0)], ..Default::default() };
        let img = render(&map, &base, &style);
        assert_eq!(*img.get_pixel(5, 5), Rgb([128, 128, 128]));
        assert_eq!(*img.get_pixel(1, 4), Rgb([0, 255, 0]));
    }
}
