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

/// Decodes an image; the error names the file (or the embedded image).
pub fn decode(src: &ImageSource) -> Result<image::DynamicImage, DataError> {
    match src {
        ImageSource::Path(p) => {
            let bytes = std::fs::read(p).map_err(|e| DataError::io(p, e))?;
            image::load_from_memory(&bytes).map_err(|e| DataError::Other { path: p.clone(), message: format!("cannot decode image: {e}") })
        }
        ImageSource::Bytes { bytes, name } => image::load_from_memory(bytes).map_err(|e| DataError::Other {
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

/// Raw bytes of an image source (for re-encoding or hashing).
pub fn read_bytes(src: &ImageSource) -> Result<Vec<u8>, DataError> {
    match src {
        ImageSource::Path(p) => std::fs::read(p).map_err(|e| DataError::io(p, e)),
        ImageSource::Bytes { bytes, .. } => Ok(bytes.to_vec()),
    }
}
