//! The training loop: LoRA and/or full-weight SFT of Qwen2.5-VL on a data
//! mix, loss on the answer tokens only, AdamW with warmup + cosine decay,
//! gradient clipping and accumulation, checkpoints that `--resume` picks up.
//!
//! Examples are prepared (decode, flip, resize, tokenise) on a helper thread
//! while the engine trains on the previous batch.
//!
//! Gradient checkpointing is not offered: recomputing a decoder layer in the
//! backward pass needs a custom autograd function (torch.utils.checkpoint is
//! Python), which tch cannot define. Peak memory is reported instead, and
//! `--batch 1 --grad-accum K` is the way to trade speed for memory.

use super::checkpoint::{self, TrainerState, METRICS_FILE};
use super::example::{self, TrainExample, IGNORE};
use super::metrics::{self, StepMetrics};
use super::mix::{parse_mix, Item, Mix};
use super::optim::{clip_grad_norm, scheduled_lr, warmup_steps, zero_grad, AdamW};
use crate::engine::lora::{self, LoraConfig};
use crate::engine::{memory, Engine, Flow, ModelInputs, Processor, Qwen25VL, Rows};
use crate::eval::{runner, EvalConfig, EvalMode, PromptTemplate, Variant};
use crate::runs::RunStore;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::time::Instant;
use tch::{Device, Kind, Reduction, Tensor};

/// Which base weights train in full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FullScope {
    /// The vision-language merger only.
    Merger,
    /// The language model (embeddings, decoder, head).
    Lm,
    /// Everything, vision tower included (training from scratch).
    All,
}

impl FullScope {
    pub fn name(self) -> &'static str {
        match self {
            FullScope::Merger => "merger",
            FullScope::Lm => "lm",
            FullScope::All => "all",
        }
    }

    pub fn includes(self, param: &str) -> bool {
        match self {
            FullScope::Merger => param.starts_with("visual.merger."),
            FullScope::Lm => param.starts_with("model.") || param.starts_with("lm_head."),
            FullScope::All => true,
        }
    }
}

