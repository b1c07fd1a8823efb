//! Answer extraction with provenance: which option a model's free-text
//! output chose, which rule said so, and the span it read. Only valid
//! option letters count, and no rule guesses: when nothing fires the result
//! is `Unparsed`, and when the output names several answers, `Ambiguous`.
//! Option letters are read in `letter.rs`.

use regex::Regex;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtractRule {
    /// "The answer is (B)", "Answer: B".
    Declared,
    /// "(B)", "**B**", "B." / "B)" at a line start.
    Marked,
    /// The whole output is the letter, or it ends with it ("Based on the image, A").
    Trailing,
    /// The output names exactly one option's text.
    OptionText,
    /// ViewSpatial's official rule: first \b[A-D]\b on the last line.
    #[serde(rename = "viewspatial")]
    ViewSpatial,
    YesNo,
    Number,
    /// A direction named in words ("front-left", "to the left"), for
    /// questions asked without options.
    Direction,
    /// A spatial relation phrase ("behind", "on top of"), for questions
    /// answered with one (AdaptVis's VSR prompts).
    Relation,
    /// Scored options in one forward pass (no text to parse).
    Scored,
    /// Several answers named and none chosen ("A or B", "(A) (B) (C)").
    Ambiguous,
    #[default]
    Unparsed,
}

impl ExtractRule {
    pub fn name(self) -> &'static str {
        match self {
            ExtractRule::Declared => "declared",
            ExtractRule::Marked => "marked",
            ExtractRule::Trailing => "trailing",
            ExtractRule::OptionText => "option_text",
            ExtractRule::ViewSpatial => "viewspatial",
            ExtractRule::YesNo => "yes_no",
            ExtractRule::Number => "number",
            ExtractRule::Direction => "direction",
            ExtractRule::Relation => "relation",
            ExtractRule::Scored => "scored",
            ExtractRule::Ambiguous => "ambiguous",
            ExtractRule::Unparsed => "unparsed",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Extraction {
    /// The option letter, "yes"/"no", the number as text, or the direction's name.
    pub answer: Option<String>,
    pub rule: ExtractRule,
    /// The bytes of the output the rule read, when it read a part of it.
    pub span: Option<std::ops::Range<usize>>,
}

impl Extraction {
    fn found(answer: impl Into<String>, rule: ExtractRule) -> Extraction {
        Extraction { answer: Some(answer.into()), rule, span: None }
    }
    fn found_at(answer: impl Into<String>, rule: ExtractRule, span: std::ops::Range<usize>) -> Extraction {
        Extraction { answer: Some(answer.into()), rule, span: Some(span) }
    }
    pub fn unparsed() -> Extraction {
        Extraction { answer: None, rule: ExtractRule::Unparsed, span: None }
    }
    /// An option scored in one forward pass (no text was read).
    pub fn scored(label: impl Into<String>) -> Extraction {
        Extraction::found(label, ExtractRule::Scored)
    }
}

pub(super) fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("extraction pattern"))
}

pub use super::letter::extract_letter;

/// ViewSpatial's official scoring: the first \b[A-D]\b on the output's last line.
pub fn extract_viewspatial(output: &str, valid: &[char]) -> Extraction {
    static FIRST: OnceLock<Regex> = OnceLock::new();
    let last = output.trim().lines().last().unwrap_or("");
    let first = re(&FIRST, r"\b([A-D])\b");
    let offset = output.trim_end().len() - last.len();
    match first.captures(last).and_then(|c| c.get(1)).and_then(|m| Some((m.as_str().chars().next()?, m.range()))) {
        Some((l, at)) if valid.contains(&l) => {
            Extraction::found_at(l.to_string(), ExtractRule::ViewSpatial, offset + at.start..offset + at.end)
        }
        _ => Extraction::unparsed(),
    }
}

/// yes / no (VSR): the last standalone yes or no.
pub fn extract_yes_no(output: &str) -> Extraction {
    static YN: OnceLock<Regex> = OnceLock::new();
    let yn = re(&YN, r"(?i)\b(yes|no|true|false)\b");
    match yn.captures_iter(output).filter_map(|c| c.get(1)).last() {
        Some(m) => {
            let v = matches!(m.as_str().to_lowercase().as_str(), "yes" | "true");
            Extraction::found_at(if v { "yes" } else { "no" }, ExtractRule::YesNo, m.range())
        }
        None => Extraction::unparsed(),
    }
}

/// The one direction the output names ("front-left", "It is to the right."),
/// as its canonical name; unparsed when none or conflicting ones are named.
pub fn extract_direction(output: &str) -> Extraction {
    match crate::spatial::parse_free(output) {
        Some(d) => Extraction::found(d.name(), ExtractRule::Direction),
        None => Extraction::unparsed(),
    }
}

/// The relations of VSR (Liu et al. 2023), by which answers in relation
/// words are read.
pub const VSR_RELATIONS: &[&str] = &[
    "adjacent to",
    "alongside",
    "at the side of",
    "at the right side of",
    "at the left side of",
    "attached to",
    "at the back of",
    "ahead of",
    "against",
    "at the edge of",
    "off",
    "past",
    "toward",
    "down",
    "away from",
    "along",
    "around",
    "into",
    "across",
    "across from",
    "down from",
    "facing",
    "facing away from",
    "parallel to",
    "perpendicular to",
    "on top of",
    "beneath",
    "beside",
    "behind",
    "left of",
    "right of",
    "under",
    "in front of",
    "below",
    "above",
    "over",
    "in the middle of",
    "by",
    "close to",
    "near",
    "far from",
    "far away from",
    "connected to",
    "detached from",
    "has as a part",
    "part of",
    "contains",
    "within",
    "at",
    "on",
    "in",
    "with",
    "surrounding",
    "among",
    "consists of",
    "out of",
    "between",
    "inside",
    "outside",
    "touching",
    "beyond",
    "next to",
    "opposite to",
    "enclosed by",
    "underneath",
    "through",
];

