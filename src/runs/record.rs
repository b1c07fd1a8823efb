//! One line of `records.jsonl`.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Record {
    /// `id`, or `id#rK` for the K-th rotation of circular evaluation.
    pub key: String,
    pub id: String,
    pub category: String,
    /// Rotation index (0 = the options as given).
    #[serde(default)]
    pub rotation: usize,
    /// Which of the question's sampled answers this is (`--samples N`: key `id#sJ`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<usize>,
    pub gold_letter: Option<String>,
    pub gold_direction: Option<String>,
    pub predicted_letter: Option<String>,
    pub predicted_direction: Option<String>,
    /// The generated text (generate mode), empty when scored.
    #[serde(default)]
    pub raw_output: String,
    /// Which extraction rule fired (`scored` in score mode, `unparsed` when none).
    pub rule: String,
    /// Option letter -> log-probability at the answer position.
    #[serde(default)]
    pub option_logprobs: Vec<(String, f32)>,
    pub correct: Option<bool>,
    /// Error kind (horizontal, orthogonal, ...) when wrong and both sides name directions.
    pub error_kind: Option<String>,
    pub latency_ms: f64,
    /// Variant details: box, alpha, confidence, branch.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub variant: serde_json::Map<String, serde_json::Value>,
    /// Why the sample could not be run (an unreadable image, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
