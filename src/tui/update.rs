//! `update(app, msg) -> effects`: the only place state changes. Pure: the
//! effects it returns (submit a job, read a run, write a file) are carried
//! out by the runtime, whose results come back as messages.

use super::action::Action;
use super::filter::{Filter, SavedView, Status};
use super::state::*;
use crate::data::Sample;
use crate::engine::saliency::SaliencyMethod;
use crate::eval::{EvalConfig, EvalMode, PromptTemplate, Variant};
use crate::jobs::{JobEvent, JobId, JobRequest, SaliencyGoal};
use crate::runs::{Record, RunSummary};
use crate::train::TrainConfig;
use crate::viz::Colormap;
use std::path::PathBuf;

/// Tokens a live answer may generate.
pub const LIVE_MAX_NEW_TOKENS: usize = 32;
const LOG_LINES: usize = 200;

#[derive(Clone, Debug)]
pub enum Msg {
    /// A key name ("j", "ctrl-c", "enter"), resolved through the keymap or typed into the input line.
    Key(String),
    Action(Action),
    Job(JobEvent),
    /// The runtime submitted a job and got its id.
    Submitted {
        purpose: Purpose,
        id: JobId,
    },
    RunsListed(Vec<RunSummary>),
    RunOpened(Box<OpenRun>),
    Compared(Comparison),
    Notice(String),
    ProtocolChanged(String),
    /// Something drawn changed outside the state (an image was made): draw again.
    Redraw,
}

/// Why a job was submitted, so its events land in the right pane.
#[derive(Clone, Debug, PartialEq)]
pub enum Purpose {
    Live,
    Saliency { key: String },
    Background(Background),
}

/// A background job as the Runs pane tracks it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Background {
    pub label: String,
    /// The run an eval writes (reopened when it ends).
    pub run_dir: Option<PathBuf>,
    /// Where a finetune writes its adapter.
    pub train_out: Option<PathBuf>,
    /// The run to compare the eval's run with when it finishes.
    pub compare_with: Option<PathBuf>,
}

impl Background {
    pub fn labelled(label: impl Into<String>) -> Background {
        Background { label: label.into(), ..Default::default() }
    }
}

/// The finetune line as it first opens: flags of `flipscope train`, parsed by
/// its own grammar. The workbench adds `--model` (its model) and `--out`
/// (`runs/finetunes/ft-<time>`); `--data current` is the open dataset.
pub const FINETUNE_LINE: &str = "--data current --lora r=16,alpha=32,dropout=0.05 --max-steps 100 --lr 0.0001 --batch 4";

/// The finetune line as a `TrainConfig` (model and out still empty), or
/// clap's complaint.
pub fn parse_finetune_line(line: &str) -> Result<TrainConfig, String> {
    // The workbench fills in --model and --out; clap only needs something there.
    let args = ["--model", "-", "--out", "-"].into_iter().map(String::from).chain(line.split_whitespace().map(String::from));
    let cfg = TrainConfig::try_parse_from(args).map_err(|e| {
        // clap's complaint on one line, without its usage and help hints.
        let text = e.to_string();
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more"))
            .filter(|l| !l.is_empty())
            .collect();
        lines.join(" ").trim_start_matches("error: ").to_string()
    })?;
    Ok(TrainConfig { model: PathBuf::new(), out: PathBuf::new(), ..cfg })
}

#[derive(Clone, Debug)]
pub enum Effect {
    Submit {
        purpose: Purpose,
        request: Box<JobRequest>,
        focused: bool,
    },
    /// An eval run of `samples` under `variant` into run `run` (the runtime builds its run.json).
    Rerun {
        samples: Vec<Sample>,
        variant: Variant,
        run: String,
    },
    /// Start a finetune with these settings.
    Finetune(Box<TrainConfig>),
    /// Evaluate `samples` with `adapter` into run `run`, then compare with `compare_with`.
    EvalAdapter {
        samples: Vec<Sample>,
        adapter: PathBuf,
        run: String,
        compare_with: Option<PathBuf>,
    },
    BatchSaliency {
        samples: Vec<Sample>,
        method: SaliencyMethod,
        colormap: Colormap,
        out: PathBuf,
    },
    Cancel(JobId),
    ListRuns,
    OpenRun(PathBuf),
    Compare {
        a: PathBuf,
        b: PathBuf,
    },
    /// Append a live answer to the run's `live.jsonl`.
    SaveLive {
        dir: PathBuf,
        record: Box<Record>,
    },
    SaveViews(Vec<SavedView>),
    CycleProtocol,
}

