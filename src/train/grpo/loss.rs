//! GRPO's numbers, as TRL's `GRPOTrainer` documents them: group-normalised
//! advantages, per-token log-probabilities of the completions, the clipped
//! policy-ratio loss with an optional k3 KL term, and the three ways of
//! averaging it over tokens.

use crate::engine::{ModelInputs, Qwen25VL};
use anyhow::{bail, Result};
use tch::{Kind, Tensor};

/// How the per-token loss is averaged (`--loss`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// Summed over every completion token of the batch, divided by their count.
    #[default]
    Dapo,
    /// Each completion averaged over its own length, then over the batch.
    Grpo,
    /// Summed, divided by batch size times the maximum completion length.
    #[value(name = "dr_grpo", alias = "dr-grpo")]
    DrGrpo,
}

impl LossKind {
    pub fn name(self) -> &'static str {
        match self {
            LossKind::Dapo => "dapo",
            LossKind::Grpo => "grpo",
            LossKind::DrGrpo => "dr_grpo",
        }
    }
}

/// How rewards become advantages (`--scale-rewards`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleRewards {
    /// (r - mean) / (std + 1e-4) within each group.
    #[default]
    Group,
    /// r - mean only.
    None,
}

/// Advantages of `rewards` in groups of `group` consecutive completions,
/// and which groups carry signal (their rewards are not all equal). The
/// standard deviation is the unbiased one, as torch's `std` (and TRL) take it.
pub fn advantages(rewards: &[f64], group: usize, scale: ScaleRewards) -> (Vec<f64>, Vec<bool>) {
    assert!(group >= 1 && rewards.len().is_multiple_of(group), "{} rewards in groups of {group}", rewards.len());
    let mut adv = Vec::with_capacity(rewards.len());
    let mut signal = Vec::new();
    for g in rewards.chunks(group) {
        let mean = g.iter().sum::<f64>() / g.len() as f64;
        let var = if g.len() > 1 { g.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (g.len() - 1) as f64 } else { 0.0 };
        let std = var.sqrt();
        signal.push(g.iter().any(|r| *r != g[0]));
        adv.extend(g.iter().map(|r| match scale {
            ScaleRewards::Group => (r - mean) / (std + 1e-4),
            ScaleRewards::None => r - mean,
        }));
    }
    (adv, signal)
}

/// log pi(token) of every completion token: [B, L-1], aligned with
/// `input_ids[:, 1:]` (position t predicts token t+1), zero where
/// `completion[:, 1:]` is false. Logits are computed only at those positions.
pub fn completion_logps(model: &Qwen25VL, inputs: &ModelInputs, completion: &Tensor, vision_grad: bool) -> Result<Tensor> {
    Ok(completion_logps_entropy(model, inputs, completion, vision_grad)?.0)
}

/// `completion_logps`, and the policy's mean entropy (nats) over those tokens.
pub fn completion_logps_entropy(model: &Qwen25VL, inputs: &ModelInputs, completion: &Tensor, vision_grad: bool) -> Result<(Tensor, f64)> {
    completion_logps_of_hidden(model, &crate::train::step::training_hidden(model, inputs, vision_grad)?, &inputs.input_ids, completion)
}

/// `completion_logps_entropy` from the final hidden states and the ids.
pub fn completion_logps_of_hidden(model: &Qwen25VL, hidden: &Tensor, input_ids: &Tensor, completion: &Tensor) -> Result<(Tensor, f64)> {
    let (b, l, d) = (hidden.size()[0], hidden.size()[1], hidden.size()[2]);
    let mask = completion.narrow(1, 1, l - 1).reshape([-1]);
    let picked = mask.nonzero().squeeze_dim(1);
    if picked.size()[0] == 0 {
        bail!("no completion tokens in the batch");
    }
    let h = hidden.narrow(1, 0, l - 1).reshape([-1, d]).index_select(0, &picked);
    let targets = input_ids.narrow(1, 1, l - 1).reshape([-1]).index_select(0, &picked);
    let all = model.logits(&h).to_kind(Kind::Float).log_softmax(-1, Kind::Float);
    let entropy = {
        let _guard = tch::no_grad_guard();
        f64::try_from(-(all.exp() * &all).sum_dim_intlist(-1, false, Kind::Float).mean(Kind::Float)).unwrap_or(f64::NAN)
    };
    let logp = all.gather(1, &targets.unsqueeze(1), false).squeeze_dim(1);
    let flat = Tensor::zeros([b * (l - 1)], (Kind::Float, logp.device())).index_put(&[Some(picked)], &logp, false);
    Ok((flat.reshape([b, l - 1]), entropy))
}

