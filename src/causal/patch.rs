//! Activation patching between an image and its mirror. The clean run is
//! the sample; the corrupted run asks the same question of the mirrored
//! image, so every position lines up and the right answer moves from X to
//! mirror(X). Copying the clean residual stream at a layer, for a group of
//! positions, into the corrupted run shows how much of the logit difference
//! LD = logit(X) - logit(mirror X) those positions carry at that layer.

use super::decision::Decision;
use super::pass::{lens, nonempty, pick, Pass};
use super::regions::PromptRegions;
use crate::data::BoundingBox;
use crate::engine::text::Branch;
use crate::engine::{Engine, PreparedPrompt};
use anyhow::{bail, Result};
use tch::Tensor;

/// A group of positions whose residual stream is copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PositionGroup {
    All,
    Image,
    Text,
    /// The image tokens inside the reference object's box.
    Reference,
    /// The image tokens inside the target object's box.
    Target,
    Last,
}

impl PositionGroup {
    pub const ALL: [PositionGroup; 6] = [
        PositionGroup::All,
        PositionGroup::Image,
        PositionGroup::Text,
        PositionGroup::Reference,
        PositionGroup::Target,
        PositionGroup::Last,
    ];

    /// Every group that applies to a sample with these (reference, target) boxes.
    pub fn applicable(has_reference: bool, has_target: bool) -> Vec<PositionGroup> {
        PositionGroup::ALL
            .into_iter()
            .filter(|g| match g {
                PositionGroup::Reference => has_reference,
                PositionGroup::Target => has_target,
                _ => true,
            })
            .collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            PositionGroup::All => "all",
            PositionGroup::Image => "image",
            PositionGroup::Text => "text",
            PositionGroup::Reference => "reference",
            PositionGroup::Target => "target",
            PositionGroup::Last => "last",
        }
    }

    /// The group's positions; `boxes` are the reference's and the target's boxes.
    pub fn positions(self, r: &PromptRegions, boxes: (Option<&BoundingBox>, Option<&BoundingBox>)) -> Result<Vec<usize>> {
        let boxed = |b: Option<&BoundingBox>, what: &str| match b {
            Some(b) => r.in_box(b),
            None => bail!("the {what} group needs the sample's {what} box"),
        };
        let p = match self {
            PositionGroup::All => (0..r.len).collect(),
            PositionGroup::Image => r.image.clone(),
            PositionGroup::Text => r.text.clone(),
            PositionGroup::Reference => boxed(boxes.0, "reference")?,
            PositionGroup::Target => boxed(boxes.1, "target")?,
            PositionGroup::Last => vec![r.last],
        };
        nonempty(&format!("the {} group", self.name()), p)
    }
}

pub struct PatchSweep {
    pub groups: Vec<PositionGroup>,
    /// The tokens LD contrasts (X and mirror X) and how they were chosen.
    pub plus: i64,
    pub minus: i64,
    pub contrast_from: &'static str,
    pub ld_clean: f64,
    pub ld_corrupt: f64,
    /// [L][groups]: (LD_patched - LD_corrupt) / (LD_clean - LD_corrupt), patching each layer's output.
    pub effect: Vec<Vec<f64>>,
    /// [groups]: the same for the vision tower's merged output (None where a group has no image tokens).
    pub vision_effect: Vec<Option<f64>>,
    /// [V] f32 logits at the last position, clean and corrupted.
    pub clean_logits_last: Tensor,
    pub corrupt_logits_last: Tensor,
}

/// `prompt` with every image mirrored left to right (same size, so the same tokens and positions).
pub fn mirrored_prompt(
    engine: &Engine,
    images: &[image::DynamicImage],
    text: &str,
    policy: &crate::engine::ResizePolicy,
) -> Result<PreparedPrompt> {
    let mirrored: Vec<image::DynamicImage> = images.iter().map(|i| i.fliph()).collect();
    engine.processor.prepare(&mirrored, text, policy)
}

/// Rows of `base` [T, D] at `positions` replaced by `from`'s.
fn splice(base: &Tensor, from: &Tensor, positions: &[usize]) -> Tensor {
    let idx = Tensor::from_slice(&positions.iter().map(|&p| p as i64).collect::<Vec<_>>()).to_device(base.device());
    base.index_copy(0, &idx, &from.index_select(0, &idx))
}

/// The sweep over every layer and group. `clean` is the decision's prompt;
/// `corrupt` the same with the images mirrored (and the same opening).
pub fn patch(
    engine: &Engine,
    decision: &Decision,
    corrupt: &PreparedPrompt,
    groups: &[PositionGroup],
    boxes: (Option<&BoundingBox>, Option<&BoundingBox>),
) -> Result<PatchSweep> {
    patch_from(engine, decision, &Pass::run(engine, &decision.prompt)?, corrupt, groups, boxes)
}

