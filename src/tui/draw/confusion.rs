//! The Confusion pane: gold x predicted directions coloured by error kind,
//! with task accuracy and the error-kind breakdown beside it.

use super::widgets::{bar, key, truncate};
use crate::spatial::ErrorKind;
use crate::tui::action::Action;
use crate::tui::keymap::Mode;
use crate::tui::state::App;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let c = &app.confusion;
    let Some(m) = &c.matrix else {
        let msg = if app.run.records.is_empty() {
            &format!(
                "no records in this run yet: {} opens Runs, where {} reruns the current filter",
                key(app, Mode::Global, Action::FocusRuns),
                key(app, Mode::Runs, Action::Rerun)
            )
        } else {
            "this run's answers name no directions"
        };
        f.render_widget(Paragraph::new(msg).style(t.muted()), area);
        return;
    };
    // Beside the matrix when there is room, else below it.
    let (left, right, side_w) = if area.width >= 100 {
        let [l, r] = Layout::horizontal([Constraint::Min(20), Constraint::Length(40)]).areas(area);
        (l, r, 40)
    } else {
        let [l, r] = Layout::vertical([Constraint::Length(m.gold_labels.len() as u16 + 7), Constraint::Min(0)]).areas(area);
        (l, r, area.width)
    };
    let label_w = m.gold_labels.iter().map(|l| l.chars().count()).max().unwrap_or(5).clamp(5, 12) + 1;
    let n = m.predicted_labels.len().max(1);
    let cell_w = ((left.width as usize).saturating_sub(label_w) / n).clamp(4, 11);
    let wide_cells = cell_w >= 8;
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "{} · gold ↓ × predicted → · {}{}",
            c.category.as_deref().unwrap_or("all categories"),
            if wide_cells { "count and row %" } else { "counts" },
            if c.errors_only { " · errors only" } else { "" }
        ),
        t.muted(),
    ))];
    // Column names whole: on one row when they fit the cells, else split at
    // their hyphen over two rows ("front" over "left"), cut only as a last resort.
    let fits = m.predicted_labels.iter().all(|p| p.chars().count() < cell_w);
    let parts: Vec<(String, String)> = m
        .predicted_labels
        .iter()
        .map(|p| match p.split_once('-') {
            Some((a, b)) if !fits => (a.to_string(), b.to_string()),
            // No hyphen ("unparsed"): its first cell's worth over the rest.
            None if !fits && p.chars().count() >= cell_w => {
                let cut = cell_w - 1;
                (p.chars().take(cut).collect(), p.chars().skip(cut).collect())
            }
            _ => (p.clone(), String::new()),
        })
        .collect();
    for row in 0..if fits { 1 } else { 2 } {
        let mut header = vec![Span::raw(" ".repeat(label_w))];
        for (j, (a, b)) in parts.iter().enumerate() {
            let style = if j == c.col { t.heading(true) } else { t.muted() };
            let text = if row == 0 { a } else { b };
            header.push(Span::styled(format!("{:<cell_w$}", truncate(text, cell_w - 1)), style));
        }
        lines.push(Line::from(header));
    }
    for (i, g) in m.gold_labels.iter().enumerate() {
        let style = if i == c.row { t.heading(true) } else { t.text() };
        let mut row = vec![Span::styled(format!("{:<label_w$}", truncate(g, label_w - 1)), style)];
        for j in 0..m.predicted_labels.len() {
            let count = m.counts[i][j];
            let kind = m.cell_kind(i, j);
            let hidden = c.errors_only && !kind.is_error();
            let text = if count == 0 || hidden {
                "·".to_string()
            } else if wide_cells {
                format!("{count} {:.0}%", 100.0 * m.row_share(i, j))
            } else {
                count.to_string()
            };
            let color: Color = if kind.is_error() { t.kind_color(kind) } else { t.correct };
            let mut style = if count == 0 || hidden { t.muted() } else { t.colour(color) };
            if i == c.row && j == c.col {
                style = style.add_modifier(Modifier::REVERSED | Modifier::BOLD);
            }
            row.push(Span::styled(format!("{:<cell_w$}", truncate(&text, cell_w - 1)), style));
        }
        lines.push(Line::from(row));
    }
    if let (Some(g), Some(p)) = (m.gold_labels.get(c.row), m.predicted_labels.get(c.col)) {
        let kind = m.cell_kind(c.row, c.col);
        lines.push(Line::default());
        lines.push(Line::from(vec![
            Span::styled(format!("{g} → {p}: {} samples · ", m.counts[c.row][c.col]), t.text()),
            Span::styled(kind.name(), if kind.is_error() { t.kind(kind) } else { t.good() }),
            Span::styled(format!(" · {} lists them", key(app, Mode::Confusion, Action::Select)), t.muted()),
        ]));
    }
    let legend: Vec<Span> = ErrorKind::ALL
        .iter()
        .filter(|k| k.is_error())
        .flat_map(|k| [Span::styled("■ ", t.kind(*k)), Span::styled(format!("{} ", k.label()), t.muted())])
        .collect();
    lines.push(Line::from(legend));
    f.render_widget(Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: false }), left);
    if right.height == 0 {
        return;
    }
    if side_w == 40 {
        let mut lines = accuracy_lines(app, 40);
        lines.push(Line::default());
        lines.extend(error_lines(app, 40));
        f.render_widget(Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: false }), right);
    } else {
        let [a, e] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(right);
        f.render_widget(Paragraph::new(accuracy_lines(app, a.width as usize - 1)).wrap(ratatui::widgets::Wrap { trim: false }), a);
        f.render_widget(Paragraph::new(error_lines(app, e.width as usize)), e);
    }
}

