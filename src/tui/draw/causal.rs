//! The Causal pane, for the focused sample: the logit lens's decision curve
//! (each candidate's probability at the answer position, by layer), the
//! knockout table (the answer's log-prob change with each edge group
//! blocked, by window start) and the patching map (the share of LD the clean
//! run restores in the mirrored one, by layer and position group). The two
//! tables are heat cells and scroll together by layer.

use super::widgets::{key, truncate};
use crate::causal::overview::{CausalOverview, DecisionCurve, KnockoutTable, Part, PatchMap};
use crate::causal::{EdgeGroup, PositionGroup};
use crate::tui::action::Action;
use crate::tui::keymap::Mode;
use crate::tui::state::{App, Phase};
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let c = &app.causal;
    let Some(sample) = app.focused_sample() else {
        f.render_widget(Paragraph::new("no sample selected").style(t.muted()), area);
        return;
    };
    let k = |a| key(app, Mode::Causal, a);
    let settings = format!(
        "{} · answer {} ({}) · knockout window {} ({}) · layers {}/{} · {} recompute · {} batch over the filter ({} samples)",
        sample.id,
        c.form.name(),
        k(Action::CycleAnswer),
        c.window,
        k(Action::CycleWindow),
        k(Action::ScrollDown),
        k(Action::ScrollUp),
        k(Action::Recompute),
        k(Action::BatchCausal),
        app.samples.visible.len()
    );
    let head_h = (settings.chars().count() as u16).div_ceil(area.width.max(1)).clamp(1, 3);
    let result = c.work.result.as_ref().map(|r| &r.overview).filter(|o| o.sample_id == sample.id);
    let phase = match &c.work.phase {
        Phase::Queued | Phase::Running => {
            let so_far = result.map(|o| format!("{} · ", verdict(o))).unwrap_or_default();
            let cancel = key(app, Mode::Global, Action::Cancel);
            Span::styled(format!("{so_far}computing… (scrolling does not wait; {cancel} cancels)"), t.golden())
        }
        Phase::Failed(e) => Span::styled(format!("failed: {e}"), t.bad()),
        Phase::Cancelled => Span::styled(format!("cancelled ({} computes again)", k(Action::Recompute)), t.muted()),
        _ if result.is_none() => Span::styled(format!("{} computes the experiments for this sample", k(Action::Recompute)), t.muted()),
        _ => Span::styled(result.map(verdict).unwrap_or_default(), t.text()),
    };
    // The status wraps (up to 3 lines) rather than cut what is compared.
    let status_h = (phase.width() as u16).div_ceil(area.width.max(1)).clamp(1, 3);
    let [head, status, body] = Layout::vertical([Constraint::Length(head_h), Constraint::Length(status_h), Constraint::Min(3)]).areas(area);
    f.render_widget(Paragraph::new(Span::styled(settings, t.highlight())).wrap(Wrap { trim: true }), head);
    f.render_widget(Paragraph::new(phase).wrap(Wrap { trim: true }), status);
    let Some(o) = result else { return };
    // The tables take the rows they need (the curve keeps at least two
    // fifths of the pane), and the curve the rest.
    let layers = o.lens.as_ref().and_then(|l| l.as_ref().ok()).map_or(0, |l| l.curve.len());
    let curve_min = (body.height * 2 / 5).max(6);
    // One row more than the tables need: the patching footer may wrap.
    let tables_h = (layers as u16 + 5).max(6).min(body.height.saturating_sub(curve_min));
    let [top, bottom] = Layout::vertical([Constraint::Min(curve_min), Constraint::Length(tables_h)]).areas(body);
    draw_curve(f, top, o, t);
    let knockout_w = 5 + 7 * EdgeGroup::ALL.len() as u16;
    let [left, _, right] = Layout::horizontal([Constraint::Length(knockout_w), Constraint::Length(2), Constraint::Min(10)]).areas(bottom);
    draw_part(f, left, &o.knockout, "knockout", t, |f, area, k| draw_knockout(f, area, k, layers, c.scroll, t));
    draw_part(f, right, &o.patch, "patching", t, |f, area, p| draw_patch(f, area, p, c.scroll, t));
}

/// The sample's answer in one line: what the last layer picks, from which
/// layer on, the gold answer, and the opening read before the decision.
fn verdict(o: &CausalOverview) -> String {
    let label = |i: usize| o.labels.get(i).cloned().unwrap_or_default();
    let mut parts = Vec::new();
    if let Some(Ok(lens)) = &o.lens {
        if let Some(a) = lens.answer {
            parts.push(match lens.decided_at {
                Some(d) => format!("answer {} leads the candidates from layer {d} of {}", label(a), lens.curve.len()),
                None => format!("answer {}", label(a)),
            });
        }
    }
    if let Some(g) = o.gold {
        parts.push(format!("gold {}", label(g)));
    }
    parts.push(format!("compares {}", crate::causal::decision::compared(o.form, &o.labels, &o.opening)));
    parts.join(" · ")
}

