//! What a training run leaves in its output folder, each file written
//! atomically: the adapter (PEFT layout) or the full weights, the optimizer
//! state, `trainer_state.json` (written last: it names the step the other
//! files belong to), and `metrics.jsonl` (appended line by line).

use super::optim::AdamW;
use crate::engine::lora::{self, LoraConfig};
use crate::engine::Qwen25VL;
use crate::fsutil::{atomic_write, atomic_write_with};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::Tensor;

pub const STATE_FILE: &str = "trainer_state.json";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
pub const METRICS_FILE: &str = "metrics.jsonl";

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

/// Saves what the run trains (adapter and/or full weights), then the
/// optimizer, then the state.
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
) -> Result<()> {
    if let Some(cfg) = lora_cfg {
        lora::save(model, cfg, out, &base.display().to_string())?;
    }
    if full {
        write_full(model, base, out)?;
    }
    let opt_tensors = opt.state_tensors(params);
    atomic_write_with(&out.join(OPTIMIZER_FILE), |tmp| Ok(Tensor::write_safetensors(&opt_tensors, tmp)?))?;
    atomic_write(&out.join(STATE_FILE), serde_json::to_string_pretty(state)?.as_bytes())
}
