//! flipscope's side of the bench: each figure on one checkpoint, in this
//! process. Peak memory is the process's RSS high-water mark (reset before
//! each figure) on the CPU, nvidia-smi's view of this process on CUDA.

use super::inputs::{with_positions, BenchInputs, ANSWER_IDS, LETTER_IDS};
use crate::engine::config::PreprocessorConfig;
use crate::engine::lora::{self, LoraConfig};
use crate::engine::{memory, saliency, ModelInputs, PreparedPrompt, Qwen25VL, Rows};
use crate::train::example::{collate, TrainExample, IGNORE};
use crate::train::optim::AdamW;
use crate::train::trainer::train_step;
use anyhow::Result;
use serde_json::{json, Map, Value};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

pub const ALL: [&str; 6] = ["load", "prefill", "decode", "eval", "saliency", "train"];
pub const DECODE_TOKENS: usize = 64;

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
    let (mut model, _) = Qwen25VL::load(model_dir, device, kind)?;
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
    if want("train") {
        let cfg = LoraConfig::parse("r=16,alpha=32,dropout=0")?;
        lora::attach_new(&mut model, &cfg)?;
        lora::set_training(&mut model, true);
        let params = lora::parameters(&mut model);
        for (_, p) in &params {
            let _ = p.set_requires_grad(true);
        }
        let examples: Vec<TrainExample> = inputs.eval[..8].iter().map(answered).collect::<Result<_>>()?;
        let (tinputs, labels) = collate(&examples, pad, device);
        let mut opt = AdamW::new(&params, 0.0);
        memory::reset_peak();
        let batches = [(tinputs, labels)];
        let secs = timed(repeat, || train_step(&model, &batches, &params, &mut opt, 1e-4, 1.0, false, false).map(|_| ()))?;
        out.insert("train_s".into(), json!(secs));
        out.insert("train_peak_gib".into(), json!(peak_gib(device)));
    }
    Ok(out)
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
