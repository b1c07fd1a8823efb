//! What a training run leaves in its output folder. Each save is one
//! directory, `checkpoints/step-NNNNNN/`, holding the adapter (PEFT layout)
//! or the full weights, the optimizer state and `trainer_state.json`,
//! written under a temporary name and renamed into place: a kill during a
//! save leaves the previous checkpoint whole, never files from two steps.
//! The newest checkpoint's files are then hard-linked into the folder
//! itself (so `--adapter OUT` and `--model OUT` load it), `trainer_state.json`
//! last, and older checkpoints are removed. `metrics.jsonl` is appended line
//! by line; a resume cuts the lines after its checkpoint.

use super::optim::AdamW;
use crate::engine::lora::{self, LoraConfig};
use crate::engine::Qwen25VL;
use crate::fsutil::{atomic_write, atomic_write_with};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::Tensor;

pub const STATE_FILE: &str = "trainer_state.json";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
pub const METRICS_FILE: &str = "metrics.jsonl";
pub const CHECKPOINTS_DIR: &str = "checkpoints";

/// Files copied from the base checkpoint so a full-weight output loads on its own.
const SIDE_FILES: [&str; 8] = [
    "config.json",
    "generation_config.json",
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.json",
    "chat_template.jinja",
    "special_tokens_map.json",
];

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainerState {
    /// Optimizer steps done.
    pub step: usize,
    pub total_steps: usize,
    /// The epoch in progress and how many of its micro-batches are consumed.
    pub epoch: usize,
    pub micro_batches_done: usize,
    pub base_model: String,
    /// `lora`, `full:<scope>` or `lora+full:<scope>`.
    pub mode: String,
    pub lora: Option<String>,
    pub data: String,
    pub seed: u64,
    pub lr: f64,
    pub batch: usize,
    pub grad_accum: usize,
    pub loss: Option<f64>,
}

/// The newest whole checkpoint in a training output folder: its directory
/// and state. A folder from before step directories is its own checkpoint.
pub fn latest(out: &Path) -> Result<Option<(PathBuf, TrainerState)>> {
    let root = out.join(CHECKPOINTS_DIR);
    let mut steps: Vec<(usize, PathBuf)> = match std::fs::read_dir(&root) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                Some((name.strip_prefix("step-")?.parse().ok()?, e.path()))
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot list", root.display())),
    };
    steps.sort();
    if let Some((step, dir)) = steps.pop() {
        let state = TrainerState::read(&dir)?.with_context(|| format!("{}: no {STATE_FILE}", dir.display()))?;
        if state.step != step {
            anyhow::bail!("{}: {STATE_FILE} says step {}, the folder step {step}", dir.display(), state.step);
        }
        return Ok(Some((dir, state)));
    }
    Ok(TrainerState::read(out)?.map(|s| (out.to_path_buf(), s)))
}