pub fn update(app: &mut App, msg: Msg) -> Vec<Effect> {
    match msg {
        Msg::Key(k) => on_key(app, &k),
        Msg::Action(a) => on_action(app, a),
        Msg::Job(ev) => on_job(app, ev),
        Msg::Submitted { purpose, id } => {
            match purpose {
                Purpose::Live => {
                    app.live.job = Some(id);
                    app.live.phase = Phase::Queued;
                }
                Purpose::Saliency { key } => {
                    app.saliency.job = Some(id);
                    app.saliency.pending_key = Some(key);
                    app.saliency.phase = Phase::Queued;
                }
                Purpose::Background(Background { label, run_dir, train_out, compare_with }) => {
                    app.jobs.push(JobView {
                        id,
                        label,
                        phase: Phase::Queued,
                        done: 0,
                        total: 0,
                        elapsed_s: 0.0,
                        log: vec![],
                        run_dir,
                        train_out,
                        losses: vec![],
                        metrics: None,
                        compare_with,
                    });
                    app.runs.job_cursor = app.jobs.len() - 1;
                }
            }
            vec![]
        }
        Msg::RunsListed(list) => {
            app.runs.cursor = app.runs.cursor.min(list.len().saturating_sub(1));
            app.runs.list = list;
            vec![]
        }
        Msg::RunOpened(run) => {
            app.message = Some(format!("opened run {} ({} records)", run.name, run.records.len()));
            app.run = *run;
            app.confusion.category = None;
            app.refresh();
            app.refresh_confusion();
            vec![]
        }
        Msg::Compared(c) => {
            app.runs.compare = Some(c);
            vec![]
        }
        Msg::Notice(m) => {
            app.message = Some(m);
            vec![]
        }
        Msg::Redraw => vec![],
        Msg::ProtocolChanged(p) => {
            app.protocol = p;
            vec![]
        }
    }
}

fn on_key(app: &mut App, key: &str) -> Vec<Effect> {
    if app.input.is_some() {
        return on_input_key(app, key);
    }
    if key == "ctrl-c" {
        app.quit = true;
        return vec![];
    }
    if app.show_help {
        match app.keymap.action(app.focus, key) {
            Some(Action::Help | Action::Cancel) => app.show_help = false,
            Some(Action::Down) => app.help_scroll += 1,
            Some(Action::Up) => app.help_scroll = app.help_scroll.saturating_sub(1),
            Some(Action::Quit) => app.quit = true,
            _ => {}
        }
        return vec![];
    }
    match app.keymap.action(app.focus, key) {
        Some(a) => on_action(app, a),
        None => vec![],
    }
}

fn on_input_key(app: &mut App, key: &str) -> Vec<Effect> {
    let Some(input) = app.input.as_mut() else { return vec![] };
    match app.keymap.lookup("input", key) {
        Some(Action::Select) => {
            let Input { purpose, text } = app.input.take().unwrap_or(Input { purpose: InputPurpose::Search, text: String::new() });
            return submit_input(app, purpose, text.trim().to_string());
        }
        Some(Action::Cancel) => {
            let purpose = input.purpose;
            app.input = None;
            if purpose == InputPurpose::Search {
                set_chip(app, None, |f| matches!(f, Filter::Text(_)));
            }
            return vec![];
        }
        Some(Action::Backspace) => {
            input.text.pop();
        }
        _ => {
            let c = if key == "space" { Some(' ') } else { key.chars().next().filter(|_| key.chars().count() == 1) };
            match c {
                Some(c) => input.text.push(c),
                None => return vec![],
            }
        }
    }
    // Search filters as you type.
    if input.purpose == InputPurpose::Search {
        let text = input.text.clone();
        let chip = (!text.is_empty()).then_some(Filter::Text(text));
        set_chip(app, chip, |f| matches!(f, Filter::Text(_)));
    }
    vec![]
}

