//! The Confusion pane: moving over the matrix, opening a cell as a filter.

use super::*;
use crate::spatial::Direction;

pub(super) fn confusion_action(app: &mut App, action: Action) -> Vec<Effect> {
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
            let (Some(gold), Some(predicted)) = (m.gold_labels.get(c.row), m.predicted_labels.get(c.col)) else {
                return vec![];
            };
            // Labels are direction names, `unparsed` for none.
            let (Some(gold), predicted) = (Direction::from_name(gold), Direction::from_name(predicted)) else {
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
