//! The flip probe: mirror the image, mirror the question, options and gold,
//! and ask again. Flip-consistent when the answer mirrors too.

use super::{ask, Answer};
use crate::data::load_images;
use crate::data::{flip::flip_labels, Sample};
use crate::engine::{intervene::Intervention, Engine, ResizePolicy};
use crate::runs::stats::{answers_mirror as answers_mirror_views, MirrorView};
use anyhow::Result;

#[derive(Clone, Debug)]
pub struct FlipComparison {
    pub id: String,
    pub category: String,
    pub original: Answer,
    pub mirrored: Answer,
    /// The mirrored answer is the mirror of the original one.
    pub consistent: bool,
}

/// Whether `mirrored` (on the flipped sample) mirrors `original`: `runs::stats::answers_mirror`.
pub fn answers_mirror(original: &Answer, mirrored: &Answer) -> bool {
    answers_mirror_views(view(original), view(mirrored))
}

/// What flip consistency reads of an answer: its direction and its option label.
fn view(a: &Answer) -> MirrorView<'_> {
    MirrorView { direction: a.direction, label: Some(a.label.as_str()) }
}

pub fn compare(engine: &Engine, sample: &Sample, policy: &ResizePolicy) -> Result<FlipComparison> {
    let images = load_images(sample)?;
    let widths: Vec<u32> = images.iter().map(|i| i.width()).collect();
    let flipped = flip_labels(sample, &widths);
    let mirrored_images: Vec<_> = images.iter().map(|i| i.fliph()).collect();
    let (_, original) = ask(engine, sample, &images, &sample.question, policy, &Intervention::None)?;
    let (_, mirrored) = ask(engine, &flipped, &mirrored_images, &flipped.question, policy, &Intervention::None)?;
    let consistent = answers_mirror(&original, &mirrored);
    Ok(FlipComparison { id: sample.id.clone(), category: sample.category.clone(), original, mirrored, consistent })
}

/// Per category, then overall, each with its chance level (`runs::stats`'s one definition).
pub fn by_category(probes: &[FlipComparison]) -> Vec<crate::runs::stats::FlipPairs> {
    let pairs: Vec<(&str, MirrorView, MirrorView)> =
        probes.iter().map(|p| (p.category.as_str(), view(&p.original), view(&p.mirrored))).collect();
    crate::runs::stats::flip_consistency_of(&pairs)
}
