//! Drawing: pure functions of the state (plus the image cache that
//! ratatui-image needs). A narrow terminal shows the focused pane; a large
//! one shows the sample list beside it.
mod causal;
mod confusion;
mod live;
mod runs;
mod saliency;
mod sample;
mod samples;
mod table;
mod widgets;

use super::action::Action;
use super::images::ImageCache;
use super::state::{App, EngineStatus, Pane};
use crate::tui::keymap::Mode;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

/// At least this big, the sample list stays on screen beside the focused pane.
pub const WIDE: (u16, u16) = (120, 36);

pub fn draw(f: &mut Frame, app: &App, images: &mut ImageCache) {
    // A status line that does not fit one row takes a second rather than be cut.
    let status_w = (f.area().width as usize).saturating_sub(status_hint(app).chars().count());
    let status_h = status_spans(app, status_w).1;
    let [tabs, body, status] = Layout::vertical([Constraint::Length(1), Constraint::Min(3), Constraint::Length(status_h)]).areas(f.area());
    draw_tabs(f, tabs, app);
    for (pane, area) in layout(body, app.focus) {
        draw_pane(f, area, app, images, pane);
    }
    draw_status(f, status, app);
    if let Some(input) = &app.input {
        let area = Rect { y: status.y, ..status };
        let prompt = format!(" {}: ", input.purpose.prompt());
        let hints = format!("  {}", widgets::hints(app, Mode::Input, &[(Action::Select, "accept"), (Action::Cancel, "cancel")]));
        // A long line scrolls: its end, where the typing is, stays in view.
        let room = (area.width as usize).saturating_sub(prompt.chars().count() + hints.chars().count() + 2).max(8);
        let n = input.text.chars().count();
        let text = if n > room { format!("…{}", input.text.chars().skip(n - room + 1).collect::<String>()) } else { input.text.clone() };
        let line = Line::from(vec![
            Span::styled(prompt, app.theme.heading(true)),
            Span::raw(text),
            Span::styled("█", app.theme.highlight()),
            Span::styled(hints, app.theme.muted()),
        ]);
        f.render_widget(Clear, area);
        f.render_widget(Paragraph::new(line), area);
    }
    if app.show_help {
        draw_help(f, app);
    }
}

/// Which panes are drawn where, for the focused pane and the body's size.
pub fn layout(body: Rect, focus: Pane) -> Vec<(Pane, Rect)> {
    let wide = body.width >= WIDE.0 && body.height + 2 >= WIDE.1;
    match (wide, focus) {
        (false, Pane::Samples) if body.width >= 100 => {
            // The list keeps its prediction and verdict columns at 100 columns.
            let [l, r] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(body);
            vec![(Pane::Samples, l), (Pane::Sample, r)]
        }
        (false, p) => vec![(p, body)],
        (true, Pane::Samples) | (true, Pane::Sample) => {
            let [l, r] = Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(body);
            vec![(Pane::Samples, l), (Pane::Sample, r)]
        }
        (true, Pane::Live) => {
            let [l, r] = Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(body);
            let [rt, rb] = Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(r);
            vec![(Pane::Samples, l), (Pane::Sample, rt), (Pane::Live, rb)]
        }
        (true, p) => {
            let [l, r] = Layout::horizontal([Constraint::Percentage(34), Constraint::Percentage(66)]).areas(body);
            vec![(Pane::Samples, l), (p, r)]
        }
    }
}

fn draw_pane(f: &mut Frame, area: Rect, app: &App, images: &mut ImageCache, pane: Pane) {
    let t = &app.theme;
    let focused = pane == app.focus || (app.focus == Pane::Sample && pane == Pane::Sample);
    let border = if focused { t.highlight() } else { t.colour(t.border) };
    let title = format!(" {} {} ", pane.index() + 1, pane.title());
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(border)
        .title(Span::styled(title, if focused { t.heading(true) } else { t.muted() }));
    let inner = block.inner(area);
    f.render_widget(block, area);
    match pane {
        Pane::Samples => samples::draw(f, inner, app),
        Pane::Sample => sample::draw(f, inner, app, images),
        Pane::Live => live::draw(f, inner, app),
        Pane::Confusion => confusion::draw(f, inner, app),
        Pane::Saliency => saliency::draw(f, inner, app, images),
        Pane::Runs => runs::draw(f, inner, app),
        Pane::Causal => causal::draw(f, inner, app),
    }
}

