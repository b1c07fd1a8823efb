//! One GRPO step: G completions per prompt sampled from one shared prefill,
//! their rewards, group-normalised advantages (groups without signal left
//! out), then `iterations` updates of the clipped objective over the
//! rollouts, one prompt's group per micro-batch.

use super::config::GrpoArgs;
use super::loss::{advantages, completion_logps, completion_logps_entropy, completion_logps_of_hidden, loss, Objective, Totals};
use super::rewards::{score, Rewards};
use crate::data::Sample;
use crate::engine::lora;
use crate::engine::{Engine, Flow, GenerateOptions, PreparedPrompt, Sampling, StopReason};
use crate::eval::PromptTemplate;
use crate::train::example::{self, TrainExample, IGNORE};
use crate::train::optim::{clip_grad_norm, zero_grad, AdamW};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// One sampled completion and what it earned.
pub struct Rollout {
    pub prompt_index: usize,
    /// Generated ids, with the stop token when the completion ended on one.
    pub tokens: Vec<i64>,
    pub text: String,
    pub rewards: Rewards,
}

/// What a GRPO step measured (a metrics.jsonl line's `grpo` field).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct GrpoStats {
    pub reward_mean: f64,
    pub reward_std: f64,
    pub accuracy_reward_mean: f64,
    pub accuracy_reward_std: f64,
    pub format_reward_mean: f64,
    pub format_reward_std: f64,
    /// Share of prompts whose completions all earned the same reward (left out).
    pub zero_spread: f64,
    pub kl: f64,
    pub clip_fraction: f64,
    pub completion_tokens_mean: f64,
    /// Mean entropy (nats) of the policy over completion tokens.
    pub entropy: f64,
    /// Share of rollouts whose answer is right.
    pub rollout_accuracy: f64,
}

fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len().max(1) as f64;
    let mean = xs.iter().sum::<f64>() / n;
    (mean, (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt())
}

/// The rollouts of `prompts`: `args.group` samples each, from one prefill,
/// the random stream of prompt `i`'s sample `j` fixed by `seed`, `i` and `j`.
pub fn rollouts(
    engine: &Engine,
    prompts: &[(Sample, PreparedPrompt)],
    args: &GrpoArgs,
    template: &PromptTemplate,
    seed: u64,
) -> Result<Vec<Rollout>> {
    let stop = engine.model.config.eos_token_ids.first().copied();
    let mut out = Vec::new();
    for (i, (sample, prompt)) in prompts.iter().enumerate() {
        let opts = GenerateOptions {
            max_new_tokens: args.max_completion_tokens,
            first_token_top_k: 0,
            sampling: Some(Sampling { temperature: args.temperature, top_p: args.top_p, seed: seed.wrapping_add(i as u64) }),
            // A vision placeholder in a completion would be taken for an image token when trained on.
            suppress: engine.model.config.vision_token_ids().to_vec(),
            ..Default::default()
        };
        let streams: Vec<u64> = (0..args.group as u64).collect();
        for g in engine.generate_shared(prompt, &streams, &opts, &mut |_| Flow::Continue)? {
            let mut tokens = g.tokens.clone();
            if let (StopReason::StopToken, Some(eos)) = (g.stop, stop) {
                tokens.push(eos);
            }
            let rewards = score(&args.reward, template, sample, &g.text);
            out.push(Rollout { prompt_index: i, tokens, text: g.text, rewards });
        }
    }
    Ok(out)
}

/// Where a step's updates come from.
pub struct StepInputs<'a> {
    pub prompts: &'a [(Sample, PreparedPrompt)],
    pub template: &'a PromptTemplate,
    pub args: &'a GrpoArgs,
    /// The reference policy for beta > 0 in full training; with LoRA the
    /// adapter is switched off instead.
    pub reference: Option<&'a Engine>,
    pub seed: u64,
    pub lr: f64,
    pub max_grad_norm: f64,
    pub vision_grad: bool,
    /// Recompute each decoder layer in the backward pass (`--recompute`).
    pub recompute: bool,
}

/// One GRPO step. Returns (loss of the last update, gradient norm, stats).
pub fn grpo_step(engine: &mut Engine, params: &[(String, Tensor)], opt: &mut AdamW, s: &StepInputs) -> Result<(f64, f64, GrpoStats)> {
    // Rollouts without dropout, as evaluation.
    lora::set_training(&mut engine.model, false);
    let rolled = {
        let _guard = tch::no_grad_guard();
        rollouts(engine, s.prompts, s.args, s.template, s.seed)
    };
    lora::set_training(&mut engine.model, true);
    learn(engine, params, opt, s, &rolled?)
}

