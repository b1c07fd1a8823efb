//! `flipscope bench`: flipscope and HF transformers side by side (the
//! default, `make bench`), one side's figures (`figures`, what the suite
//! runs per checkpoint), or a quick prefill reading (`prefill`).

use super::engine_args::EngineArgs;
use crate::bench::figures::{measure, ALL};
use crate::bench::inputs::{synthetic_prompt, BenchInputs};
use crate::bench::suite::{default_python, run_suite, SuiteOptions, CHECKPOINTS};
use crate::engine::{memory, ModelInputs, Qwen25VL};
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    #[command(flatten)]
    pub suite: SuiteArgs,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// flipscope's figures for one checkpoint on saved bench inputs, as JSON.
    Figures(FiguresArgs),
    /// Load time and peak RSS, then prefill latency for one image + text.
    Prefill(PrefillArgs),
    /// TUI frame times at 160x48: scrolling a dataset, and again while an
    /// eval runs on `--model` in the background (p99 target: 16 ms).
    Frames(FramesArgs),
    /// Answer extraction on about 1 MB of each adversarial shape (target: under 1 s each).
    Extract(ExtractArgs),
}

#[derive(Args, Debug)]
pub struct ExtractArgs {
    /// Bytes of each shape (at most 256 MiB).
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1..=1 << 28))]
    pub bytes: u64,
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
}

#[derive(Args, Debug)]
pub struct FramesArgs {
    /// The dataset to scroll (default: ViewSpatial-Bench's 5,712 questions, embedded).
    #[arg(long)]
    pub data: Option<String>,
    /// The checkpoint a background eval runs on while scrolling again
    /// (default: the embedded demo model; `demo` names it too).
    #[arg(long, value_parser = crate::config::model_path)]
    pub model: Option<PathBuf>,
    /// Scrolling only, no background eval.
    #[arg(long)]
    pub no_eval: bool,
    /// What the background eval asks.
    #[arg(long, default_value = "synth:400#seed=5")]
    pub eval_data: String,
    /// Key presses (and frames) per scenario.
    #[arg(long, default_value_t = 2000)]
    pub frames: usize,
    /// Write the figures here as JSON (else they are printed).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SuiteArgs {
    /// Checkpoints to measure, comma-separated: tiny, small, 3b.
    #[arg(long, default_value = "tiny,small,3b")]
    pub checkpoints: String,
    /// Where random checkpoints, inputs and raw JSON go (git-ignored).
    #[arg(long, default_value = "bench/out")]
    pub out: PathBuf,
    /// The table this run writes.
    #[arg(long, default_value = "bench/RESULTS.md")]
    pub results: PathBuf,
    #[arg(long, default_value = "auto")]
    pub device: crate::engine::DeviceSpec,
    /// Threads for both sides (default: torch's choice here, the physical cores).
    #[arg(long)]
    pub threads: Option<i32>,
    /// Timed runs per figure after one warm-up run.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Python with transformers and peft (default: FLIPSCOPE_PYTHON, .venv, python3).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Bytes of each adversarial text the answer-extraction figure reads (at most 256 MiB).
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1..=1 << 28))]
    pub extract_bytes: u64,
}

#[derive(Args, Debug)]
pub struct FiguresArgs {
    #[arg(long)]
    pub model: PathBuf,
    /// Bench inputs written by the suite (`inputs-*.safetensors`).
    #[arg(long)]
    pub inputs: PathBuf,
    /// Comma-separated: load, prefill, decode, eval, saliency, train.
    #[arg(long, default_value = "load,prefill,decode,eval,saliency,train")]
    pub figures: String,
    #[command(flatten)]
    pub placement: crate::engine::Placement,
    #[arg(long)]
    pub threads: Option<i32>,
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    #[arg(long)]
    pub json: PathBuf,
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

pub fn run(args: &BenchArgs) -> Result<()> {
    match &args.command {
        None => suite(&args.suite),
        Some(BenchCommand::Figures(a)) => figures(a),
        Some(BenchCommand::Prefill(a)) => prefill(a),
        Some(BenchCommand::Frames(a)) => frames(a),
        Some(BenchCommand::Extract(a)) => extract(a),
    }
}

fn extract(a: &ExtractArgs) -> Result<()> {
    let times = crate::bench::extraction::measure(a.bytes as usize, a.repeat)?;
    print!("{}", crate::bench::extraction::section(&times));
    Ok(())
}

fn frames(a: &FramesArgs) -> Result<()> {
    let spec = match &a.data {
        Some(s) => s.clone(),
        None => crate::config::viewspatial_questions()?.display().to_string(),
    };
    let ds = crate::data::load(&spec)?;
    let model = match (&a.model, a.no_eval) {
        (_, true) => None,
        (Some(m), false) => Some(m.clone()),
        (None, false) => Some(crate::config::demo_model()?),
    };
    let eval = if model.is_some() { crate::data::load(&a.eval_data)?.samples } else { vec![] };
    let t = crate::tui::frames::measure(ds, model.as_deref(), eval, a.frames)?;
    let json = serde_json::to_string_pretty(&t)?;
    match &a.json {
        Some(p) => crate::fsutil::atomic_write(p, json.as_bytes())?,
        None => println!("{json}"),
    }
    Ok(())
}

fn suite(a: &SuiteArgs) -> Result<()> {
    let threads = a.threads.unwrap_or_else(tch::get_num_threads);
    let checkpoints: Vec<String> = a.checkpoints.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    if let Some(bad) = checkpoints.iter().find(|c| !CHECKPOINTS.iter().any(|k| k.name == c.as_str())) {
        bail!("--checkpoints: `{bad}` is not one of tiny, small, 3b");
    }
    run_suite(&SuiteOptions {
        checkpoints,
        out_dir: a.out.clone(),
        results: a.results.clone(),
        device: a.device,
        threads,
        repeat: a.repeat,
        python: a.python.clone().unwrap_or_else(default_python),
        extract_bytes: a.extract_bytes as usize,
    })
}

fn figures(a: &FiguresArgs) -> Result<()> {
    if let Some(t) = a.threads {
        tch::set_num_threads(t);
    }
    let figures: Vec<String> = a.figures.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    if let Some(bad) = figures.iter().find(|f| !ALL.contains(&f.as_str())) {
        bail!("--figures: `{bad}` is not one of {}", ALL.join(", "));
    }
    let (dev, kind) = a.placement.resolve()?;
    let inputs = BenchInputs::load(&a.inputs)?;
    let out = measure(&a.model, &inputs, dev, kind, &figures, a.repeat)?;
    crate::fsutil::atomic_write(&a.json, serde_json::to_string_pretty(&out)?.as_bytes())
}

fn prefill(a: &PrefillArgs) -> Result<()> {
    if let Some(t) = a.threads {
        tch::set_num_threads(t);
    }
    let (dev, kind) = a.engine.placement.resolve()?;
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
    let prompt = synthetic_prompt(&model.config, a.image_size, a.text_tokens, 1)?;
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
