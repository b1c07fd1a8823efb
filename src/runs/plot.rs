//! A grouped bar chart of task-wise accuracy across runs (plotters, PNG).

use super::report::AccuracyRow;
use anyhow::{anyhow, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

use crate::viz::chart::{register_font, COLORS};

/// One bar per run in each group (category), accuracy in percent, with 95% CI whiskers.
pub fn accuracy_bars(runs: &[(String, Vec<AccuracyRow>)], out: &Path) -> Result<()> {
    register_font();
    let mut groups: Vec<String> = Vec::new();
    for (_, rows) in runs {
        for r in rows {
            if !groups.contains(&r.group) {
                groups.push(r.group.clone());
            }
        }
    }
    let width = (160 + groups.len() * (40 + 28 * runs.len())).max(640) as u32;
    let root = BitMapBackend::new(out, (width, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let slot = runs.len() as f64 + 1.0;
    let mut chart = ChartBuilder::on(&root)
        .caption("accuracy by category (%)", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..groups.len() as f64 * slot, 0f64..100f64)
        .map_err(|e| anyhow!("{e}"))?;
    chart.configure_mesh().disable_x_mesh().x_labels(0).y_desc("accuracy %").draw().map_err(|e| anyhow!("{e}"))?;
    for (k, (name, rows)) in runs.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let bars: Vec<(f64, &AccuracyRow)> =
            rows.iter().filter_map(|r| groups.iter().position(|g| *g == r.group).map(|i| (i as f64 * slot + 0.5 + k as f64, r))).collect();
        chart
            .draw_series(bars.iter().map(|(x, r)| Rectangle::new([(*x, 0.0), (x + 0.9, 100.0 * r.accuracy)], color.filled())))
            .map_err(|e| anyhow!("{e}"))?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
        chart
            .draw_series(bars.iter().map(|(x, r)| PathElement::new(vec![(x + 0.45, 100.0 * r.lo), (x + 0.45, 100.0 * r.hi)], BLACK)))
            .map_err(|e| anyhow!("{e}"))?;
    }
    // Category names under each group, centred in backend pixels.
    let style = TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    for (i, g) in groups.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(i as f64 * slot + slot / 2.0, 0.0));
        let label: String = g.chars().take(22).collect();
        root.draw(&Text::new(label, (px, py + 8), style.clone())).map_err(|e| anyhow!("{e}"))?;
    }
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.8)).draw().map_err(|e| anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow!("writing {}: {e}", out.display()))?;
    Ok(())
}

/// One training run's curves as plain (step, value) series.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LossSeries {
    pub name: String,
    pub loss: Vec<(f64, f64)>,
    /// Eval accuracy in [0, 1], at the steps it was measured.
    pub accuracy: Vec<(f64, f64)>,
}

/// Training loss against step, one line per training run (and its eval
/// accuracy as points on a second axis when it was evaluated).
pub fn loss_curves(runs: &[LossSeries], out: &Path) -> Result<()> {
    register_font();
    let max_step = runs.iter().flat_map(|r| r.loss.iter().chain(&r.accuracy).map(|p| p.0)).fold(1.0, f64::max);
    let losses: Vec<f64> = runs.iter().flat_map(|r| r.loss.iter().map(|p| p.1)).filter(|l| l.is_finite()).collect();
    let top = losses.iter().cloned().fold(0.0, f64::max).max(1e-3) * 1.05;
    let root = BitMapBackend::new(out, (900, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("training loss", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .right_y_label_area_size(56)
        .build_cartesian_2d(0f64..max_step, 0f64..top)
        .map_err(|e| anyhow!("{e}"))?
        .set_secondary_coord(0f64..max_step, 0f64..100f64);
    chart.configure_mesh().x_desc("step").y_desc("loss (answer tokens)").draw().map_err(|e| anyhow!("{e}"))?;
    chart.configure_secondary_axes().y_desc("eval accuracy %").draw().map_err(|e| anyhow!("{e}"))?;
    for (k, run) in runs.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        chart
            .draw_series(LineSeries::new(run.loss.iter().copied().filter(|p| p.1.is_finite()), color.stroke_width(2)))
            .map_err(|e| anyhow!("{e}"))?
            .label(run.name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2)));
        chart
            .draw_secondary_series(run.accuracy.iter().map(|&(step, a)| Circle::new((step, 100.0 * a), 4, color.filled())))
            .map_err(|e| anyhow!("{e}"))?;
    }
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.8)).draw().map_err(|e| anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow!("writing {}: {e}", out.display()))?;
    Ok(())
}
