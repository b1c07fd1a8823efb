//! The Runs & jobs pane: runs on disk with their summaries, background jobs
//! with progress, ETA and a log tail, and paired comparisons of two runs.

use super::table::{Column, DataTable};
use super::widgets::{bar, duration, hint_items, hints, key, packed};
use crate::tui::action::Action;
use crate::tui::keymap::Mode;
use crate::tui::state::{App, Phase};
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let r = &app.runs;
    // Title, header and the runs (a window of them when there are many).
    let runs_h = (r.list.len() as u16 + 3).clamp(4, area.height / 2);
    let [runs_area, mid, jobs_area] = Layout::vertical([
        Constraint::Length(runs_h),
        Constraint::Length(if r.compare.is_some() { area.height.saturating_sub(runs_h) * 2 / 3 } else { 0 }),
        Constraint::Min(3),
    ])
    .areas(area);
    draw_runs(f, runs_area, app);
    if let Some(c) = &r.compare {
        draw_comparison(f, mid, app, c);
    }
    let log_area = draw_jobs(f, jobs_area, app);
    draw_log(f, log_area, app);
}

/// The runs on disk, one row each.
fn draw_runs(f: &mut Frame, runs_area: Rect, app: &App) {
    let (t, r) = (&app.theme, &app.runs);
    let head_style = |active: bool| t.heading(active);
    let [runs_title, runs_table] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(runs_area);
    f.render_widget(
        Paragraph::new(Span::styled(
            format!(
                "runs in ./runs ({}) · {}",
                r.list.len(),
                hints(app, Mode::Runs, &[(Action::OpenRun, "open"), (Action::MarkRun, "mark"), (Action::CompareRuns, "compare")])
            ),
            head_style(!r.in_jobs),
        )),
        runs_title,
    );
    if r.list.is_empty() {
        f.render_widget(Paragraph::new(Span::styled("no runs yet", t.muted())), runs_table);
    } else {
        const RUN_COLUMNS: [Column; 8] = [
            Column::left("", 1),
            Column::left("", 1),
            Column::left("run", 22),
            Column::right("records", 7),
            Column::right("acc %", 6),
            Column::left("variant", 9),
            Column::left("decoding", 10),
            Column::fill("state"),
        ];
        let table =
            DataTable { columns: &RUN_COLUMNS, len: r.list.len(), selected: Some(r.cursor), focused: !r.in_jobs, sort: None, header: true };
        table.render(f, runs_table, t, |i| {
            let run = &r.list[i];
            // The decoding's kind ("generate"), whole; its settings are in run.json.
            let (variant, decoding) = run
                .meta
                .as_ref()
                .map(|m| (m.variant.clone(), m.decoding.split('(').next().unwrap_or_default().to_string()))
                .unwrap_or_default();
            let cell = |text: String| Span::styled(text, t.text());
            vec![
                cell(if Some(i) == r.marked { "*" } else { " " }.into()),
                cell(if run.dir == app.run.dir { "●" } else { " " }.into()),
                cell(run.name.clone()),
                cell(if run.problem.is_some() { "unreadable".into() } else { run.records.to_string() }),
                cell(format!("{:.1}", 100.0 * run.accuracy())),
                Span::styled(variant, t.muted()),
                Span::styled(decoding, t.muted()),
                Span::styled(if run.finished() { "finished" } else { "unfinished" }.to_string(), t.muted()),
            ]
        });
    }
}