fn submit_input(app: &mut App, purpose: InputPurpose, text: String) -> Vec<Effect> {
    match purpose {
        InputPurpose::Search => vec![],
        InputPurpose::Finetune => match parse_finetune_line(&text) {
            Ok(cfg) => {
                app.runs.in_jobs = true;
                vec![Effect::Finetune(Box::new(cfg))]
            }
            Err(e) => {
                app.message = Some(format!("finetune: {e}"));
                app.input = Some(Input { purpose: InputPurpose::Finetune, text });
                vec![]
            }
        },
        InputPurpose::Question if text.is_empty() => vec![],
        InputPurpose::Question => {
            app.live.question = Some(text);
            ask(app, app.live.variant)
        }
        InputPurpose::ViewName if text.is_empty() => vec![],
        InputPurpose::ViewName => {
            let view = SavedView {
                name: text.clone(),
                filters: app.samples.filters.clone(),
                sort: app.samples.sort,
                reverse: app.samples.reverse,
            };
            let views = &mut app.samples.views;
            match views.iter().position(|v| v.name == text) {
                Some(i) => views[i] = view,
                None => views.push(view),
            }
            app.samples.view = views.iter().position(|v| v.name == text);
            app.message = Some(format!("saved view `{text}`"));
            vec![Effect::SaveViews(views.clone())]
        }
    }
}

/// Replaces the chips `is_kind` matches with `chip` (or removes them).
fn set_chip(app: &mut App, chip: Option<Filter>, is_kind: impl Fn(&Filter) -> bool) {
    let filters = &mut app.samples.filters;
    match filters.iter().position(&is_kind) {
        Some(i) => match chip {
            Some(c) => filters[i] = c,
            None => {
                filters.remove(i);
            }
        },
        None => filters.extend(chip),
    }
    app.samples.view = None;
    app.refresh();
}

/// The next value after the chip's current one, then none after the last.
fn cycle_chip(app: &mut App, values: Vec<Filter>, probe: Filter) {
    let current = app.samples.filters.iter().find(|f| f.same_kind(&probe)).cloned();
    let next = match current.and_then(|c| values.iter().position(|v| *v == c)) {
        Some(i) => values.get(i + 1).cloned(),
        None => values.first().cloned(),
    };
    set_chip(app, next, |f| f.same_kind(&probe));
}

fn move_cursor(app: &mut App, to: usize) -> Vec<Effect> {
    let n = app.samples.visible.len();
    if n == 0 {
        return vec![];
    }
    let to = to.min(n - 1);
    if to != app.samples.cursor {
        app.samples.cursor = to;
        app.frame = 0;
    }
    follow_focus(app)
}

/// Work that follows the focused sample: the saliency pane recomputes for
/// the sample under the cursor (latest-wins), so scrolling never waits.
fn follow_focus(app: &mut App) -> Vec<Effect> {
    if app.focus == Pane::Saliency {
        saliency_request(app, false).into_iter().collect()
    } else {
        vec![]
    }
}

fn page(app: &App) -> usize {
    10.min(app.samples.visible.len().max(1))
}

fn on_action(app: &mut App, action: Action) -> Vec<Effect> {
    let cursor = app.samples.cursor;
    match action {
        Action::Quit => app.quit = true,
        Action::Help => {
            app.show_help = !app.show_help;
            app.help_scroll = 0;
        }
        Action::Cancel => return cancel(app),
        Action::CycleProtocol => return vec![Effect::CycleProtocol],
        Action::FocusSamples => return focus(app, Pane::Samples),
        Action::FocusSample => return focus(app, Pane::Sample),
        Action::FocusLive => return focus(app, Pane::Live),
        Action::FocusConfusion => return focus(app, Pane::Confusion),
        Action::FocusSaliency => return focus(app, Pane::Saliency),
        Action::FocusRuns => return focus(app, Pane::Runs),
        Action::NextPane => return focus(app, Pane::ALL[(app.focus.index() + 1) % Pane::ALL.len()]),
        Action::PrevPane => return focus(app, Pane::ALL[(app.focus.index() + Pane::ALL.len() - 1) % Pane::ALL.len()]),
        Action::Noop | Action::Backspace => {}
        _ => {
            return match app.focus {
                Pane::Confusion => confusion_action(app, action),
                Pane::Runs => runs_action(app, action),
                Pane::Saliency => match saliency_action(app, action) {
                    Some(effects) => effects,
                    None => sample_action(app, action, cursor),
                },
                Pane::Live => match live_action(app, action) {
                    Some(effects) => effects,
                    None => sample_action(app, action, cursor),
                },
                Pane::Samples | Pane::Sample => sample_action(app, action, cursor),
            }
        }
    }
    vec![]
}

