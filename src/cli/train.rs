//! `flipscope train`: LoRA or full-weight finetuning on a data mix.

use crate::engine::lora::LoraConfig;
use crate::engine::Flow;
use crate::train::{train, FullScope, TrainConfig, TrainEvent};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Base checkpoint directory (Hugging Face layout).
    #[arg(long)]
    pub model: PathBuf,
    /// `SPEC[:WEIGHT][,SPEC[:WEIGHT]...]`: datasets and how often each sample is seen per epoch.
    #[arg(long)]
    pub data: String,
    /// Output folder: adapter (or weights), optimizer state, trainer_state.json, metrics.jsonl.
    #[arg(long)]
    pub out: PathBuf,
    /// LoRA on the language model: `r=16,alpha=32,dropout=0.05,targets=q,k,v,o,gate,up,down`
    /// (the default when neither --lora nor --full is given).
    #[arg(long, num_args = 0..=1, default_missing_value = "")]
    pub lora: Option<String>,
    /// Train base weights in full: merger | lm | all (with --lora: both).
    #[arg(long)]
    pub full: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    #[arg(long, default_value_t = 1e-4)]
    pub lr: f64,
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    #[arg(long, default_value_t = 1)]
    pub grad_accum: usize,
    /// Cap on image pixels (overrides the checkpoint's max_pixels).
    #[arg(long)]
    pub max_pixels: Option<i64>,
    /// Stop after this many optimizer steps (sets the schedule's length).
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Dataset spec to evaluate on (score mode) every --eval-every steps.
    #[arg(long)]
    pub eval: Option<String>,
    #[arg(long, default_value_t = 0)]
    pub eval_every: usize,
    /// At most this many --eval samples.
    #[arg(long, default_value_t = 200)]
    pub eval_limit: usize,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    #[arg(long, default_value = "auto")]
    pub device: crate::engine::DeviceSpec,
    #[arg(long, value_enum, default_value_t)]
    pub dtype: crate::engine::DtypeSpec,
    /// Share of the steps spent warming the learning rate up from 0.
    #[arg(long, default_value_t = 0.03)]
    pub warmup_ratio: f64,
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Global gradient-norm clip (0: none).
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Train on horizontally flipped samples (image mirrored, left/right swapped).
    #[arg(long)]
    pub flip_augment: bool,
    /// With --flip-augment: the share of original samples kept beside the flipped ones.
    #[arg(long, default_value_t = 1.0)]
    pub replay: f64,
    /// Save a checkpoint every N steps (it is always saved at the end and on Ctrl-C).
    #[arg(long, default_value_t = 0)]
    pub save_every: usize,
    /// Also write a merged full checkpoint to OUT/merged.
    #[arg(long)]
    pub merge: bool,
    /// Prompt template (as eval's --prompt); train and eval should match.
    #[arg(long, default_value = "default")]
    pub prompt: String,
}

impl TrainArgs {
    pub fn config(&self) -> Result<TrainConfig> {
        Ok(TrainConfig {
            model: self.model.clone(),
            data: self.data.clone(),
            out: self.out.clone(),
            lora: self.lora.as_deref().map(LoraConfig::parse).transpose()?,
            full: self.full.as_deref().map(FullScope::parse).transpose()?,
            epochs: self.epochs,
            lr: self.lr,
            batch: self.batch,
            grad_accum: self.grad_accum,
            max_pixels: self.max_pixels,
            max_steps: self.max_steps,
            eval: self.eval.clone(),
            eval_every: self.eval_every,
            eval_limit: self.eval_limit,
            resume: self.resume,
            device: self.device,
            dtype: self.dtype,
            warmup_ratio: self.warmup_ratio,
            weight_decay: self.weight_decay,
            max_grad_norm: self.max_grad_norm,
            seed: self.seed,
            flip_augment: self.flip_augment,
            replay: self.replay,
            save_every: self.save_every,
            merge: self.merge,
            prompt: self.prompt.clone(),
        })
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Ctrl-C and SIGTERM end the run at the next step boundary, with a checkpoint.
pub fn stop_on_signals() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t);
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let cfg = args.config()?;
    stop_on_signals();
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}").unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let outcome = train(&cfg, &mut |event| {
        match event {
            TrainEvent::Log(line) => say(&bar, line.clone()),
            TrainEvent::Step(m) => {
                bar.set_length(m.total_steps as u64);
                bar.set_position(m.step as u64);
                bar.set_message(m.line());
                if !bar.is_hidden() && m.step % 10 != 0 && m.step != m.total_steps {
                    return flow();
                }
                if bar.is_hidden() {
                    println!("{}", m.line());
                }
            }
            TrainEvent::Saved { step, dir } => say(&bar, format!("checkpoint at step {step} in {}", dir.display())),
            TrainEvent::Eval { step, accuracy, run } => {
                say(&bar, format!("eval at step {step}: accuracy {:.1}% ({})", 100.0 * accuracy, run.display()))
            }
        }
        flow()
    })?;
    bar.finish_and_clear();
    let verb = if outcome.stopped { "stopped" } else { "finished" };
    println!(
        "{verb} at step {}/{}; final loss {}; {} samples skipped; output in {}",
        outcome.steps,
        outcome.total_steps,
        outcome.final_loss.map(|l| format!("{l:.4}")).unwrap_or("-".into()),
        outcome.skipped,
        cfg.out.display()
    );
    if let Some(m) = outcome.merged {
        println!("merged checkpoint: {}", m.display());
    }
    Ok(())
}

/// A line above the bar, or on stdout when the bar is hidden (not a terminal).
fn say(bar: &indicatif::ProgressBar, line: String) {
    if bar.is_hidden() {
        println!("{line}");
    } else {
        bar.println(line);
    }
}

fn flow() -> Flow {
    if interrupted() {
        Flow::Stop
    } else {
        Flow::Continue
    }
}
