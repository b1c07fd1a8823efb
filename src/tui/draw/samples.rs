//! The Samples pane: filter chips, sort and view, and the list with each
//! sample's status, category, gold and prediction.

use super::widgets::{key, truncate};
use crate::spatial::ErrorKind;
use crate::tui::action::Action;
use crate::tui::filter::Status;
use crate::tui::state::App;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let s = &app.samples;
    let mut chips: Vec<Span> = Vec::new();
    for c in &s.filters {
        chips.push(Span::styled(format!(" {} ✕ ", c.label()), t.text().bg(t.selected_bg)));
        chips.push(Span::raw(" "));
    }
    if chips.is_empty() {
        let keys = [Action::FilterCategory, Action::FilterStatus, Action::FilterError, Action::FilterGold].map(|a| key(app, "samples", a));
        chips.push(Span::styled(
            format!("no filters · {} search · {} filter", key(app, "samples", Action::Search), keys.join(" ")),
            t.muted(),
        ));
    }
    let view = s.view.and_then(|v| s.views.get(v)).map(|v| format!(" · view {}", v.name)).unwrap_or_default();
    let info = Line::from(Span::styled(
        format!(
            "{} of {} · sort {}{}{}",
            s.visible.len(),
            app.dataset.samples.len(),
            s.sort.name(),
            if s.reverse { " (reversed)" } else { "" },
            view
        ),
        t.muted(),
    ));
    let chip_rows =
        if s.filters.is_empty() { 1 } else { (chips.iter().map(|c| c.width()).sum::<usize>() as u16).div_ceil(area.width.max(1)).max(1) };
    let [chip_area, info_area, list_area] =
        Layout::vertical([Constraint::Length(chip_rows), Constraint::Length(1), Constraint::Min(1)]).areas(area);
    f.render_widget(Paragraph::new(Line::from(chips)).wrap(Wrap { trim: false }), chip_area);
    f.render_widget(Paragraph::new(info), info_area);

    let w = list_area.width as usize;
    let id_w = app.dataset.samples.iter().map(|s| s.id.chars().count()).max().unwrap_or(4).clamp(4, if w > 60 { 22 } else { 14 });
    let cat_w = if w > 60 { 18 } else { 12 };
    let dir_w = 11;
    let show_pred = w >= id_w + cat_w + 2 * dir_w + 6;
    let show_kind = w >= id_w + cat_w + 2 * dir_w + 24;
    let items: Vec<ListItem> = s
        .visible
        .iter()
        .map(|&i| {
            let sample = &app.dataset.samples[i];
            let r = app.run.record_for(&sample.id);
            let status = Status::of(r);
            let status_color = match status {
                Status::Right => t.correct,
                Status::Wrong => t.wrong,
                Status::Unparsed => t.kind_color(ErrorKind::Unparsed),
                Status::NotRun => t.dim,
            };
            let gold = sample.gold_direction.map(|d| d.name()).or_else(|| sample.gold_text.clone()).unwrap_or_default();
            let mut spans = vec![
                Span::styled(format!("{} ", status.glyph()), t.colour(status_color)),
                Span::styled(format!("{:<id_w$} ", truncate(&sample.id, id_w)), t.text()),
                Span::styled(format!("{:<cat_w$} ", truncate(&sample.category, cat_w)), t.muted()),
                Span::styled(format!("{:<dir_w$} ", truncate(&gold, dir_w)), t.golden()),
            ];
            if show_pred {
                let pred = r.and_then(|r| r.predicted_direction.clone().or_else(|| r.predicted_letter.clone())).unwrap_or_default();
                spans.push(Span::styled(format!("{:<dir_w$} ", truncate(&pred, dir_w)), t.colour(status_color)));
            }
            if show_kind {
                if let Some(k) = r.and_then(|r| r.error_kind.as_deref()) {
                    let color = t.kind_name_color(k);
                    spans.push(Span::styled(k.to_string(), t.colour(color)));
                }
            }
            ListItem::new(Line::from(spans))
        })
        .collect();
    if items.is_empty() {
        f.render_widget(
            Paragraph::new(format!(
                "no samples pass these filters ({} removes the last chip, {} clears)",
                key(app, "samples", Action::RemoveChip),
                key(app, "samples", Action::ClearFilters)
            ))
            .style(t.muted()),
            list_area,
        );
        return;
    }
    let mut state = ListState::default().with_selected(Some(s.cursor));
    let list = List::new(items).highlight_style(t.selected(Style::default()));
    f.render_stateful_widget(list, list_area, &mut state);
}
