//! Image preprocessing as Qwen2VLImageProcessor does it: smart_resize to a
//! multiple of 28 within [min_pixels, max_pixels], bicubic resize, rescale and
//! normalise, two temporal copies, and patchify to [N, C*T*P*P] + grid_thw.
//! Pure data: no torch here.

use super::config::PreprocessorConfig;
use super::vision_layout::{rotary_positions, Grid};
use anyhow::{bail, Result};
use image::{imageops::FilterType, DynamicImage, RgbImage};

/// How a request wants its images sized.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum ResizePolicy {
    /// The checkpoint's preprocessor_config min/max pixels.
    #[default]
    Auto,
    /// Other pixel bounds for this request.
    Pixels { min: i64, max: i64 },
    /// A fixed size (ViewSpatial resizes to 280x420), rounded to multiples of 28.
    Exact { width: u32, height: u32 },
}

/// One image ready for the vision tower.
#[derive(Clone, Debug)]
pub struct ImagePatches {
    /// Row-major [patches, patch_dim].
    pub values: Vec<f32>,
    pub patch_dim: usize,
    pub grid: Grid,
    /// (width, height) after resizing.
    pub resized: (u32, u32),
    /// (width, height) as given.
    pub original: (u32, u32),
}

impl ImagePatches {
    pub fn num_patches(&self) -> usize {
        self.values.len() / self.patch_dim
    }
    /// Tokens this image takes in the prompt (after the 2x2 merge).
    pub fn num_tokens(&self, merge: i64) -> usize {
        (self.grid.iter().product::<i64>() / (merge * merge)) as usize
    }
}

/// (height, width) rounded to `factor` with total pixels in [min, max],
/// keeping the aspect ratio; Python's round-half-to-even, like transformers.
pub fn smart_resize(height: i64, width: i64, factor: i64, min_pixels: i64, max_pixels: i64) -> Result<(i64, i64)> {
    if height <= 0 || width <= 0 {
        bail!("image has no pixels ({width}x{height})");
    }
    let (h, w, f) = (height as f64, width as f64, factor as f64);
    if h.max(w) / h.min(w) > 200.0 {
        bail!("image aspect ratio {:.1} is over 200", h.max(w) / h.min(w));
    }
    let mut hb = (h / f).round_ties_even() as i64 * factor;
    let mut wb = (w / f).round_ties_even() as i64 * factor;
    if hb * wb > max_pixels {
        let beta = ((h * w) / max_pixels as f64).sqrt();
        hb = factor.max((h / beta / f).floor() as i64 * factor);
        wb = factor.max((w / beta / f).floor() as i64 * factor);
    } else if hb * wb < min_pixels {
        let beta = (min_pixels as f64 / (h * w)).sqrt();
        hb = (h * beta / f).ceil() as i64 * factor;
        wb = (w * beta / f).ceil() as i64 * factor;
    }
    Ok((hb, wb))
}

/// The size an image of (width, height) is resized to under `policy`.
pub fn target_size(width: u32, height: u32, cfg: &PreprocessorConfig, policy: &ResizePolicy) -> Result<(u32, u32)> {
    let f = cfg.factor();
    let (h, w) = match *policy {
        ResizePolicy::Auto => smart_resize(height as i64, width as i64, f, cfg.min_pixels, cfg.max_pixels)?,
        ResizePolicy::Pixels { min, max } => smart_resize(height as i64, width as i64, f, min, max)?,
        ResizePolicy::Exact { width: tw, height: th } => {
            let round = |x: u32| ((x as f64 / f as f64).round_ties_even() as i64).max(1) * f;
            (round(th), round(tw))
        }
    };
    Ok((w as u32, h as u32))
}

pub fn preprocess(image: &DynamicImage, cfg: &PreprocessorConfig, policy: &ResizePolicy) -> Result<ImagePatches> {
    let resized = resized_rgb(image, cfg, policy)?;
    Ok(patchify(&resized, cfg, (image.width(), image.height())))
}

