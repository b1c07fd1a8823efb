//! Region ablation: the image tokens of a region (the reference object's
//! box, the target's, everything else) get a baseline's embeddings instead
//! (the same image blurred, or the mean over a set of images at each
//! position), and the answer is read again.

use super::decision::Decision;
use super::pass::{pick, Pass};
use super::regions::PromptRegions;
use crate::data::BoundingBox;
use crate::engine::text::Branch;
use crate::engine::{Engine, PreparedPrompt, ResizePolicy};
use anyhow::{bail, Context, Result};
use tch::Tensor;

/// The image tokens an ablation replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Region {
    /// Inside the reference object's box.
    Reference,
    /// Inside the target object's box.
    Target,
    /// Every image token outside both boxes.
    Rest,
}

impl Region {
    pub const ALL: [Region; 3] = [Region::Reference, Region::Target, Region::Rest];

    pub fn name(self) -> &'static str {
        match self {
            Region::Reference => "reference",
            Region::Target => "target",
            Region::Rest => "rest",
        }
    }

    /// The region's image-token positions, from the reference's and the target's boxes.
    pub fn positions(self, r: &PromptRegions, boxes: (Option<&BoundingBox>, Option<&BoundingBox>)) -> Result<Vec<usize>> {
        let inside = |b: Option<&BoundingBox>, what: &str| {
            b.with_context(|| format!("ablating needs the sample's {what} box")).and_then(|b| r.in_box(b))
        };
        let p = match self {
            Region::Reference => inside(boxes.0, "reference")?,
            Region::Target => inside(boxes.1, "target")?,
            Region::Rest => {
                let mut both = inside(boxes.0, "reference")?;
                both.extend(inside(boxes.1, "target")?);
                r.image_except(&both)
            }
        };
        super::pass::nonempty(&format!("the {} region", self.name()), p)
    }
}

/// What replaces a region's image tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Baseline {
    /// The same image under a Gaussian blur (sigma 8 px).
    #[default]
    Blur,
    /// The mean over the batch's images at each token position (same image size).
    Mean,
}

/// The candidates' log-probs with each region ablated.
pub struct Ablation {
    pub regions: Vec<Region>,
    /// [candidates] unablated.
    pub base: Vec<f64>,
    /// [regions][candidates]
    pub ablated: Vec<Vec<f64>>,
}

impl Ablation {
    fn best(row: &[f64]) -> Option<usize> {
        row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i)
    }
    /// The candidate chosen unablated.
    pub fn answer(&self) -> Option<usize> {
        Self::best(&self.base)
    }
    /// Per region: whether the chosen candidate changed.
    pub fn changed(&self) -> Vec<bool> {
        self.ablated.iter().map(|row| Self::best(row) != self.answer()).collect()
    }
}

/// The vision embeddings [N, D] of `images` blurred (the prompt's text unchanged).
pub fn blurred_vision(engine: &Engine, images: &[image::DynamicImage], text: &str, policy: &ResizePolicy) -> Result<Tensor> {
    let _guard = tch::no_grad_guard();
    let blurred: Vec<image::DynamicImage> =
        images.iter().map(|i| image::DynamicImage::ImageRgb8(image::imageops::blur(&i.to_rgb8(), 8.0))).collect();
    let prompt = engine.processor.prepare(&blurred, text, policy)?;
    vision_of(engine, &prompt)
}

/// The vision tower's merged output [N, D] for `prompt`'s images.
pub fn vision_of(engine: &Engine, prompt: &PreparedPrompt) -> Result<Tensor> {
    let inputs = engine.collate(&[prompt]);
    let pixels = inputs.pixel_values.as_ref().context("the prompt has no image")?;
    Ok(engine.model.vision_embeds(pixels, &inputs.grids))
}

/// Ablates each region of `decision`'s prompt with `baseline` [N, D] (the
/// baseline's vision embeddings, in the prompt's image-token order).
pub fn ablate(
    engine: &Engine,
    decision: &Decision,
    baseline: &Tensor,
    regions: &[Region],
    boxes: (Option<&BoundingBox>, Option<&BoundingBox>),
) -> Result<Ablation> {
    let _guard = tch::no_grad_guard();
    if decision.candidates.is_empty() {
        bail!("nothing to read: the decision has no candidates");
    }
    let pass = Pass::run(engine, &decision.prompt)?;
    let n_image = pass.regions.image.len() as i64;
    if baseline.size().first() != Some(&n_image) {
        bail!("the baseline has {:?} vision embeddings; the prompt has {n_image} image tokens (another image size?)", baseline.size());
    }
    let ids = decision.tokens();
    let base = pick(&pass.last_logprobs(&engine.model).unsqueeze(0), &ids)?.remove(0);
    let t = pass.regions.len as i64;
    let mut ablated = Vec::new();
    for &region in regions {
        let positions = region.positions(&pass.regions, boxes)?;
        // Position p is image token k: its baseline row is k.
        let rows: Vec<i64> =
            positions.iter().map(|p| pass.regions.image.iter().position(|q| q == p).expect("an image token") as i64).collect();
        let at = Tensor::from_slice(&positions.iter().map(|&p| p as i64).collect::<Vec<_>>()).to_device(pass.embeds.device());
        let swapped = baseline.index_select(0, &Tensor::from_slice(&rows).to_device(baseline.device())).to_kind(pass.embeds.kind());
        let start = positions[0] as i64;
        let hidden = pass.embeds.get(0).index_copy(0, &at, &swapped).narrow(0, start, t - start);
        let lp = pass.branches_last_logprobs(&engine.model, start, &[Branch { enter: 0, hidden }], &|_, _| None);
        ablated.push(pick(&lp, &ids)?.remove(0));
    }
    Ok(Ablation { regions: regions.to_vec(), base, ablated })
}
