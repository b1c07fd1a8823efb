//! A training run as four parts: `Trainer::prepare` (check the output
//! folder, load the mix, the model and, on resume, the checkpoint), `step`
//! (one optimizer step over the accumulated micro-batches, with its metrics
//! and an eval when one is due), `checkpoint`, and `finish` (save what is
//! unsaved, merge when asked). `train` drives them and decides when to save.

use super::checkpoint::{self, TrainerState, METRICS_FILE};
use super::config::{TrainConfig, TrainEvent, TrainOutcome};
use super::example;
use super::grpo::{self, Method};
use super::metrics::{self, StepMetrics};
use super::mix::{parse_mix, Mix};
use super::optim::{scheduled_lr, warmup_steps, AdamW};
use super::producer::{spawn_producer, Micro};
use super::step::{train_step, StepSettings};
use crate::data::Sample;
use crate::engine::lora::{self, LoraConfig};
use crate::engine::{memory, Engine, Flow, ModelInputs, Processor};
use crate::eval::session::{self, SessionTarget};
use crate::eval::{EvalConfig, PromptTemplate, Variant};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Instant;
use tch::{Device, Tensor};

/// What `on_event` sees and answers (stop or continue).
pub type OnEvent<'a> = dyn FnMut(&TrainEvent) -> Flow + 'a;

pub struct Trainer<'c> {
    cfg: &'c TrainConfig,
    /// The LoRA settings in effect (the default ones when neither --lora nor --full is given).
    lora_cfg: Option<LoraConfig>,
    /// Where the weights were loaded from (a full-weight resume reloads its own).
    weights_dir: PathBuf,
    engine: Engine,
    params: Vec<(String, Tensor)>,
    opt: AdamW,
    state: TrainerState,
    batches: Receiver<Micro>,
    eval_samples: Vec<Sample>,
    vision_grad: bool,
    warmup: usize,
    micro_per_epoch: usize,
    started: Instant,
    first_step: usize,
    skipped: usize,
    gpu_peak: Option<u64>,
    saved_at: usize,
    template: PromptTemplate,
    reference: Option<Engine>,
    /// One trainer per output folder.
    _lock: crate::fsutil::DirLock,
}

