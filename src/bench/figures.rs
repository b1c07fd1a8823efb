//! flipscope's side of the bench: each figure on one checkpoint, in this
//! process. Peak memory is the process's RSS high-water mark (reset before
//! each figure) on the CPU, nvidia-smi's view of this process on CUDA.

use super::inputs::{with_positions, BenchInputs, ANSWER_IDS, LETTER_IDS};
use crate::data::Sample;
use crate::engine::config::PreprocessorConfig;
use crate::engine::lora::{self, LoraConfig};
use crate::engine::processor::Processor;
use crate::engine::{memory, saliency, Engine, Flow, GenerateOptions, ModelInputs, PreparedPrompt, Qwen25VL, Rows, Sampling};
use crate::eval::PromptTemplate;
use crate::train::example::{collate, TrainExample, IGNORE};
use crate::train::grpo::rewards::Rewards;
use crate::train::grpo::{self, GrpoArgs, LossKind, Method, RewardWeights, Rollout, ScaleRewards, StepInputs};
use crate::train::optim::AdamW;
use crate::train::step::{train_step, StepSettings};
use anyhow::Result;
use serde_json::{json, Map, Value};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

pub const ALL: [&str; 9] = ["load", "prefill", "decode", "eval", "saliency", "train", "rollout", "grpo", "knockout"];
pub const DECODE_TOKENS: usize = 64;
/// Rollouts: `GROUP` samples of `ROLLOUT_TOKENS` tokens for each of the
/// first `ROLLOUT_PROMPTS` eval prompts (bench/reference.py: the same).
pub const GROUP: usize = 8;
pub const ROLLOUT_TOKENS: usize = 64;
pub const ROLLOUT_PROMPTS: usize = 2;
/// The bench GRPO step's KL weight: the reference pass is part of the step.
pub const GRPO_BETA: f64 = 0.04;

/// Seconds per run: one untimed warm-up, then the fastest of `repeat` runs.
/// Each run does the same deterministic work and a shared VM's stalls only
/// ever add time (one stall put a small-checkpoint prefill's middle run 30%
/// over its fastest), so the fastest run is the figure's best estimate;
/// bench/reference.py does the same.
pub fn timed(repeat: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let mut runs = Vec::with_capacity(repeat.max(1));
    for _ in 0..repeat.max(1) {
        let start = Instant::now();
        f()?;
        runs.push(start.elapsed().as_secs_f64());
    }
    Ok(fastest(&runs))
}

/// The smallest value (NaN when there is none).
pub fn fastest(values: &[f64]) -> f64 {
    values.iter().copied().reduce(f64::min).unwrap_or(f64::NAN)
}

/// Peak memory since the last reset, in GiB.
fn peak_gib(device: Device) -> f64 {
    let bytes = match device {
        Device::Cuda(_) => memory::gpu_process_bytes(),
        _ => memory::peak_rss_bytes(),
    };
    memory::gib(bytes.unwrap_or(0))
}

fn sync(t: &Tensor) {
    let _ = t.sum(Kind::Float).double_value(&[]);
}