/// Two runs paired by sample, and flip consistency with its warnings when one mirrors the other.
fn draw_comparison(f: &mut Frame, mid: Rect, app: &App, c: &crate::tui::state::Comparison) {
    let t = &app.theme;

    // Flip consistency and its warnings under the paired table, when one run mirrors the other.
    let mut flip_lines: Vec<Line> = Vec::new();
    if !c.flip.is_empty() {
        flip_lines
            .push(Line::from(Span::styled("flip consistency · beside the chance level the answers alone give (95%)", t.heading(false))));
        for f in &c.flip {
            let share = 100.0 * f.consistent as f64 / f.total.max(1) as f64;
            let ch = &f.chance;
            flip_lines.push(Line::from(Span::styled(
                format!(
                    "{:<28} {:>4}/{:<4} {share:>5.1}%   chance {:>5.1}% ({:.1}-{:.1})",
                    f.category,
                    f.consistent,
                    f.total,
                    100.0 * ch.chance,
                    100.0 * ch.lo,
                    100.0 * ch.hi
                ),
                t.text(),
            )));
        }
    }
    flip_lines.extend(c.warnings.iter().map(|w| Line::from(Span::styled(w.to_string(), t.golden()))));
    let flip_h = if flip_lines.is_empty() { 0 } else { (flip_lines.len() as u16 + 2).min(mid.height / 2) };
    let [mid, flip_area] = Layout::vertical([Constraint::Min(2), Constraint::Length(flip_h)]).areas(mid);
    f.render_widget(Paragraph::new(flip_lines).wrap(Wrap { trim: false }), flip_area);
    let [title, table_area] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(mid);
    f.render_widget(
        Paragraph::new(Span::styled(
            format!("{} vs {} (paired by sample; {} closes)", c.a, c.b, key(app, Mode::Runs, Action::Cancel)),
            t.heading(true),
        )),
        title,
    );
    const COMPARE_COLUMNS: [Column; 7] = [
        Column::left("group", 16),
        Column::right("n", 5),
        Column::right("only A", 6),
        Column::right("only B", 6),
        Column::right("Δ acc", 7),
        Column::right("95% CI", 16),
        Column::right("McNemar", 8),
    ];
    let table = DataTable { columns: &COMPARE_COLUMNS, len: c.rows.len(), selected: None, focused: false, sort: None, header: true };
    table.render(f, table_area, t, |i| {
        let row = &c.rows[i];
        let n = row.both + row.only_a + row.only_b + row.neither;
        // Significant at 5%: green when B gained, red when it lost.
        let color = match (row.p_mcnemar < 0.05, row.diff > 0.0) {
            (true, true) => t.correct,
            (true, false) => t.wrong,
            _ => t.fg,
        };
        let cell = |text: String| Span::styled(text, t.colour(color));
        vec![
            cell(row.group.clone()),
            cell(n.to_string()),
            cell(row.only_a.to_string()),
            cell(row.only_b.to_string()),
            cell(format!("{:+.1}%", 100.0 * row.diff)),
            cell(format!("[{:+.1}, {:+.1}]", 100.0 * row.lo, 100.0 * row.hi)),
            cell(format!("{:.3}", row.p_mcnemar)),
        ]
    });
}

/// The jobs list (its hints wrap); returns the area left below it for the selected job's log.
fn draw_jobs(f: &mut Frame, jobs_area: Rect, app: &App) -> Rect {
    let (t, r) = (&app.theme, &app.runs);
    let head_style = |active: bool| t.heading(active);
    // The jobs list above the selected job's log, which gets the pane's
    // whole width (the report tables it prints), behind a rule.
    let list_w = jobs_area.width as usize;
    let mut items = vec!["jobs".to_string()];
    items.extend(hint_items(
        app,
        Mode::Runs,
        &[
            (Action::Rerun, &format!("rerun the filter ({})", app.samples.visible.len())),
            (Action::CycleVariant, &format!("variant: {}", r.variant.name())),
            (Action::Finetune, "finetune"),
            (Action::EvalAdapter, "eval adapter"),
            (Action::BatchSaliency, "saliency"),
            (Action::CancelJob, "cancel"),
        ],
    ));
    let title: Vec<Line> = packed(&items, list_w).into_iter().map(|l| Line::from(Span::styled(l, head_style(r.in_jobs)))).collect();
    // The hints wrap between hints rather than be cut.
    let title_h = (title.len() as u16).clamp(1, 3);
    let list_h = title_h + 1 + (app.jobs.len().max(1) as u16).min(jobs_area.height / 3);
    let [list_area, log_rule_area] = Layout::vertical([Constraint::Length(list_h), Constraint::Min(2)]).areas(jobs_area);
    let log_block = Block::default().borders(Borders::TOP).border_style(t.colour(t.border));
    let log_area = log_block.inner(log_rule_area);
    f.render_widget(log_block, log_rule_area);
    let [jobs_title, jobs_table] = Layout::vertical([Constraint::Length(title_h), Constraint::Min(1)]).areas(list_area);
    f.render_widget(Paragraph::new(title), jobs_title);
    if app.jobs.is_empty() {
        f.render_widget(Paragraph::new(Span::styled("no background jobs", t.muted())), jobs_table);
    } else {
        // Job labels whole where the pane has room for them.
        let label_w =
            app.jobs.iter().map(|j| j.label.chars().count()).max().unwrap_or(3).clamp(22, list_w.saturating_sub(40).max(22)) as u16;
        let bar_w = (list_w.saturating_sub(label_w as usize + 24) as u16).clamp(4, 24);
        let columns = [Column::left("#", 3), Column::left("job", label_w), Column::left("progress", bar_w), Column::fill("state")];
        let table = DataTable {
            columns: &columns,
            len: app.jobs.len(),
            selected: Some(r.job_cursor),
            focused: r.in_jobs,
            sort: None,
            header: true,
        };
        table.render(f, jobs_table, t, |i| {
            let j = &app.jobs[i];
            let color = match j.phase {
                Phase::Failed(_) => t.wrong,
                Phase::Done => t.correct,
                Phase::Cancelled => t.dim,
                _ => t.gold,
            };
            let share = if j.total > 0 { j.done as f64 / j.total as f64 } else { 0.0 };
            let eta = j.eta_s().map(|s| format!(" eta {}", duration(s))).unwrap_or_default();
            let phase = match &j.phase {
                Phase::Failed(_) => "failed".to_string(),
                p => p.name(),
            };
            vec![
                Span::styled(j.id.to_string(), t.text()),
                Span::styled(j.label.clone(), t.text()),
                bar(share, bar_w as usize, color),
                Span::styled(format!("{}/{} {phase}{eta}", j.done, j.total), t.colour(color)),
            ]
        });
    }
    log_area
}