/// Lowercase words, punctuation dropped, joined by single spaces.
pub fn words_of(text: &str) -> String {
    text.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// The one relation phrase of `vocabulary` that `output` names: phrases
/// inside a longer named one ("on" in "on top of") do not count, and two
/// different phrases are a conflict, so unparsed (no guessing).
pub fn extract_relation(output: &str, vocabulary: &[&str]) -> Extraction {
    let text = format!(" {} ", words_of(output));
    let mut spans: Vec<(usize, usize, String)> = Vec::new();
    for phrase in vocabulary {
        let p = words_of(phrase);
        if p.is_empty() {
            continue;
        }
        let needle = format!(" {p} ");
        let mut from = 0;
        while let Some(i) = text[from..].find(&needle) {
            let start = from + i + 1;
            spans.push((start, start + p.len(), p.clone()));
            from = start;
        }
    }
    let outer: std::collections::BTreeSet<&str> = spans
        .iter()
        .filter(|(s, e, p)| !spans.iter().any(|(s2, e2, p2)| s2 <= s && e <= e2 && p2.len() > p.len()))
        .map(|(_, _, p)| p.as_str())
        .collect();
    match outer.len() {
        1 => Extraction::found(*outer.first().expect("one"), ExtractRule::Relation),
        _ => Extraction::unparsed(),
    }
}

/// A number (CLEVR counts): inside <answer> tags if present, else the last number.
pub fn extract_number(output: &str) -> Extraction {
    static TAG: OnceLock<Regex> = OnceLock::new();
    static NUM: OnceLock<Regex> = OnceLock::new();
    const WORDS: [&str; 11] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"];
    let (scope, offset) = re(&TAG, r"(?is)<answer>(.*?)</answer>")
        .captures(output)
        .and_then(|c| c.get(1))
        .map(|m| (m.as_str(), m.start()))
        .unwrap_or((output, 0));
    let num = re(&NUM, r"(?i)\b(\d+|zero|one|two|three|four|five|six|seven|eight|nine|ten)\b");
    match num.captures_iter(scope).filter_map(|c| c.get(1)).last() {
        Some(m) => {
            let s = m.as_str().to_lowercase();
            let n = WORDS.iter().position(|w| *w == s).map(|i| i.to_string()).unwrap_or(s);
            Extraction::found_at(n, ExtractRule::Number, offset + m.start()..offset + m.end())
        }
        None => Extraction::unparsed(),
    }
}

#[cfg(test)]
mod relation_tests {
    use super::*;

    #[test]
    fn relation_phrases_longest_and_unambiguous() {
        let r = |s: &str| extract_relation(s, VSR_RELATIONS).answer;
        assert_eq!(r("Behind."), Some("behind".into()));
        assert_eq!(r("The cat is on top of the car"), Some("on top of".into()));
        assert_eq!(r("in front of"), Some("in front of".into()));
        assert_eq!(r("At the right side of the keyboard."), Some("at the right side of".into()));
        assert_eq!(r("next to the cat, on the bed"), None, "two relations: no guess");
        assert_eq!(r("I cannot tell"), None);
        assert_eq!(extract_relation("it is inside", VSR_RELATIONS).rule, ExtractRule::Relation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_written_by_their_names() {
        use ExtractRule::*;
        for r in [Declared, Marked, Trailing, OptionText, ViewSpatial, YesNo, Number, Direction, Relation, Scored, Ambiguous, Unparsed] {
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{}\"", r.name()));
        }
        assert!(serde_json::from_str::<ExtractRule>("\"guess\"").is_err());
    }

    #[test]
    fn directions_named_in_words() {
        let d = extract_direction("front-left");
        assert_eq!((d.answer.as_deref(), d.rule), (Some("front-left"), ExtractRule::Direction));
        assert_eq!(extract_direction("It is to the right.").answer.as_deref(), Some("right"));
        assert_eq!(extract_direction("left or right").rule, ExtractRule::Unparsed, "conflicting words name no direction");
        assert_eq!(extract_direction("circle").rule, ExtractRule::Unparsed);
    }

    #[test]
    fn viewspatial_rule() {
        let v = ['A', 'B', 'C', 'D'];
        assert_eq!(extract_viewspatial("Let me think.\nB. right", &v).answer.as_deref(), Some("B"));
        assert_eq!(extract_viewspatial("A\nnone of these", &v).answer, None);
        assert_eq!(extract_viewspatial("C", &['A', 'B']).answer, None);
    }

    #[test]
    fn yes_no_and_numbers() {
        assert_eq!(extract_yes_no("Yes, the cat is on the mat.").answer.as_deref(), Some("yes"));
        assert_eq!(extract_yes_no("At first yes, but no.").answer.as_deref(), Some("no"));
        assert_eq!(extract_yes_no("Maybe.").rule, ExtractRule::Unparsed);
        assert_eq!(extract_number("<answer> 3 </answer>").answer.as_deref(), Some("3"));
        assert_eq!(extract_number("I count two cubes and three spheres, so five.").answer.as_deref(), Some("5"));
        assert_eq!(extract_number("none visible").rule, ExtractRule::Unparsed);
    }
}