/// Measures `figures` (a subset of `ALL`) and returns them by name.
pub fn measure(
    model_dir: &std::path::Path,
    inputs: &BenchInputs,
    device: Device,
    kind: Kind,
    figures: &[String],
    repeat: usize,
) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    let want = |f: &str| figures.iter().any(|x| x == f);
    memory::reset_peak();
    let start = Instant::now();
    let (mut model, load_report) = Qwen25VL::load(model_dir, device, kind)?;
    let load_s = start.elapsed().as_secs_f64();
    out.insert("load_s".into(), json!(load_s));
    out.insert("load_peak_gib".into(), json!(peak_gib(device)));
    // Sizes for the roofline lines of the results: what a decode step must
    // read (the decoder's weights) and what a prefill must multiply.
    let numel = |keep: &dyn Fn(&str) -> bool| model.params.iter().filter(|(n, _)| keep(n)).map(|(_, t)| t.numel() as u64).sum::<u64>();
    let lm_params = numel(&|n| !n.starts_with("visual"));
    out.insert("lm_params".into(), json!(lm_params));
    out.insert("lm_weight_bytes".into(), json!(lm_params * kind.elt_size_in_bytes() as u64));
    out.insert("vision_params".into(), json!(numel(&|n| n.starts_with("visual"))));
    out.insert("prefill_tokens".into(), json!(inputs.prefill.len()));
    out.insert("prefill_patches".into(), json!(inputs.prefill.images[0].num_patches()));
    let pad = model.config.pad_token_id.unwrap_or(0);
    let batch = |ps: &[&PreparedPrompt]| ModelInputs::collate(ps, pad, device);
    if want("prefill") {
        let _guard = tch::no_grad_guard();
        let inputs = batch(&[&inputs.prefill]);
        // The first prefill on its own: it is where a lazily mapped checkpoint pays for its load.
        let prefill_once = || -> Result<()> {
            sync(&model.last_logits(&inputs)?);
            Ok(())
        };
        let start = Instant::now();
        prefill_once()?;
        let first = start.elapsed().as_secs_f64();
        out.insert("first_prefill_s".into(), json!(first));
        // What a user waits for: the model loaded and its first answer scored.
        out.insert("first_answer_s".into(), json!(load_s + first));
        out.insert("prefill_s".into(), json!(timed(repeat, prefill_once)?));
        out.insert("first_prefill_peak_gib".into(), json!(peak_gib(device)));
        // The vision tower on its own: says which half of a prefill a gap is in.
        if let Some(pixels) = &inputs.pixel_values {
            let vision_once = || -> Result<()> {
                sync(&model.vision_embeds(pixels, &inputs.grids));
                Ok(())
            };
            out.insert("prefill_vision_s".into(), json!(timed(repeat, vision_once)?));
        }
    }
    if want("decode") {
        let _guard = tch::no_grad_guard();
        let prompt = &inputs.prefill;
        // Only the decoding steps are timed: tokens/s is a decode figure.
        let decode_once = || -> Result<f64> {
            let mut cache = model.new_cache();
            let hidden = model.prefill(&batch(&[prompt]), &mut cache, Rows::Last)?;
            let mut token = model.logits(&hidden).reshape([-1]).argmax(0, false).int64_value(&[]);
            let start = Instant::now();
            for pos in (prompt.next_position()..).take(DECODE_TOKENS) {
                let h = model.step(&[token], &[pos], &mut cache);
                token = model.logits(&h).reshape([-1]).argmax(0, false).int64_value(&[]);
            }
            Ok(start.elapsed().as_secs_f64())
        };
        decode_once()?;
        let runs = (0..repeat.max(1)).map(|_| decode_once()).collect::<Result<Vec<f64>>>()?;
        let secs = fastest(&runs);
        out.insert("decode_tok_s".into(), json!(DECODE_TOKENS as f64 / secs));
    }
    if want("eval") {
        let _guard = tch::no_grad_guard();
        let letters = Tensor::from_slice(&LETTER_IDS).to_device(device);
        let mut picks = Vec::new();
        for b in [1usize, 8] {
            // Each pass covers all 64 prompts; the fastest pass, as for every figure.
            let secs = timed(repeat, || {
                picks.clear();
                for chunk in inputs.eval.chunks(b) {
                    let refs: Vec<&PreparedPrompt> = chunk.iter().collect();
                    // What `eval --mode score` does per batch: last logits, log-softmax, the letters' entries.
                    let lp = model.last_logits(&batch(&refs))?.to_kind(Kind::Float).log_softmax(-1, Kind::Float);
                    let picked = lp.index_select(1, &letters).argmax(-1, false);
                    picks.extend(Vec::<i64>::try_from(picked.to_device(Device::Cpu))?);
                }
                Ok(())
            })?;
            out.insert(format!("eval_b{b}_sps"), json!(inputs.eval.len() as f64 / secs));
        }
        // The letters chosen (batch 8): both sides must agree, or they were not given the same work.
        out.insert("eval_picks".into(), json!(picks));
    }
    if want("saliency") {
        let inputs1 = batch(&[&inputs.prefill]);
        let pixels = inputs1.pixel_values.as_ref().expect("an image").shallow_clone();
        let target = saliency::SaliencyTarget::Token(LETTER_IDS[0]);
        memory::reset_peak();
        let secs = timed(repeat, || {
            let (_, grad) = saliency::pixel_gradient_of(&model, &inputs1, &pixels, &target)?;
            sync(&grad);
            Ok(())
        })?;
        out.insert("saliency_s".into(), json!(secs));
        out.insert("saliency_peak_gib".into(), json!(peak_gib(device)));
    }
    let mut params = Vec::new();
    if want("train") {
        params = attach_lora(&mut model)?;
        let examples: Vec<TrainExample> = inputs.eval[..8].iter().map(answered).collect::<Result<_>>()?;
        let (tinputs, labels) = collate(&examples, pad, device);
        let mut opt = AdamW::new(&params, 0.0);
        memory::reset_peak();
        let batches = [(tinputs, labels)];
        let secs = timed(repeat, || {
            train_step(
                &model,
                &batches,
                &params,
                &mut opt,
                StepSettings { lr: 1e-4, max_grad_norm: 1.0, vision_grad: false, recompute: false },
            )
            .map(|_| ())
        })?;
        out.insert("train_s".into(), json!(secs));
        out.insert("train_peak_gib".into(), json!(peak_gib(device)));
    }
    if want("rollout") || want("grpo") || want("knockout") {
        // Both sides sample with the adapter on, as a GRPO policy does
        // (peft's wrapping in the train figure changes transformers' model too).
        if params.is_empty() {
            params = attach_lora(&mut model)?;
        }
        let processor = Processor::load(model_dir, &model.config)?;
        let answers = crate::config::declared_answers(model_dir)?;
        let mut engine = Engine { dir: model_dir.into(), model, processor, load_report, adapter: None, answers };
        policy_figures(&mut engine, &params, inputs, &want, repeat, &mut out)?;
    }
    Ok(out)
}