/// The selected job's log (a finetune's metrics and curve above it), scrolled by `log_scroll`.
fn draw_log(f: &mut Frame, log_area: Rect, app: &App) {
    let (t, r) = (&app.theme, &app.runs);
    let job = app.jobs.get(r.job_cursor);
    // A finetune shows its metrics and loss curve above its log.
    let log_area = match job.filter(|j| !j.losses.is_empty()) {
        Some(j) if log_area.height >= 8 => {
            // GRPO's line carries its rewards, KL and clipping too.
            let head_h = if j.rewards.is_empty() { 2 } else { 4 };
            let [head, chart, rest] =
                Layout::vertical([Constraint::Length(head_h), Constraint::Percentage(60), Constraint::Min(2)]).areas(log_area);
            let line = j.metrics.as_ref().map(|m| m.line()).unwrap_or_default();
            f.render_widget(Paragraph::new(line).style(t.text()).wrap(Wrap { trim: true }), head);
            // GRPO's loss hovers around 0 by construction: its rewards are the curve to watch.
            let chart_widget = if j.rewards.is_empty() { loss_chart(&j.losses, j.total, t) } else { reward_chart(j, t) };
            f.render_widget(chart_widget, chart);
            rest
        }
        _ => log_area,
    };
    let tail_n = log_area.height.saturating_sub(1) as usize;
    let mut lines = vec![Line::from(Span::styled(
        match job {
            Some(j) if j.log.is_empty() => format!("log of #{} {}", j.id, j.label),
            Some(j) => {
                let end = j.log.len().saturating_sub(r.log_scroll);
                let start = end.saturating_sub(tail_n);
                let scroll = hints(app, Mode::Runs, &[(Action::ScrollUp, "older"), (Action::ScrollDown, "newer")]);
                format!("log of #{} {} · lines {}-{end} of {} · {scroll}", j.id, j.label, (start + 1).min(end), j.log.len())
            }
            None => "log".into(),
        },
        t.muted(),
    ))];
    if let Some(j) = job {
        if let Phase::Failed(e) = &j.phase {
            lines.push(Line::from(Span::styled(e.clone(), t.bad())));
        }
        let end = j.log.len().saturating_sub(r.log_scroll);
        // A job's warnings (a GRPO run that stopped learning, skipped samples) stand out.
        let style = |l: &str| if l.starts_with("warning:") { t.golden() } else { t.text() };
        lines.extend(j.log[end.saturating_sub(tail_n)..end].iter().map(|l| Line::from(Span::styled(l.clone(), style(l)))));
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), log_area);
}

/// GRPO: mean reward and rollout accuracy against step (both 0..1).
fn reward_chart<'a>(j: &'a crate::tui::state::JobView, t: &Theme) -> Chart<'a> {
    let max_x = (j.total as f64).max(j.rewards.last().map(|p| p.0).unwrap_or(1.0)).max(1.0);
    let max_y = j.rewards.iter().chain(&j.rollout_accuracy).map(|p| p.1).filter(|v| v.is_finite()).fold(1.0, f64::max);
    let line = |name: &'static str, data: &'a [(f64, f64)], style| {
        Dataset::default().name(name).marker(Marker::Braille).graph_type(GraphType::Line).style(style).data(data)
    };
    Chart::new(vec![line("reward", &j.rewards, t.golden()), line("rollout acc", &j.rollout_accuracy, t.text())])
        .x_axis(Axis::default().style(t.muted()).bounds([0.0, max_x]).labels(vec![Line::from("0"), Line::from(format!("{max_x:.0}"))]))
        .y_axis(Axis::default().style(t.muted()).bounds([0.0, max_y]).labels(vec![Line::from("0"), Line::from(format!("{max_y:.2}"))]))
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
