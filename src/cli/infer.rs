//! `flipscope infer`: one prompt through the engine, printing the answer and
//! optionally dumping every intermediate that parity checks compare.

use super::target::TargetArgs;
use crate::engine::{self, Engine, Flow, GenerateOptions, ResizePolicy, Rows, Sampling};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use tch::{Kind, Tensor};

#[derive(Args, Debug, Clone)]
pub struct InferArgs {
    /// Model, images + prompt (or --data/--id), resize, device, dtype.
    #[command(flatten)]
    pub target: TargetArgs,
    #[arg(long, default_value_t = 64, value_parser = crate::kv::numbers::at_least_one)]
    pub max_new_tokens: usize,
    /// Sample with this temperature instead of greedy decoding.
    #[arg(long, value_parser = crate::kv::numbers::positive)]
    pub temperature: Option<f64>,
    #[arg(long, default_value_t = 1.0, value_parser = crate::kv::numbers::fraction)]
    pub top_p: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Score these option labels (comma-separated, e.g. A,B,C,D) in one forward pass.
    #[arg(long, value_delimiter = ',')]
    pub options: Vec<String>,
    #[arg(long, conflicts_with = "resize")]
    pub min_pixels: Option<i64>,
    #[arg(long, conflicts_with = "resize")]
    pub max_pixels: Option<i64>,
    /// Write inputs, positions, vision output, logits and greedy ids (f32/i64) to a safetensors file.
    #[arg(long, value_parser = crate::fsutil::output_file)]
    pub dump: Option<PathBuf>,
    /// Print load time and memory.
    #[arg(long)]
    pub stats: bool,
}

impl InferArgs {
    pub fn resize_policy(&self) -> ResizePolicy {
        match (self.target.resize, self.min_pixels, self.max_pixels) {
            (Some((width, height)), _, _) => ResizePolicy::Exact { width, height },
            (None, None, None) => ResizePolicy::Auto,
            (None, min, max) => ResizePolicy::Pixels { min: min.unwrap_or(56 * 56), max: max.unwrap_or(28 * 28 * 1280) },
        }
    }
}

pub fn run(args: &InferArgs) -> Result<()> {
    engine::memory::reset_peak();
    let rss_before = engine::memory::rss_bytes().unwrap_or(0);
    let target = args.target.resolve()?;
    let engine = &target.engine;
    if args.stats {
        let peak = engine::memory::peak_rss_bytes().unwrap_or(0);
        eprintln!(
            "loaded {} tensors ({:.3} GiB as {:?}, {:.3} GiB of it viewed in place) on {:?} in {:.2}s; RSS before {:.3} GiB, peak while loading {:.3} GiB",
            engine.load_report.tensors,
            engine::memory::gib(engine.load_report.weight_bytes),
            engine.model.kind,
            engine::memory::gib(engine.load_report.mapped_bytes),
            engine.model.device,
            engine.load_report.seconds,
            engine::memory::gib(rss_before),
            engine::memory::gib(peak),
        );
    }
    let prompt = engine.processor.prepare(&target.images, &target.text, &args.resize_policy())?;
    let stdout = std::io::stdout();
    if !args.options.is_empty() {
        let scores = engine.score_options(&[&prompt], std::slice::from_ref(&args.options))?;
        let s = &scores[0];
        for ((label, lp), p) in s.labels.iter().zip(&s.logprobs).zip(s.probabilities()) {
            println!("{label}\tlogprob {lp:.4}\tp {p:.4}");
        }
        println!("best: {}", s.best_label());
    }
    let opts = GenerateOptions {
        max_new_tokens: args.max_new_tokens,
        sampling: args.temperature.map(|temperature| Sampling { temperature, top_p: args.top_p, seed: args.seed }),
        ..Default::default()
    };
    let start = std::time::Instant::now();
    let gens = engine.generate(&[&prompt], &opts, &mut |step| {
        let mut out = stdout.lock();
        let _ = write!(out, "{}", step.delta);
        let _ = out.flush();
        Flow::Continue
    })?;
    println!();
    if args.stats {
        let n = gens[0].tokens.len();
        eprintln!(
            "{n} tokens in {:.2}s ({:.1} tokens/s), stop: {:?}",
            start.elapsed().as_secs_f64(),
            n as f64 / start.elapsed().as_secs_f64(),
            gens[0].stop
        );
    }
    if let Some(path) = &args.dump {
        dump(engine, &prompt, args.max_new_tokens, path)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The parity dump: every tensor transformers' reference script records.
fn dump(engine: &Engine, prompt: &engine::PreparedPrompt, max_new_tokens: usize, path: &std::path::Path) -> Result<()> {
    let _guard = tch::no_grad_guard();
    let inputs = engine.collate(&[prompt]);
    let cpu = tch::Device::Cpu;
    let mut named: Vec<(&str, Tensor)> =
        vec![("input_ids", inputs.input_ids.to_device(cpu)), ("position_ids", inputs.positions.to_device(cpu))];
    let grids: Vec<i64> = inputs.grids.iter().flatten().copied().collect();
    let vision = inputs.pixel_values.as_ref().map(|p| engine.model.vision_embeds(p, &inputs.grids));
    if let (Some(p), Some(v)) = (&inputs.pixel_values, &vision) {
        named.push(("pixel_values", p.to_kind(Kind::Float).to_device(cpu)));
        named.push(("image_grid_thw", Tensor::from_slice(&grids).reshape([-1, 3])));
        named.push(("vision_embeds", v.to_kind(Kind::Float).to_device(cpu)));
    }
    let mut cache = engine.model.new_cache();
    let hidden = engine.model.prefill_with_vision(&inputs, vision.as_ref(), &mut cache, Rows::All)?;
    named.push(("logits", engine.model.logits(&hidden).to_kind(Kind::Float).to_device(cpu)));
    let greedy = GenerateOptions { max_new_tokens, stop_ids: Some(vec![]), first_token_top_k: 0, ..Default::default() };
    let g = engine.generate(&[prompt], &greedy, &mut |_| Flow::Continue)?;
    named.push(("generated_ids", Tensor::from_slice(&g[0].tokens).reshape([1, -1])));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    crate::fsutil::atomic_write_with(path, |tmp| Ok(Tensor::write_safetensors(&named, tmp)?))?;
    if named.iter().any(|(_, t)| t.numel() == 0 && t.dim() == 0) {
        bail!("empty tensor in dump");
    }
    Ok(())
}
