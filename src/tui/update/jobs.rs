//! Job events: progress, streamed answers, saliency maps and logs landing
//! in the pane that asked.

use super::*;
use crate::tui::keymap::Mode;

pub(super) fn on_job(app: &mut App, ev: JobEvent) -> Vec<Effect> {
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
        JobEvent::Asked { id, sample } if app.live.job == Some(id) => app.live.asked = Some(*sample),
        JobEvent::Scores { id, scores } if app.live.job == Some(id) => app.live.scores = Some(scores),
        JobEvent::Token { id, delta } if app.live.job == Some(id) => app.live.text.push_str(&delta),
        JobEvent::Answered { id, record } if app.live.job == Some(id) => {
            // "asking ..." is no longer true once the answer is in: say what it was where the user is.
            if app.live.asked_from_list && app.focus != Pane::Live {
                let key = key_for(app, Mode::Samples, Action::FocusLive);
                app.message = Some(format!("{}: {} · {key} shows the answer", record.id, record.verdict.label()));
            }
            app.live.record = Some(*record);
        }
        JobEvent::Saliency { id, sample_id, target, plain, boxed } if app.saliency.work.owns(id) => {
            let key = app.saliency.work.pending_key.clone().unwrap_or_default();
            app.saliency.work.result = Some(SaliencyResult { key, sample_id, target, plain, boxed, attention: None });
        }
        JobEvent::Attention { id, sample_id, layer, maps, image_share } if app.saliency.work.owns(id) => {
            let key = app.saliency.work.pending_key.clone().unwrap_or_default();
            let target = format!("layer {layer}");
            app.saliency.work.result =
                Some(SaliencyResult { key, sample_id, target, plain: maps, boxed: None, attention: Some((layer, image_share)) });
        }
        JobEvent::Causal { id, overview } if app.causal.work.owns(id) => {
            let key = app.causal.work.pending_key.clone().unwrap_or_default();
            app.causal.work.result = Some(CausalResult { key, overview: *overview });
        }
        JobEvent::Progress { id, done, total, elapsed_s } => {
            if let Some(j) = app.jobs.iter_mut().find(|j| j.id == id) {
                (j.done, j.total, j.elapsed_s) = (done, total, elapsed_s);
                // A running eval's run is listed while it runs, not only once it ends.
                let unlisted = j.run_dir.as_ref().is_some_and(|d| !app.runs.list.iter().any(|r| &r.dir == d));
                if unlisted && app.focus == Pane::Runs {
                    return vec![Effect::ListRuns];
                }
            }
        }
        JobEvent::TrainStep { id, metrics } => {
            if let Some(j) = app.jobs.iter_mut().find(|j| j.id == id) {
                j.losses.push((metrics.step as f64, metrics.loss));
                if let Some(g) = &metrics.grpo {
                    j.rewards.push((metrics.step as f64, g.reward_mean));
                    j.rollout_accuracy.push((metrics.step as f64, g.rollout_accuracy));
                }
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

pub(super) fn set_phase(app: &mut App, id: JobId, phase: Phase) {
    if app.live.job == Some(id) {
        app.live.phase = phase;
    } else if app.saliency.work.owns(id) {
        app.saliency.work.phase = phase;
    } else if app.causal.work.owns(id) {
        app.causal.work.phase = phase;
    } else if let Some(j) = app.jobs.iter_mut().find(|j| j.id == id) {
        j.phase = phase;
    }
}

pub(super) fn job_ended(app: &mut App, id: JobId, phase: Phase) -> Vec<Effect> {
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
        let key = key_for(app, Mode::Runs, Action::EvalAdapter);
        app.message = Some(format!("finetune done ({}): {key} evaluates it on the filter and compares with this run", out_dir.display()));
    }
    out
}