/// `patch`, with the clean run already traced (`clean` is `decision`'s prompt's pass).
pub fn patch_from(
    engine: &Engine,
    decision: &Decision,
    clean: &Pass,
    corrupt: &PreparedPrompt,
    groups: &[PositionGroup],
    boxes: (Option<&BoundingBox>, Option<&BoundingBox>),
) -> Result<PatchSweep> {
    let _guard = tch::no_grad_guard();
    let model = &engine.model;
    if corrupt.input_ids != decision.prompt.input_ids {
        bail!("the mirrored prompt's tokens differ from the clean one's (its image has another size?)");
    }
    let dirty = Pass::run(engine, corrupt)?;
    let clean_last = lens(model, &clean.traced.resid_post.last().expect("layers").get(0).get(-1).unsqueeze(0)).get(0);
    let dirty_last = lens(model, &dirty.traced.resid_post.last().expect("layers").get(0).get(-1).unsqueeze(0)).get(0);
    let (plus, minus, contrast_from) = match decision.contrast {
        Some((x, m)) => (decision.candidates[x].token, decision.candidates[m].token, "the gold answer and its mirror"),
        None => {
            let (a, b) = (clean_last.argmax(0, false).int64_value(&[]), dirty_last.argmax(0, false).int64_value(&[]));
            if a == b {
                bail!("no mirrored option to contrast, and the mirror did not change the top token ({a}): nothing to patch back");
            }
            (a, b, "the clean and the corrupted runs' top tokens")
        }
    };
    let ld = |logits: &Tensor| logits.double_value(&[plus]) - logits.double_value(&[minus]);
    let (ld_clean, ld_corrupt) = (ld(&clean_last), ld(&dirty_last));
    let span = ld_clean - ld_corrupt;
    if span.abs() < 1e-6 {
        bail!("LD is the same for the image and its mirror ({ld_clean:.4}): nothing to patch back");
    }
    let n_layers = clean.layers();
    let t = clean.regions.len;
    let mut effect = vec![vec![f64::NAN; groups.len()]; n_layers];
    let mut vision_effect = Vec::new();
    for (g, &group) in groups.iter().enumerate() {
        let positions = group.positions(&clean.regions, boxes)?;
        let start = positions[0];
        let rows =
            |base: &Tensor, from: &Tensor| splice(&base.get(0), &from.get(0), &positions).narrow(0, start as i64, (t - start) as i64);
        // Layer l's output patched: the branch enters layer l + 1.
        let mut branches: Vec<Branch> = (0..n_layers)
            .map(|l| Branch { enter: l + 1, hidden: rows(&dirty.traced.resid_post[l], &clean.traced.resid_post[l]) })
            .collect();
        // The vision tower's output, at the group's image tokens.
        let image_part: Vec<usize> = positions.iter().copied().filter(|p| clean.regions.image.contains(p)).collect();
        let has_vision = !image_part.is_empty();
        if has_vision {
            let start_v = image_part[0];
            let hidden = splice(&dirty.embeds.get(0), &clean.embeds.get(0), &image_part).narrow(0, start as i64, (t - start) as i64);
            debug_assert!(start_v >= start);
            branches.push(Branch { enter: 0, hidden });
        }
        let logits = super::pass::lens(
            model,
            &model.text.run_branches(&dirty.traced.cache, &dirty.positions, start as i64, &branches, &|_, _| None).select(1, -1),
        );
        let picked = pick(&logits, &[plus, minus])?;
        let share = |row: &Vec<f64>| (row[0] - row[1] - ld_corrupt) / span;
        for (l, row) in picked.iter().take(n_layers).enumerate() {
            effect[l][g] = share(row);
        }
        vision_effect.push(has_vision.then(|| share(&picked[n_layers])));
    }
    Ok(PatchSweep {
        groups: groups.to_vec(),
        plus,
        minus,
        contrast_from,
        ld_clean,
        ld_corrupt,
        effect,
        vision_effect,
        clean_logits_last: clean_last.to_device(tch::Device::Cpu),
        corrupt_logits_last: dirty_last.to_device(tch::Device::Cpu),
    })
}

impl PatchSweep {
    /// `patch_effect` [L, groups], `vision_patch_effect` [groups] (NaN where
    /// a group has no image tokens), `clean_logits_last` and `corrupt_logits_last` [V].
    pub fn dump(&self, path: &std::path::Path) -> Result<()> {
        let flat: Vec<f32> = self.effect.iter().flatten().map(|&x| x as f32).collect();
        let effect = Tensor::from_slice(&flat).reshape([self.effect.len() as i64, self.groups.len() as i64]);
        let vision = Tensor::from_slice(&self.vision_effect.iter().map(|v| v.unwrap_or(f64::NAN) as f32).collect::<Vec<_>>());
        super::write_dump(
            path,
            &[
                ("patch_effect", &effect),
                ("vision_patch_effect", &vision),
                ("clean_logits_last", &self.clean_logits_last),
                ("corrupt_logits_last", &self.corrupt_logits_last),
            ],
        )
    }
}
