//! Guards on statistics that a degenerate run would also produce: each is
//! a typed warning printed beside the number it qualifies (text, markdown,
//! the JSON report's `warnings` lists, the TUI).

use super::report::{self, wilson_around};
use super::sampling::SampledRow;
use super::Record;
use serde::Serialize;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// One option letter dominates the predictions.
    LetterBias,
    /// Flip consistency no higher than the answers' letter distributions alone give.
    FlipConsistencyAtChance,
    /// Patching samples whose clean and mirrored logit differences barely differ.
    SmallLdGap,
    /// Some questions of a sampled run have fewer samples than others.
    IncompleteRun,
}

impl WarningKind {
    pub fn name(self) -> &'static str {
        match self {
            WarningKind::LetterBias => "letter_bias",
            WarningKind::FlipConsistencyAtChance => "flip_consistency_at_chance",
            WarningKind::SmallLdGap => "small_ld_gap",
            WarningKind::IncompleteRun => "incomplete_run",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Warning {
    pub kind: WarningKind,
    pub message: String,
}

impl Warning {
    pub fn new(kind: WarningKind, message: impl Into<String>) -> Warning {
        Warning { kind, message: message.into() }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "⚠ {}: {}", self.kind.name(), self.message)
    }
}

/// A letter's share of the predictions above this is a bias whatever the gold says.
pub const LETTER_SHARE_LIMIT: f64 = 0.8;
/// Fewer predictions of a letter than this are too few to call a bias.
pub const LETTER_MIN_COUNT: usize = 5;

/// `letter_bias`: one option letter is more than 80% of the predictions, or
/// more than twice its share of the gold (and predicted at least 5 times).
pub fn letter_bias(records: &[Record]) -> Option<Warning> {
    let letters = report::letter_bias(records);
    let predicted: usize = letters.values().map(|(p, _)| p).sum();
    let gold: usize = letters.values().map(|(_, g)| g).sum();
    let found: Vec<String> = letters
        .iter()
        .filter(|(_, (p, _))| *p >= LETTER_MIN_COUNT)
        .filter_map(|(letter, (p, g))| {
            let share = *p as f64 / predicted as f64;
            let gold_share = *g as f64 / gold.max(1) as f64;
            let reason = if share > LETTER_SHARE_LIMIT {
                format!("more than {:.0}% of all answers", 100.0 * LETTER_SHARE_LIMIT)
            } else if share > 2.0 * gold_share {
                format!("{:.1}% of the gold", 100.0 * gold_share)
            } else {
                return None;
            };
            Some(format!("{letter} is {p}/{predicted} predictions ({:.1}%; {reason})", 100.0 * share))
        })
        .collect();
    (!found.is_empty()).then(|| {
        Warning::new(
            WarningKind::LetterBias,
            format!("{}: accuracy and agreement may measure the bias, not the questions", found.join("; ")),
        )
    })
}

/// A run's own warnings: its letter bias, and an incomplete sampled run
/// (`sampled`: its sampled rows, "overall" last).
pub fn for_run(records: &[Record], sampled: &[SampledRow]) -> Vec<Warning> {
    letter_bias(records).into_iter().chain(incomplete_run(sampled)).collect()
}

/// `incomplete_run`: a sampled run whose questions have different numbers of samples.
pub fn incomplete_run(rows: &[SampledRow]) -> Option<Warning> {
    let overall = rows.last()?;
    (overall.n != overall.max_n).then(|| {
        Warning::new(
            WarningKind::IncompleteRun,
            format!(
                "{} of {} questions have fewer than {} samples (the fewest: {}); pass@k above {} is not reported",
                overall.short, overall.questions, overall.max_n, overall.n, overall.n
            ),
        )
    })
}

/// Below this |LD_clean - LD_mirrored| (nats) a share of LD restored is a
/// ratio over noise: such a sample gets no ratio.
pub const DEFAULT_MIN_LD_GAP: f64 = 0.5;

/// Whether a patched sample's LD gap is too small for a ratio.
pub fn ld_gap_too_small(ld_clean: f64, ld_mirrored: f64, min_gap: f64) -> bool {
    // A NaN gap is no gap either.
    let gap = (ld_clean - ld_mirrored).abs();
    gap.is_nan() || gap < min_gap
}

/// `small_ld_gap`: `left_out` of `total` patched samples had no ratio.
pub fn small_ld_gap(left_out: usize, total: usize, min_gap: f64) -> Option<Warning> {
    (left_out > 0).then(|| {
        Warning::new(
            WarningKind::SmallLdGap,
            format!(
                "{left_out} of {total} samples left out: the mirror moves their LD by less than {min_gap} nats, so a share of it restored is a ratio over noise"
            ),
        )
    })
}

/// Flip consistency beside its chance level: the agreement two answer
/// distributions give when the answers ignore the image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChanceLevel {
    /// Expected share consistent if the two runs' answers were independent.
    pub chance: f64,
    /// Wilson 95% interval around `chance` at this many pairs.
    pub lo: f64,
    pub hi: f64,
}

impl ChanceLevel {
    pub fn new(chance: f64, n: usize) -> ChanceLevel {
        let (lo, hi) = wilson_around(chance, n);
        ChanceLevel { chance, lo, hi }
    }

