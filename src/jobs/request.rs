//! What can be asked of the engine thread, and what it reports back.

use crate::causal::overview::CausalOverview;
use crate::causal::AnswerForm;
use crate::data::{BoundingBox, Sample};
use crate::engine::saliency::SaliencyMethod;
use crate::engine::OptionScores;
use crate::eval::EvalConfig;
use crate::runs::Record;
use crate::train::metrics::StepMetrics;
use crate::train::TrainConfig;
use crate::viz::{Colormap, SaliencyMap};
use std::path::PathBuf;

pub type JobId = u64;

/// Which answer a saliency map explains.
#[derive(Clone, Debug, PartialEq)]
pub enum SaliencyGoal {
    /// The option the model scores highest.
    Predicted,
    /// The gold option.
    Gold,
    /// One option label ("A", "Yes").
    Label(String),
}

impl std::fmt::Display for SaliencyGoal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaliencyGoal::Predicted => f.write_str("predicted"),
            SaliencyGoal::Gold => f.write_str("gold"),
            SaliencyGoal::Label(l) => write!(f, "option {l}"),
        }
    }
}

/// Work for the engine.
#[derive(Clone, Debug)]
pub enum JobRequest {
    /// Ask about one sample under a variant (scores, then a streamed answer);
    /// ends with the record an eval would have written.
    Ask { sample: Box<Sample>, config: EvalConfig, question: Option<String> },
    /// Saliency maps for one sample; with `compare_boxed`, also for the same
    /// sample with a red box around its reference object.
    SampleSaliency { sample: Box<Sample>, goal: SaliencyGoal, method: SaliencyMethod, compare_boxed: bool },
    /// The answer position's attention over the image tokens at one layer.
    Attention { sample: Box<Sample>, layer: usize },
    /// An eval run over `samples` (resumed when its folder exists), with a
    /// LoRA adapter attached to a second copy of the model when given.
    Eval { samples: Vec<Sample>, config: EvalConfig, run: EvalRun, adapter: Option<PathBuf> },
    /// A finetune (its own copy of the model); cancelling saves a checkpoint.
    Train { config: Box<TrainConfig> },
    /// Saliency heatmaps for many samples, written as PNGs into `out`.
    SaliencyBatch { samples: Vec<Sample>, method: SaliencyMethod, colormap: Colormap, out: PathBuf },
    /// One sample's decision curve, knockout table and patching map, each
    /// reported as it is done.
    Causal { sample: Box<Sample>, form: AnswerForm, window: usize },
    /// The logit lens, knockout and patching over many samples, one row per
    /// sample into `run`'s causal rows (resumed; other settings refused).
    CausalBatch { samples: Vec<Sample>, form: AnswerForm, window: usize, run: PathBuf, data_spec: String },
}

/// Where an eval job writes and what its run.json names. The engine thread
/// writes the run.json itself: the model's fingerprint, the dataset's hash and
/// the device actually used are read there, not on the UI thread.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalRun {
    pub dir: PathBuf,
    pub name: String,
    pub data_spec: String,
    /// The variant as the user named it (`plain`, `adaptvis:...`).
    pub variant: String,
}

impl JobRequest {
    /// Focused jobs are latest-wins within their lane: one per pane that asks.
    pub fn lane(&self) -> &'static str {
        match self {
            JobRequest::Ask { .. } => "live",
            JobRequest::SampleSaliency { .. } | JobRequest::Attention { .. } => "saliency",
            JobRequest::Causal { .. } => "causal",
            JobRequest::Eval { .. } | JobRequest::SaliencyBatch { .. } | JobRequest::Train { .. } | JobRequest::CausalBatch { .. } => {
                "background"
            }
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            JobRequest::Ask { .. } => "ask",
            JobRequest::SampleSaliency { .. } => "saliency",
            JobRequest::Attention { .. } => "attention",
            JobRequest::Eval { .. } => "eval",
            JobRequest::SaliencyBatch { .. } => "saliency batch",
            JobRequest::Train { .. } => "train",
            JobRequest::Causal { .. } => "causal",
            JobRequest::CausalBatch { .. } => "causal batch",
        }
    }
}

/// What the worker reports.
#[derive(Clone, Debug)]
pub enum JobEvent {
    EngineLoaded {
        model: String,
        seconds: f64,
        layers: usize,
    },
    EngineFailed {
        error: String,
    },
    Started {
        id: JobId,
        kind: &'static str,
    },
    /// The sample as the model is asked it (variant and typed question applied).
    Asked {
        id: JobId,
        sample: Box<Sample>,
    },
    Scores {
        id: JobId,
        scores: OptionScores,
    },
    Token {
        id: JobId,
        delta: String,
    },
    Answered {
        id: JobId,
        record: Box<Record>,
    },
    Saliency {
        id: JobId,
        sample_id: String,
        target: String,
        plain: Vec<SaliencyMap>,
        boxed: Option<(Vec<SaliencyMap>, BoundingBox)>,
    },
    Attention {
        id: JobId,
        sample_id: String,
        layer: usize,
        maps: Vec<SaliencyMap>,
        image_share: f32,
    },
    /// A causal overview so far (its parts arrive one by one).
    Causal {
        id: JobId,
        overview: Box<CausalOverview>,
    },
    Progress {
        id: JobId,
        done: usize,
        total: usize,
        elapsed_s: f64,
    },
    /// One optimizer step of a finetune.
    TrainStep {
        id: JobId,
        metrics: Box<StepMetrics>,
    },
    Log {
        id: JobId,
        line: String,
    },
    Finished {
        id: JobId,
    },
    Cancelled {
        id: JobId,
    },
    Failed {
        id: JobId,
        error: String,
    },
}

impl JobEvent {
    pub fn id(&self) -> Option<JobId> {
        match self {
            JobEvent::Started { id, .. }
            | JobEvent::Asked { id, .. }
            | JobEvent::Scores { id, .. }
            | JobEvent::Token { id, .. }
            | JobEvent::Answered { id, .. }
            | JobEvent::Saliency { id, .. }
            | JobEvent::Attention { id, .. }
            | JobEvent::Causal { id, .. }
            | JobEvent::Progress { id, .. }
            | JobEvent::TrainStep { id, .. }
            | JobEvent::Log { id, .. }
            | JobEvent::Finished { id }
            | JobEvent::Cancelled { id }
            | JobEvent::Failed { id, .. } => Some(*id),
            JobEvent::EngineLoaded { .. } | JobEvent::EngineFailed { .. } => None,
        }
    }

    /// Whether this event ends its job.
    pub fn is_end(&self) -> bool {
        matches!(self, JobEvent::Finished { .. } | JobEvent::Cancelled { .. } | JobEvent::Failed { .. })
    }
}
