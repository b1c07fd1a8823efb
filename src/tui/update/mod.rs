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

mod causal;
mod confusion;
mod input;
mod jobs;
mod live;
mod runs;
mod saliency;
mod samples;

use causal::{causal_action, causal_request};
use confusion::confusion_action;
use input::on_input_key;
pub use input::{parse_finetune_line, FINETUNE_LINE};
use jobs::on_job;
pub use live::parse_typed;
use live::{ask, live_action};
pub use runs::run_base;
use runs::runs_action;
use saliency::{saliency_action, saliency_request};
use samples::{follow_focus, sample_action, set_chip};

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
    /// A pane's latest-wins job (Saliency, Causal), asked for under `key`.
    Pane {
        pane: Pane,
        key: String,
    },
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
    /// The causal experiments over `samples` into run `run`'s causal rows.
    CausalBatch {
        samples: Vec<Sample>,
        form: crate::causal::AnswerForm,
        window: usize,
        run: PathBuf,
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
                Purpose::Pane { pane: Pane::Causal, key } => app.causal.work.submitted(id, key),
                Purpose::Pane { key, .. } => app.saliency.work.submitted(id, key),
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
                        rewards: vec![],
                        rollout_accuracy: vec![],
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
            // Verdicts shown beside another sample's gold would not be the ones that were judged.
            let foreign = run.foreign_records(&app.dataset);
            if foreign > 0 {
                app.message = Some(format!(
                    "run {} was not opened: {foreign} of its answers were judged against another gold than these samples' (it ran on other data with the same ids)",
                    run.name
                ));
                return vec![];
            }
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
    // A message answers the last key; the next key makes it stale.
    app.message = None;
    if key == "ctrl-c" {
        app.quit = true;
        return vec![];
    }
    if app.show_help {
        match app.keymap.action(app.focus, key) {
            Some(Action::Help | Action::Cancel) => app.show_help = false,
            Some(Action::Down) => app.help_scroll = (app.help_scroll + 1).min(app.keymap.help().len().saturating_sub(1)),
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
        Action::FocusCausal => return focus(app, Pane::Causal),
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
                Pane::Causal => match causal_action(app, action) {
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
        Pane::Saliency => app.saliency.work.busy_job(),
        Pane::Causal => app.causal.work.busy_job(),
        _ => app.live.job.filter(|_| app.live.phase.busy()),
    };
    app.message = None;
    job.map(Effect::Cancel).into_iter().collect()
}

/// The focused sample, when a pane's job may ask about it (a model that
/// failed to load answers nothing).
fn askable_sample(app: &App) -> Option<Sample> {
    if matches!(app.engine, EngineStatus::Failed(_)) {
        return None;
    }
    app.focused_sample().cloned()
}

/// The samples that pass the current filter; None, with a notice, when none do.
fn filtered(app: &mut App) -> Option<Vec<Sample>> {
    let samples = app.visible_samples();
    if samples.is_empty() {
        app.message = Some("no samples pass the current filter".into());
        return None;
    }
    Some(samples)
}

/// The key bound to `action` in `mode` (or globally), for messages that tell
/// the user what to press; the action's own name when no key is bound.
fn key_for(app: &App, mode: crate::tui::keymap::Mode, action: Action) -> String {
    app.keymap.key_for(mode, action).unwrap_or(action.name()).to_string()
}