fn focus(app: &mut App, pane: Pane) -> Vec<Effect> {
    app.focus = pane;
    let mut out = follow_focus(app);
    if pane == Pane::Runs {
        out.push(Effect::ListRuns);
    }
    out
}

fn cancel(app: &mut App) -> Vec<Effect> {
    if app.runs.compare.is_some() && app.focus == Pane::Runs {
        app.runs.compare = None;
        return vec![];
    }
    let job = match app.focus {
        Pane::Saliency => app.saliency.job.filter(|_| app.saliency.phase.busy()),
        _ => app.live.job.filter(|_| app.live.phase.busy()),
    };
    app.message = None;
    job.map(Effect::Cancel).into_iter().collect()
}

/// Navigation and filtering shared by the sample-centred panes.
fn sample_action(app: &mut App, action: Action, cursor: usize) -> Vec<Effect> {
    let frames = app.focused_sample().map_or(0, |s| s.images.len());
    match action {
        Action::Down => return move_cursor(app, cursor + 1),
        Action::Up => return move_cursor(app, cursor.saturating_sub(1)),
        Action::PageDown => return move_cursor(app, cursor + page(app)),
        Action::PageUp => return move_cursor(app, cursor.saturating_sub(page(app))),
        Action::Top => return move_cursor(app, 0),
        Action::Bottom => return move_cursor(app, usize::MAX),
        Action::NextFrame | Action::Right if frames > 0 => app.frame = (app.frame + 1) % frames,
        Action::PrevFrame | Action::Left if frames > 0 => app.frame = (app.frame + frames - 1) % frames,
        Action::Select if app.focus == Pane::Samples => return focus(app, Pane::Sample),
        Action::Search => app.input = Some(Input { purpose: InputPurpose::Search, text: String::new() }),
        Action::FilterCategory => {
            let mut cats: Vec<String> = app.dataset.samples.iter().map(|s| s.category.clone()).collect();
            cats.sort();
            cats.dedup();
            cycle_chip(app, cats.into_iter().map(Filter::Category).collect(), Filter::Category(String::new()));
        }
        Action::FilterStatus => cycle_chip(app, Status::ALL.into_iter().map(Filter::Status).collect(), Filter::Status(Status::Right)),
        Action::FilterError => {
            let mut kinds: Vec<String> = app.run.records.iter().filter_map(|r| r.error_kind.clone()).collect();
            kinds.sort();
            kinds.dedup();
            cycle_chip(app, kinds.into_iter().map(Filter::ErrorKind).collect(), Filter::ErrorKind(String::new()));
        }
        Action::FilterGold => {
            let mut dirs: Vec<_> = app.dataset.samples.iter().filter_map(|s| s.gold_direction).collect();
            dirs.sort_by_key(|d| d.sort_key());
            dirs.dedup();
            cycle_chip(app, dirs.into_iter().map(|d| Filter::Gold(d.name())).collect(), Filter::Gold(String::new()));
        }
        Action::RemoveChip => {
            app.samples.filters.pop();
            app.samples.view = None;
            app.refresh();
        }
        Action::ClearFilters => {
            app.samples.filters.clear();
            app.samples.view = None;
            app.refresh();
        }
        Action::Sort => {
            app.samples.sort = app.samples.sort.next();
            app.refresh();
        }
        Action::ReverseSort => {
            app.samples.reverse = !app.samples.reverse;
            app.refresh();
        }
        Action::SaveView => app.input = Some(Input { purpose: InputPurpose::ViewName, text: String::new() }),
        Action::NextView if !app.samples.views.is_empty() => {
            let i = app.samples.view.map_or(0, |v| (v + 1) % app.samples.views.len());
            let v = app.samples.views[i].clone();
            app.samples.filters = v.filters;
            app.samples.sort = v.sort;
            app.samples.reverse = v.reverse;
            app.refresh();
            app.samples.view = Some(i);
            app.message = Some(format!("view `{}`", v.name));
        }
        Action::AskPlain | Action::AskBoxed | Action::AskFlipped | Action::AskAdaptVis | Action::AskTyped => {
            app.focus = Pane::Live;
            return live_action(app, action).unwrap_or_default();
        }
        _ => {}
    }
    vec![]
}