/// LoRA r=16 on every language-model projection, trainable.
fn attach_lora(model: &mut Qwen25VL) -> Result<Vec<(String, Tensor)>> {
    lora::attach_new(model, &LoraConfig::parse("r=16,alpha=32,dropout=0")?)?;
    lora::set_training(model, true);
    let params = lora::parameters(model);
    for (_, p) in &params {
        let _ = p.set_requires_grad(true);
    }
    Ok(params)
}

/// `GROUP` sampled completions of exactly `ROLLOUT_TOKENS` tokens (no stop
/// token ends one early, so both sides decode the same number) from one prefill.
fn sample_group(engine: &Engine, prompt: &PreparedPrompt) -> Result<Vec<crate::engine::Generation>> {
    let opts = GenerateOptions {
        max_new_tokens: ROLLOUT_TOKENS,
        sampling: Some(Sampling { temperature: 1.0, top_p: 1.0, seed: 0 }),
        stop_ids: Some(Vec::new()),
        first_token_top_k: 0,
        // As GRPO's rollouts: no vision placeholder in a completion (transformers: suppress_tokens).
        suppress: engine.model.config.vision_token_ids().to_vec(),
        ..Default::default()
    };
    let streams: Vec<u64> = (0..GROUP as u64).collect();
    let gens = engine.generate_shared(prompt, &streams, &opts, &mut |_| Flow::Continue)?;
    anyhow::ensure!(gens.iter().all(|g| g.tokens.len() == ROLLOUT_TOKENS), "a bench rollout stopped early");
    Ok(gens)
}

