//! The one place that counts: accuracy over records, per-category tallies,
//! and flip consistency between an answer and the answer on the mirrored
//! sample. The CLI's `report`, `probe flip`, the TUI and training all call
//! these, so they cannot disagree.

use super::Record;
use crate::spatial::Direction;
use std::collections::BTreeMap;

/// (correct, total) over rotation-0 records, and circular (every rotation
/// right) over questions; records with no gold (no verdict) count in neither.
pub fn accuracy(records: &[Record]) -> ((usize, usize), (usize, usize)) {
    let judged: Vec<&Record> = records.iter().filter(|r| r.verdict != crate::spatial::Verdict::Unjudged).collect();
    let plain: Vec<&&Record> = judged.iter().filter(|r| r.rotation == 0).collect();
    let right = plain.iter().filter(|r| r.is_correct()).count();
    let mut by_id: BTreeMap<&str, bool> = Default::default();
    for r in &judged {
        let e = by_id.entry(r.id.as_str()).or_insert(true);
        *e &= r.is_correct();
    }
    let circ = by_id.values().filter(|v| **v).count();
    ((right, plain.len()), (circ, by_id.len()))
}

/// Per-category counts of a yes/no property: (category, yes, total), by name.
pub fn tally<'a>(rows: impl Iterator<Item = (&'a str, bool)>) -> Vec<(String, usize, usize)> {
    let mut m: BTreeMap<String, (usize, usize)> = Default::default();
    for (cat, ok) in rows {
        let e = m.entry(cat.to_string()).or_default();
        e.0 += ok as usize;
        e.1 += 1;
    }
    m.into_iter().map(|(k, (a, b))| (k, a, b)).collect()
}

/// What flip consistency looks at in one answer: the direction it names and
/// the option label it chose.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MirrorView<'a> {
    pub direction: Option<Direction>,
    pub label: Option<&'a str>,
}

impl<'a> MirrorView<'a> {
    pub fn of_record(r: &'a Record) -> MirrorView<'a> {
        MirrorView { direction: r.predicted_direction, label: r.predicted_letter.as_deref() }
    }
}

/// Whether `mirrored` (the answer on the mirrored sample) mirrors `original`.
/// Both name a direction: the mirror of the original's. Otherwise the same
/// label: a mirrored sample keeps its option letters and mirrors their texts
/// (`data::flip::flip_labels`), so the option with the mirrored text is the
/// one with the same letter.
pub fn answers_mirror(original: MirrorView, mirrored: MirrorView) -> bool {
    match (original.direction, mirrored.direction) {
        (Some(a), Some(b)) => a.mirrored() == b,
        _ => original.label.is_some() && original.label == mirrored.label,
    }
}

/// Flip consistency of one group of paired questions.
#[derive(Clone, Debug, PartialEq)]
pub struct FlipPairs {
    pub category: String,
    pub consistent: usize,
    pub total: usize,
    /// The share consistent if each run's answers kept their distribution
    /// (letters, directions) but ignored the image: sum over answer pairs of
    /// p_plain(a) p_mirror(b) [b mirrors a].
    pub chance: f64,
}

/// Per category (by name), then "overall": pairs a plain run with its
/// `flipped` variant by question (a flipped id carries `~flip`), one
/// record per question on each side (the majority answer of sampled runs).
pub fn flip_consistency(plain: &[Record], flipped: &[Record]) -> Vec<FlipPairs> {
    let by_id: BTreeMap<&str, &Record> =
        super::sampling::one_per_question(flipped).into_iter().map(|r| (r.id.trim_end_matches("~flip"), r)).collect();
    let pairs: Vec<(&str, MirrorView, MirrorView)> = super::sampling::one_per_question(plain)
        .into_iter()
        .filter_map(|p| Some((p.category.as_str(), MirrorView::of_record(p), MirrorView::of_record(by_id.get(p.id.as_str())?))))
        .collect();
    flip_consistency_of(&pairs)
}

/// Per category (by name), then "overall", of (category, plain answer, mirrored answer) pairs.
pub fn flip_consistency_of(pairs: &[(&str, MirrorView, MirrorView)]) -> Vec<FlipPairs> {
    let mut groups: BTreeMap<&str, Vec<(MirrorView, MirrorView)>> = BTreeMap::new();
    for (cat, a, b) in pairs {
        groups.entry(cat).or_default().push((*a, *b));
    }
    let all: Vec<(MirrorView, MirrorView)> = pairs.iter().map(|(_, a, b)| (*a, *b)).collect();
    groups.into_iter().map(|(cat, ps)| flip_pairs(cat, &ps)).chain(std::iter::once(flip_pairs("overall", &all))).collect()
}

/// Each distinct answer and how many times it was given.
fn counted<'a>(answers: impl Iterator<Item = MirrorView<'a>>) -> Vec<(MirrorView<'a>, usize)> {
    let mut seen: Vec<(MirrorView, usize)> = Vec::new();
    for a in answers {
        match seen.iter_mut().find(|(v, _)| *v == a) {
            Some(e) => e.1 += 1,
            None => seen.push((a, 1)),
        }
    }
    seen
}

