//! Datasets: the [`Sample`] model, one loader per on-disk format, synthetic
//! scenes, flip augmentation and image decoding. Pure: never imports
//! `engine/`.

pub mod draw;
pub mod error;
pub mod flip;
pub mod images;
pub mod loaders;
pub mod read;
pub mod sample;
pub mod spec;
pub mod stats;
pub mod synth;
pub mod table;
pub mod visual_prompt;

pub use error::{DataError, RecordIssue};
pub use sample::{AnswerOption, AnswerStyle, BoundingBox, ImageSource, Perspective, Sample};
pub use spec::{DatasetSpec, Format};

use std::path::{Path, PathBuf};

/// A loaded dataset with the records that could not be read.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub format: Format,
    pub path: PathBuf,
    pub root: PathBuf,
    pub samples: Vec<Sample>,
    pub issues: Vec<RecordIssue>,
}

impl Dataset {
    /// Images that do not exist on disk: (count, first few paths).
    pub fn missing_images(&self, show: usize) -> (usize, Vec<String>) {
        let mut n = 0;
        let mut first = Vec::new();
        for img in self.samples.iter().flat_map(|s| &s.images) {
            if img.is_missing() {
                n += 1;
                if first.len() < show {
                    first.push(img.label());
                }
            }
        }
        (n, first)
    }
}

/// Loads a dataset from a spec string (`[KIND:]PATH[#options]`).
pub fn load(spec: &str) -> Result<Dataset, DataError> {
    load_spec(&DatasetSpec::parse(spec)?)
}

pub fn load_spec(spec: &DatasetSpec) -> Result<Dataset, DataError> {
    if !spec.path.exists() {
        return Err(DataError::io(&spec.path, std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder")));
    }
    let path = if spec.path.is_dir() { spec::resolve_dir(&spec.path)? } else { spec.path.clone() };
    let format = match spec.format {
        Some(f) => f,
        None => spec::detect(&path)?,
    };
    let root = spec.root.clone().unwrap_or_else(|| path.parent().map(Path::to_path_buf).unwrap_or_default());
    let name = loaders_name(&path, format);
    let mut ctx = loaders::LoadCtx { spec, path: path.clone(), root: root.clone(), dataset: name.clone(), issues: Vec::new() };
    let mut samples = loaders::load_samples(format, &mut ctx)?;
    if samples.is_empty() && !ctx.issues.is_empty() {
        return Err(DataError::NoSamples { path, issues: ctx.issues.len(), first: ctx.issues[0].to_string() });
    }
    if let Some(split) = &spec.split {
        samples.retain(|s| s.split.as_deref() == Some(split.as_str()));
    }
    Ok(Dataset { name, format, path, root, samples, issues: ctx.issues })
}

fn loaders_name(path: &Path, format: Format) -> String {
    match format {
        Format::ViewSpatial => "ViewSpatial-Bench".to_string(),
        _ => format!("{}:{}", format.name(), loaders::file_stem(path)),
    }
}
