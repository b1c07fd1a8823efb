//! `flipscope distill`: chain-of-thought rationales from a teacher, kept
//! only where the final answer matches gold, written as a training dataset.

use crate::engine::Engine;
use crate::train::distill::{distill, DistillConfig, DEFAULT_INSTRUCTION, PROMPT_FILE};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct DistillArgs {
    /// Teacher checkpoint directory.
    #[arg(long)]
    pub teacher: PathBuf,
    /// A LoRA adapter for the teacher (PEFT layout).
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// Dataset spec with gold option letters.
    #[arg(long)]
    pub data: String,
    /// Output folder: distilled.jsonl (generic format), images/, prompt.txt, distill_report.json.
    #[arg(long)]
    pub out: PathBuf,
    /// What the teacher is asked after the question and choices.
    #[arg(long, default_value = DEFAULT_INSTRUCTION)]
    pub instruction: String,
    #[arg(long, default_value_t = 256, value_parser = crate::kv::numbers::at_least_one)]
    pub max_new_tokens: usize,
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long, default_value_t = 4, value_parser = crate::kv::numbers::at_least_one)]
    pub batch: usize,
    #[command(flatten)]
    pub placement: crate::engine::Placement,
}

pub fn run(args: &DistillArgs) -> Result<()> {
    let ds = crate::data::load(&args.data).with_context(|| format!("--data `{}`", args.data))?;
    let mut samples = ds.samples;
    if let Some(l) = args.limit {
        samples.truncate(l);
    }
    if samples.is_empty() {
        bail!("--data `{}`: no samples", args.data);
    }
    let mut engine = Engine::load_with(&args.teacher, args.placement).with_context(|| format!("loading {}", args.teacher.display()))?;
    if let Some(a) = &args.adapter {
        engine.attach_adapter(a)?;
    }
    super::train::stop_on_signals();
    let cfg = DistillConfig { instruction: args.instruction.clone(), max_new_tokens: args.max_new_tokens, batch: args.batch };
    let bar = indicatif::ProgressBar::new(samples.len() as u64);
    let (report, data) = distill(&engine, &samples, &cfg, &args.out, &mut |done, total, r| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        bar.set_message(format!("kept {}/{}", r.kept, r.asked));
        if super::train::interrupted() {
            crate::engine::Flow::Stop
        } else {
            crate::engine::Flow::Continue
        }
    })?;
    bar.finish_and_clear();
    println!(
        "asked {}: kept {} ({:.1}%), wrong answer {}, no readable answer {}, errors {}",
        report.asked,
        report.kept,
        100.0 * report.kept_fraction,
        report.wrong,
        report.unparsed,
        report.errors
    );
    println!(
        "dataset: {}  (train with --data generic:{} --prompt {})",
        data.display(),
        data.display(),
        args.out.join(PROMPT_FILE).display()
    );
    Ok(())
}