const NAME_W: usize = 14;

/// Task-wise accuracy, as bars.
fn accuracy_lines(app: &App, width: usize) -> Vec<Line<'static>> {
    let t = &app.theme;
    let stats = &app.run.stats;
    // Task names whole where the pane has room.
    let longest = stats.accuracy.iter().map(|r| r.group.chars().count() + 1).max().unwrap_or(NAME_W);
    let name_w = longest.clamp(NAME_W, width.saturating_sub(16).max(NAME_W));
    let bar_w = width.saturating_sub(name_w + 8).max(4);
    let mut lines = vec![Line::from(Span::styled("accuracy by task", t.heading(true)))];
    for r in &stats.accuracy {
        // A name longer than its column gets a line of its own above its bar.
        let name = if r.group.chars().count() < name_w {
            r.group.clone()
        } else {
            lines.push(Line::from(Span::styled(r.group.clone(), t.text())));
            String::new()
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{name:<name_w$}"), t.text()),
            bar(r.accuracy, bar_w, t.correct),
            Span::styled(format!(" {:>5.1}%", 100.0 * r.accuracy), t.muted()),
        ]));
    }
    for w in &stats.warnings {
        lines.push(Line::from(Span::styled(w.to_string(), t.golden())));
    }
    lines
}

/// The error-kind breakdown (count and share of all errors), as bars.
fn error_lines(app: &App, width: usize) -> Vec<Line<'static>> {
    let t = &app.theme;
    // Kinds in words, never cut ("horizontal flip").
    let label = |k: &str| ErrorKind::from_name(k).map_or(k.to_string(), |k| k.label().to_string());
    let name_w = app.run.stats.error_shares.iter().map(|(k, _, _)| label(k).chars().count() + 1).max().unwrap_or(NAME_W).max(NAME_W);
    let bar_w = width.saturating_sub(name_w + 6).max(4);
    let mut lines = vec![];
    lines.push(Line::from(Span::styled("errors by kind", t.heading(true))));
    for (kind, count, share) in &app.run.stats.error_shares {
        let color = t.kind_name_color(kind);
        lines.push(Line::from(vec![
            Span::styled(format!("{:<name_w$}", label(kind)), t.colour(color)),
            bar(*share, bar_w, color),
            Span::styled(format!(" {count:>4}"), t.muted()),
        ]));
    }
    lines
}