fn ask(app: &mut App, variant: AskVariant) -> Vec<Effect> {
    let Some(sample) = app.focused_sample().cloned() else { return vec![] };
    app.live.variant = variant;
    app.live.sample_id = Some(sample.id.clone());
    app.live.scores = None;
    app.live.text.clear();
    app.live.record = None;
    app.live.saved = false;
    let variant = match Variant::parse(variant.spec()) {
        Ok(v) => v,
        Err(e) => {
            app.live.phase = Phase::Failed(format!("{e:#}"));
            return vec![];
        }
    };
    let config = EvalConfig {
        prompt: PromptTemplate::default_prompt(),
        mode: EvalMode::Generate { max_new_tokens: LIVE_MAX_NEW_TOKENS },
        variant,
        circular: false,
        batch: 1,
    };
    let request = JobRequest::Ask { sample: Box::new(sample), config, question: app.live.question.clone() };
    vec![Effect::Submit { purpose: Purpose::Live, request: Box::new(request), focused: true }]
}

fn live_action(app: &mut App, action: Action) -> Option<Vec<Effect>> {
    Some(match action {
        Action::AskPlain | Action::AskBoxed | Action::AskFlipped | Action::AskAdaptVis => {
            app.live.question = None;
            let v = match action {
                Action::AskBoxed => AskVariant::Boxed,
                Action::AskFlipped => AskVariant::Flipped,
                Action::AskAdaptVis => AskVariant::AdaptVis,
                _ => AskVariant::Plain,
            };
            ask(app, v)
        }
        Action::AskTyped => {
            let text = app.focused_sample().map(|s| s.question.clone()).unwrap_or_default();
            app.input = Some(Input { purpose: InputPurpose::Question, text });
            vec![]
        }
        Action::SaveAnswer => match (&app.live.record, app.live.saved) {
            (Some(r), false) => {
                let mut record = r.clone();
                record.variant.insert("asked".into(), app.live.variant.spec().into());
                if let Some(q) = &app.live.question {
                    record.variant.insert("question".into(), q.clone().into());
                }
                app.live.saved = true;
                vec![Effect::SaveLive { dir: app.run.dir.clone(), record: Box::new(record) }]
            }
            (Some(_), true) => {
                app.message = Some("this answer is already saved".into());
                vec![]
            }
            (None, _) => {
                app.message = Some("nothing to save yet: ask first".into());
                vec![]
            }
        },
        _ => return None,
    })
}

fn confusion_action(app: &mut App, action: Action) -> Vec<Effect> {
    let Some(m) = app.confusion.matrix.clone() else {
        if action == Action::NextCategory {
            app.message = Some("no run with directions is open".into());
        }
        return vec![];
    };
    let c = &mut app.confusion;
    match action {
        Action::Down => c.row = (c.row + 1).min(m.gold_labels.len().saturating_sub(1)),
        Action::Up => c.row = c.row.saturating_sub(1),
        Action::Right => c.col = (c.col + 1).min(m.predicted_labels.len().saturating_sub(1)),
        Action::Left => c.col = c.col.saturating_sub(1),
        Action::Top => c.row = 0,
        Action::Bottom => c.row = m.gold_labels.len().saturating_sub(1),
        Action::ErrorsOnly => c.errors_only = !c.errors_only,
        Action::NextCategory => {
            let cats = &app.run.stats.categories;
            c.category = match c.category.as_ref().and_then(|x| cats.iter().position(|y| y == x)) {
                Some(i) => cats.get(i + 1).cloned(),
                None => cats.first().cloned(),
            };
            app.refresh_confusion();
        }
        Action::Select => {
            let (Some(gold), Some(predicted)) = (m.gold_labels.get(c.row).cloned(), m.predicted_labels.get(c.col).cloned()) else {
                return vec![];
            };
            let category = c.category.clone();
            app.samples.filters.retain(|f| !matches!(f, Filter::Cell { .. } | Filter::Category(_)));
            app.samples.filters.extend(category.map(Filter::Category));
            app.samples.filters.push(Filter::Cell { gold, predicted });
            app.samples.view = None;
            app.refresh();
            app.samples.cursor = 0;
            return focus(app, Pane::Samples);
        }
        _ => {}
    }
    vec![]
}

