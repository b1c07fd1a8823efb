//! A grouped bar chart of task-wise accuracy across runs (plotters, PNG).

use super::report::AccuracyRow;
use anyhow::{anyhow, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

use crate::viz::chart::{draw_legend, legend_width, register_font, wrap_label, Mark, COLORS};

/// One bar per run in each group (category), accuracy in percent, with 95%
/// CI whiskers; category names wrap under their group, the legend sits beside.
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
    let slot_px = 40 + 28 * runs.len();
    // About 7 px a character at 13 px: each group's name wraps to its slot.
    let labels: Vec<Vec<String>> = groups.iter().map(|g| wrap_label(g, (slot_px / 7).max(6))).collect();
    let label_lines = labels.iter().map(Vec::len).max().unwrap_or(1);
    let entries: Vec<(String, RGBColor, Mark)> =
        runs.iter().enumerate().map(|(k, (name, _))| (name.clone(), COLORS[k % COLORS.len()], Mark::Bar)).collect();
    let legend_w = legend_width(entries.iter().map(|e| e.0.as_str()));
    let plot_w = (160 + groups.len() * slot_px).max(640) as u32;
    let root = BitMapBackend::new(out, (plot_w + legend_w, 480 + 16 * label_lines as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let (plot, legend) = root.split_horizontally(plot_w);
    let slot = runs.len() as f64 + 1.0;
    let mut chart = ChartBuilder::on(&plot)
        .caption("accuracy by category (%)", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(30 + 16 * label_lines as u32)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..groups.len() as f64 * slot, 0f64..100f64)
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .x_desc("category (bars: runs; whiskers: 95% Wilson interval)")
        .y_desc("accuracy %")
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    for (k, (_, rows)) in runs.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let bars: Vec<(f64, &AccuracyRow)> =
            rows.iter().filter_map(|r| groups.iter().position(|g| *g == r.group).map(|i| (i as f64 * slot + 0.5 + k as f64, r))).collect();
        chart
            .draw_series(bars.iter().map(|(x, r)| Rectangle::new([(*x, 0.0), (x + 0.9, 100.0 * r.accuracy)], color.filled())))
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .draw_series(bars.iter().map(|(x, r)| PathElement::new(vec![(x + 0.45, 100.0 * r.lo), (x + 0.45, 100.0 * r.hi)], BLACK)))
            .map_err(|e| anyhow!("{e}"))?;
    }
    // Category names under each group, centred in backend pixels, one wrapped line under another.
    let style = TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    for (i, lines) in labels.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(i as f64 * slot + slot / 2.0, 0.0));
        for (j, line) in lines.iter().enumerate() {
            plot.draw(&Text::new(line.clone(), (px, py + 6 + 16 * j as i32), style.clone())).map_err(|e| anyhow!("{e}"))?;
        }
    }
    draw_legend(&legend, &entries)?;
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
/// accuracy as points on a second axis, drawn only when some run was
/// evaluated); steps are whole numbers and the legend sits beside the plot.
pub fn loss_curves(runs: &[LossSeries], out: &Path) -> Result<()> {
    register_font();
    let max_step = runs.iter().flat_map(|r| r.loss.iter().chain(&r.accuracy).map(|p| p.0)).fold(1.0, f64::max);
    let losses: Vec<f64> = runs.iter().flat_map(|r| r.loss.iter().map(|p| p.1)).filter(|l| l.is_finite()).collect();
    let top = losses.iter().cloned().fold(0.0, f64::max).max(1e-3) * 1.05;
    let evaluated = runs.iter().any(|r| !r.accuracy.is_empty());
    let mut entries: Vec<(String, RGBColor, Mark)> =
        runs.iter().enumerate().map(|(k, r)| (format!("{} loss", r.name), COLORS[k % COLORS.len()], Mark::Line)).collect();
    if evaluated {
        entries.extend(
            runs.iter()
                .enumerate()
                .filter(|(_, r)| !r.accuracy.is_empty())
                .map(|(k, r)| (format!("{} eval accuracy", r.name), COLORS[k % COLORS.len()], Mark::Dot)),
        );
    }
    let legend_w = legend_width(entries.iter().map(|e| e.0.as_str()));
    let root = BitMapBackend::new(out, (900 + legend_w, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let (plot, legend) = root.split_horizontally(900);
    let mut builder = ChartBuilder::on(&plot);
    builder.caption("training loss", ("sans-serif", 20)).margin(12).x_label_area_size(40).y_label_area_size(56);
    if evaluated {
        builder.right_y_label_area_size(56);
    }
    let mut chart = builder
        .build_cartesian_2d(0f64..max_step, 0f64..top)
        .map_err(|e| anyhow!("{e}"))?
        .set_secondary_coord(0f64..max_step, 0f64..100f64);
    let whole = |x: &f64| if x.fract().abs() < 1e-9 { format!("{x:.0}") } else { String::new() };
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("loss (answer tokens)")
        .x_labels((max_step as usize + 1).min(12))
        .x_label_formatter(&whole)
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    if evaluated {
        chart.configure_secondary_axes().y_desc("eval accuracy %").draw().map_err(|e| anyhow!("{e}"))?;
    }
    for (k, run) in runs.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        chart
            .draw_series(LineSeries::new(run.loss.iter().copied().filter(|p| p.1.is_finite()), color.stroke_width(2)))
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .draw_secondary_series(run.accuracy.iter().map(|&(step, a)| Circle::new((step, 100.0 * a), 4, color.filled())))
            .map_err(|e| anyhow!("{e}"))?;
    }
    draw_legend(&legend, &entries)?;
    root.present().map_err(|e| anyhow!("writing {}: {e}", out.display()))?;
    Ok(())
}
