//! Gold x predicted confusion matrices and error-kind breakdowns, counted
//! from prediction rows (pure: no I/O, no tables library).

use super::direction::Direction;
use super::taxonomy::{classify, ErrorKind};
use std::collections::BTreeMap;

/// The part of a prediction record these reports need.
#[derive(Debug, Clone)]
pub struct PredictionRow {
    pub category: String,
    pub gold: Option<Direction>,
    pub predicted: Option<Direction>,
}

const UNPARSED: &str = "unparsed";

fn label(d: Option<Direction>) -> String {
    d.map(|d| d.name()).unwrap_or_else(|| UNPARSED.to_string())
}

/// A gold x predicted count matrix with the error kind of every cell.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConfusionMatrix {
    pub gold_labels: Vec<String>,
    pub predicted_labels: Vec<String>,
    pub counts: Vec<Vec<u32>>,
}

impl ConfusionMatrix {
    pub fn row_total(&self, g: usize) -> u32 {
        self.counts[g].iter().sum()
    }
    /// Share of row `g` that fell in column `p`, 0..=1.
    pub fn row_share(&self, g: usize, p: usize) -> f64 {
        let total = self.row_total(g);
        if total == 0 {
            0.0
        } else {
            self.counts[g][p] as f64 / total as f64
        }
    }
    /// The error kind a cell stands for.
    pub fn cell_kind(&self, g: usize, p: usize) -> ErrorKind {
        let parse = |s: &str| (s != UNPARSED).then(|| crate::spatial::parse_option(s)).flatten();
        classify(parse(&self.gold_labels[g]), parse(&self.predicted_labels[p]))
    }
}

/// Confusion matrix over all rows, or one category when `category` is set.
/// Labels are sorted by direction, with `unparsed` last.
pub fn confusion_matrix(rows: &[PredictionRow], category: Option<&str>) -> ConfusionMatrix {
    let scoped: Vec<&PredictionRow> = rows.iter().filter(|r| category.is_none_or(|c| r.category == c)).collect();
    let order = |pick: fn(&PredictionRow) -> Option<Direction>| {
        let mut dirs: Vec<Option<Direction>> = scoped.iter().map(|r| pick(r)).collect();
        dirs.sort_by_key(|d| (d.is_none(), d.map(Direction::sort_key)));
        dirs.dedup();
        dirs
    };
    let (gold, predicted) = (order(|r| r.gold), order(|r| r.predicted));
    let mut counts = vec![vec![0u32; predicted.len()]; gold.len()];
    for r in &scoped {
        let gi = gold.iter().position(|d| *d == r.gold).expect("a gold label of these rows");
        let pi = predicted.iter().position(|d| *d == r.predicted).expect("a predicted label of these rows");
        counts[gi][pi] += 1;
    }
    ConfusionMatrix {
        gold_labels: gold.into_iter().map(label).collect(),
        predicted_labels: predicted.into_iter().map(label).collect(),
        counts,
    }
}

/// Counts of each error kind among the errors (Correct excluded), with their
/// share of all errors: the figure the research turns on.
pub fn error_breakdown(rows: &[PredictionRow]) -> BTreeMap<ErrorKind, (u32, f64)> {
    let mut counts: BTreeMap<ErrorKind, u32> = BTreeMap::new();
    for r in rows {
        let kind = classify(r.gold, r.predicted);
        if kind != ErrorKind::Correct {
            *counts.entry(kind).or_default() += 1;
        }
    }
    let total: u32 = counts.values().sum();
    counts.into_iter().map(|(k, c)| (k, (c, c as f64 / total.max(1) as f64))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spatial::parse_option;

    fn row(cat: &str, g: &str, p: &str) -> PredictionRow {
        PredictionRow { category: cat.into(), gold: parse_option(g), predicted: parse_option(p) }
    }

    fn sample_rows() -> Vec<PredictionRow> {
        vec![
            row("cam", "left", "left"),
            row("cam", "left", "right"),
            row("cam", "left", "right"),
            row("cam", "front", "left"),
            row("person", "above", "down"),
            row("person", "front", "front-left"),
            row("person", "front", "??"),
        ]
    }

    #[test]
    fn matrix_counts_and_kinds() {
        let m = confusion_matrix(&sample_rows(), None);
        assert_eq!(m.gold_labels, vec!["front", "left", "up"]);
        assert_eq!(m.predicted_labels, vec!["right", "left", "front-left", "down", "unparsed"]);
        let gi = |l: &str| m.gold_labels.iter().position(|x| x == l).unwrap();
        let pi = |l: &str| m.predicted_labels.iter().position(|x| x == l).unwrap();
        assert_eq!(m.counts[gi("left")][pi("right")], 2);
        assert_eq!(m.counts[gi("left")][pi("left")], 1);
        assert!((m.row_share(gi("left"), pi("right")) - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(m.cell_kind(gi("left"), pi("right")), ErrorKind::HorizontalFlip);
        assert_eq!(m.cell_kind(gi("front"), pi("unparsed")), ErrorKind::Unparsed);
        let total: u32 = m.counts.iter().flatten().sum();
        assert_eq!(total, 7);
    }

    #[test]
    fn matrix_per_category() {
        let m = confusion_matrix(&sample_rows(), Some("person"));
        assert_eq!(m.gold_labels, vec!["front", "up"]);
        let total: u32 = m.counts.iter().flatten().sum();
        assert_eq!(total, 3);
    }

    #[test]
    fn breakdown_shares_sum_to_one() {
        let b = error_breakdown(&sample_rows());
        assert_eq!(b[&ErrorKind::HorizontalFlip].0, 2);
        assert_eq!(b[&ErrorKind::Orthogonal].0, 1);
        assert_eq!(b[&ErrorKind::VerticalFlip].0, 1);
        assert_eq!(b[&ErrorKind::Adjacent].0, 1);
        assert_eq!(b[&ErrorKind::Unparsed].0, 1);
        assert!(!b.contains_key(&ErrorKind::Correct));
        let s: f64 = b.values().map(|v| v.1).sum();
        assert!((s - 1.0).abs() < 1e-9);
        assert!((b[&ErrorKind::HorizontalFlip].1 - 2.0 / 6.0).abs() < 1e-9);
    }
}