fn saliency_action(app: &mut App, action: Action) -> Option<Vec<Effect>> {
    // Predicted, gold, then each option of the focused sample.
    let mut goals = vec![SaliencyGoal::Predicted, SaliencyGoal::Gold];
    goals.extend(app.focused_sample().into_iter().flat_map(|s| s.options.iter().map(|o| SaliencyGoal::Label(o.letter.to_string()))));
    let s = &mut app.saliency;
    match action {
        Action::CycleMethod => s.method = cycle(&SALIENCY_METHODS, &s.method),
        Action::CycleTarget => s.goal = cycle(&goals, &s.goal),
        Action::CycleColormap => {
            s.colormap = s.colormap.next();
            return Some(vec![]);
        }
        Action::AlphaUp => {
            s.alpha = ((s.alpha + 0.1).min(1.0) * 10.0).round() / 10.0;
            return Some(vec![]);
        }
        Action::AlphaDown => {
            s.alpha = ((s.alpha - 0.1).max(0.1) * 10.0).round() / 10.0;
            return Some(vec![]);
        }
        Action::ToggleAttention => {
            s.mode = match s.mode {
                SaliencyMode::Gradient => SaliencyMode::Attention,
                SaliencyMode::Attention => SaliencyMode::Gradient,
            }
        }
        Action::Right | Action::NextFrame if s.mode == SaliencyMode::Attention => {
            let layers = match app.engine {
                EngineStatus::Ready { layers, .. } => layers,
                _ => 1,
            };
            s.layer = (s.layer + 1).min(layers.saturating_sub(1));
        }
        Action::Left | Action::PrevFrame if s.mode == SaliencyMode::Attention => s.layer = s.layer.saturating_sub(1),
        Action::Recompute => return Some(saliency_request(app, true).into_iter().collect()),
        _ => return None,
    }
    Some(saliency_request(app, false).into_iter().collect())
}

/// The saliency job for what the pane should show, unless it is already
/// shown or on its way (or `force`).
fn saliency_request(app: &mut App, force: bool) -> Option<Effect> {
    if matches!(app.engine, EngineStatus::Failed(_)) {
        return None;
    }
    let sample = app.focused_sample()?.clone();
    let s = &app.saliency;
    let key = match s.mode {
        SaliencyMode::Gradient => format!("{}|{}|{}", sample.id, s.method, s.goal),
        SaliencyMode::Attention => format!("{}|attention|{}", sample.id, s.layer),
    };
    let shown = s.result.as_ref().is_some_and(|r| r.key == key);
    let coming = s.pending_key.as_deref() == Some(key.as_str()) && s.phase.busy();
    if !force && (shown || coming) {
        return None;
    }
    let request = match s.mode {
        SaliencyMode::Attention => JobRequest::Attention { sample: Box::new(sample), layer: s.layer },
        SaliencyMode::Gradient => {
            JobRequest::SampleSaliency { sample: Box::new(sample), goal: s.goal.clone(), method: s.method, compare_boxed: true }
        }
    };
    Some(Effect::Submit { purpose: Purpose::Saliency { key }, request: Box::new(request), focused: true })
}

