//! The Causal pane: answer form, knockout window, the layer tables' scroll,
//! the latest-wins overview of the focused sample, and the batch over the filter.

use super::*;
use crate::tui::keymap::Mode;

pub(super) fn causal_action(app: &mut App, action: Action) -> Option<Vec<Effect>> {
    let layers = app.layers().unwrap_or(1);
    let c = &mut app.causal;
    match action {
        Action::CycleWindow => {
            // Windows longer than the model are not offered.
            let windows: Vec<usize> = KNOCKOUT_WINDOWS.into_iter().filter(|&w| w <= layers.max(1)).collect();
            c.window = cycle(&windows, &c.window);
        }
        Action::CycleAnswer => c.form = cycle(&ANSWER_FORMS, &c.form),
        Action::ScrollDown => {
            c.scroll = (c.scroll + 1).min(layers.saturating_sub(1));
            return Some(vec![]);
        }
        Action::ScrollUp => {
            c.scroll = c.scroll.saturating_sub(1);
            return Some(vec![]);
        }
        Action::Recompute => return Some(causal_request(app, true).into_iter().collect()),
        Action::BatchCausal => return Some(batch(app)),
        _ => return None,
    }
    Some(causal_request(app, false).into_iter().collect())
}

/// The overview job for what the pane should show, unless it is already
/// shown or on its way (or `force`).
pub(super) fn causal_request(app: &mut App, force: bool) -> Option<Effect> {
    let sample = askable_sample(app)?;
    let c = &app.causal;
    let key = format!("{}|{:?}|{}", sample.id, c.form, c.window);
    if !c.work.wants(&key, force) {
        return None;
    }
    let request = JobRequest::Causal { sample: Box::new(sample), form: c.form, window: c.window };
    Some(Effect::Submit { purpose: Purpose::Pane { pane: Pane::Causal, key }, request: Box::new(request), focused: true })
}

/// The lens, knockout and patching over the current filter, into the open
/// run's causal rows, whose outcomes group them.
fn batch(app: &mut App) -> Vec<Effect> {
    let Some(samples) = filtered(app) else { return vec![] };
    if app.run.records.is_empty() {
        let (runs, rerun) = (key_for(app, Mode::Global, Action::FocusRuns), key_for(app, Mode::Runs, Action::Rerun));
        app.message = Some(format!(
            "the batch groups its rows by the open run's outcomes, and run {} has none: {runs} then {rerun} evaluates the filter",
            app.run.name
        ));
        return vec![];
    }
    app.message = Some(format!(
        "causal batch over {} samples into {}/causal: progress and the summary in Runs & jobs ({})",
        samples.len(),
        app.run.dir.display(),
        key_for(app, Mode::Global, Action::FocusRuns)
    ));
    vec![Effect::CausalBatch { samples, form: app.causal.form, window: app.causal.window, run: app.run.dir.clone() }]
}