impl TrainerState {
    pub fn read(dir: &Path) -> Result<Option<TrainerState>> {
        let path = dir.join(STATE_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok(Some(serde_json::from_str(&text).with_context(|| format!("{}: not a trainer state", path.display()))?))
    }
}

/// Writes every weight of `model` as a checkpoint loadable by transformers
/// and flipscope (canonical names, the stored shapes), with the base's side files.
pub fn write_full(model: &Qwen25VL, base: &Path, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let tensors: Vec<(String, Tensor)> =
        model.params.iter().map(|(n, t)| (n.clone(), t.detach().to_device(tch::Device::Cpu).contiguous())).collect();
    atomic_write_with(&out.join("model.safetensors"), |tmp| Ok(Tensor::write_safetensors(&tensors, tmp)?))?;
    // A sharded base's index would point at shards this folder does not have.
    let _ = std::fs::remove_file(out.join("model.safetensors.index.json"));
    if base != out {
        for name in SIDE_FILES {
            let src = base.join(name);
            if src.is_file() {
                let bytes = std::fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
                atomic_write(&out.join(name), &bytes)?;
            }
        }
    }
    Ok(())
}

/// Saves what the run trains (adapter and/or full weights), the optimizer
/// and the state as `checkpoints/step-N/`, then publishes it into `out`.
/// Returns the checkpoint's directory.
#[allow(clippy::too_many_arguments)]
pub fn save(
    model: &mut Qwen25VL,
    lora_cfg: Option<&LoraConfig>,
    full: bool,
    base: &Path,
    out: &Path,
    params: &[(String, Tensor)],
    opt: &AdamW,
    state: &TrainerState,
) -> Result<PathBuf> {
    let root = out.join(CHECKPOINTS_DIR);
    let name = format!("step-{:06}", state.step);
    let tmp = root.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let written = (|| -> Result<()> {
        if let Some(cfg) = lora_cfg {
            lora::save(model, cfg, &tmp, &base.display().to_string())?;
        }
        if full {
            write_full(model, base, &tmp)?;
        }
        let opt_tensors = opt.state_tensors(params);
        atomic_write_with(&tmp.join(OPTIMIZER_FILE), |t| Ok(Tensor::write_safetensors(&opt_tensors, t)?))?;
        atomic_write(&tmp.join(STATE_FILE), serde_json::to_string_pretty(state)?.as_bytes())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e).with_context(|| format!("saving step {} in {}", state.step, out.display()));
    }
    // Test hook: a kill after the files are written, before they count.
    crate::fsutil::kill_if("FLIPSCOPE_KILL_DURING_SAVE", state.step);
    let dest = root.join(&name);
    if dest.exists() {
        // The same step saved again: the new copy replaces it.
        let old = root.join(format!(".{name}.old-{}", std::process::id()));
        std::fs::rename(&dest, &old).with_context(|| format!("moving {} aside", dest.display()))?;
        let _ = std::fs::remove_dir_all(&old);
    }
    std::fs::rename(&tmp, &dest).with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))?;
    crate::fsutil::sync_dir(Some(&root));
    publish(&dest, out)?;
    prune(&root, &name);
    Ok(dest)
}

/// Links (or, where links are refused, copies) the checkpoint's files into
/// `out`, each by an atomic rename, `trainer_state.json` last.
fn publish(checkpoint: &Path, out: &Path) -> Result<()> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(checkpoint)
        .with_context(|| format!("{}: cannot list", checkpoint.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort_by_key(|p| (p.file_name().is_some_and(|n| n == STATE_FILE), p.clone()));
    for src in files {
        let name = src.file_name().expect("a listed file has a name");
        let dest = out.join(name);
        crate::fsutil::atomic_write_with(&dest, |tmp| {
            if std::fs::hard_link(&src, tmp).is_err() {
                std::fs::copy(&src, tmp).with_context(|| format!("copying {}", src.display()))?;
            }
            Ok(())
        })?;
    }
    if checkpoint.join("model.safetensors").is_file() {
        let _ = std::fs::remove_file(out.join("model.safetensors.index.json"));
    }
    Ok(())
}

/// Removes every checkpoint but `keep`, and temporaries left by a kill.
fn prune(root: &Path, keep: &str) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for e in entries.filter_map(|e| e.ok()) {
        if e.file_name() != keep {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Drops the metrics of steps after `step` (a resume redoes them).
pub fn truncate_metrics(out: &Path, step: usize) -> Result<usize> {
    let path = out.join(METRICS_FILE);
    let Some(text) = crate::fsutil::read_optional_text(&path)? else { return Ok(0) };
    let mut kept = String::new();
    let mut dropped = 0;
    for line in text.lines() {
        // A torn last line is dropped too: its step is unknown.
        let keep = serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| v["step"].as_u64().is_none_or(|s| s as usize <= step));
        if !keep {
            dropped += 1;
        } else {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    if dropped > 0 {
        atomic_write(&path, kept.as_bytes())?;
    }
    Ok(dropped)
}

/// Removes the eval runs of steps after `step`: they scored weights that
/// the resume will train again.
pub fn drop_later_evals(out: &Path, step: usize) {
    let Ok(entries) = std::fs::read_dir(out.join("evals")) else { return };
    for e in entries.filter_map(|e| e.ok()) {
        let later = e.file_name().to_string_lossy().strip_prefix("step-").and_then(|s| s.parse::<usize>().ok()).is_some_and(|s| s > step);
        if later {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
