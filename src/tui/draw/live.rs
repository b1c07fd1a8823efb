//! The Live answer pane: ask the model about the focused sample now, and
//! watch the option probabilities and the streamed answer arrive.

use super::widgets::{bar, hints, predicted, verdict};
use crate::tui::keymap::Mode;
use crate::tui::state::{App, AskVariant, EngineStatus, LiveState, Phase, TypedGold};
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
        Mode::Live,
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
    // The sample as it was asked (a mirrored one's options and gold), once the worker says.
    let sample = live.asked.as_ref().or_else(|| app.dataset.samples.iter().find(|s| &s.id == id));
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
    if live.variant == AskVariant::Flipped {
        lines.push(Line::from(Span::styled("mirrored image: options and gold as asked (left and right swapped)", t.muted())));
    }
    match (&live.question, live.typed_gold) {
        (Some(q), gold) => {
            let judged = match gold {
                Some(TypedGold::Letter(l)) => format!("judged against your gold {l}"),
                Some(TypedGold::Direction(d)) => format!("judged against your gold {d}"),
                None => "not judged: no gold given (gold=B or gold=left before the question)".into(),
            };
            lines.push(Line::from(vec![
                Span::styled("typed · ", t.golden()),
                Span::raw(q.clone()),
                Span::styled(format!(" · {judged}"), t.muted()),
            ]));
        }
        (None, _) => lines.extend(sample.map(|s| Line::from(s.question.clone()))),
    }
    let judged = live.record.as_ref().and_then(|r| r.predicted_letter.clone());
    if let Some(scores) = &live.scores {
        let probs = scores.probabilities();
        let bar_w = (area.width as usize).saturating_sub(32).clamp(4, 30);
        for (i, (label, p)) in scores.labels.iter().zip(&probs).enumerate() {
            let option = sample.and_then(|s| label.chars().next().and_then(|c| s.option(c)));
            let gold = sample.and_then(|s| s.gold_letter).map(|g| g.to_string()).as_deref() == Some(label.as_str());
            let style = if gold { t.golden().add_modifier(Modifier::BOLD) } else { t.text() };
            let mark = if picked(live, &judged, label, i == scores.best) { "▶" } else { " " };
            lines.push(Line::from(vec![
                Span::styled(
                    format!("{mark}{}{label}. {:<12} ", if gold { "★" } else { " " }, option.map(|o| o.text.as_str()).unwrap_or("")),
                    style,
                ),
                bar(*p as f64, bar_w, if gold { t.correct } else { t.accent }),
                Span::styled(format!(" {:>5.1}%", 100.0 * p), t.muted()),
            ]));
        }
        if let Some(r) = &live.record {
            let best = &scores.labels[scores.best];
            if !r.raw_output.is_empty() && judged.as_deref() != Some(best.as_str()) {
                let words =
                    sample.and_then(|s| best.chars().next().and_then(|c| s.option(c))).map(|o| format!(" {}", o.text)).unwrap_or_default();
                lines.push(Line::from(Span::styled(
                    format!(
                        "scores favour {best}{words} ({:.1}%); the answer reads as {} · ▶ marks what was judged",
                        100.0 * probs[scores.best],
                        predicted(r)
                    ),
                    t.golden(),
                )));
            }
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
        let read = if r.raw_output.is_empty() { "scored" } else { "read as" };
        lines.push(Line::from(vec![
            verdict,
            Span::styled(format!(" · {read} {} (rule {}) · {:.0} ms", predicted(r), r.rule.name(), r.latency_ms), t.muted()),
        ]));
        if let Some(a) = r.variant.get("alpha") {
            lines.push(Line::from(Span::styled(format!("adaptvis alpha {a}"), t.muted())));
        }
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}

/// Whether ▶ goes on option `label`: the letter the answer was read as once
/// there is a reading; none when it read no letter; the best score before.
fn picked(live: &LiveState, judged: &Option<String>, label: &str, best: bool) -> bool {
    match judged {
        Some(letter) => letter == label,
        None if live.record.is_some() => false,
        None => best,
    }
}
