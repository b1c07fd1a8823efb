//! Minimal raster drawing for synthetic scenes and visual prompts (boxes).
//! Shapes are filled by testing pixel centres, so output is exact and
//! deterministic.

use image::{Rgb, RgbImage};

pub fn fill_circle(img: &mut RgbImage, cx: f32, cy: f32, r: f32, c: Rgb<u8>) {
    fill_where(img, (cx - r, cy - r, cx + r, cy + r), c, |x, y| (x - cx).powi(2) + (y - cy).powi(2) <= r * r);
}

pub fn fill_rect(img: &mut RgbImage, x0: f32, y0: f32, x1: f32, y1: f32, c: Rgb<u8>) {
    fill_where(img, (x0, y0, x1, y1), c, |x, y| x >= x0 && x <= x1 && y >= y0 && y <= y1);
}

/// Fills a convex polygon given clockwise or counter-clockwise.
pub fn fill_polygon(img: &mut RgbImage, pts: &[(f32, f32)], c: Rgb<u8>) {
    let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for &(x, y) in pts {
        x0 = x0.min(x);
        y0 = y0.min(y);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    let inside = |x: f32, y: f32| {
        let mut sign = 0i8;
        for i in 0..pts.len() {
            let (ax, ay) = pts[i];
            let (bx, by) = pts[(i + 1) % pts.len()];
            let cross = (bx - ax) * (y - ay) - (by - ay) * (x - ax);
            let s = if cross > 0.0 {
                1
            } else if cross < 0.0 {
                -1
            } else {
                0
            };
            if s != 0 {
                if sign != 0 && s != sign {
                    return false;
                }
                sign = s;
            }
        }
        true
    };
    fill_where(img, (x0, y0, x1, y1), c, inside);
}

/// A rectangle outline `width` pixels thick, drawn inside the box edges.
pub fn outline_rect(img: &mut RgbImage, x0: f32, y0: f32, x1: f32, y1: f32, width: f32, c: Rgb<u8>) {
    // Pixel (x, y) is covered when its centre (x + 0.5, y + 0.5) lies inside.
    fill_rect(img, x0, y0, x1, y0 + width, c);
    fill_rect(img, x0, y1 - width, x1, y1, c);
    fill_rect(img, x0, y0, x0 + width, y1, c);
    fill_rect(img, x1 - width, y0, x1, y1, c);
}

/// A line segment `width` pixels thick.
pub fn line(img: &mut RgbImage, a: (f32, f32), b: (f32, f32), width: f32, c: Rgb<u8>) {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = (dx * dx + dy * dy).max(1e-6);
    let h = width / 2.0;
    let bounds = (a.0.min(b.0) - h, a.1.min(b.1) - h, a.0.max(b.0) + h, a.1.max(b.1) + h);
    fill_where(img, bounds, c, |x, y| {
        let t = (((x - a.0) * dx + (y - a.1) * dy) / len2).clamp(0.0, 1.0);
        let (px, py) = (a.0 + t * dx, a.1 + t * dy);
        (x - px).powi(2) + (y - py).powi(2) <= h * h
    });
}

fn fill_where(img: &mut RgbImage, b: (f32, f32, f32, f32), c: Rgb<u8>, inside: impl Fn(f32, f32) -> bool) {
    let (w, h) = img.dimensions();
    let x0 = b.0.floor().max(0.0) as u32;
    let y0 = b.1.floor().max(0.0) as u32;
    let x1 = (b.2.ceil().max(0.0) as u32).min(w.saturating_sub(1));
    let y1 = (b.3.ceil().max(0.0) as u32).min(h.saturating_sub(1));
    for y in y0..=y1 {
        for x in x0..=x1 {
            if inside(x as f32 + 0.5, y as f32 + 0.5) {
                img.put_pixel(x, y, c);
            }
        }
    }
}