/// Everything a finetune is told, as `flipscope train` and the TUI's
/// finetune line both take it: one clap grammar, one set of defaults.
#[derive(clap::Args, Clone, Debug, PartialEq)]
pub struct TrainConfig {
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
    #[arg(long, num_args = 0..=1, default_missing_value = "", value_parser = LoraConfig::parse)]
    pub lora: Option<LoraConfig>,
    /// Train base weights in full: merger | lm | all (with --lora: both).
    #[arg(long, value_enum)]
    pub full: Option<FullScope>,
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    #[arg(long, default_value_t = 1e-4)]
    pub lr: f64,
    #[arg(long, default_value_t = 4, value_parser = at_least_one)]
    pub batch: usize,
    #[arg(long, default_value_t = 1, value_parser = at_least_one)]
    pub grad_accum: usize,
    /// Cap on image pixels (overrides the checkpoint's max_pixels).
    #[arg(long)]
    pub max_pixels: Option<i64>,
    /// Stop after this many optimizer steps (sets the schedule's length).
    #[arg(long, value_parser = at_least_one)]
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
    /// cpu | cuda | cuda:N | auto
    #[arg(long, default_value = "auto")]
    pub device: crate::engine::DeviceSpec,
    /// auto (bf16 on CUDA, f32 on CPU) | f32 | bf16 | f16
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

fn at_least_one(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{s}` is not a whole number of at least 1")),
    }
}

/// `TrainConfig` alone, for parsing a line of its flags.
#[derive(clap::Parser, Debug)]
#[command(name = "train", no_binary_name = true, disable_help_flag = true)]
struct TrainLine {
    #[command(flatten)]
    config: TrainConfig,
}

impl TrainConfig {
    /// Parses `args` (flags as `flipscope train` takes them) by the same grammar.
    pub fn try_parse_from<I, T>(args: I) -> std::result::Result<TrainConfig, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        <TrainLine as clap::Parser>::try_parse_from(args).map(|l| l.config)
    }

    /// Every default, with `model`, `data` and `out` as given.
    pub fn with_defaults(model: &std::path::Path, data: &str, out: &std::path::Path) -> TrainConfig {
        // clap refuses empty paths; the required three are set after parsing.
        let cfg = Self::try_parse_from(["--model", "-", "--data", "-", "--out", "-"]).expect("the defaults parse");
        TrainConfig { model: model.to_path_buf(), data: data.to_string(), out: out.to_path_buf(), ..cfg }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig::with_defaults(std::path::Path::new(""), "", std::path::Path::new(""))
    }
}

impl TrainConfig {
    fn mode(&self) -> String {
        self.mode_with(&self.lora)
    }

    /// `lora`, `full:SCOPE` or `lora+full:SCOPE`, for the LoRA settings in effect.
    fn mode_with(&self, lora: &Option<LoraConfig>) -> String {
        match (lora, self.full) {
            (Some(_), Some(f)) => format!("lora+full:{}", f.name()),
            (None, Some(f)) => format!("full:{}", f.name()),
            _ => "lora".into(),
        }
    }
}

#[derive(Clone, Debug)]
pub enum TrainEvent {
    Log(String),
    Step(StepMetrics),
    Saved { step: usize, dir: PathBuf },
    Eval { step: usize, accuracy: f64, run: PathBuf },
}

#[derive(Clone, Debug, Default)]
pub struct TrainOutcome {
    pub steps: usize,
    pub total_steps: usize,
    pub stopped: bool,
    pub final_loss: Option<f64>,
    pub skipped: usize,
    pub merged: Option<PathBuf>,
}

/// Sum of cross-entropy over the labelled positions (next-token: position t
/// predicts label t+1) and how many there are. Logits are computed only at
/// those positions. The vision tower runs without gradients unless `vision_grad`.
pub fn answer_loss_sum(model: &Qwen25VL, inputs: &ModelInputs, labels: &Tensor, vision_grad: bool) -> Result<(Tensor, i64)> {
    let vision = inputs.pixel_values.as_ref().map(|p| {
        if vision_grad {
            model.vision_embeds(p, &inputs.grids)
        } else {
            let _guard = tch::no_grad_guard();
            model.vision_embeds(p, &inputs.grids)
        }
    });
    let mut cache = model.new_cache();
    let hidden = model.prefill_with_vision(inputs, vision.as_ref(), &mut cache, Rows::All)?;
    let (l, d) = (hidden.size()[1], hidden.size()[2]);
    let h = hidden.narrow(1, 0, l - 1).reshape([-1, d]);
    let targets = labels.narrow(1, 1, l - 1).reshape([-1]);
    let picked = targets.ne(IGNORE).nonzero().squeeze_dim(1);
    let count = picked.size()[0];
    if count == 0 {
        bail!("no labelled tokens in the batch");
    }
    let logits = model.logits(&h.index_select(0, &picked)).to_kind(Kind::Float);
    let loss = logits.cross_entropy_loss::<Tensor>(&targets.index_select(0, &picked), None, Reduction::Sum, IGNORE, 0.0);
    Ok((loss, count))
}

/// One optimizer step over micro-batches (gradient accumulation): each
/// micro-batch's loss is its sum over answer tokens divided by the answer
/// tokens of all of them, so the step's loss is the mean over the whole
/// batch however it is split. Then clipping and AdamW. Returns (loss, grad
/// norm before clipping).
pub fn train_step(
    model: &Qwen25VL,
    batches: &[(ModelInputs, Tensor)],
    params: &[(String, Tensor)],
    opt: &mut AdamW,
    lr: f64,
    max_grad_norm: f64,
    vision_grad: bool,
) -> Result<(f64, f64)> {
    let answer_tokens: i64 = batches
        .iter()
        .map(|(_, labels)| i64::try_from(labels.narrow(1, 1, labels.size()[1] - 1).ne(IGNORE).sum(Kind::Int64)).unwrap_or(0))
        .sum();
    let mut loss_total = 0.0;
    for (inputs, labels) in batches {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<f64> {
            let (sum, _) = answer_loss_sum(model, inputs, labels, vision_grad)?;
            let loss = sum / answer_tokens.max(1) as f64;
            let value = f64::try_from(&loss)?;
            loss.backward();
            Ok(value)
        }));
        loss_total += match result {
            Ok(r) => r?,
            Err(p) => bail!("{}", crate::engine::panic_message(&*p)),
        };
    }
    let grad_norm = clip_grad_norm(params, max_grad_norm);
    opt.step(params, lr);
    zero_grad(params);
    Ok((loss_total, grad_norm))
}

/// Micro-batches as the helper thread prepares them.
struct Micro {
    epoch: usize,
    /// Index of this micro-batch within its epoch.
    index: usize,
    examples: Vec<TrainExample>,
    errors: Vec<String>,
}

fn spawn_producer(mix: Arc<Mix>, processor: Processor, template: PromptTemplate, batch: usize, start: (usize, usize)) -> Receiver<Micro> {
    let (tx, rx) = sync_channel::<Micro>(3);
    std::thread::spawn(move || {
        for epoch in start.0.. {
            let items: Vec<Item> = mix.epoch(epoch);
            let skip = if epoch == start.0 { start.1 } else { 0 };
            for (index, chunk) in items.chunks(batch).enumerate().skip(skip) {
                let mut examples = Vec::new();
                let mut errors = Vec::new();
                for item in chunk {
                    let sample = mix.sample(*item);
                    match example::build(&processor, &template, sample, item.flipped) {
                        Ok(e) => examples.push(e),
                        Err(e) => errors.push(format!("skipped {}: {e:#}", sample.id)),
                    }
                }
                if tx.send(Micro { epoch, index, examples, errors }).is_err() {
                    return;
                }
            }
        }
    });
    rx
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

/// Accuracy on the `--eval` data, written as an eval run under `out/evals/`.
fn evaluate(engine: &mut Engine, cfg: &TrainConfig, samples: &[crate::data::Sample], step: usize) -> Result<(f64, PathBuf)> {
    let spec = cfg.eval.as_deref().unwrap_or_default();
    let prompt = PromptTemplate::parse(&cfg.prompt)?;
    let name = format!("step-{step:06}");
    let dir = cfg.out.join("evals").join(&name);
    let eval_cfg = EvalConfig { prompt, mode: EvalMode::Score, variant: Variant::Plain, circular: false, batch: cfg.batch.max(1) };
    let mut meta = eval_cfg.run_meta(&name, &engine.dir, spec, "plain", engine.model.device)?;
    meta.adapter = cfg.lora.as_ref().map(|_| cfg.out.display().to_string());
    if cfg.full.is_some() {
        // The weights evaluated are the ones being trained, saved in `out`.
        meta.model = format!("{} (training, step {step})", cfg.out.display());
    }
    let mut store = RunStore::open(&dir, meta)?;
    lora::set_training(&mut engine.model, false);
    let result = runner::run(engine, samples, &mut store, &eval_cfg, &mut |_, _| Flow::Continue);
    lora::set_training(&mut engine.model, true);
    result?;
    store.finish()?;
    let ((right, n), _) = crate::runs::stats::accuracy(&store.records()?);
    Ok((right as f64 / n.max(1) as f64, dir))
}

/// Trains as `cfg` says. `on_event` sees logs, every step's metrics, saves
/// and evals; returning `Flow::Stop` saves a checkpoint and ends the run.
pub fn train(cfg: &TrainConfig, on_event: &mut dyn FnMut(&TrainEvent) -> Flow) -> Result<TrainOutcome> {
    if cfg.batch == 0 || cfg.grad_accum == 0 {
        bail!("--batch and --grad-accum must be at least 1");
    }
    let lora_cfg = match (&cfg.lora, cfg.full) {
        (None, None) => Some(LoraConfig::default()),
        (l, _) => l.clone(),
    };
    let full = cfg.full;
    let previous = TrainerState::read(&cfg.out)?;
    if let Some(prev) = previous.as_ref().filter(|_| cfg.resume) {
        if prev.mode != cfg.mode_with(&lora_cfg) {
            bail!("--resume: {} was trained as {}, not {}", cfg.out.display(), prev.mode, cfg.mode_with(&lora_cfg));
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
    std::fs::create_dir_all(&cfg.out).with_context(|| format!("creating {}", cfg.out.display()))?;
    let mix = Mix::load(parse_mix(&cfg.data)?, cfg.flip_augment, cfg.replay, cfg.seed)?;
    let template = PromptTemplate::parse(&cfg.prompt)?;
    let eval_samples = match &cfg.eval {
        Some(spec) => {
            let mut s = crate::data::load(spec).with_context(|| format!("--eval `{spec}`"))?.samples;
            s.truncate(cfg.eval_limit.max(1));
            s
        }
        None => Vec::new(),
    };

    // Full-weight runs resume from their own saved weights.
    let weights_dir = if previous.is_some() && full.is_some() { cfg.out.clone() } else { cfg.model.clone() };
    let mut engine =
        Engine::load_with(&weights_dir, cfg.device, cfg.dtype).with_context(|| format!("loading {}", weights_dir.display()))?;
    if let Some(p) = cfg.max_pixels {
        engine.processor.pre.max_pixels = p;
        engine.processor.pre.min_pixels = engine.processor.pre.min_pixels.min(p);
    }
    tch::manual_seed(cfg.seed as i64);
    let mut params: Vec<(String, Tensor)> = Vec::new();
    if let Some(scope) = full {
        for (name, t) in &engine.model.params {
            if scope.includes(name) {
                params.push((name.clone(), t.shallow_clone()));
            }
        }
    }
    if let Some(lc) = &lora_cfg {
        let n = if previous.is_some() {
            engine.attach_adapter(&cfg.out)?;
            engine.adapter.as_ref().map(|a| a.config.targets.len()).unwrap_or(0)
        } else {
            lora::attach_new(&mut engine.model, lc)?
        };
        on_event(&TrainEvent::Log(format!("LoRA {} on {n} projections", lc.describe())));
        params.extend(lora::parameters(&mut engine.model));
    }
    for (_, p) in params.iter_mut() {
        let _ = p.set_requires_grad(true);
    }
    lora::set_training(&mut engine.model, true);
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
    if let Some(prev) = &previous {
        let saved = Tensor::read_safetensors(cfg.out.join(checkpoint::OPTIMIZER_FILE))
            .with_context(|| format!("reading {}", cfg.out.join(checkpoint::OPTIMIZER_FILE).display()))?;
        opt.restore(&params, &saved, prev.step as i64)?;
        state = TrainerState { total_steps, data: state.data, ..prev.clone() };
        on_event(&TrainEvent::Log(format!(
            "resuming at step {}/{total_steps} (epoch {}, batch {})",
            prev.step, prev.epoch, prev.micro_batches_done
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
    let rx = spawn_producer(Arc::new(mix), producer_processor, template, cfg.batch, (state.epoch, state.micro_batches_done));
    let metrics_path = cfg.out.join(METRICS_FILE);
    let pad = engine.model.config.pad_token_id.unwrap_or(0);
    let device = engine.model.device;
    let started = Instant::now();
    let first_step = state.step;
    let mut skipped = 0;
    let mut gpu_peak = None;
    let mut outcome = TrainOutcome { total_steps, ..Default::default() };
    let mut saved_at = state.step;
    let save = |engine: &mut Engine, opt: &AdamW, state: &TrainerState, params: &[(String, Tensor)]| {
        checkpoint::save(&mut engine.model, lora_cfg.as_ref(), full.is_some(), &cfg.model, &cfg.out, params, opt, state)
    };
    while state.step < total_steps {
        let t0 = Instant::now();
        let mut group: Vec<Micro> = Vec::new();
        while group.len() < cfg.grad_accum {
            let micro = rx.recv().context("the data thread stopped")?;
            for e in &micro.errors {
                on_event(&TrainEvent::Log(e.clone()));
            }
            skipped += micro.errors.len();
            state.epoch = micro.epoch;
            state.micro_batches_done = micro.index + 1;
            if !micro.examples.is_empty() {
                group.push(micro);
            }
        }
        let answer_tokens: usize = group.iter().flat_map(|m| &m.examples).map(|e| e.answer_tokens()).sum();
        let seq_tokens: usize = group.iter().flat_map(|m| &m.examples).map(|e| e.labels.len()).sum();
        let batches: Vec<(ModelInputs, Tensor)> = group.iter().map(|m| example::collate(&m.examples, pad, device)).collect();
        let lr = scheduled_lr(cfg.lr, state.step, warmup, total_steps);
        let (loss_total, grad_norm) = train_step(&engine.model, &batches, &params, &mut opt, lr, cfg.max_grad_norm, vision_grad)
            .with_context(|| format!("step {}", state.step + 1))?;
        state.step += 1;
        state.loss = Some(loss_total);
        let step_s = t0.elapsed().as_secs_f64();
        let elapsed = started.elapsed().as_secs_f64();
        let per_step = elapsed / (state.step - first_step) as f64;
        let (peak, mem_kind) = peak_memory(device, &mut gpu_peak, state.step % 10 == 1 || state.step == total_steps);
        let mut m = StepMetrics {
            step: state.step,
            total_steps,
            epoch: state.epoch as f64 + state.micro_batches_done as f64 / micro_per_epoch.max(1) as f64,
            loss: loss_total,
            lr,
            grad_norm,
            tokens_per_s: seq_tokens as f64 / step_s.max(1e-9),
            answer_tokens,
            elapsed_s: elapsed,
            eta_s: per_step * (total_steps - state.step) as f64,
            peak_mem_bytes: peak,
            mem_kind: mem_kind.into(),
            skipped,
            eval_accuracy: None,
        };
        if !loss_total.is_finite() {
            metrics::append(&metrics_path, &m)?;
            bail!("step {}: the loss is {loss_total}; lower --lr (now {})", state.step, cfg.lr);
        }
        if cfg.eval.is_some() && cfg.eval_every > 0 && (state.step.is_multiple_of(cfg.eval_every) || state.step == total_steps) {
            let (acc, run) = evaluate(&mut engine, cfg, &eval_samples, state.step)?;
            m.eval_accuracy = Some(acc);
            on_event(&TrainEvent::Eval { step: state.step, accuracy: acc, run });
        }
        metrics::append(&metrics_path, &m)?;
        let flow = on_event(&TrainEvent::Step(m));
        let periodic = cfg.save_every > 0 && state.step.is_multiple_of(cfg.save_every);
        if periodic || flow == Flow::Stop || state.step == total_steps {
            save(&mut engine, &opt, &state, &params)?;
            saved_at = state.step;
            on_event(&TrainEvent::Saved { step: state.step, dir: cfg.out.clone() });
        }
        if flow == Flow::Stop {
            outcome.stopped = state.step < total_steps;
            break;
        }
    }
    drop(rx);
    if saved_at != state.step {
        save(&mut engine, &opt, &state, &params)?;
    }
    outcome.steps = state.step;
    outcome.final_loss = state.loss;
    outcome.skipped = skipped;
    if cfg.merge && !outcome.stopped {
        let _guard = tch::no_grad_guard();
        for (_, p) in params.iter_mut() {
            let _ = p.set_requires_grad(false);
        }
        let merged = cfg.out.join("merged");
        lora::merge(&mut engine.model);
        checkpoint::write_full(&engine.model, &weights_dir, &merged)?;
        on_event(&TrainEvent::Log(format!("merged checkpoint written to {}", merged.display())));
        outcome.merged = Some(merged);
    }
    Ok(outcome)
}

/// The base model a training output was made from (for eval --adapter and the TUI).
pub fn base_model_of(out: &Path) -> Result<Option<PathBuf>> {
    Ok(TrainerState::read(out)?.map(|s| PathBuf::from(s.base_model)))
}