fn runs_action(app: &mut App, action: Action) -> Vec<Effect> {
    let r = &mut app.runs;
    match action {
        Action::Left | Action::Right => r.in_jobs = !r.in_jobs,
        Action::Down if r.in_jobs => r.job_cursor = (r.job_cursor + 1).min(app.jobs.len().saturating_sub(1)),
        Action::Up if r.in_jobs => r.job_cursor = r.job_cursor.saturating_sub(1),
        Action::Down => r.cursor = (r.cursor + 1).min(r.list.len().saturating_sub(1)),
        Action::Up => r.cursor = r.cursor.saturating_sub(1),
        Action::Top => r.cursor = 0,
        Action::Bottom => r.cursor = r.list.len().saturating_sub(1),
        Action::OpenRun | Action::Select => {
            if let Some(run) = r.list.get(r.cursor) {
                return vec![Effect::OpenRun(run.dir.clone())];
            }
        }
        Action::MarkRun => r.marked = if r.marked == Some(r.cursor) { None } else { Some(r.cursor) },
        Action::CompareRuns => match (r.marked.and_then(|m| r.list.get(m)), r.list.get(r.cursor)) {
            (Some(a), Some(b)) if a.dir != b.dir => return vec![Effect::Compare { a: a.dir.clone(), b: b.dir.clone() }],
            _ => {
                let (mark, compare) = (key_for(app, "runs", Action::MarkRun), key_for(app, "runs", Action::CompareRuns));
                app.message = Some(format!("mark a run with {mark}, move to another, then {compare} compares"))
            }
        },
        Action::CycleVariant => r.variant = cycle(&rerun_variants(), &r.variant),
        Action::Rerun => {
            let samples: Vec<Sample> = app.samples.visible.iter().map(|&i| app.dataset.samples[i].clone()).collect();
            if samples.is_empty() {
                app.message = Some("no samples pass the current filter".into());
                return vec![];
            }
            let variant = r.variant.clone();
            let run = format!("{}-{}", run_base(app), variant.name());
            return vec![Effect::Rerun { samples, variant, run }];
        }
        Action::BatchSaliency => {
            let samples: Vec<Sample> = app.samples.visible.iter().map(|&i| app.dataset.samples[i].clone()).collect();
            if samples.is_empty() {
                app.message = Some("no samples pass the current filter".into());
                return vec![];
            }
            let out = app.run.dir.join("saliency");
            return vec![Effect::BatchSaliency { samples, method: app.saliency.method, colormap: app.saliency.colormap, out }];
        }
        Action::Finetune => {
            app.input = Some(Input { purpose: InputPurpose::Finetune, text: FINETUNE_LINE.to_string() });
        }
        Action::EvalAdapter => {
            // The selected job if it is a finished finetune, else the latest finished one.
            let selected = app.jobs.get(r.job_cursor).filter(|j| j.train_out.is_some() && j.phase == Phase::Done);
            let Some(job) = selected.or_else(|| app.jobs.iter().rev().find(|j| j.train_out.is_some() && j.phase == Phase::Done)) else {
                app.message = Some(format!("no finished finetune yet: {} starts one", key_for(app, "runs", Action::Finetune)));
                return vec![];
            };
            let samples: Vec<Sample> = app.samples.visible.iter().map(|&i| app.dataset.samples[i].clone()).collect();
            if samples.is_empty() {
                app.message = Some("no samples pass the current filter".into());
                return vec![];
            }
            let adapter = job.train_out.clone().unwrap_or_default();
            let run = format!("{}-ft{}", run_base(app), job.id);
            let compare_with = (!app.run.records.is_empty()).then(|| app.run.dir.clone());
            return vec![Effect::EvalAdapter { samples, adapter, run, compare_with }];
        }
        Action::CancelJob => {
            if let Some(j) = app.jobs.get(r.job_cursor).filter(|j| j.phase.busy()) {
                return vec![Effect::Cancel(j.id)];
            }
        }
        Action::Cancel => return cancel(app),
        _ => {}
    }
    vec![]
}

/// The name reruns are derived from: the open run without a variant suffix.
pub fn run_base(app: &App) -> String {
    let name = &app.run.name;
    rerun_variants().iter().find_map(|v| name.strip_suffix(&format!("-{}", v.name()))).unwrap_or(name).to_string()
}