/// The update half of a step: advantages from the rollouts' rewards, then
/// `iterations` updates of the clipped objective. `rolled[k].prompt_index`
/// points into `s.prompts`, each prompt holding `s.args.group` rollouts.
pub fn learn(
    engine: &mut Engine,
    params: &[(String, Tensor)],
    opt: &mut AdamW,
    s: &StepInputs,
    rolled: &[Rollout],
) -> Result<(f64, f64, GrpoStats)> {
    let args = s.args;
    let totals: Vec<f64> = rolled.iter().map(|r| r.rewards.total).collect();
    let (adv, signal) = advantages(&totals, args.group, args.scale_rewards);
    let pick = |f: fn(&Rewards) -> f64| rolled.iter().map(|r| f(&r.rewards)).collect::<Vec<_>>();
    let (reward_mean, reward_std) = mean_std(&totals);
    let (accuracy_reward_mean, accuracy_reward_std) = mean_std(&pick(|r| r.accuracy));
    let (format_reward_mean, format_reward_std) = mean_std(&pick(|r| r.format));
    let mut stats = GrpoStats {
        reward_mean,
        reward_std,
        accuracy_reward_mean,
        accuracy_reward_std,
        format_reward_mean,
        format_reward_std,
        zero_spread: signal.iter().filter(|s| !**s).count() as f64 / signal.len().max(1) as f64,
        completion_tokens_mean: rolled.iter().map(|r| r.tokens.len() as f64).sum::<f64>() / rolled.len().max(1) as f64,
        rollout_accuracy: accuracy_reward_mean,
        ..Default::default()
    };
    // One micro-batch per prompt with signal: its group's completions.
    let pad = engine.model.config.pad_token_id.unwrap_or(0);
    let device = engine.model.device;
    let mut groups: Vec<(crate::engine::ModelInputs, Tensor, Tensor)> = Vec::new();
    for (i, (sample, prompt)) in s.prompts.iter().enumerate().filter(|(i, _)| signal[*i]) {
        let rows: Vec<usize> = (0..rolled.len()).filter(|&k| rolled[k].prompt_index == i).collect();
        let examples: Vec<TrainExample> =
            rows.iter().map(|&k| example::with_answer(prompt.clone(), &rolled[k].tokens, &[], &sample.id)).collect();
        let (inputs, labels) = example::collate(&examples, pad, device);
        let a = Tensor::from_slice(&rows.iter().map(|&k| adv[k] as f32).collect::<Vec<_>>()).to_device(device);
        groups.push((inputs, labels.ne(IGNORE), a));
    }
    if groups.is_empty() {
        // Every group agreed: nothing to learn from this batch.
        return Ok((0.0, 0.0, stats));
    }
    let masks: Vec<Tensor> = groups.iter().map(|(_, c, _)| c.narrow(1, 1, c.size()[1] - 1)).collect();
    let totals = Totals {
        tokens: masks.iter().map(|m| f64::try_from(m.to_kind(Kind::Float).sum(Kind::Float)).unwrap_or(0.0)).sum(),
        rows: masks.iter().map(|m| m.size()[0] as f64).sum(),
    };
    let no_grad_logps = |engine: &Engine, inputs, mask| {
        let _guard = tch::no_grad_guard();
        completion_logps(&engine.model, inputs, mask, false)
    };
    // The sampling policy's log-probs, when updates will move away from it.
    let old: Vec<Option<Tensor>> = groups
        .iter()
        .map(|(inputs, c, _)| if args.iterations > 1 { no_grad_logps(engine, inputs, c).map(Some) } else { Ok(None) })
        .collect::<Result<_>>()?;
    let reference: Vec<Option<Tensor>> = if args.beta > 0.0 {
        let lora_ref = s.reference.is_none();
        if lora_ref {
            lora::set_enabled(&mut engine.model, false);
        }
        let refs: Result<Vec<Option<Tensor>>> =
            groups.iter().map(|(inputs, c, _)| no_grad_logps(s.reference.unwrap_or(engine), inputs, c).map(Some)).collect();
        if lora_ref {
            lora::set_enabled(&mut engine.model, true);
        }
        refs?
    } else {
        groups.iter().map(|_| None).collect()
    };
    let obj = Objective {
        loss: args.loss,
        epsilon: args.epsilon,
        epsilon_high: args.epsilon_high(),
        beta: args.beta,
        max_completion_tokens: args.max_completion_tokens,
    };
    let (mut loss_value, mut grad_norm) = (0.0, 0.0);
    for _ in 0..args.iterations {
        let (mut step_loss, mut kl, mut clip, mut entropy) = (0.0, 0.0, 0.0, 0.0);
        for (k, (inputs, completion, a)) in groups.iter().enumerate() {
            let mut measured = (0.0, 0.0, 0.0);
            let mut loss_of = |logp: Tensor, ent: f64| {
                let old_k = old[k].as_ref().map(Tensor::shallow_clone).unwrap_or_else(|| logp.detach());
                let parts = loss(&obj, &logp, &old_k, reference[k].as_ref(), a, &masks[k], totals);
                measured = (parts.kl, parts.clip_fraction, ent);
                parts.loss
            };
            step_loss += if s.recompute {
                let model = &engine.model;
                crate::train::recompute::loss_backward(model, inputs, s.vision_grad, &mut |hidden| {
                    let (logp, ent) = completion_logps_of_hidden(model, hidden, &inputs.input_ids, completion)?;
                    Ok(loss_of(logp, ent))
                })?
            } else {
                let (logp, ent) = completion_logps_entropy(&engine.model, inputs, completion, s.vision_grad)?;
                let l = loss_of(logp, ent);
                let value = f64::try_from(&l)?;
                l.backward();
                value
            };
            let share = masks[k].size()[0] as f64 / totals.rows;
            kl += measured.0 * share;
            clip += measured.1 * share;
            entropy += measured.2 * share;
        }
        grad_norm = clip_grad_norm(params, s.max_grad_norm);
        opt.step(params, s.lr);
        zero_grad(params);
        loss_value = step_loss;
        (stats.kl, stats.clip_fraction, stats.entropy) = (kl, clip, entropy);
    }
    Ok((loss_value, grad_norm, stats))
}
