//! `data stats`: counts by category, gold letter, gold direction and option
//! count, and the missing images.

use super::Dataset;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DatasetStats {
    pub dataset: String,
    pub format: String,
    pub path: String,
    pub total: usize,
    pub by_category: BTreeMap<String, usize>,
    pub by_gold_letter: BTreeMap<String, usize>,
    pub by_gold_direction: BTreeMap<String, usize>,
    /// Number of options -> number of samples with that many.
    pub options_count: BTreeMap<String, usize>,
    pub by_category_gold_direction: BTreeMap<String, BTreeMap<String, usize>>,
    pub images_total: usize,
    pub missing_images: usize,
    pub missing_examples: Vec<String>,
    pub record_errors: usize,
    pub record_error_examples: Vec<String>,
}

pub fn compute(ds: &Dataset) -> DatasetStats {
    let mut st = DatasetStats {
        dataset: ds.name.clone(),
        format: ds.format.name().to_string(),
        path: ds.path.display().to_string(),
        total: ds.samples.len(),
        by_category: BTreeMap::new(),
        by_gold_letter: BTreeMap::new(),
        by_gold_direction: BTreeMap::new(),
        options_count: BTreeMap::new(),
        by_category_gold_direction: BTreeMap::new(),
        images_total: ds.samples.iter().map(|s| s.images.len()).sum(),
        missing_images: 0,
        missing_examples: Vec::new(),
        record_errors: ds.issues.len(),
        record_error_examples: ds.issues.iter().take(5).map(|i| i.to_string()).collect(),
    };
    for s in &ds.samples {
        *st.by_category.entry(s.category.clone()).or_default() += 1;
        let letter = s.gold_letter.map(|l| l.to_string()).unwrap_or_else(|| "none".into());
        *st.by_gold_letter.entry(letter).or_default() += 1;
        let dir = s.gold_direction.map(|d| d.name()).unwrap_or_else(|| "none".into());
        *st.by_gold_direction.entry(dir.clone()).or_default() += 1;
        *st.by_category_gold_direction.entry(s.category.clone()).or_default().entry(dir).or_default() += 1;
        *st.options_count.entry(s.options.len().to_string()).or_default() += 1;
    }
    let (n, first) = ds.missing_images(5);
    st.missing_images = n;
    st.missing_examples = first;
    st
}

/// The human-readable report.
pub fn render(st: &DatasetStats) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "{} ({}) — {}", st.dataset, st.format, st.path);
    let _ = writeln!(o, "samples: {}   images: {}   missing images: {}", st.total, st.images_total, st.missing_images);
    let section = |o: &mut String, title: &str, m: &BTreeMap<String, usize>| {
        let _ = writeln!(o, "\n{title}");
        let width = m.keys().map(|k| k.chars().count()).max().unwrap_or(0);
        for (k, v) in m {
            let pct = 100.0 * *v as f64 / st.total.max(1) as f64;
            let _ = writeln!(o, "  {k:<width$}  {v:>6}  {pct:5.1}%");
        }
    };
    section(&mut o, "by category", &st.by_category);
    section(&mut o, "by gold letter", &st.by_gold_letter);
    section(&mut o, "by gold direction", &st.by_gold_direction);
    section(&mut o, "by number of options", &st.options_count);
    if st.missing_images > 0 {
        let _ = writeln!(o, "\nmissing images ({}), first:", st.missing_images);
        for m in &st.missing_examples {
            let _ = writeln!(o, "  {m}");
        }
    }
    if st.record_errors > 0 {
        let _ = writeln!(o, "\nrecords skipped ({}), first:", st.record_errors);
        for m in &st.record_error_examples {
            let _ = writeln!(o, "  {m}");
        }
    }
    o
}
