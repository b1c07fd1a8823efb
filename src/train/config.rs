//! `TrainConfig`: the one grammar of `flipscope train` and the TUI's
//! finetune line, and what a run reports (`TrainEvent`, `TrainOutcome`).
//! `trainer.rs` puts the parts together into a run that `--resume` picks up.

use super::metrics::StepMetrics;
use crate::engine::lora::LoraConfig;
use crate::kv::numbers::{at_least_one, fraction, non_negative, positive};
use std::path::PathBuf;

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
