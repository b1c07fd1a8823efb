//! Reports over run records: accuracy with Wilson 95%
//! intervals by category (or error kind, gold letter, source), the error-kind
//! shares among errors, confusion per category, answer-letter bias, and
//! paired comparisons (McNemar exact test, bootstrap interval of the
//! accuracy difference).

use super::Record;
use crate::spatial::confusion;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

/// Rotation-0 records (the questions as given): what every table counts.
fn questions(records: &[Record]) -> impl Iterator<Item = &Record> {
    // A record with no gold has no verdict: it is in no table's count.
    records.iter().filter(|r| r.rotation == 0 && r.verdict != crate::spatial::Verdict::Unjudged)
}

/// A record's outcome as the tables name it: `correct`, its error kind, `failed` or `unjudged`.
fn error_name(r: &Record) -> String {
    r.verdict.outcome().to_string()
}

/// Wilson score interval for k successes in n at 95%.
pub fn wilson(k: usize, n: usize) -> (f64, f64) {
    wilson_around(k as f64 / n.max(1) as f64, n)
}

/// Wilson score interval at 95% around a share `p` of `n` trials (an
/// observed share, or a chance level).
pub fn wilson_around(p: f64, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 0.0);
    }
    let (z, n) = (1.959_963_984_540_054, n as f64);
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * ((p * (1.0 - p) / n) + z * z / (4.0 * n * n)).sqrt() / denom;
    // At 0 and 1 the bound is exactly 0 (or 1); the formula leaves a
    // rounding residue there (2.8e-17 for 0/12).
    let lo = if p <= 0.0 { 0.0 } else { (centre - half).max(0.0) };
    let hi = if p >= 1.0 { 1.0 } else { (centre + half).min(1.0) };
    (lo, hi)
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AccuracyRow {
    pub group: String,
    pub n: usize,
    pub right: usize,
    pub accuracy: f64,
    pub lo: f64,
    pub hi: f64,
}

impl AccuracyRow {
    fn new(group: String, right: usize, n: usize) -> AccuracyRow {
        let (lo, hi) = wilson(right, n);
        AccuracyRow { group, n, right, accuracy: right as f64 / n.max(1) as f64, lo, hi }
    }
}

/// What accuracy is grouped by (`--by`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    #[default]
    Category,
    /// The error kind (correct, horizontal, orthogonal, ...).
    Error,
    /// The gold letter.
    Gold,
    /// The id's prefix (the source dataset, for mixed sets).
    Source,
}

impl GroupBy {
    /// The group's name (the column header and the `--by` value).
    pub fn column(self) -> &'static str {
        match self {
            GroupBy::Category => "category",
            GroupBy::Error => "error",
            GroupBy::Gold => "gold",
            GroupBy::Source => "source",
        }
    }
}

impl GroupBy {
    /// The group a record falls in.
    pub(crate) fn of(self, r: &Record) -> String {
        match self {
            GroupBy::Category => r.category.clone(),
            GroupBy::Error => error_name(r),
            GroupBy::Gold => r.gold_letter.clone().unwrap_or_else(|| "-".into()),
            GroupBy::Source => r.id.split(['-', '_', '#']).next().unwrap_or("").to_string(),
        }
    }
}

/// Accuracy per value of `by` (groups by name), plus "overall" last.
pub fn accuracy_by(records: &[Record], by: GroupBy) -> Vec<AccuracyRow> {
    let mut groups: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let (mut right, mut n) = (0, 0);
    for r in questions(records) {
        let ok = r.is_correct();
        let g = groups.entry(by.of(r)).or_default();
        g.0 += ok as usize;
        g.1 += 1;
        right += ok as usize;
        n += 1;
    }
    let mut out: Vec<AccuracyRow> = groups.into_iter().map(|(group, (right, n))| AccuracyRow::new(group, right, n)).collect();
    out.push(AccuracyRow::new("overall".into(), right, n));
    out
}

/// (kind, count, share among errors), most frequent first (ties by name,
/// so reports and the TUI list kinds in a stable order).
pub fn error_shares(records: &[Record]) -> Vec<(String, usize, f64)> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in questions(records).filter(|r| !r.is_correct()) {
        *counts.entry(error_name(r)).or_default() += 1;
    }
    let total: usize = counts.values().sum();
    let mut out: Vec<(String, usize, f64)> = counts.into_iter().map(|(k, c)| (k, c, c as f64 / total.max(1) as f64)).collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// letter -> (times predicted, times gold).
pub fn letter_bias(records: &[Record]) -> BTreeMap<String, (usize, usize)> {
    let mut m: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for r in questions(records) {
        if let Some(p) = &r.predicted_letter {
            m.entry(p.clone()).or_default().0 += 1;
        }
        if let Some(g) = &r.gold_letter {
            m.entry(g.clone()).or_default().1 += 1;
        }
    }
    m
}

/// Gold x predicted direction counts for one category (or all).
pub fn confusion(records: &[Record], category: Option<&str>) -> confusion::ConfusionMatrix {
    let rows: Vec<confusion::PredictionRow> = questions(records)
        .filter(|r| r.gold_direction.is_some())
        .map(|r| confusion::PredictionRow { category: r.category.clone(), gold: r.gold_direction, predicted: r.predicted_direction })
        .collect();
    confusion::confusion_matrix(&rows, category)
}

