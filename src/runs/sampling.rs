//! Sampled answers (`eval --samples N`): the one definition of pass@k,
//! majority vote, answer entropy and flip rate over a question's samples.

use super::report::GroupBy;
use super::Record;

use std::collections::BTreeMap;

/// The unbiased pass@k of a question with `n` samples of which `c` are
/// right: 1 - C(n-c, k) / C(n, k), computed as the product
/// prod_{i=n-c+1..=n} (1 - k/i), which neither overflows nor cancels; 1 when
/// fewer than k samples are wrong.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> f64 {
    assert!(k >= 1 && k <= n && c <= n, "pass@{k} of {c}/{n}");
    if n - c < k {
        return 1.0;
    }
    1.0 - ((n - c + 1)..=n).map(|i| 1.0 - k as f64 / i as f64).product::<f64>()
}

/// 1, 2, 4, ... up to `n`, and `n` itself.
pub fn ks(n: usize) -> Vec<usize> {
    let mut ks: Vec<usize> = std::iter::successors(Some(1usize), |k| k.checked_mul(2)).take_while(|k| *k <= n).collect();
    if n > 0 && ks.last() != Some(&n) {
        ks.push(n);
    }
    ks
}

/// One question's samples, as read from its records.
#[derive(Clone, Debug, PartialEq)]
pub struct SampledQuestion<'a> {
    pub id: &'a str,
    /// The first sample's record (its category, gold and source group it).
    pub first: &'a Record,
    pub samples: Vec<&'a Record>,
}

impl<'a> SampledQuestion<'a> {
    pub fn n(&self) -> usize {
        self.samples.len()
    }

    pub fn right(&self) -> usize {
        self.samples.iter().filter(|r| r.is_correct()).count()
    }

    /// What each sample answered: the option letter or answer read, or
    /// `unparsed`.
    fn answers(&self) -> impl Iterator<Item = &str> {
        self.samples.iter().map(|r| r.predicted_letter.as_deref().unwrap_or("unparsed"))
    }

    /// Each answer and how many samples gave it, most frequent first (ties
    /// in the order the answers first appear).
    pub fn distribution(&self) -> Vec<(String, usize)> {
        let mut order: Vec<(String, usize)> = Vec::new();
        for a in self.answers() {
            match order.iter_mut().find(|(x, _)| x == a) {
                Some(e) => e.1 += 1,
                None => order.push((a.to_string(), 1)),
            }
        }
        order.sort_by_key(|e| std::cmp::Reverse(e.1));
        order
    }

    /// The sample that stands for the question: the first that gave the
    /// majority answer (unparsed samples do not vote); the first sample when
    /// none was read.
    pub fn majority(&self) -> &'a Record {
        let winner = self.distribution().into_iter().find(|(a, _)| a != "unparsed");
        winner
            .and_then(|(w, _)| self.samples.iter().copied().find(|r| r.predicted_letter.as_deref() == Some(w.as_str())))
            .unwrap_or(self.first)
    }

    /// Whether the majority answer is right.
    pub fn majority_right(&self) -> bool {
        self.majority().is_correct()
    }

    /// Shannon entropy of the answers, in bits (0 when all agree).
    pub fn entropy(&self) -> f64 {
        let n = self.n() as f64;
        self.distribution().iter().map(|(_, c)| *c as f64 / n).map(|p| p * (1.0 / p).log2()).sum::<f64>()
    }

    /// Whether the samples name a direction and its mirror (left and right,
    /// front-left and front-right) or its vertical flip (above and below).
    pub fn flips(&self) -> bool {
        let dirs: Vec<_> = self.samples.iter().filter_map(|r| r.predicted_direction).collect();
        dirs.iter().any(|d| {
            let (m, v) = (d.mirrored(), d.vertically_flipped());
            (m != *d && dirs.contains(&m)) || (v != *d && dirs.contains(&v))
        })
    }
}

