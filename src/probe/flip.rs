//! The flip probe: mirror the image, mirror the question, options and gold,
//! and ask again. Flip-consistent when the answer mirrors too.

use super::{ask, load_images, tally, Answer};
use crate::data::{flip::flip_labels, Sample};
use crate::engine::{intervene::Intervention, Engine, ResizePolicy};
use anyhow::Result;

#[derive(Clone, Debug)]
pub struct FlipProbe {
    pub id: String,
    pub category: String,
    pub original: Answer,
    pub mirrored: Answer,
    /// The mirrored answer is the mirror of the original one.
    pub consistent: bool,
}

/// Whether `mirrored` (on the flipped sample) mirrors `original`.
pub fn answers_mirror(sample: &Sample, flipped: &Sample, original: &Answer, mirrored: &Answer) -> bool {
    match (original.direction, mirrored.direction) {
        (Some(a), Some(b)) => a.mirrored() == b,
        // Options keep their letters and swap their texts, so a mirrored
        // answer without a direction is the option with the mirrored text.
        _ => {
            let text = |s: &Sample, label: &str| label.chars().next().and_then(|l| s.option(l)).map(|o| o.text.to_lowercase());
            match (text(sample, &original.label), text(flipped, &mirrored.label)) {
                (Some(a), Some(b)) => crate::data::flip::swap_left_right(&a) == b,
                _ => original.label == mirrored.label,
            }
        }
    }
}

pub fn probe(engine: &Engine, sample: &Sample, policy: &ResizePolicy) -> Result<FlipProbe> {
    let images = load_images(sample)?;
    let widths: Vec<u32> = images.iter().map(|i| i.width()).collect();
    let flipped = flip_labels(sample, &widths);
    let mirrored_images: Vec<_> = images.iter().map(|i| i.fliph()).collect();
    let (_, original) = ask(engine, sample, &images, &sample.question, policy, &Intervention::None)?;
    let (_, mirrored) = ask(engine, &flipped, &mirrored_images, &flipped.question, policy, &Intervention::None)?;
    let consistent = answers_mirror(sample, &flipped, &original, &mirrored);
    Ok(FlipProbe { id: sample.id.clone(), category: sample.category.clone(), original, mirrored, consistent })
}

/// (category, consistent, total) rows.
pub fn by_category(probes: &[FlipProbe]) -> Vec<(String, usize, usize)> {
    tally(probes.iter().map(|p| (p.category.as_str(), p.consistent)))
}
