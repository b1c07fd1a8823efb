//! One table for every list the panes show (samples, runs, jobs, run
//! comparisons): a header naming the columns (the sort column marked ▲/▼),
//! fixed-width columns with one that fills, and a window of rows around the
//! selection. Only the rows in the window are built, so a 5,712-sample list
//! costs what its 40 visible rows cost. The window is derived from the
//! selection alone (it centres it), so drawing stays a pure function.

use crate::tui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use std::ops::Range;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Column {
    pub title: &'static str,
    /// Cells wide; 0 takes what the others leave.
    pub width: u16,
    pub align_right: bool,
}

impl Column {
    pub const fn left(title: &'static str, width: u16) -> Column {
        Column { title, width, align_right: false }
    }

    pub const fn right(title: &'static str, width: u16) -> Column {
        Column { title, width, align_right: true }
    }

    /// The column that takes the remaining width.
    pub const fn fill(title: &'static str) -> Column {
        Column { title, width: 0, align_right: false }
    }
}

/// A table over `len` rows; `row(i)` gives row i's cells (one span per
/// column, already styled) and is called for visible rows only.
pub struct DataTable<'a> {
    pub columns: &'a [Column],
    pub len: usize,
    pub selected: Option<usize>,
    /// Whether the selection shows (the table has the keyboard).
    pub focused: bool,
    /// (column, reversed) that the rows are sorted by.
    pub sort: Option<(usize, bool)>,
    pub header: bool,
}

/// The rows `height` lines show: all when they fit, else a window centred on
/// `selected` (clamped to the ends).
pub fn window(len: usize, selected: Option<usize>, height: usize) -> Range<usize> {
    if len <= height {
        return 0..len;
    }
    let sel = selected.unwrap_or(0).min(len - 1);
    let start = sel.saturating_sub(height / 2).min(len - height);
    start..start + height
}

/// Each column's width in `total` cells: fixed ones as asked (cut at the
/// edge), the fill column the rest; one space between columns.
pub fn widths(columns: &[Column], total: u16) -> Vec<u16> {
    let gaps = columns.len().saturating_sub(1) as u16;
    let fixed: u16 = columns.iter().map(|c| c.width).sum();
    let fill = total.saturating_sub(fixed + gaps);
    let mut left = total;
    columns
        .iter()
        .map(|c| {
            let w = if c.width == 0 { fill } else { c.width }.min(left);
            left = left.saturating_sub(w + 1);
            w
        })
        .collect()
}

/// `text` cut (with …) or padded to `w` cells.
fn fit(text: &str, w: usize, right: bool) -> String {
    let n = text.chars().count();
    if n > w {
        let cut: String = text.chars().take(w.saturating_sub(1)).collect();
        if w == 0 {
            String::new()
        } else {
            format!("{cut}…")
        }
    } else if right {
        format!("{text:>w$}")
    } else {
        format!("{text:<w$}")
    }
}

impl DataTable<'_> {
    pub fn render(&self, f: &mut Frame, area: Rect, t: &Theme, row: impl Fn(usize) -> Vec<Span<'static>>) {
        let widths = widths(self.columns, area.width);
        let mut lines = Vec::new();
        if self.header {
            let mut spans = Vec::new();
            for (k, (c, w)) in self.columns.iter().zip(&widths).enumerate() {
                let mark = match self.sort {
                    Some((col, rev)) if col == k => {
                        if rev {
                            " ▼"
                        } else {
                            " ▲"
                        }
                    }
                    _ => "",
                };
                spans.push(Span::styled(fit(&format!("{}{mark}", c.title), *w as usize, c.align_right), t.muted()));
                spans.push(Span::raw(" "));
            }
            lines.push(Line::from(spans));
        }
        let height = (area.height as usize).saturating_sub(self.header as usize);
        for i in window(self.len, self.selected, height) {
            let cells = row(i);
            let selected = self.focused && self.selected == Some(i);
            let mut spans = Vec::new();
            for (k, (c, w)) in self.columns.iter().zip(&widths).enumerate() {
                let cell = cells.get(k).cloned().unwrap_or_default();
                let style = if selected { t.selected(cell.style) } else { cell.style };
                spans.push(Span::styled(fit(&cell.content, *w as usize, c.align_right), style));
                spans.push(Span::styled(" ", if selected { t.selected(Style::default()) } else { Style::default() }));
            }
            lines.push(Line::from(spans));
        }
        f.render_widget(Paragraph::new(lines), area);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_centres_the_selection_and_clamps() {
        assert_eq!(window(5, Some(3), 10), 0..5);
        assert_eq!(window(100, Some(0), 10), 0..10);
        assert_eq!(window(100, Some(50), 10), 45..55);
        assert_eq!(window(100, Some(99), 10), 90..100);
        assert_eq!(window(100, None, 10), 0..10);
        assert_eq!(window(0, Some(3), 10), 0..0);
    }

    #[test]
    fn widths_fill_and_cut() {
        let cols = [Column::left("a", 4), Column::fill("b"), Column::right("c", 6)];
        assert_eq!(widths(&cols, 30), vec![4, 18, 6]);
        assert_eq!(widths(&cols, 8), vec![4, 0, 2]);
        assert_eq!(fit("front-right", 6, false), "front…");
        assert_eq!(fit("7", 3, true), "  7");
    }
}