/// Normalise and cut a resized RGB image into flattened patches in the
/// processor's order: merge blocks row-major, patches within a block
/// row-major, each patch laid out as (channel, temporal, y, x).
pub fn patchify(img: &RgbImage, cfg: &PreprocessorConfig, original: (u32, u32)) -> ImagePatches {
    let (w, h) = img.dimensions();
    let (p, m, t) = (cfg.patch_size as usize, cfg.merge_size as usize, cfg.temporal_patch_size as usize);
    let (gh, gw) = (h as usize / p, w as usize / p);
    let patch_dim = 3 * t * p * p;
    // Normalised planes [3][h][w], computed once.
    let mut planes = vec![0f32; 3 * (h * w) as usize];
    for (x, y, px) in img.enumerate_pixels() {
        for c in 0..3 {
            let v = (px.0[c] as f64 * cfg.rescale_factor as f64 - cfg.image_mean[c] as f64) / cfg.image_std[c] as f64;
            planes[c * (h * w) as usize + (y * w + x) as usize] = v as f32;
        }
    }
    let grid = [1, gh as i64, gw as i64];
    let mut values = Vec::with_capacity(gh * gw * patch_dim);
    // The vision tower's block-major patch order is the one place it is defined.
    for [row, col] in rotary_positions(&[grid], m as i64) {
        let (py, px) = (row as usize * p, col as usize * p);
        for c in 0..3 {
            let plane = &planes[c * (h * w) as usize..];
            for _ in 0..t {
                for yy in 0..p {
                    let start = (py + yy) * w as usize + px;
                    values.extend_from_slice(&plane[start..start + p]);
                }
            }
        }
    }
    ImagePatches { values, patch_dim, grid, resized: (w, h), original }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smart_resize_matches_transformers() {
        // Values from transformers' smart_resize.
        assert_eq!(smart_resize(217, 301, 28, 3136, 50176).unwrap(), (168, 252));
        assert_eq!(smart_resize(168, 224, 28, 3136, 50176).unwrap(), (168, 224));
        assert_eq!(smart_resize(100, 150, 28, 3136, 50176).unwrap(), (112, 140));
        // 42/28 = 1.5 rounds to 2 (even), 70/28 = 2.5 rounds to 2 (even)
        assert_eq!(smart_resize(42, 70, 28, 1, 1 << 30).unwrap(), (56, 56));
        assert_eq!(smart_resize(20, 20, 28, 3136, 50176).unwrap(), (56, 56));
        assert!(smart_resize(1, 300, 28, 3136, 50176).unwrap_err().to_string().contains("aspect ratio"));
    }

    #[test]
    fn exact_policy_rounds_to_factor() {
        let cfg = PreprocessorConfig::default();
        assert_eq!(target_size(640, 480, &cfg, &ResizePolicy::Exact { width: 280, height: 420 }).unwrap(), (280, 420));
        assert_eq!(target_size(640, 480, &cfg, &ResizePolicy::Exact { width: 300, height: 300 }).unwrap(), (308, 308));
    }

    #[test]
    fn patch_layout() {
        let cfg = PreprocessorConfig::default();
        let mut img = RgbImage::new(56, 28);
        for (x, y, px) in img.enumerate_pixels_mut() {
            *px = image::Rgb([(x % 256) as u8, y as u8, 0]);
        }
        let p = patchify(&img, &cfg, (56, 28));
        assert_eq!(p.grid, [1, 2, 4]);
        assert_eq!(p.num_patches(), 8);
        assert_eq!(p.num_tokens(2), 2);
        // Patch 1 is the block's top-right patch: x starts at 14.
        let red = |patch: usize, i: usize| p.values[patch * 1176 + i] * cfg.image_std[0] + cfg.image_mean[0];
        assert!((red(1, 0) * 255.0 - 14.0).abs() < 1e-3);
        // Patch 4 starts the second merge block: x = 28.
        assert!((red(4, 0) * 255.0 - 28.0).abs() < 1e-3);
        // The temporal copy repeats the channel's 196 values.
        assert_eq!(p.values[196..392], p.values[0..196]);
    }
}