/// A part: drawn when computed, else its error or "computing…".
fn draw_part<T>(f: &mut Frame, area: Rect, part: &Part<T>, what: &str, t: &Theme, draw: impl FnOnce(&mut Frame, Rect, &T)) {
    match part {
        Some(Ok(x)) => draw(f, area, x),
        Some(Err(e)) => f.render_widget(Paragraph::new(Span::styled(format!("{what}: {e}"), t.bad())).wrap(Wrap { trim: true }), area),
        None => f.render_widget(Paragraph::new(Span::styled(format!("{what}: computing…"), t.golden())), area),
    }
}

/// Each candidate's probability by layer, with the layer the answer is settled at.
fn draw_curve(f: &mut Frame, area: Rect, o: &CausalOverview, t: &Theme) {
    draw_part(f, area, &o.lens, "logit lens", t, |f, area, lens: &DecisionCurve| {
        let n = lens.curve.len();
        let series: Vec<Vec<(f64, f64)>> = (0..o.labels.len())
            .map(|c| lens.curve.iter().enumerate().map(|(l, row)| (l as f64, row.get(c).copied().unwrap_or(0.0) as f64)).collect())
            .collect();
        let others = [t.highlight(), t.golden(), t.text(), t.muted()];
        let style = |c: usize| {
            if Some(c) == o.gold {
                t.good()
            } else if Some(c) == lens.answer {
                t.bad()
            } else {
                others[c % others.len()]
            }
        };
        // The legend is the title: each answer in its line's colour.
        let mut legend = vec![Span::styled("logit lens: P(answer) at the answer position by layer  ", t.title())];
        for (c, label) in o.labels.iter().enumerate() {
            let role = if Some(c) == o.gold {
                " (gold)"
            } else if Some(c) == lens.answer {
                " (answer)"
            } else {
                ""
            };
            legend.push(Span::styled(format!("━ {label}{role}  "), style(c)));
        }
        if let Some(d) = lens.decided_at {
            legend.push(Span::styled(format!("┊ decided at layer {d}"), t.muted()));
        }
        // The legend wraps onto a second row rather than lose its end.
        let legend_h = (legend.iter().map(|s| s.width()).sum::<usize>() as u16).div_ceil(area.width.max(1)).clamp(1, 2);
        let [title, plot] = Layout::vertical([Constraint::Length(legend_h), Constraint::Min(2)]).areas(area);
        f.render_widget(Paragraph::new(Line::from(legend)).wrap(Wrap { trim: true }), title);
        let decided: Vec<(f64, f64)> = lens.decided_at.map(|d| vec![(d as f64, 0.0), (d as f64, 1.0)]).unwrap_or_default();
        let mut sets: Vec<Dataset> = series
            .iter()
            .enumerate()
            .map(|(c, data)| {
                Dataset::default().name(o.labels[c].clone()).marker(Marker::Braille).graph_type(GraphType::Line).style(style(c)).data(data)
            })
            .collect();
        if !decided.is_empty() {
            sets.push(Dataset::default().name("decided").marker(Marker::Dot).graph_type(GraphType::Line).style(t.muted()).data(&decided));
        }
        let max_x = n.saturating_sub(1).max(1) as f64;
        let x_labels = vec![Line::from("0"), Line::from(format!("layer {}", n.saturating_sub(1)))];
        let chart = Chart::new(sets)
            .legend_position(None)
            .x_axis(Axis::default().style(t.muted()).bounds([0.0, max_x]).labels(x_labels))
            .y_axis(Axis::default().style(t.muted()).bounds([0.0, 1.0]).labels(vec![Line::from("0"), Line::from("1")]));
        f.render_widget(chart, plot);
    });
}

/// Short column names: the tables must fit beside each other in 80 columns.
fn edge_name(e: EdgeGroup) -> &'static str {
    match e {
        EdgeGroup::ImageToLast => "img→L",
        EdgeGroup::QuestionToLast => "Q→L",
        EdgeGroup::ImageToQuestion => "img→Q",
        EdgeGroup::BoxToLast => "box→L",
    }
}

fn group_name(g: PositionGroup) -> &'static str {
    match g {
        PositionGroup::Reference => "ref",
        PositionGroup::Target => "tgt",
        g => g.name(),
    }
}

/// Rows `[scroll, scroll + room)` of `n`, clamped so the last page stays full.
fn rows_shown(n: usize, scroll: usize, room: usize) -> std::ops::Range<usize> {
    let start = scroll.min(n.saturating_sub(room));
    start..(start + room).min(n)
}

fn cell(text: String, width: usize, style: Style) -> Span<'static> {
    Span::styled(format!("{:>w$} ", truncate(&text, width - 1), w = width - 1), style)
}