/// Two-sided exact McNemar test on the discordant pairs b and c.
pub fn mcnemar_exact(b: usize, c: usize) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // P(X <= k) for X ~ Binomial(n, 1/2), computed in log space.
    let ln_choose = |n: usize, k: usize| -> f64 { (1..=k).map(|i| ((n - k + i) as f64).ln() - (i as f64).ln()).sum() };
    let tail: f64 = (0..=k).map(|i| (ln_choose(n, i) - n as f64 * std::f64::consts::LN_2).exp()).sum();
    (2.0 * tail).min(1.0)
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PairedRow {
    pub group: String,
    pub both: usize,
    pub only_a: usize,
    pub only_b: usize,
    pub neither: usize,
    pub p_mcnemar: f64,
    /// accuracy(b) - accuracy(a)
    pub diff: f64,
    pub lo: f64,
    pub hi: f64,
}

/// Per category and overall, on ids present in both runs (rotation 0).
/// Each question's record (`sampling::one_per_question`: a question of
/// sampled answers is right when its majority answer is), right or wrong,
/// by question id. A flipped run's ids carry `~flip`; they pair with the
/// plain ids.
fn by_question(rs: &[Record]) -> BTreeMap<String, (String, bool)> {
    super::sampling::one_per_question(rs)
        .into_iter()
        .map(|r| (r.id.trim_end_matches("~flip").to_string(), (r.category.clone(), r.is_correct())))
        .collect()
}

/// (questions in both runs, only in a, only in b): what [`paired`] pairs and leaves out.
pub fn pairing_counts(a: &[Record], b: &[Record]) -> (usize, usize, usize) {
    let (ia, ib) = (by_question(a), by_question(b));
    let shared = ia.keys().filter(|k| ib.contains_key(*k)).count();
    (shared, ia.len() - shared, ib.len() - shared)
}

pub fn paired(a: &[Record], b: &[Record], seed: u64) -> Vec<PairedRow> {
    let (ia, ib) = (by_question(a), by_question(b));
    let mut groups: BTreeMap<String, Vec<(bool, bool)>> = BTreeMap::new();
    for (id, (cat, ra)) in &ia {
        if let Some((_, rb)) = ib.get(id) {
            groups.entry(cat.clone()).or_default().push((*ra, *rb));
            groups.entry("overall".into()).or_default().push((*ra, *rb));
        }
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut out: Vec<PairedRow> = groups
        .into_iter()
        .map(|(group, pairs)| {
            let count = |f: &dyn Fn(&(bool, bool)) -> bool| pairs.iter().filter(|p| f(p)).count();
            let (both, only_a, only_b, neither) =
                (count(&|p| p.0 && p.1), count(&|p| p.0 && !p.1), count(&|p| !p.0 && p.1), count(&|p| !p.0 && !p.1));
            let n = pairs.len();
            let diff = (only_b as f64 - only_a as f64) / n.max(1) as f64;
            // Percentile bootstrap over questions.
            let mut diffs: Vec<f64> = (0..2000)
                .map(|_| {
                    let mut d = 0i64;
                    for _ in 0..n {
                        let (x, y) = pairs[rng.random_range(0..n)];
                        d += y as i64 - x as i64;
                    }
                    d as f64 / n.max(1) as f64
                })
                .collect();
            diffs.sort_by(f64::total_cmp);
            let (lo, hi) = if n == 0 { (0.0, 0.0) } else { (diffs[50], diffs[1949]) };
            PairedRow { group, both, only_a, only_b, neither, p_mcnemar: mcnemar_exact(only_a, only_b), diff, lo, hi }
        })
        .collect();
    // "overall" last, as in the accuracy table.
    out.sort_by_key(|r| r.group == "overall");
    out
}

pub use super::stats::{flip_consistency, tally};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_and_mcnemar_by_hand() {
        // 3/5: p = .6, z = 1.96 -> centre .5566, half .3258 (worked by hand).
        let (lo, hi) = wilson(3, 5);
        assert!((lo - 0.2307).abs() < 1e-3 && (hi - 0.8824).abs() < 1e-3, "{lo} {hi}");
        assert_eq!(wilson(0, 0), (0.0, 0.0));
        assert_eq!(wilson(0, 12).0, 0.0, "exactly 0, not a rounding residue");
        assert_eq!(wilson(12, 12).1, 1.0);
        // b = 3, c = 0: 2 * (1/2)^3 = 0.25; b = 1, c = 1: 2 * (1/4 + 2/4) -> 1.
        assert!((mcnemar_exact(3, 0) - 0.25).abs() < 1e-12);
        assert!((mcnemar_exact(1, 1) - 1.0).abs() < 1e-12);
        // b = 10, c = 2: 2 * P(X <= 2 | n = 12) = 2 * (1 + 12 + 66) / 4096 = 0.038574...
        assert!((mcnemar_exact(10, 2) - 158.0 / 4096.0).abs() < 1e-12);
    }
}
