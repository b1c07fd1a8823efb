//! Datasets: the [`Sample`] model, one loader per on-disk format, synthetic
//! scenes, flip augmentation and image decoding. Pure: never imports
//! `engine/`.

pub mod draw;
pub mod error;
pub mod filter;
pub mod flip;
pub mod images;
pub mod loaders;
pub mod read;
pub mod sample;
pub mod source;
pub mod spec;
pub mod stats;
pub mod synth;
pub mod table;
pub mod visual_prompt;

pub use error::{DataError, RecordIssue};
pub use filter::SampleFilter;
pub use images::load_images;
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

/// Loads a dataset from a spec string (`[KIND:]PATH[#options]`, or
/// `synth:N[#seed=S,lean=left|right,split=train|test,kinds=camera+person+vertical,distractors=0,answer=words,options=0,scale=K]`
/// for scenes drawn in memory).
pub fn load(spec: &str) -> Result<Dataset, DataError> {
    if spec.trim().is_empty() {
        return Err(DataError::EmptySpec);
    }
    if let Some(ds) = load_synth(spec)? {
        return Ok(ds);
    }
    load_spec(&DatasetSpec::parse(spec)?)
}

/// The most scenes a `synth:N` spec draws in memory.
pub const MAX_SYNTH_SCENES: usize = 200_000;

/// The procedural `synth:N` spec; None when `spec` is not one.
fn load_synth(spec: &str) -> Result<Option<Dataset>, DataError> {
    let Some(rest) = spec.strip_prefix("synth:") else { return Ok(None) };
    let (count, opts) = rest.split_once('#').unwrap_or((rest, ""));
    let Ok(n) = count.trim().parse::<usize>() else { return Ok(None) };
    let bad = |message: String| DataError::Other { path: PathBuf::from(spec), message };
    // Scenes are drawn into memory up front: a count without bound is a way to run out of it.
    if n > MAX_SYNTH_SCENES {
        return Err(bad(format!("synth:{n} is more than {MAX_SYNTH_SCENES} scenes; write them with `data synth` in parts instead")));
    }
    let kv = |e: crate::kv::KvError| bad(format!("spec option {e}"));
    let mut o = synth::SynthOptions::default();
    for pair in crate::kv::pairs(opts, &[]).map_err(kv)? {
        let v = pair.value.as_str();
        match pair.key.as_str() {
            "seed" => o.seed = pair.parse("a whole number").map_err(kv)?,
            "lean" => o.lean = synth::Lean::parse(v).ok_or_else(|| bad(format!("lean=`{v}` is not none, left or right")))?,
            "split" => o.split = Some(v.to_string()),
            "kinds" => {
                o.kinds = v.split('+').map(str::to_string).collect();
                if let Some(k) = o.kinds.iter().find(|k| !["camera", "person", "vertical"].contains(&k.as_str())) {
                    return Err(bad(format!("kinds: `{k}` is not camera, person or vertical")));
                }
            }
            "distractors" => o.distractors = pair.switch().map_err(kv)?,
            "answer" => {
                o.answer_words = match v {
                    "letter" => false,
                    "words" => true,
                    _ => return Err(bad(format!("answer=`{v}` is not letter or words"))),
                }
            }
            "options" => o.options = pair.switch().map_err(kv)?,
            "headings" => {
                o.headings = v
                    .split('/')
                    .map(|h| {
                        crate::spatial::Heading::ALL.into_iter().find(|x| x.name() == h.trim()).ok_or_else(|| {
                            bad(format!(
                                "headings: `{h}` is not front, front-right, right, back-right, back, back-left, left or front-left"
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()?
            }
            "scale" => {
                o.scale = v
                    .parse::<f32>()
                    .ok()
                    .filter(|s| (1.0..=synth::MAX_SCALE).contains(s))
                    .ok_or_else(|| bad(format!("scale=`{v}` is not a number from 1 to {}", synth::MAX_SCALE)))?
            }
            _ => {
                let known = ["seed", "lean", "split", "kinds", "distractors", "answer", "options", "headings", "scale"];
                return Err(bad(format!("synth: {}", pair.unknown(&known))));
            }
        }
    }
    let samples = synth::in_memory(n, &o).map_err(|e| bad(format!("{e:#}")))?;
    Ok(Some(Dataset {
        name: format!("synth:{n}"),
        format: Format::Generic,
        path: PathBuf::from(spec),
        root: PathBuf::new(),
        samples,
        issues: Vec::new(),
    }))
}

pub fn load_spec(spec: &DatasetSpec) -> Result<Dataset, DataError> {
    if !spec.path.exists() {
        return Err(DataError::io(&spec.path, std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder")));
    }
    let path = if spec.path.is_dir() { spec::resolve_dir(&spec.path)? } else { spec.path.clone() };
    // Images resolve against the named file's folder, not the staged copy's.
    let root = spec.root.clone().unwrap_or_else(|| path.parent().map(Path::to_path_buf).unwrap_or_default());
    let staged = source::stage(&path)?;
    // Errors name the file the user gave, not its temporary copy.
    let named = |e: DataError| e.renamed(&staged.path, &path);
    let format = match spec.format {
        Some(f) => f,
        None => spec::detect(&staged.path).map_err(named)?,
    };
    let name = loaders_name(&staged.path, format);
    let mut ctx = loaders::LoadCtx {
        spec,
        path: staged.path.clone(),
        origin: path.clone(),
        root: root.clone(),
        dataset: name.clone(),
        issues: Vec::new(),
    };
    let mut samples = loaders::load_samples(format, &mut ctx).map_err(named)?;
    for issue in &mut ctx.issues {
        if issue.path == staged.path {
            issue.path = path.clone();
        }
    }
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