/// What the chance level compares of an answer: its letter, or its direction when it has none.
fn letter_first(v: MirrorView<'_>) -> MirrorView<'_> {
    if v.label.is_some() {
        MirrorView { direction: None, ..v }
    } else {
        v
    }
}

fn flip_pairs(category: &str, pairs: &[(MirrorView, MirrorView)]) -> FlipPairs {
    // The chance level reads letters where there are letters (a mirrored
    // sample keeps its letters, so the same letter is the mirrored answer),
    // else directions: an answer's direction means nothing across questions.
    let (plain, mirror) = (counted(pairs.iter().map(|p| letter_first(p.0))), counted(pairs.iter().map(|p| letter_first(p.1))));
    let n = pairs.len().max(1) as f64;
    let chance =
        plain.iter().flat_map(|(a, ca)| mirror.iter().map(move |(b, cb)| (answers_mirror(*a, *b) as usize * ca * cb) as f64)).sum::<f64>()
            / (n * n);
    FlipPairs {
        category: category.to_string(),
        consistent: pairs.iter().filter(|(a, b)| answers_mirror(*a, *b)).count(),
        total: pairs.len(),
        chance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{flip::flip_labels, Sample};
    use crate::spatial::{parse_option, ErrorKind, Verdict};

    fn rec(id: &str, rotation: usize, correct: bool) -> Record {
        let verdict = if correct { Verdict::Correct } else { Verdict::Wrong(ErrorKind::Other) };
        Record { key: format!("{id}#r{rotation}"), id: id.into(), rotation, verdict, ..Default::default() }
    }

    #[test]
    fn accuracy_counts_rotation_zero_and_circular_questions() {
        let rs = [rec("a", 0, true), rec("a", 1, true), rec("b", 0, true), rec("b", 1, false), rec("c", 0, false)];
        assert_eq!(accuracy(&rs), ((2, 3), (1, 3)));
        // A question with no gold has no verdict and is not counted.
        let unjudged = Record { key: "d".into(), id: "d".into(), verdict: Verdict::Unjudged, ..Default::default() };
        let with: Vec<Record> = rs.iter().cloned().chain([unjudged]).collect();
        assert_eq!(accuracy(&with), ((2, 3), (1, 3)));
        assert_eq!(accuracy(&[]), ((0, 0), (0, 0)));
    }

    #[test]
    fn tally_groups_by_category_in_name_order() {
        let t = tally([("b", true), ("a", false), ("b", false), ("a", true), ("a", true)].into_iter());
        assert_eq!(t, [("a".to_string(), 2, 3), ("b".to_string(), 1, 2)]);
    }

    #[test]
    fn mirrored_text_is_the_same_letter() {
        let mut s = Sample::new("1", "t");
        s.set_options(["to the left of the lamp", "behind the lamp", "right hand"]).unwrap();
        let f = flip_labels(&s, &[100]);
        for o in &s.options {
            let m = f.option(o.letter).unwrap();
            assert_eq!(crate::data::flip::swap_left_right(&o.text.to_lowercase()), m.text.to_lowercase());
        }
        let v = |d: Option<Direction>, l: &'static str| MirrorView { direction: d, label: Some(l) };
        assert!(answers_mirror(v(None, "A"), v(None, "A")));
        assert!(!answers_mirror(v(None, "A"), v(None, "B")));
        assert!(answers_mirror(v(parse_option("left"), "A"), v(parse_option("right"), "B")));
        assert!(!answers_mirror(v(parse_option("left"), "A"), v(parse_option("left"), "A")));
        assert!(!answers_mirror(MirrorView { direction: None, label: None }, MirrorView { direction: None, label: None }));
    }

    #[test]
    fn flip_consistency_pairs_by_id_and_judges_once() {
        let p = |id: &str, cat: &str, letter: &str, dir: Option<&str>| Record {
            key: id.into(),
            id: id.into(),
            category: cat.into(),
            predicted_letter: Some(letter.into()),
            predicted_direction: dir.and_then(Direction::from_name),
            ..Default::default()
        };
        let plain = [p("1", "x", "A", Some("left")), p("2", "x", "B", None), p("3", "y", "A", Some("front"))];
        let flipped = [p("1~flip", "x", "B", Some("right")), p("2~flip", "x", "C", None), p("3~flip", "y", "A", Some("front"))];
        let rows: Vec<(String, usize, usize)> =
            flip_consistency(&plain, &flipped).into_iter().map(|f| (f.category, f.consistent, f.total)).collect();
        assert_eq!(rows, [("x".to_string(), 1, 2), ("y".to_string(), 1, 1), ("overall".to_string(), 2, 3)]);
    }

    /// Two sampled runs pair question by question on their majority answers,
    /// as the paired table does, not sample by sample.
    #[test]
    fn flip_consistency_of_sampled_runs_pairs_majority_answers_by_question() {
        let s = |id: &str, j: usize, letter: &str, dir: &str| Record {
            key: format!("{id}#s{j}"),
            id: id.into(),
            category: "x".into(),
            sample: Some(j),
            predicted_letter: Some(letter.into()),
            predicted_direction: Direction::from_name(dir),
            ..Default::default()
        };
        // q1: plain B A A (majority left), mirrored B B A (majority right): consistent.
        // q2: plain C C D (majority back), mirrored D D C (majority front): not a mirror.
        let question = |id: &str, answers: [(&str, &str); 3]| -> Vec<Record> {
            answers.iter().enumerate().map(|(j, (letter, dir))| s(id, j, letter, dir)).collect()
        };
        let plain =
            [question("1", [("B", "right"), ("A", "left"), ("A", "left")]), question("2", [("C", "back"), ("C", "back"), ("D", "front")])]
                .concat();
        let flipped = [
            question("1~flip", [("B", "right"), ("B", "right"), ("A", "left")]),
            question("2~flip", [("D", "front"), ("D", "front"), ("C", "back")]),
        ]
        .concat();
        let overall = flip_consistency(&plain, &flipped).pop().unwrap();
        assert_eq!((overall.consistent, overall.total), (1, 2));
    }

    #[test]
    fn flip_chance_is_what_the_letter_distributions_alone_give() {
        // Letters: plain A A B B, mirror A A A B. Same letter = consistent.
        // Chance = P(A)P(A) + P(B)P(B) = 0.5 x 0.75 + 0.5 x 0.25 = 0.5; observed 3/4.
        let p = |id: &str, letter: &str| Record {
            key: id.into(),
            id: id.into(),
            category: "c".into(),
            predicted_letter: Some(letter.into()),
            ..Default::default()
        };
        let plain = [p("1", "A"), p("2", "A"), p("3", "B"), p("4", "B")];
        let flipped = [p("1~flip", "A"), p("2~flip", "A"), p("3~flip", "A"), p("4~flip", "B")];
        let overall = flip_consistency(&plain, &flipped).pop().unwrap();
        assert_eq!((overall.consistent, overall.total), (3, 4));
        assert!((overall.chance - 0.5).abs() < 1e-12, "{overall:?}");
        // One letter on both sides, naming each question's own direction and
        // its mirror: consistency is certain by chance.
        let c = |id: &str, d: &str| Record { predicted_direction: Direction::from_name(d), ..p(id, "C") };
        let plain = [c("1", "left"), c("2", "front-right")];
        let all_c = flip_consistency(&plain, &[c("1~flip", "right"), c("2~flip", "front-left")]).pop().unwrap();
        assert_eq!((all_c.consistent, all_c.chance), (2, 1.0));
    }
}
