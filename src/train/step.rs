//! One optimizer step on the answer-token loss (`train_step`: AdamW with
//! warmup + cosine decay, gradient clipping and accumulation).
//!
//! `--recompute` trades time for memory by recomputing decoder layers in the
//! backward pass (`recompute.rs`); `--batch 1 --grad-accum K` is the other way.

use super::example::IGNORE;
use super::optim::{clip_grad_norm, zero_grad, AdamW};
use crate::engine::{ModelInputs, Qwen25VL, Rows};
use anyhow::{bail, Result};
use tch::{Kind, Reduction, Tensor};

/// The vision tower's output for training: with gradients only when `vision_grad`.
pub(crate) fn training_vision(model: &Qwen25VL, inputs: &ModelInputs, vision_grad: bool) -> Option<Tensor> {
    inputs.pixel_values.as_ref().map(|p| {
        if vision_grad {
            model.vision_embeds(p, &inputs.grids)
        } else {
            let _guard = tch::no_grad_guard();
            model.vision_embeds(p, &inputs.grids)
        }
    })
}

/// The final hidden states of every position [B, L, D], as training needs
/// them: the vision tower runs without gradients unless `vision_grad`.
pub(crate) fn training_hidden(model: &Qwen25VL, inputs: &ModelInputs, vision_grad: bool) -> Result<Tensor> {
    let vision = training_vision(model, inputs, vision_grad);
    let mut cache = model.new_cache();
    model.prefill_with_vision(inputs, vision.as_ref(), &mut cache, Rows::All)
}

/// Sum of cross-entropy over the labelled positions (next-token: position t
/// predicts label t+1) and how many there are. Logits are computed only at
/// those positions. The vision tower runs without gradients unless `vision_grad`.
pub fn answer_loss_sum(model: &Qwen25VL, inputs: &ModelInputs, labels: &Tensor, vision_grad: bool) -> Result<(Tensor, i64)> {
    answer_loss_of_hidden(model, &training_hidden(model, inputs, vision_grad)?, labels)
}

/// `answer_loss_sum` from the final hidden states.
pub fn answer_loss_of_hidden(model: &Qwen25VL, hidden: &Tensor, labels: &Tensor) -> Result<(Tensor, i64)> {
    let (l, d) = (hidden.size()[1], hidden.size()[2]);
    let h = hidden.narrow(1, 0, l - 1).reshape([-1, d]);
    let targets = labels.narrow(1, 1, l - 1).reshape([-1]);
    let picked = targets.ne(IGNORE).nonzero().squeeze_dim(1);
    let count = picked.size()[0];
    if count == 0 {
        bail!("no labelled tokens in the batch");
    }
    let logits = model.logits(&h.index_select(0, &picked)).to_kind(Kind::Float);
    let loss = logits.cross_entropy_loss::<Tensor>(&targets.index_select(0, &picked), None, Reduction::Sum, IGNORE, 0.0);
    Ok((loss, count))
}

/// How one optimizer step runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepSettings {
    pub lr: f64,
    /// Gradients are clipped to this norm.
    pub max_grad_norm: f64,
    /// Whether the vision tower is trained (its forward keeps gradients).
    pub vision_grad: bool,
    /// Recompute decoder layers in the backward pass (`--recompute`).
    pub recompute: bool,
}

/// One optimizer step over micro-batches (gradient accumulation): each
/// micro-batch's loss is its sum over answer tokens divided by the answer
/// tokens of all of them, so the step's loss is the mean over the whole
/// batch however it is split. Then clipping and AdamW. Returns (loss, grad
/// norm before clipping).
pub fn train_step(
    model: &Qwen25VL,
    batches: &[(ModelInputs, Tensor)],
    params: &[(String, Tensor)],
    opt: &mut AdamW,
    settings: StepSettings,
) -> Result<(f64, f64)> {
    let StepSettings { lr, max_grad_norm, vision_grad, recompute } = settings;
    let answer_tokens: i64 = batches
        .iter()
        .map(|(_, labels)| i64::try_from(labels.narrow(1, 1, labels.size()[1] - 1).ne(IGNORE).sum(Kind::Int64)).unwrap_or(0))
        .sum();
    let mut loss_total = 0.0;
    for (inputs, labels) in batches {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<f64> {
            let scale = 1.0 / answer_tokens.max(1) as f64;
            if recompute {
                return super::recompute::loss_backward(model, inputs, vision_grad, &mut |hidden| {
                    Ok(answer_loss_of_hidden(model, hidden, labels)?.0 * scale)
                });
            }
            let (sum, _) = answer_loss_sum(model, inputs, labels, vision_grad)?;
            let loss = sum * scale;
            let value = f64::try_from(&loss)?;
            loss.backward();
            Ok(value)
        }));
        loss_total += match result {
            Ok(r) => r?,
            Err(p) => bail!("{}", crate::engine::panic_message(&*p)),
        };
    }
    let grad_norm = clip_grad_norm(params, max_grad_norm);
    opt.step(params, lr);
    zero_grad(params);
    Ok((loss_total, grad_norm))
}