fn draw_tabs(f: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let mut spans = vec![Span::styled(" flipscope ", t.heading(true))];
    for p in Pane::ALL {
        let style = if p == app.focus { t.text().bg(t.selected_bg).add_modifier(Modifier::BOLD) } else { t.muted() };
        spans.push(Span::styled(format!(" {} {} ", p.index() + 1, p.title()), style));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The hint at the status line's right end: the way out and the way to help.
fn status_hint(app: &App) -> String {
    format!(" {}", widgets::hints(app, Mode::Global, &[(Action::Help, "help"), (Action::Quit, "quit")]))
}

/// The status line's spans for a left part `width` columns wide, and the rows
/// (1 or 2) it takes: the run, the data and the jobs are always named whole;
/// on one row the model's description gives way first, and where even that
/// is not enough the line takes a second row.
fn status_spans(app: &App, width: usize) -> (Vec<Span<'static>>, u16) {
    let t = &app.theme;
    if let Some(m) = &app.message {
        let text = format!(" {m}");
        let rows = if text.chars().count() > width { 2 } else { 1 };
        return (vec![Span::styled(text, t.golden())], rows);
    }
    let (state, engine_style) = match &app.engine {
        EngineStatus::Loading => (" (loading…)", t.golden()),
        EngineStatus::Ready { .. } => ("", t.text()),
        EngineStatus::Failed(_) => (" (failed to load)", t.bad()),
    };
    let run = if app.run.records.is_empty() {
        format!("run {} (empty)", app.run.name)
    } else {
        let overall = app.run.stats.accuracy.last().map(|r| 100.0 * r.accuracy).unwrap_or(0.0);
        format!("run {} {:.1}%", app.run.name, overall)
    };
    let jobs = app.running_jobs()
        + app.live.phase.busy() as usize
        + app.saliency.work.phase.busy() as usize
        + app.causal.work.phase.busy() as usize;
    let data = format!("data {} ({})", app.data_label, app.dataset.samples.len());
    let jobs = if jobs > 0 { format!(" · {jobs} job{} running", if jobs == 1 { "" } else { "s" }) } else { String::new() };
    let fixed = 1 + "model ".len() + state.chars().count() + 3 + data.chars().count() + 3 + run.chars().count() + jobs.chars().count();
    let one_row = width.saturating_sub(fixed);
    let (label, rows) = if one_row >= 12 || one_row >= app.model_label.chars().count() {
        (widgets::truncate(&app.model_label, one_row.max(1)), 1)
    } else {
        (widgets::truncate(&app.model_label, (2 * width).saturating_sub(fixed + 2).max(8)), 2)
    };
    let mut spans = vec![
        Span::raw(" "),
        Span::styled(format!("model {label}{state}"), engine_style),
        Span::styled(" · ", t.muted()),
        Span::styled(data, t.text()),
        Span::styled(" · ", t.muted()),
        Span::styled(run, t.text()),
        Span::styled(jobs, t.golden()),
    ];
    // The image protocol is the least of it: shown only where it fits whole.
    let protocol = format!(" · {}", app.protocol);
    if spans.iter().map(|s| s.width()).sum::<usize>() + protocol.chars().count() <= width * rows as usize {
        spans.push(Span::styled(protocol, t.muted()));
    }
    (spans, rows)
}

fn draw_status(f: &mut Frame, area: Rect, app: &App) {
    let hint = status_hint(app);
    let [left, right] = Layout::horizontal([Constraint::Min(1), Constraint::Length(hint.chars().count() as u16)]).areas(area);
    let (spans, _) = status_spans(app, left.width as usize);
    f.render_widget(Paragraph::new(Line::from(spans)).wrap(ratatui::widgets::Wrap { trim: false }), left);
    f.render_widget(Paragraph::new(Span::styled(hint, app.theme.muted())), right);
}

fn draw_help(f: &mut Frame, app: &App) {
    let area = f.area();
    let w = area.width.saturating_sub(4).min(90);
    let h = area.height.saturating_sub(2);
    let popup = Rect::new(area.x + (area.width - w) / 2, area.y + (area.height - h) / 2, w, h);
    let t = &app.theme;
    let mode = app.focus.mode();
    // The focused pane's keys first, then the keys that work everywhere, then the rest.
    let mut rows = app.keymap.help();
    rows.sort_by_key(|(m, _, _)| {
        if *m == mode {
            0
        } else if *m == Mode::Global {
            1
        } else {
            2
        }
    });
    // Descriptions wrap under their column; the view stops at the last line.
    let desc_w = (w as usize).saturating_sub(2 + 26).max(10);
    let mut lines: Vec<Line> = Vec::new();
    let mut starts = Vec::new();
    for (m, on, desc) in &rows {
        let style = if *m == mode { t.text() } else { t.muted() };
        starts.push(lines.len());
        for (i, part) in crate::viz::chart::wrap_label(desc, desc_w).into_iter().enumerate() {
            let (m, on) = if i == 0 { (m.name(), on.as_str()) } else { ("", "") };
            lines.push(Line::from(vec![
                Span::styled(format!("{m:<10}"), t.highlight()),
                Span::styled(format!("{on:<16}"), style.add_modifier(Modifier::BOLD)),
                Span::styled(part, style),
            ]));
        }
    }
    let room = h.saturating_sub(2) as usize;
    let first = starts.get(app.help_scroll).copied().unwrap_or(0).min(lines.len().saturating_sub(room));
    let shown: Vec<Line> = lines.iter().skip(first).take(room).cloned().collect();
    let end = if first + room >= lines.len() { " · end" } else { "" };
    f.render_widget(Clear, popup);
    let title = format!(" Keys ({} bindings; ↑↓ scroll, ? close){end} ", rows.len());
    f.render_widget(Paragraph::new(shown).block(Block::default().borders(Borders::ALL).border_style(t.highlight()).title(title)), popup);
}
