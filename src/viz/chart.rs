//! Charts as PNGs (plotters): the font and palette every chart shares, a
//! line chart by layer, and a table of heat cells.

use super::Colormap;
use anyhow::{anyhow, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
pub const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Makes the embedded font the charts' "sans-serif" (once).
pub fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// plotters' errors as anyhow's.
pub fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("{e}")
}

/// How a legend entry shows its series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    Line,
    Bar,
    /// Points (measurements at some steps).
    Dot,
    /// A dashed vertical rule (a marked layer).
    Rule,
}

/// Width in pixels of a legend column for these names (13-px text).
pub fn legend_width<'a>(names: impl Iterator<Item = &'a str>) -> u32 {
    let longest = names.map(|n| n.chars().count()).max().unwrap_or(0) as u32;
    (longest * 7 + 44).min(420)
}

/// A legend in its own area beside the plot, so it never covers the data.
pub fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, plotters::coord::Shift>, entries: &[(String, RGBColor, Mark)]) -> Result<()> {
    let style = TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, (name, color, mark)) in entries.iter().enumerate() {
        let y = 48 + 22 * i as i32;
        match mark {
            Mark::Line => area.draw(&PathElement::new(vec![(8, y), (26, y)], color.stroke_width(2))).map_err(err)?,
            Mark::Bar => area.draw(&Rectangle::new([(10, y - 6), (24, y + 6)], color.filled())).map_err(err)?,
            Mark::Dot => area.draw(&Circle::new((17, y), 4, color.filled())).map_err(err)?,
            Mark::Rule => area.draw(&PathElement::new(vec![(17, y - 8), (17, y + 8)], color.stroke_width(2))).map_err(err)?,
        }
        area.draw(&Text::new(name.clone(), (32, y), style.clone())).map_err(err)?;
    }
    Ok(())
}

/// `text` in lines of at most `width` characters, broken at spaces (a word
/// longer than a line is split): a label is wrapped, never cut.
pub fn wrap_label(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        let chars: Vec<char> = word.chars().collect();
        for piece in chars.chunks(width) {
            let piece: String = piece.iter().collect();
            match lines.last_mut() {
                Some(l) if l.chars().count() + 1 + piece.chars().count() <= width => {
                    l.push(' ');
                    l.push_str(&piece);
                }
                _ => lines.push(piece),
            }
        }
    }
    lines
}

/// One line per series over x = 0, 1, 2, ... (layers), with y in `y_range`.
pub fn layer_lines(title: &str, y_desc: &str, series: &[(String, Vec<f64>)], y_range: (f64, f64), out: &Path) -> Result<()> {
    layer_chart(&LayerChart { title, y_desc, series, y_range, mark: None, emphasis: None }, out)
}

/// A line chart by layer, with what it marks.
pub struct LayerChart<'a> {
    pub title: &'a str,
    pub y_desc: &'a str,
    pub series: &'a [(String, Vec<f64>)],
    pub y_range: (f64, f64),
    /// A layer marked with a vertical rule, and what it is ("decided at layer 2").
    pub mark: Option<(usize, String)>,
    /// A series drawn thicker (the gold answer's).
    pub emphasis: Option<usize>,
}