fn on_job(app: &mut App, ev: JobEvent) -> Vec<Effect> {
    match ev {
        JobEvent::EngineLoaded { seconds, layers, .. } => {
            app.engine = EngineStatus::Ready { seconds, layers };
            return follow_focus(app);
        }
        JobEvent::EngineFailed { error } => {
            app.message = Some(format!("model failed to load: {error}"));
            app.engine = EngineStatus::Failed(error);
        }
        JobEvent::Started { id, .. } => set_phase(app, id, Phase::Running),
        JobEvent::Scores { id, scores } if app.live.job == Some(id) => app.live.scores = Some(scores),
        JobEvent::Token { id, delta } if app.live.job == Some(id) => app.live.text.push_str(&delta),
        JobEvent::Answered { id, record } if app.live.job == Some(id) => app.live.record = Some(*record),
        JobEvent::Saliency { id, sample_id, target, plain, boxed } if app.saliency.job == Some(id) => {
            let key = app.saliency.pending_key.clone().unwrap_or_default();
            app.saliency.result = Some(SaliencyResult { key, sample_id, target, plain, boxed, attention: None });
        }
        JobEvent::Attention { id, sample_id, layer, maps, image_share } if app.saliency.job == Some(id) => {
            let key = app.saliency.pending_key.clone().unwrap_or_default();
            let target = format!("layer {layer}");
            app.saliency.result =
                Some(SaliencyResult { key, sample_id, target, plain: maps, boxed: None, attention: Some((layer, image_share)) });
        }
        JobEvent::Progress { id, done, total, elapsed_s } => {
            if let Some(j) = app.jobs.iter_mut().find(|j| j.id == id) {
                (j.done, j.total, j.elapsed_s) = (done, total, elapsed_s);
            }
        }
        JobEvent::TrainStep { id, metrics } => {
            if let Some(j) = app.jobs.iter_mut().find(|j| j.id == id) {
                j.losses.push((metrics.step as f64, metrics.loss));
                j.metrics = Some(*metrics);
            }
        }
        JobEvent::Log { id, line } => {
            if let Some(j) = app.jobs.iter_mut().find(|j| j.id == id) {
                j.log.push(line);
                if j.log.len() > LOG_LINES {
                    j.log.remove(0);
                }
            }
        }
        JobEvent::Finished { id } => return job_ended(app, id, Phase::Done),
        JobEvent::Cancelled { id } => return job_ended(app, id, Phase::Cancelled),
        JobEvent::Failed { id, error } => return job_ended(app, id, Phase::Failed(error)),
        _ => {}
    }
    vec![]
}

fn set_phase(app: &mut App, id: JobId, phase: Phase) {
    if app.live.job == Some(id) {
        app.live.phase = phase;
    } else if app.saliency.job == Some(id) {
        app.saliency.phase = phase;
    } else if let Some(j) = app.jobs.iter_mut().find(|j| j.id == id) {
        j.phase = phase;
    }
}

fn job_ended(app: &mut App, id: JobId, phase: Phase) -> Vec<Effect> {
    let failed = match &phase {
        Phase::Failed(e) => Some(e.clone()),
        _ => None,
    };
    set_phase(app, id, phase);
    let Some(job) = app.jobs.iter().find(|j| j.id == id) else { return vec![] };
    if let Some(e) = failed {
        app.message = Some(format!("{} failed: {e}", job.label));
    }
    let mut out = vec![Effect::ListRuns];
    // The run a rerun wrote is opened when nothing else is, or reloaded when it is the open one.
    if let Some(dir) = &job.run_dir {
        if app.run.records.is_empty() || &app.run.dir == dir {
            out.push(Effect::OpenRun(dir.clone()));
        }
        if let (Some(base), Phase::Done) = (&job.compare_with, &job.phase) {
            out.push(Effect::Compare { a: base.clone(), b: dir.clone() });
        }
    }
    if let (Some(out_dir), Phase::Done) = (&job.train_out, &job.phase) {
        let key = key_for(app, "runs", Action::EvalAdapter);
        app.message = Some(format!("finetune done ({}): {key} evaluates it on the filter and compares with this run", out_dir.display()));
    }
    out
}

/// The key bound to `action` in `mode` (or globally), for messages that tell
/// the user what to press; the action's own name when no key is bound.
fn key_for(app: &App, mode: &str, action: Action) -> String {
    app.keymap.key_for(mode, action).unwrap_or(action.name()).to_string()
}
