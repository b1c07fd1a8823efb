//! The Runs & jobs pane: runs on disk with their summaries, background jobs
//! with progress, ETA and a log tail, and paired comparisons of two runs.

use super::widgets::{bar, duration, hints, key, truncate};
use crate::tui::action::Action;
use crate::tui::state::{App, Phase};
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let r = &app.runs;
    let runs_h = (r.list.len() as u16 + 2).clamp(3, area.height / 2);
    let [runs_area, mid, jobs_area] = Layout::vertical([
        Constraint::Length(runs_h),
        Constraint::Length(if r.compare.is_some() { area.height.saturating_sub(runs_h) * 2 / 3 } else { 0 }),
        Constraint::Min(3),
    ])
    .areas(area);

    let head_style = |active: bool| t.heading(active);
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "runs in ./runs ({}) · {}",
            r.list.len(),
            hints(app, "runs", &[(Action::OpenRun, "open"), (Action::MarkRun, "mark"), (Action::CompareRuns, "compare")])
        ),
        head_style(!r.in_jobs),
    ))];
    let visible = runs_h.saturating_sub(1) as usize;
    let start = r.cursor.saturating_sub(visible.saturating_sub(1));
    for (i, run) in r.list.iter().enumerate().skip(start).take(visible) {
        let (variant, decoding) = run.meta.as_ref().map(|m| (m.variant.clone(), m.decoding.clone())).unwrap_or_default();
        let open = run.dir == app.run.dir;
        let text = format!(
            "{}{} {:<22} {:>5} rec {:>6.1}% {:<9} {:<10} {}",
            if Some(i) == r.marked { "*" } else { " " },
            if open { "●" } else { " " },
            truncate(&run.name, 22),
            run.records,
            100.0 * run.accuracy(),
            truncate(&variant, 9),
            truncate(&decoding, 10),
            if run.finished() { "finished" } else { "unfinished" }
        );
        let mut style = t.text();
        if i == r.cursor && !r.in_jobs {
            style = style.bg(t.selected_bg).add_modifier(Modifier::BOLD);
        }
        lines.push(Line::from(Span::styled(text, style)));
    }
    if r.list.is_empty() {
        lines.push(Line::from(Span::styled("no runs yet", t.muted())));
    }
    f.render_widget(Paragraph::new(lines), runs_area);

    if let Some(c) = &r.compare {
        let mut lines = vec![Line::from(Span::styled(
            format!("{} vs {} (paired by sample; {} closes)", c.a, c.b, key(app, "runs", Action::Cancel)),
            t.heading(true),
        ))];
        lines.push(Line::from(Span::styled(
            format!("{:<16} {:>5} {:>6} {:>6} {:>8} {:>17} {:>8}", "group", "n", "only A", "only B", "Δ acc", "95% CI", "McNemar"),
            t.muted(),
        )));
        for row in &c.rows {
            let n = row.both + row.only_a + row.only_b + row.neither;
            let color = if row.p_mcnemar < 0.05 {
                if row.diff > 0.0 {
                    t.correct
                } else {
                    t.wrong
                }
            } else {
                t.fg
            };
            lines.push(Line::from(Span::styled(
                format!(
                    "{:<16} {:>5} {:>6} {:>6} {:>+7.1}% [{:>+6.1}, {:>+6.1}] {:>8.3}",
                    truncate(&row.group, 16),
                    n,
                    row.only_a,
                    row.only_b,
                    100.0 * row.diff,
                    100.0 * row.lo,
                    100.0 * row.hi,
                    row.p_mcnemar
                ),
                t.colour(color),
            )));
        }
        f.render_widget(Paragraph::new(lines), mid);
    }

    // The jobs list and the selected job's log side by side (or stacked when
    // narrow), the log behind a rule so neither runs into the other.
    let w = jobs_area.width;
    let (list_area, log_block, log_area) = if w >= 100 {
        let [a, b] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(jobs_area);
        let block = Block::default().borders(Borders::LEFT).border_style(t.colour(t.border));
        let inner = block.inner(b);
        (a, (block, b), inner)
    } else {
        let [a, b] = Layout::vertical([Constraint::Min(2), Constraint::Length(jobs_area.height / 3)]).areas(jobs_area);
        let block = Block::default().borders(Borders::TOP).border_style(t.colour(t.border));
        let inner = block.inner(b);
        (a, (block, b), inner)
    };
    f.render_widget(log_block.0, log_block.1);
    let list_w = list_area.width as usize;
    let mut lines = vec![Line::from(Span::styled(
        truncate(
            &format!(
                "jobs · {} · {}",
                hints(
                    app,
                    "runs",
                    &[
                        (Action::Rerun, &format!("rerun the filter ({})", app.samples.visible.len())),
                        (Action::CycleVariant, &format!("variant: {}", r.variant.name()))
                    ]
                ),
                hints(
                    app,
                    "runs",
                    &[
                        (Action::Finetune, "finetune"),
                        (Action::EvalAdapter, "eval adapter"),
                        (Action::BatchSaliency, "saliency"),
                        (Action::CancelJob, "cancel")
                    ]
                )
            ),
            list_w,
        ),
        head_style(r.in_jobs),
    ))];
    let bar_w = (list_area.width as usize).saturating_sub(46).clamp(4, 24);
    for (i, j) in app.jobs.iter().enumerate() {
        let color = match j.phase {
            Phase::Failed(_) => t.wrong,
            Phase::Done => t.correct,
            Phase::Cancelled => t.dim,
            _ => t.gold,
        };
        let share = if j.total > 0 { j.done as f64 / j.total as f64 } else { 0.0 };
        let eta = j.eta_s().map(|s| format!(" eta {}", duration(s))).unwrap_or_default();
        let mut label_style = t.text();
        if i == r.job_cursor && r.in_jobs {
            label_style = label_style.bg(t.selected_bg).add_modifier(Modifier::BOLD);
        }
        let phase = match &j.phase {
            Phase::Failed(_) => "failed".to_string(),
            p => p.name(),
        };
        let tail_w = list_w.saturating_sub(27 + bar_w);
        lines.push(Line::from(vec![
            Span::styled(format!("#{:<3}{:<22} ", j.id, truncate(&j.label, 22)), label_style),
            bar(share, bar_w, color),
            Span::styled(truncate(&format!(" {}/{} {phase}{eta}", j.done, j.total), tail_w), t.colour(color)),
        ]));
    }
    if app.jobs.is_empty() {
        lines.push(Line::from(Span::styled("no background jobs", t.muted())));
    }
    f.render_widget(Paragraph::new(lines), list_area);

    let job = app.jobs.get(r.job_cursor);
    // A finetune shows its metrics and loss curve above its log.
    let log_area = match job.filter(|j| !j.losses.is_empty()) {
        Some(j) if log_area.height >= 8 => {
            let [head, chart, rest] =
                Layout::vertical([Constraint::Length(2), Constraint::Percentage(60), Constraint::Min(2)]).areas(log_area);
            let line = j.metrics.as_ref().map(|m| m.line()).unwrap_or_default();
            f.render_widget(Paragraph::new(line).style(t.text()).wrap(Wrap { trim: true }), head);
            f.render_widget(loss_chart(&j.losses, j.total, t), chart);
            rest
        }
        _ => log_area,
    };
    let tail_n = log_area.height.saturating_sub(1) as usize;
    let mut lines =
        vec![Line::from(Span::styled(job.map(|j| format!("log of #{} {}", j.id, j.label)).unwrap_or_else(|| "log".into()), t.muted()))];
    if let Some(j) = job {
        if let Phase::Failed(e) = &j.phase {
            lines.push(Line::from(Span::styled(e.clone(), t.bad())));
        }
        let skip = j.log.len().saturating_sub(tail_n);
        lines.extend(j.log.iter().skip(skip).map(|l| Line::from(Span::styled(l.clone(), t.text()))));
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), log_area);
}

/// Loss against step, from 0 to the planned number of steps.
fn loss_chart<'a>(losses: &'a [(f64, f64)], total: usize, t: &Theme) -> Chart<'a> {
    let max_x = (total as f64).max(losses.last().map(|p| p.0).unwrap_or(1.0)).max(1.0);
    let max_y = losses.iter().map(|p| p.1).filter(|l| l.is_finite()).fold(0.0, f64::max).max(1e-3);
    let data = Dataset::default().name("loss").marker(Marker::Braille).graph_type(GraphType::Line).style(t.golden()).data(losses);
    Chart::new(vec![data])
        .x_axis(Axis::default().style(t.muted()).bounds([0.0, max_x]).labels(vec![Line::from("0"), Line::from(format!("{max_x:.0}"))]))
        .y_axis(Axis::default().style(t.muted()).bounds([0.0, max_y]).labels(vec![Line::from("0"), Line::from(format!("{max_y:.2}"))]))
}
