//! The TUI's state: everything drawing needs, nothing that touches torch.

use super::filter::{self, Filter, SavedView, SortKey};
use super::keymap::Keymap;
use super::theme::Theme;
use crate::causal::overview::CausalOverview;
use crate::causal::AnswerForm;
use crate::data::{BoundingBox, Dataset, Sample};
use crate::engine::intervene::Intervention;
use crate::engine::saliency::{Baseline, SaliencyMethod};
use crate::engine::OptionScores;
use crate::eval::Variant;
use crate::jobs::{JobId, SaliencyGoal};
use crate::runs::report::{self, AccuracyRow, PairedRow};
use crate::runs::{Record, RunMeta, RunSummary};
use crate::spatial::confusion::ConfusionMatrix;
use crate::viz::{Colormap, SaliencyMap};
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pane {
    Samples,
    Sample,
    Live,
    Confusion,
    Saliency,
    Runs,
    Causal,
}

impl Pane {
    pub const ALL: [Pane; 7] = [Pane::Samples, Pane::Sample, Pane::Live, Pane::Confusion, Pane::Saliency, Pane::Runs, Pane::Causal];

    /// The keymap mode of this pane.
    pub fn mode(self) -> crate::tui::keymap::Mode {
        use crate::tui::keymap::Mode;
        match self {
            Pane::Samples => Mode::Samples,
            Pane::Sample => Mode::Sample,
            Pane::Live => Mode::Live,
            Pane::Confusion => Mode::Confusion,
            Pane::Saliency => Mode::Saliency,
            Pane::Runs => Mode::Runs,
            Pane::Causal => Mode::Causal,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Pane::Samples => "Samples",
            Pane::Sample => "Sample",
            Pane::Live => "Live answer",
            Pane::Confusion => "Confusion",
            Pane::Saliency => "Saliency",
            Pane::Runs => "Runs & jobs",
            Pane::Causal => "Causal",
        }
    }

    pub fn index(self) -> usize {
        Pane::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum EngineStatus {
    Loading,
    Ready { seconds: f64, layers: usize },
    Failed(String),
}

/// How far a job got, as the TUI knows it.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Phase {
    #[default]
    Idle,
    Queued,
    Running,
    Done,
    Cancelled,
    Failed(String),
}

impl Phase {
    pub fn busy(&self) -> bool {
        matches!(self, Phase::Queued | Phase::Running)
    }
    pub fn name(&self) -> String {
        match self {
            Phase::Idle => "idle".into(),
            Phase::Queued => "queued".into(),
            Phase::Running => "running".into(),
            Phase::Done => "done".into(),
            Phase::Cancelled => "cancelled".into(),
            Phase::Failed(e) => format!("failed: {e}"),
        }
    }
}

/// Figures of the open run, recomputed when its records change.
#[derive(Clone, Debug, Default)]
pub struct RunStats {
    pub accuracy: Vec<AccuracyRow>,
    pub error_shares: Vec<(String, usize, f64)>,
    pub categories: Vec<String>,
    /// What a degenerate run would also show (letter bias, an incomplete sampled run).
    pub warnings: Vec<crate::runs::warnings::Warning>,
}

/// The run whose records the panes show.
#[derive(Clone, Debug, Default)]
pub struct OpenRun {
    pub name: String,
    pub dir: PathBuf,
    pub meta: Option<RunMeta>,
    pub records: Vec<Record>,
    /// Sample id -> index of its rotation-0 record.
    pub by_id: HashMap<String, usize>,
    /// Sample id -> indices of its sampled answers (`eval --samples N`).
    pub sampled: HashMap<String, Vec<usize>>,
    pub stats: RunStats,
}

impl OpenRun {
    pub fn new(name: String, dir: PathBuf, meta: Option<RunMeta>, records: Vec<Record>) -> OpenRun {
        let by_id = records.iter().enumerate().filter(|(_, r)| r.rotation == 0).map(|(i, r)| (r.id.clone(), i)).collect();
        let mut stats = RunStats::default();
        if !records.is_empty() {
            stats.accuracy = report::accuracy_by(&records, report::GroupBy::Category);
            stats.error_shares = report::error_shares(&records);
            let sampled = crate::runs::sampling::sampled_rows(&records, report::GroupBy::Category);
            stats.warnings = crate::runs::warnings::for_run(&records, &sampled);
        }
        stats.categories = stats.accuracy.iter().filter(|r| r.group != "overall").map(|r| r.group.clone()).collect();
        let mut sampled: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, r) in records.iter().enumerate().filter(|(_, r)| r.sample.is_some()) {
            sampled.entry(r.id.clone()).or_default().push(i);
        }
        OpenRun { name, dir, meta, records, by_id, sampled, stats }
    }

