//! Training's parts: `TrainConfig` (the one grammar of `flipscope train` and
//! the TUI's finetune line), the answer-token loss, one optimizer step
//! (`train_step`: AdamW with warmup + cosine decay, gradient clipping and
//! accumulation), and the helper thread that prepares examples (decode,
//! flip, resize, tokenise) while the engine trains on the previous batch.
//! `run.rs` puts them together into a run that `--resume` picks up.
//!
//! `--recompute` trades time for memory by recomputing decoder layers in the
//! backward pass (`recompute.rs`); `--batch 1 --grad-accum K` is the other way.

use super::checkpoint::TrainerState;
use super::example::{self, TrainExample, IGNORE};
use super::metrics::StepMetrics;
use super::mix::{Item, Mix};
use super::optim::{clip_grad_norm, zero_grad, AdamW};
use crate::engine::lora::LoraConfig;
use crate::engine::{ModelInputs, Processor, Qwen25VL, Rows};
use crate::eval::PromptTemplate;
use crate::kv::numbers::{at_least_one, fraction, non_negative, positive};
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use tch::{Kind, Reduction, Tensor};

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
    /// Base checkpoint directory (Hugging Face layout), or `demo` for the embedded demo model.
    #[arg(long, value_parser = crate::config::model_path)]
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
    #[arg(long, default_value_t = 1, value_parser = at_least_one)]
    pub epochs: usize,
    #[arg(long, default_value_t = 1e-4, value_parser = positive)]
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
    /// Dataset spec to evaluate on every --eval-every steps, asked as the checkpoint answers (its flipscope.json).
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
    #[command(flatten)]
    pub placement: crate::engine::Placement,
    /// Share of the steps spent warming the learning rate up from 0.
    #[arg(long, default_value_t = 0.03, value_parser = fraction)]
    pub warmup_ratio: f64,
    #[arg(long, default_value_t = 0.0, value_parser = non_negative)]
    pub weight_decay: f64,
    /// Global gradient-norm clip (0: none).
    #[arg(long, default_value_t = 1.0, value_parser = non_negative)]
    pub max_grad_norm: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Train on horizontally flipped samples (image mirrored, left/right swapped).
    #[arg(long)]
    pub flip_augment: bool,
    /// With --flip-augment: the share of original samples kept beside the flipped ones.
    #[arg(long, default_value_t = 1.0, value_parser = fraction)]
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
    /// Recompute each decoder layer's activations in the backward pass
    /// instead of keeping them: less memory for long sequences, more time.
    #[arg(long)]
    pub recompute: bool,
    /// The method (sft or grpo) and GRPO's settings.
    #[command(flatten)]
    pub grpo: super::grpo::GrpoArgs,
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

    /// The long flags this grammar knows (`data`, `method`, `group`, ...).
    pub fn long_flags() -> Vec<String> {
        use clap::CommandFactory;
        TrainLine::command().get_arguments().filter_map(|a| a.get_long().map(str::to_string)).collect()
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
    pub(super) fn mode(&self) -> String {
        self.mode_with(&self.lora)
    }

    /// `lora`, `full:SCOPE` or `lora+full:SCOPE`, for the LoRA settings in
    /// effect, and GRPO's settings when it is the method (a resume must match).
    pub(super) fn mode_with(&self, lora: &Option<LoraConfig>) -> String {
        let weights = match (lora, self.full) {
            (Some(_), Some(f)) => format!("lora+full:{}", f.name()),
            (None, Some(f)) => format!("full:{}", f.name()),
            _ => "lora".into(),
        };
        match self.grpo.method {
            super::grpo::Method::Sft => weights,
            super::grpo::Method::Grpo => format!("{weights}+{}", self.grpo.describe()),
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

/// The vision tower's output for training: with gradients only when `vision_grad`.
pub(crate) fn training_vision(model: &Qwen25VL, inputs: &ModelInputs, vision_grad: bool) -> Option<Tensor> {
    inputs.pixel_values.as_ref().map(|p| {
        if vision_grad {
            model.vision_embeds(p, &inputs.grids)
        } else {
            let _guard = tch::no_grad_guard();
            model.vision_embeds(p, &inputs.grids)
        }
    })
}

/// The final hidden states of every position [B, L, D], as training needs
/// them: the vision tower runs without gradients unless `vision_grad`.
pub(crate) fn training_hidden(model: &Qwen25VL, inputs: &ModelInputs, vision_grad: bool) -> Result<Tensor> {
    let vision = training_vision(model, inputs, vision_grad);
    let mut cache = model.new_cache();
    model.prefill_with_vision(inputs, vision.as_ref(), &mut cache, Rows::All)
}

/// Sum of cross-entropy over the labelled positions (next-token: position t
/// predicts label t+1) and how many there are. Logits are computed only at
/// those positions. The vision tower runs without gradients unless `vision_grad`.
pub fn answer_loss_sum(model: &Qwen25VL, inputs: &ModelInputs, labels: &Tensor, vision_grad: bool) -> Result<(Tensor, i64)> {
    answer_loss_of_hidden(model, &training_hidden(model, inputs, vision_grad)?, labels)
}

/// `answer_loss_sum` from the final hidden states.
pub fn answer_loss_of_hidden(model: &Qwen25VL, hidden: &Tensor, labels: &Tensor) -> Result<(Tensor, i64)> {
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
#[allow(clippy::too_many_arguments)]
pub fn train_step(
    model: &Qwen25VL,
    batches: &[(ModelInputs, Tensor)],
    params: &[(String, Tensor)],
    opt: &mut AdamW,
    lr: f64,
    max_grad_norm: f64,
    vision_grad: bool,
    recompute: bool,
) -> Result<(f64, f64)> {
    let answer_tokens: i64 = batches
        .iter()
        .map(|(_, labels)| i64::try_from(labels.narrow(1, 1, labels.size()[1] - 1).ne(IGNORE).sum(Kind::Int64)).unwrap_or(0))
        .sum();
    let mut loss_total = 0.0;
    for (inputs, labels) in batches {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<f64> {
            let scale = 1.0 / answer_tokens.max(1) as f64;
            if recompute {
                return super::recompute::loss_backward(model, inputs, vision_grad, &mut |hidden| {
                    Ok(answer_loss_of_hidden(model, hidden, labels)?.0 * scale)
                });
            }
            let (sum, _) = answer_loss_sum(model, inputs, labels, vision_grad)?;
            let loss = sum * scale;
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
pub(super) struct Micro {
    pub epoch: usize,
    /// Index of this micro-batch within its epoch.
    pub index: usize,
    pub examples: Vec<TrainExample>,
    /// GRPO's prompts (no answer: the policy samples its own).
    pub prompts: Vec<(crate::data::Sample, crate::engine::PreparedPrompt)>,
    pub errors: Vec<String>,
}

pub(super) fn spawn_producer(
    mix: Arc<Mix>,
    processor: Processor,
    template: PromptTemplate,
    batch: usize,
    start: (usize, usize),
    method: super::grpo::Method,
) -> Receiver<Micro> {
    let (tx, rx) = sync_channel::<Micro>(3);
    std::thread::spawn(move || {
        for epoch in start.0.. {
            let items: Vec<Item> = mix.epoch(epoch);
            let skip = if epoch == start.0 { start.1 } else { 0 };
            for (index, chunk) in items.chunks(batch).enumerate().skip(skip) {
                let (mut examples, mut prompts, mut errors) = (Vec::new(), Vec::new(), Vec::new());
                for item in chunk {
                    let sample = mix.sample(*item);
                    let built = match method {
                        super::grpo::Method::Sft => example::build(&processor, &template, sample, item.flipped).map(|e| examples.push(e)),
                        super::grpo::Method::Grpo => {
                            example::build_prompt(&processor, &template, sample, item.flipped).map(|p| prompts.push(p))
                        }
                    };
                    if let Err(e) = built {
                        errors.push(format!("skipped {}: {e:#}", sample.id));
                    }
                }
                if tx.send(Micro { epoch, index, examples, prompts, errors }).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// The base model a training output was made from (for eval --adapter and the TUI).
pub fn base_model_of(out: &Path) -> Result<Option<PathBuf>> {
    Ok(TrainerState::read(out)?.map(|s| PathBuf::from(s.base_model)))
}
