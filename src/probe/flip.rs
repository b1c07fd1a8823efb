//! The flip probe: mirror the image, mirror the question, options and gold,
//! and ask again. Flip-consistent when the answer mirrors too.

use super::{ask, tally, Answer};
use crate::data::load_images;
use crate::data::{flip::flip_labels, Sample};
use crate::engine::{intervene::Intervention, Engine, ResizePolicy};
use crate::runs::stats::{answers_mirror as answers_mirror_views, MirrorView};
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

/// Whether `mirrored` (on the flipped sample) mirrors `original`: `runs::stats::answers_mirror`.
pub fn answers_mirror(original: &Answer, mirrored: &Answer) -> bool {
    fn view(a: &Answer) -> MirrorView<'_> {
        MirrorView { direction: a.direction, label: Some(a.label.as_str()) }
    }
    answers_mirror_views(view(original), view(mirrored))
}

pub fn probe(engine: &Engine, sample: &Sample, policy: &ResizePolicy) -> Result<FlipProbe> {
    let images = load_images(sample)?;
    let widths: Vec<u32> = images.iter().map(|i| i.width()).collect();
    let flipped = flip_labels(sample, &widths);
    let mirrored_images: Vec<_> = images.iter().map(|i| i.fliph()).collect();
    let (_, original) = ask(engine, sample, &images, &sample.question, policy, &Intervention::None)?;
    let (_, mirrored) = ask(engine, &flipped, &mirrored_images, &flipped.question, policy, &Intervention::None)?;
    let consistent = answers_mirror(&original, &mirrored);
    Ok(FlipProbe { id: sample.id.clone(), category: sample.category.clone(), original, mirrored, consistent })
}

/// (category, consistent, total) rows.
pub fn by_category(probes: &[FlipProbe]) -> Vec<(String, usize, usize)> {
    tally(probes.iter().map(|p| (p.category.as_str(), p.consistent)))
}
