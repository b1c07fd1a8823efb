//! The Samples pane: filter chips, sort and view, and the list with each
//! sample's status, category, gold and prediction.

use super::table::{window, Column, DataTable};
use super::widgets::{key, predicted};
use crate::tui::action::Action;
use crate::tui::filter::{SortKey, Status};
use crate::tui::keymap::Mode;
use crate::tui::state::App;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
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
        let keys =
            [Action::FilterCategory, Action::FilterStatus, Action::FilterError, Action::FilterGold].map(|a| key(app, Mode::Samples, a));
        chips.push(Span::styled(
            format!("no filters · {} search · {} filter", key(app, Mode::Samples, Action::Search), keys.join(" ")),
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

    if s.visible.is_empty() {
        f.render_widget(
            Paragraph::new(format!(
                "no samples pass these filters ({} removes the last chip, {} clears)",
                key(app, Mode::Samples, Action::RemoveChip),
                key(app, Mode::Samples, Action::ClearFilters)
            ))
            .style(t.muted()),
            list_area,
        );
        return;
    }
    let w = list_area.width as usize;
    let height = list_area.height.saturating_sub(1) as usize;
    let shown = window(s.visible.len(), Some(s.cursor), height);
    // Widths from the rows on screen only: a 5,712-sample list costs its visible rows.
    let id_w = s.visible[shown.clone()].iter().map(|&i| app.dataset.samples[i].id.chars().count()).max().unwrap_or(4);
    let id_w = id_w.clamp(4, if w > 60 { 22 } else { 12 }) as u16 as usize;
    let dir_w: usize = 11;
    // What the list is for comes first: the prediction, then the verdict's
    // kind beside its glyph ("✗ horizontal flip"), and the category in what is left.
    const VERDICT_W: usize = 15;
    // Each column past the first costs its width and one gap.
    let mut free = w.saturating_sub(1 + id_w + dir_w + 2);
    let show_pred = free > dir_w;
    free = free.saturating_sub(if show_pred { dir_w + 1 } else { 0 });
    let show_kind = free > VERDICT_W;
    let cat_w = free.saturating_sub(VERDICT_W + 2).min(18);
    let show_cat = show_kind && cat_w >= 8;
    let mut columns = vec![Column::left("", 1), Column::left("id", id_w as u16)];
    if show_cat {
        columns.push(Column::left("category", cat_w as u16));
    }
    columns.push(Column::left("gold", dir_w as u16));
    if show_pred {
        columns.push(Column::left("predicted", dir_w as u16));
    }
    if show_kind {
        columns.push(Column::fill("verdict"));
    }
    let gold_col = if show_cat { 3 } else { 2 };
    let sort_col = match s.sort {
        SortKey::Dataset | SortKey::Confidence => None,
        SortKey::Status => Some(0),
        SortKey::Id => Some(1),
        SortKey::Category => show_cat.then_some(2),
        SortKey::Gold => Some(gold_col),
    };
    let table = DataTable {
        columns: &columns,
        len: s.visible.len(),
        selected: Some(s.cursor),
        focused: true,
        sort: sort_col.map(|c| (c, s.reverse)),
        header: true,
    };
    table.render(f, list_area, t, |row| {
        let sample = &app.dataset.samples[s.visible[row]];
        let r = app.run.record_for(&sample.id);
        let status = Status::of(r);
        let status_color = r.map_or(t.dim, |r| t.verdict_color(&r.verdict));
        let gold = sample.gold_direction.map(|d| d.name()).or_else(|| sample.gold_text.clone()).unwrap_or_default();
        let mut cells = vec![Span::styled(status.glyph().to_string(), t.colour(status_color)), Span::styled(sample.id.clone(), t.text())];
        if show_cat {
            cells.push(Span::styled(sample.category.clone(), t.muted()));
        }
        cells.push(Span::styled(gold, t.golden()));
        if show_pred {
            let pred = r.map(predicted).unwrap_or_default();
            cells.push(Span::styled(pred, t.colour(status_color)));
        }
        if show_kind {
            let said = r.map(|r| r.verdict.error_kind().map_or_else(|| r.verdict.words(), |k| k.label().to_string())).unwrap_or_default();
            cells.push(Span::styled(said, t.colour(status_color)));
        }
        cells
    });
}
