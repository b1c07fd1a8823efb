//! The one place that counts: accuracy over records, per-category tallies,
//! and flip consistency between an answer and the answer on the mirrored
//! sample. The CLI's `report`, `probe flip`, the TUI and training all call
//! these, so they cannot disagree.

use super::Record;
use crate::spatial::{parse_option, Direction};
use std::collections::BTreeMap;

/// (correct, total) over rotation-0 records, and circular (every rotation right) over questions.
pub fn accuracy(records: &[Record]) -> ((usize, usize), (usize, usize)) {
    let plain: Vec<&Record> = records.iter().filter(|r| r.rotation == 0).collect();
    let right = plain.iter().filter(|r| r.correct == Some(true)).count();
    let mut by_id: BTreeMap<&str, bool> = Default::default();
    for r in records {
        let e = by_id.entry(r.id.as_str()).or_insert(true);
        *e &= r.correct == Some(true);
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
        MirrorView { direction: r.predicted_direction.as_deref().and_then(parse_option), label: r.predicted_letter.as_deref() }
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

/// (category, consistent, total): pairs a plain run with its `flipped`
/// variant by sample id (a flipped id carries `~flip`).
pub fn flip_consistency(plain: &[Record], flipped: &[Record]) -> Vec<(String, usize, usize)> {
    let by_id: BTreeMap<&str, &Record> = flipped.iter().filter(|r| r.rotation == 0).map(|r| (r.id.trim_end_matches("~flip"), r)).collect();
    let rows = plain.iter().filter(|r| r.rotation == 0).filter_map(|p| {
        let f = by_id.get(p.id.as_str())?;
        Some((p.category.as_str(), answers_mirror(MirrorView::of_record(p), MirrorView::of_record(f))))
    });
    tally(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{flip::flip_labels, Sample};

    fn rec(id: &str, rotation: usize, correct: bool) -> Record {
        Record { key: format!("{id}#r{rotation}"), id: id.into(), rotation, correct: Some(correct), ..Default::default() }
    }

    #[test]
    fn accuracy_counts_rotation_zero_and_circular_questions() {
        let rs = [rec("a", 0, true), rec("a", 1, true), rec("b", 0, true), rec("b", 1, false), rec("c", 0, false)];
        assert_eq!(accuracy(&rs), ((2, 3), (1, 3)));
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
            predicted_direction: dir.map(str::to_string),
            ..Default::default()
        };
        let plain = [p("1", "x", "A", Some("left")), p("2", "x", "B", None), p("3", "y", "A", Some("front"))];
        let flipped = [p("1~flip", "x", "B", Some("right")), p("2~flip", "x", "C", None), p("3~flip", "y", "A", Some("front"))];
        assert_eq!(flip_consistency(&plain, &flipped), [("x".to_string(), 1, 2), ("y".to_string(), 1, 1)]);
    }
}