    /// Whether `observed` is inside the chance level's interval.
    pub fn contains(&self, observed: f64) -> bool {
        (self.lo..=self.hi).contains(&observed)
    }
}

/// `flip_consistency_at_chance` for one group's consistent/total pairs.
pub fn flip_at_chance(group: &str, consistent: usize, total: usize, level: &ChanceLevel) -> Option<Warning> {
    let observed = consistent as f64 / total.max(1) as f64;
    (total > 0 && level.contains(observed)).then(|| {
        Warning::new(
            WarningKind::FlipConsistencyAtChance,
            format!(
                "{group}: {consistent}/{total} ({:.2}%) is inside the chance level {:.2}% (95% {:.2}-{:.2}) that the two runs' answer distributions alone give",
                100.0 * observed,
                100.0 * level.chance,
                100.0 * level.lo,
                100.0 * level.hi
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spatial::{ErrorKind, Verdict};

    fn rec(id: usize, predicted: &str, gold: &str) -> Record {
        Record {
            key: id.to_string(),
            id: id.to_string(),
            predicted_letter: Some(predicted.into()),
            gold_letter: Some(gold.into()),
            verdict: if predicted == gold { Verdict::Correct } else { Verdict::Wrong(ErrorKind::Other) },
            ..Default::default()
        }
    }

    #[test]
    fn letter_bias_fires_on_one_letter_and_on_twice_the_gold_share() {
        // The demo scored by letters: C for all 32, gold spread evenly.
        let all_c: Vec<Record> = (0..32).map(|i| rec(i, "C", ["A", "B", "C", "D"][i % 4])).collect();
        let w = letter_bias(&all_c).unwrap();
        assert_eq!(w.kind, WarningKind::LetterBias);
        assert!(w.message.contains("C is 32/32 predictions (100.0%; more than 80% of all answers)"), "{}", w.message);
        // A 12/20 (60%) against a gold share of 5/20 (25%): more than twice.
        let golds = ["A", "B", "C", "D"];
        let skewed: Vec<Record> = (0..20).map(|i| rec(i, if i < 12 { "A" } else { golds[1 + i % 3] }, golds[i % 4])).collect();
        let w = letter_bias(&skewed).unwrap();
        assert!(w.message.contains("A is 12/20 predictions (60.0%; 25.0% of the gold)"), "{}", w.message);
        // Answers spread like the gold: no warning.
        let even: Vec<Record> = (0..20).map(|i| rec(i, golds[(i + 1) % 4], golds[i % 4])).collect();
        assert_eq!(letter_bias(&even), None);
        // Too few to call: 4 of 4.
        assert_eq!(letter_bias(&all_c[..4]), None);
    }

    #[test]
    fn an_incomplete_sampled_run_says_so() {
        let row = |n, max_n, short| SampledRow {
            group: "overall".into(),
            questions: 5,
            n,
            max_n,
            short,
            pass_at: vec![],
            maj: 0.0,
            entropy: 0.0,
            flip_rate: 0.0,
        };
        assert_eq!(incomplete_run(&[row(8, 8, 0)]), None);
        let w = incomplete_run(&[row(3, 8, 2)]).unwrap();
        assert_eq!(w.kind, WarningKind::IncompleteRun);
        assert!(w.message.starts_with("2 of 5 questions have fewer than 8 samples (the fewest: 3)"), "{}", w.message);
    }

    #[test]
    fn small_ld_gaps_get_no_ratio() {
        // "LD clean -0.01, mirrored 0.06": a gap of 0.07 nats.
        assert!(ld_gap_too_small(-0.01, 0.06, DEFAULT_MIN_LD_GAP));
        assert!(!ld_gap_too_small(2.0, -1.0, DEFAULT_MIN_LD_GAP));
        assert!(ld_gap_too_small(f64::NAN, 1.0, DEFAULT_MIN_LD_GAP), "a NaN gap is no gap");
        assert!(!ld_gap_too_small(-0.01, 0.06, 0.05), "the threshold is a setting");
        assert_eq!(small_ld_gap(0, 10, 0.5), None);
        assert!(small_ld_gap(3, 10, 0.5).unwrap().message.starts_with("3 of 10 samples left out"));
    }

    #[test]
    fn chance_levels_by_hand() {
        // 0.5 at n = 4: centre 0.5, half-width 1.96 sqrt(0.0625 + 0.0600) / 1.9604 = 0.3500.
        let level = ChanceLevel::new(0.5, 4);
        assert!((level.lo - 0.1500).abs() < 1e-4 && (level.hi - 0.8500).abs() < 1e-4, "{level:?}");
        assert!(flip_at_chance("x", 3, 4, &level).is_some(), "3/4 is inside 15-85%");
        // Every answer C on both sides: chance 1, interval 89.28-100 at 32 pairs.
        let level = ChanceLevel::new(1.0, 32);
        assert!((level.lo - 0.89282).abs() < 1e-4 && level.hi == 1.0, "{level:?}");
        let w = flip_at_chance("overall", 32, 32, &level).unwrap();
        assert!(w.message.contains("32/32 (100.00%) is inside the chance level 100.00% (95% 89.28-100.00)"), "{}", w.message);
        // Well above a 25% chance at 100 pairs: no warning.
        assert!(flip_at_chance("x", 90, 100, &ChanceLevel::new(0.25, 100)).is_none());
    }
}
