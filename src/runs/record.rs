//! One line of `records.jsonl`.
//!
//! On disk a record keeps the fields it always had (`correct`, `error_kind`,
//! `error`, direction and rule names as strings); in memory they are one
//! typed [`Verdict`] and typed directions and rule. A line whose values are
//! not the project's vocabulary, or whose verdict fields contradict each
//! other, does not decode: the reader names it as a bad line.

use crate::spatial::extract::ExtractRule;
use crate::spatial::{Direction, ErrorKind, Verdict};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(try_from = "RecordLine", into = "RecordLine")]
pub struct Record {
    /// `id`, or `id#rK` for the K-th rotation of circular evaluation.
    pub key: String,
    pub id: String,
    pub category: String,
    /// Rotation index (0 = the options as given).
    pub rotation: usize,
    /// Which of the question's sampled answers this is (`--samples N`: key `id#sJ`).
    pub sample: Option<usize>,
    pub gold_letter: Option<String>,
    pub gold_direction: Option<Direction>,
    pub predicted_letter: Option<String>,
    pub predicted_direction: Option<Direction>,
    /// The generated text (generate mode), empty when scored.
    pub raw_output: String,
    /// Which extraction rule read the answer (`scored` in score mode).
    pub rule: ExtractRule,
    /// Option letter -> log-probability at the answer position.
    pub option_logprobs: Vec<(String, f32)>,
    pub verdict: Verdict,
    pub latency_ms: f64,
    /// Variant details: box, alpha, confidence, branch.
    pub variant: serde_json::Map<String, serde_json::Value>,
}

impl Record {
    pub fn is_correct(&self) -> bool {
        self.verdict.is_correct()
    }

    /// Why the sample could not be asked, if it could not.
    pub fn failure(&self) -> Option<&str> {
        match &self.verdict {
            Verdict::Failed(reason) => Some(reason),
            _ => None,
        }
    }

    pub fn error_kind(&self) -> Option<ErrorKind> {
        self.verdict.error_kind()
    }
}

/// The on-disk shape of a record.
#[derive(Serialize, Deserialize)]
struct RecordLine {
    key: String,
    id: String,
    category: String,
    #[serde(default)]
    rotation: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sample: Option<usize>,
    gold_letter: Option<String>,
    gold_direction: Option<Direction>,
    predicted_letter: Option<String>,
    predicted_direction: Option<Direction>,
    #[serde(default)]
    raw_output: String,
    rule: ExtractRule,
    #[serde(default)]
    option_logprobs: Vec<(String, f32)>,
    correct: Option<bool>,
    error_kind: Option<ErrorKind>,
    latency_ms: f64,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    variant: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl TryFrom<RecordLine> for Record {
    type Error = String;

    fn try_from(l: RecordLine) -> Result<Record, String> {
        let verdict = match (l.error, l.correct, l.error_kind) {
            (Some(reason), _, _) => Verdict::Failed(reason),
            (None, Some(true), None) => Verdict::Correct,
            (None, Some(false), Some(k)) if k != ErrorKind::Correct => Verdict::of_kind(k),
            // A miss the taxonomy could not classify.
            (None, Some(false), None) => Verdict::Wrong(ErrorKind::Other),
            (None, None, None) => Verdict::Unjudged,
            (None, correct, kind) => {
                let kind = kind.map_or("null".to_string(), |k| format!("{:?}", k.name()));
                let correct = correct.map_or("null".to_string(), |c| c.to_string());
                return Err(format!("correct is {correct} but error_kind is {kind}"));
            }
        };
        Ok(Record {
            key: l.key,
            id: l.id,
            category: l.category,
            rotation: l.rotation,
            sample: l.sample,
            gold_letter: l.gold_letter,
            gold_direction: l.gold_direction,
            predicted_letter: l.predicted_letter,
            predicted_direction: l.predicted_direction,
            raw_output: l.raw_output,
            rule: l.rule,
            option_logprobs: l.option_logprobs,
            verdict,
            latency_ms: l.latency_ms,
            variant: l.variant,
        })
    }
}

impl From<Record> for RecordLine {
    fn from(r: Record) -> RecordLine {
        let (correct, error_kind, error) = match r.verdict {
            Verdict::Correct => (Some(true), None, None),
            Verdict::Wrong(k) => (Some(false), Some(k), None),
            Verdict::Unparsed => (Some(false), Some(ErrorKind::Unparsed), None),
            Verdict::Failed(reason) => (None, None, Some(reason)),
            Verdict::Unjudged => (None, None, None),
        };
        RecordLine {
            key: r.key,
            id: r.id,
            category: r.category,
            rotation: r.rotation,
            sample: r.sample,
            gold_letter: r.gold_letter,
            gold_direction: r.gold_direction,
            predicted_letter: r.predicted_letter,
            predicted_direction: r.predicted_direction,
            raw_output: r.raw_output,
            rule: r.rule,
            option_logprobs: r.option_logprobs,
            correct,
            error_kind,
            latency_ms: r.latency_ms,
            variant: r.variant,
            error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"key":"a","id":"a","category":"Camera","rotation":0,"gold_letter":"A","gold_direction":"front-left","predicted_letter":"B","predicted_direction":"front-right","raw_output":"B","rule":"viewspatial","option_logprobs":[],"correct":false,"error_kind":"horizontal_flip","latency_ms":1.5}"#;

    #[test]
    fn the_same_json_on_disk_typed_in_memory() {
        let r: Record = serde_json::from_str(LINE).unwrap();
        assert_eq!(r.verdict, Verdict::Wrong(ErrorKind::HorizontalFlip));
        assert_eq!(r.rule, ExtractRule::ViewSpatial);
        assert_eq!(r.gold_direction, Direction::from_name("front-left"));
        assert_eq!(serde_json::to_string(&r).unwrap(), LINE);
        let failed = Record { verdict: Verdict::Failed("cannot decode image".into()), ..r.clone() };
        let json = serde_json::to_value(&failed).unwrap();
        assert_eq!((json["correct"].is_null(), json["error"].as_str()), (true, Some("cannot decode image")));
        assert_eq!(serde_json::from_value::<Record>(json).unwrap(), failed);
    }

    #[test]
    fn values_outside_the_vocabulary_are_bad_lines_not_new_kinds() {
        for (from, to, says) in [
            ("\"horizontal_flip\"", "\"sideways_flip\"", "sideways_flip"),
            ("\"viewspatial\"", "\"guess\"", "guess"),
            ("\"front-right\"", "\"front-rihgt\"", "front-rihgt"),
            ("\"correct\":false", "\"correct\":true", "correct is true but error_kind is \"horizontal_flip\""),
        ] {
            let line = LINE.replace(from, to);
            let err = serde_json::from_str::<Record>(&line).unwrap_err().to_string();
            assert!(err.contains(says), "{line}: {err}");
        }
    }
}
