//! Pure drawing of the sample browser.

use super::app::App;
use crate::data::images::decode;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;
use ratatui_image::picker::Picker;
use ratatui_image::protocol::StatefulProtocol;
use ratatui_image::StatefulImage;

/// ratatui-image keeps per-image encoder state; it is cached by
/// (sample, frame) so drawing stays cheap when nothing changed.
pub struct ImageCache {
    picker: Picker,
    key: Option<(usize, usize)>,
    proto: Option<Result<StatefulProtocol, String>>,
}

impl ImageCache {
    pub fn new(picker: Picker) -> ImageCache {
        ImageCache { picker, key: None, proto: None }
    }
    pub fn cycle_protocol(&mut self) {
        let next = self.picker.protocol_type().next();
        self.picker.set_protocol_type(next);
        self.key = None;
    }
    pub fn protocol_name(&self) -> String {
        format!("{:?}", self.picker.protocol_type()).to_lowercase()
    }
}

pub fn draw(f: &mut Frame, app: &App, images: &mut ImageCache) {
    let t = &app.theme;
    let [body, status] = Layout::vertical([Constraint::Min(3), Constraint::Length(1)]).areas(f.area());
    let list_w = if body.width >= 100 { 50 } else { body.width / 2 };
    let [left, right] = Layout::horizontal([Constraint::Length(list_w), Constraint::Min(10)]).areas(body);

    let id_w = app.dataset.samples.iter().map(|s| s.id.chars().count()).max().unwrap_or(4).clamp(4, 16);
    let items: Vec<ListItem> = app
        .dataset
        .samples
        .iter()
        .map(|s| {
            let gold = s.gold_text.clone().unwrap_or_default();
            ListItem::new(Line::from(vec![
                Span::styled(format!("{:<id_w$} ", truncate(&s.id, id_w)), Style::default().fg(t.dim)),
                Span::styled(format!("{:<14} ", truncate(&s.category, 14)), Style::default().fg(t.fg)),
                Span::styled(truncate(&gold, 14), Style::default().fg(t.gold)),
            ]))
        })
        .collect();
    let mut state = ListState::default().with_selected(Some(app.selected));
    let list = List::new(items)
        .block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(Style::default().fg(t.border))
                .title(format!(" Samples ({}) ", app.dataset.samples.len())),
        )
        .highlight_style(Style::default().bg(t.selected_bg).add_modifier(Modifier::BOLD));
    f.render_stateful_widget(list, left, &mut state);

    if let Some(s) = app.dataset.samples.get(app.selected) {
        let [img_area, text_area] = Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(right);
        let title = format!(" {} · image {}/{} ", s.id, app.frame + 1, s.images.len().max(1));
        let block = Block::default().borders(Borders::ALL).border_style(Style::default().fg(t.border)).title(title);
        let inner = block.inner(img_area);
        f.render_widget(block, img_area);
        draw_image(f, inner, app, images);

        let mut lines = vec![
            Line::from(Span::styled(format!("{} · {}", s.category, s.perspective.name()), Style::default().fg(t.accent))),
            Line::from(s.question.clone()),
            Line::default(),
        ];
        for o in &s.options {
            let is_gold = Some(o.letter) == s.gold_letter;
            let style = if is_gold { Style::default().fg(t.gold).add_modifier(Modifier::BOLD) } else { Style::default().fg(t.fg) };
            let mark = if is_gold { "★" } else { " " };
            lines.push(Line::from(Span::styled(format!("{mark} {}. {}", o.letter, o.text), style)));
        }
        if s.options.is_empty() {
            lines.push(Line::from(Span::styled(format!("gold: {}", s.gold_text.clone().unwrap_or_default()), Style::default().fg(t.gold))));
        }
        let dir = s.gold_direction.map(|d| d.name()).unwrap_or_else(|| "—".into());
        lines.push(Line::from(Span::styled(format!("gold direction: {dir}"), Style::default().fg(t.dim))));
        let p = Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).border_style(Style::default().fg(t.border)).title(" Sample "));
        f.render_widget(p, text_area);
    }

    let status_line = format!(
        " {} · {} samples · {} record errors · image: {} · ? help · q quit",
        app.dataset.name,
        app.dataset.samples.len(),
        app.dataset.issues.len(),
        images.protocol_name()
    );
    f.render_widget(Paragraph::new(status_line).style(Style::default().fg(t.dim)), status);

    if app.show_help {
        draw_help(f, app);
    }
}

fn draw_image(f: &mut Frame, area: Rect, app: &App, images: &mut ImageCache) {
    let key = (app.selected, app.frame);
    if images.key != Some(key) {
        let s = &app.dataset.samples[app.selected];
        images.proto =
            s.images.get(app.frame).map(|src| decode(src).map(|img| images.picker.new_resize_protocol(img)).map_err(|e| e.to_string()));
        images.key = Some(key);
    }
    match &mut images.proto {
        Some(Ok(p)) => f.render_stateful_widget(StatefulImage::default(), area, p),
        Some(Err(e)) => {
            f.render_widget(Paragraph::new(e.clone()).wrap(Wrap { trim: true }).style(Style::default().fg(app.theme.wrong)), area)
        }
        None => f.render_widget(Paragraph::new("no image"), area),
    }
}

fn draw_help(f: &mut Frame, app: &App) {
    let area = f.area();
    let w = area.width.min(64);
    let h = area.height.min(20);
    let popup = Rect::new(area.x + (area.width - w) / 2, area.y + (area.height - h) / 2, w, h);
    let lines: Vec<Line> = app.keymap.help().into_iter().map(|(mode, on, desc)| Line::from(format!("{mode:<8} {on:<6} {desc}"))).collect();
    f.render_widget(Clear, popup);
    f.render_widget(Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" Keys ")), popup);
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n.saturating_sub(1)).collect::<String>() + "…"
    }
}
