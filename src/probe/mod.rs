//! Probes: ask the model about one sample under a change (mirrored, boxed,
//! attention-scaled) and compare with the plain answer. Built on the engine;
//! each probe returns plain data that the CLI prints and the TUI draws.
pub mod boxed;
pub mod flip;

use crate::data::{images::decode, AnswerStyle, Sample};
use crate::engine::{intervene::Intervention, Engine, OptionScores, PreparedPrompt, ResizePolicy};
use crate::spatial::Direction;
use anyhow::{bail, Context, Result};
use image::DynamicImage;

/// The multiple-choice prompt (the `default` eval template).
pub fn mcq_prompt(question: &str, sample: &Sample) -> String {
    crate::eval::PromptTemplate::default_prompt().render(question, sample)
}

/// The labels scored at the answer position.
pub fn answer_labels(sample: &Sample) -> Result<Vec<String>> {
    if !sample.options.is_empty() {
        return Ok(sample.options.iter().map(|o| o.letter.to_string()).collect());
    }
    match sample.answer_style {
        AnswerStyle::YesNo => Ok(vec!["Yes".into(), "No".into()]),
        _ => bail!("sample {} has no options to score (answers in words are read with --mode generate)", sample.id),
    }
}

/// One answer to one sample.
#[derive(Clone, Debug)]
pub struct Answer {
    pub scores: OptionScores,
    pub label: String,
    /// The direction the chosen option names, when it names one.
    pub direction: Option<Direction>,
    pub correct: Option<bool>,
}

pub fn load_images(sample: &Sample) -> Result<Vec<DynamicImage>> {
    sample.images.iter().map(|src| decode(src).with_context(|| format!("sample {}", sample.id))).collect()
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
    let chosen = label.chars().next().and_then(|l| sample.option(l)).filter(|_| !sample.options.is_empty());
    let direction = chosen.and_then(|o| o.direction);
    let correct = match (&sample.gold_letter, &sample.gold_text) {
        (Some(g), _) if !sample.options.is_empty() => Some(label.starts_with(*g)),
        (_, Some(t)) => Some(t.eq_ignore_ascii_case(&label)),
        _ => None,
    };
    Ok((prompt, Answer { scores, label, direction, correct }))
}

pub use crate::runs::report::tally;
