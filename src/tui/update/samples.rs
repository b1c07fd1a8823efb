//! Navigation and filtering shared by the sample-centred panes (Samples,
//! Sample, and what Live and Saliency pass on): cursor, frames, chips, sort, views.

use super::*;
use crate::spatial::{Direction, ErrorKind, Heading};
use crate::tui::keymap::Mode;

/// Replaces the chips `is_kind` matches with `chip` (or removes them).
pub(super) fn set_chip(app: &mut App, chip: Option<Filter>, is_kind: impl Fn(&Filter) -> bool) {
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

/// Work that follows the focused sample: the Saliency and Causal panes
/// recompute for the sample under the cursor (latest-wins), so scrolling never waits.
pub(super) fn follow_focus(app: &mut App) -> Vec<Effect> {
    match app.focus {
        Pane::Saliency => saliency_request(app, false).into_iter().collect(),
        Pane::Causal => causal_request(app, false).into_iter().collect(),
        _ => vec![],
    }
}

fn page(app: &App) -> usize {
    10.min(app.samples.visible.len().max(1))
}

/// Navigation and filtering shared by the sample-centred panes.
pub(super) fn sample_action(app: &mut App, action: Action, cursor: usize) -> Vec<Effect> {
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
        Action::FilterError | Action::FilterStatus if app.run.records.is_empty() => {
            let (rerun, runs) = (key_for(app, Mode::Runs, Action::Rerun), key_for(app, Mode::Samples, Action::FocusRuns));
            app.message = Some(format!("no run yet: nothing to filter by verdict ({runs} then {rerun} reruns the filter)"));
        }
        Action::FilterStatus => {
            // Only the statuses some sample has: a chip that selects nothing is a dead key press.
            let have: Vec<Status> = Status::ALL
                .into_iter()
                .filter(|st| app.dataset.samples.iter().any(|s| Status::of(app.run.record_for(&s.id)) == *st))
                .collect();
            cycle_chip(app, have.into_iter().map(Filter::Status).collect(), Filter::Status(Status::Correct))
        }
        Action::FilterError => {
            let mut kinds: Vec<ErrorKind> = app.run.records.iter().filter_map(Record::error_kind).collect();
            kinds.sort();
            kinds.dedup();
            cycle_chip(app, kinds.into_iter().map(Filter::ErrorKind).collect(), Filter::ErrorKind(ErrorKind::Other));
        }
        Action::FilterGold => {
            let mut dirs: Vec<_> = app.dataset.samples.iter().filter_map(|s| s.gold_direction).collect();
            dirs.sort_by_key(|d| d.sort_key());
            dirs.dedup();
            // The probe only names the chip's kind.
            cycle_chip(app, dirs.into_iter().map(Filter::Gold).collect(), Filter::Gold(Direction::horizontal(Heading::Front)));
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
        // Asked from the list: the focus stays where the user is sorting; the status line says where the answer is.
        Action::AskPlain | Action::AskBoxed | Action::AskFlipped | Action::AskAdaptVis | Action::AskTyped => {
            let effects = live_action(app, action).unwrap_or_default();
            if !effects.is_empty() {
                let id = app.live.sample_id.clone().unwrap_or_default();
                let key = key_for(app, Mode::Samples, Action::FocusLive);
                app.message = Some(format!("asking the model about {id} ({}) · {key} shows the answer", app.live.variant.spec()));
                app.live.asked_from_list = true;
            }
            return effects;
        }
        _ => {}
    }
    vec![]
}
