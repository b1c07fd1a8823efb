//! What `flipscope report` says about runs, as data: per run its accuracy
//! table, error kinds, answer-letter bias and confusion per category, and
//! for `--vs` the paired comparison (and flip consistency when one run is
//! the other's mirror). The CLI renders it as a table, markdown, CSV,
//! parquet or JSON; the numbers are computed once, here.

use super::report::{self, AccuracyRow, GroupBy, PairedRow};
use super::warnings::{self, ChanceLevel, Warning};
use super::{Record, RunMeta};
use crate::spatial::confusion::ConfusionMatrix;
use anyhow::{bail, Result};
use serde::Serialize;

/// One run as read from disk.
pub struct LoadedRun {
    pub name: String,
    /// The run's folder (its causal rows are read there).
    pub dir: std::path::PathBuf,
    pub meta: Option<RunMeta>,
    pub records: Vec<Record>,
}

#[derive(Debug, Serialize)]
pub struct ErrorShare {
    pub kind: String,
    pub count: usize,
    /// Share among the errors, 0..=1.
    pub share: f64,
}

#[derive(Debug, Serialize)]
pub struct LetterBias {
    pub letter: String,
    pub predicted: usize,
    pub gold: usize,
}

#[derive(Debug, Serialize)]
pub struct CategoryConfusion {
    pub category: String,
    pub matrix: ConfusionMatrix,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlipRow {
    pub category: String,
    pub consistent: usize,
    pub total: usize,
    /// What the two runs' answer distributions alone give, with its interval.
    pub chance: ChanceLevel,
}

#[derive(Debug, Serialize)]
pub struct RunReport {
    pub name: String,
    pub meta: Option<RunMeta>,
    /// Records read (0: nothing to report, and the text report says so).
    pub records: usize,
    /// pass@k, maj@N, answer entropy and flip rate by group, for a run of
    /// sampled answers (`eval --samples N`); empty otherwise.
    pub sampled: Vec<super::sampling::SampledRow>,
    /// By `Report::by`, "overall" last.
    pub accuracy: Vec<AccuracyRow>,
    /// (questions right under every rotation, questions), for circular runs.
    pub circular: Option<(usize, usize)>,
    /// Asked with ViewSpatial's official prompt (published numbers apply).
    pub viewspatial_prompt: bool,
    /// Records that could not be run (counted wrong).
    pub failed: usize,
    pub error_kinds: Vec<ErrorShare>,
    pub letters: Vec<LetterBias>,
    pub confusion: Vec<CategoryConfusion>,
    /// Statistics above that a degenerate run would also produce.
    pub warnings: Vec<Warning>,
    /// How the run was asked, where that matters for reading it.
    pub notes: Vec<String>,
    /// What the run's causal rows say by outcome, when it has any.
    pub causal: Option<super::causal_summary::CausalSummary>,
}

#[derive(Debug, Serialize)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    pub paired: Vec<PairedRow>,
    /// Questions both runs answered (the pairs counted above).
    pub shared: usize,
    /// Questions only one of the runs answered, left out of the pairing.
    pub only_in_a: usize,
    pub only_in_b: usize,
    /// The runs' datasets differ (allowed with `--allow-different-data`).
    pub different_data: bool,
    /// When exactly one of the two runs is the `flipped` variant.
    pub flip_consistency: Option<Vec<FlipRow>>,
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub by: GroupBy,
    pub runs: Vec<RunReport>,
    pub comparison: Option<Comparison>,
}

impl From<super::stats::FlipPairs> for FlipRow {
    fn from(f: super::stats::FlipPairs) -> FlipRow {
        FlipRow { chance: ChanceLevel::new(f.chance, f.total), category: f.category, consistent: f.consistent, total: f.total }
    }
}

impl FlipRow {
    /// `flip_consistency_at_chance` when this group's consistency is inside its chance level's interval.
    pub fn at_chance(&self) -> Option<Warning> {
        warnings::flip_at_chance(&self.category, self.consistent, self.total, &self.chance)
    }
}

