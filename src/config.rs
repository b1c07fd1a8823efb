//! Where flipscope keeps user files (`directories`), and the embedded
//! default dataset.

use anyhow::{Context, Result};
use directories::ProjectDirs;
use std::path::{Path, PathBuf};

pub fn dirs() -> Option<ProjectDirs> {
    ProjectDirs::from("", "", "flipscope")
}

pub fn config_dir() -> PathBuf {
    dirs().map(|d| d.config_dir().to_path_buf()).unwrap_or_else(|| PathBuf::from(".flipscope"))
}

pub fn cache_dir() -> PathBuf {
    dirs().map(|d| d.cache_dir().to_path_buf()).unwrap_or_else(|| PathBuf::from(".flipscope/cache"))
}

pub const DEMO_SEED: u64 = 7;
pub const DEMO_SIZE: usize = 60;
/// The demo scenes are the ones the demo model was trained to read: objects
/// drawn at scale 3 (at its 140-px input a scale-1 object is smaller than
/// one 14-px patch) and only the two objects each question names.
pub const DEMO_SCALE: f32 = 3.0;

/// The embedded default dataset: synthetic scenes generated once into the
/// cache (deterministic, so regenerating gives the same files).
pub fn demo_dataset() -> Result<PathBuf> {
    let dir = cache_dir().join(format!("demo-synth-{DEMO_SEED}-{DEMO_SIZE}-scale{DEMO_SCALE}-two-objects"));
    let file = dir.join("synth.jsonl");
    if !file.is_file() {
        let o = crate::data::synth::SynthOptions { seed: DEMO_SEED, scale: DEMO_SCALE, distractors: false, ..Default::default() };
        crate::data::synth::write(&dir, DEMO_SIZE, &o)?;
    }
    Ok(file)
}

/// ViewSpatial-Bench's 5,712 questions (its images are not included; see
/// assets/viewspatial/SOURCE.md), written once into the cache.
pub fn viewspatial_questions() -> Result<PathBuf> {
    let file = cache_dir().join("viewspatial").join("ViewSpatial-Bench.json");
    if !file.is_file() {
        write_viewspatial_questions(&file)?;
    }
    Ok(file)
}

/// Writes the embedded ViewSpatial-Bench.json to `file`.
pub fn write_viewspatial_questions(file: &std::path::Path) -> Result<()> {
    use std::io::Read;
    const GZ: &[u8] = include_bytes!("../assets/viewspatial/ViewSpatial-Bench.json.gz");
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(GZ).read_to_end(&mut text).context("the embedded ViewSpatial-Bench.json.gz")?;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    crate::fsutil::atomic_write(file, &text)
}

/// The embedded default model: a 2.4M-parameter model with the Qwen2.5-VL
/// architecture and its own small tokenizer, trained from scratch by
/// `flipscope train` on synthetic scenes (`make demo-model` reproduces it).
const DEMO_MODEL_FILES: [(&str, &[u8]); 6] = [
    (MODEL_CARD, include_bytes!("../assets/demo-model/flipscope.json")),
    ("config.json", include_bytes!("../assets/demo-model/config.json")),
    ("tokenizer.json", include_bytes!("../assets/demo-model/tokenizer.json")),
    ("tokenizer_config.json", include_bytes!("../assets/demo-model/tokenizer_config.json")),
    ("preprocessor_config.json", include_bytes!("../assets/demo-model/preprocessor_config.json")),
    ("model.safetensors", include_bytes!("../assets/demo-model/model.safetensors")),
];
/// Writes the demo model's tokenizer (and its chat template) into `dir`:
/// random checkpoints with the demo's special ids (the bench's tiny and
/// small configs) then load as an `Engine`, for the figures that decode text.
pub fn write_demo_tokenizer(dir: &Path) -> Result<()> {
    for (name, bytes) in DEMO_MODEL_FILES.iter().filter(|(n, _)| n.starts_with("tokenizer")) {
        std::fs::write(dir.join(name), bytes).with_context(|| format!("writing {}", dir.join(name).display()))?;
    }
    Ok(())
}