    /// Records whose sample id is in `dataset` but whose gold is not that
    /// sample's: the run was made on other data with the same ids.
    pub fn foreign_records(&self, dataset: &Dataset) -> usize {
        let by_id: HashMap<&str, &Sample> = dataset.samples.iter().map(|s| (s.id.as_str(), s)).collect();
        self.records
            .iter()
            .filter(|r| r.rotation == 0)
            .filter_map(|r| Some((r, *by_id.get(r.id.as_str())?)))
            .filter(|(r, s)| {
                let gold = s.gold_letter.map(|l| l.to_string()).or_else(|| s.gold_text.clone());
                r.gold_direction != s.gold_direction || r.gold_letter != gold
            })
            .count()
    }

    pub fn record_for(&self, id: &str) -> Option<&Record> {
        self.by_id.get(id).map(|&i| &self.records[i])
    }

    /// How the sampled answers to `s` split, each named by its option's
    /// text: "left 5/8 · right 3/8". None when the run did not sample.
    pub fn sample_distribution(&self, s: &crate::data::Sample) -> Option<String> {
        let indices = self.sampled.get(&s.id)?;
        let samples: Vec<&Record> = indices.iter().map(|&i| &self.records[i]).collect();
        let q = crate::runs::sampling::SampledQuestion { id: &s.id, first: samples[0], samples: samples.clone() };
        let name = |answer: &str| {
            let mut chars = answer.chars();
            match (chars.next(), chars.next()) {
                (Some(l), None) => s.option(l).map(|o| o.text.clone()).unwrap_or_else(|| answer.to_string()),
                _ => answer.to_string(),
            }
        };
        let n = q.n();
        Some(q.distribution().iter().map(|(a, c)| format!("{} {c}/{n}", name(a))).collect::<Vec<_>>().join(" · "))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputPurpose {
    Search,
    Question,
    ViewName,
    /// The finetune settings line, confirmed with enter.
    Finetune,
}

impl InputPurpose {
    pub fn prompt(self) -> &'static str {
        match self {
            InputPurpose::Search => "search",
            InputPurpose::Question => "ask",
            InputPurpose::ViewName => "save view as",
            InputPurpose::Finetune => "finetune (edit, enter starts)",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Input {
    pub purpose: InputPurpose,
    pub text: String,
}

#[derive(Clone, Debug, Default)]
pub struct SamplesState {
    pub filters: Vec<Filter>,
    pub sort: SortKey,
    pub reverse: bool,
    /// Dataset indices in display order.
    pub visible: Vec<usize>,
    /// Position in `visible`.
    pub cursor: usize,
    pub views: Vec<SavedView>,
    pub view: Option<usize>,
}

/// How the live answer is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AskVariant {
    #[default]
    Plain,
    Boxed,
    Flipped,
    AdaptVis,
}

impl AskVariant {
    pub fn spec(self) -> &'static str {
        match self {
            AskVariant::Plain => "plain",
            AskVariant::Boxed => "boxed",
            AskVariant::Flipped => "flipped",
            AskVariant::AdaptVis => "adaptvis",
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct LiveState {
    pub job: Option<JobId>,
    pub phase: Phase,
    pub sample_id: Option<String>,
    pub variant: AskVariant,
    /// A question the user typed, and the gold they gave with it (none: not judged).
    pub question: Option<String>,
    pub typed_gold: Option<TypedGold>,
    /// The sample as the model was asked it (mirrored options for `flipped`).
    pub asked: Option<Sample>,
    /// Asked from the Samples list: the answer is announced on the status line.
    pub asked_from_list: bool,
    pub scores: Option<OptionScores>,
    pub text: String,
    pub record: Option<Record>,
    pub saved: bool,
}

/// The gold a user gives a typed question (`gold=B ...`, `gold=left ...`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TypedGold {
    Letter(char),
    Direction(crate::spatial::Direction),
}

#[derive(Clone, Debug, Default)]
pub struct ConfusionState {
    /// None: all categories.
    pub category: Option<String>,
    pub errors_only: bool,
    pub row: usize,
    pub col: usize,
    pub matrix: Option<ConfusionMatrix>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SaliencyMode {
    #[default]
    Gradient,
    Attention,
}

/// Methods `m` cycles through.
pub const SALIENCY_METHODS: [SaliencyMethod; 3] = [
    SaliencyMethod::Grad,
    SaliencyMethod::SmoothGrad { n: 8, sigma: 0.15, seed: 0 },
    SaliencyMethod::IntegratedGradients { steps: 16, baseline: Baseline::Black },
];

/// The next of `items` after `current` (the first when it is not among them).
pub fn cycle<T: Clone + PartialEq>(items: &[T], current: &T) -> T {
    let i = items.iter().position(|x| x == current).map_or(0, |i| (i + 1) % items.len());
    items[i].clone()
}

#[derive(Clone, Debug, PartialEq)]
pub struct SaliencyResult {
    /// The request this answers (sample, method, goal, mode, layer).
    pub key: String,
    pub sample_id: String,
    pub target: String,
    pub plain: Vec<SaliencyMap>,
    pub boxed: Option<(Vec<SaliencyMap>, BoundingBox)>,
    /// Attention mode: the layer and the share of attention on image tokens.
    pub attention: Option<(usize, f32)>,
}

/// A pane's latest-wins job on the engine thread: the key of what it asked
/// for, how far that got, and the last answer (which carries its own key).
#[derive(Clone, Debug)]
pub struct FocusedJob<T> {
    pub job: Option<JobId>,
    pub pending_key: Option<String>,
    pub phase: Phase,
    pub result: Option<T>,
}

impl<T> Default for FocusedJob<T> {
    fn default() -> Self {
        FocusedJob { job: None, pending_key: None, phase: Phase::Idle, result: None }
    }
}

impl<T> FocusedJob<T> {
    pub fn owns(&self, id: JobId) -> bool {
        self.job == Some(id)
    }

    /// Whether the request with `key` is queued or running.
    pub fn coming(&self, key: &str) -> bool {
        self.pending_key.as_deref() == Some(key) && self.phase.busy()
    }

    pub fn submitted(&mut self, id: JobId, key: String) {
        self.job = Some(id);
        self.pending_key = Some(key);
        self.phase = Phase::Queued;
    }

    /// The job, while it is queued or running (what cancel stops).
    pub fn busy_job(&self) -> Option<JobId> {
        self.job.filter(|_| self.phase.busy())
    }
}

/// A pane's result, by the key of the request it answers.
pub trait Answers {
    fn key(&self) -> &str;
}

impl<T: Answers> FocusedJob<T> {
    /// Whether to ask for `key`: not while its answer is shown or on its way, unless `force`d.
    pub fn wants(&self, key: &str, force: bool) -> bool {
        force || !(self.result.as_ref().is_some_and(|r| r.key() == key) || self.coming(key))
    }
}

impl Answers for SaliencyResult {
    fn key(&self) -> &str {
        &self.key
    }
}

impl Answers for CausalResult {
    fn key(&self) -> &str {
        &self.key
    }
}

#[derive(Clone, Debug)]
pub struct SaliencyState {
    pub method: SaliencyMethod,
    /// Which answer the map explains.
    pub goal: SaliencyGoal,
    pub colormap: Colormap,
    pub alpha: f32,
    pub mode: SaliencyMode,
    pub layer: usize,
    pub work: FocusedJob<SaliencyResult>,
}

impl Default for SaliencyState {
    fn default() -> Self {
        SaliencyState {
            method: SALIENCY_METHODS[0],
            goal: SaliencyGoal::Predicted,
            colormap: Colormap::Inferno,
            alpha: 0.6,
            mode: SaliencyMode::Gradient,
            layer: 0,
            work: FocusedJob::default(),
        }
    }
}

/// Knockout windows `w` cycles through.
pub const KNOCKOUT_WINDOWS: [usize; 3] = [1, 2, 4];

/// Answer forms `f` cycles through.
pub const ANSWER_FORMS: [AnswerForm; 3] = [AnswerForm::Auto, AnswerForm::Letter, AnswerForm::Words];

#[derive(Clone, Debug, PartialEq)]
pub struct CausalResult {
    /// The request this answers (sample, answer form, window).
    pub key: String,
    pub overview: CausalOverview,
}

/// The Causal pane: one sample's decision curve, knockout table and patching map.
#[derive(Clone, Debug)]
pub struct CausalState {
    pub form: AnswerForm,
    pub window: usize,
    /// The first layer row the tables show (they scroll together).
    pub scroll: usize,
    pub work: FocusedJob<CausalResult>,
}

impl Default for CausalState {
    fn default() -> Self {
        CausalState { form: AnswerForm::Auto, window: KNOCKOUT_WINDOWS[0], scroll: 0, work: FocusedJob::default() }
    }
}

/// Variants `v` cycles through for reruns (AdaptVis with the paper's settings).
pub fn rerun_variants() -> [Variant; 4] {
    [Variant::Plain, Variant::Flipped, Variant::Boxed, Variant::Attention(Intervention::ADAPTVIS_PAPER)]
}

#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    pub rows: Vec<PairedRow>,
    /// Flip consistency beside its chance level, when one run is the other's mirror.
    pub flip: Vec<crate::runs::report_model::FlipRow>,
    pub warnings: Vec<crate::runs::warnings::Warning>,
}

#[derive(Clone, Debug, Default)]
pub struct RunsState {
    pub list: Vec<RunSummary>,
    pub cursor: usize,
    pub marked: Option<usize>,
    pub compare: Option<Comparison>,
    pub variant: Variant,
    /// The cursor is in the jobs list rather than the runs list.
    pub in_jobs: bool,
    pub job_cursor: usize,
    /// How many log lines back from the newest the job log is scrolled.
    pub log_scroll: usize,
}

/// A background job as the Runs pane shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct JobView {
    pub id: JobId,
    pub label: String,
    pub phase: Phase,
    pub done: usize,
    pub total: usize,
    pub elapsed_s: f64,
    pub log: Vec<String>,
    /// The run an eval job writes, reopened when it ends.
    pub run_dir: Option<PathBuf>,
    /// Where a finetune writes its adapter.
    pub train_out: Option<PathBuf>,
    /// (step, loss) of a finetune so far.
    pub losses: Vec<(f64, f64)>,
    /// GRPO: (step, mean reward) and (step, rollout accuracy) so far.
    pub rewards: Vec<(f64, f64)>,
    pub rollout_accuracy: Vec<(f64, f64)>,
    pub metrics: Option<crate::train::metrics::StepMetrics>,
    /// A run to compare this eval's run with when it finishes (base vs finetuned).
    pub compare_with: Option<PathBuf>,
}

impl JobView {
    /// Seconds left at the rate so far.
    pub fn eta_s(&self) -> Option<f64> {
        (self.done > 0 && self.total > self.done).then(|| self.elapsed_s / self.done as f64 * (self.total - self.done) as f64)
    }
}

pub struct App {
    pub dataset: Dataset,
    pub data_label: String,
    pub model_label: String,
    pub engine: EngineStatus,
    pub run: OpenRun,
    pub keymap: Keymap,
    pub theme: Theme,
    pub focus: Pane,
    pub samples: SamplesState,
    pub frame: usize,
    pub input: Option<Input>,
    pub live: LiveState,
    pub confusion: ConfusionState,
    pub saliency: SaliencyState,
    pub causal: CausalState,
    pub runs: RunsState,
    pub jobs: Vec<JobView>,
    pub show_help: bool,
    pub help_scroll: usize,
    /// A one-line notice in the status bar (errors, "saved").
    pub message: Option<String>,
    /// The image protocol in use (drawn in the status line).
    pub protocol: String,
    pub quit: bool,
}

impl App {
    pub fn new(dataset: Dataset, run: OpenRun, keymap: Keymap, theme: Theme) -> App {
        let data_label = dataset.name.clone();
        let mut app = App {
            dataset,
            data_label,
            model_label: "no model".into(),
            engine: EngineStatus::Loading,
            run,
            keymap,
            theme,
            focus: Pane::Samples,
            samples: SamplesState::default(),
            frame: 0,
            input: None,
            live: LiveState::default(),
            confusion: ConfusionState::default(),
            saliency: SaliencyState::default(),
            causal: CausalState::default(),
            runs: RunsState::default(),
            jobs: Vec::new(),
            show_help: false,
            help_scroll: 0,
            message: None,
            protocol: "halfblocks".into(),
            quit: false,
        };
        app.refresh();
        app.refresh_confusion();
        app
    }

    /// Recomputes the confusion matrix: after the records or the category change.
    pub fn refresh_confusion(&mut self) {
        let run = &self.run;
        self.confusion.matrix = if run.records.iter().any(|r| r.gold_direction.is_some()) {
            Some(report::confusion(&run.records, self.confusion.category.as_deref()))
        } else {
            None
        };
        if let Some(m) = &self.confusion.matrix {
            self.confusion.row = self.confusion.row.min(m.gold_labels.len().saturating_sub(1));
            self.confusion.col = self.confusion.col.min(m.predicted_labels.len().saturating_sub(1));
        }
    }

    /// Recomputes the visible samples: after the records, filters or sort change.
    pub fn refresh(&mut self) {
        let focused = self.focused_index();
        let run = &self.run;
        let ids: Vec<Option<usize>> = self.dataset.samples.iter().map(|s| run.by_id.get(&s.id).copied()).collect();
        let s = &self.samples;
        self.samples.visible = filter::visible(&self.dataset.samples, &|i| ids[i], &run.records, &s.filters, s.sort, s.reverse);
        // Keep the same sample under the cursor when it is still shown.
        self.samples.cursor = focused.and_then(|f| self.samples.visible.iter().position(|&i| i == f)).unwrap_or(0);
    }

    /// Dataset index of the sample under the cursor.
    pub fn focused_index(&self) -> Option<usize> {
        self.samples.visible.get(self.samples.cursor).copied()
    }

    pub fn focused_sample(&self) -> Option<&Sample> {
        self.focused_index().map(|i| &self.dataset.samples[i])
    }

    pub fn focused_record(&self) -> Option<&Record> {
        self.focused_sample().and_then(|s| self.run.record_for(&s.id))
    }

    /// The samples that pass the current filter, in display order.
    pub fn visible_samples(&self) -> Vec<Sample> {
        self.samples.visible.iter().map(|&i| self.dataset.samples[i].clone()).collect()
    }

    /// The model's LM layers once it is loaded.
    pub fn layers(&self) -> Option<usize> {
        match self.engine {
            EngineStatus::Ready { layers, .. } => Some(layers),
            _ => None,
        }
    }

    pub fn running_jobs(&self) -> usize {
        self.jobs.iter().filter(|j| j.phase.busy()).count()
    }
}
