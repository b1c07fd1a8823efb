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
