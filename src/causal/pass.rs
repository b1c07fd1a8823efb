//! One prompt's traced pass: the decoder's input embeddings, every layer's
//! output and keys/values. Each experiment reads it or runs branches of it.

use super::regions::PromptRegions;
use crate::engine::text::{Branch, Traced};
use crate::engine::{Engine, PreparedPrompt, Qwen25VL};
use anyhow::{bail, Result};
use tch::{Kind, Tensor};

pub struct Pass {
    /// [1, T, D]: token embeddings with the vision tower's merged output at image tokens.
    pub embeds: Tensor,
    /// [3, 1, T]
    pub positions: Tensor,
    pub traced: Traced,
    pub regions: PromptRegions,
}

impl Pass {
    /// Runs `prompt` (no gradients) and keeps what the experiments read.
    pub fn run(engine: &Engine, prompt: &PreparedPrompt) -> Result<Pass> {
        Self::run_with(engine, prompt, None)
    }

    /// `run`, with `vision` [N, D] in place of the vision tower's output when given.
    pub fn run_with(engine: &Engine, prompt: &PreparedPrompt, vision: Option<&Tensor>) -> Result<Pass> {
        let _guard = tch::no_grad_guard();
        let model = &engine.model;
        let inputs = engine.collate(&[prompt]);
        let computed;
        let vision = match (vision, &inputs.pixel_values) {
            (Some(v), _) => Some(v),
            (None, Some(p)) => {
                computed = model.vision_embeds(p, &inputs.grids);
                Some(&computed)
            }
            (None, None) => None,
        };
        let embeds = model.input_embeds(&inputs, vision)?;
        let traced = model.text.trace(&embeds, &inputs.positions);
        let regions = regions(engine, prompt)?;
        Ok(Pass { embeds, positions: inputs.positions, traced, regions })
    }

    pub fn layers(&self) -> usize {
        self.traced.resid_post.len()
    }

    /// The residual stream entering `layer` [1, T, D] (TransformerLens's
    /// `resid_pre`): the embeddings for layer 0, else the layer before's `resid_post`.
    pub fn resid_pre(&self, layer: usize) -> &Tensor {
        if layer == 0 {
            &self.embeds
        } else {
            &self.traced.resid_post[layer - 1]
        }
    }

    /// The image tokens' input embeddings [N, D] (the vision tower's merged output).
    pub fn vision(&self) -> Tensor {
        let rows = Tensor::from_slice(&self.regions.image.iter().map(|&p| p as i64).collect::<Vec<_>>()).to_device(self.embeds.device());
        self.embeds.get(0).index_select(0, &rows)
    }

    /// Log-probabilities [V] f32 at the last position, as the model gives them.
    pub fn last_logprobs(&self, model: &Qwen25VL) -> Tensor {
        let last = self.traced.resid_post.last().expect("a model has layers").get(0).get(-1);
        lens(model, &last.unsqueeze(0)).get(0).log_softmax(-1, Kind::Float)
    }

    /// Runs `branches` of this pass from position `start` (see `TextModel::run_branches`)
    /// and returns each one's log-probabilities [V, vocab] f32 at the last position.
    pub fn branches_last_logprobs(
        &self,
        model: &Qwen25VL,
        start: i64,
        branches: &[Branch],
        blocked: &dyn Fn(usize, usize) -> Option<Tensor>,
    ) -> Tensor {
        let _guard = tch::no_grad_guard();
        let out = model.text.run_branches(&self.traced.cache, &self.positions, start, branches, blocked);
        lens(model, &out.select(1, -1)).log_softmax(-1, Kind::Float)
    }
}

/// The columns `ids` of `rows` [N, V] (log-probs or logits) as f64 on the CPU: [N][ids].
pub fn pick(rows: &Tensor, ids: &[i64]) -> Result<Vec<Vec<f64>>> {
    let idx = Tensor::from_slice(ids).to_device(rows.device());
    Ok(Vec::<Vec<f64>>::try_from(rows.index_select(1, &idx).to_kind(Kind::Double).to_device(tch::Device::Cpu))?)
}

/// Logits [N, vocab] f32 of hidden states [N, D]: the final norm, then lm_head.
pub fn lens(model: &Qwen25VL, hidden: &Tensor) -> Tensor {
    model.logits(&model.text.final_norm(hidden)).to_kind(Kind::Float)
}

/// The regions of `prompt` under `engine`'s config and tokenizer.
pub fn regions(engine: &Engine, prompt: &PreparedPrompt) -> Result<PromptRegions> {
    let cfg = &engine.model.config;
    let turn_end = engine.processor.tokenizer.token_to_id("<|im_end|>");
    PromptRegions::of(prompt, cfg.image_token_id, cfg.vision_end_token_id, turn_end, engine.processor.pre.merge_size)
}

/// Positions as a sorted, deduplicated list that must not be empty.
pub fn nonempty(what: &str, mut positions: Vec<usize>) -> Result<Vec<usize>> {
    positions.sort_unstable();
    positions.dedup();
    if positions.is_empty() {
        bail!("{what}: no positions in the prompt");
    }
    Ok(positions)
}