impl<'c> Trainer<'c> {
    /// Everything before the first step; refuses an output folder that holds
    /// another run (or none, on --resume) before loading anything.
    pub fn prepare(cfg: &'c TrainConfig, on_event: &mut OnEvent) -> Result<Trainer<'c>> {
        if cfg.batch == 0 || cfg.grad_accum == 0 {
            bail!("--batch and --grad-accum must be at least 1");
        }
        let lora_cfg = match (&cfg.lora, cfg.full) {
            (None, None) => Some(LoraConfig::default()),
            (l, _) => l.clone(),
        };
        let (lock, checkpoint_dir, previous) = open_output(cfg, &lora_cfg)?;
        let mix = Mix::load(parse_mix(&cfg.data)?, cfg.flip_augment, cfg.replay, cfg.seed)?;
        let template = PromptTemplate::parse(&cfg.prompt)?;
        let eval_samples = eval_samples(cfg)?;

        // Full-weight runs resume from their own saved weights.
        let weights_dir = match (&checkpoint_dir, cfg.full) {
            (Some(d), Some(_)) => d.clone(),
            _ => cfg.model.clone(),
        };
        let mut engine = Engine::load_with(&weights_dir, cfg.placement).with_context(|| format!("loading {}", weights_dir.display()))?;
        if let Some(p) = cfg.max_pixels {
            engine.processor.pre.max_pixels = p;
            engine.processor.pre.min_pixels = engine.processor.pre.min_pixels.min(p);
        }
        tch::manual_seed(cfg.seed as i64);
        let params = trainable(&mut engine, cfg, lora_cfg.as_ref(), checkpoint_dir.as_deref(), on_event)?;
        let vision_grad = params.iter().any(|(n, _)| n.starts_with("visual."));
        let trainable: i64 = params.iter().map(|(_, p)| p.numel() as i64).sum();
        let total_params: i64 = engine.model.params.iter().map(|(_, p)| p.numel() as i64).sum();

        let per_epoch = mix.epoch_len();
        let micro_per_epoch = per_epoch.div_ceil(cfg.batch);
        let steps_per_epoch = micro_per_epoch.div_ceil(cfg.grad_accum).max(1);
        let total_steps = cfg.max_steps.unwrap_or(cfg.epochs.max(1) * steps_per_epoch).max(1);
        let warmup = warmup_steps(total_steps, cfg.warmup_ratio);
        let mut opt = AdamW::new(&params, cfg.weight_decay);
        let mut state = TrainerState {
            step: 0,
            total_steps,
            epoch: 0,
            micro_batches_done: 0,
            base_model: cfg.model.display().to_string(),
            mode: cfg.mode(),
            lora: lora_cfg.as_ref().map(|l| l.describe()),
            data: mix.describe(),
            seed: cfg.seed,
            lr: cfg.lr,
            batch: cfg.batch,
            grad_accum: cfg.grad_accum,
            loss: None,
        };
        if let (Some(prev), Some(dir)) = (&previous, &checkpoint_dir) {
            let opt_path = dir.join(checkpoint::OPTIMIZER_FILE);
            let saved = Tensor::read_safetensors(&opt_path).with_context(|| format!("reading {}", opt_path.display()))?;
            opt.restore(&params, &saved, prev.step as i64)?;
            state = TrainerState { total_steps, data: state.data, ..prev.clone() };
            let cut = checkpoint::truncate_metrics(&cfg.out, prev.step)?;
            checkpoint::drop_later_evals(&cfg.out, prev.step);
            on_event(&TrainEvent::Log(format!(
                "resuming at step {}/{total_steps} (epoch {}, batch {}) from {}{}",
                prev.step,
                prev.epoch,
                prev.micro_batches_done,
                dir.display(),
                if cut > 0 { format!("; dropped {cut} metrics line(s) of steps after it") } else { String::new() }
            )));
        }
        on_event(&TrainEvent::Log(format!(
            "{} on {}: {trainable} of {total_params} parameters train ({:.2}%); {per_epoch} examples/epoch, {total_steps} steps, warmup {warmup}",
            state.mode,
            mix.describe(),
            100.0 * trainable as f64 / total_params.max(1) as f64
        )));

        let mut producer_processor = Processor::load(&weights_dir, &engine.model.config)?;
        producer_processor.pre = engine.processor.pre.clone();
        let batches = spawn_producer(
            Arc::new(mix),
            producer_processor,
            template.clone(),
            cfg.batch,
            (state.epoch, state.micro_batches_done),
            cfg.grpo.method,
        );
        let reference = kl_reference(cfg, on_event)?;
        let first_step = state.step;
        Ok(Trainer {
            cfg,
            lora_cfg,
            weights_dir,
            engine,
            params,
            opt,
            batches,
            eval_samples,
            vision_grad,
            warmup,
            micro_per_epoch,
            started: Instant::now(),
            first_step,
            skipped: 0,
            gpu_peak: None,
            saved_at: state.step,
            state,
            template,
            reference,
            _lock: lock,
        })
    }

    pub fn done(&self) -> bool {
        self.state.step >= self.state.total_steps
    }

    pub fn step_number(&self) -> usize {
        self.state.step
    }

    /// One optimizer step over `--grad-accum` micro-batches, logged to
    /// metrics.jsonl (with an eval's accuracy when one is due).
    pub fn step(&mut self, on_event: &mut OnEvent) -> Result<StepMetrics> {
        let cfg = self.cfg;
        let t0 = Instant::now();
        let mut group: Vec<Micro> = Vec::new();
        while group.len() < cfg.grad_accum {
            let micro = self.batches.recv().context("the data thread stopped")?;
            for e in &micro.errors {
                on_event(&TrainEvent::Log(e.clone()));
            }
            self.skipped += micro.errors.len();
            self.state.epoch = micro.epoch;
            self.state.micro_batches_done = micro.index + 1;
            if !micro.examples.is_empty() || !micro.prompts.is_empty() {
                group.push(micro);
            }
        }
        let total_steps = self.state.total_steps;
        let lr = scheduled_lr(cfg.lr, self.state.step, self.warmup, total_steps);
        // Every step's randomness (dropout, GRPO's samples) comes from the
        // seed and the step alone, so a resumed run draws what the unbroken one drew.
        let seed = step_seed(cfg.seed, self.state.step);
        tch::manual_seed(seed);
        let (loss_total, grad_norm, answer_tokens, seq_tokens, grpo_stats) = match cfg.grpo.method {
            Method::Sft => {
                let answer_tokens: usize = group.iter().flat_map(|m| &m.examples).map(|e| e.answer_tokens()).sum();
                let seq_tokens: usize = group.iter().flat_map(|m| &m.examples).map(|e| e.labels.len()).sum();
                let pad = self.engine.model.config.pad_token_id.unwrap_or(0);
                let device = self.engine.model.device;
                let batches: Vec<(ModelInputs, Tensor)> = group.iter().map(|m| example::collate(&m.examples, pad, device)).collect();
                let settings =
                    StepSettings { lr, max_grad_norm: cfg.max_grad_norm, vision_grad: self.vision_grad, recompute: cfg.recompute };
                let (loss, norm) = train_step(&self.engine.model, &batches, &self.params, &mut self.opt, settings)
                    .with_context(|| format!("step {}", self.state.step + 1))?;
                (loss, norm, answer_tokens, seq_tokens, None)
            }
            Method::Grpo => {
                let prompts: Vec<_> = group.iter_mut().flat_map(|m| std::mem::take(&mut m.prompts)).collect();
                let inputs = grpo::StepInputs {
                    prompts: &prompts,
                    template: &self.template,
                    args: &cfg.grpo,
                    reference: self.reference.as_ref(),
                    seed: seed as u64,
                    lr,
                    max_grad_norm: cfg.max_grad_norm,
                    vision_grad: self.vision_grad,
                    recompute: cfg.recompute,
                };
                let (loss, norm, stats) = grpo::grpo_step(&mut self.engine, &self.params, &mut self.opt, &inputs)
                    .with_context(|| format!("step {}", self.state.step + 1))?;
                let completion = (stats.completion_tokens_mean * (prompts.len() * cfg.grpo.group) as f64) as usize;
                let seq: usize = prompts.iter().map(|(_, p)| p.len() * cfg.grpo.group).sum::<usize>() + completion;
                (loss, norm, completion, seq, Some(stats))
            }
        };
        self.state.step += 1;
        self.state.loss = Some(loss_total);
        let step_s = t0.elapsed().as_secs_f64();
        let elapsed = self.started.elapsed().as_secs_f64();
        let per_step = elapsed / (self.state.step - self.first_step) as f64;
        let sample_gpu = self.state.step % 10 == 1 || self.state.step == total_steps;
        let (peak, mem_kind) = peak_memory(self.engine.model.device, &mut self.gpu_peak, sample_gpu);
        let mut m = StepMetrics {
            step: self.state.step,
            total_steps,
            epoch: self.state.epoch as f64 + self.state.micro_batches_done as f64 / self.micro_per_epoch.max(1) as f64,
            loss: loss_total,
            lr,
            grad_norm,
            tokens_per_s: seq_tokens as f64 / step_s.max(1e-9),
            answer_tokens,
            elapsed_s: elapsed,
            eta_s: per_step * (total_steps - self.state.step) as f64,
            peak_mem_bytes: peak,
            mem_kind: mem_kind.into(),
            skipped: self.skipped,
            eval_accuracy: None,
            grpo: grpo_stats,
        };
        let metrics_path = cfg.out.join(METRICS_FILE);
        if !loss_total.is_finite() {
            metrics::append(&metrics_path, &m)?;
            bail!("step {}: the loss is {loss_total}; lower --lr (now {})", self.state.step, cfg.lr);
        }
        let due = cfg.eval_every > 0 && (self.state.step.is_multiple_of(cfg.eval_every) || self.state.step == total_steps);
        if cfg.eval.is_some() && due {
            let (acc, run) = self.evaluate()?;
            m.eval_accuracy = Some(acc);
            on_event(&TrainEvent::Eval { step: self.state.step, accuracy: acc, run });
        }
        metrics::append(&metrics_path, &m)?;
        Ok(m)
    }

    /// Writes the adapter (or weights), the optimizer and trainer_state.json.
    pub fn checkpoint(&mut self) -> Result<()> {
        let cfg = self.cfg;
        checkpoint::save(
            &mut self.engine.model,
            self.lora_cfg.as_ref(),
            cfg.full.is_some(),
            &cfg.model,
            &cfg.out,
            &self.params,
            &self.opt,
            &self.state,
        )?;
        self.saved_at = self.state.step;
        Ok(())
    }

    /// Saves the last steps if they are unsaved, and merges the adapter into
    /// a full checkpoint when --merge asks and the run was not stopped.
    pub fn finish(mut self, stopped: bool, on_event: &mut OnEvent) -> Result<TrainOutcome> {
        drop(std::mem::replace(&mut self.batches, std::sync::mpsc::sync_channel(0).1));
        if self.saved_at != self.state.step {
            self.checkpoint()?;
        }
        let mut outcome = TrainOutcome {
            steps: self.state.step,
            total_steps: self.state.total_steps,
            stopped,
            final_loss: self.state.loss,
            skipped: self.skipped,
            merged: None,
        };
        if self.cfg.merge && !stopped {
            let _guard = tch::no_grad_guard();
            for (_, p) in self.params.iter_mut() {
                let _ = p.set_requires_grad(false);
            }
            let merged = self.cfg.out.join("merged");
            lora::merge(&mut self.engine.model);
            checkpoint::write_full(&self.engine.model, &self.weights_dir, &merged)?;
            on_event(&TrainEvent::Log(format!("merged checkpoint written to {}", merged.display())));
            outcome.merged = Some(merged);
        }
        Ok(outcome)
    }

    /// Accuracy on the `--eval` data, written as an eval run under `out/evals/`.
    fn evaluate(&mut self) -> Result<(f64, PathBuf)> {
        let (cfg, step) = (self.cfg, self.state.step);
        let engine = &mut self.engine;
        let spec = cfg.eval.as_deref().unwrap_or_default();
        let prompt = PromptTemplate::parse(&cfg.prompt)?;
        let name = format!("step-{step:06}");
        let dir = cfg.out.join("evals").join(&name);
        // Asked the way the checkpoint answers (a words model generates), as `eval` asks it.
        let mode = crate::eval::ModeKind::for_answers(engine.answers).with_max_new_tokens(crate::eval::DEFAULT_MAX_NEW_TOKENS);
        let eval_cfg = EvalConfig { prompt, mode, variant: Variant::Plain, circular: false, batch: cfg.batch.max(1) };
        let mut target = SessionTarget::new(engine, &dir, &name, spec, "plain");
        target.adapter = cfg.lora.as_ref().map(|_| cfg.out.display().to_string());
        // The weights evaluated are the ones being trained, saved in `out`.
        target.model = cfg.full.is_some().then(|| format!("{} (training, step {step})", cfg.out.display()));
        lora::set_training(&mut engine.model, false);
        let session = session::run(engine, &self.eval_samples, &eval_cfg, &target, &mut |_, _| {}, &mut |_, _| Flow::Continue);
        lora::set_training(&mut engine.model, true);
        let (right, n) = session?.accuracy();
        Ok((right as f64 / n.max(1) as f64, dir))
    }
}

/// Creates and locks the output folder, and finds its latest checkpoint:
/// a resume needs one of the same mode, a fresh run needs none.
fn open_output(
    cfg: &TrainConfig,
    lora_cfg: &Option<LoraConfig>,
) -> Result<(crate::fsutil::DirLock, Option<PathBuf>, Option<TrainerState>)> {
    std::fs::create_dir_all(&cfg.out).with_context(|| format!("creating {}", cfg.out.display()))?;
    let lock = crate::fsutil::DirLock::acquire(&cfg.out)?;
    let (checkpoint_dir, previous) = match checkpoint::latest(&cfg.out)? {
        Some((d, s)) => (Some(d), Some(s)),
        None => (None, None),
    };
    if let Some(prev) = previous.as_ref().filter(|_| cfg.resume) {
        if prev.mode != cfg.mode_with(lora_cfg) {
            bail!("--resume: {} was trained as {}, not {}", cfg.out.display(), prev.mode, cfg.mode_with(lora_cfg));
        }
    }
    match (&previous, cfg.resume) {
        (None, true) => bail!("--resume: {} has no {}", cfg.out.display(), checkpoint::STATE_FILE),
        (Some(s), false) => bail!(
            "{} already holds a training run (step {}/{}); pass --resume to continue it or choose another --out",
            cfg.out.display(),
            s.step,
            s.total_steps
        ),
        _ => {}
    }
    Ok((lock, checkpoint_dir, previous))
}

/// The `--eval` samples (at most `--eval-limit`), or none.
fn eval_samples(cfg: &TrainConfig) -> Result<Vec<Sample>> {
    let Some(spec) = &cfg.eval else { return Ok(Vec::new()) };
    let mut s = crate::data::load(spec).with_context(|| format!("--eval `{spec}`"))?.samples;
    s.truncate(cfg.eval_limit.max(1));
    Ok(s)
}

/// The parameters that train: the `--full` scope's weights and the LoRA
/// adapters (fresh, or the checkpoint's on a resume), set to need gradients.
fn trainable(
    engine: &mut Engine,
    cfg: &TrainConfig,
    lora_cfg: Option<&LoraConfig>,
    checkpoint_dir: Option<&std::path::Path>,
    on_event: &mut OnEvent,
) -> Result<Vec<(String, Tensor)>> {
    let mut params: Vec<(String, Tensor)> = Vec::new();
    if let Some(scope) = cfg.full {
        params.extend(engine.model.params.iter().filter(|(name, _)| scope.includes(name)).map(|(n, t)| (n.clone(), t.shallow_clone())));
    }
    if let Some(lc) = lora_cfg {
        match checkpoint_dir {
            Some(dir) => engine.attach_adapter(dir)?,
            None => drop(lora::attach_new(&mut engine.model, lc)?),
        }
        let n = lora::attached(&mut engine.model);
        on_event(&TrainEvent::Log(format!("LoRA {} on {n} projections", lc.describe())));
        params.extend(lora::parameters(&mut engine.model));
    }
    for (_, p) in params.iter_mut() {
        let _ = p.set_requires_grad(true);
    }
    lora::set_training(&mut engine.model, true);
    Ok(params)
}

/// GRPO's KL reference: with LoRA the adapter switched off (no second
/// model); in full training the base weights, loaded once more.
fn kl_reference(cfg: &TrainConfig, on_event: &mut OnEvent) -> Result<Option<Engine>> {
    Ok(match (cfg.grpo.method, cfg.grpo.beta > 0.0, cfg.full.is_some()) {
        (Method::Grpo, true, true) => {
            on_event(&TrainEvent::Log(format!("loading {} again as the KL reference", cfg.model.display())));
            Some(Engine::load_with(&cfg.model, cfg.placement)?)
        }
        _ => None,
    })
}

/// The torch seed of step `step` (0-based) of a run seeded with `seed`.
fn step_seed(seed: u64, step: usize) -> i64 {
    let mut x = seed ^ (step as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (x >> 1) as i64
}

fn peak_memory(device: Device, gpu_peak: &mut Option<u64>, sample_gpu: bool) -> (Option<u64>, &'static str) {
    match device {
        Device::Cuda(_) => {
            if sample_gpu {
                if let Some(now) = memory::gpu_process_bytes() {
                    *gpu_peak = Some(gpu_peak.unwrap_or(0).max(now));
                }
            }
            (*gpu_peak, "gpu")
        }
        _ => (memory::peak_rss_bytes(), "rss"),
    }
}

/// Trains as `cfg` says. `on_event` sees logs, every step's metrics, saves
/// and evals; returning `Flow::Stop` saves a checkpoint and ends the run.
pub fn train(cfg: &TrainConfig, on_event: &mut OnEvent) -> Result<TrainOutcome> {
    cfg.grpo.check(&TrainConfig::default().grpo)?;
    let mut trainer = Trainer::prepare(cfg, on_event)?;
    let mut stopped = false;
    let mut spread = super::grpo::watch::SpreadWatch::default();
    while !trainer.done() {
        let metrics = trainer.step(on_event)?;
        let warning = metrics.grpo.as_ref().and_then(|g| spread.observe(metrics.step, g));
        let flow = on_event(&TrainEvent::Step(metrics));
        if let Some(w) = warning {
            on_event(&TrainEvent::Log(w));
        }
        let step = trainer.step_number();
        let periodic = cfg.save_every > 0 && step.is_multiple_of(cfg.save_every);
        if periodic || flow == Flow::Stop || trainer.done() {
            trainer.checkpoint()?;
            on_event(&TrainEvent::Saved { step, dir: cfg.out.clone() });
        }
        if flow == Flow::Stop {
            stopped = !trainer.done();
            break;
        }
    }
    trainer.finish(stopped, on_event)
}