/// A note when a run scored letters on a checkpoint that declares it answers in words.
fn asked_against_card(meta: &RunMeta) -> Option<String> {
    let words = crate::config::declared_answers(std::path::Path::new(&meta.model)).ok()? == crate::config::AnswersWith::Words;
    (words && meta.decoding.starts_with("score")).then(|| {
        "note: this model declares it answers in words (its flipscope.json) but this run scored option letters; \
         `eval --mode generate` asks it the way it answers"
            .to_string()
    })
}

impl RunReport {
    pub fn build(run: &LoadedRun, by: GroupBy, min_ld_gap: f64) -> Result<RunReport> {
        let records = &run.records;
        let circular = run.meta.as_ref().filter(|m| m.circular).map(|_| super::stats::accuracy(records).1);
        let cats: std::collections::BTreeSet<&str> = records.iter().map(|r| r.category.as_str()).collect();
        let mut confusion = Vec::new();
        for cat in cats {
            let matrix = report::confusion(records, Some(cat));
            if !matrix.gold_labels.is_empty() {
                confusion.push(CategoryConfusion { category: cat.to_string(), matrix });
            }
        }
        let sampled = super::sampling::sampled_rows(records, by);
        let warnings = warnings::for_run(records, &sampled);
        Ok(RunReport {
            name: run.name.clone(),
            meta: run.meta.clone(),
            records: records.len(),
            sampled,
            accuracy: report::accuracy_by(records, by),
            circular,
            viewspatial_prompt: run.meta.as_ref().is_some_and(|m| m.prompt.starts_with("viewspatial")),
            failed: records.iter().filter(|r| r.failure().is_some()).count(),
            error_kinds: report::error_shares(records).into_iter().map(|(kind, count, share)| ErrorShare { kind, count, share }).collect(),
            letters: report::letter_bias(records)
                .into_iter()
                .map(|(letter, (predicted, gold))| LetterBias { letter, predicted, gold })
                .collect(),
            confusion,
            warnings,
            notes: run.meta.as_ref().and_then(asked_against_card).into_iter().collect(),
            causal: Some(super::causal_summary::summarize(&run.dir, records, min_ld_gap)?).filter(|c| !c.is_empty()),
        })
    }
}

impl Report {
    /// The report on `runs`, and on `runs[0]` against `vs` when given.
    /// Runs on different datasets are compared only when `allow_different_data`.
    pub fn build(runs: &[LoadedRun], vs: Option<&LoadedRun>, by: GroupBy, allow_different_data: bool, min_ld_gap: f64) -> Result<Report> {
        let comparison = match (runs.first(), vs) {
            (Some(a), Some(b)) => {
                let different_data = match (&a.meta, &b.meta) {
                    (Some(ma), Some(mb)) => ma.dataset_hash != mb.dataset_hash,
                    _ => false,
                };
                if different_data && !allow_different_data {
                    let (ma, mb) = (a.meta.as_ref().expect("checked"), b.meta.as_ref().expect("checked"));
                    bail!(
                        "`{}` ran on `{}` (hash {}) and `{}` on `{}` (hash {}): a paired test needs one dataset; \
                         pass --allow-different-data to pair the questions they share",
                        a.name,
                        ma.dataset,
                        ma.dataset_hash,
                        b.name,
                        mb.dataset,
                        mb.dataset_hash
                    );
                }
                let (shared, only_in_a, only_in_b) = report::pairing_counts(&a.records, &b.records);
                let flipped = |r: &LoadedRun| r.meta.as_ref().is_some_and(|m| m.variant == "flipped");
                let flip_consistency: Option<Vec<FlipRow>> = (flipped(a) != flipped(b)).then(|| {
                    let (plain, mirror) = if flipped(b) { (a, b) } else { (b, a) };
                    super::stats::flip_consistency(&plain.records, &mirror.records).into_iter().map(FlipRow::from).collect()
                });
                let warnings = flip_consistency.iter().flatten().filter_map(FlipRow::at_chance).collect();
                Some(Comparison {
                    a: a.name.clone(),
                    b: b.name.clone(),
                    paired: report::paired(&a.records, &b.records, 0),
                    shared,
                    only_in_a,
                    only_in_b,
                    different_data,
                    flip_consistency,
                    warnings,
                })
            }
            _ => None,
        };
        Ok(Report { by, runs: runs.iter().map(|r| RunReport::build(r, by, min_ld_gap)).collect::<Result<_>>()?, comparison })
    }
}