/// The questions of sampled records (those with a `sample` index), by id.
pub fn questions(records: &[Record]) -> Vec<SampledQuestion<'_>> {
    let mut by_id: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.sample.is_some()) {
        by_id.entry(r.id.as_str()).or_default().push(r);
    }
    by_id
        .into_iter()
        .map(|(id, mut samples)| {
            samples.sort_by_key(|r| r.sample);
            SampledQuestion { id, first: samples[0], samples }
        })
        .collect()
}

/// One record per question: the majority sample's for sampled answers
/// (`eval --samples`), else the record of rotation 0. Every per-question
/// comparison (paired tables, flip consistency, causal sums) reads these.
pub fn one_per_question(records: &[Record]) -> Vec<&Record> {
    let sampled = questions(records);
    let mut out: Vec<&Record> = sampled.iter().map(SampledQuestion::majority).collect();
    out.extend(records.iter().filter(|r| r.sample.is_none() && r.rotation == 0));
    out
}

/// The sampled-answer columns of one group.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SampledRow {
    pub group: String,
    pub questions: usize,
    /// Samples per question (the smallest, when they differ).
    pub n: usize,
    /// The most samples any question has (more than `n`: the run is incomplete).
    pub max_n: usize,
    /// Questions with fewer than `max_n` samples.
    pub short: usize,
    /// (k, mean pass@k) for k = 1, 2, 4, ... up to n.
    pub pass_at: Vec<(usize, f64)>,
    /// Share of questions whose majority answer is right.
    pub maj: f64,
    /// Mean per-question answer entropy, in bits.
    pub entropy: f64,
    /// Share of questions whose samples contain a direction and its mirror.
    pub flip_rate: f64,
}

impl SampledRow {
    fn of(group: String, qs: &[&SampledQuestion]) -> SampledRow {
        let n = qs.iter().map(|q| q.n()).min().unwrap_or(0);
        let max_n = qs.iter().map(|q| q.n()).max().unwrap_or(0);
        let count = qs.len().max(1) as f64;
        let mean = |f: &dyn Fn(&SampledQuestion) -> f64| qs.iter().map(|q| f(q)).sum::<f64>() / count;
        // Questions with more samples than the smallest (a resumed run with a
        // larger N) are scored on all of theirs: pass@k is defined per question.
        let pass_at = ks(n).into_iter().map(|k| (k, mean(&|q| pass_at_k(q.n(), q.right(), k)))).collect();
        SampledRow {
            group,
            questions: qs.len(),
            n,
            max_n,
            short: qs.iter().filter(|q| q.n() < max_n).count(),
            pass_at,
            maj: mean(&|q| q.majority_right() as u8 as f64),
            entropy: mean(&|q| q.entropy()),
            flip_rate: mean(&|q| q.flips() as u8 as f64),
        }
    }
}