/// The clipped surrogate's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Objective {
    pub loss: LossKind,
    /// Ratios are clipped to [1 - epsilon, 1 + epsilon_high].
    pub epsilon: f64,
    pub epsilon_high: f64,
    /// Weight of the k3 KL estimate against the reference policy (0: none).
    pub beta: f64,
    /// dr_grpo's denominator: batch size times this.
    pub max_completion_tokens: usize,
}

/// The denominators of a loss split over micro-batches: the completion
/// tokens and completions of the whole step, so that the parts add up to
/// the loss of the whole batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Totals {
    pub tokens: f64,
    pub rows: f64,
}

impl Totals {
    /// The totals of one batch on its own.
    pub fn of(mask: &Tensor) -> Totals {
        Totals { tokens: f64::try_from(mask.to_kind(Kind::Float).sum(Kind::Float)).unwrap_or(0.0), rows: mask.size()[0] as f64 }
    }
}

/// A step's loss and what it measured.
pub struct LossParts {
    pub loss: Tensor,
    /// Mean k3 KL over completion tokens (0 without a reference).
    pub kl: f64,
    /// Share of completion tokens whose ratio was clipped.
    pub clip_fraction: f64,
}

/// The loss over completions with per-token log-probs `logp` [B, T] (with
/// gradient), `old` [B, T] (the policy that sampled them; equal to `logp`
/// detached on policy), `reference` [B, T] for the KL term, `advantages`
/// [B] and the completion `mask` [B, T].
#[allow(clippy::too_many_arguments)]
pub fn loss(
    obj: &Objective,
    logp: &Tensor,
    old: &Tensor,
    reference: Option<&Tensor>,
    advantages: &Tensor,
    mask: &Tensor,
    totals: Totals,
) -> LossParts {
    let mask = mask.to_kind(Kind::Float);
    let adv = advantages.to_kind(Kind::Float).unsqueeze(1);
    let ratio = (logp - old).exp();
    let clipped = ratio.clamp(1.0 - obj.epsilon, 1.0 + obj.epsilon_high);
    let mut per_token = -(&ratio * &adv).minimum(&(&clipped * &adv));
    let tokens = mask.sum(Kind::Float).clamp_min(1.0);
    let (all_tokens, all_rows) = (totals.tokens.max(1.0), totals.rows.max(1.0));
    let mut kl_mean = 0.0;
    if let (Some(r), true) = (reference, obj.beta != 0.0) {
        let diff = r - logp;
        let kl = diff.exp() - &diff - 1.0;
        kl_mean = f64::try_from((&kl * &mask).sum(Kind::Float) / &tokens).unwrap_or(f64::NAN);
        per_token += kl * obj.beta;
    }
    let masked = &per_token * &mask;
    let loss = match obj.loss {
        LossKind::Dapo => masked.sum(Kind::Float) / all_tokens,
        LossKind::Grpo => {
            (masked.sum_dim_intlist(-1, false, Kind::Float) / mask.sum_dim_intlist(-1, false, Kind::Float).clamp_min(1.0)).sum(Kind::Float)
                / all_rows
        }
        LossKind::DrGrpo => masked.sum(Kind::Float) / (all_rows * obj.max_completion_tokens as f64),
    };
    let low = ratio.lt(1.0 - obj.epsilon).logical_and(&adv.lt(0.0));
    let high = ratio.gt(1.0 + obj.epsilon_high).logical_and(&adv.gt(0.0));
    let clip_fraction = f64::try_from((low.logical_or(&high).to_kind(Kind::Float) * &mask).sum(Kind::Float) / &tokens).unwrap_or(0.0);
    LossParts { loss, kl: kl_mean, clip_fraction }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advantages_by_hand() {
        // Group [1, 0, 0, 1]: mean 0.5, unbiased std sqrt(1/3).
        let (a, signal) = advantages(&[1.0, 0.0, 0.0, 1.0, 0.5, 0.5, 0.5, 0.5], 4, ScaleRewards::Group);
        let s = (1.0f64 / 3.0).sqrt() + 1e-4;
        assert!((a[0] - 0.5 / s).abs() < 1e-12 && (a[1] + 0.5 / s).abs() < 1e-12);
        assert_eq!(&a[4..], &[0.0; 4]);
        assert_eq!(signal, [true, false], "a group whose rewards are all equal carries no signal");
        let (a, _) = advantages(&[1.0, 0.0], 2, ScaleRewards::None);
        assert_eq!(a, [0.5, -0.5]);
    }

    #[test]
    fn loss_kinds_and_clipping_by_hand() {
        // Two completions of 2 and 1 tokens; on policy (ratio 1), no KL.
        let logp = Tensor::from_slice(&[-1.0f32, -2.0, -0.5, 0.0]).reshape([2, 2]);
        let mask = Tensor::from_slice(&[1.0f32, 1.0, 1.0, 0.0]).reshape([2, 2]);
        let adv = Tensor::from_slice(&[1.0f32, -2.0]);
        let obj = |loss| Objective { loss, epsilon: 0.2, epsilon_high: 0.2, beta: 0.0, max_completion_tokens: 4 };
        let value = |k| f64::try_from(loss(&obj(k), &logp, &logp, None, &adv, &mask, Totals::of(&mask)).loss).unwrap();
        // Per-token loss is -A: [-1, -1 | 2]. dapo: (-1 - 1 + 2) / 3 = 0; grpo: (-1 + 2) / 2 = 0.5; dr_grpo: 0 / (2 * 4).
        assert!(value(LossKind::Dapo).abs() < 1e-7);
        assert!((value(LossKind::Grpo) - 0.5).abs() < 1e-7);
        assert!(value(LossKind::DrGrpo).abs() < 1e-7);
        // Off policy: ratio e^0.5 > 1.2 with A > 0 is clipped, and so counted.
        let old = &logp - Tensor::from_slice(&[0.5f32, 0.0, 0.0, 0.0]).reshape([2, 2]);
        let parts = loss(&obj(LossKind::Dapo), &logp, &old, None, &adv, &mask, Totals::of(&mask));
        assert!((parts.clip_fraction - 1.0 / 3.0).abs() < 1e-6, "{}", parts.clip_fraction);
        // k3 KL is zero at the reference and positive away from it.
        let klobj = Objective { beta: 0.1, ..obj(LossKind::Dapo) };
        assert_eq!(loss(&klobj, &logp, &logp, Some(&logp), &adv, &mask, Totals::of(&mask)).kl, 0.0);
        assert!(loss(&klobj, &logp, &logp, Some(&(&logp + 0.3)), &adv, &mask, Totals::of(&mask)).kl > 0.0);
        // Split into two micro-batches with the step's totals, the parts add up to the whole.
        for k in [LossKind::Dapo, LossKind::Grpo, LossKind::DrGrpo] {
            let whole = value(k);
            let totals = Totals::of(&mask);
            let part = |i: i64| {
                let (l, m, a) = (logp.narrow(0, i, 1), mask.narrow(0, i, 1), adv.narrow(0, i, 1));
                f64::try_from(loss(&obj(k), &l, &l, None, &a, &m, totals).loss).unwrap()
            };
            assert!((part(0) + part(1) - whole).abs() < 1e-7, "{k:?}");
        }
    }
}
