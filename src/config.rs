//! Where flipscope keeps user files (`directories`), and the embedded
//! default dataset.

use anyhow::Result;
use directories::ProjectDirs;
use std::path::PathBuf;

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

/// The embedded default dataset: synthetic scenes generated once into the
/// cache (deterministic, so regenerating gives the same files).
pub fn demo_dataset() -> Result<PathBuf> {
    let dir = cache_dir().join(format!("demo-synth-{DEMO_SEED}-{DEMO_SIZE}"));
    let file = dir.join("synth.jsonl");
    if !file.is_file() {
        crate::data::synth::write(&dir, DEMO_SIZE, DEMO_SEED)?;
    }
    Ok(file)
}

/// The embedded default model's config and tokenizer: a small model with the
/// Qwen2.5-VL architecture (4 LM layers, a 4-block vision tower).
const DEMO_MODEL_FILES: [(&str, &str); 4] = [
    ("config.json", include_str!("../assets/demo-model/config.json")),
    ("tokenizer.json", include_str!("../assets/demo-model/tokenizer.json")),
    ("tokenizer_config.json", include_str!("../assets/demo-model/tokenizer_config.json")),
    ("preprocessor_config.json", include_str!("../assets/demo-model/preprocessor_config.json")),
];
pub const DEMO_MODEL_SEED: i64 = 7;
/// What the status line calls the embedded model.
pub const DEMO_MODEL_LABEL: &str = "demo (tiny Qwen2.5-VL architecture, random weights)";

/// The embedded default model, written once into the cache: random weights
/// (seeded, so the same everywhere) until a trained one ships.
pub fn demo_model() -> Result<PathBuf> {
    use anyhow::Context;
    let dir = cache_dir().join(format!("demo-model-{DEMO_MODEL_SEED}"));
    if dir.join("model.safetensors").is_file() {
        return Ok(dir);
    }
    // Written beside and renamed into place, so a killed first start leaves no half model.
    let tmp = cache_dir().join(format!("demo-model-{DEMO_MODEL_SEED}.partial-{}", std::process::id()));
    let config: serde_json::Value = serde_json::from_str(DEMO_MODEL_FILES[0].1)?;
    crate::engine::random_checkpoint::write(&config, &tmp, tch::Kind::Float, u64::MAX, DEMO_MODEL_SEED)?;
    for (name, text) in &DEMO_MODEL_FILES[1..] {
        std::fs::write(tmp.join(name), text).with_context(|| format!("writing {}", tmp.join(name).display()))?;
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
