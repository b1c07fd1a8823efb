//! Activation recomputation per decoder layer (`--recompute`), for long
//! completions and large images. tch cannot define a custom autograd
//! function, so it is done by hand: the forward pass runs without a graph
//! and keeps only each layer's input; the loss is taken from the top with a
//! graph; then, from the last layer down, each layer runs again with its
//! graph and the incoming gradient is pushed through it as the gradient of
//! (out · grad_out).sum(). Parameter gradients accumulate as a plain
//! backward pass leaves them. Dropout draws the same masks both times: each
//! layer is seeded alike in both passes.

use crate::engine::{ModelInputs, Qwen25VL};
use anyhow::Result;
use tch::{Kind, Tensor};

/// Computes `loss_of(final hidden states [B, L, D])` and backpropagates it
/// layer by layer, recomputing each; returns the loss.
pub fn loss_backward(
    model: &Qwen25VL,
    inputs: &ModelInputs,
    vision_grad: bool,
    loss_of: &mut dyn FnMut(&Tensor) -> Result<Tensor>,
) -> Result<f64> {
    let vision = super::step::training_vision(model, inputs, vision_grad);
    let embeds = model.input_embeds(inputs, vision.as_ref())?;
    let text = &model.text;
    let pass = text.layerwise(&embeds, &inputs.positions, inputs.valid.as_ref());
    // One seed per layer, drawn from torch's generator (so it follows the step's seed).
    let base = i64::try_from(Tensor::randint(i64::MAX, [1], (Kind::Int64, tch::Device::Cpu)))?;
    let seeded = |i: usize| tch::manual_seed(base.wrapping_add(i as i64 * 0x9e37_79b9));
    let n = text.num_layers();
    let mut kept = Vec::with_capacity(n);
    let mut h = embeds.detach();
    {
        let _guard = tch::no_grad_guard();
        for i in 0..n {
            kept.push(h.shallow_clone());
            seeded(i);
            h = text.layer(i, &h, &pass);
        }
    }
    let top = h.detach().set_requires_grad(true);
    let loss = loss_of(&text.final_norm(&top))?;
    let value = f64::try_from(&loss)?;
    loss.backward();
    let mut grad = top.grad();
    for i in (0..n).rev() {
        let x = kept[i].detach().set_requires_grad(true);
        seeded(i);
        let y = text.layer(i, &x, &pass);
        (y * &grad).sum(Kind::Float).backward();
        grad = x.grad();
        anyhow::ensure!(grad.defined(), "layer {i}: no gradient reached its input");
    }
    if embeds.requires_grad() {
        (embeds * grad).sum(Kind::Float).backward();
    }
    Ok(value)
}
