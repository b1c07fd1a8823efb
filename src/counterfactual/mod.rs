//! Counterfactual asks: the model is asked about one sample under a change
//! (mirrored, boxed, attention-scaled) and the answer is compared with the
//! plain one. Built on the engine; each comparison returns plain data that
//! the CLI (`flipscope probe`) prints and the TUI draws.
pub mod boxed;
pub mod flip;

use crate::data::Sample;
use crate::engine::{intervene::Intervention, Engine, OptionScores, PreparedPrompt, ResizePolicy};
use crate::eval::judge::judge;
use crate::eval::{answer_labels, mcq_prompt};
use crate::spatial::extract::Extraction;
use crate::spatial::{Direction, Verdict};
use anyhow::Result;
use image::DynamicImage;

/// One answer to one sample.
#[derive(Clone, Debug)]
pub struct Answer {
    pub scores: OptionScores,
    pub label: String,
    /// The direction the chosen option names, when it names one.
    pub direction: Option<Direction>,
    pub verdict: Verdict,
}

/// Scores `sample`'s options for `question` over `images`.
pub fn ask(
    engine: &Engine,
    sample: &Sample,
    images: &[DynamicImage],
    question: &str,
    policy: &ResizePolicy,
    intervention: &Intervention,
) -> Result<(PreparedPrompt, Answer)> {
    let prompt = engine.processor.prepare(images, &mcq_prompt(question, sample), policy)?;
    let labels = answer_labels(sample)?;
    let scores = engine.score_options_with(&[&prompt], std::slice::from_ref(&labels), intervention)?.remove(0);
    let label = scores.best_label().to_string();
    let judged = judge(sample, &Extraction::scored(label.clone()));
    Ok((prompt, Answer { scores, label, direction: judged.predicted_direction, verdict: judged.verdict }))
}

pub use crate::runs::stats::tally;