/// Rollout throughput and one whole GRPO step (rollouts, then the update
/// with the KL reference pass), on the LoRA policy.
fn policy_figures(
    engine: &mut Engine,
    params: &[(String, Tensor)],
    inputs: &BenchInputs,
    want: &dyn Fn(&str) -> bool,
    repeat: usize,
    out: &mut Map<String, Value>,
) -> Result<()> {
    let device = engine.model.device;
    if want("rollout") {
        lora::set_training(&mut engine.model, false);
        memory::reset_peak();
        let secs = timed(repeat, || {
            for prompt in &inputs.eval[..ROLLOUT_PROMPTS] {
                sample_group(engine, prompt)?;
            }
            Ok(())
        })?;
        out.insert("rollout_tok_s".into(), json!((ROLLOUT_PROMPTS * GROUP * ROLLOUT_TOKENS) as f64 / secs));
        out.insert("rollout_peak_gib".into(), json!(peak_gib(device)));
    }
    if want("grpo") {
        let args = GrpoArgs {
            method: Method::Grpo,
            group: GROUP,
            temperature: 1.0,
            top_p: 1.0,
            max_completion_tokens: ROLLOUT_TOKENS,
            reward: RewardWeights { accuracy: 1.0, format: 0.0 },
            scale_rewards: ScaleRewards::Group,
            loss: LossKind::Dapo,
            epsilon: 0.2,
            epsilon_high: None,
            iterations: 1,
            beta: GRPO_BETA,
        };
        let prompts = [(Sample::new("bench", "bench"), inputs.eval[0].clone())];
        let template = PromptTemplate::default_prompt();
        let s = StepInputs {
            prompts: &prompts,
            template: &template,
            args: &args,
            reference: None,
            seed: 0,
            lr: 1e-4,
            max_grad_norm: 1.0,
            vision_grad: false,
            recompute: false,
        };
        let mut opt = AdamW::new(params, 0.0);
        memory::reset_peak();
        let secs = timed(repeat, || {
            lora::set_training(&mut engine.model, false);
            let gens = {
                let _guard = tch::no_grad_guard();
                sample_group(engine, &prompts[0].1)?
            };
            lora::set_training(&mut engine.model, true);
            // Random weights answer nothing right: the rewards are fixed
            // (alternately 1 and 0), so the group always has signal.
            let rolled: Vec<Rollout> = gens
                .into_iter()
                .enumerate()
                .map(|(j, g)| {
                    let r = (j % 2) as f64;
                    Rollout { prompt_index: 0, tokens: g.tokens, text: g.text, rewards: Rewards { accuracy: r, format: 0.0, total: r } }
                })
                .collect();
            grpo::learn(engine, params, &mut opt, &s, &rolled).map(|_| ())
        })?;
        out.insert("grpo_s".into(), json!(secs));
        out.insert("grpo_peak_gib".into(), json!(peak_gib(device)));
    }
    if want("knockout") {
        knockout_figures(engine, &inputs.prefill, repeat, out)?;
    }
    Ok(())
}

/// A knockout sweep (window 1, every layer, three edge groups) on the
/// prefill prompt: batched variants against one full forward per cell,
/// both in flipscope, each including the traced pass it starts from.
fn knockout_figures(engine: &mut Engine, prompt: &PreparedPrompt, repeat: usize, out: &mut Map<String, Value>) -> Result<()> {
    use crate::causal::{knockout, knockout_naive, EdgeGroup, KnockoutSpec, Pass};
    lora::set_enabled(&mut engine.model, false);
    let edges = [EdgeGroup::ImageToLast, EdgeGroup::QuestionToLast, EdgeGroup::ImageToQuestion];
    let spec = KnockoutSpec { window: 1, edges: &edges, target: None, gold: None, boxed: None };
    let engine = &*engine;
    let mut sweeps = Vec::new();
    let batched = timed(repeat, || {
        sweeps.push(knockout(engine, &Pass::run(engine, prompt)?, &spec)?);
        Ok(())
    })?;
    let naive = timed(repeat, || {
        sweeps.push(knockout_naive(engine, &Pass::run(engine, prompt)?, prompt, &spec)?);
        Ok(())
    })?;
    // Same work: the last batched and naive sweeps agree.
    let (a, b) = (&sweeps[repeat.max(1)], &sweeps[sweeps.len() - 1]);
    let diff = a.logprob.iter().flatten().zip(b.logprob.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    out.insert("knockout_cells".into(), json!(a.logprob.len() * edges.len()));
    out.insert("knockout_batched_s".into(), json!(batched));
    out.insert("knockout_naive_s".into(), json!(naive));
    out.insert("knockout_max_diff".into(), json!(diff));
    Ok(())
}

/// A training example: the prompt followed by `ANSWER_IDS`, loss on those only.
fn answered(p: &PreparedPrompt) -> Result<TrainExample> {
    let mut ids = p.input_ids.clone();
    ids.extend(ANSWER_IDS);
    let mut labels = vec![IGNORE; p.input_ids.len()];
    labels.extend(ANSWER_IDS);
    let tokens = with_positions(ids, p.images[0].clone(), PreprocessorConfig::default().merge_size)?;
    Ok(TrainExample { id: "bench".into(), tokens, labels })
}