/// The sampled columns per value of `by`, plus "overall" last; empty when
/// the records are not sampled.
pub fn sampled_rows(records: &[Record], by: GroupBy) -> Vec<SampledRow> {
    let qs = questions(records);
    if qs.is_empty() {
        return Vec::new();
    }
    let mut groups: BTreeMap<String, Vec<&SampledQuestion>> = BTreeMap::new();
    for q in &qs {
        groups.entry(by.of(q.first)).or_default().push(q);
    }
    let mut out: Vec<SampledRow> = groups.into_iter().map(|(g, qs)| SampledRow::of(g, &qs)).collect();
    out.push(SampledRow::of("overall".into(), &qs.iter().collect::<Vec<_>>()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spatial::{Direction, ErrorKind, Verdict};

    #[test]
    fn pass_at_k_matches_hand_worked_cases() {
        // n=2, c=1, k=1: 1/2.
        assert!((pass_at_k(2, 1, 1) - 0.5).abs() < 1e-12);
        // n=4, c=1, k=2: 1 - C(3,2)/C(4,2) = 1 - 3/6 = 0.5.
        assert!((pass_at_k(4, 1, 2) - 0.5).abs() < 1e-12);
        // n=8, c=3, k=4: 1 - C(5,4)/C(8,4) = 1 - 5/70.
        assert!((pass_at_k(8, 3, 4) - (1.0 - 5.0 / 70.0)).abs() < 1e-12);
        // n=5, c=0: never; n - c < k: always.
        assert_eq!(pass_at_k(5, 0, 3), 0.0);
        assert_eq!(pass_at_k(5, 3, 3), 1.0);
        assert_eq!(pass_at_k(8, 8, 1), 1.0);
        // Large n stays finite and exact: n=1000, c=1, k=1 -> 1/1000.
        assert!((pass_at_k(1000, 1, 1) - 0.001).abs() < 1e-12);
        // pass@1 is the mean accuracy.
        assert!((pass_at_k(8, 5, 1) - 5.0 / 8.0).abs() < 1e-12);
        assert_eq!(ks(8), [1, 2, 4, 8]);
        assert_eq!(ks(6), [1, 2, 4, 6], "pass@N is always there");
        assert_eq!(ks(1), [1]);
    }

    fn rec(id: &str, j: usize, pred: Option<&str>, dir: Option<&str>, correct: bool) -> Record {
        Record {
            key: format!("{id}#s{j}"),
            id: id.into(),
            category: "cam".into(),
            sample: Some(j),
            predicted_letter: pred.map(str::to_string),
            predicted_direction: dir.and_then(Direction::from_name),
            verdict: if correct { Verdict::Correct } else { Verdict::Wrong(ErrorKind::Other) },
            ..Default::default()
        }
    }

    #[test]
    fn majority_entropy_and_flips_by_hand() {
        // q1: A A B (unparsed): majority A (right), entropy of {2/4, 1/4, 1/4} = 1.5 bits, left and right: a flip.
        // q2: B B B B (all wrong): majority wrong, entropy 0, no flip.
        let recs = vec![
            rec("q1", 0, Some("A"), Some("left"), true),
            rec("q1", 1, Some("B"), Some("right"), false),
            rec("q1", 2, Some("A"), Some("left"), true),
            rec("q1", 3, None, None, false),
            rec("q2", 0, Some("B"), Some("back"), false),
            rec("q2", 1, Some("B"), Some("back"), false),
            rec("q2", 2, Some("B"), Some("back"), false),
            rec("q2", 3, Some("B"), Some("back"), false),
        ];
        let qs = questions(&recs);
        assert_eq!(qs[0].distribution(), [("A".to_string(), 2), ("B".to_string(), 1), ("unparsed".to_string(), 1)]);
        assert!(qs[0].majority_right() && !qs[1].majority_right());
        assert!((qs[0].entropy() - 1.5).abs() < 1e-12 && qs[1].entropy() == 0.0);
        assert!(qs[0].flips() && !qs[1].flips());
        let rows = sampled_rows(&recs, GroupBy::Category);
        let overall = rows.last().unwrap();
        assert_eq!((overall.group.as_str(), overall.questions, overall.n), ("overall", 2, 4));
        // pass@1 = (2/4 + 0) / 2; pass@2 = (1 - C(2,2)/C(4,2) + 0) / 2 = (5/6) / 2; pass@4 = 1/2.
        let p: Vec<f64> = overall.pass_at.iter().map(|x| x.1).collect();
        assert!((p[0] - 0.25).abs() < 1e-12 && (p[1] - 5.0 / 12.0).abs() < 1e-12 && (p[2] - 0.5).abs() < 1e-12, "{p:?}");
        assert_eq!((overall.maj, overall.flip_rate), (0.5, 0.5));
        assert!((overall.entropy - 0.75).abs() < 1e-12);
        // Above and below are a flip too.
        let v = vec![rec("q", 0, Some("A"), Some("up"), true), rec("q", 1, Some("B"), Some("down"), false)];
        assert!(questions(&v)[0].flips());
        assert!(sampled_rows(&[Record::default()], GroupBy::Category).is_empty(), "plain records have no sampled rows");
    }
}
