//! The Runs & jobs pane: runs on disk, comparisons, reruns, finetunes and
//! saliency batches of the current filter.

use super::*;
use crate::tui::keymap::Mode;

pub(super) fn runs_action(app: &mut App, action: Action) -> Vec<Effect> {
    let r = &mut app.runs;
    match action {
        Action::Left | Action::Right => r.in_jobs = !r.in_jobs,
        Action::Down if r.in_jobs => (r.job_cursor, r.log_scroll) = ((r.job_cursor + 1).min(app.jobs.len().saturating_sub(1)), 0),
        Action::Up if r.in_jobs => (r.job_cursor, r.log_scroll) = (r.job_cursor.saturating_sub(1), 0),
        // The selected job's log, older lines up (K) and back down to the newest (J).
        Action::ScrollUp => {
            let lines = app.jobs.get(r.job_cursor).map_or(0, |j| j.log.len());
            r.log_scroll = (r.log_scroll + 1).min(lines.saturating_sub(1));
        }
        Action::ScrollDown => r.log_scroll = r.log_scroll.saturating_sub(1),
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
                let (mark, compare) = (key_for(app, Mode::Runs, Action::MarkRun), key_for(app, Mode::Runs, Action::CompareRuns));
                app.message = Some(format!("mark a run with {mark}, move to another, then {compare} compares"))
            }
        },
        Action::CycleVariant => r.variant = cycle(&rerun_variants(), &r.variant),
        Action::Rerun => {
            let variant = r.variant.clone();
            let Some(samples) = filtered(app) else { return vec![] };
            let run = format!("{}-{}", run_base(app), variant.name());
            return vec![Effect::Rerun { samples, variant, run }];
        }
        Action::BatchSaliency => {
            let Some(samples) = filtered(app) else { return vec![] };
            let out = app.run.dir.join("saliency");
            return vec![Effect::BatchSaliency { samples, method: app.saliency.method, colormap: app.saliency.colormap, out }];
        }
        Action::Finetune => {
            // The open run was evaluated on this data: training on it would score the model on its training set.
            let mut text = FINETUNE_LINE.to_string();
            if !app.run.records.is_empty() {
                let has_train = app.dataset.samples.iter().any(|s| s.split.as_deref() == Some("train"));
                app.message = Some(if has_train {
                    format!("⚠ run {} evaluates on this data: the line trains on its train split (current#split=train)", app.run.name)
                } else {
                    format!(
                        "⚠ --data current is training on the questions you evaluate on (run {}); name other data to keep them apart",
                        app.run.name
                    )
                });
                if has_train {
                    text = text.replace("--data current", "--data current#split=train");
                }
            }
            app.input = Some(Input { purpose: InputPurpose::Finetune, text });
        }
        Action::EvalAdapter => {
            // The selected job if it is a finished finetune, else the latest finished one.
            let selected = app.jobs.get(r.job_cursor).filter(|j| j.train_out.is_some() && j.phase == Phase::Done);
            let Some(job) = selected.or_else(|| app.jobs.iter().rev().find(|j| j.train_out.is_some() && j.phase == Phase::Done)) else {
                app.message = Some(format!("no finished finetune yet: {} starts one", key_for(app, Mode::Runs, Action::Finetune)));
                return vec![];
            };
            let (adapter, job_id) = (job.train_out.clone().unwrap_or_default(), job.id);
            let Some(samples) = filtered(app) else { return vec![] };
            // Named after the finetune's folder (`ft-2026-12-06-0012`), which says when it was trained.
            let folder = adapter.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| format!("ft{job_id}"));
            let run = format!("{}-{folder}", run_base(app));
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
