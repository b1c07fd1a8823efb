//! The Live answer pane: ask the model about the focused sample now, and
//! watch the option probabilities and the streamed answer arrive.

use super::widgets::{bar, predicted, verdict};
use crate::tui::state::{App, EngineStatus, Phase};
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let live = &app.live;
    let km = &app.keymap;
    let k = |a| km.key_for("live", a).unwrap_or("?").to_string();
    use crate::tui::action::Action as A;
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "{} plain · {} boxed · {} flipped · {} adaptvis · {} type a question · {} save",
            k(A::AskPlain),
            k(A::AskBoxed),
            k(A::AskFlipped),
            k(A::AskAdaptVis),
            k(A::AskTyped),
            k(A::SaveAnswer)
        ),
        Style::default().fg(t.dim),
    ))];
    if let EngineStatus::Failed(e) = &app.engine {
        lines.push(Line::from(Span::styled(format!("the model did not load: {e}"), Style::default().fg(t.wrong))));
    }
    let Some(id) = &live.sample_id else {
        lines.push(Line::from(Span::styled("nothing asked yet", Style::default().fg(t.dim))));
        f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
        return;
    };
    let sample = app.dataset.samples.iter().find(|s| &s.id == id);
    let phase_style = match &live.phase {
        Phase::Failed(_) => Style::default().fg(t.wrong),
        Phase::Done => Style::default().fg(t.correct),
        _ => Style::default().fg(t.gold),
    };
    lines.push(Line::from(vec![
        Span::styled(format!("{id} · {} · ", live.variant.spec()), Style::default().fg(t.accent)),
        Span::styled(live.phase.name(), phase_style),
        Span::styled(if live.saved { " · saved" } else { "" }, Style::default().fg(t.correct)),
    ]));
    if let Some(q) = live.question.clone().or_else(|| sample.map(|s| s.question.clone())) {
        lines.push(Line::from(q));
    }
    if let Some(scores) = &live.scores {
        let probs = scores.probabilities();
        let bar_w = (area.width as usize).saturating_sub(32).clamp(4, 30);
        for (i, (label, p)) in scores.labels.iter().zip(probs).enumerate() {
            let option = sample.and_then(|s| label.chars().next().and_then(|c| s.option(c)));
            let gold = sample.and_then(|s| s.gold_letter).map(|g| g.to_string()).as_deref() == Some(label.as_str());
            let style = if gold { Style::default().fg(t.gold).add_modifier(Modifier::BOLD) } else { Style::default().fg(t.fg) };
            let mark = if i == scores.best { "▶" } else { " " };
            lines.push(Line::from(vec![
                Span::styled(
                    format!("{mark}{}{label}. {:<12} ", if gold { "★" } else { " " }, option.map(|o| o.text.as_str()).unwrap_or("")),
                    style,
                ),
                bar(p as f64, bar_w, if gold { t.correct } else { t.accent }),
                Span::styled(format!(" {:>5.1}%", 100.0 * p), Style::default().fg(t.dim)),
            ]));
        }
    } else if live.phase.busy() {
        lines.push(Line::from(Span::styled("scoring the options…", Style::default().fg(t.dim))));
    }
    if !live.text.is_empty() || live.phase.busy() {
        let cursor = if live.phase.busy() { "▌" } else { "" };
        lines.push(Line::from(vec![Span::styled("answer: ", Style::default().fg(t.dim)), Span::raw(format!("{}{cursor}", live.text))]));
    }
    if let Some(r) = &live.record {
        let verdict = verdict(r, t);
        lines.push(Line::from(vec![
            verdict,
            Span::styled(format!(" · read as {} (rule {}) · {:.0} ms", predicted(r), r.rule, r.latency_ms), Style::default().fg(t.dim)),
        ]));
        if let Some(a) = r.variant.get("alpha") {
            lines.push(Line::from(Span::styled(format!("adaptvis alpha {a}"), Style::default().fg(t.dim))));
        }
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}
