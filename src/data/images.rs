//! Image paths and bytes: resolving relative paths against a dataset root,
//! decoding embedded bytes (base64 and parquet structs), and decoding images
//! with errors that name the source.

use super::error::{DataError, FieldError, FieldResult};
use super::sample::ImageSource;
use super::table::Cell;
use base64::Engine as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Resolves a relative image path: `root/rel` first, then `root/rel` with each
/// of `strip` removed from its front, then under each of `subdirs`. The first
/// existing file wins; when none exists, the first candidate is returned so
/// the missing path can be reported.
pub fn resolve(root: &Path, rel: &str, strip: &[&str], subdirs: &[&str]) -> ImageSource {
    let rel_path = Path::new(rel);
    if rel_path.is_absolute() {
        return ImageSource::Path(rel_path.to_path_buf());
    }
    let mut candidates = vec![root.join(rel)];
    for prefix in strip {
        if let Some(rest) = rel.strip_prefix(prefix) {
            candidates.push(root.join(rest.trim_start_matches('/')));
        }
    }
    let file = rel_path.file_name().map(PathBuf::from).unwrap_or_default();
    for sub in subdirs {
        candidates.push(root.join(sub).join(rel));
        candidates.push(root.join(sub).join(&file));
    }
    let hit = candidates.iter().find(|c| c.is_file()).unwrap_or(&candidates[0]);
    ImageSource::Path(hit.clone())
}

pub fn embedded(bytes: Vec<u8>, name: Option<String>) -> ImageSource {
    ImageSource::Bytes { bytes: Arc::from(bytes), name }
}

pub fn decode_base64(field: &str, text: &str) -> FieldResult<Vec<u8>> {
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let clean = clean.split_once(";base64,").map(|(_, b)| b.to_string()).unwrap_or(clean);
    base64::engine::general_purpose::STANDARD
        .decode(clean.as_bytes())
        .map_err(|e| FieldError::new(field, format!("invalid base64 image: {e}")))
}

/// An image cell as parquet and JSON carry it: raw bytes, a `{bytes, path}`
/// struct, or a path string resolved with `resolve_path`.
pub fn image_from_cell(field: &str, cell: &Cell, resolve_path: &dyn Fn(&str) -> ImageSource) -> FieldResult<ImageSource> {
    match cell {
        Cell::Bytes(b) => Ok(embedded(b.clone(), None)),
        Cell::Map(_) => {
            let name = cell.get("path").and_then(Cell::as_str).map(str::to_string);
            match cell.get("bytes") {
                Some(Cell::Bytes(b)) if !b.is_empty() => Ok(embedded(b.clone(), name)),
                _ => match name {
                    Some(p) if !p.is_empty() => Ok(resolve_path(&p)),
                    _ => Err(FieldError::new(field, "image struct has neither bytes nor path")),
                },
            }
        }
        Cell::Str(s) if !s.is_empty() => Ok(resolve_path(s)),
        _ => Err(FieldError::new(field, "expected image bytes, a {bytes, path} struct or a path")),
    }
}

/// The widest or tallest image decoded. The model sees at most a few
/// thousand pixels a side (max_pixels), so anything larger is a mistake or
/// an attack, and decoding it would take gigabytes.
pub const MAX_IMAGE_SIDE: u32 = 16_384;

/// Decode limits: [`MAX_IMAGE_SIDE`] and at most `FLIPSCOPE_MAX_IMAGE_MB`
/// (512 MiB by default) allocated for one image.
pub fn decode_limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(crate::fsutil::mib_limit("FLIPSCOPE_MAX_IMAGE_MB", 512));
    limits
}

/// Decodes image bytes within [`decode_limits`], checked from the header
/// before any pixel is allocated.
pub fn decode_bytes(bytes: &[u8]) -> Result<image::DynamicImage, String> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| e.to_string())?;
    reader.limits(decode_limits());
    reader.decode().map_err(|e| match e {
        image::ImageError::Limits(l) => {
            format!("image too large to decode ({l}; at most {MAX_IMAGE_SIDE} pixels a side and FLIPSCOPE_MAX_IMAGE_MB of memory)")
        }
        e => e.to_string(),
    })
}

/// Decodes an image; the error names the file (or the embedded image).
/// Only regular files are opened, and at most `FLIPSCOPE_MAX_READ_MB` read.
pub fn decode(src: &ImageSource) -> Result<image::DynamicImage, DataError> {
    match src {
        ImageSource::Path(p) => {
            let bytes = crate::fsutil::read_regular(p, crate::fsutil::max_read_bytes()).map_err(|e| DataError::io(p, e))?;
            decode_bytes(&bytes).map_err(|e| DataError::Other { path: p.clone(), message: format!("cannot decode image: {e}") })
        }
        ImageSource::Bytes { bytes, name } => decode_bytes(bytes).map_err(|e| DataError::Other {
            path: PathBuf::from(name.clone().unwrap_or_else(|| "<embedded image>".into())),
            message: format!("cannot decode image: {e}"),
        }),
    }
}

/// Every image of `sample`, decoded; the error names the sample and the source.
pub fn load_images(sample: &super::Sample) -> anyhow::Result<Vec<image::DynamicImage>> {
    use anyhow::Context;
    sample.images.iter().map(|src| decode(src).with_context(|| format!("sample {}", sample.id))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_image_is_refused_from_its_header() {
        // A 20000x20000 grayscale PNG's header, without its pixels: the
        // decoder must refuse it before allocating 400 MB.
        let mut png = Vec::new();
        let enc = image::codecs::png::PngEncoder::new(&mut png);
        use image::ImageEncoder;
        enc.write_image(&vec![0u8; 20_000], 20_000, 1, image::ExtendedColorType::L8).unwrap();
        // Patch the IHDR height (bytes 20..24) to 20000 and its CRC (29..33).
        png[20..24].copy_from_slice(&20_000u32.to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(&png[12..29]);
        png[29..33].copy_from_slice(&crc.sum().to_be_bytes());
        let err = decode(&embedded(png, Some("huge.png".into()))).unwrap_err().to_string();
        assert!(err.contains("huge.png") && err.contains("too large"), "{err}");
        let mut ok = Vec::new();
        image::codecs::png::PngEncoder::new(&mut ok).write_image(&[7u8; 12], 4, 3, image::ExtendedColorType::L8).unwrap();
        assert_eq!(decode_bytes(&ok).unwrap().width(), 4);
    }
}