pub fn layer_chart(c: &LayerChart, out: &Path) -> Result<()> {
    register_font();
    let n = c.series.iter().map(|s| s.1.len()).max().unwrap_or(1).max(2);
    let mut entries: Vec<(String, RGBColor, Mark)> =
        c.series.iter().enumerate().map(|(k, (name, _))| (name.clone(), COLORS[k % COLORS.len()], Mark::Line)).collect();
    if let Some((_, what)) = &c.mark {
        entries.push((what.clone(), RGBColor(90, 90, 90), Mark::Rule));
    }
    let legend_w = legend_width(entries.iter().map(|e| e.0.as_str()));
    crate::fsutil::check_output(out)?;
    let root = BitMapBackend::new(out, (900 + legend_w, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (plot, legend) = root.split_horizontally(900);
    let mut chart = ChartBuilder::on(&plot)
        .caption(c.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..(n - 1) as f64, c.y_range.0..c.y_range.1)
        .map_err(err)?;
    // Layers are whole numbers: one label per layer, or per step of a deep model.
    chart
        .configure_mesh()
        .x_desc("layer")
        .y_desc(c.y_desc)
        .x_labels(n.min(20))
        .x_label_formatter(&|x| if x.fract().abs() < 1e-9 { format!("{x:.0}") } else { String::new() })
        .draw()
        .map_err(err)?;
    if let Some((layer, _)) = &c.mark {
        let x = *layer as f64;
        let dashes = 24;
        let step = (c.y_range.1 - c.y_range.0) / dashes as f64;
        chart
            .draw_series((0..dashes).step_by(2).map(|i| {
                let y = c.y_range.0 + i as f64 * step;
                PathElement::new(vec![(x, y), (x, y + step)], RGBColor(90, 90, 90).stroke_width(2))
            }))
            .map_err(err)?;
    }
    for (k, (_, ys)) in c.series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let width = if c.emphasis == Some(k) { 4 } else { 2 };
        let points: Vec<(f64, f64)> = ys.iter().enumerate().filter(|(_, y)| y.is_finite()).map(|(x, &y)| (x as f64, y)).collect();
        chart.draw_series(LineSeries::new(points.clone(), color.stroke_width(width))).map_err(err)?;
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(err)?;
    }
    draw_legend(&legend, &entries)?;
    root.present().map_err(|e| anyhow!("writing {}: {e}", out.display()))?;
    Ok(())
}

/// A table of heat cells: `values[row][col]` coloured on `colormap` over
/// [-limit, limit] when `signed`, else [0, limit], each cell labelled with
/// its value; `axes` names what the rows and the columns are.
pub fn heat_table(
    title: &str,
    axes: (&str, &str),
    rows: &[String],
    cols: &[String],
    values: &[Vec<f64>],
    signed: bool,
    out: &Path,
) -> Result<()> {
    register_font();
    let (cell_w, cell_h, left, top) = (110i32, 26i32, 120i32, 84i32);
    let width = (left + cell_w * cols.len() as i32 + 20).max(360) as u32;
    let height = (top + cell_h * rows.len() as i32 + 20) as u32;
    crate::fsutil::check_output(out)?;
    let root = BitMapBackend::new(out, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    root.draw(&Text::new(title.to_string(), (12, 10), ("sans-serif", 18).into_font())).map_err(err)?;
    let limit = values.iter().flatten().filter(|v| v.is_finite()).fold(0.0f64, |m, v| m.max(v.abs())).max(1e-9);
    let colormap = if signed { Colormap::Diverging } else { Colormap::Inferno };
    let centred = TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
    let axis = TextStyle::from(("sans-serif", 13).into_font().style(FontStyle::Italic)).pos(Pos::new(HPos::Center, VPos::Center));
    root.draw(&Text::new(format!("{} →", axes.1), (left + cell_w * cols.len() as i32 / 2, top - 36), axis.clone())).map_err(err)?;
    root.draw(&Text::new(format!("{} ↓", axes.0), (left / 2, top - 14), axis)).map_err(err)?;
    for (c, name) in cols.iter().enumerate() {
        let x = left + cell_w * c as i32 + cell_w / 2;
        root.draw(&Text::new(name.clone(), (x, top - 14), centred.clone())).map_err(err)?;
    }
    for (r, name) in rows.iter().enumerate() {
        let y = top + cell_h * r as i32;
        root.draw(&Text::new(name.clone(), (left / 2, y + cell_h / 2), centred.clone())).map_err(err)?;
        for (c, v) in values[r].iter().enumerate() {
            let x = left + cell_w * c as i32;
            let (fill, label) = if v.is_finite() {
                let t = if signed { 0.5 + 0.5 * v / limit } else { v.abs() / limit };
                let p = colormap.at(t.clamp(0.0, 1.0) as f32);
                (RGBColor(p[0], p[1], p[2]), format!("{v:.3}"))
            } else {
                (RGBColor(230, 230, 230), "-".to_string())
            };
            root.draw(&Rectangle::new([(x, y), (x + cell_w - 2, y + cell_h - 2)], fill.filled())).map_err(err)?;
            // Dark text on light cells, light text on dark ones.
            let light = 0.299 * fill.0 as f64 + 0.587 * fill.1 as f64 + 0.114 * fill.2 as f64 > 140.0;
            let text = centred.clone().color(if light { &BLACK } else { &WHITE });
            root.draw(&Text::new(label, (x + cell_w / 2, y + cell_h / 2), text)).map_err(err)?;
        }
    }
    root.present().map_err(|e| anyhow!("writing {}: {e}", out.display()))?;
    Ok(())
}

#[cfg(test)]
mod label_tests {
    use super::*;

    #[test]
    fn labels_wrap_and_keep_every_character() {
        assert_eq!(wrap_label("Camera Relative Direction", 12), ["Camera", "Relative", "Direction"]);
        assert_eq!(wrap_label("Person Scene Simulation", 14), ["Person Scene", "Simulation"]);
        let long = wrap_label("horizontal_flip_and_more", 10);
        assert_eq!(long.concat(), "horizontal_flip_and_more");
        assert!(long.iter().all(|l| l.chars().count() <= 10));
    }
}