/// The file in a checkpoint folder that says how the model answers.
pub const MODEL_CARD: &str = "flipscope.json";

/// How a checkpoint answers a multiple-choice question: with the option's
/// letter (most instruction-tuned models), or with its words (the demo
/// model, trained to say "front-left").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswersWith {
    #[default]
    Letters,
    Words,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelCard {
    answers: AnswersWith,
}

/// What `model_dir/flipscope.json` declares (`{"answers": "words"}`);
/// letters when the file is absent. A file that does not parse is an error
/// naming it and the field.
pub fn declared_answers(model_dir: &Path) -> Result<AnswersWith> {
    let path = model_dir.join(MODEL_CARD);
    // Only a regular file of bounded size is read: a FIFO there must not hang the load.
    let Some(text) = crate::fsutil::read_optional_text(&path)? else { return Ok(AnswersWith::default()) };
    let card: ModelCard =
        serde_json::from_str(&text).with_context(|| format!("{}: expected {{\"answers\": \"letters\" | \"words\"}}", path.display()))?;
    Ok(card.answers)
}

/// `--model`: a checkpoint folder, or `demo` for the embedded demo model.
pub fn model_path(s: &str) -> std::result::Result<PathBuf, String> {
    match s {
        "demo" => demo_model().map_err(|e| format!("the embedded demo model: {e:#}")),
        _ => Ok(PathBuf::from(s)),
    }
}

/// What the status line calls the embedded model.
pub const DEMO_MODEL_LABEL: &str = "demo (2.4M-param Qwen2.5-VL architecture, trained from scratch on synthetic camera-perspective scenes)";

/// The embedded default model, written once into the cache under a name
/// that changes with its weights.
pub fn demo_model() -> Result<PathBuf> {
    use anyhow::Context;
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for (_, bytes) in &DEMO_MODEL_FILES {
        hash.update(bytes);
    }
    let tag: String = format!("{:x}", hash.finalize()).chars().take(12).collect();
    let dir = cache_dir().join(format!("demo-model-{tag}"));
    if dir.join("model.safetensors").is_file() {
        return Ok(dir);
    }
    // Written beside and renamed into place, so a killed first start leaves no half model.
    let tmp = cache_dir().join(format!("demo-model-{tag}.partial-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    for (name, bytes) in &DEMO_MODEL_FILES {
        std::fs::write(tmp.join(name), bytes).with_context(|| format!("writing {}", tmp.join(name).display()))?;
    }
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => Ok(dir),
        // Another flipscope won the race; use its copy.
        Err(_) if dir.join("model.safetensors").is_file() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(dir)
        }
        Err(e) => Err(e).with_context(|| format!("moving the demo model into {}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_declares_how_it_answers() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(declared_answers(dir.path()).unwrap(), AnswersWith::Letters, "no card: letters");
        std::fs::write(dir.path().join(MODEL_CARD), r#"{"answers": "words"}"#).unwrap();
        assert_eq!(declared_answers(dir.path()).unwrap(), AnswersWith::Words);
        std::fs::write(dir.path().join(MODEL_CARD), r#"{"answers": "sentences"}"#).unwrap();
        let err = format!("{:#}", declared_answers(dir.path()).unwrap_err());
        assert!(err.contains("flipscope.json") && err.contains("sentences"), "{err}");
        // A FIFO in its place is refused, not read (a read would wait for a writer forever).
        std::fs::remove_file(dir.path().join(MODEL_CARD)).unwrap();
        let fifo = std::ffi::CString::new(dir.path().join(MODEL_CARD).to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let err = format!("{:#}", declared_answers(dir.path()).unwrap_err());
        assert!(err.contains("flipscope.json") && err.contains("only regular files"), "{err}");
        let demo = model_path("demo").unwrap();
        assert_eq!(declared_answers(&demo).unwrap(), AnswersWith::Words, "the demo model answers in words");
        assert_eq!(model_path("ckpt/x").unwrap(), PathBuf::from("ckpt/x"));
    }
}