fn header(label: &str, label_w: usize, names: &[&str], width: usize, t: &Theme) -> Line<'static> {
    let mut spans = vec![Span::styled(format!("{label:<label_w$}"), t.muted())];
    spans.extend(names.iter().map(|n| cell(n.to_string(), width, t.heading(true))));
    Line::from(spans)
}

/// " · 3–10/28" when the rows do not all fit.
fn scrolled(shown: &std::ops::Range<usize>, n: usize) -> String {
    if shown.len() < n {
        format!(" · {}–{}/{n}", shown.start, shown.end.saturating_sub(1))
    } else {
        String::new()
    }
}

/// A line cut to `width` cells.
fn fitted(text: String, width: u16, style: Style) -> Line<'static> {
    Line::from(Span::styled(truncate(&text, width as usize), style))
}

/// Layer rows the tables have room for: both keep a title, a header, the
/// vision row (blank in knockout, so layer rows line up) and a footer.
fn room(area: Rect) -> usize {
    (area.height as usize).saturating_sub(4)
}

/// The knockout rows beside patching's layer rows; a window longer than one
/// layer has fewer starts, so blank rows keep the footers level.
fn draw_knockout(f: &mut Frame, area: Rect, k: &KnockoutTable, layers: usize, scroll: usize, t: &Theme) {
    const W: usize = 7;
    let n = k.delta.len();
    let shown = rows_shown(n, scroll, room(area));
    let names: Vec<&str> = k.edges.iter().map(|e| edge_name(*e)).collect();
    // The most harmful cell is the hottest; helping cells stay cold.
    let worst = k.delta.iter().flatten().fold(1e-9f64, |m, v| m.max(-v));
    let mut lines = vec![
        fitted(format!("knockout: Δ log p({}){}", k.target.trim(), scrolled(&shown, n)), area.width, t.title()),
        header("from", 5, &names, W, t),
        Line::from(""),
    ];
    let level = rows_shown(layers.max(n), scroll, room(area)).len();
    for w in shown.clone() {
        let mut spans = vec![Span::styled(format!("{w:<5}"), t.muted())];
        spans.extend(k.delta[w].iter().map(|&v| cell(format!("{v:+.2}"), W, t.heat((-v / worst).max(0.0)))));
        lines.push(Line::from(spans));
    }
    lines.extend((shown.len()..level).map(|_| Line::from("")));
    lines.push(fitted(format!("window {} · L answer, Q question", k.window), area.width, t.muted()));
    f.render_widget(Paragraph::new(lines), area);
}

fn draw_patch(f: &mut Frame, area: Rect, p: &PatchMap, scroll: usize, t: &Theme) {
    use crate::runs::warnings::{ld_gap_too_small, DEFAULT_MIN_LD_GAP};
    let ld = format!("LD clean {:.2}, mirrored {:.2} · {}", p.ld_clean, p.ld_corrupt, p.contrast);
    if ld_gap_too_small(p.ld_clean, p.ld_corrupt, DEFAULT_MIN_LD_GAP) {
        let lines = vec![
            fitted("patching: LD restored".into(), area.width, t.title()),
            Line::from(Span::styled(
                format!(
                    "⚠ small_ld_gap: the mirror moves LD by {:.2} nats, under {DEFAULT_MIN_LD_GAP}: no share restored is shown (a ratio over noise)",
                    (p.ld_clean - p.ld_corrupt).abs()
                ),
                t.golden(),
            )),
            Line::from(Span::styled(ld, t.muted())),
        ];
        f.render_widget(Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: false }), area);
        return;
    }
    let names: Vec<&str> = p.groups.iter().map(|g| group_name(*g)).collect();
    let width = ((area.width as usize).saturating_sub(7) / names.len().max(1)).clamp(5, 9);
    let n = p.effect.len();
    let shown = rows_shown(n, scroll, room(area));
    let row = |label: String, values: Vec<Option<f64>>| {
        let mut spans = vec![Span::styled(format!("{label:<7}"), t.muted())];
        spans.extend(values.into_iter().map(|v| match v.filter(|v| v.is_finite()) {
            Some(v) => cell(format!("{v:.2}"), width, t.heat(v)),
            None => cell("·".into(), width, t.muted()),
        }));
        Line::from(spans)
    };
    let mut lines = vec![
        fitted(format!("patching: LD restored{}", scrolled(&shown, n)), area.width, t.title()),
        header("layer", 7, &names, width, t),
        row("vision".into(), p.vision.clone()),
    ];
    for l in shown {
        lines.push(row(l.to_string(), p.effect[l].iter().map(|&v| Some(v)).collect()));
    }
    // The contrast wraps into the rows below the table rather than be cut.
    lines.push(Line::from(Span::styled(ld, t.muted())));
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}
