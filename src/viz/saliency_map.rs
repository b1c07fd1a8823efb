//! A per-pixel attribution map in an image's coordinates.

use crate::data::BoundingBox;

#[derive(Clone, Debug, PartialEq)]
pub struct SaliencyMap {
    pub width: u32,
    pub height: u32,
    /// Row-major [height][width].
    pub values: Vec<f32>,
    /// Signed attributions (Integrated Gradients) rather than magnitudes.
    pub signed: bool,
}

impl SaliencyMap {
    pub fn new(width: u32, height: u32, values: Vec<f32>, signed: bool) -> SaliencyMap {
        assert_eq!(values.len(), (width * height) as usize, "saliency map size");
        SaliencyMap { width, height, values, signed }
    }

    pub fn at(&self, x: u32, y: u32) -> f32 {
        self.values[(y * self.width + x) as usize]
    }

    /// Bilinear resample to another size (e.g. from the resized model input
    /// back to the original image), keeping total mass per area comparable.
    pub fn resized(&self, width: u32, height: u32) -> SaliencyMap {
        if (width, height) == (self.width, self.height) {
            return self.clone();
        }
        let buf: image::ImageBuffer<image::Luma<f32>, Vec<f32>> =
            image::ImageBuffer::from_raw(self.width, self.height, self.values.clone()).expect("map buffer");
        let out = image::imageops::resize(&buf, width, height, image::imageops::FilterType::Triangle);
        SaliencyMap { width, height, values: out.into_raw(), signed: self.signed }
    }

    /// Share of the attribution mass (sum of |value|) inside `b`, in this map's
    /// pixel coordinates: the "tunnel vision" measure for boxed prompts.
    pub fn mass_inside(&self, b: &BoundingBox) -> f64 {
        let total: f64 = self.values.iter().map(|v| v.abs() as f64).sum();
        if total == 0.0 {
            return 0.0;
        }
        let (x0, x1) = (b.x0.max(0.0).floor() as u32, (b.x1.ceil() as u32).min(self.width));
        let (y0, y1) = (b.y0.max(0.0).floor() as u32, (b.y1.ceil() as u32).min(self.height));
        let mut inside = 0.0;
        for y in y0..y1 {
            for x in x0..x1 {
                inside += self.at(x, y).abs() as f64;
            }
        }
        inside / total
    }

    /// The value at percentile `p` (0..=100) of |values|.
    pub fn percentile_abs(&self, p: f64) -> f32 {
        let mut v: Vec<f32> = self.values.iter().map(|x| x.abs()).collect();
        if v.is_empty() {
            return 0.0;
        }
        v.sort_by(f32::total_cmp);
        let idx = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
        v[idx.min(v.len() - 1)]
    }

    pub fn sum(&self) -> f64 {
        self.values.iter().map(|&v| v as f64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(x0: f32, y0: f32, x1: f32, y1: f32) -> BoundingBox {
        BoundingBox::new(x0, y0, x1, y1)
    }

    #[test]
    fn box_mass() {
        let mut v = vec![0.0; 100];
        v[5 * 10 + 5] = 3.0; // (5,5)
        v[0] = -1.0; // (0,0), counted by magnitude
        let m = SaliencyMap::new(10, 10, v, true);
        assert!((m.mass_inside(&bx(4.0, 4.0, 6.0, 6.0)) - 0.75).abs() < 1e-9);
        assert!((m.mass_inside(&bx(0.0, 0.0, 10.0, 10.0)) - 1.0).abs() < 1e-9);
        assert_eq!(m.mass_inside(&bx(20.0, 20.0, 30.0, 30.0)), 0.0);
        assert_eq!(m.percentile_abs(100.0), 3.0);
        assert_eq!(m.percentile_abs(0.0), 0.0);
    }

    #[test]
    fn resize_keeps_peak_location() {
        let mut v = vec![0.0; 16];
        v[3 * 4 + 3] = 1.0;
        let m = SaliencyMap::new(4, 4, v, false).resized(8, 8);
        let (i, _) = m.values.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap();
        assert!(i % 8 >= 6 && i / 8 >= 6, "peak moved to {i}");
    }
}
