//! Visual prompting: a red box around the reference object and a question
//! that mentions it, against the plain question; with the saliency mass
//! inside the box for both ("tunnel vision").

use super::{ask, Answer};
use crate::data::load_images;
use crate::data::visual_prompt::{draw_box, BoxStyle};
use crate::data::{BoundingBox, Sample};
use crate::engine::{intervene::Intervention, Engine, Flow, GenerateOptions, ResizePolicy};
use crate::spatial::grounding::{grounding_prompt, parse_grounding};
use crate::spatial::reference::{boxed_question, reference_phrase};
use anyhow::{bail, Result};
use image::DynamicImage;
use std::collections::HashMap;

/// Where the reference object's box comes from.
pub enum BoxSource {
    /// The sample's own boxes (the first on image 0).
    Dataset,
    /// A JSON file of id -> boxes, already loaded.
    File(HashMap<String, Vec<BoundingBox>>),
    /// Ask the model to ground the reference phrase.
    Grounding,
}

#[derive(Clone, Debug)]
pub struct BoxedComparison {
    pub id: String,
    pub category: String,
    pub phrase: String,
    pub bbox: BoundingBox,
    pub boxed_question: String,
    pub plain: Answer,
    pub boxed: Answer,
}

/// Grounds `phrase` on `image` with the model: a box in the original image's pixels.
pub fn ground(engine: &Engine, image: &DynamicImage, phrase: &str, policy: &ResizePolicy) -> Result<BoundingBox> {
    let prompt = engine.processor.prepare(std::slice::from_ref(image), &grounding_prompt(phrase), policy)?;
    let opts = GenerateOptions { max_new_tokens: 128, first_token_top_k: 0, ..Default::default() };
    let answer = engine.generate(&[&prompt], &opts, &mut |_| Flow::Continue)?.remove(0).text;
    let boxes = parse_grounding(&answer).map_err(|e| anyhow::anyhow!("grounding `{phrase}`: {e}"))?;
    let b = boxes[0].to_original(prompt.images[0].resized, prompt.images[0].original);
    Ok(BoundingBox { x0: b.x0, y0: b.y0, x1: b.x1, y1: b.y1, label: Some(phrase.to_string()), image: 0 })
}

pub fn reference_box(
    engine: &Engine,
    sample: &Sample,
    image: &DynamicImage,
    phrase: &str,
    source: &BoxSource,
    policy: &ResizePolicy,
) -> Result<BoundingBox> {
    match source {
        BoxSource::Dataset => match sample.boxes.iter().find(|b| b.image == 0) {
            Some(b) => Ok(b.clone()),
            None => bail!("sample {} has no box in the dataset", sample.id),
        },
        BoxSource::File(map) => match map.get(&sample.id).and_then(|v| v.first()) {
            Some(b) => Ok(b.clone()),
            None => bail!("the box file has no entry for sample {}", sample.id),
        },
        BoxSource::Grounding => ground(engine, image, phrase, policy),
    }
}

pub fn compare(engine: &Engine, sample: &Sample, source: &BoxSource, style: &BoxStyle, policy: &ResizePolicy) -> Result<BoxedComparison> {
    let images = load_images(sample)?;
    let Some(first) = images.first() else { bail!("sample {} has no image", sample.id) };
    let phrase = match sample.reference.clone().or_else(|| reference_phrase(&sample.question).map(|r| r.phrase)) {
        Some(p) => p,
        None => bail!("no reference phrase found in sample {}'s question", sample.id),
    };
    let bbox = reference_box(engine, sample, first, &phrase, source, policy)?;
    bbox.check_within(first.width(), first.height()).map_err(|e| anyhow::anyhow!("sample {}: {e}", sample.id))?;
    let mut boxed_images = images.clone();
    boxed_images[0] = draw_box(first, &bbox, style);
    let question = boxed_question(&sample.question, &phrase, &style.color_name);
    let (_, plain) = ask(engine, sample, &images, &sample.question, policy, &Intervention::None)?;
    let (_, boxed) = ask(engine, sample, &boxed_images, &question, policy, &Intervention::None)?;
    Ok(BoxedComparison { id: sample.id.clone(), category: sample.category.clone(), phrase, bbox, boxed_question: question, plain, boxed })
}