/// How per-value attributions of one image's patches become one value per pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelReduce {
    /// Mean over the temporal copies, then max |.| over channels (saliency magnitude).
    MaxAbsChannel,
    /// Sum over temporal copies and channels (keeps IG's completeness).
    SumSigned,
}

/// The inverse of `patchify` for attributions: values [patches, C*T*P*P] of
/// one image back to a [height][width] map of the resized image.
pub fn unpatchify_map(values: &[f32], grid: Grid, cfg: &PreprocessorConfig, reduce: PixelReduce) -> (u32, u32, Vec<f32>) {
    let (p, m, t) = (cfg.patch_size as usize, cfg.merge_size as usize, cfg.temporal_patch_size as usize);
    let (gh, gw) = (grid[1] as usize, grid[2] as usize);
    let (w, h) = (gw * p, gh * p);
    let patch_dim = 3 * t * p * p;
    let mut out = vec![0f32; w * h];
    for (patch, [row, col]) in rotary_positions(&[grid], m as i64).into_iter().enumerate() {
        let base = patch * patch_dim;
        let (py, px) = (row as usize * p, col as usize * p);
        for yy in 0..p {
            for xx in 0..p {
                let mut acc = 0f32;
                for c in 0..3 {
                    let s: f32 = (0..t).map(|ti| values[base + ((c * t + ti) * p + yy) * p + xx]).sum();
                    match reduce {
                        PixelReduce::MaxAbsChannel => acc = acc.max((s / t as f32).abs()),
                        PixelReduce::SumSigned => acc += s,
                    }
                }
                out[(py + yy) * w + px + xx] = acc;
            }
        }
    }
    (w as u32, h as u32, out)
}

/// The resized RGB image the model sees (before normalising). PIL returns
/// the image unchanged when the size already matches, and so does this.
pub fn resized_rgb(image: &DynamicImage, cfg: &PreprocessorConfig, policy: &ResizePolicy) -> Result<RgbImage> {
    let rgb = image.to_rgb8();
    let (w0, h0) = rgb.dimensions();
    let (w, h) = target_size(w0, h0, cfg, policy)?;
    Ok(if (w, h) == (w0, h0) { rgb } else { image::imageops::resize(&rgb, w, h, FilterType::CatmullRom) })
}

#[cfg(test)]
mod unpatchify_tests {
    use super::*;

    #[test]
    fn unpatchify_inverts_patchify() {
        let cfg = PreprocessorConfig::default();
        let mut img = RgbImage::new(56, 28);
        for (x, y, px) in img.enumerate_pixels_mut() {
            *px = image::Rgb([(x * 4) as u8, (y * 8) as u8, 200]);
        }
        let p = patchify(&img, &cfg, (56, 28));
        let (w, h, map) = unpatchify_map(&p.values, p.grid, &cfg, PixelReduce::SumSigned);
        assert_eq!((w, h), (56, 28));
        for (x, y, px) in img.enumerate_pixels() {
            let want: f32 = (0..3).map(|c| 2.0 * ((px.0[c] as f32 / 255.0 - cfg.image_mean[c]) / cfg.image_std[c])).sum();
            assert!((map[(y * w + x) as usize] - want).abs() < 1e-4, "({x},{y})");
        }
        let (_, _, mag) = unpatchify_map(&p.values, p.grid, &cfg, PixelReduce::MaxAbsChannel);
        let px = img.get_pixel(10, 20);
        let want = (0..3).map(|c| ((px.0[c] as f32 / 255.0 - cfg.image_mean[c]) / cfg.image_std[c]).abs()).fold(0f32, f32::max);
        assert!((mag[(20 * 56 + 10) as usize] - want).abs() < 1e-5);
    }
}
