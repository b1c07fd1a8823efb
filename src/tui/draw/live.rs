//! The Live answer pane: ask the model about the focused sample now, and
//! watch the option probabilities and the streamed answer arrive.

use super::widgets::{bar, hints, predicted, verdict};
use crate::tui::state::{App, EngineStatus, Phase};
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let live = &app.live;
    use crate::tui::action::Action as A;
    let keys = hints(
        app,
        "live",
        &[
            (A::AskPlain, "plain"),
            (A::AskBoxed, "boxed"),
            (A::AskFlipped, "flipped"),
            (A::AskAdaptVis, "adaptvis"),
            (A::AskTyped, "type a question"),
            (A::SaveAnswer, "save"),
        ],
    );
    let mut lines = vec![Line::from(Span::styled(keys, t.muted()))];
    if let EngineStatus::Failed(e) = &app.engine {
        lines.push(Line::from(Span::styled(format!("the model did not load: {e}"), t.bad())));
    }
    let Some(id) = &live.sample_id else {
        lines.push(Line::from(Span::styled("nothing asked yet", t.muted())));
        f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
        return;
    };
    let sample = app.dataset.samples.iter().find(|s| &s.id == id);
    let phase_style = match &live.phase {
        Phase::Failed(_) => t.bad(),
        Phase::Done => t.good(),
        _ => t.golden(),
    };
    lines.push(Line::from(vec![
        Span::styled(format!("{id} · {} · ", live.variant.spec()), t.highlight()),
        Span::styled(live.phase.name(), phase_style),
        Span::styled(if live.saved { " · saved" } else { "" }, t.good()),
    ]));
    if let Some(q) = live.question.clone().or_else(|| sample.map(|s| s.question.clone())) {
        lines.push(Line::from(q));
    }
    if let Some(scores) = &live.scores {
        let probs = scores.probabilities();
        let bar_w = (area.width as usize).saturating_sub(32).clamp(4, 30);
        // ▶ marks the answer that was judged: the reading of the generated
        // text once there is one, the best score until then.
        let judged = live.record.as_ref().and_then(|r| r.predicted_letter.clone());
        for (i, (label, p)) in scores.labels.iter().zip(probs).enumerate() {
            let option = sample.and_then(|s| label.chars().next().and_then(|c| s.option(c)));
            let gold = sample.and_then(|s| s.gold_letter).map(|g| g.to_string()).as_deref() == Some(label.as_str());
            let style = if gold { t.golden().add_modifier(Modifier::BOLD) } else { t.text() };
            let picked = match &judged {
                Some(letter) => letter == label,
                None if live.record.is_some() => false,
                None => i == scores.best,
            };
            let mark = if picked { "▶" } else { " " };
            lines.push(Line::from(vec![
                Span::styled(
                    format!("{mark}{}{label}. {:<12} ", if gold { "★" } else { " " }, option.map(|o| o.text.as_str()).unwrap_or("")),
                    style,
                ),
                bar(p as f64, bar_w, if gold { t.correct } else { t.accent }),
                Span::styled(format!(" {:>5.1}%", 100.0 * p), t.muted()),
            ]));
        }
    } else if live.phase.busy() {
        lines.push(Line::from(Span::styled("scoring the options…", t.muted())));
    }
    if !live.text.is_empty() || live.phase.busy() {
        let cursor = if live.phase.busy() { "▌" } else { "" };
        lines.push(Line::from(vec![Span::styled("answer: ", t.muted()), Span::raw(format!("{}{cursor}", live.text))]));
    }
    if let Some(r) = &live.record {
        let verdict = verdict(r, t);
        lines.push(Line::from(vec![
            verdict,
            Span::styled(format!(" · read as {} (rule {}) · {:.0} ms", predicted(r), r.rule.name(), r.latency_ms), t.muted()),
        ]));
        if let Some(a) = r.variant.get("alpha") {
            lines.push(Line::from(Span::styled(format!("adaptvis alpha {a}"), t.muted())));
        }
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}
