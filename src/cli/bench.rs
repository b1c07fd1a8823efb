//! `flipscope bench`: engine measurements. `prefill` times one image plus a
//! question through the vision tower and the decoder, with synthetic inputs
//! so any checkpoint (even one without a tokenizer) can be measured.

use super::engine_args::EngineArgs;
use crate::engine::{
    config::PreprocessorConfig, device, memory, positions::rope_index, processor::smart_resize, ModelInputs, PreparedPrompt, Qwen25VL,
};
use anyhow::Result;
use clap::{Args, Subcommand};
use std::time::Instant;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Load time and peak RSS, then prefill latency for one image + text.
    Prefill(PrefillArgs),
}

#[derive(Args, Debug)]
pub struct PrefillArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Square image side in pixels.
    #[arg(long, default_value_t = 448)]
    pub image_size: i64,
    /// Question tokens after the image.
    #[arg(long, default_value_t = 40)]
    pub text_tokens: usize,
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Torch intra-op threads (default: libtorch's choice).
    #[arg(long)]
    pub threads: Option<i32>,
}

pub fn run(cmd: &BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Prefill(a) => prefill(a),
    }
}

/// A chat-shaped prompt of random ids: system + vision block + question.
fn synthetic_prompt(model: &Qwen25VL, image_size: i64, text_tokens: usize) -> Result<PreparedPrompt> {
    let cfg = &model.config;
    let pre = PreprocessorConfig::default();
    let (h, w) = smart_resize(image_size, image_size, pre.factor(), pre.min_pixels, pre.max_pixels)?;
    let grid = [1, h / pre.patch_size, w / pre.patch_size];
    let n_patches = (grid[1] * grid[2]) as usize;
    let n_tokens = n_patches / (pre.merge_size * pre.merge_size) as usize;
    let text = |n: usize, salt: i64| (0..n as i64).map(move |i| (i * 7919 + salt) % 1000 + 100);
    let mut ids: Vec<i64> = text(20, 1).collect();
    ids.push(cfg.vision_start_token_id);
    ids.extend(std::iter::repeat_n(cfg.image_token_id, n_tokens));
    ids.push(cfg.vision_end_token_id);
    ids.extend(text(text_tokens, 2));
    ids.extend(text(5, 3));
    let (positions, rope_delta) = rope_index(&ids, cfg.image_token_id, &[grid], pre.merge_size)?;
    let values: Vec<f32> = (0..n_patches * 1176).map(|i| ((i * 2654435761usize) % 1000) as f32 / 500.0 - 1.0).collect();
    let patches = crate::engine::processor::ImagePatches {
        values,
        patch_dim: 1176,
        grid,
        resized: (w as u32, h as u32),
        original: (image_size as u32, image_size as u32),
    };
    Ok(PreparedPrompt { chat_text: String::new(), input_ids: ids, images: vec![patches], positions, rope_delta })
}

fn prefill(a: &PrefillArgs) -> Result<()> {
    if let Some(t) = a.threads {
        tch::set_num_threads(t);
    }
    let dev = device::parse(&a.engine.device)?;
    let kind = device::parse_dtype(&a.engine.dtype, dev)?;
    memory::reset_peak();
    let before = memory::rss_bytes().unwrap_or(0);
    let (model, report) = Qwen25VL::load(&a.engine.model, dev, kind)?;
    let peak = memory::peak_rss_bytes().unwrap_or(0);
    println!("device           {dev:?} {kind:?}, {} threads", tch::get_num_threads());
    println!("load             {:.2} s, weights {:.3} GiB", report.seconds, memory::gib(report.weight_bytes));
    println!(
        "load peak RSS    {:.3} GiB (before {:.3} GiB, growth {:.3} GiB = {:.3}x the weights)",
        memory::gib(peak),
        memory::gib(before),
        memory::gib(peak.saturating_sub(before)),
        peak.saturating_sub(before) as f64 / report.weight_bytes.max(1) as f64
    );
    let prompt = synthetic_prompt(&model, a.image_size, a.text_tokens)?;
    println!(
        "prompt           {} tokens ({} image tokens, grid {:?})",
        prompt.len(),
        prompt.images[0].num_tokens(2),
        prompt.images[0].grid
    );
    let _guard = tch::no_grad_guard();
    let mut times = Vec::new();
    for _ in 0..a.repeat.max(1) + 1 {
        let start = Instant::now();
        let inputs = ModelInputs::collate(&[&prompt], 0, dev);
        let logits = model.last_logits(&inputs)?;
        let _ = logits.double_value(&[0, 0]); // waits for the device
        times.push(start.elapsed().as_secs_f64());
    }
    let warm = &times[1..];
    let mean = warm.iter().sum::<f64>() / warm.len() as f64;
    let min = warm.iter().copied().fold(f64::INFINITY, f64::min);
    println!("prefill          first {:.3} s, then mean {mean:.3} s, min {min:.3} s over {} runs", times[0], warm.len());
    println!("peak RSS         {:.3} GiB", memory::gib(memory::peak_rss_bytes().unwrap_or(0)));
    Ok(())
}
