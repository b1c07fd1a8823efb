//! The Sample pane: the image (paged for multi-frame samples), question,
//! options with gold and prediction, probability bars, error kind, raw output
//! and the extraction rule.

use super::widgets::{bar, predicted, truncate, verdict};
use crate::data::images::decode;
use crate::tui::action::Action;
use crate::tui::images::ImageCache;
use crate::tui::state::App;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(f: &mut Frame, area: Rect, app: &App, images: &mut ImageCache) {
    let t = &app.theme;
    let Some(s) = app.focused_sample() else {
        f.render_widget(Paragraph::new("no sample selected").style(t.muted()), area);
        return;
    };
    let text = detail_lines(app, area.width as usize);
    let text_h = (text.len() as u16 + 1).min(area.height / 2).max(area.height.saturating_sub(area.width / 2));
    let [img_area, text_area] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(text_h.min(area.height.saturating_sub(4)))]).areas(area);
    let [caption, picture] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(img_area);
    let frames = s.images.len();
    // The file name only: the full path rarely fits and says little here.
    let label = s
        .images
        .get(app.frame)
        .map(|i| match i {
            crate::data::ImageSource::Path(p) => p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| i.label()),
            _ => i.label(),
        })
        .unwrap_or_else(|| "no image".into());
    let pager = if frames > 1 { format!("image {}/{frames} (←/→) · ", app.frame + 1) } else { String::new() };
    f.render_widget(
        Paragraph::new(Span::styled(truncate(&format!("{} · {pager}{label}", s.id), caption.width as usize), t.muted())),
        caption,
    );
    if let Some(src) = s.images.get(app.frame) {
        let key = format!("{}#{}", s.id, app.frame);
        images.draw(f, picture, "sample", &key, (t.bad(), t.muted()), || {
            let src = src.clone();
            Box::new(move || decode(&src).map_err(|e| e.to_string()))
        });
    }
    f.render_widget(Paragraph::new(text).wrap(Wrap { trim: false }), text_area);
}

fn detail_lines(app: &App, width: usize) -> Vec<Line<'static>> {
    let t = &app.theme;
    let Some(s) = app.focused_sample() else { return vec![] };
    let r = app.focused_record();
    let mut lines = vec![
        Line::from(Span::styled(format!("{} · {} perspective", s.category, s.perspective.name()), t.highlight())),
        Line::from(s.question.clone()),
    ];
    let probs = r.map(crate::tui::filter::option_probabilities).unwrap_or_default();
    let predicted_letter = r.and_then(|r| r.predicted_letter.clone());
    let bar_w = 10.min(width.saturating_sub(30));
    for o in &s.options {
        let letter = o.letter.to_string();
        let is_gold = Some(o.letter) == s.gold_letter;
        let is_pred = predicted_letter.as_deref() == Some(letter.as_str());
        let mark = match (is_gold, is_pred) {
            (true, true) => "★▶",
            (true, false) => "★ ",
            (false, true) => " ▶",
            _ => "  ",
        };
        let style = if is_gold {
            t.golden().add_modifier(Modifier::BOLD)
        } else if is_pred {
            t.bad()
        } else {
            t.text()
        };
        let mut spans = vec![Span::styled(format!("{mark} {letter}. {:<14}", truncate(&o.text, 14)), style)];
        if let Some((_, p)) = probs.iter().find(|(l, _)| *l == letter) {
            spans.push(Span::raw(" "));
            spans.push(bar(*p as f64, bar_w, if is_gold { t.correct } else { t.accent }));
            spans.push(Span::styled(format!(" {:>5.1}%", 100.0 * p), t.muted()));
        }
        lines.push(Line::from(spans));
    }
    if s.options.is_empty() {
        lines.push(Line::from(Span::styled(format!("gold: {}", s.gold_text.clone().unwrap_or_default()), t.golden())));
    }
    match r {
        None => lines.push(Line::from(Span::styled(
            format!("not run in this run · {} asks the model now", super::widgets::key(app, app.focus.mode(), Action::AskPlain)),
            t.muted(),
        ))),
        Some(r) => {
            let verdict = verdict(r, t);
            lines.push(Line::from(vec![
                verdict,
                Span::styled(format!(" · predicted {} · rule {}", predicted(r), r.rule.name()), t.muted()),
            ]));
            if let Some(dist) = app.run.sample_distribution(s) {
                lines.push(Line::from(Span::styled(format!("samples: {dist}"), t.highlight())));
            }
            if !r.raw_output.is_empty() {
                lines.push(Line::from(Span::styled(format!("raw: {}", r.raw_output.trim()), t.text())));
            }
        }
    }
    lines
}
